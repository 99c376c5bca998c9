"""Fusion's UIManager as the Resolve plugin sees it, for the fake Resolve (fake_resolve.py).

The free edition has no UIManager (None) since 19.1, and touching fusion.UIManager there pops
an upsell dialog (hosts.md §2-3). Measured QUIRK: UIManager timer events arrive as the named
timer's Timeout or the dispatcher's generic On.Timeout depending on the build (community
UIManager scripts hook both; marked below).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from support.fake_resolve import FakeResolve


class _Events:
    """win.On.<ID>.<Event> = handler."""

    def __init__(self) -> None:
        object.__setattr__(self, "ids", {})

    def __getattr__(self, name: str) -> Any:
        ids = object.__getattribute__(self, "ids")
        return ids.setdefault(name, type("Handlers", (), {})())

    def handler(self, wid: str, event: str) -> Callable[[Any], None] | None:
        return getattr(self.ids.get(wid), event, None)


class Widget:
    def __init__(self, kind: str, props: dict[str, Any] | None = None, children: Any = None):
        self.kind = kind
        self.ID = (props or {}).get("ID", "")
        self.Text = (props or {}).get("Text", "")
        self.Enabled = True
        self.items: list[str] = []
        self.CurrentIndex = 0
        self.children = list(children or [])

    def AddItems(self, values: list[str]) -> None:
        self.items.extend(values)

    def AddItem(self, value: str) -> None:
        self.items.append(value)

    @property
    def CurrentText(self) -> str:
        return self.items[self.CurrentIndex] if 0 <= self.CurrentIndex < len(self.items) else ""


class FakeTimer:
    def __init__(self, props: dict[str, Any]) -> None:
        self.ID, self.Interval, self.active = props["ID"], props.get("Interval", 100), False

    def Start(self) -> None:
        self.active = True

    def Stop(self) -> None:
        self.active = False


class FakeUI:
    """fusion.UIManager: widget factories (a Timer only when with_timer)."""

    def __init__(self, with_timer: bool = True) -> None:
        self.timers: list[FakeTimer] = []
        if with_timer:
            self.Timer = self._timer

    def _timer(self, props: dict[str, Any]) -> FakeTimer:
        timer = FakeTimer(props)
        self.timers.append(timer)
        return timer

    def _group(kind: str) -> Callable[..., Widget]:  # noqa: N805 - factory of factories
        def make(self: FakeUI, a: Any = None, b: Any = None) -> Widget:
            props, children = (a, b) if isinstance(a, dict) else ({}, a)
            return Widget(kind, props, children)

        return make

    VGroup = _group("VGroup")
    HGroup = _group("HGroup")

    def Label(self, props: dict[str, Any]) -> Widget:
        return Widget("Label", props)

    def Button(self, props: dict[str, Any]) -> Widget:
        return Widget("Button", props)

    def ComboBox(self, props: dict[str, Any]) -> Widget:
        return Widget("ComboBox", props)

    def LineEdit(self, props: dict[str, Any]) -> Widget:
        return Widget("LineEdit", props)


class FakeWindow:
    def __init__(self, props: dict[str, Any], layout: Widget) -> None:
        self.ID = props.get("ID", "")
        self.props = props
        self.On = _Events()
        self.shown = False
        self.widgets: dict[str, Widget] = {}
        stack = [layout]
        while stack:
            w = stack.pop()
            if w.ID:
                self.widgets[w.ID] = w
            stack.extend(w.children)

    def GetItems(self) -> dict[str, Widget]:
        return self.widgets

    def Show(self) -> None:
        self.shown = True

    def Hide(self) -> None:
        self.shown = False

    # test helpers: what a user does
    def choose(self, wid: str, value: str) -> None:
        box = self.widgets[wid]
        box.CurrentIndex = box.items.index(value)

    def click(self, wid: str) -> None:
        handler = self.On.handler(wid, "Clicked")
        assert handler is not None, f"no Clicked handler on {wid}"
        handler({"who": wid})

    def close(self) -> None:
        handler = self.On.handler(self.ID, "Close")
        assert handler is not None
        handler({"who": self.ID})


class FakeDispatcher:
    """bmd.UIDispatcher(ui). RunLoop plays the next scripted user action, then fires
    timers until ExitLoop; dialogs are answered from `answers` (default: first button)."""

    def __init__(self, ui: FakeUI) -> None:
        self.ui = ui
        self.On = _Events()
        self.windows: list[FakeWindow] = []
        self.actions: deque[Callable[[FakeWindow], None]] = deque()
        self.answers: deque[str] = deque()
        self.dialogs: list[str] = []
        self.looping = False
        self.max_ticks = 2000
        # QUIRK (community UIManager scripts hook both): where timer events arrive differs
        # between builds: "named" (win/disp.On.<TimerID>.Timeout), "generic"
        # (disp.On.Timeout) or "both"
        self.timer_events = "named"

    def AddWindow(self, props: dict[str, Any], layout: Widget) -> FakeWindow:
        win = FakeWindow(props, layout)
        self.windows.append(win)
        return win

    def ExitLoop(self) -> None:
        self.looping = False

    def RunLoop(self) -> None:
        self.looping = True
        win = [w for w in self.windows if w.shown][-1]
        if win.ID == "VMBDialog":
            self.dialogs.append(win.widgets["Message"].Text)
            buttons = [w for w in win.widgets if w.startswith("Btn")]
            answer = self.answers.popleft() if self.answers else buttons[0][3:]
            win.click("Btn" + answer)
            return
        if self.actions:
            self.actions.popleft()(win)
        ticks = 0
        while self.looping:
            timers = [t for t in self.ui.timers if t.active]
            assert timers, "RunLoop would wait forever: no action, no timer"
            ticks += 1
            assert ticks < self.max_ticks, "RunLoop never exited"
            time.sleep(min(t.Interval for t in timers) / 1000.0 / 5)
            for t in timers:
                handlers = []
                if self.timer_events in ("named", "both"):
                    handlers += [self.On.handler(t.ID, "Timeout"), win.On.handler(t.ID, "Timeout")]
                if self.timer_events in ("generic", "both"):
                    handlers.append(self.On.__dict__.get("Timeout"))
                for handler in handlers:
                    if handler and self.looping:
                        handler({"who": t.ID})
                if self.actions and self.looping:  # e.g. the user clicks Cancel mid-job
                    self.actions.popleft()(win)


class FakeFusion:
    def __init__(self, ui: FakeUI | None) -> None:
        self._ui = ui
        self.ui_touched = False

    @property
    def UIManager(self) -> FakeUI | None:
        self.ui_touched = True  # on free >= 19.1 this pops an upsell dialog
        return self._ui


class FakeBmd:
    def __init__(self, resolve: FakeResolve | None = None) -> None:
        self.resolve = resolve

    def UIDispatcher(self, ui: FakeUI) -> FakeDispatcher:
        self.disp = FakeDispatcher(ui)
        return self.disp

    def scriptapp(self, name: str) -> Any:
        return self.resolve

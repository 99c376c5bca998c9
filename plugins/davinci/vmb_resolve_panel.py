"""The Resolve knob panel and dialogs (Fusion UIManager: Studio, and free before 19.1).

Standard library only, Python 3.6 syntax (see vmb_resolve.py).
"""

from typing import Any, Callable, Dict, List, Optional

from vmb_resolve_base import call

SWITCH = ("off", "on")  # a boolean row's box (vmb_client.split_options reads "on" as true)


def dialog(ui: Any, disp: Any, message: str, buttons: List[str]) -> str:
    """A modal message with buttons; the clicked button's text (the last one on close)."""
    answer = [buttons[-1]]
    win = disp.AddWindow(
        {"ID": "VMBDialog", "WindowTitle": "VMB Score", "Geometry": [200, 200, 460, 160]},
        ui.VGroup(
            [
                ui.Label({"ID": "Message", "Text": message, "WordWrap": True}),
                ui.HGroup([ui.Button({"ID": "Btn" + b, "Text": b}) for b in buttons]),
            ]
        ),
    )

    def pick(name: str) -> Callable[[Any], None]:
        def handler(ev: Any) -> None:
            answer[0] = name
            disp.ExitLoop()

        return handler

    for b in buttons:
        getattr(win.On, "Btn" + b).Clicked = pick(b)
    win.On.VMBDialog.Close = pick(buttons[-1])
    win.Show()
    disp.RunLoop()
    win.Hide()
    return answer[0]


# -- the knob panel (Studio) -----------------------------------------------------------------
class KnobPanel:
    """A window generated from the knob definitions: knobs, Generate, progress, Cancel."""

    def __init__(self, session: Any, defs: Dict[str, Any], last: Dict[str, Any], title: str):
        self.s = session
        self.defs = list(defs.get("knobs", [])) + list(defs.get("options", []))
        self.last = last
        self.title = title
        self.values = None  # type: Optional[Dict[str, Any]]
        self.win = None  # type: Any
        self.items = {}  # type: Dict[str, Any]
        self.job_running = False
        self.cancel_asked = False
        self.closed = False
        self.blocking = False  # no ui.Timer: the flow waits, progress goes to the Console

    def _rows(self, ui: Any) -> List[Any]:
        rows = [ui.Label({"ID": "Selection", "Text": "Score: " + self.title})]
        for knob in self.defs:
            name, label, kind = knob["name"], knob.get("label", knob["name"]), knob.get("type")
            if kind in ("choice", "boolean"):  # a boolean: an off/on box
                field = ui.ComboBox({"ID": "knob_" + name})
                rows.append(ui.HGroup([ui.Label({"Text": label}), field]))
            elif kind == "multi":
                for i in range(int(knob.get("max", 3))):
                    field = ui.ComboBox({"ID": f"knob_{name}_{i}"})
                    rows.append(ui.HGroup([ui.Label({"Text": f"{label} {i + 1}"}), field]))
            else:  # integer / number / text
                field = ui.LineEdit({"ID": "knob_" + name})
                rows.append(ui.HGroup([ui.Label({"Text": label}), field]))
        rows.append(
            ui.HGroup(
                [
                    ui.Button({"ID": "Generate", "Text": "Generate"}),
                    ui.Button({"ID": "Cancel", "Text": "Cancel"}),
                ]
            )
        )
        rows.append(ui.Label({"ID": "Status", "Text": ""}))
        return rows

    def _fill(self, items: Dict[str, Any]) -> None:
        for knob in self.defs:
            name, kind = knob["name"], knob.get("type")
            if kind in ("choice", "boolean"):
                values = [str(v) for v in knob.get("values", [])]
                want = str(self.last.get(name, knob.get("default", "")))
                if kind == "boolean":  # the last value (True/"on") as its word
                    values = list(SWITCH)
                    want = SWITCH[1] if self.last.get(name) in (True, SWITCH[1]) else SWITCH[0]
                box = items["knob_" + name]
                box.AddItems(values)
                box.CurrentIndex = values.index(want) if want in values else 0
            elif kind == "multi":
                empty = knob.get("empty", "none")
                values = [empty] + [str(v) for v in knob.get("values", [])]
                chosen = list(self.last.get(name) or [])
                for i in range(int(knob.get("max", 3))):
                    want = chosen[i] if i < len(chosen) else empty
                    box = items[f"knob_{name}_{i}"]
                    box.AddItems(values)
                    box.CurrentIndex = values.index(want) if want in values else 0
            else:
                value = self.last.get(name, knob.get("default"))
                items["knob_" + name].Text = "" if value is None else str(value)

    def _read(self, items: Dict[str, Any]) -> Dict[str, Any]:
        out = {}  # type: Dict[str, Any]
        for knob in self.defs:
            name, kind = knob["name"], knob.get("type")
            if kind == "choice":
                out[name] = str(items["knob_" + name].CurrentText)
            elif kind == "boolean":
                out[name] = str(items["knob_" + name].CurrentText) == SWITCH[1]
            elif kind == "multi":
                empty, picked = knob.get("empty", "none"), []
                for i in range(int(knob.get("max", 3))):
                    v = str(items[f"knob_{name}_{i}"].CurrentText)
                    if v and v != empty and v not in picked:
                        picked.append(v)
                out[name] = picked
            elif kind == "integer":
                text = str(items["knob_" + name].Text).strip()
                out[name] = int(text) if text.isdigit() else None
            else:
                out[name] = str(items["knob_" + name].Text)
        return out

    def run(self) -> Optional[Dict[str, Any]]:
        """Show the panel until Generate (-> values) or Cancel/close (-> None). The window
        stays open afterwards for progress and Cancel."""
        ui, disp = self.s.ui, self.s.disp
        self.win = win = disp.AddWindow(
            {"ID": "VMBScore", "WindowTitle": "VMB Score", "Geometry": [120, 120, 440, 560]},
            ui.VGroup(self._rows(ui)),
        )
        self.items = items = win.GetItems()
        self._fill(items)

        def on_close(ev: Any) -> None:
            self.cancel_asked = self.job_running
            self.closed = True
            disp.ExitLoop()

        def on_cancel(ev: Any) -> None:
            if self.job_running:
                self.cancel_asked = True
                self.status("cancelling…")
            else:
                disp.ExitLoop()

        def on_generate(ev: Any) -> None:
            if not self.job_running:
                self.values = self._read(items)
                items["Generate"].Enabled = False
                disp.ExitLoop()

        win.On.VMBScore.Close = on_close
        win.On.Cancel.Clicked = on_cancel
        win.On.Generate.Clicked = on_generate
        win.Show()
        disp.RunLoop()
        if self.values is None or self.closed:
            win.Hide()
            return None
        self.status("submitting…")
        return self.values

    def status(self, text: str) -> None:
        self.items["Status"].Text = text

    def close(self) -> None:
        call(self.win, "Hide")

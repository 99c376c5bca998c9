"""Putting a stem on a Resolve timeline, and checking that it is really there.

Measured quirks (samuelgursky/davinci-resolve-mcp
src/utils/api_truth.py and docs/reference/api-limitations.md): AppendToTimeline's endFrame
is exclusive and counted in the clip's own frames (the project rate at import time); it may
answer with dead handles or phantom items, so the track is read back; DeleteClips works only
on the Edit page. Standard library only, Python 3.6 syntax.
"""

import os
from typing import Any, Dict, List, Optional

import vmb_client as vc
from vmb_resolve_base import alive, audio_seconds, call, media_of, to_float

TRACK_NAME = "VMB Score"
BIN_NAME = "VMB Score"


class Placer:
    """Imports a WAV into the "VMB Score" bin and appends it on a free VMB Score track."""

    def __init__(self, session: Any) -> None:
        self.resolve = session.resolve
        self.home = session.home
        self.version_text = session.version_text

    def _ours(self, item: Any) -> bool:
        """A timeline item whose media is an engine output (an earlier take of ours)."""
        path = media_of(item) or ""
        return os.path.realpath(path).startswith(os.path.realpath(self.home) + os.sep)

    def _free_track(self, tl: Any, rec_in: int, rec_out: int, notes: List[str]) -> int:
        """A "VMB Score" audio track with room for [rec_in, rec_out), made when none has.
        An earlier take of ours starting at the same frame is removed: regenerating
        replaces the take. Anything else there (or a locked track) means another track."""
        count = int(call(tl, "GetTrackCount", "audio") or 0)
        ours = 0
        for idx in range(1, count + 1):
            name = str(call(tl, "GetTrackName", "audio", idx) or "")
            if not name.startswith(TRACK_NAME):
                continue
            ours += 1
            if call(tl, "GetIsTrackLocked", "audio", idx) is True:
                notes.append(f"audio track {idx} '{name}' is locked")
                continue
            blocking, stale = [], []
            for item in call(tl, "GetItemListInTrack", "audio", idx) or []:
                if not alive(item):
                    continue
                a, b = int(item.GetStart()), int(item.GetEnd())
                if b <= rec_in or a >= rec_out:
                    continue
                (stale if a == rec_in and self._ours(item) else blocking).append(item)
            if blocking:
                notes.append(f"audio track {idx} '{name}' is occupied there")
                continue
            if stale:
                if not self._delete(tl, stale, notes):
                    notes.append(f"could not remove the earlier take on track {idx}")
                    continue
                notes.append(f"replaced the earlier take on audio track {idx}")
            return idx
        return self._new_track(tl, f"{TRACK_NAME} {ours + 1}" if ours else TRACK_NAME)

    def _delete(self, tl: Any, items: List[Any], notes: List[str]) -> bool:
        """DeleteClips works only on the Edit page (davinci-resolve-mcp
        api-limitations.md): open it for the deletion, then go back to the user's page."""
        page = call(self.resolve, "GetCurrentPage")
        switched = isinstance(page, str) and page != "edit"
        if switched and not call(self.resolve, "OpenPage", "edit"):
            notes.append(f"Resolve would not open the Edit page (from '{page}')")
            return False
        try:
            return call(tl, "DeleteClips", items, False) is True
        finally:
            if switched:
                call(self.resolve, "OpenPage", page)

    def _new_track(self, tl: Any, name: str) -> int:
        before = int(call(tl, "GetTrackCount", "audio") or 0)
        if not call(tl, "AddTrack", "audio", "stereo"):
            call(tl, "AddTrack", "audio")
        after = int(call(tl, "GetTrackCount", "audio") or 0)
        if after <= before:
            raise vc.PluginError(
                f"Resolve did not add an audio track for the score ({self.version_text()}).",
                "track",
            )
        call(tl, "SetTrackName", "audio", after, name)
        return after

    def _bin(self, mp: Any) -> Any:
        root = call(mp, "GetRootFolder")
        for folder in call(root, "GetSubFolderList") or []:
            if call(folder, "GetName") == BIN_NAME:
                return folder
        folder = call(mp, "AddSubFolder", root, BIN_NAME)
        return folder if folder is not None else root

    def import_audio(self, mp: Any, path: str) -> Any:
        """Import into the "VMB Score" bin; the user's current bin is restored afterwards."""
        previous = call(mp, "GetCurrentFolder")
        call(mp, "SetCurrentFolder", self._bin(mp))
        try:
            items = call(mp, "ImportMedia", [{"FilePath": path}])
            if not items:
                items = call(mp, "ImportMedia", [path])  # the older list-of-paths form
        finally:
            if previous is not None:
                call(mp, "SetCurrentFolder", previous)
        if not items or items[0] is None:
            raise vc.PluginError(f"Resolve could not import {path}.", "import")
        return items[0]

    @staticmethod
    def clip_rate(mpi: Any, fallback: float) -> float:
        """The frame rate a media pool item's "Frames" count and AppendToTimeline's
        start/endFrame are in: the project rate at import time (davinci-resolve-mcp
        src/utils/api_truth.py)."""
        return to_float(call(mpi, "GetClipProperty", "FPS"), 0.0) or fallback

    def place(
        self, project: Any, tl: Any, path: str, rec_in: int, max_frames: Optional[int], fps: float
    ) -> Dict[str, Any]:
        """Import `path`, append it at absolute frame rec_in on a free VMB Score track,
        then read the track back: an item of the right length must be at rec_in."""
        mp = call(project, "GetMediaPool")
        if mp is None:
            raise vc.PluginError("This project has no media pool to import into.", "import")
        mpi = self.import_audio(mp, path)
        src_fps = self.clip_rate(mpi, fps)
        src_frames = int(to_float(call(mpi, "GetClipProperty", "Frames"), 0.0))
        if src_frames <= 0:
            src_frames = int(round(audio_seconds(path) * src_fps))
        frames = int(round(src_frames * fps / src_fps))  # timeline frames of audio
        if max_frames:
            frames = min(frames, int(max_frames))
        if frames <= 0:
            raise vc.PluginError(f"The generated audio is empty: {path}", "import")
        rec_in = int(round(rec_in))  # Resolve 21 rejects non-integer frames
        notes = []  # type: List[str]
        idx = self._free_track(tl, rec_in, rec_in + frames, notes)
        info = {
            "mediaPoolItem": mpi,
            "startFrame": 0,
            # exclusive, in the clip's frames (Studio 21.0: 6254..6348 gave 94 frames)
            "endFrame": int(round(frames * src_fps / fps)),
            "mediaType": 2,
            "trackIndex": idx,
            "recordFrame": rec_in,
        }
        for attempt in range(2):
            if attempt:  # Resolve refused that spot or gave a phantom: a new track is empty
                idx = self._new_track(tl, TRACK_NAME + " (retry)")
                info["trackIndex"] = idx
            placed = call(mp, "AppendToTimeline", [info]) or []
            problem = self._check_placed(tl, placed, idx, path, rec_in, frames, src_fps != fps)
            if not problem:
                return {"track": idx, "record_frame": rec_in, "frames": frames, "notes": notes}
            notes.append(f"audio track {idx}: {problem}")
        raise vc.PluginError(
            f"Resolve did not place the audio ({'; '.join(notes)}). "
            f"It is in the '{BIN_NAME}' bin: {path}",
            "place",
        )

    def _check_placed(
        self, tl: Any, placed: List[Any], idx: int, path: str, rec_in: int, frames: int, loose: bool
    ) -> str:
        """'' when the track holds our item at rec_in with `frames` frames (one frame of
        slack when the clip and timeline rates differ). AppendToTimeline's answer alone is
        not trusted: it may be a dead handle or a phantom item (null id; davinci-resolve-mcp
        api-limitations.md)."""
        item = placed[0] if placed else None
        if not alive(item):
            return "Resolve refused the append (dead handle)"
        for cand in call(tl, "GetItemListInTrack", "audio", idx) or []:
            if not alive(cand) or int(cand.GetStart()) != rec_in:
                continue
            if os.path.realpath(media_of(cand) or "") != os.path.realpath(path):
                continue
            got = int(cand.GetEnd()) - rec_in
            if got == frames or (loose and abs(got - frames) <= 1):
                return ""
            return f"the item is {got} frames long instead of {frames}"
        return f"no item at frame {rec_in} after the append (Resolve answered with a phantom item)"

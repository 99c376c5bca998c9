"""What the Video Sequencer holds, read into plain dicts: the selection to score, the whole
timeline as OTIO, the scene markers. Standard library + bpy only.

Time model (Blender's own, see its sequencer `time_*` functions): a strip's content starts at
`frame_start`; trims (`frame_offset_start/end`) give the visible `frame_final_start/end`.
A movie strip plays its frames 1:1 on the timeline unless Blender adjusts the playback rate
(the Add Movie operator's default) or the strip is retimed; either changes `frame_duration`
(the content's length on the timeline), so the source seconds per timeline frame is the
movie's real length divided by `frame_duration`. A speed effect strip scales its input
(Stretch: input length / effect length; Multiply: its factor). Meta strips are opened and
their children cropped to the meta's visible range.
"""

import os
from typing import Any, Dict, List, Optional, Tuple

try:
    from . import vmb_client as vc
except ImportError:  # loaded as a plain module (tests outside Blender's extension loader)
    import vmb_client as vc

CHANNEL_NAME = "VMB Score"
STEM_PREFIX = CHANNEL_NAME + ": "  # a part's own channel: "VMB Score: piano"
TAG = "vmb_score"  # custom property on the strips we place: the job that made them
VIDEO_TYPES = ("MOVIE", "IMAGE")
MAX_META_DEPTH = 16


# -- Blender 4.2 .. 5.x compatibility ---------------------------------------------------------
def children(container: Any) -> Any:
    """Strips of a sequence editor or meta strip: `strips` (Blender 5) or `sequences` (4.x)."""
    return container.strips if hasattr(container, "strips") else container.sequences


def all_strips(se: Any) -> Any:
    return se.strips_all if hasattr(se, "strips_all") else se.sequences_all


def fps_of(scene: Any) -> float:
    return float(scene.render.fps) / float(scene.render.fps_base or 1.0)


def abs_path(path: str) -> str:
    import bpy

    return os.path.abspath(bpy.path.abspath(path)) if path else ""


def channel_name(se: Any, channel: int) -> str:
    chans = getattr(se, "channels", None)
    if chans is None or not 0 <= channel < len(chans):
        return ""
    return str(chans[channel].name)


def is_ours(se: Any, strip: Any) -> bool:
    return TAG in strip or channel_name(se, strip.channel).startswith(CHANNEL_NAME)


# -- the media behind a strip ------------------------------------------------------------------
_MOVIE_SECONDS = {}  # type: Dict[str, float]


def movie_seconds(path: str, strip_fps: float) -> Optional[float]:
    """The real length of a movie file, read with Blender's own movie reader (cached)."""
    import bpy

    if path in _MOVIE_SECONDS:
        return _MOVIE_SECONDS[path]
    before = set(bpy.data.movieclips)
    try:
        clip = bpy.data.movieclips.load(path, check_existing=True)
    except RuntimeError:
        return None
    try:
        fps = float(clip.fps) or strip_fps
        seconds = float(clip.frame_duration) / fps if fps > 0 else None
    finally:
        if clip not in before:
            bpy.data.movieclips.remove(clip)  # leave the user's file as it was
    if seconds:
        _MOVIE_SECONDS[path] = seconds
    return seconds


def seconds_per_frame(strip: Any, scene_fps: float) -> float:
    """Source seconds per timeline frame of a movie strip (playback rate, retiming)."""
    movie_fps = float(getattr(strip, "fps", 0.0) or 0.0) or scene_fps
    plain = 1.0 / movie_fps
    if abs(movie_fps - scene_fps) < 1e-3 and not len(getattr(strip, "retiming_keys", ())):
        return plain  # the usual case: no need to open the file
    total = movie_seconds(abs_path(strip.filepath), movie_fps)
    if not total or strip.frame_duration <= 0:
        return plain
    return total / float(strip.frame_duration)


def image_path(strip: Any) -> str:
    elems = getattr(strip, "elements", None)
    name = elems[0].filename if elems and len(elems) else ""
    return abs_path(os.path.join(strip.directory, name)) if name else ""


def parts(strip: Any, lo: float, hi: float, fps: float, depth: int = 0) -> List[Dict[str, Any]]:
    """The pictures a strip shows between timeline frames lo and hi: [{"path", "in", "out"
    (timeline frames), "src_in", "src_out" (source seconds), "name", "channel", "speed"}]."""
    a, b = max(lo, strip.frame_final_start), min(hi, strip.frame_final_end)
    if b <= a or depth > MAX_META_DEPTH or getattr(strip, "mute", False):
        return []
    kind = strip.type
    if kind == "META":
        out = []  # type: List[Dict[str, Any]]
        for child in children(strip):
            out += parts(child, a, b, fps, depth + 1)
        return out
    if kind == "SPEED" and getattr(strip, "input_1", None) is not None:
        return _speed_parts(strip, a, b, fps, depth)
    if kind == "MOVIE":
        spf = seconds_per_frame(strip, fps)
        src = lambda f: (f - strip.frame_start) * spf  # noqa: E731
        return [_part(strip, abs_path(strip.filepath), a, b, src(a), src(b), spf * fps)]
    if kind == "IMAGE":
        path = image_path(strip)
        return [_part(strip, path, a, b, 0.0, (b - a) / fps, 1.0)] if path else []
    return []


def _part(strip: Any, path: str, a: float, b: float, s0: float, s1: float, speed: float) -> Dict:
    lo_s, hi_s = (s0, s1) if s0 <= s1 else (s1, s0)  # reversed frames: the same range
    return {
        "path": path,
        "in": a,
        "out": b,
        "src_in": max(0.0, lo_s),
        "src_out": max(0.0, hi_s),
        "name": strip.name,
        "channel": strip.channel,
        "speed": speed,
    }


def speed_factor(effect: Any) -> float:
    """How fast a speed effect plays its input (Blender's OTIO exporter does the same):
    Stretch fits the input's content after its start trim into the effect, Multiply is its
    factor; Length and Frame Number (usually animated) are taken as the input lies."""
    src = effect.input_1
    mode = getattr(effect, "speed_control", "STRETCH")
    if mode == "MULTIPLY":
        return float(effect.speed_factor)
    if mode == "STRETCH":
        eff_len = max(1.0, float(effect.frame_final_duration))
        return (float(src.frame_duration) - float(src.frame_offset_start)) / eff_len
    return 1.0


def _speed_parts(effect: Any, a: float, b: float, fps: float, depth: int) -> List[Dict]:
    src = effect.input_1
    k = speed_factor(effect)
    start = src.frame_final_start
    # the effect's frame f shows the input's frame start + (f - effect start) * k
    mapped = parts(src, -1e12, 1e12, fps, depth + 1)
    out = []
    for p in mapped:
        spf = (p["src_out"] - p["src_in"]) / max(1e-9, p["out"] - p["in"])
        s0 = p["src_in"] + (start + (a - effect.frame_final_start) * k - p["in"]) * spf
        s1 = s0 + (b - a) * k * spf
        # Blender clamps to the input's content (not its trims): past it, the last frame holds
        lo = max(0.0, p["src_in"] - (p["in"] - src.frame_start) * spf)
        hi = lo + float(src.frame_duration) * spf
        q = dict(p)
        q.update({"in": a, "out": b, "src_in": min(max(lo, s0), hi), "src_out": min(hi, s1)})
        q.update({"channel": effect.channel, "speed": p["speed"] * k, "name": effect.name})
        out.append(q)
    return out


# -- selection ---------------------------------------------------------------------------------
def current_strips(se: Any) -> Any:
    """The strips of the level being edited (inside a meta strip when one is open)."""
    stack = list(getattr(se, "meta_stack", []) or [])
    return children(stack[-1]) if stack else children(se)


def markers_in(scene: Any, lo: float, hi: float, fps: float, origin: float) -> List[Dict]:
    """Scene timeline markers in [lo, hi) as hit points: {"time_s" (from origin), "name"}."""
    return [
        {"time_s": round((m.frame - origin) / fps, 6), "name": m.name}
        for m in sorted(scene.timeline_markers, key=lambda m: m.frame)
        if lo <= m.frame < hi
    ]


def read_selection(scene: Any) -> Dict[str, Any]:
    """The selected strips as one cue: record frames, the main picture and its source range."""
    se = scene.sequence_editor
    if se is None:
        raise vc.PluginError("This scene has no Video Sequencer strips.", "nothing_selected")
    fps = fps_of(scene)
    picked = [s for s in current_strips(se) if s.select and not is_ours(se, s)]
    if not picked:
        raise vc.PluginError(
            "Nothing to score: select one or more strips in the Sequencer first.",
            "nothing_selected",
        )
    lo = min(s.frame_final_start for s in picked)
    hi = max(s.frame_final_end for s in picked)
    found = []  # type: List[Dict[str, Any]]
    for s in picked:
        found += parts(s, lo, hi, fps)
    sel = {"start": lo, "end": hi, "fps": fps, "media": None, "name": "cue", "parts": found}
    sel["markers"] = markers_in(scene, lo, hi, fps, lo)
    if found:
        best = max(found, key=lambda p: (p["out"] - p["in"], p["channel"]))
        if not os.path.isfile(best["path"]):
            raise vc.PluginError(
                f"The media is offline: {best['path']}\nRelink it, then try again.",
                "media_offline",
            )
        sel.update(media=best["path"], src_in=best["src_in"], src_out=best["src_out"])
        sel["name"] = vc.cue_name(os.path.splitext(best["name"])[0] or best["path"])
        sel["speed"] = best["speed"]
    return sel


def cue_params(
    sel: Dict[str, Any], options: Dict[str, Any], defs: Optional[Dict[str, Any]]
) -> Dict[str, Any]:
    """The `cue` request: the record length, the picture's source range, the markers;
    `defs`: the knob table the engine serves (which panel values are knobs)."""
    req = vc.split_options(options, defs)
    req["duration_s"] = (sel["end"] - sel["start"]) / sel["fps"]
    req["name"] = sel["name"]
    req["position_s"] = max(0.0, sel["start"] / sel["fps"])  # the stem's BWF time reference
    if sel["media"]:
        req.update(media=sel["media"], start_s=sel["src_in"], end_s=sel["src_out"])
        if req["end_s"] <= req["start_s"]:  # a still or a freeze: one frame's worth
            req["end_s"] = req["start_s"] + 1.0 / sel["fps"]
    elif "text" not in req:
        req["text"] = vc.fallback_text(req["knobs"], defs)
    if sel.get("markers"):
        req["markers"] = sel["markers"]
    return req


# -- the whole timeline ------------------------------------------------------------------------
def timeline(scene: Any) -> Dict[str, Any]:
    """{"otio": OTIO dict, "origin": first frame, "fps", "markers"}: one OTIO track per used
    channel (our own channels left out); metas opened, speed effects applied."""
    se = scene.sequence_editor
    if se is None:
        raise vc.PluginError("This scene has no Video Sequencer strips.", "nothing_selected")
    fps = fps_of(scene)
    by_channel = {}  # type: Dict[int, List[Dict[str, Any]]]
    inputs = {s.input_1.name for s in children(se) if s.type == "SPEED" and s.input_1}
    for s in children(se):
        if is_ours(se, s) or s.name in inputs:  # an effect's input shows through the effect
            continue
        if s.type == "SOUND":
            path = abs_path(s.sound.filepath) if s.sound else ""
            a, b = s.frame_final_start, s.frame_final_end
            sound = {"path": path, "in": a, "out": b, "src_in": (a - s.frame_start) / fps}
            sound.update(src_out=(b - s.frame_start) / fps, name=s.name, speed=1.0)
            sound["channel"] = s.channel
            by_channel.setdefault(s.channel, []).append(dict(sound, audio=True))
            continue
        for p in parts(s, -1e12, 1e12, fps):
            by_channel.setdefault(s.channel, []).append(p)
    clips = [p for ps in by_channel.values() for p in ps]
    if not any(not p.get("audio") for p in clips):
        raise vc.PluginError("The timeline has no movie or image strips to score.", "nothing")
    origin = min(0, min(int(p["in"]) for p in clips))
    tracks = []
    for ch in sorted(by_channel):
        items = by_channel[ch]
        kind = "Audio" if all(p.get("audio") for p in items) else "Video"
        tracks.append(
            {
                "name": channel_name(se, ch) or f"Channel {ch}",
                "kind": kind,
                "clips": [_clip(p, fps, origin) for p in items],
            }
        )
    markers = markers_in(scene, -1e12, 1e12, fps, origin)
    doc = vc.otio_timeline(
        scene.name or "Blender scene",
        fps,
        tracks,
        origin / fps,
        {"blender": {"fps": fps, "origin_frame": origin, "markers": markers}},
    )
    return {"otio": doc, "origin": origin, "fps": fps, "markers": markers}


def _clip(p: Dict[str, Any], fps: float, origin: int) -> Dict[str, Any]:
    return {
        "name": p["name"],
        "record_in_s": (p["in"] - origin) / fps,
        "duration_s": (p["out"] - p["in"]) / fps,
        "source_in_s": p["src_in"],
        "rate": p.get("speed", 1.0),
        "path": p["path"],
        "metadata": {"blender": {"channel": p["channel"], "speed": p.get("speed", 1.0)}},
    }


def frame_range(cue: Dict[str, Any], tl: Dict[str, Any], start_s: float) -> Tuple[int, int]:
    """A soundtrack cue's (first frame, frames) on the Blender timeline."""
    fps, origin = tl["fps"], tl["origin"]
    first = origin + int(round((float(cue["record_in_s"]) - start_s) * fps))
    last = origin + int(round((float(cue["record_out_s"]) - start_s) * fps))
    return first, last - first

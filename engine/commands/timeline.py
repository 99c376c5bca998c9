"""`vmb plan TIMELINE` (cues for a selection) and `vmb probe MEDIA` (what the engine sees)."""

from __future__ import annotations

import argparse
from pathlib import Path

from bridge import timeline as tl
from engine import media
from engine.commands.common import print_json


def _scene_cuts(request: tl.CueRequest) -> tuple[float, ...]:
    if request.media_status == "missing":
        return ()
    return media.detect_cuts(request.media_path, request.source_in_s, request.source_out_s)


def add_timeline_args(p: argparse.ArgumentParser) -> None:
    """What every command that reads a timeline takes: frame rate, media roots."""
    p.add_argument(
        "--rate",
        type=float,
        default=None,
        metavar="FPS",
        help="frame rate of an EDL (default: the common rate its timecodes fit)",
    )
    p.add_argument(
        "--media-root",
        action="append",
        default=[],
        metavar="DIR",
        help="relink missing media found under DIR, by path tail then file name (repeatable)",
    )
    p.add_argument(
        "--require-media",
        action="store_true",
        help="missing media is an error (default: cues without picture are scored from the cut)",
    )


_MARK = {"found": "", "relinked": "  [relinked]", "missing": "  [MISSING MEDIA]"}


def _print_plan(args: argparse.Namespace, loaded: tl.Loaded, plan: tl.CuePlan) -> None:
    timeline, rate = loaded.timeline, tl.timeline_rate(loaded.timeline)
    first, end = tl.timeline_extent(timeline)
    print(
        f"{args.timeline}: {len(plan.cues)} cue(s); timeline {tl.timecode(first, rate)}-"
        f"{tl.timecode(end, rate)} at {rate:g} fps"
    )
    for note in loaded.notes:
        print(f"  note: {note}")
    for cue in plan.cues:
        p = cue.primary
        after = f"  after {cue.continue_from}" if cue.continue_from else ""
        name = Path(p.media_path).name if p.media_path else "(no media path)"
        print(
            f"  {cue.cue_id}  {tl.timecode(cue.record_in_s, rate)}-"
            f"{tl.timecode(cue.record_out_s, rate)}  {cue.duration_s:7.2f} s  "
            f"{p.clip_id} {p.clip_name!r}  {name} "
            f"{p.source_in_s:.3f}-{p.source_out_s:.3f} s  x{p.speed:g}"
            f"  ({len(cue.segments)} piece(s), {len(cue.cut_times_s)} cut(s), "
            f"{len(cue.markers)} marker(s)){after}{_MARK[cue.media_status]}"
        )
        for s in cue.segments:
            if s.media_status != "found":
                print(f"      {s.clip_id} {s.media_status}: {s.media_original} ({s.media_note})")
                if s.media_status == "relinked":
                    print(f"        -> {s.media_path}")


def _plan(args: argparse.Namespace) -> int:
    loaded = tl.load_timeline(args.timeline, rate=args.rate)
    timeline = loaded.timeline
    rate = tl.timeline_rate(timeline)
    if args.range:
        selection = tl.Selection.range(*tl.parse_range(args.range, rate))
    elif args.clip:
        selection = tl.Selection.of_clip(args.clip)
    else:
        selection = tl.Selection()
    options = tl.PlanOptions(
        per=args.per,
        min_length_s=args.min_length,
        max_length_s=args.max_length,
        continuous=args.continuous,
    )
    scenes = args.scenes or args.per == "scene"
    plan = tl.plan_selection(
        timeline,
        selection,
        options,
        scene_cuts=_scene_cuts if scenes else None,
        require_media=args.require_media,
        media=tl.MediaFinder(args.media_root, base_dir=Path(args.timeline).parent),
    )
    if args.json:
        print_json({**plan.to_json(), "notes": list(loaded.notes)})
        return 0
    _print_plan(args, loaded, plan)
    return 0


def _probe(args: argparse.Namespace) -> int:
    info = media.probe(args.media)
    cuts: tuple[float, ...] = ()
    motion: float | None = None
    start, end = args.start or 0.0, args.end if args.end is not None else info.duration_s
    if info.has_video and not info.is_image:
        seen = media.visual_input(args.media, args.start, args.end, n_frames=0)
        cuts, motion = seen.cut_times_s, seen.motion_energy
        end = start + seen.duration_s
    if args.json:
        print_json(
            {
                **info.to_json(),
                "start_s": start,
                "end_s": end,
                "cut_times_s": list(cuts),
                "motion_energy": motion,
            }
        )
        return 0
    parts = [f"{info.duration_s:.3f} s"]
    if info.has_video:
        parts.append(f"{info.width}x{info.height} {info.codec} {info.pix_fmt}")
        parts.append(f"{info.rate:g} fps" + (" (variable)" if info.variable_frame_rate else ""))
    if info.has_audio:
        parts.append(f"audio {info.audio_rate} Hz x{info.audio_channels}")
    print(f"{args.media}: " + ", ".join(parts))
    if motion is not None:
        shown = ", ".join(f"{c:.3f}" for c in cuts) or "none"
        print(f"  {start:.3f}-{end:.3f} s: scene cuts at {shown}; motion energy {motion:.4f}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plan", help="music cues for a timeline selection (OTIO, XML, EDL)")
    p.add_argument("timeline", help=".otio, .otioz, .otiod, FCP 7 .xml, .fcpxml or CMX 3600 .edl")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--range", metavar="START-END", help="seconds or HH:MM:SS:FF, one cue")
    which.add_argument("--clip", metavar="NAME", help="a clip name or id (e.g. V1.3), one cue")
    which.add_argument("--all", action="store_true", help="the whole timeline (default)")
    p.add_argument("--per", choices=["clip", "scene"], default="clip", help="whole timeline")
    p.add_argument("--min-length", type=float, default=4.0, help="merge shorter cues (s)")
    p.add_argument("--max-length", type=float, default=120.0, help="split longer cues (s)")
    p.add_argument("--scenes", action="store_true", help="detect scene cuts in the media")
    p.add_argument("--continuous", action="store_true", help="chain key and tempo across cues")
    add_timeline_args(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_plan)

    q = sub.add_parser("probe", help="duration, rate, scene cuts and motion of a media file")
    q.add_argument("media")
    q.add_argument("--start", type=float, default=None, help="range start (media seconds)")
    q.add_argument("--end", type=float, default=None, help="range end (media seconds)")
    q.add_argument("--json", action="store_true", help="machine-readable output")
    q.set_defaults(func=_probe)

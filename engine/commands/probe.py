"""`vmb probe MEDIA`: duration, rate, scene cuts and motion of a media file."""

from __future__ import annotations

import argparse

from engine import media
from engine.commands.common import print_json


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
    q = sub.add_parser("probe", help="duration, rate, scene cuts and motion of a media file")
    q.add_argument("media")
    q.add_argument("--start", type=float, default=None, help="range start (media seconds)")
    q.add_argument("--end", type=float, default=None, help="range end (media seconds)")
    q.add_argument("--json", action="store_true", help="machine-readable output")
    q.set_defaults(func=_probe)

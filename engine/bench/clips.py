"""A short demo clip with scene cuts and a Resolve-style OTIO timeline over it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import opentimelineio as otio
from opentimelineio.opentime import RationalTime, TimeRange

from bridge.errors import MediaError, MissingDependency

RATE = 24
# (lavfi source, seconds): three shots of different colour, brightness and motion
SHOTS = (
    ("mandelbrot=size=640x360:rate=24", 5.0),
    ("testsrc2=size=640x360:rate=24,hue=s=0.4", 4.0),
    ("life=size=640x360:rate=24:mold=10:ratio=0.5:death_color=#102040:life_color=#ffd080", 5.0),
)


def make_demo_clip(path: Path) -> list[float]:
    """Encode the shots into one H.264 file; returns the cut times in seconds."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise MissingDependency("ffmpeg is needed for the demo clip: apt-get install ffmpeg")
    cmd = [ffmpeg, "-y", "-loglevel", "error"]
    for src, seconds in SHOTS:
        cmd += ["-f", "lavfi", "-t", str(seconds), "-i", src]
    chain = "".join(f"[{i}:v]format=yuv420p,setsar=1[v{i}];" for i in range(len(SHOTS)))
    chain += "".join(f"[v{i}]" for i in range(len(SHOTS))) + f"concat=n={len(SHOTS)}:v=1[out]"
    tmp = path.with_name(f".{path.name}.part.mp4")
    cmd += [
        "-filter_complex",
        chain,
        "-map",
        "[out]",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-g",
        "48",
        "-r",
        str(RATE),
        str(tmp),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise MediaError(f"ffmpeg could not make the demo clip: {proc.stderr.strip()[-300:]}")
    tmp.replace(path)
    cuts, t = [], 0.0
    for _, seconds in SHOTS[:-1]:
        t += seconds
        cuts.append(t)
    return cuts


def make_demo_timeline(clip: Path, out: Path) -> Path:
    """One video track with each shot as its own clip, starting at 01:00:00:00 like Resolve."""
    timeline = otio.schema.Timeline(name="VMB demo")
    timeline.global_start_time = RationalTime(3600 * RATE, RATE)
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    total = sum(s for _, s in SHOTS)
    ref = otio.schema.ExternalReference(
        target_url=otio.url_utils.url_from_filepath(str(clip)),
        available_range=TimeRange(RationalTime(0, RATE), RationalTime(total * RATE, RATE)),
    )
    t = 0.0
    for i, (_, seconds) in enumerate(SHOTS, 1):
        track.append(
            otio.schema.Clip(
                name=f"shot {i}",
                media_reference=ref.clone(),
                source_range=TimeRange(
                    RationalTime(t * RATE, RATE), RationalTime(seconds * RATE, RATE)
                ),
            )
        )
        t += seconds
    timeline.tracks.append(track)
    otio.adapters.write_to_file(timeline, str(out))
    return out

"""The one clip generator: synthetic clips with cuts at known times (ffmpeg lavfi sources),
used by the demo, the benchmarks and the tests; and the demo's Resolve-style OTIO timeline."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import opentimelineio as otio
from opentimelineio.opentime import RationalTime, TimeRange

from bridge.errors import MediaError, MissingDependency

Shot = tuple[str, float] | tuple[str, float, str]  # lavfi source, seconds[, own filter]

# (lavfi source, seconds): five 6 s shots with different content and motion
BENCH_SHOTS: tuple[Shot, ...] = (
    ("testsrc2", 6.0),
    ("gradients=speed=0.05", 6.0),
    ("smptehdbars", 6.0),
    ("testsrc", 6.0),
    ("cellauto=rule=110", 6.0),
)


def synthetic_video(
    path: str | Path,
    shots: Sequence[Shot],
    size: tuple[int, int] = (320, 180),
    rate: float = 30,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    audio_hz: float | None = None,
    post_filter: str | None = None,
    extra: Sequence[str] = (),
    audio_file: str | Path | None = None,
) -> Path:
    """Encode shots of lavfi sources back to back (cuts at the shot boundaries), with an
    optional sine tone (`audio_hz`) or an audio file (`audio_file`, cut to the picture) as
    audio. A shot is (source, seconds) or (source, seconds, filter). `post_filter` runs on
    the joined shots (e.g. setpts for variable frame rate); `extra` goes before the output
    name (e.g. -fps_mode)."""
    if shutil.which("ffmpeg") is None:
        raise MissingDependency("ffmpeg is needed to make clips: apt-get install ffmpeg")
    args: list[str] = []
    chains, labels = [], ""
    for i, (source, seconds, *shot_filter) in enumerate(shots):
        sep = ":" if "=" in source else "="
        args += ["-f", "lavfi", "-i", f"{source}{sep}s={size[0]}x{size[1]}:r={rate}"]
        own = "".join(f"{f}," for f in shot_filter)
        chains.append(
            f"[{i}:v]trim=duration={seconds},setpts=PTS-STARTPTS,{own}format={pix_fmt}[v{i}]"
        )
        labels += f"[v{i}]"
    joined = f"{labels}concat=n={len(shots)}:v=1:a=0"
    graph = ";".join([*chains, f"{joined},{post_filter}[v]" if post_filter else f"{joined}[v]"])
    maps = ["-map", "[v]"]
    if audio_hz is not None:
        total = sum(shot[1] for shot in shots)
        args += ["-f", "lavfi", "-i", f"sine=frequency={audio_hz}:sample_rate=48000:d={total}"]
        maps += ["-map", f"{len(shots)}:a", "-c:a", "aac"]
    elif audio_file is not None:
        total = sum(shot[1] for shot in shots)
        args += ["-i", str(audio_file)]
        maps += ["-map", f"{len(shots)}:a", "-c:a", "aac", "-t", f"{total}"]
    tuning = ["-preset", "veryfast"] if codec == "libx264" else []
    command = [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args,
        "-filter_complex", graph, *maps, "-c:v", codec, *tuning, "-pix_fmt", pix_fmt,
        *extra, str(path),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise MediaError(f"ffmpeg could not make {path}: {done.stderr.strip()[-500:]}")
    return Path(path)


SPEECH = (
    (4.0, "We need to talk about the music in this scene."),
    (17.0, "Keep it under the dialogue, and let it breathe after the cut."),
)


def with_dialogue(video: Path, out: Path, lines=SPEECH) -> Path:
    """The clip with spoken lines (espeak-ng) at the given times as its audio track, so that
    dialogue ducking runs as it does on a real edit."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise MissingDependency(
            "espeak-ng is needed for clips with dialogue: apt-get install espeak-ng"
        )
    inputs: list[str] = []
    chains = []
    for i, (at_s, words) in enumerate(lines):
        wav = out.with_name(f".{out.stem}.line{i}.wav")
        subprocess.run([espeak, "-w", str(wav), words], check=True, capture_output=True)
        inputs += ["-i", str(wav)]
        ms = int(at_s * 1000)
        chains.append(f"[{i + 1}:a]aresample=48000,adelay={ms}|{ms}[s{i}]")
    mixdown = "".join(f"[s{i}]" for i in range(len(lines)))
    graph = ";".join([*chains, f"{mixdown}amix=inputs={len(lines)}:normalize=0,apad[a]"])
    command = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", str(video), *inputs,
               "-filter_complex", graph, "-map", "0:v", "-map", "[a]", "-c:v", "copy",
               "-c:a", "aac", "-shortest", str(out)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise MediaError(f"ffmpeg could not add dialogue to {video}: {done.stderr.strip()[-300:]}")
    return out


RATE = 24
# three shots of different colour, brightness and motion
SHOTS: tuple[Shot, ...] = (
    ("mandelbrot", 5.0),
    ("testsrc2", 4.0, "hue=s=0.4"),
    ("life=mold=10:ratio=0.5:death_color=#102040:life_color=#ffd080", 5.0),
)


def make_demo_clip(path: Path) -> list[float]:
    """Encode the demo shots into one H.264 file; returns the cut times in seconds."""
    tmp = path.with_name(f".{path.name}.part.mp4")
    synthetic_video(tmp, SHOTS, size=(640, 360), rate=RATE, extra=["-g", "48"])
    tmp.replace(path)
    cuts, t = [], 0.0
    for shot in SHOTS[:-1]:
        t += shot[1]
        cuts.append(t)
    return cuts


def make_demo_timeline(clip: Path, out: Path) -> Path:
    """One video track with each shot as its own clip, starting at 01:00:00:00 like Resolve."""
    timeline = otio.schema.Timeline(name="VMB demo")
    timeline.global_start_time = RationalTime(3600 * RATE, RATE)
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    total = sum(shot[1] for shot in SHOTS)
    ref = otio.schema.ExternalReference(
        target_url=otio.url_utils.url_from_filepath(str(clip)),
        available_range=TimeRange(RationalTime(0, RATE), RationalTime(total * RATE, RATE)),
    )
    t = 0.0
    for i, (_, seconds, *_f) in enumerate(SHOTS, 1):
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

"""MIDI -> audio with FluidSynth and an MIT General MIDI soundfont.

In process through libfluidsynth where it loads (libfluid: no program started, the soundfont
kept loaded between renders), else the `fluidsynth` CLI; both give the same samples for the
same MIDI (the library path plays it exactly as `fluidsynth -F` does), which keeps the draft
bit-reproducible per seed whichever ran. Dynamic sample loading reads only the presets the cue
uses. The MIDI ends with "all sound off" so FluidSynth stops rendering at the cue end instead
of waiting for every release tail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf

from bridge.errors import ConfigError, JobError, MissingDependency
from engine.generate.draft import libfluid

SOUNDFONT_CANDIDATES = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf3/MuseScore_General_Lite.sf3",
    "/usr/share/sounds/sf3/MuseScore_General.sf3",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/sounds/sf3/default-GM.sf3",
)
INSTALL_HINT = "apt-get install fluid-soundfont-gm"
_GPL_SOUNDFONTS = ("timgm6mb",)
RENDER_TIMEOUT_S = 300  # GPL-2: never rendered into a user's stem


def _is_gpl(path: Path) -> bool:
    names = {path.name.lower(), path.resolve().name.lower()}
    return any(g in n for g in _GPL_SOUNDFONTS for n in names)


def find_soundfont(
    configured: str = "", candidates: tuple[str, ...] = SOUNDFONT_CANDIDATES
) -> Path:
    """The configured soundfont, else the first MIT General MIDI soundfont installed."""
    if configured:
        path = Path(configured).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"draft.soundfont {str(path)!r} does not exist; set it to a General MIDI "
                f"soundfont (.sf2/.sf3) or leave it empty to use {SOUNDFONT_CANDIDATES[0]} "
                f"({INSTALL_HINT})"
            )
        if _is_gpl(path):
            raise ConfigError(
                f"draft.soundfont {str(path)!r} is TimGM6mb (GPL-2), which VMB Score does not "
                f"render with; use FluidR3_GM (MIT): {INSTALL_HINT}"
            )
        return path
    for cand in candidates:
        path = Path(cand)
        if path.is_file() and not _is_gpl(path):
            return path
    raise MissingDependency(
        "no General MIDI soundfont found for the draft backend (looked for "
        + ", ".join(candidates)
        + f"); install one with `{INSTALL_HINT}` or set draft.soundfont in config.toml"
    )


def find_fluidsynth() -> str:
    exe = shutil.which("fluidsynth")
    if exe is None:
        raise MissingDependency(
            "FluidSynth is not installed (neither libfluidsynth 2.x nor the fluidsynth "
            "program); install it with `apt-get install fluidsynth` (macOS: "
            "`brew install fluid-synth`)"
        )
    return exe


def renderer() -> str:
    """Which FluidSynth renders here (the cue's ``extra`` records it)."""
    lib = libfluid.library()
    return f"{lib.version} in process" if lib is not None else "fluidsynth CLI"


def _command(exe: str, soundfont: Path, midi: Path, out: Path, sample_rate: int, gain: float):
    return [
        exe, "-ni", "-q", "-g", f"{gain:g}", "-r", str(int(sample_rate)),
        "-O", "float", "-T", "wav", "-o", "synth.dynamic-sample-loading=1",
        "-F", str(out), str(soundfont), str(midi),
    ]  # fmt: skip


def _run_all(commands: list[list[str]], env: dict[str, str]) -> list[tuple[int, str, str]]:
    """Run the renders in parallel; (exit code, stdout, stderr) each. None outlives the call."""
    procs = []
    try:
        for cmd in commands:
            procs.append(
                subprocess.Popen(
                    cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
                )
            )
        results = []
        for proc in procs:
            try:
                stdout, stderr = proc.communicate(timeout=RENDER_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                raise JobError(
                    f"fluidsynth did not finish rendering within {RENDER_TIMEOUT_S} s"
                ) from None
            results.append((proc.returncode, stdout, stderr))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return results


def _read_render(code: int, stdout: str, stderr: str, out: Path, sample_rate: int) -> np.ndarray:
    """One render's WAV as stereo float32, or the JobError that says why there is none."""
    if code != 0 or not out.exists():
        detail = (stderr or stdout or "").strip().splitlines()[-3:]
        raise JobError(f"fluidsynth failed (exit {code}): {' | '.join(detail)}")
    audio, sr = sf.read(str(out), dtype="float32", always_2d=True)
    if sr != sample_rate:
        raise JobError(f"fluidsynth rendered at {sr} Hz instead of {sample_rate} Hz")
    if audio.shape[1] == 1:
        audio = np.repeat(audio, 2, axis=1)
    return audio[:, :2]


def render_cli(
    paths: Sequence[Path], soundfont: Path, sample_rate: int, gain: float
) -> list[np.ndarray]:
    """Each file rendered by its own `fluidsynth -F` process, all in parallel."""
    exe = find_fluidsynth()
    env = dict(os.environ)
    env.setdefault("LC_ALL", "C")
    with tempfile.TemporaryDirectory(prefix="vmb-render-") as tmp:
        outs = [Path(tmp) / f"render{i}.wav" for i in range(len(paths))]
        commands = [
            _command(exe, soundfont, midi, out, sample_rate, gain)
            for midi, out in zip(paths, outs, strict=True)
        ]
        results = _run_all(commands, env)
        return [
            _read_render(code, stdout, stderr, out, sample_rate)
            for (code, stdout, stderr), out in zip(results, outs, strict=True)
        ]


def render_library(
    paths: Sequence[Path],
    soundfont: Path,
    sample_rate: int,
    gain: float,
    frames: int | None = None,
) -> list[np.ndarray]:
    """Each file rendered in process, in parallel threads (the first in this one)."""

    def one(path: Path) -> np.ndarray:
        return libfluid.render_file(path, soundfont, sample_rate, gain, frames)

    if len(paths) == 1:
        return [one(paths[0])]
    with ThreadPoolExecutor(max_workers=len(paths) - 1) as pool:
        rest = [pool.submit(one, p) for p in paths[1:]]
        first = one(paths[0])
        return [first, *(f.result() for f in rest)]


def render_midi(
    midi_paths: Path | Sequence[Path],
    soundfont: Path,
    sample_rate: int,
    gain: float = 0.6,
    frames: int | None = None,
) -> np.ndarray:
    """Render MIDI to float32 stereo (samples, 2) at ``sample_rate``; at most ``frames``
    samples where given (the in-process render stops there: the rest would be trimmed).

    Several files (an arrangement split by parts) render in parallel and are summed: the
    synthesiser and its effects are linear, so the mix is the same music, and a fixed split
    keeps the result deterministic while using more than one core.
    """
    paths = [Path(midi_paths)] if isinstance(midi_paths, str | Path) else list(midi_paths)
    if libfluid.library() is not None:
        audios = render_library(paths, soundfont, sample_rate, gain, frames)
    else:
        audios = [a[:frames] for a in render_cli(paths, soundfont, sample_rate, gain)]
    mix = audios[0].copy()
    for audio in audios[1:]:
        if mix.shape[0] < audio.shape[0]:
            mix = np.pad(mix, ((0, audio.shape[0] - mix.shape[0]), (0, 0)))
        mix[: audio.shape[0]] += audio
    return np.ascontiguousarray(mix)

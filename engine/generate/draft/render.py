"""MIDI -> audio with the FluidSynth CLI and an MIT General MIDI soundfont.

The CLI renders a 30 s cue in about 0.5 s of CPU (dynamic sample loading reads only the
presets the cue uses), deterministically: the same MIDI gives the same samples, which keeps
the draft bit-reproducible per seed. The MIDI ends with "all sound off" so FluidSynth stops
rendering at the cue end instead of waiting for every release tail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf

from bridge.errors import ConfigError, JobError, MissingDependency

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
            "the fluidsynth program is not installed; install it with "
            "`apt-get install fluidsynth` (macOS: `brew install fluid-synth`)"
        )
    return exe


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


def render_midi(
    midi_paths: Path | Sequence[Path], soundfont: Path, sample_rate: int, gain: float = 0.6
) -> np.ndarray:
    """Render MIDI to float32 stereo (samples, 2) at ``sample_rate``.

    Several files (an arrangement split by parts) render in parallel processes and are summed:
    the synthesiser and its effects are linear, so the mix is the same music, and a fixed split
    keeps the result deterministic while using more than one core.
    """
    paths = [Path(midi_paths)] if isinstance(midi_paths, str | Path) else list(midi_paths)
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
        mix: np.ndarray | None = None
        for (code, stdout, stderr), out in zip(results, outs, strict=True):
            audio = _read_render(code, stdout, stderr, out, sample_rate)
            if mix is None:
                mix = audio.copy()
            else:
                n = max(mix.shape[0], audio.shape[0])
                if mix.shape[0] < n:
                    mix = np.pad(mix, ((0, n - mix.shape[0]), (0, 0)))
                mix[: audio.shape[0]] += audio
    assert mix is not None
    return np.ascontiguousarray(mix)

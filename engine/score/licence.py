"""What the user may do with the music a backend makes, computed from what is installed.

One function, `output_licence`, makes the statement; the WAV metadata, the cue sheets and
`vmb models list` all print what it returns, so they never disagree. The draft backend's
statement names the soundfont it rendered with; the full backend's lists the licence of each
installed model as the manifest (engine/models.json) records it, and any library track the
cue was conditioned on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from engine import weights

# The soundfonts the draft backend picks by itself (engine/generate/draft/render.py), by the
# file name's stem: their licence for the samples inside them.
MIT_SOUNDFONTS = {
    "fluidr3_gm": "FluidR3 GM soundfont (MIT)",
    "musescore_general": "MuseScore General soundfont (MIT)",
    "musescore_general_lite": "MuseScore General Lite soundfont (MIT)",
}
# Sonic Pi loops cut from the Amen break ("Amen, Brother", The Winstons, 1969): CC0 as Sonic Pi
# ships them, but among the most sampled recordings, so content-ID systems may flag them.
AMEN_LOOPS = frozenset({"loop_amen", "loop_amen_full"})
AMEN_NOTE = (
    'This cue layers a Sonic Pi loop cut from the Amen break (The Winstons, "Amen, Brother", '
    "1969). Sonic Pi releases it under CC0, but the break is one of the most sampled "
    "recordings: YouTube Content ID and rights holders may still claim it. For broadcast or "
    "monetised use, set layer_loops = false in the draft settings, or clear the claim."
)
COMPOSER_NOTE = (
    'Cue sheets name the composer as "VMB Score (machine-generated)" unless you pass '
    "--composer: rights societies (PRS, ASCAP, BMI, GEMA, SACEM ...) generally register only "
    "works with a human author, so name the person who made the creative choices, or "
    "expect no performance royalties."
)
# Models whose weights make or shape the audio of a full cue (describe/retrieve only steer it).
FULL_GENERATE = ("sao-1.0", "t5-base", "vmb-ecmg")


@dataclass(frozen=True)
class LicenceStatement:
    """`summary`: one line (CSV cells, WAV metadata); `lines`: the full statement."""

    backend: str
    summary: str
    lines: tuple[str, ...]

    def text(self) -> str:
        return "\n".join(self.lines)


def _soundfont_name(soundfont: str | None) -> str | None:
    """The MIT soundfont's name, or None for a soundfont the user configured themselves."""
    if not soundfont:
        return MIT_SOUNDFONTS["fluidr3_gm"]
    path = Path(soundfont)
    for cand in (path, path.resolve()):
        name = MIT_SOUNDFONTS.get(cand.stem.lower())
        if name:
            return name
    return None


def _draft(soundfont: str | None, samples: Sequence[str] = ()) -> LicenceStatement:
    font = _soundfont_name(soundfont)
    amen = any(Path(s).stem in AMEN_LOOPS for s in samples)
    if font is None:
        summary = (
            f"draft: composed by VMB Score (MIT) and rendered with your soundfont {soundfont}; "
            "that soundfont's licence decides what you may do with this music"
        )
        if amen:
            summary += "; its Amen-break loop (CC0) may draw Content ID claims"
        lines = (summary, *((AMEN_NOTE,) if amen else ()), COMPOSER_NOTE)
        return LicenceStatement("draft", summary, lines)
    summary = (
        f"draft: free to use, change, sell and broadcast without royalty or credit "
        f"(composed by VMB Score, MIT; rendered with the {font}; loops CC0)"
    )
    if amen:
        summary += "; its Amen-break loop (CC0) may draw Content ID claims"
    lines = (
        "Draft backend: the notes are written by VMB Score's own composer (MIT licence) and "
        f"played with the {font} and, where layered, CC0 Sonic Pi samples.",
        "The MIT and CC0 licences put no condition on audio made with them: you may use, "
        "edit, sell, broadcast and register the music for any production without royalties "
        "or credit. Only redistributing the soundfont file itself needs its MIT notice.",
        "Library tracks the draft consults lend it a tempo and a key, never their audio.",
        *((AMEN_NOTE,) if amen else ()),
        COMPOSER_NOTE,
    )
    return LicenceStatement("draft", summary, lines)


def _full(model_dir: Path, adapted: Sequence[str]) -> LicenceStatement:
    specs = weights.load_manifest()
    have = weights.installed(model_dir)
    lines = [
        "Full backend: the music is the output of the neural models installed in "
        f"{model_dir}; what you may do with it is what their licences allow:"
    ]
    terms = []
    for name, spec in specs.items():
        if name not in have:
            continue
        if have[name] == "random":
            lines.append(
                f"  {name} ({spec.component}): random test weights from `vmb models tiny`; "
                f"the released weights are under: {spec.licence}"
            )
            if name in FULL_GENERATE:
                terms.append(f"{name}: random test weights")
            continue
        url = f" <{spec.licence_url}>" if spec.licence_url else ""
        lines.append(f"  {name} ({spec.component}): {spec.licence}{url}")
        if name in FULL_GENERATE:
            terms.append(f"{name}: {spec.licence}")
    if not terms:
        lines.append("  (no generator weights installed: the full backend cannot run)")
    if adapted:
        titles = ", ".join(adapted)
        lines.append(
            f"This cue was conditioned on library music ({titles}); you need the rights to "
            "those tracks for every use of a cue that adapts them."
        )
    else:
        lines.append(
            "Library tracks used as references condition the music: you need the rights to "
            "any track a cue adapts (the cue sheet's source column names it)."
        )
    summary = (
        "full: under the licences of the weights that made it ("
        + ("; ".join(terms) or "none installed")
        + ")"
    )
    if adapted:
        summary += f"; adapts library music: {', '.join(adapted)}"
    lines.append(COMPOSER_NOTE)
    return LicenceStatement("full", summary, tuple(lines))


def output_licence(
    backend: str,
    model_dir: Path,
    soundfont: str | None = None,
    adapted: Sequence[str] = (),
    samples: Sequence[str] = (),
) -> LicenceStatement:
    """The licence statement for music made by `backend` with what is installed now.

    `soundfont`: the draft's rendering soundfont (None: the default FluidR3 GM);
    `adapted`: titles of library tracks whose audio conditioned a full cue;
    `samples`: loop files a draft cue layered (Cue.extra["loops"]).
    """
    if backend not in STATEMENTS:
        raise ValueError(f"unknown backend {backend!r} (with a statement: {', '.join(STATEMENTS)})")
    return STATEMENTS[backend](model_dir, soundfont, adapted, samples)


# the statement of each backend of engine/backends.py BACKENDS (a test checks they match)
STATEMENTS = {
    "draft": lambda model_dir, soundfont, adapted, samples: _draft(soundfont, samples),
    "full": lambda model_dir, soundfont, adapted, samples: _full(model_dir, adapted),
}

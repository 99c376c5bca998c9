"""Who plays what: the asked instruments (or the genre's band) -> parts with roles and channels.

A lead voice takes the melody, others comp, pad, arpeggiate or play counter-lines; a lone
melody instrument gets the genre's harmony instrument beside it, and a bass and drums are added
when the genre wants them. Every drum-channel part shares one kit.
"""

from __future__ import annotations

from engine.generate.draft import patches as pt
from engine.generate.draft import style as st
from engine.generate.draft.arrangement import ArrangeInput, Arrangement, Part
from engine.taxonomy import INSTRUMENTS

# instruments that can accompany themselves (chords and a bass line) when played alone
SELF_ACCOMPANYING = frozenset(
    {"piano", "electric-piano", "harp", "guitar", "acoustic-guitar", "electric-guitar", "organ",
     "strings", "marimba", "vibraphone"}
)  # fmt: skip

# General MIDI basses and the contrabass: a genre's bass patch, never another part's
BASS_PATCHES = frozenset(range(32, 40)) | {43}

Spec = tuple[str, int, list[str], bool]  # name, GM program (-1: drum channel), roles, added


def _genre_band(style: st.GenreStyle) -> list[Spec]:
    specs: list[Spec] = []
    for name, prog, role in style.band:
        for spec in specs:  # the same instrument twice (e.g. two synths) stays apart
            if spec[0] == name and spec[1] == prog:
                spec[2].append(role)
                break
        else:
            specs.append((name, prog, [role], False))
    return specs


def _take(key: str, pool: list[str], limit: int = 99) -> str | None:
    """The instrument of ``pool`` ranked best (lowest) for ``key``, removed from the pool."""
    ranked = [n for n in pool if getattr(st.TRAITS[n], key) < limit]
    if not ranked:
        return None
    best = min(ranked, key=lambda n: getattr(st.TRAITS[n], key))
    pool.remove(best)
    return best


def _lead_roles(
    melodic: list[str], rest: list[str]
) -> tuple[dict[str, list[str]], str | None, str | None, str | None]:
    """Roles of the asked melodic instruments; returns (roles, melody, comp, pad)."""
    roles: dict[str, list[str]] = {n: [] for n in melodic}
    if "bass" in melodic:
        roles["bass"].append("bass")
    pool = list(rest)
    melody = _take("melody", pool, limit=11)  # a lead voice (wind, bowed, mallets)
    if melody is None and len(rest) == 1 and rest[0] not in SELF_ACCOMPANYING:
        melody = _take("melody", pool)  # a lone cello or choir sings; others support
    comp = _take("comp", pool)
    pad = _take("pad", pool)
    if melody is None and pool:  # lead and chords on different instruments when there are two
        melody = _take("melody", pool)
    if melody:
        roles[melody].append("melody")
    if comp:
        roles[comp].append("comp")
    if pad:
        roles[pad].append("pad")
    for n in pool:
        roles[n].append("counter" if st.TRAITS[n].sustain else "arp")
    if melody is None and rest:
        lead = comp if comp and not st.TRAITS[comp].sustain else (pad or comp)
        if lead:
            roles[lead].append("melody")
    return roles, melody, comp, pad


def _add_bass(
    specs: list[Spec], roles: dict[str, list[str]], rest: list[str], style: st.GenreStyle
) -> None:
    """No bass asked for: a low harmony instrument carries it, or the genre's bass is added.
    A cello that only had a counter-line plays the bass instead (the orchestra's celli and
    basses: the low end an orchestral mix lacks when every line sits in the middle)."""
    if "cello" in rest and roles["cello"] == ["counter"] and not style.groove:
        roles["cello"] = ["bass"]
        return
    carrier = next(
        (n for n in rest if st.TRAITS[n].bass_ok
         and ("comp" in roles[n] or "pad" in roles[n]
              or (n == "cello" and "melody" not in roles[n]))),
        None,
    )  # fmt: skip
    if carrier and not style.groove:
        roles[carrier].append("bass")
    else:
        specs.append(("bass", style.bass_program, ["bass"], True))


def _program(name: str, roles: list[str], style: st.GenreStyle) -> int:
    """The genre's bass patch for a bass, the genre's own patch for an instrument its band
    names (funk's muted guitar, the blues' clean one) unless that is a bass patch, else the
    taxonomy's General MIDI one."""
    if roles == ["bass"]:
        return style.bass_program
    own = [p for n, p, role in style.band if n == name and p >= 0 and p not in BASS_PATCHES]
    return own[0] if own else INSTRUMENTS[name][1]


def _asked_band(spec: ArrangeInput, style: st.GenreStyle) -> list[Spec]:
    names = spec.instruments
    specs: list[Spec] = []
    melodic = [n for n in names if n not in ("drums", "percussion")]
    if not melodic:  # only drums asked for: the genre's band plays the music
        for name, prog, role in style.band:
            if prog != -1 and role != "timpani":
                specs.append((name, prog, [role], True))
    rest = [n for n in melodic if n != "bass"]
    roles, melody, comp, pad = _lead_roles(melodic, rest)
    if melody and not comp and not pad:
        # a lone melody instrument: the genre's harmony instrument supports it
        support = next(
            ((n, p) for n, p, r in style.band if r in ("comp", "pad", "arp")),
            ("pad", 89),
        )
        if support[0] in roles:
            roles[support[0]].append("comp")
        else:
            specs.append((support[0], support[1], ["comp"], True))
    if "bass" not in melodic and not any("bass" in x[2] for x in specs):
        _add_bass(specs, roles, rest, style)
    for n in melodic:
        if roles[n]:
            specs.append((n, _program(n, roles[n], style), roles[n], False))
    if "drums" in names:
        specs.append(("drums", -1, ["drums"], False))
    elif style.groove:
        specs.append(("drums", -1, ["drums"], True))
    if "percussion" in names:
        specs.append(("percussion", -1, ["perc"], False))
    if spec.genre == "cinematic" and not any(x[0] == "timpani" for x in specs):
        specs.append(("timpani", 47, ["timpani"], True))
    return specs


def assign_parts(spec: ArrangeInput, style: st.GenreStyle, has_cuts: bool) -> list[Part]:
    """The parts in channel order; a cue with cuts and no drums gets a part for the hits."""
    specs = _asked_band(spec, style) if spec.instruments else _genre_band(style)
    kit = style.kit
    if spec.genre == "jazz" and spec.energy == "low":
        kit = 40  # brushes
    have_drums = any(r in ("drums", "perc") for _, _, rs, _ in specs for r in rs)
    if spec.genre in st.ORCHESTRAL_AIR and not have_drums:  # the orchestra's cymbals: its air
        specs.append(("cymbals", -1, ["perc"], True))
        have_drums = True
    if has_cuts and not have_drums:
        orchestral = spec.genre in ("classical", "cinematic", "ambient")
        specs.append(("hits", -1, ["hits"], True))
        kit = 48 if orchestral else kit
    out: list[Part] = []
    channel = 0
    for name, prog, roles, added in specs:  # CC7 levels come later, from the notes (levels)
        if prog == -1:  # every part on the drum channel shares one kit
            out.append(Part(name, kit, tuple(roles), 9, added))
            continue
        if channel == 9:
            channel += 1
        prog = pt.MONO_SAFE.get(prog, prog)
        out.append(Part(name, prog, tuple(roles), min(channel, 15), added))
        channel += 1
    return out


def section_level(arr: Arrangement, label: str) -> int:
    """The CC11 value of a section label (style.SECTION_EXPRESSION). High-energy cues already
    lift by layers (full drums, timpani, cymbals), so their A sections dip half as far; held
    textures that lift little by layers (style.SECTION_DEPTH) dip further, their intro too."""
    depth = 0.5 if arr.energy == "high" else st.SECTION_DEPTH.get(arr.genre, 1.0)
    if label == "intro" and depth > 1.0:  # whose intro would play over its A: at the A's
        label = "A"
    return round(127 - depth * (127 - st.SECTION_EXPRESSION.get(label, 120)))


def section_expression(arr: Arrangement, held_end: bool = True) -> None:
    """CC11 per section: a B section lifts over its A by level as well as by layers, and a
    held final chord sits under the climax. A button or cut ending's final hit is the climax:
    it keeps the level of the section before it."""
    level = 127
    for sec in arr.sections:
        beat = arr.bars[sec.bars[0]].start
        if sec.label != "end" or held_end:
            level = section_level(arr, sec.label)
        for pi in range(len(arr.parts)):
            arr.ccs.append((pi, beat, 11, level))

"""Who plays what: the asked instruments (or the genre's band) -> parts with roles and channels.

A lead voice takes the melody, others comp, pad, arpeggiate or play counter-lines; a lone
melody instrument gets the genre's harmony instrument beside it, and a bass and drums are added
when the genre wants them. Every drum-channel part shares one kit.
"""

from __future__ import annotations

from engine.generate.draft import style as st
from engine.generate.draft.arrangement import ArrangeInput, Part
from engine.taxonomy import INSTRUMENTS

# instruments that can accompany themselves (chords and a bass line) when played alone
SELF_ACCOMPANYING = frozenset(
    {"piano", "electric-piano", "harp", "guitar", "acoustic-guitar", "electric-guitar", "organ",
     "strings", "marimba", "vibraphone"}
)  # fmt: skip

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
    if melody is None and len(pool) > 0 and comp is None and pad is None:
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
    """No bass asked for: a low harmony instrument carries it, or the genre's bass is added."""
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
            specs.append((n, INSTRUMENTS[n][1], roles[n], False))
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
    if has_cuts and not have_drums:
        orchestral = spec.genre in ("classical", "cinematic", "ambient")
        specs.append(("hits", -1, ["hits"], True))
        kit = 48 if orchestral else kit
    out: list[Part] = []
    channel = 0
    for name, prog, roles, added in specs:
        if prog == -1:  # every part on the drum channel shares one kit
            out.append(Part(name, kit, tuple(roles), 9, added))
            continue
        if channel == 9:
            channel += 1
        out.append(Part(name, prog, tuple(roles), min(channel, 15), added))
        channel += 1
    return out

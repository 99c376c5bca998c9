"""The draft-quality report's summary: per cue (over seeds, worst case) figures, every target
checked as pass/fail, and the markdown tables (engine.eval.draft_quality measures the cues).

A figure that could not be measured (no intro, no B section, one seed only) fails the check
that needs it, unless the check says it does not apply: an empty measure is never a pass.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np

from engine.eval import draft_measures as dm
from engine.eval import draft_notes as dn

GROOVE = ("pop", "electronic", "funk", "hip-hop", "jazz", "latin", "lofi", "rock", "blues")
FAST_HARMONY = ("funk", "pop", "latin")  # change chords at least once a bar, faster than ballads
EXPRESSIVE = ("jazz", "funk", "latin", "blues", "classical", "folk")  # feel: jitter, dynamics
ORCHESTRAL = ("cinematic", "classical")  # (and every epic cue): spectral balance
BASS_PATCHES = range(32, 40)  # GM bass programs
TARGETS: dict[str, Any] = {
    "correlation_min": 0.2,
    "mono_loss_max_db": 3.0,
    "groove_gap_max_db": 12.0,
    "lead_vs_band_db": (-8.0, -1.0),
    "silent_under_loudest_db": 18.0,
    "intro_gap_max_lu": 10.0,
    "b_lift_lu": (2.0, 6.0),
    "dip_max_lu": 10.0,
    "jaccard_max": 0.8,
    "forms_min": 2,
    "distinct_bpm_per_bucket_min": 3,
    "distinct_bass_programs_min": 5,
    "fast_harmony_changes_per_bar_min": 0.9,
    "above_4k_min": 0.01,
    "mid_250_1k_max": 0.45,
    "melody_below_chord_b_max": 0.10,
    "jitter_min_ms": 5.0,
    "velocity_sd_min": 9.0,
    "delivered_lufs_tolerance_lu": 1.0,
    "band_max": 6,
    "end_hold_max_s": 5.0,
    "dead_tail_max_s": 1.5,
}

Check = Callable[[dict[str, Any]], "tuple[bool, Any] | None"]  # None: does not apply


def _mean_jaccard(sets: list[set]) -> float | None:
    pairs = [dm.jaccard(a, b) for a, b in itertools.combinations(sets, 2) if a or b]
    return round(float(np.mean(pairs)), 3) if pairs else None


def _sets(rows: list[dict[str, Any]], key: str) -> list[set]:
    return [{tuple(x) if isinstance(x, list) else x for x in r[key]} for r in rows]


def _vals(rows: list[dict[str, Any]], key: str) -> list[Any]:
    return [r[key] for r in rows if r.get(key) is not None]


def _mean(xs: list[float], nd: int = 3) -> float | None:
    return round(float(np.mean(xs)), nd) if xs else None


def _delivered_summary(deliv: list[dict[str, Any]]) -> dict[str, Any]:
    """The delivered cue.wav over the seeds, worst case."""
    return {
        "delivered_corr_min": min((d["correlation"] for d in deliv), default=None),
        "delivered_mono_max": max((d["mono_loss_db"] for d in deliv), default=None),
        "delivered_lufs_off": max((abs(d["lufs"] - d["target_lufs"]) for d in deliv), default=None),
        "delivered_clipped": max((d["clipped"] for d in deliv), default=None),
        "delivered_length_ok": all(d["samples_ok"] for d in deliv) if deliv else None,
    }


def _form_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The form over the seeds: how many, its units, the short-cue rule, the end."""
    return {
        "forms": len({tuple(tuple(x) for x in r["form_units"]) for r in rows}),
        "cue_bars_max": max(_vals(rows, "cue_bars"), default=None),
        "short_rule": sorted({u for r in rows for u in r.get("short_rule", [])}),
        "end_hold_max": max(_vals(rows, "end_hold_s"), default=None),
        "dead_tail_max": max(_vals(rows, "dead_tail_s"), default=None),
        "odd_units": sorted({u for r in rows for u in r["odd_units"]}),
    }


def _cue_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One cue over its seeds: worst case for targets, means for descriptive figures."""
    r0 = rows[0]
    lifts = [x for r in rows for x in r["b_lift_lu"]]
    layers = [r["intro_layers"] for r in rows]
    reg_b = [r["melody_below_chord"].get("B") for r in rows]
    out = {
        "cue": r0["cue"], "genre": r0["genre"], "mood": r0["mood"], "tempo": r0["tempo"],
        "seeds": len(rows), "bpms": sorted({r["bpm"] for r in rows}),
        "parts": min(len(r["parts"]) for r in rows),
        "named": len(r0.get("named", [])),
        "missing_named": sorted({n for r in rows for n in r.get("named", [])
                                 if n not in r["instruments"]}),
        "corr_min": min(_vals(rows, "correlation")),
        "mono_loss_max": max(_vals(rows, "mono_loss_db")),
        **_delivered_summary([r["delivered"] for r in rows if r.get("delivered")]),
        "drums_gap_max": max(_vals(rows, "drums_gap_db"), default=None),
        "bass_gap_max": max(_vals(rows, "bass_gap_db"), default=None),
        "lead_vs_band_min": min(_vals(rows, "lead_vs_band_db"), default=None),
        "lead_vs_band_max": max(_vals(rows, "lead_vs_band_db"), default=None),
        "no_intro": sum(lay is None for lay in layers),
        "intro_gap_max": max(_vals(rows, "intro_gap_lu"), default=None),
        "intro_flat": sum(lay is not None and not _builds(lay) for lay in layers),
        "intro_layers": [f"{x['first_half']}>{x['second_half']}/{x['a']}" for x in layers if x],
        "no_b": sum(not r["b_lift_lu"] for r in rows),
        "b_lift_min": min(lifts) if lifts else None, "b_lift_max": max(lifts) if lifts else None,
        "loudest_not_climax": sum(not r["loudest_is_climax"] for r in rows),
        "loudest_s": [r["loudest_s"] for r in rows],
        "dip_max": max(_vals(rows, "deepest_dip_lu"), default=None),
        "changes_per_bar": _mean(_vals(rows, "chord_changes_per_bar"), 2),
        "bars_per_chord": _mean(_vals(rows, "bars_per_chord"), 2),
        **_form_summary(rows),
        "silent": sorted({s for r in rows for s in r["silent"]}),
        "shared_patch": sum(bool(r["lead_lead_chords_same_patch"]) for r in rows),
        "lead_programs": sorted({r["lead_program"] for r in rows if r["lead_program"] is not None}),
        "bass_programs": sorted({r["bass_program"] for r in rows if r["bass_program"] is not None}),
        "lead_on_bass_or_same": sum(_lead_patch_bad(r) for r in rows),
        "above_4k_min": min(_vals(rows, "above_4k")),
        "mid_250_1k_max": max(_vals(rows, "mid_250_1k")),
        "melody_below_b_max": max((x for x in reg_b if x is not None), default=None),
        "no_b_register": sum(x is None for x in reg_b),
        "melody_below_all": _mean([v for r in rows for v in r["melody_below_chord"].values()]),
        "jitter_ms": _mean(_vals(rows, "jitter_ms"), 2),
        "push_ms": _mean(_vals(rows, "push_ms"), 2),
        "swing_ratio": _mean(_vals(rows, "swing_ratio"), 2),
        "velocity_sd": _mean(_vals(rows, "velocity_sd"), 2),
        "beat_regularity": _mean(_vals(rows, "beat_regularity")),
        "key_clarity": _mean(_vals(rows, "key_clarity")),
        "repetition": _mean(_vals(rows, "repetition")),
        "lra": _mean(_vals(rows, "lra_lu"), 2),
        "clipped": max(_vals(rows, "clipped")),
    }  # fmt: skip
    for g in ("drums", "bass", "comp"):
        out[f"jaccard_{g}"] = _mean_jaccard([{tuple(x) if isinstance(x, list) else x
                                              for x in r["onsets"][g]} for r in rows])  # fmt: skip
    out["jaccard_melody"] = _mean_jaccard(_sets(rows, "melody_onsets"))
    out["jaccard_voicing"] = _mean_jaccard(_sets(rows, "voicing_onsets"))
    return out


def _builds(layers: dict[str, Any]) -> bool:
    """The intro adds layers: fewer parts in its first half than in its second or in A."""
    first = layers["first_half"]
    return first < layers["second_half"] or (layers["a"] is not None and first < layers["a"])


def _lead_patch_bad(row: dict[str, Any]) -> bool:
    lead, bass = row["lead_program"], row["bass_program"]
    return lead is not None and (lead in BASS_PATCHES or lead == bass)


def _is_ballad(c: dict[str, Any]) -> bool:
    """Slow sad or calm cues: the harmonic rhythm the groove genres must beat."""
    return c["tempo"] == "slow" and c["mood"] in ("sad", "calm")


def _in(x: Any, lo: float | None = None, hi: float | None = None) -> bool:
    """x measured and inside [lo, hi]: an unmeasured figure is a fail."""
    return x is not None and (lo is None or x >= lo) and (hi is None or x <= hi)


def _jac(key: str) -> Check:
    """Seed variety; does not apply with one seed, or where no seed has the part at all
    (an ambient cue without drums)."""

    def check(c: dict[str, Any]) -> tuple[bool, Any] | None:
        if c["seeds"] < 2 or c[key] is None:
            return None
        return c[key] < TARGETS["jaccard_max"], c[key]

    return check


def _fast_harmony(c: dict[str, Any]) -> tuple[bool, Any] | None:
    if c["genre"] not in FAST_HARMONY:
        return None
    rate, ballad = c["changes_per_bar"], c.get("ballad_rate")
    ok = _in(rate, TARGETS["fast_harmony_changes_per_bar_min"])
    return ok and (ballad is None or rate > ballad), rate


def _delivered_ok(c: dict[str, Any]) -> tuple[bool, Any]:
    ok = _in(c["delivered_lufs_off"], hi=TARGETS["delivered_lufs_tolerance_lu"])
    return ok and c["delivered_clipped"] == 0 and bool(c["delivered_length_ok"]), [
        c["delivered_lufs_off"], c["delivered_clipped"]]  # fmt: skip


def _intro(c: dict[str, Any]) -> tuple[bool, Any]:
    ok = c["no_intro"] == 0 and _in(c["intro_gap_max"], hi=TARGETS["intro_gap_max_lu"])
    return ok, [c["intro_gap_max"], f"{c['no_intro']} seeds no intro"]


def _b_lift(c: dict[str, Any]) -> tuple[bool, Any]:
    lo, hi = TARGETS["b_lift_lu"]
    ok = c["no_b"] == 0 and _in(c["b_lift_min"], lo) and _in(c["b_lift_max"], hi=hi)
    return ok, [c["b_lift_min"], c["b_lift_max"], f"{c['no_b']} seeds no B"]


def _lead_band(c: dict[str, Any]) -> tuple[bool, Any]:
    lo, hi = TARGETS["lead_vs_band_db"]
    ok = _in(c["lead_vs_band_min"], lo) and _in(c["lead_vs_band_max"], hi=hi)
    return ok, [c["lead_vs_band_min"], c["lead_vs_band_max"]]


def _band(c: dict[str, Any]) -> tuple[bool, Any]:
    want = min(c["named"], TARGETS["band_max"])
    return not c["missing_named"] and c["parts"] >= want, [c["parts"], c["missing_named"]]


def _spectrum(c: dict[str, Any]) -> tuple[bool, Any] | None:
    if c["genre"] not in ORCHESTRAL and c["mood"] != "epic":
        return None
    ok = c["above_4k_min"] >= TARGETS["above_4k_min"]
    ok = ok and c["mid_250_1k_max"] <= TARGETS["mid_250_1k_max"]
    return ok, [c["above_4k_min"], c["mid_250_1k_max"]]


def _register(c: dict[str, Any]) -> tuple[bool, Any]:
    ok = c["no_b_register"] == 0
    return ok and _in(c["melody_below_b_max"], hi=TARGETS["melody_below_chord_b_max"]), [
        c["melody_below_b_max"], f"{c['no_b_register']} seeds unmeasured"]  # fmt: skip


def _expressive(key: str, target: str) -> Check:
    def check(c: dict[str, Any]) -> tuple[bool, Any] | None:
        if c["genre"] not in EXPRESSIVE:
            return None
        return c[key] is not None and c[key] > TARGETS[target], c[key]

    return check


def _groove_gap(key: str) -> Check:
    def check(c: dict[str, Any]) -> tuple[bool, Any] | None:
        if c["genre"] not in GROOVE:
            return None
        return _in(c[key], hi=TARGETS["groove_gap_max_db"]), c[key]

    return check


def _units(intro: bool) -> Check:
    def check(c: dict[str, Any]) -> tuple[bool, Any]:
        odd = [u for u in c["odd_units"] if u.startswith("intro:") == intro]
        return not odd, odd

    return check


def _end(c: dict[str, Any]) -> tuple[bool, Any]:
    hold, dead = c["end_hold_max"], c["dead_tail_max"]
    ok = (hold is None or hold <= T["end_hold_max_s"]) and _in(dead, hi=T["dead_tail_max_s"])
    return ok, [hold, dead]


def _form_variety(c: dict[str, Any]) -> tuple[bool, Any] | None:
    """Not for one seed, nor a cue too short for more than one form in 4-bar phrases (a slow
    30 s cue: intro 2 + A 2 + B 4); its seeds vary groove, voicing and melody instead."""
    bars = c.get("cue_bars_max")
    if c["seeds"] < 2 or (bars is not None and bars < dn.PHRASE_BARS):
        return None
    return c["forms"] >= T["forms_min"], c["forms"]


T = TARGETS
CUE_CHECKS: tuple[tuple[str, Check], ...] = (
    ("correlation >= 0.2 (part sum)",
     lambda c: (_in(c["corr_min"], T["correlation_min"]), c["corr_min"])),
    ("mono loss <= 3 dB (part sum)",
     lambda c: (_in(c["mono_loss_max"], hi=T["mono_loss_max_db"]), c["mono_loss_max"])),
    ("delivered cue.wav correlation >= 0.2",
     lambda c: (_in(c["delivered_corr_min"], T["correlation_min"]), c["delivered_corr_min"])),
    ("delivered cue.wav mono loss <= 3 dB",
     lambda c: (_in(c["delivered_mono_max"], hi=T["mono_loss_max_db"]), c["delivered_mono_max"])),
    ("delivered: loudness within 1 LU, no clipping, exact length", _delivered_ok),
    ("drums within 12 dB of the loudest (groove)", _groove_gap("drums_gap_max")),
    ("bass within 12 dB of the loudest (groove)", _groove_gap("bass_gap_max")),
    ("lead vs band -8..-1 dB", _lead_band),
    ("no part > 18 dB under the loudest", lambda c: (not c["silent"], c["silent"])),
    ("every named instrument plays (up to 6)", _band),
    ("intro present, <= 10 LU under the cue", _intro),
    ("intro builds by layers",
     lambda c: (c["no_intro"] == 0 and c["intro_flat"] == 0, c["intro_layers"])),
    ("B present, lifts 2-6 LU over A", _b_lift),
    ("loudest 3 s in the back half / last B, not the end",
     lambda c: (c["loudest_not_climax"] == 0, c["loudest_s"])),
    ("end: held chord <= 5 s, <= 1.5 s at the end 30 LU under the cue", _end),
    ("deepest 4 s dip <= 10 LU under the cue",
     lambda c: (_in(c["dip_max"], hi=T["dip_max_lu"]), c["dip_max"])),
    ("lead and chords on different patches",
     lambda c: (c["shared_patch"] == 0, c["shared_patch"])),
    ("lead not on a bass patch (GM 32-39) nor the bass's",
     lambda c: (c["lead_on_bass_or_same"] == 0, [c["lead_programs"], c["bass_programs"]])),
    ("spectrum >4k >= 1 %, 250-1k <= 45 % (cinematic/classical/epic)", _spectrum),
    ("harmonic rhythm >= 0.9 changes/bar, faster than ballads (funk/pop/latin)", _fast_harmony),
    ("melody above the chord in B (<= 10 % of notes below its top)", _register),
    ("timing jitter > 5 ms (expressive genres)", _expressive("jitter_ms", "jitter_min_ms")),
    ("velocity spread > 9 (expressive genres)", _expressive("velocity_sd", "velocity_sd_min")),
    ("body sections in 4/8-bar units", _units(intro=False)),
    ("intro in 4/8-bar units", _units(intro=True)),
    ("seeds vary the form (>= 2 forms)",
     _form_variety),
    ("seeds vary drums (J < 0.8)", _jac("jaccard_drums")),
    ("seeds vary bass (J < 0.8)", _jac("jaccard_bass")),
    ("seeds vary comping onsets (J < 0.8)", _jac("jaccard_comp")),
    ("seeds vary the melody (J < 0.8)", _jac("jaccard_melody")),
    ("seeds vary the voicing (J < 0.8)", _jac("jaccard_voicing")),
)  # fmt: skip


def _run_check(cues: list[dict[str, Any]], fn: Check) -> dict[str, Any]:
    results = [(c["cue"], fn(c)) for c in cues]
    applied = [(name, r) for name, r in results if r is not None]
    failing = [f"{name} ({_cell(r[1])})" for name, r in applied if not r[0]]
    return {"pass": len(applied) - len(failing), "of": len(applied), "failing": failing}


def _checks(cues: list[dict[str, Any]], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Each target: how many cues meet it, and which fail with their worst figure."""
    t = TARGETS
    ballads = [c["changes_per_bar"] for c in cues if _is_ballad(c) and c["changes_per_bar"]]
    ballad_rate = max(ballads) if ballads else None
    for c in cues:
        c["ballad_rate"] = ballad_rate
    out = {name: _run_check(cues, fn) for name, fn in CUE_CHECKS}
    # whole BPM, over the cues of the main length (the long runs repeat some of its cues)
    main = min((r["duration_s"] for r in rows), default=0.0)
    by_bucket: dict[str, set] = defaultdict(set)
    for r in rows:
        if r["duration_s"] == main:
            by_bucket[r["tempo"]].add(round(r["bpm"]))
    low = [f"{b} ({len(v)})" for b, v in sorted(by_bucket.items())
           if len(v) < t["distinct_bpm_per_bucket_min"]]  # fmt: skip
    out["distinct BPM per bucket >= 3"] = {"pass": len(by_bucket) - len(low),
                                           "of": len(by_bucket), "failing": low}  # fmt: skip
    bass = {
        r["bass_program"] for r in rows if r["genre"] in GROOVE and r["bass_program"] is not None
    }
    ok = len(bass) >= t["distinct_bass_programs_min"]
    out["distinct bass programs over groove genres >= 5"] = {
        "pass": int(ok),
        "of": 1,
        "failing": [] if ok else [f"{len(bass)}: {sorted(bass)}"],
    }
    out["ballad harmonic rhythm (max, changes/bar)"] = ballad_rate
    short = [f"{c['cue']} ({_cell(c['short_rule'])})" for c in cues if c["short_rule"]]
    one_form = [c["cue"] for c in cues if _form_variety(c) is None and c["seeds"] > 1]
    out["accepted by the short-cue rule (2-bar units)"] = "; ".join(short) or "none"
    out["one form over the seeds (under 13 bars)"] = ", ".join(one_form) or "none"
    return out


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[r["cue"]].append(r)
    cues = [_cue_summary(g) for g in groups.values()]
    return {"targets": TARGETS, "checks": _checks(cues, rows), "cues": cues, "rows": rows}


_TABLES = (
    (("cue", "cue"), ("bpms", "BPM"), ("parts", "parts"), ("corr_min", "corr"),
     ("mono_loss_max", "mono dB"), ("delivered_corr_min", "cue.wav corr"),
     ("delivered_mono_max", "cue.wav mono"), ("delivered_lufs_off", "LUFS off"),
     ("drums_gap_max", "drums gap"), ("bass_gap_max", "bass gap"),
     ("lead_vs_band_min", "lead-band min"), ("lead_vs_band_max", "lead-band max"),
     ("silent", "silent"), ("above_4k_min", ">4k"), ("mid_250_1k_max", "250-1k"),
     ("lead_programs", "lead GM"), ("bass_programs", "bass GM")),
    (("cue", "cue"), ("no_intro", "no intro"), ("intro_gap_max", "intro LU"),
     ("intro_layers", "intro layers"), ("no_b", "no B"), ("b_lift_min", "B lift min"),
     ("b_lift_max", "B lift max"), ("loudest_s", "loudest s"), ("dip_max", "dip LU"),
     ("forms", "forms"), ("odd_units", "odd units"), ("end_hold_max", "hold s"),
     ("dead_tail_max", "dead s"), ("changes_per_bar", "chg/bar"),
     ("melody_below_b_max", "mel<chord B"), ("melody_below_all", "mel<chord all")),
    (("cue", "cue"), ("jaccard_drums", "J drums"), ("jaccard_bass", "J bass"),
     ("jaccard_comp", "J comp"), ("jaccard_melody", "J melody"), ("jaccard_voicing", "J voicing"),
     ("jitter_ms", "jitter ms"), ("push_ms", "push ms"), ("swing_ratio", "swing"),
     ("velocity_sd", "vel SD"), ("beat_regularity", "beat reg"), ("key_clarity", "key"),
     ("repetition", "rep"), ("lra", "LRA"), ("clipped", "clip")),
)  # fmt: skip


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, list):
        return ",".join(_cell(x) for x in v) or "-"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def to_markdown(report: dict[str, Any]) -> str:
    lines = ["# Draft quality", "", "| check | pass | failing (worst figure) |", "|---|---|---|"]
    for name, c in report["checks"].items():
        if isinstance(c, dict) and "pass" in c:
            lines.append(f"| {name} | {c['pass']}/{c['of']} | {'; '.join(c['failing'])} |")
        else:
            lines.append(f"| {name} | {_cell(c)} | |")
    if "run" in report:
        run = report["run"]
        lines += ["", f"Ran {run['seconds']} s, load average {run['load_average']}."]
    for cols in _TABLES:
        lines += ["", "| " + " | ".join(h for _, h in cols) + " |", "|" + "---|" * len(cols)]
        for c in report["cues"]:
            lines.append("| " + " | ".join(_cell(c[k]) for k, _ in cols) + " |")
    return "\n".join(lines) + "\n"

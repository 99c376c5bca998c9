"""The draft-quality report's summary: per cue (over seeds) figures, the targets checked, and
the markdown table (engine.eval.draft_quality measures the cues)."""

from __future__ import annotations

import itertools
from collections import defaultdict
from typing import Any

import numpy as np

from engine.eval import draft_measures as dm

GROOVE = ("pop", "electronic", "funk", "hip-hop", "jazz", "latin", "lofi", "rock", "blues")
TARGETS = {
    "correlation_min": 0.2,
    "mono_loss_max_db": 3.0,
    "groove_gap_max_db": 12.0,
    "lead_vs_band_max_db": 0.0,
    "intro_gap_max_lu": 10.0,
    "b_lift_lu": (2.0, 6.0),
    "jaccard_max": 0.8,
    "distinct_bpm_per_bucket_min": 3,
}


def _mean_jaccard(sets: list[set]) -> float | None:
    pairs = [dm.jaccard(a, b) for a, b in itertools.combinations(sets, 2) if a or b]
    return round(float(np.mean(pairs)), 3) if pairs else None


def _cue_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One cue over its seeds: worst case for targets, means for descriptive figures."""

    def vals(k):
        return [r[k] for r in rows if r.get(k) is not None]

    lifts = [x for r in rows for x in r["b_lift_lu"]]
    out = {
        "cue": rows[0]["cue"], "genre": rows[0]["genre"], "tempo": rows[0]["tempo"],
        "bpms": sorted({r["bpm"] for r in rows}),
        "parts": round(float(np.mean([len(r["parts"]) for r in rows])), 1),
        "corr_min": min(vals("correlation")), "mono_loss_max": max(vals("mono_loss_db")),
        "drums_gap_max": max(vals("drums_gap_db"), default=None),
        "bass_gap_max": max(vals("bass_gap_db"), default=None),
        "lead_vs_band_max": max(vals("lead_vs_band_db"), default=None),
        "intro_gap_max": max(vals("intro_gap_lu"), default=None),
        "b_lift_min": min(lifts) if lifts else None, "b_lift_max": max(lifts) if lifts else None,
        "loudest_is_end": sum(bool(r["loudest_is_end"]) for r in rows),
        "bars_per_chord": round(float(np.mean(vals("bars_per_chord"))), 2),
        "forms": len({r["form"] for r in rows}),
        "silent": sorted({s for r in rows for s in r["silent"]}),
        "shared_patch": sum(bool(r["lead_lead_chords_same_patch"]) for r in rows),
        "above_4k": round(float(np.mean(vals("above_4k"))), 4),
        "mid_250_1k": round(float(np.mean(vals("mid_250_1k"))), 3),
        "beat_regularity": round(float(np.mean(vals("beat_regularity"))), 3),
        "key_clarity": round(float(np.mean(vals("key_clarity"))), 3),
        "repetition": round(float(np.mean(vals("repetition"))), 3),
        "lra": round(float(np.mean(vals("lra_lu"))), 2),
        "clipped": max(vals("clipped")),
    }  # fmt: skip
    for g in ("drums", "bass", "comp"):
        out[f"jaccard_{g}"] = _mean_jaccard(
            [{tuple(x) if isinstance(x, list) else x for x in r["onsets"][g]} for r in rows]
        )
    return out


def _checks(cues: list[dict[str, Any]], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Each target: how many cues meet it, and which fail."""
    t = TARGETS
    lo, hi = t["b_lift_lu"]

    def check(name, ok):
        fails = [c["cue"] for c in cues if ok(c) is False]
        return name, {"pass": len(cues) - len(fails), "of": len(cues), "failing": fails}

    groove = lambda c: c["genre"] in GROOVE  # noqa: E731
    items = [
        check("correlation >= 0.2", lambda c: c["corr_min"] >= t["correlation_min"]),
        check("mono loss <= 3 dB", lambda c: c["mono_loss_max"] <= t["mono_loss_max_db"]),
        check("drums within 12 dB (groove)", lambda c: not groove(c) or c["drums_gap_max"] is None
              or c["drums_gap_max"] <= t["groove_gap_max_db"]),
        check("bass within 12 dB (groove)", lambda c: not groove(c) or c["bass_gap_max"] is None
              or c["bass_gap_max"] <= t["groove_gap_max_db"]),
        check("lead below the band", lambda c: c["lead_vs_band_max"] is None
              or c["lead_vs_band_max"] <= t["lead_vs_band_max_db"]),
        check("intro <= 10 LU under", lambda c: c["intro_gap_max"] is None
              or c["intro_gap_max"] <= t["intro_gap_max_lu"]),
        check("B lifts 2-6 LU", lambda c: c["b_lift_min"] is None
              or (c["b_lift_min"] >= lo and c["b_lift_max"] <= hi)),
        check("loudest is not the end", lambda c: c["loudest_is_end"] == 0),
        check("no silent instrument", lambda c: not c["silent"]),
        check("lead and chords on different patches", lambda c: c["shared_patch"] == 0),
        check("seeds vary drums (J < 0.8)", lambda c: c["jaccard_drums"] is None
              or c["jaccard_drums"] < t["jaccard_max"]),
        check("seeds vary bass (J < 0.8)", lambda c: c["jaccard_bass"] is None
              or c["jaccard_bass"] < t["jaccard_max"]),
        check("seeds vary comping (J < 0.8)", lambda c: c["jaccard_comp"] is None
              or c["jaccard_comp"] < t["jaccard_max"]),
    ]  # fmt: skip
    out = dict(items)
    by_bucket: dict[str, set] = defaultdict(set)
    for r in rows:
        by_bucket[r["tempo"]].add(r["bpm"])
    out["distinct BPM per bucket"] = {b: len(v) for b, v in sorted(by_bucket.items())}
    out["distinct bars-per-chord"] = len({c["bars_per_chord"] for c in cues})
    return out


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[r["cue"]].append(r)
    cues = [_cue_summary(g) for g in groups.values()]
    return {"targets": TARGETS, "checks": _checks(cues, rows), "cues": cues, "rows": rows}


_COLS = (
    ("cue", "cue"), ("bpms", "BPM"), ("parts", "parts"), ("corr_min", "corr"),
    ("mono_loss_max", "mono dB"), ("drums_gap_max", "drums gap"), ("bass_gap_max", "bass gap"),
    ("lead_vs_band_max", "lead-band"), ("intro_gap_max", "intro LU"), ("b_lift_min", "B lift min"),
    ("b_lift_max", "B lift max"), ("loudest_is_end", "loudest=end"),
    ("bars_per_chord", "bars/chord"), ("forms", "forms"), ("jaccard_drums", "J drums"),
    ("jaccard_bass", "J bass"), ("jaccard_comp", "J comp"), ("silent", "silent"),
    ("above_4k", ">4k"), ("mid_250_1k", "250-1k"), ("beat_regularity", "beat reg"),
    ("key_clarity", "key"), ("repetition", "rep"), ("lra", "LRA"), ("clipped", "clip"),
)  # fmt: skip


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, list):
        return ",".join(str(x) for x in v) or "-"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def to_markdown(report: dict[str, Any]) -> str:
    lines = ["# Draft quality", "", "| target | pass | failing |", "|---|---|---|"]
    for name, c in report["checks"].items():
        if isinstance(c, dict) and "pass" in c:
            lines.append(f"| {name} | {c['pass']}/{c['of']} | {', '.join(c['failing'])} |")
        else:
            lines.append(f"| {name} | {_cell(c) if not isinstance(c, dict) else c} | |")
    lines += ["", "| " + " | ".join(h for _, h in _COLS) + " |",
              "|" + "---|" * len(_COLS)]  # fmt: skip
    for c in report["cues"]:
        lines.append("| " + " | ".join(_cell(c[k]) for k, _ in _COLS) + " |")
    return "\n".join(lines) + "\n"

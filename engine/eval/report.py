"""The evaluation report: ``report.json`` for machines, ``report.html`` (plots inline) for people.

Plots use matplotlib's object API with the Agg canvas (no pyplot state, no display needed):
one bar chart per metric (per file where the metric is per file), and a 2-D PCA scatter of
the generated and reference embedding frames.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from engine.eval.evaluate import EvalResult, MetricResult
from engine.util import atomic


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Any, path: Path) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    data = buf.getvalue()
    path.write_bytes(data)
    return data


def metric_bars(results: tuple[MetricResult, ...], path: Path) -> bytes:
    """One panel per metric: its per-file values (mean as a line) or its single value."""
    n = max(1, len(results))
    fig = _figure(4.2 * n, 3.4)
    for k, m in enumerate(results):
        ax = fig.add_subplot(1, n, k + 1)
        per = m.per_file if m.per_file and m.per_pair else None
        if per:
            ids = list(per)
            ax.bar(range(len(ids)), [per[i] for i in ids], color="#4c78a8")
            ax.axhline(m.value, color="#e45756", lw=1.5, label=f"mean {m.value:.3g}")
            ax.set_xticks(range(len(ids)), ids, rotation=60, ha="right", fontsize=7)
            ax.legend(fontsize=8)
        else:
            ax.bar([0], [m.value], color="#4c78a8", width=0.5)
            ax.set_xticks([0], [m.label])
            ax.text(0, m.value, f"{m.value:.4g}", ha="center", va="bottom", fontsize=9)
        arrow = "lower is better" if m.better == "lower" else "higher is better"
        ax.set_title(f"{m.label} ({arrow})", fontsize=9)
        if m.unit:
            ax.set_ylabel(m.unit)
    return _png(fig, path)


def embedding_scatter(
    generated: np.ndarray, reference: np.ndarray, label: str, path: Path
) -> bytes:
    """The two frame sets projected on the first two principal directions of their union."""
    both = np.concatenate([generated, reference]).astype(np.float64)
    mean = both.mean(axis=0)
    _, _, vt = np.linalg.svd(both - mean, full_matrices=False)
    basis = vt[:2].T if vt.shape[0] >= 2 else np.pad(vt.T, ((0, 0), (0, 2 - vt.shape[0])))
    g, r = (generated - mean) @ basis, (reference - mean) @ basis
    fig = _figure(5.0, 4.2)
    ax = fig.add_subplot(1, 1, 1)
    ax.scatter(r[:, 0], r[:, 1], s=12, alpha=0.6, color="#72b7b2", label=f"reference ({len(r)})")
    ax.scatter(g[:, 0], g[:, 1], s=12, alpha=0.6, color="#f58518", label=f"generated ({len(g)})")
    ax.set_title(f"{label} embedding frames, PCA 2-D", fontsize=9)
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.legend(fontsize=8)
    return _png(fig, path)


def _fmt(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def render_html(result: EvalResult, images: dict[str, bytes]) -> str:
    e = html.escape
    data = result.to_json()
    rows = "".join(
        f"<tr><td>{e(m.label)}</td><td class=n>{m.value:.4g}</td><td>{e(m.unit)}</td>"
        f"<td>{e(m.better)} is better</td><td>{e(str(m.model['model']))}</td>"
        f"<td>{e(str(m.model['weights']))}</td>"
        f"<td>{'paper' if m.paper_metric else 'stand-in'}</td></tr>"
        for m in result.results
    )
    per_cols = [m for m in result.results if m.per_file]
    head = "".join(f"<th>{e(m.label)}{' frames' if not m.per_pair else ''}</th>" for m in per_cols)
    body = "".join(
        "<tr>"
        + f"<td>{e(f.file_id)}</td><td class=n>{f.generated_s:.2f}</td>"
        + f"<td class=n>{_fmt(f.reference_s)}</td>"
        + "".join(f"<td class=n>{_fmt((m.per_file or {}).get(f.file_id))}</td>" for m in per_cols)
        + "</tr>"
        for f in result.files
    )
    imgs = "".join(
        f'<figure><img alt="{e(name)}" src="data:image/png;base64,'
        f'{base64.b64encode(png).decode()}"><figcaption>{e(name)}</figcaption></figure>'
        for name, png in images.items()
    )
    notes = "".join(f"<li>{e(n)}</li>" for n in result.notes)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>VMB Score evaluation</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #ccc; padding: 4px 8px; font-size: 14px; }}
th {{ background: #f3f3f3; }} td.n {{ text-align: right; font-variant-numeric: tabular-nums; }}
figure {{ display: inline-block; margin: 0 1em 1em 0; }} img {{ max-width: 100%; }}
</style></head><body>
<h1>VMB Score evaluation</h1>
<p>generated: <code>{e(str(data["generated"]))}</code><br>
reference: <code>{e(str(data["reference"]))}</code><br>
text: <code>{e(str(data["text"]))}</code> &middot; paired: {data["paired"]}
&middot; PCA dims: {e(str(data["pca_dim"]))}</p>
<h2>Metrics</h2>
<table><tr><th>metric</th><th>value</th><th>unit</th><th></th><th>model</th><th>weights</th>
<th></th></tr>{rows}</table>
{imgs}
<h2>Files</h2>
<table><tr><th>id</th><th>generated s</th><th>reference s</th>{head}</tr>{body}</table>
<h2>Notes</h2><ul>{notes}</ul>
</body></html>
"""


def write_report(result: EvalResult, out_dir: Path) -> dict[str, Path]:
    """Write report.json, report.html and the PNGs; returns their paths by name."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "report.json", "html": out_dir / "report.html"}
    images: dict[str, bytes] = {}
    if result.results:
        paths["metrics_png"] = out_dir / "metrics.png"
        images["metrics"] = metric_bars(result.results, paths["metrics_png"])
    if result.frames is not None:
        label = next(m.label for m in result.results if m.name.startswith("fd_"))
        paths["embeddings_png"] = out_dir / "embeddings.png"
        images["embeddings"] = embedding_scatter(*result.frames, label, paths["embeddings_png"])
    atomic.write_text(paths["json"], json.dumps(result.to_json(), indent=2, default=str))
    atomic.write_text(paths["html"], render_html(result, images))
    return paths

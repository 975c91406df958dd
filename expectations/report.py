"""The quality page: one self-contained HTML file rendered from a run's results (no scripts, fonts or CDNs).

GX Data Docs load Bootstrap, jQuery and Vega from public CDNs and a logo from S3: offline they render
unstyled, online they call out. This page carries its own styles and draws the trend as inline SVG.
"""

from __future__ import annotations

from pathlib import Path

from core import render

TEMPLATE = "expectations/templates/quality.html.j2"


def _trend_points(trend: list[dict], width: int = 600, height: int = 80) -> list[dict]:
    """Bar geometry for failed checks per run (errors stacked under warnings)."""
    if not trend:
        return []
    top = max(max(t["errors"] + t["warnings"] for t in trend), 1)
    step = width / len(trend)
    bars = []
    for i, t in enumerate(trend):
        e, w = t["errors"] * height / top, t["warnings"] * height / top
        bars.append({"x": round(i * step + 1, 1), "w": round(max(step - 2, 1), 1), "e": round(e, 1),
                     "w_h": round(w, 1), "ey": round(height - e, 1), "wy": round(height - e - w, 1), **t})
    return bars


def write_html(run, folder: Path, *, controller: str) -> Path:
    """Render `quality.html` into `folder` (created owner-only) and return its path. `controller`: the company
    whose register was checked (privacy/register.yml, read by the pipeline)."""
    suites: dict[str, list] = {}
    for r in run.results:
        suites.setdefault(r.suite, []).append(r)
    return render.write_page(folder / "quality.html", TEMPLATE, lang="en", run=run, summary=run.summary(),
                             suites=suites, bars=_trend_points(run.trend), controller=controller)

"""The quality page: one self-contained HTML file rendered from a run's results (no scripts, fonts or CDNs).

GX Data Docs load Bootstrap, jQuery and Vega from public CDNs and a logo from S3: offline they render
unstyled, online they call out. This page carries its own styles and draws the trend as inline SVG.
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

TEMPLATES = Path(__file__).parent / "templates"


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


def write_html(run, folder: Path) -> Path:
    """Render `quality.html` into `folder` (created owner-only) and return its path."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]))
    suites: dict[str, list] = {}
    for r in run.results:
        suites.setdefault(r.suite, []).append(r)
    html = env.get_template("quality.html.j2").render(run=run, summary=run.summary(), suites=suites,
                                                      bars=_trend_points(run.trend))
    path = folder / "quality.html"
    path.write_text(html, encoding="utf-8")
    return path

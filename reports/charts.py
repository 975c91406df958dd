"""Charts of the reports: matplotlib (Agg) figures turned into inline SVG that needs nothing from outside.

Text stays text in a locally installed font (nothing fetched) and every element id is prefixed per chart,
so several charts can share one HTML document. Formatting of numbers is passed in by the caller (language).
"""

from __future__ import annotations

import io
import itertools
import re
from collections.abc import Callable, Sequence

import matplotlib

matplotlib.use("Agg")  # no display, no GUI toolkit: the report renders on servers and in cron

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.ticker import FuncFormatter, MaxNLocator
from matplotlib.transforms import blended_transform_factory

Fmt = Callable[[float], str]

FULL = 7.1  # inches: an A4 page's text width with the report's margins
HALF = 3.45
INK = "#1f2937"
MUTED = "#6b7280"
GRID = "#e5e7eb"
BLUE = "#1d4e89"
LIGHT_BLUE = "#7aa6d6"
GREEN = "#2e7d32"
RED = "#c62828"
ORANGE = "#e07b00"
GREY = "#9ca3af"

STYLE = {
    "font.family": "DejaVu Sans",  # shipped with matplotlib: identical output on every machine
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.labelsize": 8,
    "axes.edgecolor": GREY,
    "axes.labelcolor": INK,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.grid.axis": "y",
    "grid.color": GRID,
    "grid.linewidth": 0.6,
    "xtick.color": MUTED,
    "ytick.color": MUTED,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "legend.frameon": False,
    # Text as <text>, not glyph paths: 2.5x smaller files, 2.5x faster PDFs, selectable and searchable text.
    # It names a font the viewer has (DejaVu Sans, else a fallback); nothing is fetched either way.
    "svg.fonttype": "none",
    "svg.hashsalt": "churn-report",  # deterministic ids: the same data gives the same file
    "axes.unicode_minus": True,
}

_counter = itertools.count(1)


def reset_ids() -> None:
    """Number the next charts' id prefixes from 1 again (one report = one numbering)."""
    global _counter
    _counter = itertools.count(1)


def to_svg(fig, title: str) -> str:
    """The figure as an `<svg>` element for inline use: no XML prolog, no metadata, no namespace URLs."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None}, bbox_inches="tight",
                pad_inches=0.04)
    plt.close(fig)
    text = buffer.getvalue()
    text = text[text.index("<svg"):]
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)
    # Inline SVG in HTML needs no namespace declarations (the HTML parser knows <svg>); dropping them keeps
    # the page free of any http:// reference. `href` is SVG 2 and understood by browsers and WeasyPrint.
    text = re.sub(r'\s+xmlns(:xlink)?="[^"]*"', "", text, count=2)
    text = text.replace("xlink:href=", "href=")
    # matplotlib's style rule is `*{...}`: scope it to the charts, not the whole page.
    text = text.replace("*{stroke-linejoin", "svg.chart *{stroke-linejoin")
    # Fallbacks of similar width where DejaVu Sans is not installed (it is where the PDF is made).
    text = text.replace("font-family: 'DejaVu Sans'", "font-family: 'DejaVu Sans', Verdana, sans-serif")
    prefix = f"c{next(_counter)}-"
    ids = set(re.findall(r'\bid="([^"]+)"', text))
    text = re.sub(r'(id="|#)([^"\)\s;]+)(?=["\)])',
                  lambda m: f"{m[1]}{prefix}{m[2]}" if m[2] in ids else m[0], text)
    safe_title = title.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")
    return text.replace("<svg ", f'<svg class="chart" role="img" aria-label="{safe_title}" ', 1)


def _figure(width: float, height: float, **kwargs):
    with plt.rc_context(STYLE):
        return plt.subplots(figsize=(width, height), **kwargs)


def _month_ticks(ax, labels: Sequence[tuple[str, str, int]], every: int = 3) -> None:
    """Month axis from (abbreviation, year, month number): quarter months, the year under each January."""
    positions = [i for i, (_, _, number) in enumerate(labels) if (number - 1) % every == 0]
    texts = [f"{labels[i][0]}\n{labels[i][1]}" if labels[i][2] == 1 or i == positions[0] else labels[i][0]
             for i in positions]
    ax.set_xticks(positions, texts)
    ax.set_xlim(-0.6, len(labels) - 0.4)


def empty(message: str, width: float = FULL, height: float = 1.0) -> str:
    with plt.rc_context(STYLE):
        fig, ax = _figure(width, height)
        ax.axis("off")
        ax.text(0.5, 0.5, message, ha="center", va="center", color=MUTED, transform=ax.transAxes)
        return to_svg(fig, message)


def bridge(steps: Sequence[tuple[str, float]], fmt: Fmt, title: str, axis_note: str) -> str:
    """Waterfall: the first and last steps are totals, the others signed changes (contraction, churn < 0).

    The changes are a few percent of MRR, so the value axis starts near the lowest level instead of zero
    (the note says so); otherwise the bars a manager needs to see would be a few pixels tall.
    """
    with plt.rc_context(STYLE):
        fig, ax = _figure(FULL, 1.75)
        level = steps[0][1]
        bottoms, heights, colours, tops = [], [], [], []
        for i, (_, value) in enumerate(steps):
            if i == 0 or i == len(steps) - 1:
                bottoms.append(0.0)
                heights.append(value)
                colours.append(BLUE)
                level = value
            else:
                bottoms.append(level if value >= 0 else level + value)
                heights.append(abs(value))
                colours.append(GREEN if value >= 0 else RED)
                level += value
            tops.append(bottoms[-1] + heights[-1])
        levels = [steps[0][1], *np.cumsum([v for _, v in steps[1:-1]]) + steps[0][1], steps[-1][1]]
        low, high = min(levels), max(levels)
        span = max(high - low, abs(high) * 0.02, 1.0)
        floor = max(0.0, low - span * 1.2)
        x = np.arange(len(steps))
        drawn_bottoms = [max(b, floor) for b in bottoms]
        drawn_heights = [t - b for t, b in zip(tops, drawn_bottoms, strict=True)]
        ax.bar(x, drawn_heights, bottom=drawn_bottoms, color=colours, width=0.62, zorder=2)
        # Connectors between consecutive levels, as waterfalls are read left to right.
        running = steps[0][1]
        for i, (_, value) in enumerate(steps[:-1]):
            running = value if i == 0 else running + value
            ax.plot([i + 0.31, i + 0.69], [running, running], color=GREY, linewidth=0.7, zorder=1)
        for i, (_, value) in enumerate(steps):
            total = i in (0, len(steps) - 1)
            text = fmt(value) if total else fmt(value) if value < 0 else "+" + fmt(value)
            ax.annotate(text, (i, tops[i]), xytext=(0, 3), textcoords="offset points", ha="center", va="bottom",
                        fontsize=7.5, color=INK, fontweight="bold" if total else "normal")
        ax.set_ylim(floor, high + span * 0.35)
        ax.set_xticks(x, [name for name, _ in steps])
        ax.tick_params(axis="x", length=0, labelsize=8, labelcolor=INK)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt(v)))
        ax.yaxis.set_major_locator(MaxNLocator(5))
        if floor > 0:  # above the plot: the labels below it take two lines
            ax.text(1.0, 1.02, axis_note, transform=ax.transAxes, ha="right", va="bottom", fontsize=6.5,
                    color=MUTED)
        return to_svg(fig, title)


def line(months: Sequence[tuple[str, str, int]], series: Sequence[tuple[str, Sequence[float], str]], fmt: Fmt,
         title: str, width: float = HALF, height: float = 2.0, zero: bool = False, area: bool = False,
         highlight: int | None = None) -> str:
    """One or more monthly series as lines; `highlight` marks the report month."""
    with plt.rc_context(STYLE):
        fig, ax = _figure(width, height)
        x = np.arange(len(months))
        for name, values, colour in series:
            y = np.array([np.nan if v is None else float(v) for v in values])
            ax.plot(x, y, color=colour, linewidth=1.6, label=name, zorder=3)
            if area:
                ax.fill_between(x, y, color=colour, alpha=0.12, linewidth=0)
            if highlight is not None and not np.isnan(y[highlight]):
                ax.plot([highlight], [y[highlight]], "o", color=colour, markersize=4, zorder=4)
        if zero:
            ax.axhline(0, color=GREY, linewidth=0.8, zorder=1)
        if area:
            ax.set_ylim(bottom=0)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt(v)))
        ax.yaxis.set_major_locator(MaxNLocator(5))
        _month_ticks(ax, months)
        ax.set_title(title, loc="left", color=INK, fontweight="bold")
        if len(series) > 1:
            ax.legend(loc="upper left", ncols=len(series) if width > HALF else 2, bbox_to_anchor=(0, -0.2))
        return to_svg(fig, title)


def stacked(months: Sequence[tuple[str, str, int]], series: Sequence[tuple[str, Sequence[float], str]], fmt: Fmt,
            title: str, width: float = FULL, height: float = 1.9) -> str:
    """Monthly stacked bars (e.g. churned MRR split voluntary / involuntary)."""
    with plt.rc_context(STYLE):
        fig, ax = _figure(width, height)
        x = np.arange(len(months))
        bottom = np.zeros(len(months))
        for name, values, colour in series:
            y = np.array([0.0 if v is None else float(v) for v in values])
            ax.bar(x, y, bottom=bottom, color=colour, width=0.72, label=name, zorder=2)
            bottom += y
        if not bottom.any():
            ax.set_ylim(0, 1)  # nothing churned: one zero tick, not five
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt(v)))
        ax.yaxis.set_major_locator(MaxNLocator(5))
        _month_ticks(ax, months)
        ax.set_title(title, loc="left", color=INK, fontweight="bold")
        ax.legend(loc="upper left", ncols=len(series), bbox_to_anchor=(0, -0.2))
        return to_svg(fig, title)


def heatmap(rows: Sequence[str], columns: Sequence[int], values: np.ndarray, fmt: Fmt, title: str,
            row_title: str, column_title: str, *, high: float = 1.0, row_height: float = 0.22) -> str:
    """Cohort by months-since-start retention; empty cells (the future) stay blank.

    Colours run from the lowest value (at most 90%) to `high` (100% for customers; revenue retention can
    pass it, so its scale ends at its own highest value): below 100% reddish, above it deepening blue.
    """
    n_rows, n_cols = values.shape
    with plt.rc_context(STYLE):
        fig, ax = _figure(FULL, max(2.0, 0.7 + row_height * n_rows))
        finite = values[np.isfinite(values)]
        low = float(np.floor(finite.min() * 10) / 10) if finite.size else 0.0
        vmin = min(low, 0.9)
        vmax = max(high, 1.0)
        full = (1.0 - vmin) / (vmax - vmin)  # where 100% sits on the scale
        cmap = LinearSegmentedColormap.from_list("retention", [
            (0.0, "#fde2e2"), (full * 0.6, "#f7f7f7"), (full * 0.85, "#cfe0f3"), (full, "#5b8cc4"),
            (1.0, BLUE)] if vmax > 1.0 else ["#fde2e2", "#f7f7f7", "#cfe0f3", BLUE])
        masked = np.ma.masked_invalid(values)
        ax.imshow(masked, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto", interpolation="nearest")
        ax.grid(False)
        for spine in ax.spines.values():
            spine.set_visible(False)
        fontsize = 6 if n_cols <= 18 else 5.2
        for r in range(n_rows):
            for c in range(n_cols):
                if np.isfinite(values[r, c]):
                    dark = (values[r, c] - vmin) / (vmax - vmin) > 0.8  # only the deep-blue end needs white text
                    ax.text(c, r, fmt(values[r, c]), ha="center", va="center", fontsize=fontsize,
                            color="white" if dark else INK)
        ax.set_xticks(range(n_cols), [str(c) for c in columns])
        ax.set_yticks(range(n_rows), rows)
        ax.tick_params(axis="y", labelsize=6.5 if row_height < 0.2 else 7)
        ax.xaxis.tick_top()
        ax.xaxis.set_label_position("top")
        ax.tick_params(length=0)
        ax.set_xlabel(column_title, color=MUTED)
        ax.set_ylabel(row_title, color=MUTED)
        ax.set_title(title, loc="left", color=INK, fontweight="bold", pad=22)
        return to_svg(fig, title)


def movements(months: Sequence[tuple[str, str, int]], gains: Sequence[tuple[str, Sequence[float], str]],
              losses: Sequence[tuple[str, Sequence[float], str]], net: tuple[str, Sequence[float]], fmt: Fmt,
              title: str, width: float = FULL, height: float = 2.5) -> str:
    """MRR movements per month: gains stacked above zero, losses (given positive) below, the net as a line."""
    with plt.rc_context(STYLE):
        fig, ax = _figure(width, height)
        x = np.arange(len(months))
        for sign, series in ((1, gains), (-1, losses)):
            bottom = np.zeros(len(months))
            for name, values, colour in series:
                y = sign * np.array([0.0 if v is None else float(v) for v in values])
                ax.bar(x, y, bottom=bottom, color=colour, width=0.72, label=name, zorder=2)
                bottom += y
        name, values = net
        ax.plot(x, [np.nan if v is None else float(v) for v in values], color=INK, linewidth=1.2, marker="o",
                markersize=2.5, label=name, zorder=4)
        ax.axhline(0, color=GREY, linewidth=0.8, zorder=3)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt(v)))
        ax.yaxis.set_major_locator(MaxNLocator(6))
        _month_ticks(ax, months)
        ax.set_title(title, loc="left", color=INK, fontweight="bold")
        ax.legend(loc="upper left", ncols=len(gains) + len(losses) + 1, bbox_to_anchor=(0, -0.2))
        return to_svg(fig, title)


def _finite(values: Sequence[float | None], keep: Sequence[bool]) -> list[float]:
    return [float(v) for v, ok in zip(values, keep, strict=True) if ok and v is not None and np.isfinite(v)]


def segment_panels(panels: Sequence[tuple[str, Sequence[str], Sequence[float], Sequence[float], Sequence[bool]]],
                   fmt: Fmt, title: str, bar_label: str, dot_label: str, small_label: str) -> str:
    """Small multiples of horizontal bars: per panel (title, segments, 12-month rate, this month's rate, small).

    A small segment's bar is pale and hatched: its rate swings by chance, and a reader should not take a
    handful of customers for a big segment."""
    cols = 2
    n_rows = (len(panels) + cols - 1) // cols
    sizes = [max(len(p[1]) for p in panels[r * cols:(r + 1) * cols]) for r in range(n_rows)]
    with plt.rc_context(STYLE):
        fig, axes = _figure(FULL, 0.4 + sum(0.55 + 0.19 * s for s in sizes), nrows=n_rows, ncols=cols,
                            gridspec_kw={"height_ratios": [0.55 + 0.19 * s for s in sizes], "hspace": 0.5,
                                         "wspace": 0.95})
        axes = np.atleast_2d(axes)
        any_small = False
        for k, ax in enumerate(axes.flat):
            if k >= len(panels):
                ax.axis("off")
                continue
            name, segments, avg, now, small = panels[k]
            big = [not s for s in small]
            # Each panel its own scale: one small, noisy segment would otherwise flatten every other panel. A
            # small segment's month alone is noisier still (one churn in nine customers is 11%): its dot does not
            # set the scale, and past it is drawn at the edge as a triangle.
            high = max([0.0, *_finite(avg, [True] * len(avg)), *_finite(now, big)])
            edge = high * 1.08 or 0.01
            y = np.arange(len(segments))
            avg_v = np.array([0.0 if v is None or not np.isfinite(v) else float(v) for v in avg])
            ax.barh(y[big], avg_v[big], color=LIGHT_BLUE, height=0.62, zorder=2, label=bar_label)
            if any(small):
                any_small = True
                ax.barh(y[small], avg_v[small], color="#dbe7f5", edgecolor=LIGHT_BLUE, hatch="////",
                        linewidth=0.5, height=0.62, zorder=2, label=small_label)
            now_v = np.array([np.nan if v is None else float(v) for v in now])
            inside = ~(now_v > edge)
            ax.plot(np.where(inside, now_v, np.nan), y, "o", color=ORANGE, markersize=4, zorder=3, label=dot_label)
            if not inside.all():
                ax.plot(np.where(inside, np.nan, edge), y, ">", color=ORANGE, markersize=4, zorder=3, clip_on=False)
            # The bars' values in a column right of the plot: never on top of a bar or a dot, and not
            # mistaken for the dot's value.
            labels = blended_transform_factory(ax.transAxes, ax.transData)
            for yi, v, tiny in zip(y, avg, small, strict=True):
                shown = 0.0 if v is None or not np.isfinite(v) else float(v)
                ax.text(1.03, yi, fmt(shown), va="center", fontsize=6.5, color=MUTED if tiny else INK,
                        transform=labels)
            ax.set_yticks(y, segments)
            for tick, tiny in zip(ax.get_yticklabels(), small, strict=True):
                if tiny:
                    tick.set_color(MUTED)
            ax.invert_yaxis()
            ax.set_xlim(0, edge)
            ax.set_ylim(len(segments) - 0.5, -0.5)
            ax.grid(axis="x", color=GRID, linewidth=0.6)
            ax.grid(axis="y", visible=False)
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt(v)))
            ax.xaxis.set_major_locator(MaxNLocator(4))
            ax.tick_params(axis="y", length=0, labelsize=7, labelcolor=INK)
            ax.set_title(name, loc="left", color=INK, fontweight="bold", fontsize=8)
        handles, names = [], []
        for ax in axes.flat:  # one legend entry per kind, from whichever panel has it
            for handle, name in zip(*ax.get_legend_handles_labels(), strict=True):
                if name not in names:
                    handles.append(handle)
                    names.append(name)
        order = [names.index(n) for n in (bar_label, small_label, dot_label) if n in names]
        fig.legend([handles[i] for i in order], [names[i] for i in order], loc="lower left",
                   ncols=3 if any_small else 2, bbox_to_anchor=(0.0, -0.02))
        return to_svg(fig, title)


def bars(names: Sequence[str], values: Sequence[float], colours: Sequence[str], fmt: Fmt, title: str,
         notes: Sequence[str] | None = None, width: float = HALF) -> str:
    """Horizontal bars, largest first as given, with the value (and an optional note) at the end."""
    with plt.rc_context(STYLE):
        fig, ax = _figure(width, 0.5 + 0.22 * max(len(names), 1))
        y = np.arange(len(names))
        vals = [float(v) for v in values]
        ax.barh(y, vals, color=colours, height=0.62, zorder=2)
        high = max([*vals, 0.0]) or 1.0
        for i, v in enumerate(vals):
            text = fmt(v) + (f"  ({notes[i]})" if notes else "")
            ax.text(v + high * 0.02, i, text, va="center", fontsize=6.5, color=INK)
        ax.set_yticks(y, names)
        ax.set_ylim(len(names) - 0.5, -0.5)
        ax.set_xlim(0, high * 1.45)
        ax.grid(axis="x", color=GRID, linewidth=0.6)
        ax.grid(axis="y", visible=False)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt(v)))
        ax.xaxis.set_major_locator(MaxNLocator(3))
        ax.tick_params(axis="y", length=0, labelcolor=INK)
        ax.set_title(title, loc="left", color=INK, fontweight="bold")
        return to_svg(fig, title)


def survival(tenure: Sequence[float], values: Sequence[float], fmt: Fmt, title: str, x_title: str,
             width: float = HALF, height: float = 2.1) -> str:
    """Kaplan-Meier survival curve as a step line."""
    with plt.rc_context(STYLE):
        fig, ax = _figure(width, height)
        ax.step(tenure, values, where="post", color=BLUE, linewidth=1.6)
        ax.set_ylim(0, 1.02)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt(v)))
        ax.set_xlabel(x_title, color=MUTED)
        ax.xaxis.set_major_locator(MaxNLocator(8, integer=True))
        ax.set_title(title, loc="left", color=INK, fontweight="bold")
        return to_svg(fig, title)

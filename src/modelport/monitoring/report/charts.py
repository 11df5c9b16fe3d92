"""Charts as inline SVG, written by hand.

The report draws two kinds of chart, paired bars and lines over time. A few lines of
SVG each keep a 20-feature, 30-day report in the tens of kilobytes, need no plotting
library in the install and no script in the page, and scale with the page (viewBox).
Every value a chart shows is also in its ``<title>`` tooltip.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

from markupsafe import Markup

REFERENCE = "#94a3b8"
CURRENT = "#4f46e5"
DRIFTED = "#e11d48"
GRID = "#e2e8f0"
INK = "#64748b"

Format = Callable[[float], str]


def percent(value: float) -> str:
    return f"{value * 100:.1f}%" if value < 0.1 else f"{value * 100:.0f}%"


def plain(value: float) -> str:
    if abs(value) >= 1e6:
        return f"{value / 1e6:.3g}M"
    if abs(value) >= 1e3:
        return f"{value / 1e3:.3g}k"
    return f"{value:.3g}"


def milliseconds(value: float) -> str:
    return f"{value * 1000:.3g} ms"


@dataclass(frozen=True)
class Series:
    """One line: a name for the legend and tooltips, a value per point (None: a gap)."""

    name: str
    values: Sequence[float | None]
    colour: str


def paired_bars(
    labels: Sequence[str],
    reference: Sequence[float],
    current: Sequence[float],
    *,
    edges: Sequence[str] | None = None,
    drifted: bool = False,
    width: int = 320,
    height: int = 140,
) -> Markup:
    """Reference and current shares side by side, one pair per bin or category; a
    histogram's axis shows its outer and middle ``edges`` rather than bin names."""
    top, bottom, left = 8, 20, 4
    plot_h = height - top - bottom
    n = max(len(labels), 1)
    slot = (width - 2 * left) / n
    bar = max(min(slot * 0.38, 28.0), 1.0)
    peak = max([*reference, *current, 1e-9])
    colour = DRIFTED if drifted else CURRENT
    parts = [_open(width, height, "reference and current distribution")]
    parts.append(_hline(left, width - left, top + plot_h, INK))
    for i, label in enumerate(labels):
        x = left + i * slot + slot / 2
        tip = f"{label}: reference {percent(reference[i])}, current {percent(current[i])}"
        parts.append(f"<g><title>{escape(tip)}</title>")
        parts.append(
            f'<rect x="{x - bar:.1f}" y="{top}" width="{2 * bar:.1f}" '
            f'height="{plot_h}" fill="transparent"/>'
        )
        for offset, share, fill in ((-bar, reference[i], REFERENCE), (0.0, current[i], colour)):
            h = plot_h * share / peak
            parts.append(
                f'<rect x="{x + offset:.1f}" y="{top + plot_h - h:.1f}" width="{bar:.1f}" '
                f'height="{h:.1f}" rx="1.5" fill="{fill}"/>'
            )
        parts.append("</g>")
    if edges:
        parts.extend(_edge_labels(edges, left, width - left, height - 6))
    else:
        parts.extend(_bar_labels(labels, left, slot, height - 6))
    parts.append("</svg>")
    return _svg(parts)


def _bar_labels(labels: Sequence[str], left: float, slot: float, y: float) -> list[str]:
    """Each label when they fit, else the first and the last."""
    chars = max(int(slot / 6.2), 1)
    fits = all(len(label) <= chars for label in labels)
    shown = range(len(labels)) if fits else sorted({0, len(labels) - 1})
    anchor = "middle" if fits else None
    out = []
    for i in shown:
        x = left + i * slot + slot / 2
        label = labels[i]
        if not fits:
            label = label if len(label) <= 14 else label[:13] + "…"
            anchor = "start" if i == 0 else "end"
            x = left + (i * slot if i == 0 else (i + 1) * slot)
        out.append(_text(x, y, label, anchor or "middle"))
    return out


def _edge_labels(edges: Sequence[str], left: float, right: float, y: float) -> list[str]:
    middle = len(edges) // 2
    out = [_text(left, y, edges[0], "start"), _text(right, y, edges[-1], "end")]
    if len(edges) > 2:
        x = left + (right - left) * middle / (len(edges) - 1)
        out.append(_text(x, y, edges[middle], "middle"))
    return out


def lines(
    starts: Sequence[datetime],
    series: Sequence[Series],
    *,
    fmt: Format = plain,
    threshold: float | None = None,
    floor_zero: bool = True,
    width: int = 640,
    height: int = 170,
) -> Markup:
    """Values over time; a dashed line marks ``threshold``."""
    top, bottom, left, right = 10, 22, 52, 10
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for s in series for v in s.values if v is not None]
    if threshold is not None:
        values.append(threshold)
    low = 0.0 if floor_zero or not values else min(values)
    high = max(values, default=1.0)
    if high <= low:
        high = low + (abs(low) or 1.0)

    def x_of(i: int) -> float:
        return left + (plot_w * (i + 0.5) / max(len(starts), 1))

    def y_of(v: float) -> float:
        return top + plot_h - plot_h * (v - low) / (high - low)

    parts = [_open(width, height, ", ".join(s.name for s in series))]
    parts.extend(_y_axis(low, high, left=left, right=width - right, y_of=y_of, fmt=fmt))
    if threshold is not None:
        y = y_of(threshold)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{DRIFTED}" stroke-dasharray="4 3" stroke-width="1"/>'
        )
    for line in series:
        parts.extend(_polyline(line, starts, x_of, y_of, fmt))
    parts.extend(_x_axis(starts, x_of, height - 6))
    parts.append("</svg>")
    return _svg(parts)


def columns(
    starts: Sequence[datetime],
    values: Sequence[float],
    *,
    highlight: Sequence[float] | None = None,
    fmt: Format = plain,
    width: int = 640,
    height: int = 170,
) -> Markup:
    """One column per bucket; ``highlight`` (e.g. errors) is drawn over its base."""
    top, bottom, left, right = 10, 22, 52, 10
    plot_w, plot_h = width - left - right, height - top - bottom
    high = max([*values, 1.0])
    slot = plot_w / max(len(starts), 1)
    bar = max(slot * 0.7, 1.0)

    def y_of(v: float) -> float:
        return top + plot_h - plot_h * v / high

    def x_of(i: int) -> float:
        return left + slot * (i + 0.5)

    parts = [_open(width, height, "volume")]
    parts.extend(_y_axis(0.0, high, left=left, right=width - right, y_of=y_of, fmt=fmt))
    for i, start in enumerate(starts):
        x = x_of(i) - bar / 2
        marked = highlight[i] if highlight is not None else 0.0
        tip = f"{_when(start)}: {fmt(values[i])}" + (f", errors {fmt(marked)}" if marked else "")
        parts.append(f"<g><title>{escape(tip)}</title>")
        parts.append(
            f'<rect x="{x:.1f}" y="{y_of(values[i]):.1f}" width="{bar:.1f}" '
            f'height="{top + plot_h - y_of(values[i]):.1f}" rx="1.5" fill="{CURRENT}"/>'
        )
        if marked:
            parts.append(
                f'<rect x="{x:.1f}" y="{y_of(marked):.1f}" width="{bar:.1f}" '
                f'height="{top + plot_h - y_of(marked):.1f}" fill="{DRIFTED}"/>'
            )
        parts.append("</g>")
    parts.extend(_x_axis(starts, x_of, height - 6))
    parts.append("</svg>")
    return _svg(parts)


def _polyline(
    line: Series,
    starts: Sequence[datetime],
    x_of: Callable[[int], float],
    y_of: Callable[[float], float],
    fmt: Format,
) -> list[str]:
    """Connected runs of present values; a lone point still shows as its dot."""
    parts, run = [], []
    for i, value in enumerate([*line.values, None]):
        if value is not None:
            run.append(f"{x_of(i):.1f},{y_of(value):.1f}")
            continue
        if len(run) > 1:
            parts.append(
                f'<polyline points="{" ".join(run)}" fill="none" '
                f'stroke="{line.colour}" stroke-width="2" stroke-linejoin="round"/>'
            )
        run = []
    dots = len(line.values) <= 96  # dots stay readable up to four days of hours
    for i, value in enumerate(line.values):
        if value is None:
            continue
        tip = escape(f"{_when(starts[i])}: {line.name} {fmt(value)}")
        radius = 2.5 if dots else 1.2
        parts.append(
            f'<circle cx="{x_of(i):.1f}" cy="{y_of(value):.1f}" r="{radius}" '
            f'fill="{line.colour}"><title>{tip}</title></circle>'
        )
    return parts


def _y_axis(
    low: float,
    high: float,
    *,
    left: float,
    right: float,
    y_of: Callable[[float], float],
    fmt: Format,
) -> list[str]:
    parts = []
    for step in range(3):
        value = low + (high - low) * step / 2
        y = y_of(value)
        parts.append(_hline(left, right, y, GRID))
        parts.append(_text(left - 6, y + 3.5, fmt(value), "end"))
    return parts


def _x_axis(starts: Sequence[datetime], x_of: Callable[[int], float], y: float) -> list[str]:
    if not starts:
        return []
    picks = sorted({0, len(starts) // 2, len(starts) - 1})
    anchors = {0: "start", len(starts) - 1: "end"}

    def anchor(i: int) -> str:
        return anchors.get(i, "middle") if len(picks) > 1 else "middle"

    return [
        _text(
            x_of(i), y, _when(starts[i]), anchors.get(i, "middle") if len(picks) > 1 else "middle"
        )
        for i in picks
    ]


def _when(moment: datetime) -> str:
    if moment.hour == 0 and moment.minute == 0:
        return moment.strftime("%b %d")
    return moment.strftime("%b %d %H:%M")


def _svg(parts: list[str]) -> Markup:
    # Every piece is built here with its text passed through html.escape.
    return Markup("".join(parts))  # noqa: S704


def _open(width: int, height: int, label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(label)}" class="chart">'
    )


def _hline(x1: float, x2: float, y: float, colour: str) -> str:
    return (
        f'<line x1="{x1:.1f}" x2="{x2:.1f}" y1="{y:.1f}" y2="{y:.1f}" '
        f'stroke="{colour}" stroke-width="1"/>'
    )


def _text(x: float, y: float, text: str, anchor: str) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="10" '
        f'fill="{INK}">{escape(text)}</text>'
    )

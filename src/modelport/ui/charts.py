"""The dashboard's own small charts, as inline SVG (the monitoring charts are the
report's, ``monitoring.report.charts``): a metric across versions, and how a
deployment's traffic splits between its arms. Each chart is an ``img`` with a title
that says in words what it draws, so a screen reader gets the numbers too."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

ACCENT = "#4f46e5"
PALETTE = ("#4f46e5", "#0d9488", "#d97706", "#db2777", "#2563eb", "#65a30d")
GRID = "#e2e8f0"
INK = "#475569"


def metric_line(name: str, points: Sequence[tuple[int, float]], *, width: int = 360) -> Markup:
    """A metric's value per version (``(version, value)`` oldest first) as a line with
    a dot per version and the first and last values labelled."""
    height, pad, top = 80, 8, 16
    values = [v for _, v in points]
    title = f"{name} by version: " + ", ".join(f"v{n} {v:.4g}" for n, v in points)
    low, high = min(values), max(values)
    span = (high - low) or abs(high) or 1.0

    def x(i: int) -> float:
        return pad + (width - 2 * pad) * (i / (len(points) - 1) if len(points) > 1 else 0.5)

    def y(v: float) -> float:
        return top + (height - top - pad) * (1 - (v - low) / span)

    coords = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, (_, v) in enumerate(points))
    parts = [
        _open(width, height, title),
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
        f'stroke="{GRID}"/>',
        f'<polyline points="{coords}" fill="none" stroke="{ACCENT}" stroke-width="2"/>',
    ]
    for i, (number, value) in enumerate(points):
        parts.append(
            f'<circle cx="{x(i):.1f}" cy="{y(value):.1f}" r="3" fill="{ACCENT}">'
            f"<title>v{number}: {value:.4g}</title></circle>"
        )
    parts.append(_label(pad, 10, f"v{points[0][0]} {points[0][1]:.3g}", "start"))
    if len(points) > 1:
        parts.append(_label(width - pad, 10, f"v{points[-1][0]} {points[-1][1]:.3g}", "end"))
    return Markup("".join([*parts, "</svg>"]))  # noqa: S704 (built from escaped parts)


def traffic_split(arms: Sequence[tuple[str, float]], *, width: int = 1100) -> Markup:
    """The live arms' weights (``(arm, percent)``) as one stacked bar with a legend."""
    height = 44
    title = "Traffic split: " + ", ".join(f"{name} {weight:g}%" for name, weight in arms)
    parts = [_open(width, height, title)]
    left = 0.0
    for i, (name, weight) in enumerate(arms):
        size = width * weight / 100
        colour = PALETTE[i % len(PALETTE)]
        parts.append(
            f'<rect x="{left:.1f}" y="0" width="{size:.1f}" height="18" fill="{colour}">'
            f"<title>{escape(name)}: {weight:g}%</title></rect>"
        )
        left += size
    legend = 0.0
    for i, (name, weight) in enumerate(arms):
        colour = PALETTE[i % len(PALETTE)]
        parts.append(f'<rect x="{legend:.1f}" y="28" width="10" height="10" fill="{colour}"/>')
        parts.append(_label(legend + 14, 37, f"{name} {weight:g}%", "start"))
        legend += 24 + 8 * len(f"{name} {weight:g}%")
    return Markup("".join([*parts, "</svg>"]))  # noqa: S704 (built from escaped parts)


def _open(width: int, height: int, title: str) -> str:
    label = escape(title)
    return (
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{label}" xmlns="http://www.w3.org/2000/svg"><title>{label}</title>'
    )


def _label(x: float, y: float, text: str, anchor: str) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="11" '
        f'fill="{INK}">{escape(text)}</text>'
    )

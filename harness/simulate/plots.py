"""Inline-SVG line plots with Monte Carlo error bars (coverage or bias against k or n).

Built on the axes helpers of :mod:`harness.plots` (no plotting library, no JavaScript). One
colour per fit, one dash pattern per value of a second design dimension; every point carries a
``<title>`` with its value and Monte Carlo SE, and the error bars span ±2 MC SE.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

from harness.plots import MB, ML, MR, MT, W, _frame, _scale, _yaxis, nice_ticks

H = 320
COLOURS = ("#0969da", "#cf222e", "#1a7f37", "#9a6700", "#8250df", "#57606a", "#bf3989")
DASHES = ("", "6 3", "2 3", "8 3 2 3")
ERROR_BAR_Z = 2.0


@dataclass(frozen=True)
class Series:
    label: str
    colour: int
    dash: int
    points: tuple[tuple[float, float, float | None], ...]  # (x, value, mcse)


def line_plot(series: list[Series], title: str, xlabel: str, ylabel: str,
              reference: float | None = None, reference_label: str = "") -> str:
    """Lines with ±2 MC SE error bars; a dashed horizontal ``reference`` (95 %, or 0 bias)."""
    pts = [p for s in series for p in s.points if math.isfinite(p[1])]
    if not pts:
        return ""
    xs = sorted({p[0] for p in pts})
    lows = [v - ERROR_BAR_Z * (e or 0.0) for _, v, e in pts]
    highs = [v + ERROR_BAR_Z * (e or 0.0) for _, v, e in pts]
    lo = min(lows + ([reference] if reference is not None else []))
    hi = max(highs + ([reference] if reference is not None else []))
    pad = (hi - lo) * 0.06 or 0.05
    lo, hi = lo - pad, hi + pad
    legend_rows = math.ceil(len(series) / 3)
    height = H + 18 * legend_rows
    plot_bottom = H - MB
    y = _scale(lo, hi, plot_bottom, MT)
    span = (xs[-1] - xs[0]) or 1.0
    x = _scale(xs[0] - 0.04 * span, xs[-1] + 0.04 * span, ML + 6, W - MR - 6)
    lines = _frame(title, xlabel, ylabel, H)
    lines[0] = lines[0].replace(f'viewBox="0 0 {W} {H}"', f'viewBox="0 0 {W} {height}"')
    _yaxis(lines, lo, hi, y, H)
    for t in xs if len(xs) <= 8 else nice_ticks(xs[0], xs[-1]):
        lines.append(f'<text x="{x(t):.1f}" y="{plot_bottom + 17}" text-anchor="middle" '
                     f'fill="#57606a">{t:g}</text>')
    if reference is not None:
        lines.append(f'<line x1="{ML}" x2="{W - MR}" y1="{y(reference):.1f}" '
                     f'y2="{y(reference):.1f}" stroke="#8c959f" stroke-dasharray="5 4"/>')
        if reference_label:
            lines.append(f'<text x="{W - MR - 4}" y="{y(reference) - 4:.1f}" text-anchor="end" '
                         f'fill="#57606a" font-size="13">{escape(reference_label)}</text>')
    for s in series:
        colour = COLOURS[s.colour % len(COLOURS)]
        dash = DASHES[s.dash % len(DASHES)]
        good = sorted(p for p in s.points if math.isfinite(p[1]))
        path = " ".join(f"{'M' if i == 0 else 'L'}{x(px):.1f},{y(py):.1f}"
                        for i, (px, py, _) in enumerate(good))
        lines.append(f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="1.8"'
                     + (f' stroke-dasharray="{dash}"' if dash else "") + "/>")
        for px, py, e in good:
            tip = f"{s.label}: {py:.4g}" + (f" ± {e:.2g} (MC SE)" if e else "") + f" at {px:g}"
            lines.append(f'<g class="pt"><title>{escape(tip)}</title>')
            if e:
                lines.append(f'<line x1="{x(px):.1f}" x2="{x(px):.1f}" '
                             f'y1="{y(py - ERROR_BAR_Z * e):.1f}" '
                             f'y2="{y(py + ERROR_BAR_Z * e):.1f}" stroke="{colour}"/>')
            lines.append(f'<circle cx="{x(px):.1f}" cy="{y(py):.1f}" r="3" fill="{colour}"/>'
                         "</g>")
    for i, s in enumerate(series):
        col, row = i % 3, i // 3
        lx, ly = ML + col * 190, H + 4 + row * 18
        colour = COLOURS[s.colour % len(COLOURS)]
        dash = DASHES[s.dash % len(DASHES)]
        lines.append(f'<line x1="{lx}" x2="{lx + 22}" y1="{ly}" y2="{ly}" stroke="{colour}" '
                     'stroke-width="2"' + (f' stroke-dasharray="{dash}"' if dash else "") + "/>")
        lines.append(f'<text x="{lx + 27}" y="{ly + 5}" font-size="13">{escape(s.label)}</text>')
    lines.append("</svg>")
    return "\n".join(lines)

"""Small inline-SVG plots for the report: no JavaScript, no network, no plotting library.

* :func:`caterpillar` — random effects ranked by estimate with ±multiplier x SE intervals
  (Stata's graphs use 1.96 x SE, the course's R code 2 x sd; catalogue D20: the multiplier is a
  parameter and is printed on the plot).
* :func:`scatter` — one backend's BLUPs against another's with the identity line.
* :func:`coefficient_plot` — each fixed effect as reported by every engine and reference, with
  estimate ± multiplier x SE intervals, one row per term on the term's own scale (an intercept
  of -3.5 and a slope of 0.05 are both readable), so a disagreement shows as displaced dots.

SVGs scale to their container (``viewBox`` with ``width=100%``), and every point carries a
``<title>`` so hovering (or long-pressing) names the cluster.
"""

from __future__ import annotations

import math
from html import escape

W, H = 640, 300
ML, MR, MT, MB = 66, 12, 34, 44  # margins


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        hi, lo = lo + 1.0, lo - 1.0
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step) * step
    ticks, t = [], start
    while t <= hi + step * 1e-9:
        ticks.append(0.0 if abs(t) < step * 1e-9 else t)
        t += step
    return ticks


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def _scale(lo: float, hi: float, a: float, b: float):  # noqa: ANN202
    span = hi - lo or 1.0
    return lambda v: a + (v - lo) / span * (b - a)


def _frame(title: str, xlabel: str, ylabel: str, height: int = H) -> list[str]:
    return [f'<svg class="plot" viewBox="0 0 {W} {height}" width="100%" role="img" '
            f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg" '
            'font-family="system-ui, sans-serif" font-size="15">',
            f"<title>{escape(title)}</title>",
            f'<text x="{ML}" y="20" font-size="17" font-weight="600">{escape(title)}</text>',
            f'<text x="{(ML + W - MR) / 2}" y="{height - 4}" text-anchor="middle" '
            f'fill="#57606a">{escape(xlabel)}</text>',
            f'<text transform="translate(16 {(MT + height - MB) / 2}) rotate(-90)" '
            f'text-anchor="middle" fill="#57606a">{escape(ylabel)}</text>']


def _yaxis(lines: list[str], lo: float, hi: float, y, height: int = H) -> None:  # noqa: ANN001
    for t in nice_ticks(lo, hi):
        yy = y(t)
        lines.append(f'<line x1="{ML}" x2="{W - MR}" y1="{yy:.1f}" y2="{yy:.1f}" '
                     f'stroke="{"#8c959f" if t == 0 else "#eaeef2"}"/>')
        lines.append(f'<text x="{ML - 4}" y="{yy + 4:.1f}" text-anchor="end" '
                     f'fill="#57606a">{_fmt(t)}</text>')


def caterpillar(rows: list[tuple[str, float, float | None]], title: str, group: str,
                multiplier: float = 1.96, max_points: int = 400) -> str:
    """``rows`` = (level, estimate, half-width or None), sorted by estimate."""
    if not rows:
        return ""
    shown = rows
    note = ""
    if len(rows) > max_points:  # keep the extremes, thin the middle
        k = max_points // 2
        step = max(1, (len(rows) - 2 * k) // k)
        shown = rows[:k // 2] + rows[k // 2:len(rows) - k // 2:step] + rows[len(rows) - k // 2:]
        note = f" (showing {len(shown)} of {len(rows)})"
    los = [e - (h or 0.0) for _, e, h in shown]
    his = [e + (h or 0.0) for _, e, h in shown]
    lo, hi = min(los + [0.0]), max(his + [0.0])
    pad = (hi - lo) * 0.05 or 1.0
    lo, hi = lo - pad, hi + pad
    y = _scale(lo, hi, H - MB, MT)
    x = _scale(-0.5, len(shown) - 0.5, ML + 4, W - MR - 4)
    lines = _frame(f"{title}{note}", f"{group}, ranked by estimate ({len(rows)} levels)",
                   f"estimate ± {multiplier:g} × SE")
    _yaxis(lines, lo, hi, y)
    for i, (level, est, half) in enumerate(shown):
        xx = x(i)
        tip = f"{group} {level}: {est:.5g}" + (f" ± {half:.3g}" if half is not None else "")
        lines.append(f'<g class="pt"><title>{escape(tip)}</title>')
        if half is not None:
            lines.append(f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{y(est - half):.1f}" '
                         f'y2="{y(est + half):.1f}" stroke="#0969da" stroke-opacity=".45"/>')
        lines.append(f'<circle cx="{xx:.1f}" cy="{y(est):.1f}" r="2.6" fill="#0969da"/></g>')
    lines.append("</svg>")
    return "\n".join(lines)


def scatter(points: list[tuple[str, float, float]], title: str, xlabel: str,
            ylabel: str) -> str:
    """(label, x, y) points with the identity line y = x."""
    if not points:
        return ""
    height = 360
    vals = [v for _, a, b in points for v in (a, b)]
    lo, hi = min(vals), max(vals)
    pad = (hi - lo) * 0.06 or 1.0
    lo, hi = lo - pad, hi + pad
    x = _scale(lo, hi, ML, W - MR)
    y = _scale(lo, hi, height - MB, MT)
    lines = _frame(title, xlabel, ylabel, height)
    _yaxis(lines, lo, hi, y, height)
    for t in nice_ticks(lo, hi):
        lines.append(f'<text x="{x(t):.1f}" y="{height - MB + 17}" text-anchor="middle" '
                     f'fill="#57606a">{_fmt(t)}</text>')
    lines.append(f'<line class="identity" x1="{x(lo):.1f}" y1="{y(lo):.1f}" x2="{x(hi):.1f}" '
                 f'y2="{y(hi):.1f}" stroke="#cf222e" stroke-dasharray="4 3"/>')
    lines.append(f'<text x="{x(hi) - 4:.1f}" y="{y(hi) + 14:.1f}" text-anchor="end" '
                 'fill="#cf222e">y = x</text>')
    for label, a, b in points:
        lines.append(f'<circle cx="{x(a):.1f}" cy="{y(b):.1f}" r="2.6" fill="#0969da" '
                     f'fill-opacity=".7"><title>{escape(label)}: {a:.6g} vs {b:.6g}</title>'
                     "</circle>")
    lines.append("</svg>")
    return "\n".join(lines)


#: colours of the sources in a coefficient plot, in column order (colour-blind safe, Okabe-Ito)
SOURCE_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")


def coefficient_plot(terms: list[tuple[str, list[tuple[str, float, float | None]]]],
                     title: str, multiplier: float = 1.96) -> str:
    """``terms`` = (term, [(source, estimate, SE or None), ...]); one row per term."""
    terms = [(t, pts) for t, pts in terms if pts]
    if not terms:
        return ""
    sources = list(dict.fromkeys(src for _, pts in terms for src, _, _ in pts))
    colour = {src: SOURCE_COLOURS[i % len(SOURCE_COLOURS)] for i, src in enumerate(sources)}
    legend, lx, ly = [], float(ML), float(MT + 6)
    for src in sources:  # the legend wraps onto more lines when the names do not fit
        width = 24 + 9 * len(src)
        if lx + width > W - MR and lx > ML:
            lx, ly = float(ML), ly + 16
        legend.append(f'<circle cx="{lx:.0f}" cy="{ly:.0f}" r="4" fill="{colour[src]}"/>'
                      f'<text x="{lx + 8:.0f}" y="{ly + 5:.0f}" fill="#1f2328">{escape(src)}</text>')
        lx += width
    row_h, label_w, top = 20 + 9 * len(sources), 150, ly + 16
    height = int(top + row_h * len(terms) + 26)
    lines = _frame(title, f"estimate ± {multiplier:g} × SE, each row on its own scale",
                   "", height)
    lines.extend(legend)
    for i, (term, pts) in enumerate(terms):
        y0 = top + i * row_h
        ends = [v for _, est, se in pts for v in (est - multiplier * (se or 0.0),
                                                  est + multiplier * (se or 0.0))]
        lo, hi = min(ends), max(ends)
        pad = (hi - lo) * 0.08 or max(abs(lo), 1e-9) * 0.05
        x = _scale(lo - pad, hi + pad, label_w + 40, W - MR - 40)
        lines.append(f'<text x="{label_w - 6}" y="{y0 + row_h / 2 + 4:.1f}" text-anchor="end" '
                     f'fill="#1f2328">{escape(term)}</text>')
        lines.append(f'<line x1="{label_w}" x2="{W - MR}" y1="{y0 + row_h:.1f}" '
                     f'y2="{y0 + row_h:.1f}" stroke="#eaeef2"/>')
        lines.append(f'<text x="{label_w + 36}" y="{y0 + row_h - 3:.1f}" text-anchor="end" '
                     f'font-size="11" fill="#57606a">{_fmt(lo - pad)}</text>')
        lines.append(f'<text x="{W - MR - 36}" y="{y0 + row_h - 3:.1f}" font-size="11" '
                     f'fill="#57606a">{_fmt(hi + pad)}</text>')
        for j, (src, est, se) in enumerate(pts):
            yy = y0 + 8 + j * 9
            tip = f"{term}, {src}: {est:.7g}" + (f" (SE {se:.4g})" if se is not None else "")
            lines.append(f'<g class="pt"><title>{escape(tip)}</title>')
            if se is not None:
                lines.append(f'<line x1="{x(est - multiplier * se):.1f}" '
                             f'x2="{x(est + multiplier * se):.1f}" y1="{yy:.1f}" y2="{yy:.1f}" '
                             f'stroke="{colour[src]}" stroke-width="2"/>')
            lines.append(f'<circle cx="{x(est):.1f}" cy="{yy:.1f}" r="3.4" '
                         f'fill="{colour[src]}"/></g>')
    lines.append("</svg>")
    return "\n".join(lines)

"""Charts of the success teams' page as inline SVG, drawn on the server (no script, no CDN).

Pure functions from plain values to an SVG string. Every text is escaped; every chart has a
role and a label for screen readers, and each mark a <title> with its exact value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

RISK_UP = "#b42318"  # raises the risk / lowers NPS
RISK_DOWN = "#1a7f37"
ACTUAL = "#475467"
PREDICTED = "#2e5aac"


def _num(value: float, digits: int = 2) -> str:
    return f"{value:+.{digits}f}"


def _svg(width: int, height: int, label: str, body: list[str]) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'preserveAspectRatio="xMinYMin meet" role="img" aria-label="{escape(label)}" '
        f'xmlns="http://www.w3.org/2000/svg">' + "".join(body) + "</svg>"
    )


def _clip(text: str, most: int) -> str:
    return text if len(text) <= most else text[: most - 1] + "…"


def driver_chart(
    drivers: Sequence[dict], label: str, higher_is_worse: bool = True, width: int = 900
) -> str:
    """Horizontal bars of SHAP contributions, largest first, each with its plain description.

    Bars to the right raise the target (churn probability, or the predicted 0-10 score); red
    marks the bad direction: up for churn (``higher_is_worse``), down for the NPS score.
    """
    if not drivers:
        return ""
    row, top, label_w, pad = 28, 8, 470, 48  # pad: room for the value beside the longest bar
    height = top + row * len(drivers) + 22
    plot_w = width - label_w - 2 * pad
    most = max(abs(float(d.get("contribution") or 0.0)) for d in drivers) or 1.0
    zero = label_w + pad + plot_w / 2
    scale = (plot_w / 2) / most
    body = [
        f'<line x1="{zero:.1f}" y1="{top - 4}" x2="{zero:.1f}" y2="{height - 18}" '
        'stroke="#98a2b3" stroke-width="1"/>'
    ]
    for i, d in enumerate(drivers):
        c = float(d.get("contribution") or 0.0)
        y = top + i * row
        w = max(abs(c) * scale, 1.0)
        x = zero if c >= 0 else zero - w
        colour = RISK_UP if (c >= 0) == higher_is_worse else RISK_DOWN
        text = str(d.get("description") or d.get("feature") or "")
        exact = f"{text}: contribution {_num(c, 3)}"
        body.append(
            f'<g class="driver"><title>{escape(exact)}</title>'
            f'<text x="{label_w - 8}" y="{y + 18}" text-anchor="end" class="lbl">'
            f"{escape(_clip(text, 76))}</text>"
            f'<rect x="{x:.1f}" y="{y + 5}" width="{w:.1f}" height="{row - 12}" '
            f'fill="{colour}" rx="2"/>'
            f'<text x="{(x + w + 4) if c >= 0 else (x - 4):.1f}" y="{y + 18}" '
            f'text-anchor="{"start" if c >= 0 else "end"}" class="val">{_num(c)}</text></g>'
        )
    body.append(
        f'<text x="{zero - 6:.1f}" y="{height - 4}" text-anchor="end" class="axis">'
        f"← lowers</text>"
        f'<text x="{zero + 6:.1f}" y="{height - 4}" class="axis">raises →</text>'
    )
    return _svg(width, height, label, body)


def paired_bars(
    rows: Sequence[tuple[str, float | None, float | None]],
    label: str,
    domain: tuple[float, float],
    names: tuple[str, str] = ("actual", "predicted"),
    digits: int = 0,
    width: int = 560,
) -> str:
    """Two bars per category (e.g. actual vs predicted NPS), on a shared axis with a zero line.

    A missing value (no answers in the segment) is drawn as "no data", not as zero.
    """
    if not rows:
        return ""
    lo, hi = domain
    row, top, label_w = 34, 22, 150
    plot_w = width - label_w - 60
    height = top + row * len(rows) + 10

    def x_of(v: float) -> float:
        return label_w + (min(max(v, lo), hi) - lo) / (hi - lo) * plot_w

    zero = x_of(0.0) if lo < 0 < hi else x_of(lo)
    body = [
        f'<rect x="{label_w}" y="4" width="10" height="10" fill="{ACTUAL}"/>'
        f'<text x="{label_w + 14}" y="13" class="axis">{escape(names[0])}</text>'
        f'<rect x="{label_w + 90}" y="4" width="10" height="10" fill="{PREDICTED}"/>'
        f'<text x="{label_w + 104}" y="13" class="axis">{escape(names[1])}</text>',
        f'<line x1="{zero:.1f}" y1="{top - 2}" x2="{zero:.1f}" y2="{height - 6}" '
        'stroke="#98a2b3"/>',
    ]
    for i, (name, first, second) in enumerate(rows):
        y = top + i * row
        body.append(
            f'<text x="{label_w - 8}" y="{y + 18}" text-anchor="end" class="lbl">'
            f"{escape(_clip(str(name), 22))}</text>"
        )
        for j, (value, colour) in enumerate(((first, ACTUAL), (second, PREDICTED))):
            by = y + 3 + j * 14
            if value is None or (isinstance(value, float) and math.isnan(value)):
                body.append(
                    f'<text x="{zero + 4:.1f}" y="{by + 10}" class="axis">'
                    f"{escape(names[j])}: no data</text>"
                )
                continue
            x0, x1 = sorted((zero, x_of(float(value))))
            body.append(
                f"<g><title>{escape(f'{name} {names[j]}: {value:.{digits}f}')}</title>"
                f'<rect x="{x0:.1f}" y="{by}" width="{max(x1 - x0, 1):.1f}" height="12" '
                f'fill="{colour}" rx="2"/>'
                f'<text x="{max(x1, zero) + 4:.1f}" y="{by + 10}" class="val">'
                f"{value:.{digits}f}</text></g>"
            )
    return _svg(width, height, label, body)


def score_history(points: Sequence[tuple[str, float]], label: str, width: int = 560) -> str:
    """NPS answers over time (0-10) as dots joined by a line, with the detractor/promoter bands."""
    if not points:
        return ""
    height, left, top, bottom = 170, 34, 10, 30
    plot_w, plot_h = width - left - 16, height - top - bottom

    def y_of(score: float) -> float:
        return top + (10 - score) / 10 * plot_h

    n = len(points)
    xs = [left + (plot_w * (i / (n - 1)) if n > 1 else plot_w / 2) for i in range(n)]
    body = [
        f'<rect x="{left}" y="{y_of(6.5):.1f}" width="{plot_w}" height="{y_of(0) - y_of(6.5):.1f}"'
        ' fill="#fdecea"/>',
        f'<rect x="{left}" y="{y_of(10):.1f}" width="{plot_w}" height="{y_of(8.5) - y_of(10):.1f}"'
        ' fill="#e7f5ec"/>',
    ]
    for tick in (0, 5, 10):
        body.append(
            f'<text x="{left - 6}" y="{y_of(tick) + 4:.1f}" text-anchor="end" class="axis">'
            f"{tick}</text>"
        )
    path = " ".join(
        f"{'M' if i == 0 else 'L'}{x:.1f},{y_of(s):.1f}"
        for i, (x, (_, s)) in enumerate(zip(xs, points, strict=True))
    )
    body.append(f'<path d="{path}" fill="none" stroke="{PREDICTED}" stroke-width="2"/>')
    for x, (when, score) in zip(xs, points, strict=True):
        body.append(
            f"<g><title>{escape(f'{when}: {score:g}')}</title>"
            f'<circle cx="{x:.1f}" cy="{y_of(score):.1f}" r="4" fill="{PREDICTED}"/></g>'
        )
    for i in sorted({0, n - 1}):
        anchor = "middle" if n == 1 else "start" if i == 0 else "end"
        body.append(
            f'<text x="{xs[i]:.1f}" y="{height - 8}" text-anchor="{anchor}" class="axis">'
            f"{escape(points[i][0])}</text>"
        )
    return _svg(width, height, label, body)


def interval_chart(
    rows: Sequence[tuple[str, float | None, float | None, float | None]],
    label: str,
    domain: tuple[float, float] = (-100.0, 100.0),
    width: int = 560,
) -> str:
    """A point estimate with its interval per row (e.g. the next wave's NPS and the base's)."""
    if not rows:
        return ""
    lo, hi = domain
    row, top, label_w = 30, 8, 150
    plot_w = width - label_w - 70
    height = top + row * len(rows) + 20

    def x_of(v: float) -> float:
        return label_w + (min(max(v, lo), hi) - lo) / (hi - lo) * plot_w

    body = []
    for tick in (lo, 0.0, hi):
        body.append(
            f'<line x1="{x_of(tick):.1f}" y1="{top}" x2="{x_of(tick):.1f}" y2="{height - 16}" '
            'stroke="#d0d5dd"/>'
            f'<text x="{x_of(tick):.1f}" y="{height - 4}" text-anchor="middle" class="axis">'
            f"{tick:g}</text>"
        )
    for i, (name, point, low, high) in enumerate(rows):
        y = top + i * row + 12
        body.append(
            f'<text x="{label_w - 8}" y="{y + 4}" text-anchor="end" class="lbl">'
            f"{escape(_clip(str(name), 22))}</text>"
        )
        if point is None:
            body.append(f'<text x="{label_w + 4}" y="{y + 4}" class="axis">no estimate</text>')
            continue
        if low is not None and high is not None:
            body.append(
                f'<line x1="{x_of(low):.1f}" y1="{y}" x2="{x_of(high):.1f}" y2="{y}" '
                f'stroke="{PREDICTED}" stroke-width="3"/>'
            )
        span = f" ({low:.1f} to {high:.1f})" if low is not None and high is not None else ""
        body.append(
            f"<g><title>{escape(f'{name}: {point:.1f}{span}')}</title>"
            f'<circle cx="{x_of(point):.1f}" cy="{y}" r="5" fill="{PREDICTED}"/>'
            f'<text x="{x_of(high if high is not None else point) + 8:.1f}" y="{y + 4}" '
            f'class="val">{point:.1f}</text></g>'
        )
    return _svg(width, height, label, body)


def bars(
    rows: Sequence[tuple[str, float]],
    label: str,
    domain: tuple[float, float],
    unit: str = "",
    width: int = 560,
) -> str:
    """One bar per category from ``domain[0]`` (e.g. mean churn risk in %)."""
    if not rows:
        return ""
    lo, hi = domain
    row, top, label_w = 26, 6, 150
    plot_w = width - label_w - 60
    height = top + row * len(rows) + 6
    body = [
        f'<line x1="{label_w}" y1="{top - 2}" x2="{label_w}" y2="{height - 4}" stroke="#98a2b3"/>'
    ]
    for i, (name, value) in enumerate(rows):
        y = top + i * row
        w = max((min(max(value, lo), hi) - lo) / (hi - lo) * plot_w, 1.0)
        body.append(
            f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end" class="lbl">'
            f"{escape(_clip(str(name), 22))}</text>"
            f"<g><title>{escape(f'{name}: {value:.1f}{unit}')}</title>"
            f'<rect x="{label_w}" y="{y + 4}" width="{w:.1f}" height="16" fill="{PREDICTED}" '
            f'rx="2"/><text x="{label_w + w + 4:.1f}" y="{y + 16}" class="val">'
            f"{value:.0f}{escape(unit)}</text></g>"
        )
    return _svg(width, height, label, body)

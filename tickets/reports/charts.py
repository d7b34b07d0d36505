"""Charts drawn on the server as inline SVG: no JavaScript, no build step, no chart library.

Each chart is drawn from the same rows as the table beside it. Text uses currentColor, so the admin's light and
dark themes both read well.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

PALETTE = ("#417690", "#e0a030", "#5b9a68", "#ba2121", "#8a6fb0")
WIDTH = 640
LINE_HEIGHT = 240
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 52, 12, 28, 34


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]


def nice_ceiling(value: float) -> float:
    """The axis maximum: 1, 2, 2.5 or 5 times a power of ten, at least `value`."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)


def _number(value: float) -> str:
    return f"{value:g}" if value < 10_000 else f"{value:,.0f}"


def _legend(series: Sequence[Series], y: float) -> str:
    parts, x = [], MARGIN_LEFT
    for index, item in enumerate(series):
        colour = PALETTE[index % len(PALETTE)]
        parts.append(f'<rect x="{x}" y="{y - 9}" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{x + 14}" y="{y}" font-size="12" fill="currentColor">{escape(item.name)}</text>')
        x += 24 + 7 * len(item.name) + 6 * sum(1 for ch in item.name if ord(ch) > 0x2E80)
    return "".join(parts)


def _frame(*, title: str, height: int, body: str) -> SafeString:
    return mark_safe(
        f'<svg class="report-chart" data-testid="report-chart" role="img" aria-label="{escape(title)}" '
        f'viewBox="0 0 {WIDTH} {height}" width="100%" preserveAspectRatio="xMinYMin meet" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>{body}</svg>'
    )


def line_chart(*, title: str, labels: Sequence[str], series: Sequence[Series]) -> SafeString:
    """A time series: one line per series over the day labels; gaps where a value is None."""
    top = max((v for s in series for v in s.values if v is not None), default=0.0)
    ceiling = nice_ceiling(top)
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = LINE_HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    count = max(len(labels), 1)

    def x_at(index: int) -> float:
        return MARGIN_LEFT + (plot_w * index / (count - 1) if count > 1 else plot_w / 2)

    def y_at(value: float) -> float:
        return MARGIN_TOP + plot_h * (1 - value / ceiling)

    parts = [_legend(series, 16)]
    for tick in range(5):
        value = ceiling * tick / 4
        y = y_at(value)
        parts.append(
            f'<line x1="{MARGIN_LEFT}" x2="{WIDTH - MARGIN_RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="currentColor" stroke-opacity="{0.35 if tick == 0 else 0.12}"/>'
            f'<text x="{MARGIN_LEFT - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" '
            f'fill="currentColor">{_number(value)}</text>'
        )
    every = max(1, math.ceil(count / 8))
    for index, label in enumerate(labels):
        if index % every == 0 or (index == count - 1 and count <= 8):
            parts.append(
                f'<text x="{x_at(index):.1f}" y="{LINE_HEIGHT - 12}" font-size="11" text-anchor="middle" '
                f'fill="currentColor">{escape(label)}</text>'
            )
    for number, item in enumerate(series):
        colour = PALETTE[number % len(PALETTE)]
        runs: list[list[str]] = [[]]
        for index, point in enumerate(item.values):
            if point is None:
                runs.append([])
            else:
                runs[-1].append(f"{x_at(index):.1f},{y_at(point):.1f}")
        for run in runs:
            if len(run) > 1:
                parts.append(
                    f'<polyline points="{" ".join(run)}" fill="none" stroke="{colour}" stroke-width="2" '
                    'stroke-linejoin="round"/>'
                )
            elif run:
                px, py = run[0].split(",")
                parts.append(f'<circle cx="{px}" cy="{py}" r="2.5" fill="{colour}"/>')
    return _frame(title=title, height=LINE_HEIGHT, body="".join(parts))


BAR_ROW = 22
BAR_LABEL_WIDTH = 190


def bar_chart(*, title: str, labels: Sequence[str], series: Sequence[Series]) -> SafeString:
    """Horizontal bars, one group per label (long labels such as product names stay readable)."""
    top = max((v for s in series for v in s.values if v is not None), default=0.0)
    ceiling = nice_ceiling(top)
    group = BAR_ROW * len(series) + 8
    height = MARGIN_TOP + group * max(len(labels), 1) + MARGIN_BOTTOM - 10
    plot_w = WIDTH - BAR_LABEL_WIDTH - MARGIN_RIGHT - 48
    parts = [_legend(series, 16)]
    for tick in range(5):
        x = BAR_LABEL_WIDTH + plot_w * tick / 4
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{MARGIN_TOP}" y2="{height - MARGIN_BOTTOM + 10}" '
            f'stroke="currentColor" stroke-opacity="{0.35 if tick == 0 else 0.12}"/>'
            f'<text x="{x:.1f}" y="{height - 8}" font-size="11" text-anchor="middle" '
            f'fill="currentColor">{_number(ceiling * tick / 4)}</text>'
        )
    for row, label in enumerate(labels):
        y0 = MARGIN_TOP + row * group + 4
        short = label if len(label) <= 26 else label[:25] + "…"
        parts.append(
            f'<text x="{BAR_LABEL_WIDTH - 8}" y="{y0 + group / 2:.1f}" font-size="12" text-anchor="end" '
            f'dominant-baseline="middle" fill="currentColor"><title>{escape(label)}</title>{escape(short)}</text>'
        )
        for number, item in enumerate(series):
            value = item.values[row] or 0
            width = plot_w * value / ceiling
            y = y0 + number * BAR_ROW
            parts.append(
                f'<rect x="{BAR_LABEL_WIDTH}" y="{y}" width="{width:.1f}" height="{BAR_ROW - 6}" '
                f'fill="{PALETTE[number % len(PALETTE)]}"/>'
                f'<text x="{BAR_LABEL_WIDTH + width + 4:.1f}" y="{y + (BAR_ROW - 6) / 2:.1f}" font-size="11" '
                f'dominant-baseline="middle" fill="currentColor">{_number(value)}</text>'
            )
    return _frame(title=title, height=height, body="".join(parts))

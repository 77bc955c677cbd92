"""Server-side SVG chart geometry: pure functions over plain numbers, rendered by templates.

Charts are drawn on the server so the pages need no JavaScript and load nothing from the
internet; the templates only place the shapes these functions compute.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True, slots=True)
class TrendPoint:
    """One plotted point: its position in the SVG and what it stands for."""

    x: float
    y: float
    day: date
    value: float


@dataclass(frozen=True, slots=True)
class AxisTick:
    """A horizontal grid line with its label."""

    y: float
    label: str


@dataclass(frozen=True, slots=True)
class TrendChart:
    """A line chart of one value per day, sized for an SVG viewBox of ``width`` x ``height``."""

    width: int
    height: int
    points: list[TrendPoint]
    ticks: list[AxisTick]
    line: str  # SVG polyline "x,y x,y ..."
    area: str  # SVG path closing the line down to the baseline
    first_label: str
    last_label: str
    plot_left: float
    plot_right: float
    baseline: float

    @property
    def empty(self) -> bool:
        """True when there is nothing to draw."""
        return not self.points


def _nice_range(values: Sequence[float], floor: float, ceiling: float) -> tuple[float, float]:
    # A range rounded out to tens and spanning a multiple of 20 gives grid lines at round
    # numbers and keeps small day-to-day moves readable without exaggerating them.
    low = max(floor, math.floor(min(values) / 10.0) * 10.0 - 10.0)
    high = min(ceiling, math.ceil(max(values) / 10.0) * 10.0 + 10.0)
    span = max(20.0, math.ceil((high - low) / 20.0) * 20.0)
    high = low + span
    if high > ceiling:
        high, low = ceiling, max(floor, ceiling - span)
    return low, high


def trend_chart(
    series: Sequence[tuple[date, float]],
    *,
    width: int = 360,
    height: int = 150,
    floor: float = 0.0,
    ceiling: float = 100.0,
) -> TrendChart:
    """Lay out a daily series (oldest first) as a line with grid lines and axis labels."""
    left, right, top, bottom = 28.0, width - 6.0, 8.0, height - 20.0
    if not series:
        return TrendChart(width, height, [], [], "", "", "", "", left, right, bottom)
    values = [value for _, value in series]
    low, high = _nice_range(values, floor, ceiling)
    span = high - low

    def y_of(value: float) -> float:
        return round(bottom - (value - low) / span * (bottom - top), 2)

    step = (right - left) / (len(series) - 1) if len(series) > 1 else 0.0
    points = [
        TrendPoint(
            round(left + i * step if len(series) > 1 else (left + right) / 2, 2), y_of(v), d, v
        )
        for i, (d, v) in enumerate(series)
    ]
    line = " ".join(f"{p.x},{p.y}" for p in points)
    area = (
        f"M{points[0].x},{bottom} "
        + " ".join(f"L{p.x},{p.y}" for p in points)
        + f" L{points[-1].x},{bottom} Z"
    )
    tick_step = span / 4.0
    ticks = [AxisTick(y_of(low + i * tick_step), f"{low + i * tick_step:.0f}") for i in range(5)]
    return TrendChart(
        width=width,
        height=height,
        points=points,
        ticks=ticks,
        line=line,
        area=area,
        first_label=series[0][0].strftime("%b %d"),
        last_label=series[-1][0].strftime("%b %d"),
        plot_left=left,
        plot_right=right,
        baseline=bottom,
    )


@dataclass(frozen=True, slots=True)
class DonutSegment:
    """One coloured arc of a donut, drawn as a dashed circle stroke."""

    key: str
    label: str
    count: int
    percent: float
    dasharray: str
    dashoffset: float


@dataclass(frozen=True, slots=True)
class Donut:
    """A donut chart of counts; ``circumference`` belongs to a circle of radius ``radius``."""

    radius: float
    circumference: float
    total: int
    segments: list[DonutSegment]


def donut(parts: Sequence[tuple[str, str, int]], *, radius: float = 54.0) -> Donut:
    """Lay out ``(key, label, count)`` parts as arcs of one circle, clockwise from the top."""
    circumference = 2.0 * math.pi * radius
    total = sum(max(count, 0) for _, _, count in parts)
    segments: list[DonutSegment] = []
    start = 0.0
    for key, label, count in parts:
        share = max(count, 0) / total if total else 0.0
        length = share * circumference
        segments.append(
            DonutSegment(
                key=key,
                label=label,
                count=count,
                percent=round(share * 100.0, 1),
                dasharray=f"{length:.3f} {circumference - length:.3f}",
                # A positive offset would run the arc backwards; SVG dashes start at 3 o'clock,
                # so the template rotates the circle -90 degrees and we offset by what came before.
                dashoffset=round(-start, 3),
            )
        )
        start += length
    return Donut(radius, round(circumference, 3), total, segments)

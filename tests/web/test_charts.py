"""The server-side chart geometry: what the SVG shows must match the numbers."""

from __future__ import annotations

import math
from datetime import date, timedelta

from remedium.web.charts import donut, trend_chart


def test_trend_chart_plots_one_point_per_day_and_higher_values_higher() -> None:
    start = date(2026, 11, 1)
    series = [(start + timedelta(days=i), v) for i, v in enumerate([40.0, 35.0, 52.0])]
    chart = trend_chart(series, width=300, height=120)
    assert [p.value for p in chart.points] == [40.0, 35.0, 52.0]
    assert len(chart.line.split()) == 3
    # SVG y grows downwards: the largest value is drawn highest.
    assert chart.points[2].y < chart.points[0].y < chart.points[1].y
    assert chart.points[0].x == chart.plot_left
    assert chart.points[-1].x == chart.plot_right
    # Grid lines sit at round numbers around the data, within 0-100.
    labels = [float(t.label) for t in chart.ticks]
    assert labels[0] <= 35.0
    assert labels[-1] >= 52.0
    assert all(label % 5 == 0 for label in labels)
    assert chart.first_label == "Nov 01"
    assert chart.last_label == "Nov 03"


def test_trend_chart_of_flat_or_extreme_series_stays_inside_the_plot() -> None:
    day = date(2026, 11, 1)
    for values in ([0.0, 0.0], [100.0, 100.0], [0.0, 100.0], [63.0]):
        chart = trend_chart([(day + timedelta(days=i), v) for i, v in enumerate(values)])
        for point in chart.points:
            assert 0 <= point.y <= chart.baseline
            assert chart.plot_left <= point.x <= chart.plot_right
    assert trend_chart([]).empty


def test_donut_arcs_cover_the_circle_in_proportion() -> None:
    chart = donut([("high", "High", 1), ("medium", "Medium", 3), ("low", "Low", 0)], radius=10)
    assert chart.total == 4
    assert [s.percent for s in chart.segments] == [25.0, 75.0, 0.0]
    lengths = [float(s.dasharray.split()[0]) for s in chart.segments]
    assert math.isclose(sum(lengths), 2 * math.pi * 10, rel_tol=1e-4)
    # Each arc starts where the previous one ended.
    assert math.isclose(-chart.segments[1].dashoffset, lengths[0], rel_tol=1e-3)
    empty = donut([("none", "None", 0)])
    assert empty.total == 0
    assert empty.segments[0].percent == 0.0

"""plotly figures of the FinOps pages (the JS is served locally; no CDN).

Floats are used for drawing only; the figures in tables and CSV stay exact.
"""

from __future__ import annotations

from datetime import date

from gatehouse.charts import figure_html

PALETTE = (
    "#2f5fd0",
    "#c2410c",
    "#15803d",
    "#7c3aed",
    "#b91c1c",
    "#0e7490",
    "#a16207",
    "#be185d",
    "#4b5563",
    "#65a30d",
)
CONFIG = {"displayModeBar": False, "responsive": True}


def _layout(*, money: bool, height: int = 320, stacked: bool = False, y_title: str = "", x: dict | None = None) -> dict:
    return {
        "height": height,
        "margin": {"l": 60, "r": 20, "t": 10, "b": 40},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "legend": {"orientation": "h", "y": 1.15, "x": 0},
        "barmode": "stack" if stacked else "group",
        "yaxis": {
            "rangemode": "tozero",
            "gridcolor": "#eef0f3",
            "tickprefix": "$" if money else "",
            "title": {"text": y_title},
        },
        "xaxis": {"gridcolor": "#eef0f3", **(x or {})},
    }


def _html(div_id: str, data: list[dict], layout: dict) -> str:
    """The figure as a div and its JSON, drawn by static/js/charts.js: no plotly object tree
    (which costs ~100 ms a figure) and no inline script (the console's CSP allows none)."""
    return figure_html(div_id, data, layout, CONFIG)


DATE_AXIS = {"type": "date", "tickformat": "%b %d"}


def stacked_days(
    div_id: str, days: list[date], series: dict[str, list[float]], *, money: bool = True, y_title: str = ""
) -> str:
    x = [d.isoformat() for d in days]
    data = [
        {"type": "bar", "x": x, "y": values, "name": name, "marker": {"color": PALETTE[index % len(PALETTE)]}}
        for index, (name, values) in enumerate(series.items())
    ]
    return _html(div_id, data, _layout(money=money, stacked=True, y_title=y_title, x=DATE_AXIS))


def lines_days(
    div_id: str,
    days: list[date],
    series: dict[str, list[float | None]],
    *,
    money: bool = False,
    y_title: str = "",
    dashed: tuple[str, ...] = (),
) -> str:
    x = [d.isoformat() for d in days]
    data = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "x": x,
            "y": values,
            "name": name,
            "connectgaps": False,
            "line": {"color": PALETTE[index % len(PALETTE)], "width": 2, "dash": "dot" if name in dashed else "solid"},
        }
        for index, (name, values) in enumerate(series.items())
    ]
    return _html(div_id, data, _layout(money=money, y_title=y_title, x=DATE_AXIS))


def bars(
    div_id: str, labels: list[str], series: dict[str, list[float | None]], *, money: bool = False, y_title: str = ""
) -> str:
    data = [
        {"type": "bar", "x": labels, "y": values, "name": name, "marker": {"color": PALETTE[index % len(PALETTE)]}}
        for index, (name, values) in enumerate(series.items())
    ]
    return _html(div_id, data, _layout(money=money, y_title=y_title, x={"type": "category"}))

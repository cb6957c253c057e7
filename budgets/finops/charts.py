"""plotly figures of the FinOps pages (the JS is served locally; no CDN).

Floats are used for drawing only; the figures in tables and CSV stay exact.
"""

from __future__ import annotations

from datetime import date
from typing import Any

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


def _layout(fig: Any, *, money: bool, height: int = 320, stacked: bool = False, y_title: str = "") -> None:
    fig.update_layout(
        height=height,
        margin={"l": 60, "r": 20, "t": 10, "b": 40},
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        legend={"orientation": "h", "y": 1.15, "x": 0},
        barmode="stack" if stacked else "group",
        yaxis={
            "rangemode": "tozero",
            "gridcolor": "#eef0f3",
            "tickprefix": "$" if money else "",
            "title": {"text": y_title},
        },
        xaxis={"gridcolor": "#eef0f3"},
    )


def _html(fig: Any, div_id: str) -> str:
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, config=CONFIG)


def stacked_days(
    div_id: str, days: list[date], series: dict[str, list[float]], *, money: bool = True, y_title: str = ""
) -> str:
    import plotly.graph_objects as go

    fig = go.Figure()
    x = [d.isoformat() for d in days]
    for index, (name, values) in enumerate(series.items()):
        fig.add_bar(x=x, y=values, name=name, marker_color=PALETTE[index % len(PALETTE)])
    _layout(fig, money=money, stacked=True, y_title=y_title)
    fig.update_xaxes(type="date", tickformat="%b %d")
    return _html(fig, div_id)


def lines_days(
    div_id: str,
    days: list[date],
    series: dict[str, list[float | None]],
    *,
    money: bool = False,
    y_title: str = "",
    dashed: tuple[str, ...] = (),
) -> str:
    import plotly.graph_objects as go

    fig = go.Figure()
    x = [d.isoformat() for d in days]
    for index, (name, values) in enumerate(series.items()):
        fig.add_scatter(
            x=x,
            y=values,
            name=name,
            mode="lines+markers",
            connectgaps=False,
            line={"color": PALETTE[index % len(PALETTE)], "width": 2, "dash": "dot" if name in dashed else "solid"},
        )
    _layout(fig, money=money, y_title=y_title)
    fig.update_xaxes(type="date", tickformat="%b %d")
    return _html(fig, div_id)


def bars(
    div_id: str, labels: list[str], series: dict[str, list[float | None]], *, money: bool = False, y_title: str = ""
) -> str:
    import plotly.graph_objects as go

    fig = go.Figure()
    for index, (name, values) in enumerate(series.items()):
        fig.add_bar(x=labels, y=values, name=name, marker_color=PALETTE[index % len(PALETTE)])
    _layout(fig, money=money, y_title=y_title)
    fig.update_xaxes(type="category")
    return _html(fig, div_id)

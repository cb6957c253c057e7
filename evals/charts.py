"""plotly figures of the evaluation pages (the JS is served locally; no CDN).
Floats are used for drawing only; tables show the exact figures."""

from __future__ import annotations

from gatehouse.charts import figure_html

from .selectors import LeaderRow

CONFIG = {"displayModeBar": False, "responsive": True}
PALETTE = ("#2f5fd0", "#c2410c", "#15803d", "#7c3aed", "#b91c1c", "#0e7490", "#a16207", "#be185d")


def _html(div_id: str, data: list[dict], layout: dict) -> str:
    return figure_html(div_id, data, layout, CONFIG)


def _layout(x_title: str, y_title: str, **extra) -> dict:
    return {
        "height": 340,
        "margin": {"l": 60, "r": 20, "t": 10, "b": 50},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "legend": {"orientation": "h", "y": 1.12, "x": 0},
        "xaxis": {"title": {"text": x_title}, "gridcolor": "#eef0f3", **extra.get("x", {})},
        "yaxis": {"title": {"text": y_title}, "gridcolor": "#eef0f3", "range": [0, 1.05], "tickformat": ".0%"},
    }


def quality_cost(rows: list[LeaderRow]) -> str:
    """Score against cost per case; the Pareto front joined by a line."""
    data = [
        {
            "type": "scatter",
            "mode": "markers+text",
            "name": "models",
            "x": [float(r.cost_per_case) for r in rows],
            "y": [float(r.score) for r in rows],
            "text": [r.model for r in rows],
            "textposition": "top center",
            "marker": {"size": 11, "color": ["#15803d" if r.pareto else "#9ca3af" for r in rows]},
        }
    ]
    front = sorted((r for r in rows if r.pareto), key=lambda r: r.cost_per_case)
    if front:
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": "Pareto front",
                "x": [float(r.cost_per_case) for r in front],
                "y": [float(r.score) for r in front],
                "line": {"color": "#15803d", "dash": "dot"},
            }
        )
    return _html("eval-quality-cost", data, _layout("cost per case (USD)", "score", x={"tickprefix": "$"}))


def trends(series: dict[str, list[tuple[str, float]]]) -> str:
    data = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": model,
            "x": [x for x, _ in points],
            "y": [y for _, y in points],
            "line": {"color": PALETTE[i % len(PALETTE)]},
        }
        for i, (model, points) in enumerate(series.items())
    ]
    return _html("eval-trend", data, _layout("run", "score", x={"type": "date"}))

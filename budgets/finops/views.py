"""FinOps console pages: Overview, Spend explorer, Unit economics, Performance, Outcomes,
Routing savings and On-prem break-even.

Every figure comes from the hourly rollups (`budgets.finops.queries`); every chart has a
table view and a CSV (`?format=csv&table=<name>`); filters live in the URL.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.http import HttpResponse

from budgets.finops import charts, pages
from budgets.finops import queries as q
from budgets.finops.forecast import run_out_date, spend_forecast
from budgets.finops.params import PageInput, page_input
from budgets.finops.tables import Column, Table
from console.access import HtmxHttpRequest, organization_required, render_page

TOP_SERIES = 8


def _respond(
    request: HtmxHttpRequest, page: PageInput, template: str, context: dict, tables: list[Table]
) -> HttpResponse:
    """The page, its htmx partial, or one of its tables as CSV."""
    tables = [t.sorted_by(page.sort) if page.sort else t for t in tables]
    if request.GET.get("format") == "csv":
        wanted = request.GET.get("table") or (tables[0].name if tables else "")
        for table in tables:
            if table.name == wanted:
                return table.csv_response(f"{template.split('/')[-1].removesuffix('.html')}-{table.name}.csv")
        return HttpResponse(f"Unknown table {wanted!r}.", status=400, content_type="text/plain")
    context.update(
        {
            "page": page,
            "form": page.form,
            "tables": {t.name: t for t in tables},
            "dimensions": q.DIMENSIONS.values(),
            "periods": pages.PERIOD_CHOICES,
            "nav": pages.NAV,
        }
    )
    return render_page(request, template, "finops-results", context)


# --------------------------------------------------------------------------- overview


@organization_required
def overview(request: HtmxHttpRequest) -> HttpResponse:
    page = page_input(request, default_period="month")
    zone, today = page.zone, page.today
    this_month = q.month_window(today, zone)
    last_month = q.month_window(today, zone, offset=-1)
    history_window = q.Window(q.day_start(today - timedelta(days=56), zone), q.day_start(today, zone), zone, "history")
    everything = q.Window(history_window.start, q.day_start(today + timedelta(days=1), zone), zone, "all")
    # One query covers this month, last month and the eight weeks of history.
    start = min(last_month.start, history_window.start)
    span = q.Window(start, max(this_month.end, everything.end), zone, "span")
    by_day = {
        row["day"]: row["cost"] for row in q.Slice(page.scope, span, page.filters).daily(money=("cost",), counts=False)
    }
    spent = sum((v for d, v in by_day.items() if this_month.start.date() <= d <= today), q.ZERO)
    last_total = sum((v for d, v in by_day.items() if last_month.start.date() <= d < this_month.start.date()), q.ZERO)
    same_day_last = last_month.start.date() + timedelta(days=today.day - 1)
    last_to_date = sum((v for d, v in by_day.items() if last_month.start.date() <= d <= same_day_last), q.ZERO)
    history = [(d, by_day.get(d, q.ZERO)) for d in history_window.days]
    forecast = spend_forecast(
        history=history,
        today=today,
        today_spent=by_day.get(today, q.ZERO),
        spent=spent,
        period_end=this_month.end.date() - timedelta(days=1),
    )
    month_days = this_month.days
    actual = [float(by_day.get(d, q.ZERO)) if d <= today else None for d in month_days]
    forecast_by_day = dict(forecast.daily)
    cumulative, running, projected = [], q.ZERO, []
    for d in month_days:
        if d <= today:
            running += by_day.get(d, q.ZERO)
            cumulative.append(float(running))
            projected.append(float(running) if d == today else None)
        else:
            cumulative.append(None)
        if d > today:
            running += forecast_by_day.get(d, q.ZERO)
            projected.append(float(running))
    chart = charts.lines_days(
        "overview-chart",
        month_days,
        {"Spend to date": cumulative, "Forecast": projected, "Daily spend": actual},
        money=True,
        dashed=("Forecast",),
    )
    daily_table = Table(
        "daily",
        "Spend per day this month",
        [Column("day", "Day", "date"), Column("spent", "Spent", "money"), Column("forecast", "Forecast", "money")],
        [
            {"day": d, "spent": by_day.get(d) if d <= today else None, "forecast": forecast_by_day.get(d)}
            for d in month_days
        ],
    )
    movers = pages.top_movers(page, today)
    burn = pages.budget_burn(page, today) if not page.own_only else Table("burn", "Budgets", [])
    anomalies = pages.recent_anomalies(page)
    context = {
        "spent": spent,
        "last_total": last_total,
        "last_to_date": last_to_date,
        "change": q.share(spent - last_to_date, last_to_date),
        "forecast": forecast,
        "this_month": this_month,
        "last_month": last_month,
        "chart": chart,
        "integrity": pages.integrity_tile(request.organization.id),
        "run_out_date": run_out_date,
        # Billing months (UTC) offered for the chargeback and FOCUS downloads.
        "export_months": [f"{this_month.start:%Y-%m}", f"{last_month.start:%Y-%m}"],
    }
    return _respond(request, page, "budgets/finops/overview.html", context, [daily_table, burn, movers, anomalies])


# --------------------------------------------------------------------------- spend explorer


SPEND_COLUMNS = [
    Column("requests", "Requests", "int"),
    Column("errors", "Errors", "int"),
    Column("input_tokens", "Input tokens", "int"),
    Column("cached_tokens", "Cached tokens", "int"),
    Column("output_tokens", "Output tokens", "int"),
    Column("reasoning_tokens", "Reasoning tokens", "int"),
    Column("input_cost", "Cost in", "money"),
    Column("output_cost", "Cost out", "money"),
    Column("cost", "Cost", "money"),
    Column("share", "Share", "percent"),
]


@organization_required
def explorer(request: HtmxHttpRequest) -> HttpResponse:
    page = page_input(request, default_period="month", default_group="model")
    data = q.Slice(page.scope, page.window, page.filters)
    rows = data.grouped(page.group)
    names = q.labels_for(page.group, page.scope.organization_id, [r["group"] for r in rows])
    total = data.totals()
    for row in rows:
        row["label"] = q.label(page.group, row["group"], names)
        row["value"] = "" if row["group"] is None else row["group"]
        row["share"] = q.share(row["cost"], total["cost"])
    top = [r["group"] for r in rows[:TOP_SERIES]]
    exact: dict[str, list[Decimal]] = {}
    days = page.window.days
    grid: dict[Any, dict] = {}
    for row in data.daily(page.group, only=top, money=("cost",), counts=False):
        if row["group"] in top:
            grid.setdefault(row["group"], {})[row["day"]] = (
                grid.get(row["group"], {}).get(row["day"], q.ZERO) + row["cost"]
            )
    for key in top:
        if key in grid:
            exact[q.label(page.group, key, names)] = [grid[key].get(d, q.ZERO) for d in days]
    if len(rows) > TOP_SERIES and page.group != "tag":
        totals_by_day = {row["day"]: row["cost"] for row in data.daily(money=("cost",), counts=False)}
        exact["Other"] = [
            totals_by_day.get(d, q.ZERO) - sum((grid[k].get(d, q.ZERO) for k in grid), q.ZERO) for d in days
        ]
    series = {name: [float(v) for v in values] for name, values in exact.items()}
    chart = charts.stacked_days("explorer-chart", days, series, money=True) if rows else ""
    # The chart's data as a table: one row per day, one column per series (empty: nothing spent).
    series_table = Table(
        "series",
        f"Spend per day by {q.DIMENSIONS[page.group].label.lower()}",
        [Column("day", "Day", "date"), *(Column(f"s{i}", name, "money") for i, name in enumerate(exact))],
        [
            {"day": d, **{f"s{i}": values[n] or None for i, values in enumerate(exact.values())}}
            for n, d in enumerate(days)
        ]
        if exact
        else [],
    )
    table = Table(
        "groups",
        f"Spend by {q.DIMENSIONS[page.group].label.lower()}",
        [Column("label", q.DIMENSIONS[page.group].label), *SPEND_COLUMNS],
        rows,
        note="A request with several tags counts under each of them." if page.group == "tag" else "",
    )
    context = {"chart": chart, "total": total, "group_label": q.DIMENSIONS[page.group].label}
    return _respond(request, page, "budgets/finops/explorer.html", context, [table, series_table])


# --------------------------------------------------------------------------- unit economics


@organization_required
def unit_economics(request: HtmxHttpRequest) -> HttpResponse:
    page = page_input(request, default_period="30d", default_group="model")
    data = q.Slice(page.scope, page.window, page.filters)
    tables = []
    chart = ""
    for dimension in ("model", "provider", "workflow"):
        rows = data.grouped(dimension)
        for row in rows:
            row["label"] = q.label(dimension, row["group"], {})
            row["tc_1m"] = q.tc_per_million(row)
            row["input_share"] = q.share(row["input_cost"], row["input_cost"] + row["output_cost"])
            row["output_share"] = q.share(row["output_cost"], row["input_cost"] + row["output_cost"])
            row["per_request"] = q.per(row["cost"], row["requests"])
            row["cache_rate"] = q.share(row["cached_tokens"], row["input_tokens"])
            row["reasoning_share"] = q.share(row["reasoning_tokens"], row["output_tokens"])
        tables.append(
            Table(
                dimension,
                f"By {q.DIMENSIONS[dimension].label.lower()}",
                [
                    Column("label", q.DIMENSIONS[dimension].label),
                    Column("requests", "Requests", "int"),
                    Column("input_tokens", "Input tokens", "int"),
                    Column("output_tokens", "Output tokens", "int"),
                    Column("reasoning_tokens", "Reasoning tokens", "int"),
                    Column("reasoning_share", "Reasoning share of output", "percent"),
                    Column("tc_1m", "TC/1M", "price"),
                    Column("input_share", "Input share", "percent"),
                    Column("output_share", "Output share", "percent"),
                    Column("cache_rate", "Cached input", "percent"),
                    Column("cached_savings", "Cache savings", "money"),
                    Column("per_request", "Cost / request", "money"),
                    Column("cost", "Cost", "money"),
                ],
                rows,
            )
        )
        if dimension == "model" and rows:
            shown = rows[:12]
            chart = charts.bars(
                "unit-chart",
                [r["label"] for r in shown],
                {"TC/1M (USD)": [float(r["tc_1m"]) if r["tc_1m"] is not None else None for r in shown]},
                money=True,
            )
    total = data.totals()
    context = {
        "chart": chart,
        "total": total,
        "tc_1m": q.tc_per_million(total),
        "per_request": q.per(total["cost"], total["requests"]),
    }
    return _respond(request, page, "budgets/finops/unit_economics.html", context, tables)


# --------------------------------------------------------------------------- performance


PERFORMANCE_DIMENSIONS = ("model", "deployment", "provider")


@organization_required
def performance(request: HtmxHttpRequest) -> HttpResponse:
    page = page_input(request, default_period="7d", default_group="model")
    group = page.group if page.group in PERFORMANCE_DIMENSIONS else "model"
    data = q.Slice(page.scope, page.window, page.filters)
    rows = data.grouped(group, money=False, floats=True, histograms=True)
    for row in rows:
        row.update(q.latency_percentiles(row))
        row["label"] = q.label(group, row["group"], {})
        row["tokens_per_s"] = row["gen_tokens"] / (row["gen_ms_sum"] / 1000) if row["gen_ms_sum"] else None
        row["error_rate"] = q.share(row["errors"], row["requests"])
        row["fallback_rate"] = q.share(row["fallbacks"], row["requests"])
    table = Table(
        "performance",
        f"By {q.DIMENSIONS[group].label.lower()}",
        [
            Column("label", q.DIMENSIONS[group].label),
            Column("requests", "Requests", "int"),
            Column("ttft_p50", "TTFT p50", "ms"),
            Column("ttft_p95", "TTFT p95", "ms"),
            Column("ttft_p99", "TTFT p99", "ms"),
            Column("latency_p50", "Latency p50", "ms"),
            Column("latency_p95", "Latency p95", "ms"),
            Column("latency_p99", "Latency p99", "ms"),
            Column("tokens_per_s", "Output tokens/s", "rate"),
            Column("error_rate", "Error rate", "percent"),
            Column("fallback_rate", "Fallback rate", "percent"),
        ],
        rows,
        note="Percentiles come from fixed log-spaced histogram buckets (five per decade), interpolated inside one.",
    )
    days = page.window.days
    top = [r["group"] for r in rows[:5]]
    daily_rows = data.daily(group, money=False, histograms=True)
    by = {(r["group"], r["day"]): r for r in daily_rows if r["group"] in top}
    ttft_series, latency_series, trend_rows = {}, {}, []
    for key in top:
        name = q.label(group, key, {})
        ttft_series[name] = []
        latency_series[name] = []
        for d in days:
            row = by.get((key, d))
            pct = q.latency_percentiles(row) if row else {}
            ttft_series[name].append(pct.get("ttft_p95"))
            latency_series[name].append(pct.get("latency_p95"))
            if row:
                trend_rows.append(
                    {
                        "day": d,
                        "label": name,
                        "requests": row["requests"],
                        "error_rate": q.share(row["errors"], row["requests"]),
                        **pct,
                    }
                )
    trend = Table(
        "trend",
        "Per day",
        [
            Column("day", "Day", "date"),
            Column("label", q.DIMENSIONS[group].label),
            Column("requests", "Requests", "int"),
            Column("ttft_p50", "TTFT p50", "ms"),
            Column("ttft_p95", "TTFT p95", "ms"),
            Column("latency_p50", "Latency p50", "ms"),
            Column("latency_p95", "Latency p95", "ms"),
            Column("error_rate", "Error rate", "percent"),
        ],
        trend_rows,
    )
    context = {
        "group": group,
        "performance_dimensions": [q.DIMENSIONS[d] for d in PERFORMANCE_DIMENSIONS],
        "ttft_chart": charts.lines_days("ttft-chart", days, ttft_series, y_title="ms") if rows else "",
        "latency_chart": charts.lines_days("latency-chart", days, latency_series, y_title="ms") if rows else "",
    }
    return _respond(request, page, "budgets/finops/performance.html", context, [table, trend])

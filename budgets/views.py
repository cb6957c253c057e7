"""Console pages for usage: the request log, one request in full, requests and spend per day."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta
from decimal import Decimal

from django.db.models import QuerySet
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from budgets.filters import UsageFilters, UsageFilterSet
from budgets.models import UsageRecord
from budgets.selectors import (
    dead_letters_count,
    organization_zone,
    usage_daily,
    usage_get,
    usage_list,
    usage_summary,
)
from console.access import HtmxHttpRequest, is_manager, organization_required, render_page, wants_partial
from console.models import ApiKey, Role, Team
from gatehouse.charts import figure_html

PAGE_SIZE = 50
CHART_DAYS = 30


def _own_only(request: HtmxHttpRequest) -> bool:
    """Members see the usage of their own requests only."""
    return request.membership.role == Role.MEMBER


def _page_number(request: HtmxHttpRequest) -> int:
    try:
        return max(1, int(request.GET.get("page", 1)))
    except (TypeError, ValueError):
        return 1


def _page(queryset: QuerySet[UsageRecord], number: int) -> tuple[list[UsageRecord], bool]:
    """One page and whether an older one exists, without counting the whole table."""
    start = (number - 1) * PAGE_SIZE
    rows = list(queryset[start : start + PAGE_SIZE + 1])
    return rows[:PAGE_SIZE], len(rows) > PAGE_SIZE


def _key_names(organization_id: int, key_ids: set[int]) -> dict[int, tuple[str, str]]:
    """(name, prefix) of the keys on one page, in one query: records keep ids, not links."""
    keys = ApiKey.objects.filter(organization_id=organization_id, id__in=key_ids).values_list("id", "name", "prefix")
    return {pk: (name, prefix) for pk, name, prefix in keys}


def _daily_for_user(*, organization_id: int, user_id: int, days: int) -> list[dict]:
    """Like `usage_daily`, for one user's requests: zero-filled days in the organization's zone."""
    zone = organization_zone(organization_id)
    first = timezone.now().astimezone(zone).date() - timedelta(days=days - 1)
    rows = usage_summary(
        organization_id=organization_id,
        group_by="day",
        since=datetime.combine(first, time(), tzinfo=zone),
        filters=UsageFilters(user=user_id),
    )
    by_day = {row["group"]: row for row in rows}
    series = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        row = by_day.get(day.isoformat())
        series.append(
            {"day": day, "requests": row["requests"] if row else 0, "cost": row["cost"] if row else Decimal(0)}
        )
    return series


def daily_chart_html(series: list[dict]) -> str:
    """Requests per day as bars, spend per day as a line on a second axis."""
    import plotly.graph_objects as go

    days = [row["day"].isoformat() for row in series]
    # Bars sit on each day's midnight: half a day of room either side keeps the ends whole.
    half_day = timedelta(hours=12)
    x_range = [
        (datetime.combine(series[0]["day"], time()) - half_day).isoformat(),
        (datetime.combine(series[-1]["day"], time()) + half_day).isoformat(),
    ]
    # Floats for drawing only; the sums themselves are exact Decimals.
    spend = [float(row["cost"]) for row in series]
    peak = max(spend, default=0)
    spend_format = ",.2f" if peak >= 10 else ",.4~f" if peak >= 0.01 else ",.6~f"
    fig = go.Figure()
    fig.add_bar(x=days, y=[row["requests"] for row in series], name="Requests", marker_color="#2f5fd0", opacity=0.85)
    fig.add_scatter(
        x=days,
        y=spend,
        name="Spend (USD)",
        yaxis="y2",
        mode="lines+markers",
        line={"color": "#c2410c", "width": 2},
        hovertemplate="%{x}<br>$%{y:,.6~f}<extra>Spend</extra>",
    )
    fig.update_layout(
        height=320,
        margin={"l": 50, "r": 60, "t": 10, "b": 40},
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        legend={"orientation": "h", "y": 1.12, "x": 0},
        xaxis={"type": "date", "tickformat": "%b %d", "gridcolor": "#eef0f3", "range": x_range},
        yaxis={"title": {"text": "Requests"}, "rangemode": "tozero", "gridcolor": "#eef0f3"},
        yaxis2={
            "title": {"text": "Spend (USD)"},
            "overlaying": "y",
            "side": "right",
            "rangemode": "tozero",
            "tickprefix": "$",
            "tickformat": spend_format,
            "showgrid": False,
        },
        bargap=0.25,
    )
    figure = json.loads(fig.to_json())  # plotly's own encoder (dates, numpy arrays)
    return figure_html("usage-chart", figure["data"], figure["layout"], {"displayModeBar": False, "responsive": True})


@organization_required
def usage_list_view(request: HtmxHttpRequest) -> HttpResponse:
    org = request.organization
    filterset = UsageFilterSet(request.GET)
    valid = filterset.is_valid()
    filters = filterset.filters if valid else UsageFilters()
    records = usage_list(organization_id=org.id, filters=filters)
    keys = ApiKey.objects.filter(organization=org).order_by("name")
    if _own_only(request):
        records = records.filter(user_id=request.user.id)
        keys = keys.filter(user=request.user)
    number = _page_number(request)
    rows, has_next = _page(records, number) if valid else ([], False)
    context = {
        "form": filterset.form,
        "valid": valid,
        "rows": rows,
        "key_names": _key_names(org.id, {r.key_id for r in rows if r.key_id}),
        "page_number": number,
        "has_next": has_next,
        "has_previous": number > 1,
        "filtered": any(v for k, v in request.GET.items() if k != "page"),
    }
    if not wants_partial(request):
        if _own_only(request):
            series = _daily_for_user(organization_id=org.id, user_id=request.user.id, days=CHART_DAYS)
        else:
            series = usage_daily(organization_id=org.id, days=CHART_DAYS)
        context.update(
            {
                "keys": keys.values_list("id", "name", "prefix"),
                "chart": daily_chart_html(series),
                "chart_total_requests": sum(row["requests"] for row in series),
                "chart_total_cost": sum((row["cost"] for row in series), start=Decimal(0)),
                "dead_letters": dead_letters_count(organization_id=org.id) if is_manager(request) else 0,
            }
        )
    return render_page(request, "budgets/usage_list.html", "usage-results", context)


@organization_required
def usage_detail(request: HtmxHttpRequest, request_id: str) -> HttpResponse:
    record = usage_get(organization_id=request.organization.id, request_id=request_id)
    if record is None or (_own_only(request) and record.user_id != request.user.id):
        raise Http404("No such request in this organization.")
    key = (
        ApiKey.objects.filter(organization=request.organization, id=record.key_id).only("id", "name", "prefix").first()
        if record.key_id
        else None
    )
    team = (
        Team.objects.filter(organization=request.organization, id=record.team_id).only("id", "name").first()
        if record.team_id
        else None
    )
    metadata = record.metadata if isinstance(record.metadata, dict) else {}
    attempt_trail = metadata.get("attempt_trail")
    guard = metadata.get("guard")
    other_metadata = {k: v for k, v in metadata.items() if k not in ("attempt_trail", "guard")}
    context = {
        "record": record,
        "key": key,
        "team": team,
        "attempt_trail": attempt_trail if isinstance(attempt_trail, list) else None,
        "other_metadata": other_metadata,
        "guard": guard if isinstance(guard, dict) else None,
        "total_tokens": record.input_tokens + record.output_tokens,
    }
    return render(request, "budgets/usage_detail.html", context)

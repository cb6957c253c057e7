"""What AI is worth and what it could cost: Outcomes & CPSI, Routing savings, On-prem break-even."""

from __future__ import annotations

import math
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

from django import forms
from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import redirect

from budgets.finops import charts
from budgets.finops import queries as q
from budgets.finops.outcomes import outcome_counts, outcome_daily_counts
from budgets.finops.params import SPEND_READERS, page_input
from budgets.finops.tables import Column, Table
from budgets.finops.views import _respond
from budgets.models import FinOpsSettings
from console.access import HtmxHttpRequest, organization_required

CASCADE_TARGET = (75, 20, 5)  # the playbook's share of requests per cascade layer
THRESHOLDS = (5_000_000_000, 10_000_000_000, 50_000_000_000)  # annual tokens
HOURS_PER_MONTH = Decimal("730")
CENTS = Decimal("0.01")

# Hosted model families and their open-weight alternative (override in GATEHOUSE["FINOPS_OPEN_WEIGHT"]).
DEFAULT_OPEN_WEIGHT = {
    "gpt-4o-mini": "Llama 3.1 8B",
    "gpt-4o": "Llama 3.1 70B",
    "gpt-4.1": "Llama 3.1 405B",
    "o3": "DeepSeek R1",
    "claude-3-5-haiku": "Llama 3.1 8B",
    "claude-3-5-sonnet": "Llama 3.1 70B",
    "claude-sonnet": "Llama 3.1 70B",
    "claude-opus": "Llama 3.1 405B",
    "gemini-1.5-flash": "Mistral Small",
    "gemini-1.5-pro": "Llama 3.1 70B",
    "gemini-2.0-flash": "Mistral Small",
}


def _catalog_prices() -> dict[str, tuple[Decimal, Decimal, str]]:
    from providers.selectors import model_list

    return {
        name: (inp, out, tier)
        for name, inp, out, tier in model_list().values_list("name", "input_price", "output_price", "tier")
    }


# --------------------------------------------------------------------------- outcomes


@organization_required
def outcomes(request: HtmxHttpRequest) -> HttpResponse:
    page = page_input(request, default_period="30d")
    window = page.window
    cost_by_workflow = {r["group"] or "": r for r in q.Slice(page.scope, window, page.filters).grouped("workflow")}
    counts = outcome_counts(
        organization_id=page.scope.organization_id, start=window.start, end=window.end, key_ids=page.scope.key_ids
    )
    per_workflow: dict[str, dict] = {}
    for item in counts:
        row = per_workflow.setdefault(item.workflow, {"outcomes": 0, "value": q.ZERO, "names": []})
        row["outcomes"] += item.count
        row["value"] += item.value
        row["names"].append(f"{item.name} ({item.count})")
    rows = []
    for workflow in sorted(set(per_workflow) | {w for w in cost_by_workflow if w}):
        cost = cost_by_workflow.get(workflow, {}).get("cost", q.ZERO)
        done = per_workflow.get(workflow, {"outcomes": 0, "value": q.ZERO, "names": []})
        rows.append(
            {
                "workflow": workflow or "(none)",
                "requests": cost_by_workflow.get(workflow, {}).get("requests", 0),
                "cost": cost,
                "outcomes": done["outcomes"],
                "names": ", ".join(done["names"]),
                "cpsi": q.per(cost, done["outcomes"]),
                "value": done["value"] or None,
                "roi": (done["value"] / cost).quantize(CENTS) if cost and done["value"] else None,
            }
        )
    table = Table(
        "cpsi",
        "Cost per outcome by workflow",
        [
            Column("workflow", "Workflow"),
            Column("requests", "Requests", "int"),
            Column("cost", "Cost", "money"),
            Column("outcomes", "Outcomes", "int"),
            Column("names", "Outcome names"),
            Column("cpsi", "CPSI (cost / outcome)", "money"),
            Column("value", "Value reported", "money"),
            Column("roi", "Value ÷ cost", "rate"),
        ],
        rows,
    )
    # Trend: CPSI per week over the last 8 weeks, for the workflows with outcomes.
    zone, today = page.zone, page.today
    first = today - timedelta(days=today.weekday() + 7 * 7)
    trend_window = q.Window(q.day_start(first, zone), q.day_start(today + timedelta(days=1), zone), zone, "8 weeks")
    week_cost: dict[tuple[str, object], Decimal] = {}
    for row in q.Slice(page.scope, trend_window, page.filters).daily("workflow", counts=False):
        week = row["day"] - timedelta(days=row["day"].weekday())
        key = (row["group"] or "", week)
        week_cost[key] = week_cost.get(key, q.ZERO) + row["cost"]
    weeks = [first + timedelta(days=7 * i) for i in range(8)]
    per_day = outcome_daily_counts(
        organization_id=page.scope.organization_id,
        start=trend_window.start,
        end=trend_window.end,
        zone=zone,
        key_ids=page.scope.key_ids,
    )
    week_outcomes: dict[tuple[str, object], int] = {}
    for (workflow, day), count in per_day.items():
        week = day - timedelta(days=day.weekday())
        week_outcomes[(workflow, week)] = week_outcomes.get((workflow, week), 0) + count
    trend_rows, series = [], {}
    for workflow in [w for w in per_workflow if w][:6]:
        values = []
        for week in weeks:
            count = week_outcomes.get((workflow, week), 0)
            cost = week_cost.get((workflow, week), q.ZERO)
            cpsi = q.per(cost, count)
            values.append(float(cpsi) if cpsi is not None else None)
            trend_rows.append({"week": week, "workflow": workflow, "cost": cost, "outcomes": count, "cpsi": cpsi})
        series[workflow] = values
    trend = Table(
        "trend",
        "CPSI per week",
        [
            Column("week", "Week of", "date"),
            Column("workflow", "Workflow"),
            Column("cost", "Cost", "money"),
            Column("outcomes", "Outcomes", "int"),
            Column("cpsi", "CPSI", "money"),
        ],
        trend_rows,
    )
    context = {"chart": charts.lines_days("cpsi-chart", weeks, series, money=True) if series else ""}
    return _respond(request, page, "budgets/finops/outcomes.html", context, [table, trend])


# --------------------------------------------------------------------------- routing savings


def route_reach(organization_id: int) -> dict[str, set[str]]:
    """Per route, the models its live policy could answer with (targets, fallbacks, cascade
    layers), asked of the routing app through `gatehouse.signals.route_models`."""
    from gatehouse.signals import route_models

    found: dict[str, set[str]] = {}
    for _, answer in route_models.send(sender=FinOpsSettings, organization_id=organization_id):
        for route, names in (answer or {}).items():
            found.setdefault(route, set()).update(names)
    return found


def finops_settings(organization_id: int) -> FinOpsSettings:
    found = FinOpsSettings.objects.filter(organization_id=organization_id).first()
    return found or FinOpsSettings(organization_id=organization_id)


@organization_required
def savings(request: HtmxHttpRequest) -> HttpResponse:
    page = page_input(request, default_period="month")
    data = q.Slice(page.scope, page.window, page.filters)
    prices = _catalog_prices()
    configured = finops_settings(page.scope.organization_id).baseline_model
    reach = route_reach(page.scope.organization_id) if not configured else {}
    by_route: dict[str, list[dict]] = {}
    observed: dict[str, list] = {}
    for row in data.grouped("route+model"):
        route, model = row["group"]
        row["model_used"] = model
        by_route.setdefault(route or "(no route)", []).append(row)
        seen = observed.setdefault(model, [0, 0, q.ZERO, q.ZERO])
        seen[0] += row["input_tokens"]
        seen[1] += row["output_tokens"]
        seen[2] += row["input_cost"]
        seen[3] += row["output_cost"]
    # Models the registry does not price: the rates their requests actually paid.
    for model, (tokens_in, tokens_out, cost_in, cost_out) in observed.items():
        if model and model not in prices and (tokens_in or tokens_out):
            rate_in = (cost_in * q.MILLION / tokens_in).quantize(Decimal("0.000001")) if tokens_in else q.ZERO
            rate_out = (cost_out * q.MILLION / tokens_out).quantize(Decimal("0.000001")) if tokens_out else q.ZERO
            prices[model] = (rate_in, rate_out, "")
    table_rows = []
    total_actual = total_baseline = q.ZERO
    for route, items in sorted(by_route.items()):
        if configured and configured in prices:
            baseline, basis = configured, "organization setting"
        else:
            reachable = [m for m in reach.get(route, ()) if m in prices]
            basis = "reachable by the route"
            if not reachable:  # no such route in the live policy: the models its traffic used
                reachable = [r["model_used"] for r in items if r["model_used"] in prices]
                basis = "used by the route"
            baseline = max(reachable, key=lambda m: (prices[m][0] + prices[m][1], m), default="")
        actual = sum((r["cost"] for r in items), q.ZERO)
        if baseline:
            b_in, b_out, _ = prices[baseline]
            tokens_in = sum(r["input_tokens"] for r in items)
            tokens_out = sum(r["output_tokens"] for r in items)
            would = ((tokens_in * b_in + tokens_out * b_out) / q.MILLION).quantize(Decimal("0.0000000001"))
        else:
            would = actual
        total_actual += actual
        total_baseline += would
        table_rows.append(
            {
                "route": route,
                "baseline": baseline or "(unpriced)",
                "basis": basis if baseline else "",
                "requests": sum(r["requests"] for r in items),
                "would": would,
                "actual": actual,
                "saved": would - actual,
                "saved_pct": q.share(would - actual, would),
            }
        )
    table = Table(
        "routes",
        "Savings by route",
        [
            Column("route", "Route"),
            Column("baseline", "Baseline model"),
            Column("basis", "Baseline from"),
            Column("requests", "Requests", "int"),
            Column("would", "On the baseline", "money"),
            Column("actual", "Actual", "money"),
            Column("saved", "Saved", "money"),
            Column("saved_pct", "Saved %", "percent"),
        ],
        table_rows,
    )
    layers = {r["group"]: r for r in data.grouped("layer", money=False)}
    cascaded = sum(r["requests"] for k, r in layers.items() if k is not None)
    layer_rows = [
        {
            "layer": f"layer {i}",
            "requests": layers.get(i, {}).get("requests", 0),
            "share": q.share(layers.get(i, {}).get("requests", 0), cascaded),
            "target": CASCADE_TARGET[i] if i < 3 else 0,
        }
        for i in sorted({0, 1, 2, *[k for k in layers if k is not None]})
    ]
    escalation = q.share(sum(r["requests"] for k, r in layers.items() if k is not None and k > 0), cascaded)
    layer_table = Table(
        "cascade",
        "Cascade share per layer",
        [
            Column("layer", "Layer"),
            Column("requests", "Requests", "int"),
            Column("share", "Share", "percent"),
            Column("target", "Playbook target %", "int"),
        ],
        layer_rows,
        note="Playbook: 75% answered by the first (cheapest) layer, 20% by the second, 5% by the third.",
    )
    tiers = data.grouped("tier")
    total = data.totals()
    tier_rows = [
        {
            "tier": r["group"] or "(unknown)",
            "requests": r["requests"],
            "request_share": q.share(r["requests"], total["requests"]),
            "cost": r["cost"],
            "cost_share": q.share(r["cost"], total["cost"]),
        }
        for r in tiers
    ]
    tier_table = Table(
        "tiers",
        "Tier mix",
        [
            Column("tier", "Tier"),
            Column("requests", "Requests", "int"),
            Column("request_share", "Traffic share", "percent"),
            Column("cost", "Spend", "money"),
            Column("cost_share", "Spend share", "percent"),
        ],
        tier_rows,
    )
    chart = (
        charts.bars(
            "savings-chart",
            [r["route"] for r in table_rows],
            {
                "On the baseline": [float(r["would"]) for r in table_rows],
                "Actual": [float(r["actual"]) for r in table_rows],
            },
            money=True,
        )
        if table_rows
        else ""
    )
    context = {
        "chart": chart,
        "total_actual": total_actual,
        "total_baseline": total_baseline,
        "total_saved": total_baseline - total_actual,
        "saved_pct": q.share(total_baseline - total_actual, total_baseline),
        "escalation": escalation,
        "configured": configured,
    }
    return _respond(request, page, "budgets/finops/savings.html", context, [table, layer_table, tier_table])


# --------------------------------------------------------------------------- on-prem break-even


class CostModelForm(forms.ModelForm):
    class Meta:
        model = FinOpsSettings
        fields = [
            "baseline_model",
            "gpus",
            "gpu_hourly_price",
            "utilization",
            "tokens_per_gpu_second",
            "operations_monthly",
            "setup_cost",
        ]

    def clean_utilization(self) -> Decimal:
        value = self.cleaned_data["utilization"]
        if not Decimal(1) <= value <= Decimal(100):
            raise forms.ValidationError("Utilization is a percentage between 1 and 100.")
        return value

    def clean_gpus(self) -> int:
        value = self.cleaned_data["gpus"]
        if value < 1:
            raise forms.ValidationError("At least one GPU.")
        return value


def family_of(model: str, families: dict[str, str]) -> str | None:
    """The longest family prefix the model name starts with."""
    matches = [f for f in families if model == f or model.startswith(f + "-") or model.startswith(f)]
    return max(matches, key=len) if matches else None


def break_even(*, annual_tokens: int, monthly_api_cost: Decimal, model: FinOpsSettings) -> dict:
    """The self-hosting cost model for one family's traffic."""
    per_gpu_month = Decimal(model.tokens_per_gpu_second) * model.utilization / 100 * 3600 * HOURS_PER_MONTH
    monthly_tokens = Decimal(annual_tokens) / 12
    gpus = max(model.gpus, math.ceil(monthly_tokens / per_gpu_month) if per_gpu_month else model.gpus)
    self_hosted = (gpus * model.gpu_hourly_price * HOURS_PER_MONTH + model.operations_monthly).quantize(CENTS)
    monthly_saving = (monthly_api_cost - self_hosted).quantize(CENTS)
    months = (
        (model.setup_cost / monthly_saving).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
        if monthly_saving > 0
        else None
    )
    if annual_tokens >= THRESHOLDS[2]:
        verdict = "above 50B: self-hosting is the default"
    elif annual_tokens >= THRESHOLDS[1]:
        verdict = "10B–50B: self-host the steady load"
    elif annual_tokens >= THRESHOLDS[0]:
        verdict = "5B–10B: worth evaluating"
    else:
        verdict = "below 5B: stay on APIs"
    return {
        "gpus": gpus,
        "self_hosted": self_hosted,
        "monthly_saving": monthly_saving,
        "months": months,
        "verdict": verdict,
    }


@organization_required
def onprem(request: HtmxHttpRequest) -> HttpResponse:
    page = page_input(request, default_period="30d")
    current = finops_settings(request.organization.id)
    can_edit = request.membership.role in SPEND_READERS
    form = CostModelForm(instance=current)
    if request.method == "POST":
        if not can_edit:
            return HttpResponse("Only owners, admins and finance may change the cost model.", status=403)
        form = CostModelForm(request.POST, instance=current)
        if form.is_valid():
            form.save()
            return redirect(request.get_full_path())
    families = {**DEFAULT_OPEN_WEIGHT, **settings.GATEHOUSE.get("FINOPS_OPEN_WEIGHT", {})}
    zone, today = page.zone, page.today
    last30 = q.Window(
        q.day_start(today - timedelta(days=29), zone), q.day_start(today + timedelta(days=1), zone), zone, "30 days"
    )
    data = q.Slice(page.scope, last30, page.filters)
    model_for_math = form.instance if form.is_bound and form.is_valid() else current
    by_family: dict[str, dict] = {}
    for row in data.grouped("model"):
        family = family_of(str(row["group"] or ""), families)
        if family is None:
            continue
        item = by_family.setdefault(family, {"models": [], "tokens": 0, "cost": q.ZERO})
        item["models"].append(str(row["group"]))
        item["tokens"] += row["input_tokens"] + row["output_tokens"]
        item["cost"] += row["cost"]
    rows = []
    for family, item in sorted(by_family.items(), key=lambda kv: -kv[1]["tokens"]):
        annual = int(item["tokens"] * 365 / 30)
        result = break_even(annual_tokens=annual, monthly_api_cost=item["cost"], model=model_for_math)
        rows.append(
            {
                "family": family,
                "alternative": families[family],
                "models": ", ".join(sorted(item["models"])),
                "annual_tokens": annual,
                "api_monthly": item["cost"],
                **result,
            }
        )
    table = Table(
        "breakeven",
        "Break-even per model family",
        [
            Column("family", "Family"),
            Column("alternative", "Open-weight alternative"),
            Column("models", "Models used"),
            Column("annual_tokens", "Annualized tokens", "int"),
            Column("verdict", "Playbook threshold"),
            Column("api_monthly", "API cost / month", "money"),
            Column("gpus", "GPUs needed", "int"),
            Column("self_hosted", "Self-hosted / month", "money"),
            Column("monthly_saving", "Saving / month", "money"),
            Column("months", "Months to break even", "rate"),
        ],
        rows,
        note="Annualized: tokens of the last 30 days × 365 / 30. Self-hosted per month: GPUs × hourly price × 730 h "
        "+ operations; GPUs needed: enough for the monthly tokens at the stated throughput and utilization "
        "(never fewer than configured). Months to break even: one-off setup ÷ monthly saving (empty: never).",
    )
    context = {"cost_form": form, "can_edit": can_edit, "thresholds": THRESHOLDS}
    return _respond(request, page, "budgets/finops/onprem.html", context, [table])

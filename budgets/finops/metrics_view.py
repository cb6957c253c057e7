"""`GET /metrics`: Prometheus exposition, protected by a bearer token or a network allow-list.

With PROMETHEUS_MULTIPROC_DIR set (several workers), series are read from the shared
multi-process files, so every worker's requests are counted whichever worker answers.
Budget remaining is computed at scrape time from the budget counters.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse


def _allowed(request: HttpRequest) -> bool:
    config = getattr(settings, "GATEHOUSE_FINOPS", {})
    token = config.get("METRICS_TOKEN", "")
    if token:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    for network in config.get("METRICS_NETWORKS", ["127.0.0.1/32", "::1/128"]):
        try:
            if address in ipaddress.ip_network(network, strict=False):
                return True
        except ValueError:
            continue
    return False


class BudgetCollector:
    """gatehouse_budget_remaining_usd and gatehouse_budget_spent_usd per active budget."""

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        from budgets.models import Budget
        from budgets.selectors import budget_statuses

        budgets = list(Budget.objects.filter(archived_at__isnull=True).select_related("organization"))
        statuses = budget_statuses(budgets=budgets)
        remaining = GaugeMetricFamily(
            "gatehouse_budget_remaining_usd", "Budget left this period", labels=["organization", "budget", "scope"]
        )
        spent = GaugeMetricFamily(
            "gatehouse_budget_spent_usd", "Budget spent this period", labels=["organization", "budget", "scope"]
        )
        for budget in budgets:
            status = statuses[budget.id]
            labels = [str(budget.organization_id), budget.name, f"{budget.scope}:{budget.scope_id}"]
            remaining.add_metric(labels, float(status.remaining))
            spent.add_metric(labels, float(status.spent))
        yield remaining
        yield spent


def metrics_response(registry_source: Callable[[], Any] | None = None) -> HttpResponse:
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess

    config = getattr(settings, "GATEHOUSE_FINOPS", {})
    registry = CollectorRegistry()
    if config.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry, path=config["PROMETHEUS_MULTIPROC_DIR"])
    registry.register(BudgetCollector())
    body = generate_latest(registry)
    own = registry_source() if registry_source is not None else None
    if own is not None:
        body += generate_latest(own)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)


def metrics(request: HttpRequest, registry_source: Callable[[], Any] | None = None) -> HttpResponse:
    """The view; the composition root may pass `registry_source` (its Telemetry's registry)."""
    if not _allowed(request):
        return HttpResponse(
            "Metrics need the metrics token or an allowed network.\n", status=403, content_type="text/plain"
        )
    if registry_source is None:
        # The gateway serving this page keeps the per-request series (one registry per
        # process; with PROMETHEUS_MULTIPROC_DIR every worker's files are collected above).
        gateway = getattr(request, "scope", {}).get("gatehouse.gateway")
        prometheus = getattr(getattr(gateway, "telemetry", None), "prometheus", None)
        if prometheus is not None and prometheus.registry is not None:
            registry_source = lambda: prometheus.registry  # noqa: E731
    return metrics_response(registry_source)

"""Crossing a threshold sends one signed webhook and one e-mail per threshold and
period, records an alert and an audit event; a hard budget that refuses alerts
at 100 %. A tiny local HTTP server catches the webhooks."""

# ruff: noqa: F811 - the fixtures are imported from tests.budgets.helpers

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from django.core import mail

from audit.models import AuditEvent
from budgets import services
from budgets.alerts import webhook_verify
from budgets.models import BudgetAlert, DeliveryStatus
from tests.budgets.helpers import (  # noqa: F401 - fixtures
    PROMPT,
    budget_sync,
    clean_budget_state,
    priced_model,
    store,
    wait_until,
    worst_case_usd,
)

SECRET = "whsec_test_secret_for_alerts"


class Receiver:
    """Collects webhook deliveries: (headers, raw body)."""

    def __init__(self, status: int = 200) -> None:
        self.calls: list[tuple[dict, bytes]] = []
        self.status = status
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.calls.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/budget"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def thresholds(self) -> list[int]:
        return [json.loads(body)["threshold"] for _, body in self.calls]


def chat(demo, model, max_tokens=40):
    return httpx.post(
        demo.base_url + "/chat/completions",
        json={"model": model, "messages": PROMPT, "max_tokens": max_tokens},
        headers={"authorization": f"Bearer {demo.secret}"},
        timeout=15,
    )


@pytest.fixture
def model(demo):
    card, _ = priced_model()
    return card.name


def test_each_threshold_alerts_once_by_signed_webhook_and_email(demo, store, model):
    mail.outbox.clear()
    services.alert_settings_set(organization=demo.org, webhook_url="", emails=["finance@acme.test"])
    worst = worst_case_usd(max_tokens=40)
    budget = services.budget_create(
        organization=demo.org, scope="team", scope_id=demo.team.id, amount=worst * 10, hard=False, thresholds=[50, 80]
    )
    with Receiver() as receiver:
        services.alert_settings_set(
            organization=demo.org, webhook_url=receiver.url, webhook_secret=SECRET, emails=["finance@acme.test"]
        )
        budget_sync()
        for _ in range(5):
            assert chat(demo, model).status_code == 200
        wait_until(lambda: receiver.thresholds() == [50])
        for _ in range(7):  # to 120 %: soft, so still served
            assert chat(demo, model).status_code == 200
        wait_until(lambda: sorted(receiver.thresholds()) == [50, 80, 100])
        wait_until(lambda: len(mail.outbox) == 3)
        for _ in range(3):
            assert chat(demo, model).status_code == 200
    assert sorted(receiver.thresholds()) == [50, 80, 100]  # once per threshold and period
    headers, body = receiver.calls[0]
    assert headers["x-gatehouse-event"] == "budget.threshold"
    assert webhook_verify(SECRET, headers["x-gatehouse-signature"], body)
    assert not webhook_verify("wrong", headers["x-gatehouse-signature"], body)
    payload = json.loads(body)
    assert payload["budget"]["id"] == budget.id and payload["organization"] == demo.org.slug
    assert payload["limit"] == f"{worst * 10:.10f}"
    assert [m.to for m in mail.outbox] == [["finance@acme.test"]] * 3
    assert "at 50%" in mail.outbox[0].subject
    alerts = wait_until(lambda: list(BudgetAlert.objects.filter(budget=budget, delivered_at__isnull=False)) or None)
    assert len(alerts) == 3
    assert all(a.webhook_status == a.email_status == DeliveryStatus.SENT for a in BudgetAlert.objects.all())
    assert AuditEvent.objects.filter(action="budget.threshold", organization_id=demo.org.id).count() == 3


def test_a_hard_budget_refusing_alerts_at_its_limit_and_failed_webhooks_are_retried(demo, store, model):
    from budgets.alerts import alerts_retry

    mail.outbox.clear()
    budget = services.budget_create(
        organization=demo.org,
        scope="key",
        scope_id=demo.key.id,
        amount=worst_case_usd(max_tokens=40) * 2,
        thresholds=[],
    )
    with Receiver(status=500) as receiver:
        services.alert_settings_set(organization=demo.org, webhook_url=receiver.url, webhook_secret=SECRET)
        budget_sync()
        statuses = [chat(demo, model, max_tokens=60).status_code for _ in range(3)]
        assert statuses == [200, 429, 429]
        alert = wait_until(lambda: BudgetAlert.objects.filter(budget=budget, attempts__gte=1).first())
        assert alert.threshold == 100 and alert.webhook_status == DeliveryStatus.FAILED
        # The owner gets the e-mail when no addresses are configured.
        wait_until(lambda: len(mail.outbox) == 1)
        assert mail.outbox[0].to == [demo.owner.email]
        receiver.status = 200
        BudgetAlert.objects.filter(pk=alert.pk).update(created_at=alert.created_at.replace(year=2000))
        assert alerts_retry() == 1
    alert.refresh_from_db()
    assert alert.webhook_status == DeliveryStatus.SENT and alert.attempts == 2
    assert len(receiver.calls) == 2
    assert len(mail.outbox) == 1  # the e-mail went out the first time and is not sent again

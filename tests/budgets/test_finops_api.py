"""Outcomes API (virtual key or admin token), CPSI from posted outcomes, FOCUS export by API
and command."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from budgets.finops.focus import COLUMNS
from budgets.models import Outcome, UsageRecord
from tests.budgets.finops_data import seed_small

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def issued(world):
    from console import services

    member_key = services.api_key_create(organization=world.org, name="poster", team=world.team, user=world.member)
    token = services.admin_token_create(organization=world.org, user=world.owner, name="finops")
    return member_key, token


def post(client, secret, body):
    return client.post("/api/v1/outcomes", body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {secret}")


def test_a_key_posts_an_outcome_for_its_own_request_and_it_takes_the_workflow(client, world, issued):
    seed_small(world, days=3)
    member_key, _ = issued
    record = UsageRecord.objects.filter(key_id=world.key.id, workflow="summarize").first()
    # The poster key is another key: it may not claim this request.
    response = post(client, member_key.secret, {"request_id": record.request_id, "name": "done"})
    assert response.status_code == 400
    # A workflow-level outcome is fine for any key of the organization.
    response = post(client, member_key.secret, {"workflow": "summarize", "name": "summary_accepted", "value": "2.5"})
    assert response.status_code == 201, response.content
    outcome = Outcome.objects.get()
    assert (outcome.workflow, outcome.value, outcome.key_id) == ("summarize", Decimal("2.5"), member_key.key.id)


def test_an_admin_token_posts_against_any_request_of_its_organization(client, world, issued):
    seed_small(world, days=3)
    _, token = issued
    record = UsageRecord.objects.filter(workflow="triage").first()
    response = post(client, token.secret, {"request_id": record.request_id, "name": "ticket_resolved"})
    assert response.status_code == 201, response.content
    assert response.json()["workflow"] == "triage"


def test_bad_outcomes_get_clear_errors(client, world, issued):
    member_key, _ = issued
    assert post(client, member_key.secret, {"name": "x"}).status_code == 400
    assert post(client, member_key.secret, {"workflow": "w"}).status_code == 400
    assert post(client, member_key.secret, {"request_id": "req_nope", "name": "x"}).status_code == 400
    assert post(client, member_key.secret, {"workflow": "w", "name": "x", "value": "abc"}).status_code == 400
    assert post(client, "sk-gh-notakey", {"workflow": "w", "name": "x"}).status_code in (401, 403)
    assert client.post("/api/v1/outcomes", {"workflow": "w", "name": "x"}).status_code in (401, 403)
    assert Outcome.objects.count() == 0


def test_cpsi_is_workflow_cost_over_its_outcomes(client, world, issued):
    seed_small(world, days=10)
    member_key, _ = issued
    for _ in range(4):
        assert post(client, member_key.secret, {"workflow": "summarize", "name": "ok", "value": "1"}).status_code == 201
    client.force_login(world.owner)
    response = client.get("/finops/outcomes/", {"period": "30d", "format": "csv", "table": "cpsi"})
    rows = {row["Workflow"]: row for row in csv.DictReader(io.StringIO(response.content.decode()))}
    cost = sum(UsageRecord.objects.filter(workflow="summarize").values_list("cost", flat=True))
    assert Decimal(rows["summarize"]["Cost"]) == cost
    assert rows["summarize"]["Outcomes"] == "4"
    assert Decimal(rows["summarize"]["CPSI (cost / outcome)"]) == (cost / 4).quantize(Decimal("1e-10"))


def test_focus_export_by_api_and_command_agree_with_the_records(client, world, issued, tmp_path):
    from datetime import UTC, datetime

    now = datetime(2026, 3, 20, 12, tzinfo=UTC)
    seed_small(world, now=now, days=10)
    _, token = issued
    response = client.get("/api/v1/focus", {"period": "2026-03"}, HTTP_AUTHORIZATION=f"Bearer {token.secret}")
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert list(rows[0]) == COLUMNS
    billed = sum(Decimal(row["BilledCost"]) for row in rows)
    assert billed == sum(UsageRecord.objects.values_list("cost", flat=True))
    assert {row["ConsumedUnit"] for row in rows} == {"Tokens"}
    out = tmp_path / "focus.csv"
    call_command("export_focus", "--org", world.org.slug, "--period", "2026-03", "--out", str(out))
    assert out.read_text().replace("\r\n", "\n") == body.replace("\r\n", "\n")
    assert (
        client.get("/api/v1/focus", {"period": "March"}, HTTP_AUTHORIZATION=f"Bearer {token.secret}").status_code == 400
    )
    with pytest.raises(CommandError):
        call_command("export_focus", "--org", "nope", "--period", "2026-03")


def test_members_may_not_export_focus(client, world):
    client.force_login(world.member)
    assert client.get("/api/v1/focus", {"period": "2026-03"}).status_code == 403

"""Model governance: the upstream version on usage records, pinning, drift alerts,
lifecycle dates (alerts before, refusal after) — against the simulator over HTTP."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from django.urls import reverse
from django.utils import timezone

from evals.governance import model_lifecycle, version_drift_check
from evals.models import DeploymentVersion, LifecycleNotice, VersionDrift
from gatehouse.signals import organization_alert
from providers.models import Deployment, Lifecycle, ModelCard
from providers.services import deployment_update, model_card_upsert
from tests.conftest import gateway_sync, sim_control_headers, usage_wait


def _chat(demo, model: str, *, stream: bool = False) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "Say hello"}], "max_tokens": 8}
    if stream:
        body["stream"] = True
    response = httpx.post(
        f"{demo.base_url}/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {demo.secret}"},
        timeout=30,
    )
    return response


@pytest.fixture
def heard():
    found: list[dict] = []

    def listen(sender, **kwargs):
        found.append(kwargs)

    organization_alert.connect(listen, dispatch_uid="test-governance")
    yield found
    organization_alert.disconnect(dispatch_uid="test-governance")


@pytest.fixture
def control(gateway_server):
    """The simulator's control endpoint; every override is removed afterwards."""
    url = f"{gateway_server.url}/sim/_control"
    headers = sim_control_headers()
    yield lambda **values: httpx.post(url, json=values, headers=headers, timeout=10).raise_for_status()
    httpx.delete(url, headers=headers, timeout=10)


@pytest.mark.parametrize(
    ("model", "stream", "version", "fingerprint"),
    [
        ("gpt-4o-mini", False, "gpt-4o-mini-2026-01-15", True),
        ("gpt-4o-mini", True, "gpt-4o-mini-2026-01-15", True),
        ("claude-sonnet-4-6", False, "claude-sonnet-4-6-20260115", False),
        ("claude-sonnet-4-6", True, "claude-sonnet-4-6-20260115", False),
        ("gemini-3.1-pro", False, "gemini-3.1-pro-001", False),
        ("gemini-3.1-pro", True, "gemini-3.1-pro-001", False),
    ],
)
def test_usage_records_carry_the_version_the_provider_reports(demo, model, stream, version, fingerprint):
    response = _chat(demo, model, stream=stream)
    assert response.status_code == 200, response.text
    record = usage_wait(response.headers["x-request-id"])
    assert record.upstream_version == version
    assert record.system_fingerprint.startswith("fp_") if fingerprint else record.system_fingerprint == ""


def test_a_pinned_deployment_sends_and_records_its_version(demo):
    deployment = Deployment.objects.get(name="gpt-4o-mini@sim-openai")
    deployment_update(deployment=deployment, pinned_version="gpt-4o-mini-2024-07-18")
    gateway_sync()
    response = _chat(demo, "gpt-4o-mini")
    assert response.status_code == 200
    assert usage_wait(response.headers["x-request-id"]).upstream_version == "gpt-4o-mini-2024-07-18"
    assert response.json()["model"] == "gpt-4o-mini-2024-07-18"


def test_a_changed_version_raises_one_drift_alert_and_marks_the_deployment(demo, control, heard, client):
    first = _chat(demo, "gpt-4o-mini")
    usage_wait(first.headers["x-request-id"])
    assert version_drift_check() == []  # the first sighting is the baseline
    known = DeploymentVersion.objects.get(deployment_name="gpt-4o-mini@sim-openai")
    assert known.version == "gpt-4o-mini-2026-01-15"
    assert heard == []

    control(model="gpt-4o-mini", model_version="gpt-4o-mini-2026-03-01")
    second = _chat(demo, "gpt-4o-mini", stream=True)
    usage_wait(second.headers["x-request-id"])
    drifts = version_drift_check()
    assert [(d.previous_version, d.version) for d in drifts] == [("gpt-4o-mini-2026-01-15", "gpt-4o-mini-2026-03-01")]
    assert drifts[0].previous_fingerprint != drifts[0].fingerprint
    assert [h["event"] for h in heard] == ["evals.drift"]
    assert heard[0]["organization_id"] == demo.org.id
    assert heard[0]["payload"]["deployment"] == "gpt-4o-mini@sim-openai"
    assert heard[0]["payload"]["version"] == "gpt-4o-mini-2026-03-01"
    # Nothing new: no second alert.
    assert version_drift_check() == []
    third = _chat(demo, "gpt-4o-mini")
    usage_wait(third.headers["x-request-id"])
    assert version_drift_check() == [] and len(heard) == 1
    assert VersionDrift.objects.count() == 1

    client.force_login(demo.owner)
    page = client.get(reverse("routing:health"))
    assert b'data-mark="drift"' in page.content and b"gpt-4o-mini-2026-03-01" in page.content


def test_a_pinned_deployment_that_answers_from_another_version_drifts(demo, control, heard):
    deployment = Deployment.objects.get(name="gpt-4o-mini@sim-openai")
    deployment_update(deployment=deployment, pinned_version="gpt-4o-mini-2024-07-18")
    gateway_sync()
    control(model="gpt-4o-mini-2024-07-18", model_version="gpt-4o-mini-2026-03-01")
    response = _chat(demo, "gpt-4o-mini")
    usage_wait(response.headers["x-request-id"])
    drifts = version_drift_check()
    assert [(d.pinned_version, d.version) for d in drifts] == [("gpt-4o-mini-2024-07-18", "gpt-4o-mini-2026-03-01")]
    assert heard[0]["payload"]["pinned_version"] == "gpt-4o-mini-2024-07-18"


def test_a_retired_model_is_refused_with_an_error_naming_the_replacement(demo):
    today = timezone.localdate()
    model_card_upsert(name="gpt-4o-mini", retirement_date=today, replacement="gpt-5.5")
    gateway_sync()
    response = _chat(demo, "gpt-4o-mini")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "model_retired" and error["param"] == "model"
    assert "`gpt-5.5`" in error["message"] and today.isoformat() in error["message"]
    record = usage_wait(response.headers["x-request-id"])
    assert record.status_code == 404 and record.error_code == "model_retired"
    # The replacement still answers; a date in the future changes nothing yet.
    assert _chat(demo, "gpt-5.5").status_code == 200
    model_card_upsert(name="gpt-4o-mini", retirement_date=today + timedelta(days=3))
    gateway_sync()
    assert _chat(demo, "gpt-4o-mini").status_code == 200


def test_lifecycle_dates_are_validated(demo):
    from django.core.exceptions import ValidationError

    today = timezone.localdate()
    with pytest.raises(ValidationError):
        model_card_upsert(name="gpt-4o-mini", deprecation_date=today, retirement_date=today - timedelta(days=1))
    with pytest.raises(ValidationError):
        model_card_upsert(name="gpt-4o-mini", replacement="gpt-4o-mini")
    assert ModelCard.objects.get(name="gpt-4o-mini").replacement == ""


def test_pinning_and_lifecycle_dates_through_the_api(demo):
    from tests.api.conftest import client_for

    demo.owner.is_staff = True  # lifecycle dates are the catalog's: a platform operator's to set
    demo.owner.save(update_fields=["is_staff"])
    client = client_for(demo.owner, demo.org)
    card = ModelCard.objects.get(name="gpt-4o-mini")
    unknown = client.patch(f"/api/v1/models/{card.id}/", {"replacement": "no-such-model"}, format="json")
    assert unknown.status_code == 400 and "replacement" in unknown.json()
    response = client.patch(
        f"/api/v1/models/{card.id}/",
        {"deprecation_date": "2027-01-31", "retirement_date": "2027-06-30", "replacement": "gpt-5.5"},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["deprecation_date"], body["retirement_date"], body["replacement"]) == (
        "2027-01-31",
        "2027-06-30",
        "gpt-5.5",
    )
    mine = Deployment.objects.get(name="gpt-4o-mini@sim-openai")
    pinned = client.patch(
        f"/api/v1/deployments/{mine.id}/",
        {"pinned_version": "gpt-4o-mini-2024-07-18", "health_probe": False},
        format="json",
    )
    if pinned.status_code == 403:  # shared deployments are the operator's
        demo.owner.is_superuser = True
        demo.owner.save()
        pinned = client.patch(
            f"/api/v1/deployments/{mine.id}/",
            {"pinned_version": "gpt-4o-mini-2024-07-18", "health_probe": False},
            format="json",
        )
    assert pinned.status_code == 200, pinned.content
    assert pinned.json()["pinned_version"] == "gpt-4o-mini-2024-07-18" and pinned.json()["health_probe"] is False


def test_pinning_and_lifecycle_dates_round_trip_through_the_config_file(demo, tmp_path):
    import yaml

    from gatehouse.config import config_export

    today = timezone.localdate()
    model_card_upsert(name="gpt-4o-mini", retirement_date=today + timedelta(days=9), replacement="gpt-5.5")
    deployment_update(deployment=Deployment.objects.get(name="gpt-4o-mini@sim-openai"), pinned_version="gpt-4o-mini-x")
    document = yaml.safe_load(config_export())
    mini = next(m for m in document["models"] if m["name"] == "gpt-4o-mini")
    assert mini["retirement_date"] == (today + timedelta(days=9)).isoformat() and mini["replacement"] == "gpt-5.5"
    dep = next(d for d in document["deployments"] if d["name"] == "gpt-4o-mini@sim-openai")
    assert dep["pinned_version"] == "gpt-4o-mini-x" and dep["health_probe"] is True
    mini["retirement_date"] = "2030-01-01"
    mini["replacement"] = "nowhere"
    path = tmp_path / "gatehouse.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="replacement: unknown model 'nowhere'"):
        call_command("apply_config", str(path))
    mini["replacement"] = "gpt-5.5"
    dep["pinned_version"] = ""
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    call_command("apply_config", str(path))
    assert str(ModelCard.objects.get(name="gpt-4o-mini").retirement_date) == "2030-01-01"
    assert Deployment.objects.get(name="gpt-4o-mini@sim-openai").pinned_version == ""


def test_lifecycle_alerts_go_out_days_before_once_and_dates_that_come_apply(demo, heard):
    usage_wait(_chat(demo, "gpt-4o-mini").headers["x-request-id"])
    today = timezone.localdate()
    model_card_upsert(
        name="gpt-4o-mini",
        deprecation_date=today + timedelta(days=10),
        retirement_date=today + timedelta(days=40),
        replacement="gpt-5.5",
    )
    sent = model_lifecycle(today=today, days=30)
    assert [(n.model, n.kind) for n in sent] == [("gpt-4o-mini", "deprecation")]
    assert [h["event"] for h in heard] == ["evals.lifecycle"]
    assert heard[0]["organization_id"] == demo.org.id
    assert heard[0]["payload"] == {
        "model": "gpt-4o-mini",
        "kind": "deprecation",
        "date": (today + timedelta(days=10)).isoformat(),
        "days_left": 10,
        "replacement": "gpt-5.5",
    }
    assert model_lifecycle(today=today, days=30) == []  # told once
    # Eleven days later: deprecated, and the retirement (29 days away) is announced.
    later = model_lifecycle(today=today + timedelta(days=11), days=30)
    assert [(n.kind, n.on_date) for n in later] == [("retirement", today + timedelta(days=40))]
    assert ModelCard.objects.get(name="gpt-4o-mini").lifecycle == Lifecycle.DEPRECATED
    assert LifecycleNotice.objects.filter(organization=demo.org).count() == 2
    # Not used by an organization: nobody is told.
    model_card_upsert(name="gemini-3.1-pro", deprecation_date=today + timedelta(days=5))
    assert model_lifecycle(today=today, days=30) == []


def test_the_model_card_shows_lifecycle_dates_and_links_the_scores(demo, client):
    today = timezone.localdate()
    card, _ = model_card_upsert(name="gpt-4o-mini", retirement_date=today + timedelta(days=60), replacement="gpt-5.5")
    demo.owner.is_superuser = True
    demo.owner.save()
    client.force_login(demo.owner)
    page = client.get(reverse("providers:model-edit", args=[card.pk]))
    assert page.status_code == 200
    text = page.content.decode()
    assert (today + timedelta(days=60)).isoformat() in text and "Replacement: <strong>gpt-5.5</strong>" in text
    assert reverse("evals:model-detail", args=["gpt-4o-mini"]) in text

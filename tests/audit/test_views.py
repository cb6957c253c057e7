"""The Integrity page, its partials (verify now, proof lookup, export) and the audit trail."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from audit.models import Verification
from audit.services import verification_run
from audit.verifier import gatehouse_verify as gv
from console import services as console_services
from console.middleware import SESSION_KEY
from console.models import Role
from tests.audit.conftest import org_make, seal

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def signed_in(user, org) -> Client:
    client = Client()
    client.force_login(user)
    session = client.session
    session[SESSION_KEY] = org.id
    session.save()
    return client


@pytest.fixture
def world():
    org, owner = org_make("Tenant A")
    other, other_owner = org_make("Tenant B")
    log, ids = seal(org.id, 12, rounds=2)
    seal(other.id, 4)
    return {"org": org, "owner": owner, "log": log, "ids": ids, "other": other, "other_owner": other_owner}


def test_the_integrity_page_shows_size_checkpoint_and_verification(world):
    client = signed_in(world["owner"], world["org"])
    verification_run(verification_id=Verification.objects.create(log=world["log"]).id)
    page = client.get("/integrity/").content.decode()
    assert 'id="log-size">13<' in page
    assert world["log"].origin in page  # the latest checkpoint note
    assert "Passed" in page and "13 leaves checked" in page
    assert "Verify now" in page


def test_the_overview_shows_the_integrity_tile(world):
    page = signed_in(world["owner"], world["org"]).get("/").content.decode()
    assert 'id="integrity-tile"' in page and "13 leaves" in page


def test_verify_now_starts_a_background_run_that_shows_progress(world, django_capture_on_commit_callbacks):
    client = signed_in(world["owner"], world["org"])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post("/integrity/verify/", **HTMX)
    assert response.status_code == 200 and len(callbacks) == 1
    run = Verification.objects.get(log=world["log"])
    assert run.status == "running" and 'hx-trigger="every 1s"' in response.content.decode()
    # The worker's part, run here: the same service the Celery task calls.
    verification_run(verification_id=run.id)
    partial = client.get(f"/integrity/verifications/{run.id}/", **HTMX).content.decode()
    assert "Passed" in partial and "every 1s" not in partial
    # Another organization cannot see this run.
    other = signed_in(world["other_owner"], world["other"])
    assert other.get(f"/integrity/verifications/{run.id}/").status_code == 404


def test_finance_reads_the_page_but_cannot_start_a_verification_and_members_cannot_see_it(world):
    finance = console_services.user_create(username="fin", email="fin@example.com", password=None)
    member = console_services.user_create(username="mem", email="mem@example.com", password=None)
    console_services.membership_set(organization=world["org"], user=finance, role=Role.FINANCE, actor=world["owner"])
    console_services.membership_set(organization=world["org"], user=member, role=Role.MEMBER, actor=world["owner"])
    client = signed_in(finance, world["org"])
    assert client.get("/integrity/").status_code == 200
    assert client.post("/integrity/verify/").status_code == 403
    assert signed_in(member, world["org"]).get("/integrity/").status_code == 403


def test_lookup_shows_a_verifying_inclusion_proof_and_stays_in_the_organization(world):
    client = signed_in(world["owner"], world["org"])
    page = client.get("/integrity/lookup/", {"request_id": world["ids"][3]}).content.decode()
    assert "proof verifies" in page and "Audit path" in page
    other = signed_in(world["other_owner"], world["other"])
    page = other.get("/integrity/lookup/", {"request_id": world["ids"][3]}).content.decode()
    assert "No sealed leaf with this id" in page


def test_export_downloads_a_time_range_the_verifier_accepts(world):
    from audit.signing import public_keys_document

    client = signed_in(world["owner"], world["org"])
    response = client.get("/integrity/export/", {"since": "2026-11-30T09:00", "until": "2026-11-30T09:01"})
    assert response.status_code == 200 and "attachment" in response["content-disposition"]
    doc = json.loads(response.content)
    assert doc["leaves"]
    keys, witnesses = gv.keys_load(public_keys_document())
    assert gv.export_verify(doc, keys, witnesses).ok
    bad = client.get("/integrity/export/", {"since": "2026-11-30T10:00", "until": "2026-11-30T09:00"})
    assert bad.status_code == 302


def test_the_audit_trail_lists_this_organizations_changes_with_filters(world):
    console_services.team_create(organization=world["org"], name="Platform", actor=world["owner"])
    console_services.team_create(organization=world["other"], name="Hidden", actor=world["other_owner"])
    from audit.services import ledger_seal

    ledger_seal()
    client = signed_in(world["owner"], world["org"])
    page = client.get("/integrity/trail/").content.decode()
    assert "team.create" in page and "Platform" in page and "Hidden" not in page
    assert "?request_id=event:" in page and "sealing…" not in page  # sealed events link to their proof
    filtered = client.get("/integrity/trail/", {"action": "organization"}, **HTMX).content.decode()
    assert "organization.create" in filtered and "team.create" not in filtered
    empty = client.get("/integrity/trail/", {"action": "nothing-like-this"}).content.decode()
    assert "No changes match these filters" in empty

"""The dead letter pages: owners and admins see their organization's refused usage
records, retry them once the cause is fixed, or discard them after a confirmation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson
import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from budgets.models import UsageDeadLetter, UsageRecord
from budgets.records import dead_letters_store
from budgets.usage import UsageEvent, UsageSink

LIST = "/usage/dead-letters/"


def event(org_id: int, **values) -> UsageEvent:
    base = {
        "request_id": f"req_{uuid.uuid4().hex}",
        "created_at": datetime.now(UTC),
        "organization_id": org_id,
        "endpoint": "chat",
        "status_code": 200,
    }
    return UsageEvent(**{**base, **values})


def refused(org_id: int) -> UsageDeadLetter:
    """A record the database really refuses (no status code), set aside by a flush."""
    bad = event(org_id, status_code=None)
    sink = UsageSink(journal_dir=None, buffer_max=100)
    sink.add(event(org_id))
    sink.add(bad)
    sink.flush()
    return UsageDeadLetter.objects.get(request_id=bad.request_id)


def fixed(org_id: int) -> UsageDeadLetter:
    """A record set aside for a cause fixed since (say, a full disk): storable as it is."""
    good = event(org_id, model_used="gpt-4o", input_tokens=12)
    (letter,) = dead_letters_store([(good, OSError("No space left on device"))])
    return letter


@pytest.fixture
def other_org(db):
    from console import services

    owner = services.user_create(username="owner-other", email="owner@other.test")
    return services.organization_create(name="Other Org", slug="other-org", owner=owner)


@pytest.mark.django_db(transaction=True)
def test_owners_see_their_dead_letters_and_not_another_organizations(client, world, other_org):
    mine = refused(world.org.id)
    theirs = refused(other_org.id)
    client.force_login(world.owner)
    page = client.get(LIST).content.decode()
    assert mine.request_id[:20] in page
    assert theirs.request_id[:20] not in page
    assert client.get(f"{LIST}{theirs.pk}/").status_code == 404
    assert client.post(f"{LIST}{theirs.pk}/discard/").status_code == 404
    assert UsageDeadLetter.objects.filter(pk=theirs.pk).exists()
    detail = client.get(f"{LIST}{mine.pk}/").content.decode()
    assert "&quot;status_code&quot;: null" in detail
    assert "NOT NULL" in detail.upper() or "status_code" in detail
    usage = client.get("/usage/").content.decode()
    assert 'data-testid="dead-letter-link"' in usage and "1 record not stored" in usage
    # The organization's alert recipients were told by e-mail.
    subjects = [m.subject for m in mail.outbox if world.owner.email in m.to]
    assert subjects == ["[Gatehouse] 1 usage record(s) could not be stored"]


@pytest.mark.django_db(transaction=True)
def test_members_may_not_see_dead_letters(client, world):
    letter = refused(world.org.id)
    client.force_login(world.member)
    assert client.get(LIST).status_code == 403
    assert client.post(f"{LIST}{letter.pk}/retry/").status_code == 403
    assert 'data-testid="dead-letter-link"' not in client.get("/usage/").content.decode()


@pytest.mark.django_db
def test_no_dead_letters_shows_an_empty_state(client, world):
    client.force_login(world.owner)
    assert "No dead letters" in client.get(LIST).content.decode()


@pytest.mark.django_db(transaction=True)
def test_retry_of_a_record_still_refused_says_why_and_keeps_it(client, world):
    letter = refused(world.org.id)
    client.force_login(world.owner)
    response = client.post(f"{LIST}{letter.pk}/retry/", follow=True)
    assert response.status_code == 200
    assert "still refuses" in response.content.decode()
    letter.refresh_from_db()
    assert letter.attempts == 2
    assert not UsageRecord.objects.filter(request_id=letter.request_id).exists()


@pytest.mark.django_db(transaction=True)
def test_retry_after_the_cause_is_fixed_stores_the_record(client, world):
    letter = fixed(world.org.id)
    assert "No space left" in letter.error
    client.force_login(world.owner)
    response = client.post(f"{LIST}{letter.pk}/retry/", follow=True)
    assert "stored" in response.content.decode()
    record = UsageRecord.objects.get(request_id=letter.request_id)
    assert (record.organization_id, record.model_used, record.input_tokens) == (world.org.id, "gpt-4o", 12)
    assert not UsageDeadLetter.objects.filter(pk=letter.pk).exists()
    assert AuditEvent.objects.filter(action="usage.dead_letter_retry", target=letter.request_id).exists()


@pytest.mark.django_db(transaction=True)
def test_discard_asks_first_then_deletes_and_audits(client, world):
    letter = refused(world.org.id)
    client.force_login(world.owner)
    confirm = client.get(f"{LIST}{letter.pk}/discard/")
    assert confirm.status_code == 200
    assert "Discard usage record" in confirm.content.decode()
    assert UsageDeadLetter.objects.filter(pk=letter.pk).exists()
    client.post(f"{LIST}{letter.pk}/discard/")
    assert not UsageDeadLetter.objects.filter(pk=letter.pk).exists()
    audit = AuditEvent.objects.get(action="usage.dead_letter_discard")
    assert orjson.loads(audit.data["record"])["request_id"] == letter.request_id


@pytest.mark.django_db
def test_the_list_is_paginated(client, world):
    UsageDeadLetter.objects.bulk_create(
        UsageDeadLetter(request_id=f"req-{i:03d}", organization_id=world.org.id, record="{}", error="boom")
        for i in range(51)
    )
    client.force_login(world.owner)
    first = client.get(LIST).content.decode()
    assert first.count("/retry/") == 50 and "Older" in first
    second = client.get(LIST, {"page": 2}).content.decode()
    assert second.count("/retry/") == 1 and "Newer" in second
    partial = client.get(LIST, {"page": 2}, HTTP_HX_REQUEST="true").content.decode()
    assert partial.lstrip().startswith('<div class="card flush" id="dead-letter-results">')
    assert client.get(LIST, {"page": "x"}).status_code == 200


@pytest.mark.django_db
def test_the_list_costs_the_same_queries_for_one_or_fifty(client, world, django_assert_max_num_queries):
    client.force_login(world.owner)
    UsageDeadLetter.objects.create(request_id="req-one", organization_id=world.org.id, record="{}", error="boom")
    client.get(LIST)  # warm the session and membership lookups
    with CaptureQueriesContext(connection) as one:
        client.get(LIST)
    UsageDeadLetter.objects.bulk_create(
        UsageDeadLetter(request_id=f"req-{i}", organization_id=world.org.id, record="{}", error="boom")
        for i in range(49)
    )
    with django_assert_max_num_queries(len(one.captured_queries)):
        client.get(LIST)

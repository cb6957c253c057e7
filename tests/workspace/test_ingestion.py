"""Ingestion in a real Celery worker: an upload is queued, embedded through the pipeline in
the worker, its progress shown on the knowledge base's page (polled by htmx), and a failed
document says why."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

pytestmark = pytest.mark.django_db(transaction=True)

POLICY = "\n\n".join(
    f"Section {n}. Rule {n} of the travel policy: trains under {n + 3} hours, never planes." for n in range(12)
).encode()


@pytest.fixture
def worker(celery_worker_process):
    return celery_worker_process


@pytest.fixture
def member_client(client, member):
    client.force_login(get_user_model().objects.get(username="mia"))
    return client


def _wait_for(document_id: int, timeout: float = 60.0):
    from workspace.models import Document

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        document = Document.objects.get(pk=document_id)
        if document.status != "pending":
            return document
        time.sleep(0.2)
    raise AssertionError(f"document {document_id} still pending after {timeout} s")


def test_an_upload_is_embedded_by_the_worker_with_progress_and_lands_on_the_members_budget(
    worker, demo, member, member_client, settings
):
    from budgets.models import UsageRecord
    from workspace.models import Chunk, Document, KnowledgeBase, WorkspaceKey
    from workspace.retrieval import knowledge_search

    settings.GATEHOUSE = {**settings.GATEHOUSE, "WORKSPACE": {"CHUNK_CHARS": 100}}  # the upload is cut here
    member_client.post(reverse("workspace:knowledge-list"), {"name": "Travel"})
    base = KnowledgeBase.objects.get(organization=demo.org, name="Travel")
    from django.core.files.uploadedfile import SimpleUploadedFile

    page = member_client.post(
        reverse("workspace:knowledge-detail", args=[base.pk]),
        {"file": SimpleUploadedFile("policy.md", POLICY)},
        follow=True,
    )
    document = Document.objects.get(knowledge_base=base)
    assert "policy.md is being indexed (12 parts)." in page.content.decode()
    # While pending, the documents card polls itself (htmx) and shows how far it got.
    partial = member_client.get(reverse("workspace:knowledge-detail", args=[base.pk]), HTTP_HX_REQUEST="true")
    body = partial.content.decode()
    if Document.objects.get(pk=document.pk).status == "pending":
        assert 'hx-trigger="every 1s"' in body and "parts embedded" in body
    assert "<h1>" not in body  # only the card, not the page

    document = _wait_for(document.pk)
    assert document.status == "ready", document.error
    assert document.chunks_done == document.chunk_count == 12
    assert Chunk.objects.filter(document=document).exclude(vector=b"").count() == 12
    key_id = WorkspaceKey.objects.get(user=member).api_key_id
    records = UsageRecord.objects.filter(key_id=key_id, endpoint="embeddings")
    deadline = time.monotonic() + 10  # the worker's gateway writes usage records in batches
    while not records.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert records.count() == 1  # one batch (the worker's EMBED_BATCH is 64), on the member's key
    assert "workspace" in records.get().tags and records.get().status_code == 200
    body = member_client.get(reverse("workspace:knowledge-detail", args=[base.pk]), HTTP_HX_REQUEST="true")
    assert "every 1s" not in body.content.decode() and "Ready" in body.content.decode()
    hits = knowledge_search(knowledge_base_id=base.pk, query="rule 7 trains", vector=None, limit=1)
    assert hits and hits[0].document == "policy.md"


def test_a_document_the_worker_cannot_embed_is_failed_with_the_reason_on_its_page(worker, demo, member, member_client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from workspace.models import Document, KnowledgeBase

    member_client.post(reverse("workspace:knowledge-list"), {"name": "Odd"})
    base = KnowledgeBase.objects.get(organization=demo.org, name="Odd")
    base.embedding_model = "no-such-embedder"
    base.save()
    member_client.post(
        reverse("workspace:knowledge-detail", args=[base.pk]), {"file": SimpleUploadedFile("n.txt", b"Notes.")}
    )
    document = _wait_for(Document.objects.get(knowledge_base=base).pk)

    assert document.status == "failed"
    assert document.error.startswith("Embedding with no-such-embedder was refused:")
    page = member_client.get(reverse("workspace:knowledge-detail", args=[base.pk])).content.decode()
    assert "Failed: Embedding with no-such-embedder was refused:" in page

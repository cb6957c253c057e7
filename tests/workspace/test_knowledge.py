"""Knowledge bases: upload, chunk, embed through the pipeline, retrieve, cite."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from tests.workspace.conftest import turn

pytestmark = pytest.mark.django_db(transaction=True)

HANDBOOK = b"""# Handbook

Expense reports are due on the fifth working day of each month; late reports wait a month.

Parking permits for the Lyon office are requested from facilities with the car's plate.

The security team rotates the VPN certificates every ninety days.
"""


def _ingest(document, key_id):
    from workspace.knowledge import document_ingest
    from workspace.turns import with_gateway

    return with_gateway(None, lambda gateway: document_ingest(gateway, document_id=document.pk, key_id=key_id))


def test_chunking_packs_paragraphs_and_cuts_long_ones_with_overlap():
    from workspace.knowledge import chunk_text

    assert chunk_text("one\n\ntwo\n\nthree", size=9, overlap=2) == ["one\n\ntwo", "three"]
    long = "abcdefghij" * 3
    pieces = chunk_text(long, size=12, overlap=4)
    assert pieces[0] == long[:12] and pieces[1].startswith(long[8:12])
    assert "".join(p[4:] if i else p for i, p in enumerate(pieces)).startswith(long)


def test_uploads_must_be_text_markdown_html_or_pdf():
    from workspace.knowledge import upload_text

    with pytest.raises(ValidationError, match="Upload a .txt, .md, .html or .pdf"):
        upload_text(name="x.exe", data=b"MZ")
    with pytest.raises(ValidationError, match="not UTF-8"):
        upload_text(name="x.txt", data=b"\xff\xfe\x00bad")
    with pytest.raises(ValidationError, match="could not be read"):
        upload_text(name="x.pdf", data=b"not a pdf")


def test_a_document_is_embedded_and_the_best_chunks_are_cited_in_the_answer(demo, member, settings):
    from budgets.models import UsageRecord
    from workspace import knowledge, services
    from workspace.knowledge import vector_of
    from workspace.models import Chunk, Message

    settings.GATEHOUSE = {**settings.GATEHOUSE, "WORKSPACE": {"CHUNK_CHARS": 120, "RETRIEVE_CHUNKS": 1}}
    base = knowledge.knowledge_base_create(organization=demo.org, actor=member, name="Handbook")
    document = knowledge.document_create(knowledge_base=base, actor=member, name="handbook.md", data=HANDBOOK)
    key_id = services.workspace_key_ensure(organization=demo.org, user=member).api_key_id
    before = UsageRecord.objects.filter(key_id=key_id).count()

    document = _ingest(document, key_id)

    assert document.status == "ready", document.error
    chunks = list(Chunk.objects.filter(document=document))
    assert len(chunks) == document.chunk_count >= 3
    assert all(vector_of(c.vector).shape == (1536,) for c in chunks)
    records = UsageRecord.objects.filter(key_id=key_id)
    assert records.count() == before + 1 and "workspace" in records.latest("id").tags

    conversation = services.conversation_create(
        organization=demo.org, user=member, model="gpt-4o-mini", knowledge_base=base
    )
    events = turn(conversation_id=conversation.pk, user_id=member.pk, content="How do I get a parking permit in Lyon?")
    answer = next(e for e in events if e["type"] == "answer")
    assert [c["document"] for c in answer["citations"]] == ["handbook.md"]
    assert "Parking permits" in answer["citations"][0]["excerpt"]
    assert Message.objects.get(pk=answer["id"]).citations == answer["citations"]


def test_a_refused_embedding_leaves_the_document_failed_with_the_reason(demo, member):
    from workspace import knowledge, services

    base = knowledge.knowledge_base_create(organization=demo.org, actor=member, name="Notes")
    base.embedding_model = "no-such-embedder"
    base.save()
    document = knowledge.document_create(knowledge_base=base, actor=member, name="n.txt", data=b"Some text.")
    key_id = services.workspace_key_ensure(organization=demo.org, user=member).api_key_id

    document = _ingest(document, key_id)

    assert document.status == "failed"
    assert document.error.startswith("Embedding with no-such-embedder was refused:")


def _pdf(text: str) -> bytes:
    """A one-page PDF showing `text` (built by hand, offsets computed)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def test_a_pdf_upload_is_read_as_text():
    from workspace.knowledge import upload_text

    assert "Badges are renewed every year" in upload_text(name="rules.PDF", data=_pdf("Badges are renewed every year"))


def test_an_html_upload_keeps_the_visible_text_in_paragraphs_and_drops_scripts():
    from workspace.knowledge import upload_text

    page = (
        b"<html><head><title>t</title><style>p{}</style></head><body><h1>Travel</h1>"
        b"<p>Trains are booked&nbsp;through <b>the portal</b>.</p><script>alert(1)</script><p>Taxis are refunded.</p>"
        b"</body></html>"
    )
    assert upload_text(name="travel.html", data=page) == (
        "Travel\n\nTrains are booked through the portal.\n\nTaxis are refunded."
    )

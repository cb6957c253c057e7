"""Knowledge bases: read uploads, cut them into chunks and embed them through the pipeline
(in a Celery task, `workspace.tasks.document_ingest_task`), and the prompt that carries the
chunks retrieval found (`workspace/retrieval.py`).

Vectors are stored as float32 bytes per chunk; retrieval keeps each knowledge base's
matrix in memory (see docs/workspace.md)."""

from __future__ import annotations

import io
import re
from html.parser import HTMLParser
from typing import Any

import numpy as np
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from console.models import Membership, Organization
from routing.facade import Gateway, embeddings, key_context, request_context
from workspace.conf import workspace_conf
from workspace.models import Chunk, Document, DocumentStatus, KnowledgeBase, new_version
from workspace.retrieval import Hit

TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".csv", ".json", ".log")
HTML_SUFFIXES = (".html", ".htm")


# ---- reading and chunking -------------------------------------------------------------------


def upload_text(*, name: str, data: bytes) -> str:
    """The text of an uploaded file, or a clear error."""
    conf = workspace_conf()
    if len(data) > conf.upload_max_bytes:
        raise ValidationError({"file": f"The file is larger than {conf.upload_max_bytes // 1000} kB."})
    lower = name.lower()
    if lower.endswith(".pdf"):
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError

        try:
            reader = PdfReader(io.BytesIO(data))
            text = "\n\n".join(page.extract_text() or "" for page in reader.pages)
        except (PdfReadError, ValueError, KeyError) as exc:
            raise ValidationError({"file": f"The PDF could not be read ({exc})."}) from exc
    elif lower.endswith(TEXT_SUFFIXES + HTML_SUFFIXES):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ValidationError({"file": "The file is not UTF-8 text."}) from exc
        if lower.endswith(HTML_SUFFIXES):
            text = html_text(text)
    else:
        raise ValidationError({"file": "Upload a .txt, .md, .html or .pdf file (or .csv, .json, .log)."})
    if not text.strip():
        raise ValidationError({"file": "The file holds no text."})
    return text


class _HtmlText(HTMLParser):
    """The visible text of an HTML page, one paragraph per block element."""

    SKIP = {"script", "style", "head", "template", "noscript"}
    BLOCKS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "pre"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in self.SKIP:
            self.skipping += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP and self.skipping:
            self.skipping -= 1
        elif tag in self.BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def html_text(markup: str) -> str:
    parser = _HtmlText()
    parser.feed(markup)
    parser.close()
    paragraphs = (" ".join(p.split()) for p in re.split(r"\n\s*\n", "".join(parser.parts)))
    return "\n\n".join(p for p in paragraphs if p)


def chunk_text(text: str, *, size: int, overlap: int) -> list[str]:
    """Paragraphs packed into chunks of about `size` characters; a paragraph longer than
    that is cut with `overlap` characters repeated, so no sentence is lost at a cut."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    pieces: list[str] = []
    for paragraph in paragraphs:
        if len(paragraph) <= size:
            pieces.append(paragraph)
            continue
        step = max(1, size - overlap)
        pieces += [paragraph[start : start + size] for start in range(0, len(paragraph) - overlap, step)]
    chunks: list[str] = []
    current = ""
    for piece in pieces:
        if current and len(current) + 2 + len(piece) > size:
            chunks.append(current)
            current = piece
        else:
            current = f"{current}\n\n{piece}" if current else piece
    if current:
        chunks.append(current)
    return chunks


def vector_bytes(values: list[float]) -> bytes:
    return np.asarray(values, dtype="<f4").tobytes()


def vector_of(data: bytes) -> np.ndarray:
    return np.frombuffer(bytes(data), dtype="<f4")


# ---- writes ---------------------------------------------------------------------------------


def _member(organization: Organization, user: AbstractBaseUser) -> Membership:
    membership = Membership.objects.filter(organization=organization, user=user).first()
    if membership is None:
        raise PermissionDenied("You are not a member of this organization.")
    return membership


def knowledge_base_create(
    *, organization: Organization, actor: AbstractBaseUser, name: str, description: str = ""
) -> KnowledgeBase:
    _member(organization, actor)
    name = name.strip()
    if not name:
        raise ValidationError({"name": "A knowledge base needs a name."})
    if KnowledgeBase.objects.filter(organization=organization, name=name).exists():
        raise ValidationError({"name": f"A knowledge base named {name} exists already."})
    return KnowledgeBase.objects.create(
        organization=organization, name=name[:120], description=description.strip()[:300], created_by=actor
    )


def knowledge_base_delete(*, knowledge_base: KnowledgeBase, actor: AbstractBaseUser) -> None:
    membership = _member(knowledge_base.organization, actor)
    if not membership.can_manage and knowledge_base.created_by_id != actor.pk:
        raise PermissionDenied("Only its creator, owners and admins delete a knowledge base.")
    knowledge_base.delete()


def document_create(
    *, knowledge_base: KnowledgeBase, actor: AbstractBaseUser, name: str, data: bytes, key_id: int | None = None
) -> Document:
    """The document and its chunks, pending; with `key_id`, its embedding is queued (a
    Celery task, after the commit) with that workspace key."""
    from workspace.selectors import workspace_settings

    membership = _member(knowledge_base.organization, actor)
    if not workspace_settings(organization=knowledge_base.organization).uploads_allowed and not membership.can_manage:
        raise PermissionDenied("Uploading documents is turned off in this organization.")
    text = upload_text(name=name, data=data)
    conf = workspace_conf()
    pieces = chunk_text(text, size=conf.chunk_chars, overlap=conf.chunk_overlap)
    with transaction.atomic():
        document = Document.objects.create(
            knowledge_base=knowledge_base, name=name[:255], size=len(data), uploaded_by=actor, chunk_count=len(pieces)
        )
        Chunk.objects.bulk_create(
            Chunk(document=document, knowledge_base=knowledge_base, ordinal=i, text=piece)
            for i, piece in enumerate(pieces)
        )
        if key_id is not None:
            from workspace.tasks import document_ingest_task

            transaction.on_commit(lambda: document_ingest_task.delay(document.pk, key_id))
    return document


def _index_changed(knowledge_base_id: int) -> None:
    """Retrieval caches (in every process) rebuild this knowledge base's index."""
    KnowledgeBase.objects.filter(pk=knowledge_base_id).update(index_version=new_version())


def document_delete(*, document: Document, actor: AbstractBaseUser) -> None:
    membership = _member(document.knowledge_base.organization, actor)
    if not membership.can_manage and document.uploaded_by_id != actor.pk:
        raise PermissionDenied("Only its uploader, owners and admins delete a document.")
    with transaction.atomic():
        document.delete()
        _index_changed(document.knowledge_base_id)


def _document_texts(document_id: int) -> tuple[str, list[tuple[int, str]]]:
    document = Document.objects.select_related("knowledge_base").get(pk=document_id)
    Document.objects.filter(pk=document_id).update(status=DocumentStatus.PENDING, error="", chunks_done=0)
    rows = list(Chunk.objects.filter(document_id=document_id).order_by("ordinal").values_list("id", "text"))
    return document.knowledge_base.embedding_model, rows


def _document_vectors_store(document_id: int, vectors: dict[int, bytes], done: int) -> None:
    """One batch of vectors, and the progress shown on the knowledge base's page."""
    with transaction.atomic():
        chunks = list(Chunk.objects.filter(pk__in=list(vectors)))
        for chunk in chunks:
            chunk.vector = vectors[chunk.pk]
        Chunk.objects.bulk_update(chunks, ["vector"], batch_size=200)
        Document.objects.filter(pk=document_id).update(chunks_done=done)


def _document_ready(document_id: int) -> None:
    with transaction.atomic():
        updated = Document.objects.filter(pk=document_id).update(status=DocumentStatus.READY, error="")
        knowledge_base_id = Document.objects.filter(pk=document_id).values_list("knowledge_base_id", flat=True).first()
        if updated and knowledge_base_id:
            _index_changed(knowledge_base_id)


def document_fail(document_id: int, error: str) -> None:
    Document.objects.filter(pk=document_id).update(status=DocumentStatus.FAILED, error=error[:500])


async def embed(gateway: Gateway, *, key_id: int, model: str, texts: list[str]) -> list[list[float]]:
    """Embeddings of `texts` through the pipeline with the member's workspace key; raises
    ValidationError with the gateway's reason when refused."""
    key = await key_context(gateway, key_id=key_id)
    if key is None:
        raise ValidationError("The workspace key is not valid (revoked or expired).")
    ctx = request_context(gateway, key, endpoint="embeddings", headers={"x-gatehouse-tags": workspace_conf().tag})
    reply = await embeddings(gateway, ctx, {"model": model, "input": texts})
    if not reply.ok:
        error = (reply.payload or {}).get("error") or {}
        raise ValidationError(f"Embedding with {model} was refused: {error.get('message') or reply.status}")
    data = sorted(reply.payload.get("data") or [], key=lambda item: item.get("index", 0))
    return [item["embedding"] for item in data]


async def document_ingest(gateway: Gateway, *, document_id: int, key_id: int) -> Document:
    """Embed a document's chunks in batches, storing each batch and the progress; the
    document ends ready, or failed with the reason."""
    model, rows = await gateway.db(_document_texts, document_id)
    batch = workspace_conf().embed_batch
    try:
        for start in range(0, len(rows), batch):
            part = rows[start : start + batch]
            found = await embed(gateway, key_id=key_id, model=model, texts=[text for _, text in part])
            if len(found) != len(part):
                raise ValidationError("The embeddings model answered a different number of vectors.")
            vectors = {chunk_id: vector_bytes(vector) for (chunk_id, _), vector in zip(part, found, strict=True)}
            await gateway.db(_document_vectors_store, document_id, vectors, start + len(part))
    except ValidationError as exc:
        await gateway.db(document_fail, document_id, " ".join(exc.messages))
    else:
        await gateway.db(_document_ready, document_id)
    return await gateway.db(Document.objects.get, pk=document_id)


# ---- retrieval (workspace/retrieval.py) -------------------------------------------------------


def knowledge_prompt(hits: list[Hit]) -> tuple[str, list[dict[str, Any]]]:
    """The system message carrying the excerpts, and the citations the answer shows."""
    lines = [
        "Answer using these excerpts from the user's knowledge base when they are relevant, "
        "and cite them as [1], [2], ...:"
    ]
    citations = []
    for n, hit in enumerate(hits, start=1):
        lines.append(f"[{n}] ({hit.document}, part {hit.ordinal + 1})\n{hit.text}")
        citations.append(
            {
                "n": n,
                "chunk": hit.chunk_id,
                "document": hit.document,
                "ordinal": hit.ordinal,
                "excerpt": hit.text[:200],
                "score": round(hit.score, 4),
            }
        )
    return "\n\n".join(lines), citations

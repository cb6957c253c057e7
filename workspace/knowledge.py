"""Knowledge bases: read uploads, cut them into chunks, embed them through the pipeline,
and find the chunks closest to a question (cosine similarity plus keyword overlap).

Vectors are stored as float32 bytes per chunk and compared in memory with numpy, which
suits knowledge bases of a few thousand chunks (see docs/workspace.md)."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from console.models import Membership, Organization
from routing.facade import Gateway, embeddings, key_context, request_context
from workspace.conf import workspace_conf
from workspace.models import Chunk, Document, DocumentStatus, KnowledgeBase

TEXT_SUFFIXES = (".txt", ".md", ".markdown")
WORD = re.compile(r"[a-z0-9]{3,}")
COSINE_WEIGHT = 0.6  # the rest is keyword overlap


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
    elif lower.endswith(TEXT_SUFFIXES):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ValidationError({"file": "The file is not UTF-8 text."}) from exc
    else:
        raise ValidationError({"file": "Upload a .txt, .md or .pdf file."})
    if not text.strip():
        raise ValidationError({"file": "The file holds no text."})
    return text


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


def document_create(*, knowledge_base: KnowledgeBase, actor: AbstractBaseUser, name: str, data: bytes) -> Document:
    """The document and its chunks, not yet embedded (`document_ingest` embeds them)."""
    _member(knowledge_base.organization, actor)
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
    return document


def document_delete(*, document: Document, actor: AbstractBaseUser) -> None:
    membership = _member(document.knowledge_base.organization, actor)
    if not membership.can_manage and document.uploaded_by_id != actor.pk:
        raise PermissionDenied("Only its uploader, owners and admins delete a document.")
    document.delete()


def _document_texts(document_id: int) -> tuple[str, list[tuple[int, str]]]:
    document = Document.objects.select_related("knowledge_base").get(pk=document_id)
    rows = list(Chunk.objects.filter(document_id=document_id).order_by("ordinal").values_list("id", "text"))
    return document.knowledge_base.embedding_model, rows


def _document_vectors_store(document_id: int, vectors: dict[int, bytes]) -> None:
    with transaction.atomic():
        chunks = list(Chunk.objects.filter(document_id=document_id))
        for chunk in chunks:
            chunk.vector = vectors[chunk.pk]
        Chunk.objects.bulk_update(chunks, ["vector"], batch_size=200)
        Document.objects.filter(pk=document_id).update(status=DocumentStatus.READY, error="")


def _document_fail(document_id: int, error: str) -> None:
    Document.objects.filter(pk=document_id).update(status=DocumentStatus.FAILED, error=error[:500])


async def embed(gateway: Gateway, *, key_id: int, model: str, texts: list[str]) -> list[list[float]]:
    """Embeddings of `texts` through the pipeline with the member's workspace key; raises
    ValidationError with the gateway's reason when refused."""
    key = await key_context(gateway, key_id=key_id)
    if key is None:
        raise ValidationError("The workspace key is not valid.")
    ctx = request_context(gateway, key, endpoint="embeddings", headers={"x-gatehouse-tags": workspace_conf().tag})
    reply = await embeddings(gateway, ctx, {"model": model, "input": texts})
    if not reply.ok:
        error = (reply.payload or {}).get("error") or {}
        raise ValidationError(f"Embedding with {model} was refused: {error.get('message') or reply.status}")
    data = sorted(reply.payload.get("data") or [], key=lambda item: item.get("index", 0))
    return [item["embedding"] for item in data]


async def document_ingest(gateway: Gateway, *, document_id: int, key_id: int) -> Document:
    """Embed a document's chunks in batches; the document ends ready or failed with the reason."""
    model, rows = await gateway.db(_document_texts, document_id)
    batch = workspace_conf().embed_batch
    vectors: dict[int, bytes] = {}
    try:
        for start in range(0, len(rows), batch):
            part = rows[start : start + batch]
            found = await embed(gateway, key_id=key_id, model=model, texts=[text for _, text in part])
            if len(found) != len(part):
                raise ValidationError("The embeddings model answered a different number of vectors.")
            vectors.update((chunk_id, vector_bytes(vector)) for (chunk_id, _), vector in zip(part, found, strict=True))
    except ValidationError as exc:
        await gateway.db(_document_fail, document_id, " ".join(exc.messages))
    else:
        await gateway.db(_document_vectors_store, document_id, vectors)
    return await gateway.db(Document.objects.get, pk=document_id)


# ---- retrieval ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hit:
    chunk_id: int
    document: str
    ordinal: int
    text: str
    score: float


def _words(text: str) -> set[str]:
    return set(WORD.findall(text.lower()))


def chunk_scores(
    texts: list[str], vectors: list[np.ndarray] | None, *, query: str, vector: list[float] | None
) -> np.ndarray:
    """Each chunk's score: cosine similarity to the query's embedding (when there is one)
    blended with the share of the query's words the chunk contains."""
    words = _words(query)
    keyword = np.array([len(words & _words(t)) / len(words) if words else 0.0 for t in texts], dtype="f4")
    if vector is None or vectors is None:
        return keyword
    q = np.asarray(vector, dtype="f4")
    dims = q.shape[0]
    matrix = np.stack([v if v.shape == (dims,) else np.zeros(dims, "f4") for v in vectors])
    norms = np.linalg.norm(matrix, axis=1) * (np.linalg.norm(q) or 1.0)
    cosine = np.divide(matrix @ q, norms, out=np.zeros(len(texts), dtype="f4"), where=norms > 0)
    return COSINE_WEIGHT * cosine + (1 - COSINE_WEIGHT) * keyword


def knowledge_search(*, knowledge_base_id: int, query: str, vector: list[float] | None, limit: int) -> list[Hit]:
    """The best chunks for `query`: cosine similarity of the embeddings (when the query could
    be embedded) blended with the share of the query's words each chunk contains."""
    rows = list(
        Chunk.objects.filter(knowledge_base_id=knowledge_base_id, document__status=DocumentStatus.READY)
        .select_related("document")
        .only("id", "ordinal", "text", "vector", "document__name")
    )
    if not rows:
        return []
    vectors = [vector_of(r.vector) for r in rows] if vector is not None else None
    score = chunk_scores([r.text for r in rows], vectors, query=query, vector=vector)
    order = np.argsort(-score)[:limit]
    return [
        Hit(
            chunk_id=rows[i].pk,
            document=rows[i].document.name,
            ordinal=rows[i].ordinal,
            text=rows[i].text,
            score=float(score[i]),
        )
        for i in order
        if score[i] > 0
    ]


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
            {"n": n, "document": hit.document, "ordinal": hit.ordinal, "excerpt": hit.text[:200], "score": hit.score}
        )
    return "\n\n".join(lines), citations


def users_key_id(*, organization_id: int, user_id: int) -> int:
    """The member's workspace key id (issued if needed)."""
    from workspace.services import workspace_key_ensure

    organization = Organization.objects.get(pk=organization_id)
    user = get_user_model().objects.get(pk=user_id)
    return workspace_key_ensure(organization=organization, user=user).api_key_id

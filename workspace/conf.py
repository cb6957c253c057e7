"""The workspace's settings: `settings.GATEHOUSE["WORKSPACE"]`, each with a default."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

DEFAULTS = {
    "MEMORY_TOKENS": 400,  # how much of the prompt remembered facts may take
    "HISTORY_MESSAGES": 40,  # earlier turns sent with a new one
    "MAX_MESSAGE_CHARS": 20000,
    "TAG": "workspace",
    "UPLOAD_MAX_BYTES": 2_000_000,  # larger files are refused
    "CHUNK_CHARS": 900,
    "CHUNK_OVERLAP": 150,
    "RETRIEVE_CHUNKS": 4,
    "EMBED_BATCH": 64,
    "RETRIEVAL_CACHE_BASES": 8,  # knowledge base indexes kept in memory per process
}


@dataclass(frozen=True, slots=True)
class WorkspaceConf:
    memory_tokens: int
    history_messages: int
    max_message_chars: int
    tag: str
    upload_max_bytes: int
    chunk_chars: int
    chunk_overlap: int
    retrieve_chunks: int
    embed_batch: int
    retrieval_cache_bases: int


def workspace_conf() -> WorkspaceConf:
    values = {**DEFAULTS, **(getattr(settings, "GATEHOUSE", {}).get("WORKSPACE") or {})}
    return WorkspaceConf(
        memory_tokens=int(values["MEMORY_TOKENS"]),
        history_messages=int(values["HISTORY_MESSAGES"]),
        max_message_chars=int(values["MAX_MESSAGE_CHARS"]),
        tag=str(values["TAG"]),
        upload_max_bytes=int(values["UPLOAD_MAX_BYTES"]),
        chunk_chars=int(values["CHUNK_CHARS"]),
        chunk_overlap=int(values["CHUNK_OVERLAP"]),
        retrieve_chunks=int(values["RETRIEVE_CHUNKS"]),
        embed_batch=int(values["EMBED_BATCH"]),
        retrieval_cache_bases=int(values["RETRIEVAL_CACHE_BASES"]),
    )

"""The workspace's settings: `settings.GATEHOUSE["WORKSPACE"]`, each with a default."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

DEFAULTS = {
    "MEMORY_TOKENS": 400,  # how much of the prompt remembered facts may take
    "HISTORY_MESSAGES": 40,  # earlier turns sent with a new one
    "MAX_MESSAGE_CHARS": 20000,
    "TAG": "workspace",
}


@dataclass(frozen=True, slots=True)
class WorkspaceConf:
    memory_tokens: int
    history_messages: int
    max_message_chars: int
    tag: str


def workspace_conf() -> WorkspaceConf:
    values = {**DEFAULTS, **(getattr(settings, "GATEHOUSE", {}).get("WORKSPACE") or {})}
    return WorkspaceConf(
        memory_tokens=int(values["MEMORY_TOKENS"]),
        history_messages=int(values["HISTORY_MESSAGES"]),
        max_message_chars=int(values["MAX_MESSAGE_CHARS"]),
        tag=str(values["TAG"]),
    )

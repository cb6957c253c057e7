"""Guardrails fixtures: a tenant with a team and a key, built through services."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from guardrails.facade import Guard
from guardrails.snapshot import GuardSnapshot


@dataclass
class Tenant:
    org: object
    owner: object
    team: object
    other_team: object
    key: object
    secret: str


def tenant_build(suffix: str = "") -> Tenant:
    from console import services

    owner = services.user_create(username=f"guard-owner{suffix}", password="pw-Owner-123")
    org = services.organization_create(name=f"Guard Org{suffix}", owner=owner)
    team = services.team_create(organization=org, name="Legal", actor=owner)
    other = services.team_create(organization=org, name="Sales", actor=owner)
    issued = services.api_key_create(organization=org, name="app", team=team, user=owner, actor=owner)
    return Tenant(org, owner, team, other, issued.key, issued.secret)


@pytest.fixture
def tenant(db) -> Tenant:
    return tenant_build()


@pytest.fixture
def guard() -> Guard:
    """A guard on the built-in default policy (no database rows)."""
    return Guard(GuardSnapshot(organizations={}, secret=b"test-secret" * 3))


def chat(*messages: dict) -> dict:
    return {"model": "gpt-4o-mini", "messages": list(messages)}


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def inbound(
    guard: Guard, body: dict, *, org: int = 1, team=None, key=None, data_class="", conversation=None, endpoint="chat"
):
    return guard.inbound(
        organization_id=org,
        team_id=team,
        key_id=key,
        data_class=data_class,
        endpoint=endpoint,
        body=body,
        conversation=conversation,
    )


def delta_chunk(text: str | None = None, *, finish: str | None = None, calls: list | None = None) -> dict:
    delta: dict = {}
    if text is not None:
        delta["content"] = text
    if calls is not None:
        delta["tool_calls"] = calls
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }

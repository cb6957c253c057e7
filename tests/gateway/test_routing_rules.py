"""Content-based routing over real HTTP: ordered rules on what a request is; the
first match wins and a default route catches the rest."""

from __future__ import annotations

import pytest

from console.services import api_key_create, team_create
from tests.conftest import gateway_sync, usage_wait
from tests.routing.support import chat, model_card, policy, reset_state, sim_deployment

TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}]


@pytest.fixture
def lanes(demo):
    names = ["legal", "long", "tools", "vision", "json", "tagged", "workflow", "team", "key", "secret", "default"]
    deployments = {}
    for name in names:
        card = model_card(f"lane-{name}", capabilities=["chat", "streaming", "tools", "json_mode", "vision"])
        deployments[name] = sim_deployment(card, f"lane-{name}@a")
    reset_state(*deployments.values())
    other = team_create(organization=demo.org, name="Legal", actor=demo.owner)
    rules = [
        {"name": "legal words", "route": "lane-legal", "keywords": ["indemnity", "liability"]},
        {"name": "big prompts", "route": "lane-long", "min_tokens": 2000},
        {"name": "tool use", "route": "lane-tools", "tools": True},
        {"name": "images", "route": "lane-vision", "images": True},
        {"name": "structured", "route": "lane-json", "response_format": True},
        {"name": "tag", "route": "lane-tagged", "tags": ["batch"]},
        {"name": "workflow", "route": "lane-workflow", "workflows": ["procurement"]},
        {"name": "team", "route": "lane-team", "teams": ["Legal"]},
        {"name": "key", "route": "lane-key", "keys": ["reporting bot"]},
        {"name": "classified", "route": "lane-secret", "data_classes": ["pii"]},
        {"name": "regex", "route": "lane-legal", "pattern": r"(?i)\bNDA\b", "models": ["auto"]},
    ]
    policy(demo.org, demo.owner, rules=rules, settings={"default_route": "lane-default"})
    return deployments, other


@pytest.mark.parametrize(
    ("lane", "kwargs"),
    [
        ("legal", {"messages": [{"role": "user", "content": "Check the Indemnity clause"}]}),
        ("long", {"messages": [{"role": "user", "content": "word " * 2000}]}),
        ("tools", {"tools": TOOLS}),
        (
            "vision",
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "what is this"},
                            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                        ],
                    }
                ]
            },
        ),
        (
            "json",
            {"response_format": {"type": "json_object"}, "messages": [{"role": "user", "content": "json please"}]},
        ),
        ("tagged", {"headers": {"x-gatehouse-tags": "batch"}}),
        ("workflow", {"headers": {"x-gatehouse-workflow": "procurement"}}),
        ("secret", {"messages": [{"role": "user", "content": "SSN 123-45-6789"}]}),
        ("legal", {"model": "auto", "messages": [{"role": "user", "content": "Draft an NDA"}]}),
    ],
)
def test_first_matching_rule_names_the_route(demo, lanes, lane, kwargs):
    model = kwargs.pop("model", "gpt-4o-mini")
    response = chat(demo, model, **kwargs)
    assert response.status_code == 200, response.text
    assert response.headers["x-gatehouse-deployment"] == f"lane-{lane}@a"
    record = usage_wait(response.headers["x-request-id"])
    assert record.model_requested == model and record.model_used == f"lane-{lane}"
    assert record.metadata["routing"]["rule"]


def test_rules_on_key_and_team(demo, lanes):
    _, legal_team = lanes
    bot = api_key_create(organization=demo.org, name="reporting bot")
    member = api_key_create(organization=demo.org, name="legal app", team=legal_team)
    gateway_sync()
    response = chat(demo, "gpt-4o-mini", headers={"authorization": f"Bearer {bot.secret}"})
    assert response.headers["x-gatehouse-deployment"] == "lane-key@a"
    response = chat(demo, "gpt-4o-mini", headers={"authorization": f"Bearer {member.secret}"})
    assert response.headers["x-gatehouse-deployment"] == "lane-team@a"


def test_no_rule_keeps_the_model_and_the_default_route_catches_unknown_names(demo, lanes):
    response = chat(demo, "gpt-4o-mini")
    assert response.headers["x-gatehouse-model"] == "gpt-4o-mini"
    response = chat(demo, "auto")
    assert response.headers["x-gatehouse-deployment"] == "lane-default@a"
    assert response.headers["x-gatehouse-route"] == "lane-default"


def test_first_match_wins(demo, lanes):
    response = chat(demo, "gpt-4o-mini", tools=TOOLS, messages=[{"role": "user", "content": "liability question"}])
    assert response.headers["x-gatehouse-deployment"] == "lane-legal@a"

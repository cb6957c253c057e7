"""Config-as-code: routes, rules, matrix and breaker settings export to YAML and
apply back exactly."""

from __future__ import annotations

import yaml

from gatehouse.config import config_apply, config_export, config_parse
from routing import services
from routing.selectors import policy_live


def test_routing_sections_round_trip_exactly(org):
    services.policy_propose(
        organization=org.org,
        actor=org.owner,
        summary="setup",
        document={
            "settings": {"default_route": "fast"},
            "routes": [
                {
                    "name": "fast",
                    "strategy": "least_latency",
                    "targets": [{"model": "rt-model"}],
                    "fallbacks": [{"when": "context_length", "route": "rt-big"}],
                },
                {
                    "name": "cheap-first",
                    "kind": "cascade",
                    "layers": [{"model": "rt-model", "validators": {"min_length": 5}}, {"model": "rt-big"}],
                },
            ],
            "rules": [{"name": "legal", "route": "fast", "keywords": ["NDA"], "tools": False}],
            "matrix": {"rt-model@sim": ["public", "internal"]},
        },
    )
    services.deployment_policy_set(deployment=org.deployment, failure_threshold=4, failure_window=30, cooldown=15)
    text = config_export(sections=["routing", "deployment_policies"])
    document = yaml.safe_load(text)
    assert document["routing"][0]["name"] == org.org.slug
    assert document["deployment_policies"] == [
        {"name": "rt-model@sim", "failure_threshold": 4, "failure_window": 30.0, "cooldown": 15.0}
    ]
    plan = config_apply(config_parse(text, source="t"), source="t")
    assert plan.count("unchanged") == 2 and not plan.has_changes
    assert config_export(sections=["routing", "deployment_policies"]) == text

    # An edited file applies as a new live version; exporting again gives that file back.
    fast = next(r for r in document["routing"][0]["routes"] if r["name"] == "fast")
    fast["strategy"] = "round_robin"
    edited = yaml.safe_dump(document, sort_keys=False)
    plan = config_apply(config_parse(edited, source="t"), source="t")
    assert plan.count("update") == 1
    live = policy_live(organization=org.org)
    assert live.author_name == "config file" and live.document["routes"][1]["strategy"] == "round_robin"
    again = yaml.safe_load(config_export(sections=["routing", "deployment_policies"]))
    assert again == yaml.safe_load(edited)


def test_config_errors_name_the_entry(org):
    import pytest

    from gatehouse.config import ConfigError

    bad = {"routing": [{"name": org.org.slug, "routes": [{"name": "x", "strategy": "nope", "targets": []}]}]}
    with pytest.raises(ConfigError) as excinfo:
        config_apply(bad, source="f.yaml")
    assert "routing[0].routes[0].strategy" in str(excinfo.value)


def test_routing_state_command_shows_and_resets(org):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("routing_state", stdout=out)
    assert "rt-model@sim" in out.getvalue() and "healthy" in out.getvalue()
    out = StringIO()
    call_command("routing_state", "--reset", stdout=out)
    assert "reset" in out.getvalue()

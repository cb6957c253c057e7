"""Reasoning tokens: parsed from each provider's usage (plain and streamed), reported by the
simulator for reasoning models, recorded on usage records, summed in rollups exactly, and
shown in unit economics."""

from __future__ import annotations

import httpx
import pytest
from django.core.management import call_command

from budgets.models import UsageHourly
from budgets.rollups import rollup_check, rollup_totals
from providers.adapters import anthropic as anthropic_adapter
from providers.adapters import gemini as gemini_adapter
from providers.adapters._http import openai_usage
from tests.conftest import FAST, usage_wait


def test_usage_parsers_read_reasoning_tokens_where_providers_report_them():
    openai = openai_usage(
        {"prompt_tokens": 10, "completion_tokens": 50, "completion_tokens_details": {"reasoning_tokens": 32}}
    )
    assert (openai.completion_tokens, openai.reasoning_tokens) == (50, 32)
    assert openai_usage({"prompt_tokens": 1, "completion_tokens": 2}).reasoning_tokens == 0
    assert openai_usage({"completion_tokens": 2, "completion_tokens_details": None}).reasoning_tokens == 0
    gemini = gemini_adapter.usage_of({"promptTokenCount": 5, "candidatesTokenCount": 7, "thoughtsTokenCount": 40})
    assert (gemini.completion_tokens, gemini.reasoning_tokens) == (47, 40)  # thoughts are billed as output
    anthropic = anthropic_adapter.usage_of({"input_tokens": 5, "output_tokens": 9})
    assert anthropic.reasoning_tokens == 0  # Anthropic counts thinking inside output_tokens, not apart


def chat(demo, model: str, *, stream: bool, **extra) -> tuple[httpx.Response, dict | None]:
    body = {"model": model, "messages": [{"role": "user", "content": "Plan a data migration"}], **extra}
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    response = httpx.post(
        f"{demo.base_url}/chat/completions",
        headers={"Authorization": f"Bearer {demo.secret}", **FAST},
        json=body,
        timeout=20,
    )
    assert response.status_code == 200, response.text
    if not stream:
        return response, response.json()["usage"]
    usage = None
    for line in response.text.splitlines():
        if line.startswith("data: {") and '"usage":{' in line.replace(" ", ""):
            usage = httpx.Response(200, content=line[6:]).json()["usage"] or usage
    return response, usage


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_reasoning_tokens_reach_the_record_and_the_rollups(demo, stream):
    """gpt-5.5 (OpenAI wire, through Azure) and gemini-3.1-pro (Gemini wire) think; gpt-4o-mini does not."""
    seen = {}
    for model in ("gpt-5.5", "gemini-3.1-pro", "gpt-4o-mini"):
        response, usage = chat(demo, model, stream=stream)
        record = usage_wait(response.headers["x-request-id"])
        reasoning = record.metadata.get("reasoning_tokens", 0)
        seen[model] = reasoning
        details = (usage or {}).get("completion_tokens_details") or {}
        assert details.get("reasoning_tokens", 0) == reasoning  # the client sees what is recorded
        assert record.output_tokens == usage["completion_tokens"] > reasoning
    assert seen["gpt-5.5"] > 0 and seen["gemini-3.1-pro"] > 0
    assert seen["gpt-4o-mini"] == 0

    # Asking a reasoning model not to think records none.
    response, usage = chat(demo, "gpt-5.5", stream=stream, reasoning_effort="minimal")
    assert usage_wait(response.headers["x-request-id"]).metadata.get("reasoning_tokens", 0) == 0

    call_command("rollup_usage", "--rebuild")
    rolled = sum(UsageHourly.objects.filter(organization_id=demo.org.id).values_list("reasoning_tokens", flat=True))
    assert rolled == seen["gpt-5.5"] + seen["gemini-3.1-pro"]
    totals = rollup_totals(organization_id=demo.org.id)
    assert totals["raw_reasoning_tokens"] == totals["rollup_reasoning_tokens"] == rolled
    assert rollup_check(organization_id=demo.org.id) == []


@pytest.mark.django_db(transaction=True)
def test_unit_economics_shows_reasoning_tokens_per_model(demo, client):
    response, usage = chat(demo, "gpt-5.5", stream=False)
    reasoning = usage["completion_tokens_details"]["reasoning_tokens"]
    usage_wait(response.headers["x-request-id"])
    call_command("rollup_usage", "--rebuild")
    client.force_login(demo.owner)
    page = client.get("/finops/unit-economics/", {"period": "7d", "format": "csv", "table": "model"})
    assert page.status_code == 200
    lines = page.content.decode().splitlines()
    header = lines[0].split(",")
    assert "Reasoning tokens" in header
    row = next(line.split(",") for line in lines[1:] if line.startswith("gpt-5.5"))
    assert int(row[header.index("Reasoning tokens")]) == reasoning
    html = client.get("/finops/unit-economics/", {"period": "7d"}).content.decode()
    assert 'data-testid="stat-reasoning"' in html and "Reasoning share of output" in html

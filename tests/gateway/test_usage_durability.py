"""Through the running gateway: a request whose values no column can hold (a
201-character model name, a NUL byte) is answered 404 and recorded, sanitized, and
the records of every request after it are written too."""

from __future__ import annotations

import httpx

from budgets.models import UsageDeadLetter
from tests.conftest import FAST, usage_wait


def chat(demo, model: str) -> httpx.Response:
    return httpx.post(
        demo.base_url + "/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {demo.secret}", **FAST},
        timeout=15,
    )


def test_an_unstorable_model_name_holds_back_no_record(demo):
    long_name = chat(demo, "m" * 201)
    nul = chat(demo, "gpt-4o\x00-mini")
    assert long_name.status_code == 404 and nul.status_code == 404
    after = [chat(demo, "gpt-4o-mini") for _ in range(5)]
    assert all(r.status_code == 200 for r in after)

    for response in after:
        assert usage_wait(response.headers["x-request-id"]).status_code == 200
    long_record = usage_wait(long_name.headers["x-request-id"])
    assert long_record.status_code == 404
    assert long_record.model_requested == "m" * 200 and long_record.sanitized
    nul_record = usage_wait(nul.headers["x-request-id"])
    assert nul_record.model_requested == "gpt-4o-mini" and nul_record.sanitized
    assert not UsageDeadLetter.objects.exists()

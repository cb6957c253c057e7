"""Stage 3 — classify: the request's data class.

The highest-ranked of: the `x-data-classification` header, the key's default
and what the detector finds in the messages (e-mail addresses, phone numbers,
payment cards, national ids, IBANs). The detector runs only when the
organization's policy lets classes change routing (a compliance matrix, a
restricted default, or a rule on classification).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from routing.engine.detect import detect, input_text, message_text
from routing.engine.snapshot import OrgPolicy
from routing.errors import invalid
from routing.pipeline.context import RequestContext

HEADER = "x-data-classification"


def classify(ctx: RequestContext, policy: OrgPolicy, body: Mapping[str, Any], headers: Mapping[str, str]) -> str:
    declared = (headers.get(HEADER) or "").strip().lower()
    if declared and declared not in policy.class_rank:
        known = ", ".join(sorted(policy.class_rank, key=policy.class_rank.__getitem__))
        raise invalid(
            f"Unknown data classification '{declared}' in the {HEADER} header. Known classes: {known}.",
            code="invalid_data_classification",
        )
    found = ""
    if policy.detect_needed and policy.detectors:
        text = message_text(body.get("messages")) if "messages" in body else input_text(body.get("input"))
        kinds = detect(text, [kind for kind, _ in policy.detectors])
        if kinds:
            ctx.detected = tuple(sorted(kinds))
            found = policy.highest(*(cls for kind, cls in policy.detectors if kind in kinds))
    lowest = min(policy.class_rank, key=policy.class_rank.__getitem__)
    ctx.data_class = policy.highest(declared, ctx.key.data_classification, found) or lowest
    return ctx.data_class

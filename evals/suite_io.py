"""Suites as YAML (one document) and JSONL (a header line, then one case a line)."""

from __future__ import annotations

import json
from typing import Any

import yaml

from .models import Suite

HEADER_FIELDS = ("name", "task_class", "version", "description", "judge_model", "models", "schedule", "pinned")


class SuiteFormatError(ValueError):
    """Text that is not a suite; the message says where."""


def _case_out(case) -> dict[str, Any]:
    out: dict[str, Any] = {"name": case.name, "messages": case.messages}
    if case.response_format:
        out["response_format"] = case.response_format
    if case.tools:
        out["tools"] = case.tools
    out["max_tokens"] = case.max_tokens
    out["check"] = {"kind": case.check_kind, **case.spec}
    return out


def suite_document(suite: Suite) -> dict[str, Any]:
    return {
        "name": suite.name,
        "task_class": suite.task_class,
        "version": suite.version,
        "description": suite.description,
        "judge_model": suite.judge_model,
        "models": list(suite.model_names),
        "schedule": suite.schedule,
        "pinned": suite.pinned,
        "cases": [_case_out(case) for case in suite.cases.all()],
    }


def suite_dump(suite: Suite, fmt: str) -> str:
    document = suite_document(suite)
    if fmt == "yaml":
        return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    cases = document.pop("cases")
    lines = [json.dumps({"suite": document}, ensure_ascii=False)]
    lines += [json.dumps(case, ensure_ascii=False) for case in cases]
    return "\n".join(lines) + "\n"


def suite_parse(text: str, fmt: str) -> dict[str, Any]:
    """A suite document ({header fields..., "cases": [...]}) from YAML or JSONL text."""
    if fmt == "yaml":
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise SuiteFormatError(f"Not YAML: {exc}") from None
        if not isinstance(document, dict):
            raise SuiteFormatError("The YAML must be a mapping with 'name' and 'cases'.")
        return document
    if fmt != "jsonl":
        raise SuiteFormatError(f"Unknown format {fmt!r}; use yaml or jsonl.")
    document: dict[str, Any] = {"cases": []}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            raise SuiteFormatError(f"Line {number} is not JSON.") from None
        if not isinstance(item, dict):
            raise SuiteFormatError(f"Line {number} is not a JSON object.")
        if "suite" in item and isinstance(item["suite"], dict):
            document.update({k: v for k, v in item["suite"].items() if k != "cases"})
        else:
            document["cases"].append(item)
    return document

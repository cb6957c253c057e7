"""Checks: does an answer pass a case, and with what score (0..1).

Each check is a pure function of the answer text and the case's `check` spec; a
rubric check is graded by a judge model (the runner calls it through the gateway
and hands the judge's reply to `rubric_grade`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import jsonschema

from .models import CheckKind

ONE = Decimal("1")
ZERO = Decimal("0")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")
_SCORE = re.compile(r"score\s*:\s*(\d+(?:\.\d+)?)", re.I)


class CheckError(ValueError):
    """A check spec that cannot be used (told to the person who wrote it)."""


@dataclass(frozen=True)
class Verdict:
    passed: bool
    score: Decimal
    detail: str = ""


def _norm(text: str) -> str:
    return " ".join(text.strip().strip(".").split()).lower()


def check_validate(kind: str, spec: Any) -> dict[str, Any]:
    """The spec, checked for what its kind needs; CheckError says what is wrong."""
    if kind not in CheckKind.values:
        raise CheckError(f"Unknown check {kind!r}; use one of {', '.join(CheckKind.values)}.")
    if not isinstance(spec, dict):
        raise CheckError('A check is an object (e.g. {"expected": "positive"}).')
    need = {
        CheckKind.EXACT: "expected",
        CheckKind.CONTAINS: "expected",
        CheckKind.REGEX: "pattern",
        CheckKind.JSON_SCHEMA: "schema",
        CheckKind.NUMERIC: "expected",
        CheckKind.RUBRIC: "rubric",
    }[CheckKind(kind)]
    if spec.get(need) in (None, ""):
        raise CheckError(f"A {kind} check needs {need!r}.")
    if kind == CheckKind.REGEX:
        try:
            re.compile(str(spec["pattern"]))
        except re.error as exc:
            raise CheckError(f"The pattern does not compile: {exc}.") from None
    if kind == CheckKind.JSON_SCHEMA:
        try:
            jsonschema.Draft202012Validator.check_schema(spec["schema"])
        except jsonschema.SchemaError as exc:
            raise CheckError(f"The schema is not valid JSON Schema: {exc.message}.") from None
    if kind == CheckKind.NUMERIC:
        try:
            Decimal(str(spec["expected"]))
            Decimal(str(spec.get("tolerance", 0)))
        except InvalidOperation:
            raise CheckError("A numeric check needs a number 'expected' and a number 'tolerance'.") from None
    return spec


def check_answer(kind: str, spec: dict[str, Any], answer: str) -> Verdict:
    """The verdict of a non-rubric check on an answer."""
    if kind == CheckKind.EXACT:
        ok = _norm(answer) == _norm(str(spec["expected"]))
        return Verdict(ok, ONE if ok else ZERO, "" if ok else f"expected {spec['expected']!r}")
    if kind == CheckKind.CONTAINS:
        ok = _norm(str(spec["expected"])) in _norm(answer)
        return Verdict(ok, ONE if ok else ZERO, "" if ok else f"does not contain {spec['expected']!r}")
    if kind == CheckKind.REGEX:
        ok = re.search(str(spec["pattern"]), answer, re.S) is not None
        return Verdict(ok, ONE if ok else ZERO, "" if ok else "no match")
    if kind == CheckKind.JSON_SCHEMA:
        try:
            value = json.loads(answer)
        except ValueError:
            return Verdict(False, ZERO, "not JSON")
        errors = list(jsonschema.Draft202012Validator(spec["schema"]).iter_errors(value))
        if errors:
            return Verdict(False, ZERO, "; ".join(e.message for e in errors[:3]))
        return Verdict(True, ONE)
    if kind == CheckKind.NUMERIC:
        found = _NUMBER.findall(answer)
        if not found:
            return Verdict(False, ZERO, "no number")
        got = Decimal(found[-1].replace(",", ""))
        want = Decimal(str(spec["expected"]))
        ok = abs(got - want) <= Decimal(str(spec.get("tolerance", 0)))
        return Verdict(ok, ONE if ok else ZERO, "" if ok else f"got {got}, expected {want}")
    raise CheckError(f"{kind} is graded by a judge")


def rubric_prompt(spec: dict[str, Any], question: str, answer: str) -> str:
    """What the judge model is asked."""
    reference = spec.get("reference", "")
    return (
        "Grade the answer to the question against the rubric.\n"
        f"Rubric: {spec['rubric']}\n"
        f"Question: {' '.join(question.split())}\n"
        f"Reference: {' '.join(str(reference).split())}\n"
        f"Answer: {' '.join(answer.split())}\n"
        "Reply with SCORE: <0-10> and nothing else."
    )


def rubric_grade(spec: dict[str, Any], judge_reply: str) -> Verdict:
    """The judge's 0..10 grade as 0..1; passes at `pass_score` (default 7)."""
    found = _SCORE.search(judge_reply)
    if not found:
        return Verdict(False, ZERO, "the judge gave no score")
    score = min(Decimal(found.group(1)), Decimal(10)) / Decimal(10)
    threshold = Decimal(str(spec.get("pass_score", 7))) / Decimal(10)
    return Verdict(score >= threshold, score.quantize(Decimal("0.0001")), f"judge: {found.group(0)}")

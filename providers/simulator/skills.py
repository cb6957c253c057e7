"""Task answers for evaluation-like prompts: arithmetic, labelled classification,
field extraction into a JSON schema and rubric grading.

A real model of a higher tier answers such prompts correctly more often; the
simulated one is right with a probability set by its tier, decided by a hash of
(model, prompt) so that the same model answers the same prompt the same way on
every run and evaluation results are reproducible.
"""

from __future__ import annotations

import ast
import hashlib
import operator
import re
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from .knobs import profile_for

ACCURACY = {"frontier": 0.95, "mid": 0.8, "edge": 0.55}

_ARITHMETIC = re.compile(r"(?:compute|calculate|evaluate|what is)\s*:?\s*([-+*/().\d\s]*\d[-+*/().\d\s]*)", re.I)
_LABELS = re.compile(r"one of\s*:\s*([^\n.]+)", re.I)
_SCORE = re.compile(r"reply with score\s*:", re.I)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+|<EMAIL\w*_\d+>")  # a tokenized address too
_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
_AMOUNT = re.compile(r"(?:[$€£]\s?)?(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)")
_CURRENCY = {"$": "USD", "€": "EUR", "£": "GBP"}
_WORD = re.compile(r"[a-z0-9]+")

# Words that lean towards a label, for labelled classification.
_LEXICON = {
    "positive": {"love", "great", "excellent", "perfect", "happy", "amazing", "fast", "recommend", "wonderful"},
    "negative": {"terrible", "broken", "refund", "awful", "slow", "worst", "disappointed", "never", "crashed"},
    "neutral": {"okay", "arrived", "average", "fine", "expected", "ordinary"},
    "billing": {"invoice", "charge", "charged", "refund", "payment", "card", "price"},
    "technical": {"error", "crash", "bug", "install", "login", "timeout", "broken"},
    "account": {"password", "email", "username", "profile", "delete", "account"},
}

_OPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


def accuracy(model: str) -> float:
    return ACCURACY.get(profile_for(model.split("@")[0].lower()).tier, 0.8)


def correct_now(model: str, prompt: str) -> bool:
    """Whether `model` answers `prompt` correctly: fixed per (model, prompt)."""
    digest = hashlib.blake2b(f"{model}\x00{prompt}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < accuracy(model)


def _wrongness(model: str, prompt: str) -> int:
    return 1 + hashlib.blake2b(f"wrong\x00{model}\x00{prompt}".encode(), digest_size=2).digest()[0] % 9


def _evaluate(node: ast.AST) -> Decimal:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return Decimal(str(node.value))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_evaluate(node.operand)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_evaluate(node.left), _evaluate(node.right))
    raise ValueError("not arithmetic")


def _number_text(value: Decimal) -> str:
    value = value.quantize(Decimal("0.0001")).normalize()
    return format(value, "f")


def _arithmetic(text: str, model: str, right: bool) -> str | None:
    match = _ARITHMETIC.search(text)
    if match is None or not re.search(r"\d\s*[-+*/]\s*[\d(]", match.group(1)):
        return None
    try:
        value = _evaluate(ast.parse(match.group(1).strip(), mode="eval"))
    except (ValueError, SyntaxError, ZeroDivisionError, InvalidOperation, RecursionError):
        return None
    if not right:
        value += _wrongness(model, text)
    return _number_text(value)


def _classify(text: str, model: str, right: bool) -> str | None:
    match = _LABELS.search(text)
    if match is None:
        return None
    labels = [label.strip().strip("'\"").lower() for label in re.split(r",|\bor\b|/|\|", match.group(1))]
    labels = [label for label in labels if label]
    if len(labels) < 2:
        return None
    body = text[match.end() :]
    words = set(_WORD.findall(body.lower()))
    scores = [(len(words & (_LEXICON.get(label, set()) | {label})), -i, label) for i, label in enumerate(labels)]
    best = max(scores)
    chosen = best[2] if best[0] > 0 else ("neutral" if "neutral" in labels else labels[0])
    if not right:
        others = [label for label in labels if label != chosen]
        chosen = others[_wrongness(model, text) % len(others)]
    return chosen


def _field(name: str, kind: str, text: str) -> Any:
    key = name.lower()
    if "email" in key:
        found = _EMAIL.search(text)
        return found.group(0) if found else ""
    if "date" in key or key.endswith("_on") or key == "due":
        found = _DATE.search(text)
        return found.group(0) if found else ""
    if "currency" in key:
        for symbol, code in _CURRENCY.items():
            if symbol in text:
                return code
        found = re.search(r"\b(USD|EUR|GBP|JPY|CHF)\b", text)
        return found.group(1) if found else ""
    if kind in ("number", "integer") or any(word in key for word in ("amount", "total", "price", "quantity")):
        cleaned = _EMAIL.sub(" ", _DATE.sub(" ", text))
        found = _AMOUNT.search(cleaned[cleaned.find("$") :] if "$" in cleaned else cleaned)
        if not found:
            return 0
        value = Decimal(found.group(1).replace(",", ""))
        return int(value) if kind == "integer" or value == value.to_integral() else float(value)
    found = re.search(r"\b(?:from|by|to|customer|name)\s*:?\s+([A-Z][a-z]+(?:\s[A-Z][a-z]+)+)", text)
    return found.group(1) if found else ""


def _extract(text: str, schema: dict[str, Any], model: str, right: bool) -> str | None:
    properties = schema.get("properties")
    if not isinstance(properties, dict) or not properties or "extract" not in text.lower():
        return None
    value = {
        name: _field(name, str((spec or {}).get("type", "string")) if isinstance(spec, dict) else "string", text)
        for name, spec in properties.items()
    }
    if not right:
        names = list(value)
        wrong = names[_wrongness(model, text) % len(names)]
        current = value[wrong]
        value[wrong] = current + _wrongness(model, text) if isinstance(current, int | float) else f"{current}x"
    return orjson.dumps(value).decode()


def _grade(text: str, model: str, right: bool) -> str | None:
    """A judge's grade: how much of the reference the answer holds, on 0..10."""
    if not _SCORE.search(text):
        return None
    reference = re.search(r"reference\s*:\s*(.*)", text, re.I)
    answer = re.search(r"answer\s*:\s*(.*)", text, re.I)
    want = set(_WORD.findall(reference.group(1).lower())) if reference else set()
    got = set(_WORD.findall(answer.group(1).lower())) if answer else set()
    score = round(10 * len(want & got) / len(want)) if want else 5
    if not right:
        score = score - 5 if score >= 5 else score + 5
    return f"SCORE: {score}"


def skill_answer(model: str, text: str, json_schema: dict[str, Any] | None) -> str | None:
    """The answer to an evaluation-like prompt, or None for any other prompt."""
    if not text:
        return None
    right = correct_now(model, text)
    if json_schema is not None:
        return _extract(text, json_schema, model, right)
    for skill in (_grade, _classify, _arithmetic):
        found = skill(text, model, right)
        if found is not None:
            return found
    return None

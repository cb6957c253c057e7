"""Parsing the fields of a routing policy document: each parser takes a value and its
place in the document, returns the canonical value (or a default) and adds a problem
naming the place when the value cannot be used."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,199}$")


class _Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(f"{path}: {message}")


def _mapping(value: Any, path: str, problems: _Problems) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        problems.add(path, "expected a mapping")
        return {}
    return value


def _unknown(value: Mapping[str, Any], known: set[str], path: str, problems: _Problems) -> None:
    for key in sorted(set(value) - known, key=str):
        problems.add(f"{path}.{key}", "unknown field")


def _text(value: Any, path: str, problems: _Problems, *, limit: int = 200, default: str = "") -> str:
    if value is None:
        return default
    if not isinstance(value, str):
        problems.add(path, f"{value!r} is not text")
        return default
    if len(value) > limit:
        problems.add(path, f"longer than {limit} characters")
        return default
    return value.strip()


def _int(value: Any, path: str, problems: _Problems, *, low: int, high: int, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        problems.add(path, f"{value!r} is not a whole number")
        return default
    if not low <= value <= high:
        problems.add(path, f"{value} is not between {low} and {high}")
        return default
    return value


def _number(
    value: Any, path: str, problems: _Problems, *, low: float, high: float, default: float | None
) -> float | None:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        problems.add(path, f"{value!r} is not a number")
        return default
    if not low <= value <= high:
        problems.add(path, f"{value} is not between {low:g} and {high:g}")
        return default
    return float(value)


def _optional_int(value: Any, path: str, problems: _Problems, *, low: int, high: int) -> int | None:
    """A whole number, or None (the gateway default) when absent."""
    return None if value is None else _int(value, path, problems, low=low, high=high, default=low)


def _flag(value: Any, path: str, problems: _Problems, *, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        problems.add(path, f"{value!r} is not true or false")
        return default
    return value


def _tristate(value: Any, path: str, problems: _Problems) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    problems.add(path, f"{value!r} is not true, false or null")
    return None


def _texts(value: Any, path: str, problems: _Problems, *, limit: int = 200) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        problems.add(path, "expected a list")
        return []
    out: list[str] = []
    for index, item in enumerate(value):
        text = _text(item, f"{path}[{index}]", problems, limit=limit)
        if text and text not in out:
            out.append(text)
    return out


def _regex(value: Any, path: str, problems: _Problems) -> str:
    text = _text(value, path, problems, limit=1000)
    if text:
        try:
            re.compile(text)
        except re.error as exc:
            problems.add(path, f"not a valid regular expression ({exc})")
            return ""
    return text


def _label(value: Any, path: str, problems: _Problems) -> str:
    """A free-text name (rules): any printable text up to 100 characters."""
    name = _text(value, path, problems, limit=100)
    if not name:
        problems.add(path, "a name is required")
    elif not name.isprintable():
        problems.add(path, "may not hold control characters")
    return name


def _name(value: Any, path: str, problems: _Problems) -> str:
    name = _text(value, path, problems)
    if not name:
        problems.add(path, "a name is required")
    elif not NAME_RE.match(name):
        problems.add(path, f"{name!r} may hold letters, digits and . _ : / @ - only")
    return name


# --------------------------------------------------------------------------- sections

"""What shapes one simulated answer: latency profile, faults, JSON breakage.

Values come from four layers, the later winning: environment defaults, the
`/_control` override for every model (`*`), the override for the request's
model, then the request's own `x-sim-*` headers. Requests without overrides
share one immutable default object, so the common path allocates nothing.
"""

from __future__ import annotations

import logging
import random
import re
from dataclasses import dataclass, replace
from typing import Any

logger = logging.getLogger(__name__)

FAULTS = frozenset(
    {
        "400",
        "401",
        "403",
        "404",
        "429",
        "500",
        "502",
        "503",
        "529",
        "timeout",
        "slow_first_token",
        "stall",
        "malformed",
        "disconnect",
        "midstream",
        "content_filter",
        "context_length",
    }
)

HEADER_LATENCY = b"x-sim-latency-scale"
HEADER_FAULT = b"x-sim-fault"
HEADER_FAULT_RATE = b"x-sim-fault-rate"
HEADER_INVALID_JSON = b"x-sim-invalid-json-rate"
HEADER_OUTPUT_TOKENS = b"x-sim-output-tokens"
HEADER_MODEL_VERSION = b"x-sim-model-version"
SIM_HEADERS = (
    HEADER_LATENCY,
    HEADER_FAULT,
    HEADER_FAULT_RATE,
    HEADER_INVALID_JSON,
    HEADER_OUTPUT_TOKENS,
    HEADER_MODEL_VERSION,
)
_VERSION = re.compile(r"^[A-Za-z0-9._:/@-]{1,200}$")


class KnobError(ValueError):
    """A malformed `x-sim-*` header or control value (answered with a 400)."""


@dataclass(frozen=True, slots=True)
class Knobs:
    latency_scale: float = 1.0
    fault: str | None = None
    fault_rate: float = 1.0
    invalid_json_rate: float = 0.0
    output_tokens: int | None = None  # forces the natural answer length
    model_version: str | None = None  # the version reported instead of the default (drift tests)

    def fault_now(self) -> str | None:
        """The fault to inject on this request, after rolling `fault_rate`."""
        if self.fault is None:
            return None
        if self.fault_rate >= 1.0 or random.random() < self.fault_rate:
            return self.fault
        return None

    def json_breaks_now(self) -> bool:
        return self.invalid_json_rate > 0.0 and random.random() < self.invalid_json_rate


@dataclass(frozen=True, slots=True)
class Profile:
    """Timing of one class of model; delays are drawn from the ranges per request."""

    tier: str
    ttft: tuple[float, float]  # seconds to the first token
    rate: tuple[float, float]  # tokens per second afterwards
    context_window: int = 128_000

    def draw(self) -> tuple[float, float]:
        return random.uniform(*self.ttft), random.uniform(*self.rate)


FRONTIER = Profile("frontier", (0.6, 0.9), (40.0, 60.0))
MID = Profile("mid", (0.25, 0.35), (70.0, 90.0))
EDGE = Profile("edge", (0.10, 0.15), (150.0, 250.0))

# First match wins, so the specific small variants come before their families.
_PROFILE_PATTERNS: tuple[tuple[re.Pattern[str], Profile], ...] = (
    (
        re.compile(
            r"flash-lite|nano|haiku|llama|qwen|gemma|phi-?\d|mistral-small|ministral|"
            r"gpt-4o-mini|gpt-4\.1-mini|gpt-3\.5|edge|tiny|[^a-z]\d{1,2}b\b"
        ),
        EDGE,
    ),
    (re.compile(r"sonnet|gpt-5(\.\d+)?-mini|o\d-mini|flash|gpt-4o|gpt-4\.1|mistral|command"), MID),
    (re.compile(r"opus|gpt-5|gpt-4\.5|\bo[13]\b|o[13]-|-pro\b|pro-|ultra|frontier"), FRONTIER),
)

_CONTEXT_WINDOWS: tuple[tuple[str, int], ...] = (
    ("claude", 200_000),
    ("gemini", 1_048_576),
    ("gpt-5", 400_000),
    ("gpt-4.1", 1_047_576),
)

_profile_cache: dict[str, Profile] = {}


def profile_for(model: str) -> Profile:
    """The timing profile for a model name (unknown names behave as mid-tier)."""
    found = _profile_cache.get(model)
    if found is not None:
        return found
    name = model.lower()
    found = MID
    for pattern, profile in _PROFILE_PATTERNS:
        if pattern.search(name):
            found = profile
            break
    for prefix, window in _CONTEXT_WINDOWS:
        if prefix in name:
            found = replace(found, context_window=window)
            break
    if len(_profile_cache) > 4096:
        _profile_cache.clear()
    _profile_cache[model] = found
    return found


def _rate(value: Any, name: str) -> float:
    try:
        rate = float(value)
    except (TypeError, ValueError):
        raise KnobError(f"{name} must be a number between 0 and 1") from None
    if not 0.0 <= rate <= 1.0:
        raise KnobError(f"{name} must be between 0 and 1")
    return rate


def _scale(value: Any, name: str) -> float:
    try:
        scale = float(value)
    except (TypeError, ValueError):
        raise KnobError(f"{name} must be a number >= 0") from None
    if scale < 0.0 or scale != scale:
        raise KnobError(f"{name} must be a number >= 0")
    return scale


def _fault(value: Any, name: str) -> str | None:
    if value in (None, "", "none"):
        return None
    fault = str(value).strip().lower()
    if fault not in FAULTS:
        raise KnobError(f"{name} must be one of {', '.join(sorted(FAULTS))}")
    return fault


def _tokens(value: Any, name: str) -> int:
    try:
        tokens = int(value)
    except (TypeError, ValueError):
        raise KnobError(f"{name} must be a positive integer") from None
    if tokens < 1:
        raise KnobError(f"{name} must be a positive integer")
    return tokens


def _version(value: Any, name: str) -> str:
    text = str(value).strip()
    if not _VERSION.match(text):
        raise KnobError(f"{name} must be a model version such as gpt-4o-2024-08-06")
    return text


_PARSERS = {
    "latency_scale": _scale,
    "fault": _fault,
    "fault_rate": _rate,
    "invalid_json_rate": _rate,
    "output_tokens": _tokens,
    "model_version": _version,
}


def knobs_from_env() -> Knobs:
    """Defaults from the GATEHOUSE_SIM_* variables, as settings read them (malformed values fail loudly)."""
    from django.conf import settings

    values = settings.GATEHOUSE["SIMULATOR_DEFAULTS"]
    return Knobs(
        latency_scale=_scale(values["latency_scale"], "GATEHOUSE_SIM_LATENCY_SCALE"),
        fault=_fault(values["fault"] or None, "GATEHOUSE_SIM_FAULT"),
        fault_rate=_rate(values["fault_rate"], "GATEHOUSE_SIM_FAULT_RATE"),
        invalid_json_rate=_rate(values["invalid_json_rate"], "GATEHOUSE_SIM_INVALID_JSON_RATE"),
    )


class KnobRegistry:
    """Environment defaults plus the per-model overrides set through `/_control`."""

    def __init__(self) -> None:
        try:
            self.defaults = knobs_from_env()
        except KnobError as exc:
            # Importing must not fail over a test knob; standalone startup re-reads and refuses.
            logger.warning("ignoring simulator environment: %s", exc)
            self.defaults = Knobs()
        self.overrides: dict[str, dict[str, Any]] = {}

    def reload_env(self) -> None:
        self.defaults = knobs_from_env()

    def set_override(self, model: str, values: dict[str, Any]) -> dict[str, Any]:
        """Merge validated values into a model's override; a null value removes that knob."""
        current = dict(self.overrides.get(model, {}))
        for key, value in values.items():
            if key not in _PARSERS:
                raise KnobError(f"unknown control field {key!r}")
            if value is None:
                current.pop(key, None)
            else:
                current[key] = _PARSERS[key](value, key)
        if current:
            self.overrides[model] = current
        else:
            self.overrides.pop(model, None)
        return current

    def clear(self, model: str | None = None) -> None:
        if model is None:
            self.overrides.clear()
        else:
            self.overrides.pop(model, None)

    def resolve(self, model: str, headers: dict[bytes, bytes]) -> Knobs:
        """The knobs for one request; raises KnobError for a malformed header."""
        knobs = self.defaults
        if self.overrides:
            merged: dict[str, Any] = {}
            merged.update(self.overrides.get("*", ()))
            merged.update(self.overrides.get(model, ()))
            if merged:
                if "fault" in merged and "fault_rate" not in merged:
                    merged["fault_rate"] = 1.0
                knobs = replace(knobs, **merged)
        if not any(name in headers for name in SIM_HEADERS):
            return knobs
        changes: dict[str, Any] = {}
        value = headers.get(HEADER_LATENCY)
        if value is not None:
            changes["latency_scale"] = _scale(value.decode("latin-1"), "x-sim-latency-scale")
        value = headers.get(HEADER_FAULT)
        if value is not None:
            changes["fault"] = _fault(value.decode("latin-1"), "x-sim-fault")
            changes["fault_rate"] = 1.0
        value = headers.get(HEADER_FAULT_RATE)
        if value is not None:
            changes["fault_rate"] = _rate(value.decode("latin-1"), "x-sim-fault-rate")
        value = headers.get(HEADER_INVALID_JSON)
        if value is not None:
            changes["invalid_json_rate"] = _rate(value.decode("latin-1"), "x-sim-invalid-json-rate")
        value = headers.get(HEADER_OUTPUT_TOKENS)
        if value is not None:
            changes["output_tokens"] = _tokens(value.decode("latin-1"), "x-sim-output-tokens")
        value = headers.get(HEADER_MODEL_VERSION)
        if value is not None:
            changes["model_version"] = _version(value.decode("latin-1"), "x-sim-model-version")
        return replace(knobs, **changes)

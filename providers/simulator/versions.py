"""The model version each simulated provider reports, as the real ones do.

OpenAI answers a request for an alias (`gpt-4o`) with the dated snapshot that served
it (`gpt-4o-2024-08-06`) and a `system_fingerprint` of the serving configuration;
Anthropic names the dated model (`claude-sonnet-4-6-20260115`); Gemini reports
`modelVersion` (`gemini-3.1-pro-001`). A name that already carries a version is
reported as sent. Azure names the deployment, as sent. The `model_version` knob
(`/_control` or `x-sim-model-version`) replaces the version, which is how drift is
tested: the same alias suddenly answers from another version.
"""

from __future__ import annotations

import hashlib
import re

_VERSIONED = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8}|\d{3})$")
SNAPSHOT = {"openai": "-2026-01-15", "anthropic": "-20260115", "gemini": "-001"}


def reported_version(model: str, dialect: str, override: str | None = None) -> str:
    if override:
        return override
    suffix = SNAPSHOT.get(dialect)
    if suffix is None or _VERSIONED.search(model):
        return model
    return model + suffix


def fingerprint_of(version: str) -> str:
    """A stable `fp_…` per version, so a new version also shows a new fingerprint."""
    return "fp_" + hashlib.sha256(version.encode()).hexdigest()[:10]

"""Before a cascade escalates, a cheaper model summarizes the older turns.

The system prompt(s) and everything from the last user message on go up
verbatim; the turns in between (minus the `keep_turns` most recent) become one
summary message. The summary call is billed like any layer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

INSTRUCTION = (
    "You compress conversations. Summarize the conversation below for another assistant who will continue it: "
    "keep every fact, decision, number, name and open question; drop pleasantries. Answer with the summary only."
)
SUMMARY_PREFIX = "Summary of the earlier conversation:\n"


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, Mapping) and isinstance(p.get("text"), str))
    return ""


def conversation_split(messages: list[dict[str, Any]], *, keep_turns: int) -> tuple[list, list, list]:
    """(system messages, older turns to compress, turns kept verbatim)."""
    system = [m for m in messages if m.get("role") in ("system", "developer")]
    rest = [m for m in messages if m.get("role") not in ("system", "developer")]
    last_user = max((i for i, m in enumerate(rest) if m.get("role") == "user"), default=len(rest))
    older, kept = rest[:last_user], rest[last_user:]
    if keep_turns and older:
        older, kept = older[:-keep_turns], older[-keep_turns:] + kept
    # A tool result must stay with the assistant message that called the tool.
    while older and kept and kept[0].get("role") == "tool":
        kept.insert(0, older.pop())
    return system, older, kept


def summary_request(older: list[dict[str, Any]], *, model: str) -> dict[str, Any]:
    transcript = "\n".join(f"{m.get('role', 'user')}: {_text(m.get('content'))}" for m in older)
    return {
        "model": model,
        "messages": [{"role": "system", "content": INSTRUCTION}, {"role": "user", "content": transcript}],
        "max_tokens": 512,
    }


def compressed_messages(system: list, summary: str, kept: list) -> list[dict[str, Any]]:
    return [*system, {"role": "system", "content": SUMMARY_PREFIX + summary}, *kept]

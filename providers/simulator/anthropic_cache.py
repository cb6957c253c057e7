"""The simulated Anthropic prompt cache: breakpoints, TTLs and the cached prefix of a request."""

from __future__ import annotations

from typing import Any

import orjson

from providers.tokens import MESSAGE_OVERHEAD, count_tokens

MAX_BREAKPOINTS = 4


def _cache_control(block: Any, where: str) -> str | None:
    from providers.simulator.anthropic_api import _invalid  # the dialect's own helpers

    """The TTL of a block's cache breakpoint ("5m" or "1h"), None when it has none."""
    if not isinstance(block, dict) or block.get("cache_control") is None:
        return None
    control = block["cache_control"]
    if not isinstance(control, dict) or control.get("type") != "ephemeral":
        raise _invalid(f"{where}.cache_control.type: Input should be 'ephemeral'")
    ttl = control.get("ttl", "5m")
    if ttl not in ("5m", "1h"):
        raise _invalid(f"{where}.cache_control.ephemeral.ttl: Input should be '5m' or '1h'")
    return ttl


def _cache_prefix(data: dict[str, Any], messages: list[Any], per_message: list[int]) -> tuple[bytes | None, int, int]:
    from providers.simulator.anthropic_api import _block_tokens, _invalid  # the dialect's own helpers

    """The prompt up to its last cache breakpoint, as Anthropic caches it: tools, then
    system, then messages. Returns (cache key, prefix tokens, of which before the last
    1-hour breakpoint)."""
    tools = data.get("tools") or []
    system = data.get("system")
    system_blocks = system if isinstance(system, list) else []
    marks: list[tuple[bytes, int, str]] = []
    total = 0
    for k, tool in enumerate(tools):
        total += count_tokens(orjson.dumps(tool).decode())
        ttl = _cache_control(tool, f"tools.{k}")
        if ttl:
            marks.append((orjson.dumps([tools[: k + 1]]), total, ttl))
    if isinstance(system, str):
        total += count_tokens(system)
    for j, block in enumerate(system_blocks):
        total += _block_tokens(block)
        ttl = _cache_control(block, f"system.{j}")
        if ttl:
            marks.append((orjson.dumps([tools, system_blocks[: j + 1]]), total, ttl))
    for i, message in enumerate(messages):
        content = message["content"]
        if not isinstance(content, list):
            total += per_message[i]
            continue
        running = total + MESSAGE_OVERHEAD
        for j, block in enumerate(content):
            running += _block_tokens(block)
            ttl = _cache_control(block, f"messages.{i}.content.{j}")
            if ttl:
                marks.append((orjson.dumps([tools, system, messages[:i], content[: j + 1]]), running, ttl))
        total += per_message[i]
    if not marks:
        return None, 0, 0
    if len(marks) > MAX_BREAKPOINTS:
        raise _invalid(f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. Found {len(marks)}.")
    key, prefix_tokens, _ = marks[-1]
    one_hour = max((tokens for _, tokens, ttl in marks if ttl == "1h"), default=0)
    return key, prefix_tokens, one_hour

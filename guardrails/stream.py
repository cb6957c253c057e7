"""Stream restore and output rules for streamed chat completion chunks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from guardrails.body import assign
from guardrails.output import OutputChecker
from guardrails.results import Inbound, Refusal, Verdict

LOOK_BEHIND = 256


class _Channel:
    """One stream of text (a choice's content, or one tool call's arguments).

    `window` is the end of the text let out so far; `out` is how long that text is,
    and `hot` where the last text that held a detector's trigger ended (both counted
    over the text let out): while the window reaches back past `hot`, it may hold one.
    """

    __slots__ = ("held", "window", "json_string", "out", "hot")

    def __init__(self, json_string: bool) -> None:
        self.held = ""
        self.window = ""
        self.json_string = json_string
        self.out = 0
        self.hot = -1


class StreamGuard:
    """Restores placeholders in streamed chunks and applies output rules as text flows.

    A placeholder split across chunks is held back until complete, so no fragment
    reaches the client; output rules see the text with a look-behind window.
    """

    def __init__(self, inbound: Inbound) -> None:
        self.inbound = inbound
        self.vault = inbound.vault
        self.checker = OutputChecker(inbound)
        self.refusal: Refusal | None = None
        self._channels: dict[tuple[int, int], _Channel] = {}
        self._template: dict[str, Any] | None = None
        self.restoring = bool(self.vault)
        self.passthrough = not self.restoring and not self.checker.active  # nothing to restore, no output rule
        # With only the detector's output rules (no deny rule), text in which the detector's
        # prefilters find nothing can skip it (see `_push`).
        policy = inbound.policy
        self.gate = policy.output_detector if self.checker.active and not policy.output_deny else None

    @property
    def verdict(self) -> Verdict:
        return self.checker.verdict()

    def error_event(self) -> dict[str, Any]:
        return self.refusal.body() if self.refusal else {}

    def feed(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        if self.refusal is not None:
            return []
        if self.passthrough:
            return [chunk]
        choices = chunk.get("choices")
        if type(choices) is list and len(choices) == 1:
            # The common chunk: one choice whose delta holds text and nothing else to look at.
            choice = choices[0]
            delta = choice.get("delta") if type(choice) is dict else None
            if type(delta) is dict and "tool_calls" not in delta and choice.get("finish_reason") is None:
                content = delta.get("content")
                if type(content) is str:
                    self._template = chunk
                    text = self._push((choice.get("index", 0), -1), content, False, json_string=False)
                    if self.refusal is not None:
                        return []
                    if text == content:
                        return [chunk]
                    return [{**chunk, "choices": [{**choice, "delta": {**delta, "content": text}}]}]
        if not isinstance(choices, list) or not choices:
            return [chunk]
        self._template = chunk
        out = chunk
        copied: set[int] = set()
        for index, choice in enumerate(choices):
            if not isinstance(choice, Mapping):
                continue
            delta = choice.get("delta")
            if not isinstance(delta, Mapping):
                continue
            number = choice.get("index", index)
            final = choice.get("finish_reason") is not None
            content = delta.get("content")
            if isinstance(content, str) or (final and (number, -1) in self._channels):
                text = self._push((number, -1), content or "", final, json_string=False)
                if self.refusal is not None:
                    return []
                if text != content:
                    if out is chunk:
                        out = dict(chunk)
                        copied.add(id(out))
                    assign(out, ("choices", index, "delta", "content"), text, copied)
            calls = delta.get("tool_calls")
            if isinstance(calls, list):
                for call_index, call in enumerate(calls):
                    function = call.get("function") if isinstance(call, Mapping) else None
                    arguments = function.get("arguments") if isinstance(function, Mapping) else None
                    if not isinstance(arguments, str):
                        continue
                    key = (number, 1000 + int(call.get("index", call_index)))
                    text = self._push(key, arguments, False, json_string=True)
                    if self.refusal is not None:
                        return []
                    if text != arguments:
                        if out is chunk:
                            out = dict(chunk)
                            copied.add(id(out))
                        assign(
                            out,
                            ("choices", index, "delta", "tool_calls", call_index, "function", "arguments"),
                            text,
                            copied,
                        )
            if final:
                flushed = self._flush_calls(number)
                if flushed:
                    if out is chunk:
                        out = dict(chunk)
                        copied.add(id(out))
                    calls_out = [
                        {"index": call_index - 1000, "function": {"arguments": text}} for call_index, text in flushed
                    ]
                    existing = list(delta.get("tool_calls") or [])
                    assign(out, ("choices", index, "delta", "tool_calls"), existing + calls_out, copied)
        return [out]

    def _push(self, key: tuple[int, int], text: str, final: bool, *, json_string: bool) -> str:
        channel = self._channels.get(key)
        if channel is None:
            channel = self._channels[key] = _Channel(json_string)
        buffer = channel.held + text if channel.held else text
        cut = len(buffer) if final or not self.restoring else self.vault.hold_from(buffer)
        emit, channel.held = buffer[:cut], buffer[cut:]
        if not emit:
            return ""
        if self.restoring:
            emit = self.vault.restore(emit, json_string=json_string)
        if self.checker.active:
            window = channel.window
            joined = window + emit
            gate = self.gate
            if gate is not None:
                # Whatever a trigger literal lies in, it is in this region or further back,
                # where `hot` remembers it; with none in the text, the detector finds nothing.
                if gate.triggers(joined[-(len(emit) + gate.TRIGGER_OVERLAP) :]):
                    channel.hot = channel.out + len(emit)
                if channel.hot <= channel.out - len(window):
                    channel.out += len(emit)
                    channel.window = joined[-LOOK_BEHIND:]
                    return emit
            checked = self.checker.check(joined, floor=len(window))
            if self.checker.refusal is not None:
                self.refusal = self.checker.refusal
                return ""
            if checked is not joined:
                emit = checked[len(window) :]
                joined = window + emit
            channel.out += len(emit)
            channel.window = joined[-LOOK_BEHIND:]
        return emit

    def _flush_calls(self, number: int) -> list[tuple[int, str]]:
        flushed = []
        for (choice, call_index), channel in self._channels.items():
            if choice == number and call_index >= 1000 and channel.held:
                text = self._push((choice, call_index), "", True, json_string=True)
                if text:
                    flushed.append((call_index, text))
        return flushed

    def finish(self) -> list[dict[str, Any]]:
        """Whatever is still held back (a stream that ended without a finish reason)."""
        if self.refusal is not None or self._template is None:
            return []
        choices = []
        for (number, call_index), channel in list(self._channels.items()):
            if not channel.held:
                continue
            text = self._push((number, call_index), "", True, json_string=channel.json_string)
            if self.refusal is not None:
                return []
            if not text:
                continue
            if call_index < 0:
                delta: dict[str, Any] = {"content": text}
            else:
                delta = {"tool_calls": [{"index": call_index - 1000, "function": {"arguments": text}}]}
            choices.append({"index": number, "delta": delta, "finish_reason": None})
        if not choices:
            return []
        template = self._template
        chunk = {key: template[key] for key in ("id", "object", "created", "model") if key in template}
        chunk["choices"] = choices
        return [chunk]

"""The sensitive-data detector: right kinds, checksums rule out look-alikes, fast."""

from __future__ import annotations

import time

import pytest

from routing.engine.detect import detect, iban_valid, luhn_valid, message_text

ALL = ("email", "phone", "card", "ssn", "iban")


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        ("mail me at jane.doe@example.com", {"email"}),
        ("call +1 415 555 0132 today", {"phone"}),
        ("call (415) 555-0132", {"phone"}),
        ("ring +44 20 7946 0958", {"phone"}),
        ("card 4111 1111 1111 1111 exp 12/29", {"card"}),
        ("card 4111-1111-1111-1111", {"card"}),
        ("ssn 123-45-6789", {"ssn"}),
        ("iban DE89 3704 0044 0532 0130 00 thanks", {"iban"}),
        ("GB82 WEST 1234 5698 7654 32", {"iban"}),
        ("Über café 555-123-4567", {"phone"}),
        # Look-alikes: failed checksums, impossible SSNs, dates, versions, plain numbers.
        ("order 4111 1111 1111 1112", set()),
        ("ssn 000-45-6789 or 666-12-3456", set()),
        ("iban DE88370400440532013000", set()),
        ("released 2025-11-24, version 3.11.7, 12345 units", set()),
    ],
)
def test_detects_kinds_and_rejects_lookalikes(text, kinds):
    assert detect(text, ALL) == kinds


def test_only_requested_detectors_run():
    assert detect("jane@example.com 123-45-6789", ("ssn",)) == {"ssn"}


def test_checksums():
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert iban_valid("DE89370400440532013000") and not iban_valid("DE89370400440532013001")


def test_message_text_reads_every_part():
    messages = [
        {"role": "system", "content": "sys"},
        {
            "role": "user",
            "content": [{"type": "text", "text": "part"}, {"type": "image_url", "image_url": {"url": "x"}}],
        },
        {"role": "assistant", "content": None, "tool_calls": [{"function": {"name": "f", "arguments": '{"a": 1}'}}]},
    ]
    assert message_text(messages) == 'sys\npart\n{"a": 1}'


def test_detector_is_fast_on_two_kilobytes():
    prose = ("The quarterly report for the procurement team covers 42 vendors and 17 open contracts. " * 24)[:2000]
    numbers = ("Invoice 2024-0042 for PO 77-1234: 12 units at 3.50 each, ship by 2025-01-15. " * 26)[:2000]
    for text, budget_us in ((prose, 60), (numbers, 200)):
        detect(text, ALL)
        runs = 500
        started = time.perf_counter()
        for _ in range(runs):
            detect(text, ALL)
        per_call_us = (time.perf_counter() - started) / runs * 1e6
        # Measured about 7 us (prose) and 23 us (number-heavy) here; generous bounds for noisy machines.
        assert per_call_us < budget_us, per_call_us

"""Recognizers: positives, tricky negatives, normalization, custom entities, linear time."""

from __future__ import annotations

import random
import time

import pytest

from guardrails.detectors import (
    BUILTIN_ENTITIES,
    PII_ENTITIES,
    SECRET_ENTITIES,
    Detector,
    iban_valid,
    luhn_valid,
)
from guardrails.normalize import normalize
from guardrails.patterns import CustomRecognizer, custom_pattern_compile

DETECTOR = Detector()


def found(text: str) -> list[tuple[str, str]]:
    norm = normalize(text)
    return [(span.entity, text[slice(*norm.span(span.start, span.end))]) for span in DETECTOR.find(norm.text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to jane.doe@example.com today", [("EMAIL", "jane.doe@example.com")]),
        ("cc: a.b+tag@mail.example.co.uk", [("EMAIL", "a.b+tag@mail.example.co.uk")]),
        ("call +1 415 555 0132 now", [("PHONE", "+1 415 555 0132")]),
        ("call (415) 555-0132", [("PHONE", "(415) 555-0132")]),
        ("ring +44 20 7946 0958", [("PHONE", "+44 20 7946 0958")]),
        ("E.164: +4915112345678", [("PHONE", "+4915112345678")]),
        ("card 4111 1111 1111 1111 exp 12/29", [("CREDIT_CARD", "4111 1111 1111 1111")]),
        ("amex 3782-822463-10005", [("CREDIT_CARD", "3782-822463-10005")]),
        ("IBAN DE89 3704 0044 0532 0130 00 thanks", [("IBAN", "DE89 3704 0044 0532 0130 00")]),
        ("GB82WEST12345698765432", [("IBAN", "GB82WEST12345698765432")]),
        ("ssn 123-45-6789", [("US_SSN", "123-45-6789")]),
        ("host 10.20.30.40 is down", [("IP_ADDRESS", "10.20.30.40")]),
        ("v6 2001:db8::8a2e:370:7334 too", [("IP_ADDRESS", "2001:db8::8a2e:370:7334")]),
        ("she was born on 1985-03-12 in Lyon", [("DATE_OF_BIRTH", "1985-03-12")]),
        ("Date of birth: 12 March 1985", [("DATE_OF_BIRTH", "12 March 1985")]),
        ("ship to 1600 Pennsylvania Avenue NW", [("ADDRESS", "1600 Pennsylvania Avenue")]),
        ("key AKIAIOSFODNN7EXAMPLE here", [("AWS_ACCESS_KEY", "AKIAIOSFODNN7EXAMPLE")]),
        ("token ghp_" + "a1B2" * 9, [("GITHUB_TOKEN", "ghp_" + "a1B2" * 9)]),
        ("slack xoxb-123456789012-abcdefghijkl", [("SLACK_TOKEN", "xoxb-123456789012-abcdefghijkl")]),
        ("OPENAI sk-proj-abcdefghijklmnopqrstuvwx1234", [("OPENAI_KEY", "sk-proj-abcdefghijklmnopqrstuvwx1234")]),
        (
            "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            [("JWT", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U")],
        ),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
            [("PRIVATE_KEY", "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----")],
        ),
        ("api_key = 'Zx8Kq2Lm9Pw4Rt7Yv3Bn6Hj1'", [("API_KEY", "Zx8Kq2Lm9Pw4Rt7Yv3Bn6Hj1")]),
    ],
)
def test_recognizers_find_their_entity(text, expected):
    assert found(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "order 4111 1111 1111 1112 shipped",  # Luhn fails
        "IBAN DE88370400440532013000",  # mod 97 fails
        "ssn 000-45-6789 or 666-12-3456",  # impossible areas
        "released 2025-11-24, version 3.11.7, 12345 units",
        "meeting on 2025-03-12 in room 4",  # a date without birth context
        "std::vector<int> at 12:30:45",  # C++ and a time are not IPv6
        "version 1.2.3 and 300.1.1.1",  # not an IPv4 address
        "the api key rotation policy is documented in the wiki",  # context word, no secret
        "user@localhost is not an address",  # no top-level domain
        "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----",  # public keys are not secrets
        "sk-short",
        "AKIA is the prefix of AWS access keys",
    ],
)
def test_tricky_negatives_are_not_found(text):
    assert found(text) == []


def test_checksums():
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert iban_valid("DE89370400440532013000") and not iban_valid("DE89370400440532013001")


@pytest.mark.parametrize(
    ("text", "entity", "value"),
    [
        ("mail j\u200dohn@exam\u00adple.com now", "EMAIL", "j\u200dohn@exam\u00adple.com"),
        ("call \uff14\uff11\uff15 555 0132", "PHONE", "\uff14\uff11\uff15 555 0132"),
        ("ssn \u0661\u0662\u0663-45-6789", "US_SSN", "\u0661\u0662\u0663-45-6789"),  # Arabic-Indic digits
        ("card 4111\u200b1111\u200b1111\u200b1111 ok", "CREDIT_CARD", "4111\u200b1111\u200b1111\u200b1111"),
        ("Über café: write jane@example.com", "EMAIL", "jane@example.com"),
    ],
)
def test_normalization_finds_disguised_values_and_maps_back(text, entity, value):
    assert found(text) == [(entity, value)]


def test_normalize_leaves_ascii_alone():
    norm = normalize("plain text")
    assert norm.text == "plain text" and norm.origin is None


FRAGMENTS = [
    "jane.doe@example.com",
    "+1 415 555 0132",
    "4111 1111 1111 1111",
    "DE89 3704 0044 0532 0130 00",
    "123-45-6789",
    "10.20.30.40",
    "2001:db8::8a2e:370:7334",
    "born on 1985-03-12",
    "1600 Pennsylvania Avenue",
    "AKIAIOSFODNN7EXAMPLE",
    "ghp_" + "a1B2" * 9,
    "xoxb-123456789012-abcdefghijkl",
    "sk-proj-abcdefghijklmnopqrstuvwx1234",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
    "API_KEY = 'Zx8Kq2Lm9Pw4Rt7Yv3Bn6Hj1'",
    "PaSsWoRd: Qm4Vx7Zt2Np9Lk3Hs8Df5Gj",
    "the Bearer Zx8Kq2Lm9Pw4Rt7Yv3Bn6Hj1",
    # the same kinds without a digit, so each is found through its own literal in `triggers`
    "host dead:beef::cafe:face up",
    "dead:beef:cafe:face:dead:beef:cafe:face",
    "ghp_" + "aBcD" * 9,
    "AKIAIOSFODNNEXAMPLEX",
    "sk-proj-abcdefghijklmnopqrstuvwxyzab",
    "xoxb-abcdefghijkl-abcdefghijkl",
    "eyJhbGciOiJIUzIiJ.eyJzdWIiOiJhYmMifQ.dozjgNryPJjVmNHlwNXgLnIPlFUPTHsRU",
    "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----",
    "Hello, how can I help?",
    " and ",
    "\u212aey=Zx8Kq2Lm9Pw4Rt7Yv3Bn6Hj1",
    "caf\u00e9 \u0130 ",
]


def test_triggers_holds_wherever_a_recognizer_finds_something():
    """`triggers` lets a stream skip `find` over text it calls empty: wherever `find`
    finds a span, for any set of entities, `triggers` must be true."""
    rng = random.Random(7)
    texts = FRAGMENTS + [" ".join(rng.choices(FRAGMENTS, k=rng.randint(1, 4))) for _ in range(300)]
    texts += [text[start:] for text in texts[:60] for start in (1, 3, 7)]  # fragments cut anywhere
    entity_sets = [(entity,) for entity in BUILTIN_ENTITIES] + [BUILTIN_ENTITIES, PII_ENTITIES, SECRET_ENTITIES]
    found_any = 0
    for entities in entity_sets:
        detector = Detector(entities)
        for text in texts:
            if detector.find(text):
                found_any += 1
                assert detector.triggers(text), (entities, text)
    assert found_any > 500  # the texts hold entities for the detectors that look for them
    prose = "Hello! How can I help you today? Note: the weather is calm, the evening clear."
    assert not Detector().triggers(prose) and not Detector(SECRET_ENTITIES).triggers(prose.upper())
    employee = CustomRecognizer("EMPLOYEE_ID", custom_pattern_compile(r"\bEMP-\d{6}\b"))
    assert Detector((), [employee]).triggers(prose)  # organization patterns need no literal


def test_custom_recognizer_with_checksum_and_context():
    employee = CustomRecognizer("EMPLOYEE_ID", custom_pattern_compile(r"\bEMP-\d{6}\b"), context=("employee",))
    card_like = CustomRecognizer("LOYALTY_CARD", custom_pattern_compile(r"\b\d{16}\b"), checksum="luhn")
    detector = Detector((), [employee, card_like])
    assert [s.entity for s in detector.find("employee number EMP-123456")] == ["EMPLOYEE_ID"]
    assert detector.find("ticket EMP-123456") == []  # no context word before it
    assert [s.entity for s in detector.find("loyalty 4111111111111111")] == ["LOYALTY_CARD"]
    assert detector.find("loyalty 4111111111111112") == []


@pytest.mark.parametrize("pattern", [r"(a+)+$", r"(\w*)*x", r"(a|b)\1", r"(?=x)y", ""])
def test_custom_patterns_that_could_backtrack_are_refused(pattern):
    with pytest.raises(ValueError):
        custom_pattern_compile(pattern)


ADVERSARIAL = {
    "at signs": "a@" * 500_000,
    "dots": "a." * 500_000,
    "digits and spaces": "1 " * 500_000,
    "digits": "1" * 1_000_000,
    "jwt starts": "eyJ" * 333_333,
    "pem starts": "-----BEGIN RSA PRIVATE KEY-----" * 33_000,
    "key prefixes": "sk-" * 333_333,
    "context words": "token " * 166_666,
    "colons": "a:" * 500_000,
    "dotted digits": "1.1.1." * 166_666,
    "birth dates": "born 1985-01-01 " * 62_500,
    "street numbers": "12 Main " * 125_000,
    "base64ish": "token=" + "Ab1+" * 250_000,
    "zero width": "a\u200b" * 500_000,
    "plus digits": "+1 " * 333_333,
    "iban starts": "DE89" * 250_000,
}


@pytest.mark.parametrize("name", list(ADVERSARIAL))
def test_a_megabyte_of_adversarial_input_is_linear(name):
    text = ADVERSARIAL[name]
    started = time.process_time()
    DETECTOR.find(normalize(text).text)
    # Generous bound (measured well under 0.5 s each here); catastrophic backtracking takes minutes.
    assert time.process_time() - started < 3.0


def test_a_slow_organization_pattern_is_cut_off():
    # No nesting, so it passes the shape check, but it is cubic on a run of digits.
    slow = CustomRecognizer("SLOW_THING", custom_pattern_compile(r"\d+\d+\d+a"))
    detector = Detector((), [slow])
    started = time.process_time()
    assert detector.find("1" * 5_000 + "b") == []
    assert time.process_time() - started < 2.0

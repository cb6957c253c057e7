"""Which client request headers a provider lets through to its upstream.

By default none are: a client's headers never reach a provider. An operator can
allow a short list per provider (for example W3C tracing headers). Credentials,
cookies, Gatehouse's own `x-gatehouse-*` headers and hop-by-hop headers can never
be allowed, so the list cannot leak a key or confuse the upstream connection.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from django.core.exceptions import ValidationError

MAX_FORWARD_HEADERS = 20
HEADER_NAME_RE = re.compile(r"^[a-z0-9!#$%&'*+.^_`|~-]{1,100}$")
# Never forwarded, whatever a provider's list says.
FORBIDDEN_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "api-key",
        "cookie",
        "set-cookie",
        "host",
        "content-length",
        "content-type",
        # hop-by-hop (RFC 9110 section 7.6.1)
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
FORBIDDEN_PREFIXES = ("x-gatehouse-",)
# A sensible allowlist to suggest in forms and docs.
TRACING_HEADERS = ("traceparent", "tracestate", "baggage")


def forward_headers_clean(names: Iterable[str] | None) -> list[str]:
    """Validate an allowlist and return it lower-cased, sorted and without duplicates."""
    if names is None:
        return []
    if isinstance(names, str) or not isinstance(names, Iterable):
        raise ValidationError({"forward_headers": "Give a list of header names."})
    cleaned: set[str] = set()
    problems: list[str] = []
    for raw in names:
        if not isinstance(raw, str):
            problems.append(f"{raw!r} is not a header name")
            continue
        name = raw.strip().lower()
        if not name:
            continue
        if not HEADER_NAME_RE.match(name):
            problems.append(f"{raw!r} is not a valid header name")
        elif name in FORBIDDEN_HEADERS or name.startswith(FORBIDDEN_PREFIXES):
            problems.append(f"{name} can never be forwarded")
        else:
            cleaned.add(name)
    if len(cleaned) > MAX_FORWARD_HEADERS:
        problems.append(f"at most {MAX_FORWARD_HEADERS} headers")
    if problems:
        raise ValidationError({"forward_headers": "; ".join(problems) + "."})
    return sorted(cleaned)


def forwardable_headers(allowlist: frozenset[str], client_headers: Mapping[str, str]) -> dict[str, str]:
    """The client headers to send upstream: those on the allowlist, never a forbidden one.

    `allowlist` holds lower-case names (as stored); header names in `client_headers`
    match case-insensitively and are passed on lower-cased. Forbidden names are
    dropped here too, so a list edited outside the validation still leaks nothing.
    """
    if not allowlist:
        return {}
    out: dict[str, str] = {}
    for name, value in client_headers.items():
        lower = name.lower()
        if lower in allowlist and lower not in FORBIDDEN_HEADERS and not lower.startswith(FORBIDDEN_PREFIXES):
            out[lower] = value
    return out

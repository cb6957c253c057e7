"""Usage records as plain values, made storable, encoded, and written in batches.

One record the database refuses must never hold back the others: values are made
storable when the record is built (`usage_storable`), and a batch the database
refuses is split in halves until the refused records are isolated; those are set
aside as dead letters (`UsageDeadLetter`) with an audit event and an e-mail to the
organization's alert recipients, and the rest is written. A database that cannot
be reached is different: nothing is set aside, the caller keeps the batch.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from django.db import (
    DatabaseError,
    InterfaceError,
    OperationalError,
    ProgrammingError,
    connection,
    transaction,
)

from budgets.models import UsageDeadLetter, UsageRecord
from budgets.usage_columns import COLUMNS, UsageColumn
from budgets.usage_rows import usage_rows_insert

logger = logging.getLogger(__name__)

DEAD_LETTER_EVENT = "usage.dead_letter"
# Errors that say the database is unreachable or not ready, not that a record is bad:
# the batch is kept for the next attempt instead of being split.
UNAVAILABLE = (OperationalError, InterfaceError, ProgrammingError)
# What a bad value can raise while Django prepares or the database checks a row.
REFUSED = (DatabaseError, ValueError, TypeError, OverflowError, UnicodeError, InvalidOperation, ArithmeticError)
JSON_DEPTH = 32
MAIL_TIMEOUT = 5.0


@dataclass(slots=True)
class UsageEvent:
    """Everything the usage record needs, in plain values; built by the pipeline."""

    request_id: str
    created_at: datetime
    organization_id: int
    endpoint: str
    status_code: int
    team_id: int | None = None
    user_id: int | None = None
    key_id: int | None = None
    stream: bool = False
    model_requested: str = ""
    model_used: str = ""
    deployment_id: int | None = None
    deployment_name: str = ""
    provider_name: str = ""
    attempts: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    tokens_estimated: bool = False
    input_price: Decimal = Decimal(0)
    output_price: Decimal = Decimal(0)
    cached_input_price: Decimal = Decimal(0)
    input_cost: Decimal = Decimal(0)
    output_cost: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)
    ttft_ms: float | None = None
    latency_ms: float = 0.0
    tokens_per_second: float | None = None
    error_type: str = ""
    error_code: str = ""
    error_message: str = ""
    tags: list[str] = field(default_factory=list)
    workflow: str = ""
    end_user: str = ""
    metadata: dict = field(default_factory=dict)
    sanitized: bool = False
    upstream_version: str = ""
    system_fingerprint: str = ""
    # List (catalog) prices and costs, and the contracted cost charged; None: not recorded.
    list_input_price: Decimal | None = None
    list_output_price: Decimal | None = None
    list_cached_input_price: Decimal | None = None
    list_input_cost: Decimal | None = None
    list_output_cost: Decimal | None = None
    list_cost: Decimal | None = None
    contracted_cost: Decimal | None = None
    deployment_facts: dict = field(default_factory=dict)


FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in fields(UsageEvent))
DECIMAL_FIELDS = frozenset(column.name for column in COLUMNS if column.kind == "decimal")


# --------------------------------------------------------------------------- storable values


_DROP = object()


def text_storable(value: str) -> str:
    """The text without what PostgreSQL refuses: NUL characters and lone surrogates."""
    if "\x00" in value:
        value = value.replace("\x00", "")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = value.encode("utf-8", "ignore").decode("utf-8")
    return value


def _json_storable(value: Any, depth: int = 0) -> tuple[Any, bool]:
    """A JSON value PostgreSQL's jsonb accepts, and whether anything had to change."""
    if value is None or isinstance(value, bool | int):
        return value, False
    if isinstance(value, str):
        clean = text_storable(value)
        return clean, clean is not value
    if isinstance(value, float):
        return (value, False) if math.isfinite(value) else (_DROP, True)
    if depth >= JSON_DEPTH:
        return text_storable(str(value))[:1000], True
    if isinstance(value, dict):
        changed = False
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = key if isinstance(key, str) else str(key)
            clean_name = text_storable(name)
            clean, item_changed = _json_storable(item, depth + 1)
            changed = changed or item_changed or clean_name is not key
            if clean is not _DROP:
                out[clean_name] = clean
        return (out, True) if changed else (value, False)
    if isinstance(value, list | tuple):
        changed = not isinstance(value, list)
        items = []
        for item in value:
            clean, item_changed = _json_storable(item, depth + 1)
            changed = changed or item_changed
            if clean is not _DROP:
                items.append(clean)
        return (items, True) if changed else (value, False)
    if isinstance(value, Decimal):
        return (str(value), True) if value.is_finite() else (_DROP, True)
    if isinstance(value, datetime):
        return value.isoformat(), True
    return text_storable(str(value))[:1000], True


def _storable(column: UsageColumn, value: Any) -> tuple[Any, bool]:
    kind = column.kind
    if value is None:
        if column.null:
            return None, False
        if kind == "str":
            return "", True
        if kind == "json":
            return ({} if column.name in ("metadata", "deployment_facts") else []), True
        return None, False  # nothing sensible to invent: the database refuses it, the record is set aside
    if kind == "str":
        text = value if isinstance(value, str) else str(value)
        clean = text_storable(text)[: column.max_length]
        return clean, clean != value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            try:
                number = int(value)
            except (TypeError, ValueError, OverflowError):
                return value, False
        else:
            number = value
        clamped = min(max(number, column.low), column.high)
        return clamped, clamped != value or type(value) is not int
    if kind == "decimal":
        try:
            number = value if isinstance(value, Decimal) else Decimal(str(value))
        except (InvalidOperation, ValueError):
            return Decimal(0), True
        if not number.is_finite():
            return Decimal(0), True
        clamped = min(max(number, -column.limit), column.limit)
        return clamped, clamped is not value
    if kind == "float":
        if not isinstance(value, int | float) or isinstance(value, bool):
            try:
                value = float(value)
            except (TypeError, ValueError):
                return (None if column.null else 0.0), True
        if math.isfinite(value):
            return value, False
        return (None if column.null else 0.0), True
    if kind == "json":
        clean, changed = _json_storable(value)
        if clean is _DROP:
            return ({} if column.name in ("metadata", "deployment_facts") else []), True
        return clean, changed
    if kind == "datetime":
        if isinstance(value, datetime) and value.tzinfo is None:
            return value.replace(tzinfo=UTC), True
        return value, False
    return value, False


# Per column kind: the common values that are storable as they are (checked once per request).
_PLAIN = {
    "str": lambda c, v: type(v) is str and len(v) <= c.max_length and v.isascii() and "\x00" not in v,
    "int": lambda c, v: type(v) is int and c.low <= v <= c.high,
    "decimal": lambda c, v: type(v) is Decimal and v.is_finite() and -c.limit <= v <= c.limit,
    "float": lambda c, v: type(v) is float and math.isfinite(v),
    "datetime": lambda c, v: type(v) is datetime and v.tzinfo is not None,
    "bool": lambda c, v: type(v) is bool,
    "json": lambda c, v: type(v) in (dict, list) and not v,
}


def usage_storable(event: UsageEvent) -> UsageEvent:
    """Make every value fit its column, in place; `sanitized` says whether anything changed.

    Text is cut to its column's length and loses NUL characters and lone surrogates
    (also in JSON keys and values); integers and decimals are clamped to their
    column's range; non-finite floats are dropped. What cannot be made storable
    (a missing status code, say) is left for the database to refuse.
    """
    changed = False
    for column in COLUMNS:
        value = getattr(event, column.name)
        if (value is None and column.null) or (value is not None and _PLAIN[column.kind](column, value)):
            continue
        clean, differs = _storable(column, value)
        if differs:
            setattr(event, column.name, clean)
            changed = True
    if changed:
        event.sanitized = True
    return event


# --------------------------------------------------------------------------- encoding


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def event_encode(event: UsageEvent) -> dict[str, Any]:
    return {name: getattr(event, name) for name in FIELD_NAMES}


def event_dumps(event: UsageEvent) -> bytes:
    """The record as JSON (decimals as strings, times in ISO 8601)."""
    return orjson.dumps(event, default=_default, option=orjson.OPT_NON_STR_KEYS)  # the fields, in order


def event_decode(data: dict[str, Any]) -> UsageEvent:
    """A record back from `event_dumps` JSON; unknown keys are ignored."""
    values = {name: data[name] for name in FIELD_NAMES if name in data}
    for name in DECIMAL_FIELDS:
        if name in values and values[name] is not None:
            values[name] = Decimal(str(values[name]))
    created = values.get("created_at")
    if isinstance(created, str):
        values["created_at"] = datetime.fromisoformat(created)
    return UsageEvent(**values)


# --------------------------------------------------------------------------- writing


@dataclass(slots=True)
class WriteResult:
    written: int = 0  # records handed to the database (existing request ids are left untouched)
    dead: int = 0  # records set aside as dead letters
    kept: list[UsageEvent] = field(default_factory=list)  # the database is unreachable: write these later
    unavailable: str = ""  # why, when `kept` is not empty


def usage_insert(events: list[UsageEvent]) -> None:
    """One all-or-nothing insert; request ids already stored (or repeated) are skipped.

    PostgreSQL skips them with ON CONFLICT DO NOTHING, which covers unique
    constraints only. SQLite's INSERT OR IGNORE would also swallow NOT NULL and
    CHECK failures (losing the record without a word), so there the known ids are
    looked up first and the insert is a plain one.
    """
    with transaction.atomic():
        if connection.vendor == "sqlite":
            ids = list({event.request_id for event in events})
            existing: set[str] = set()
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                existing.update(UsageRecord.objects.filter(request_id__in=chunk).values_list("request_id", flat=True))
            fresh = []
            for event in events:
                if event.request_id not in existing:
                    existing.add(event.request_id)
                    fresh.append(event)
            usage_rows_insert(fresh)
        else:
            usage_rows_insert(events)  # ON CONFLICT DO NOTHING


def _stored_already(event: UsageEvent) -> bool:
    """A lone refused record whose request id is stored already (a race on SQLite): nothing to set aside."""
    try:
        return UsageRecord.objects.filter(request_id=event.request_id).exists()
    except REFUSED:
        return False


def usage_write(events: list[UsageEvent]) -> WriteResult:
    """Write records; a refused batch is split until each refused record stands alone.

    Records are inserted by request id once: a request id already stored is left as
    it is (so a replay writes nothing twice). Costs about 2·log2(n) extra inserts per
    refused record; the healthy path is one insert.
    """
    result = WriteResult()
    refused: list[tuple[UsageEvent, BaseException]] = []
    stack = [events] if events else []
    while stack:
        part = stack.pop()
        try:
            usage_insert(part)
        except UNAVAILABLE as exc:
            result.kept.extend(part)
            for rest in stack:
                result.kept.extend(rest)
            result.unavailable = f"{type(exc).__name__}: {exc}"
            break
        except REFUSED as exc:
            if len(part) == 1:
                if not _stored_already(part[0]):
                    refused.append((part[0], exc))
            else:
                middle = len(part) // 2
                stack.append(part[middle:])
                stack.append(part[:middle])
        else:
            result.written += len(part)
    if refused:
        stored = dead_letters_store(refused)
        if stored is None:
            result.kept.extend(event for event, _ in refused)
            result.unavailable = result.unavailable or "the dead letter table is unreachable"
        else:
            result.dead += len(stored)
    return result


def _organization_of(event: UsageEvent) -> int | None:
    value = event.organization_id
    if isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63:
        return value
    return None


def dead_letters_store(refused: list[tuple[UsageEvent, BaseException]]) -> list[UsageDeadLetter] | None:
    """Set refused records aside, alert, and log one line each; None when the database is unreachable."""
    rows = []
    for event, exc in refused:
        record = text_storable(event_dumps(event).decode())
        error = text_storable(f"{type(exc).__name__}: {exc}".strip())[:4000]
        rows.append(
            UsageDeadLetter(
                request_id=text_storable(str(event.request_id))[:64],
                organization_id=_organization_of(event),
                record=record,
                error=error,
            )
        )
    try:
        with transaction.atomic():
            UsageDeadLetter.objects.bulk_create(rows)
    except UNAVAILABLE:
        return None
    except REFUSED as exc:
        # Nothing left to store them in: the log is the last place an operator can find them.
        for row in rows:
            logger.error("usage record %s could not be set aside (%s); record: %s", row.request_id, exc, row.record)
        return []
    for row in rows:
        logger.error("usage record %s set aside as a dead letter: %s", row.request_id, row.error)
    dead_letters_alert(rows)
    return rows


def dead_letters_alert(rows: list[UsageDeadLetter]) -> None:
    """One audit event per organization and batch, and an e-mail to its alert recipients."""
    from audit.events import audit_record

    by_org: dict[int | None, list[UsageDeadLetter]] = {}
    for row in rows:
        by_org.setdefault(row.organization_id, []).append(row)
    for organization_id, letters in by_org.items():
        try:
            audit_record(
                action=DEAD_LETTER_EVENT,
                organization_id=organization_id,
                actor="system",
                target=letters[0].request_id,
                data={
                    "count": len(letters),
                    "request_ids": [row.request_id for row in letters[:20]],
                    "error": letters[0].error[:500],
                },
            )
        except DatabaseError as exc:
            logger.warning("audit event for %d dead letters not recorded: %s", len(letters), exc)
        if organization_id is not None:
            _dead_letters_mail(organization_id, letters)


def _dead_letters_mail(organization_id: int, letters: list[UsageDeadLetter]) -> None:
    from django.conf import settings
    from django.core.mail import get_connection, send_mail

    from budgets.alerts import alert_recipients
    from budgets.models import AlertSettings
    from console.models import Organization

    try:
        organization = Organization.objects.filter(pk=organization_id).first()
        if organization is None:
            return
        recipients = alert_recipients(organization, AlertSettings.objects.filter(organization=organization).first())
        if not recipients:
            return
        lines = "\n".join(f"- {row.request_id}: {row.error[:300]}" for row in letters[:20])
        send_mail(
            f"[Gatehouse] {len(letters)} usage record(s) could not be stored",
            f"The database refused {len(letters)} usage record(s) of organization {organization.slug}. They are set "
            f"aside under Usage > Dead letters, where an admin can retry them once the cause is fixed, or discard "
            f"them.\n\n{lines}\n",
            settings.DEFAULT_FROM_EMAIL,
            recipients,
            connection=get_connection(timeout=MAIL_TIMEOUT),  # the flush thread must not hang on a mail server
        )
    except (DatabaseError, OSError) as exc:
        logger.warning("dead letter e-mail for organization %s not sent: %s", organization_id, exc)

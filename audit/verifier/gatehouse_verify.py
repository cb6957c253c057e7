#!/usr/bin/env python3
"""Gatehouse ledger verifier: this file and `rfc9162.py` beside it, Python's standard library
and `pqcrypto` only.

    python gatehouse_verify.py export.json --key keys.json [--previous checkpoint.txt]

It recomputes every leaf hash and the RFC 9162 Merkle tree from the exported leaves,
checks the ML-DSA signature of every checkpoint (a C2SP signed note) against the
trusted log keys, checks every witness cosignature against the trusted witness keys,
and checks that a checkpoint the auditor kept from before is consistent with the log.
Exit status 0 when everything holds; 1 with one line per problem otherwise.

The same functions serve the witness (`gatehouse_witness.py`) and the gateway itself.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import struct
import sys
from dataclasses import dataclass, field

try:  # inside the project
    from audit.verifier.rfc9162 import (  # noqa: F401 - re-exported for the gateway
        CompactRange,
        VerificationError,
        largest_power_of_two_below,
        leaf_hash,
        node_hash,
        tree_root,
        verify_consistency,
        verify_inclusion,
    )
except ImportError:  # run as a script from this folder (with its sibling rfc9162.py)
    from rfc9162 import (  # noqa: F401
        CompactRange,
        VerificationError,
        largest_power_of_two_below,
        leaf_hash,
        node_hash,
        tree_root,
        verify_consistency,
        verify_inclusion,
    )

EXPORT_FORMAT = "gatehouse-ledger-export/v1"
# The signed-note type byte 0xff ("no identifier byte assigned") followed by a longer
# identifier, as c2sp.org/signed-note recommends for unregistered algorithms.
CHECKPOINT_SIG_TYPE = b"\xff" + b"gatehouse/ml-dsa-65/v1"
COSIGNATURE_SIG_TYPE = b"\xff" + b"gatehouse/ml-dsa-65-cosignature/v1"
SIG_TYPES = {"checkpoint": CHECKPOINT_SIG_TYPE, "cosignature": COSIGNATURE_SIG_TYPE}
EM_DASH = "\u2014"


# ---- canonical JSON (RFC 8785) for the values leaves hold ------------------------


def _canonical(value) -> str:
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: kv[0].encode("utf-16-be"))
        return "{" + ",".join(_canonical(k) + ":" + _canonical(v) for k, v in items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_canonical(v) for v in value) + "]"
    if isinstance(value, float):
        raise VerificationError("floating-point numbers never appear in leaves")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53:
        raise VerificationError("integers in leaves stay within 2^53")
    return json.dumps(value, ensure_ascii=False)


def _no_float(text: str):
    raise VerificationError("floating-point numbers never appear in leaves")


def _safe_int(text: str) -> int:
    value = int(text)
    if abs(value) > 2**53:
        raise VerificationError("integers in leaves stay within 2^53")
    return value


def _plain(value) -> bool:
    """No floats and no integers beyond 2^53 anywhere in the value."""
    if isinstance(value, dict):
        return all(_plain(v) for v in value.values())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    if isinstance(value, float):
        return False
    return not isinstance(value, int) or isinstance(value, bool) or abs(value) <= 2**53


def canonical_json(value) -> str:
    """RFC 8785 for strings, integers, booleans, null, arrays and objects (leaves hold no floats).

    Python's encoder with sorted keys writes the same bytes whenever the result is ASCII: key
    order by UTF-16 code units equals code point order there, and strings are escaped alike
    (the short escapes, other control characters as lowercase \\u00xx). Anything else takes
    the explicit path."""
    if _plain(value):
        fast = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        if fast.isascii():
            return fast
    return _canonical(value)


def leaf_is_canonical(text: str) -> bool:
    try:
        value = json.loads(text, parse_float=_no_float, parse_constant=_no_float, parse_int=_safe_int)
        if text.isascii():
            return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")) == text
        return _canonical(value) == text
    except (ValueError, VerificationError, RecursionError):
        return False


# ---- keys, signed notes, checkpoints, cosignatures --------------------------------


def key_id(name: str, kind: str, public_key: bytes) -> bytes:
    """c2sp.org/signed-note: SHA-256(key name || 0x0A || signature type || public key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + SIG_TYPES[kind] + public_key).digest()[:4]


@dataclass(frozen=True)
class PublicKey:
    name: str
    kind: str  # "checkpoint" or "cosignature"
    public_key: bytes
    key_id: bytes
    valid_from: str = ""
    valid_until: str = ""


@dataclass
class Checkpoint:
    origin: str
    size: int
    root: bytes
    body: str
    signatures: list[tuple[str, bytes]] = field(default_factory=list)  # (key name, keyid||sig)


def ml_dsa():
    from pqcrypto.sign import ml_dsa_65

    return ml_dsa_65


def checkpoint_body(origin: str, size: int, root: bytes) -> str:
    return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n"


def signature_line(name: str, kid: bytes, sig: bytes) -> str:
    return f"{EM_DASH} {name} {base64.b64encode(kid + sig).decode()}\n"


def cosignature_message(body: str, timestamp: int) -> bytes:
    """c2sp.org/tlog-cosignature: the signed message of a timestamped cosignature."""
    return f"cosignature/v1\ntime {timestamp}\n".encode() + body.encode()


def note_parse(text: str) -> Checkpoint:
    if "\n\n" not in text:
        raise VerificationError("a checkpoint note has a blank line between text and signatures")
    body, _, sigs = text.partition("\n\n")
    body += "\n"
    lines = body.split("\n")
    if len(lines) < 4:
        raise VerificationError("a checkpoint has an origin, a size and a root hash")
    origin, size_s, root_s = lines[0], lines[1], lines[2]
    if not size_s.isdigit() or (size_s != "0" and size_s.startswith("0")):
        raise VerificationError(f"checkpoint size {size_s!r} is not a decimal number")
    try:
        root = base64.b64decode(root_s, validate=True)
    except ValueError as exc:
        raise VerificationError("checkpoint root hash is not base64") from exc
    if len(root) != 32:
        raise VerificationError("checkpoint root hash is not 32 bytes")
    cp = Checkpoint(origin=origin, size=int(size_s), root=root, body=body)
    for line in sigs.split("\n"):
        if not line:
            continue
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != EM_DASH:
            raise VerificationError(f"malformed signature line in the checkpoint of size {cp.size}")
        try:
            raw = base64.b64decode(parts[2], validate=True)
        except ValueError as exc:
            raise VerificationError(f"signature of {parts[1]} is not base64") from exc
        if len(raw) < 5:
            raise VerificationError(f"signature of {parts[1]} is too short")
        cp.signatures.append((parts[1], raw))
    return cp


def note_verify(cp: Checkpoint, log_keys: list[PublicKey]) -> PublicKey:
    """The trusted log key whose signature verifies; raises when none does or one fails."""
    from pqcrypto import InvalidSignatureError

    good = None
    for name, raw in cp.signatures:
        kid, sig = raw[:4], raw[4:]
        for key in log_keys:
            if key.name == name and key.key_id == kid:
                try:
                    ml_dsa().verify(key.public_key, cp.body.encode(), sig)
                except (InvalidSignatureError, ValueError) as exc:
                    raise VerificationError(
                        f"checkpoint of size {cp.size}: the signature of {name} ({kid.hex()}) does not verify "
                        "(forged or altered checkpoint)"
                    ) from exc
                good = key
    if good is None:
        raise VerificationError(f"checkpoint of size {cp.size} is signed by no trusted log key")
    return good


def cosignatures_verify(cp: Checkpoint, witness_keys: list[PublicKey]) -> list[tuple[str, int]]:
    """(witness name, timestamp) for each trusted witness cosignature; a failing one raises."""
    from pqcrypto import InvalidSignatureError

    found = []
    for name, raw in cp.signatures:
        kid = raw[:4]
        for key in witness_keys:
            if key.name == name and key.key_id == kid:
                if len(raw) < 12:
                    raise VerificationError(f"cosignature of {name} is too short")
                (timestamp,) = struct.unpack(">Q", raw[4:12])
                try:
                    ml_dsa().verify(key.public_key, cosignature_message(cp.body, timestamp), raw[12:])
                except (InvalidSignatureError, ValueError) as exc:
                    raise VerificationError(
                        f"checkpoint of size {cp.size}: the cosignature of witness {name} does not verify"
                    ) from exc
                found.append((name, timestamp))
    return found


def keys_load(doc: dict) -> tuple[list[PublicKey], list[PublicKey]]:
    """The trusted keys from the gateway's well-known document (or an auditor's copy)."""
    out: dict[str, list[PublicKey]] = {"checkpoint": [], "cosignature": []}
    for section, kind in (("log_keys", "checkpoint"), ("witness_keys", "cosignature")):
        for entry in doc.get(section, []):
            pk = base64.b64decode(entry["public_key"])
            kid = key_id(entry["name"], kind, pk)
            if entry.get("key_id") and entry["key_id"] != kid.hex():
                raise VerificationError(f"key {entry['name']}: key id {entry['key_id']} does not match its public key")
            out[kind].append(
                PublicKey(
                    name=entry["name"],
                    kind=kind,
                    public_key=pk,
                    key_id=kid,
                    valid_from=entry.get("valid_from") or "",
                    valid_until=entry.get("valid_until") or "",
                )
            )
    if not out["checkpoint"]:
        raise VerificationError("the key file holds no log key")
    return out["checkpoint"], out["cosignature"]


# ---- the export ------------------------------------------------------------------


@dataclass
class Report:
    origin: str = ""
    leaves: int = 0
    checkpoints: int = 0
    cosignatures: int = 0
    size: int = 0
    root: str = ""
    right_edge: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def export_verify(
    export: dict,
    log_keys: list[PublicKey],
    witness_keys: list[PublicKey] | None = None,
    previous: str | None = None,
    min_cosignatures: int = 0,
) -> Report:
    """Every check of the export; problems are collected, not raised, so an auditor sees all."""
    report = Report()
    problems = report.problems
    if export.get("format") != EXPORT_FORMAT:
        problems.append(f"not a Gatehouse ledger export (format {export.get('format')!r})")
        return report
    origin = export.get("origin", "")
    report.origin = origin
    start = int(export.get("start", 0))
    try:
        prefix = CompactRange(start, [bytes.fromhex(h) for h in export.get("prefix", [])])
    except (ValueError, VerificationError) as exc:
        problems.append(f"the compact range before leaf {start} is malformed: {exc}")
        return report

    # Checkpoints: parse, check signatures, find split views.
    by_size: dict[int, Checkpoint] = {}
    for text in export.get("checkpoints", []):
        try:
            cp = note_parse(text)
            if cp.origin != origin:
                raise VerificationError(f"checkpoint of size {cp.size} is for another log ({cp.origin!r})")
            note_verify(cp, log_keys)
            report.cosignatures += len(cosignatures_verify(cp, witness_keys or []))
        except VerificationError as exc:
            problems.append(str(exc))
            continue
        seen = by_size.get(cp.size)
        if seen is not None and seen.root != cp.root:
            problems.append(
                f"split view: two signed checkpoints of size {cp.size} with different roots "
                f"({seen.root.hex()[:16]}… and {cp.root.hex()[:16]}…)"
            )
            continue
        by_size[cp.size] = cp
        report.checkpoints += 1
    if min_cosignatures and by_size:
        # Witnesses cosign the latest checkpoint; older ones are bound to it by the tree.
        cp = by_size[max(by_size)]
        try:
            count = len(cosignatures_verify(cp, witness_keys or []))
        except VerificationError:
            count = 0
        if count < min_cosignatures:
            problems.append(
                f"the latest checkpoint (size {cp.size}) has {count} trusted witness cosignatures, "
                f"fewer than {min_cosignatures}"
            )

    prev_cp = None
    if previous:
        try:
            prev_cp = note_parse(previous)
            if prev_cp.origin != origin:
                raise VerificationError(f"your previous checkpoint is for another log ({prev_cp.origin!r})")
            note_verify(prev_cp, log_keys)
        except VerificationError as exc:
            problems.append(f"previous checkpoint: {exc}")
            prev_cp = None

    # Leaves: canonical form, order, and the tree at every checkpoint size.
    targets = {s for s in by_size if s > start}
    if prev_cp is not None and prev_cp.size > start:
        targets.add(prev_cp.size)
    roots: dict[int, bytes] = {}
    if start in by_size or (prev_cp is not None and prev_cp.size == start):
        roots[start] = prefix.root()
    tree = prefix
    expected = start
    for entry in export.get("leaves", []):
        index = entry.get("index")
        text = entry.get("leaf")
        if not isinstance(index, int) or not isinstance(text, str):
            problems.append(f"leaf entry after index {expected - 1} is malformed")
            break
        if index != expected:
            what = "missing (deleted)" if index > expected else "out of order or duplicated"
            problems.append(f"leaf {expected} is {what}: the next leaf in the export has index {index}")
            break
        if not leaf_is_canonical(text):
            problems.append(f"leaf {index} is not canonical JSON (RFC 8785)")
        tree.append(leaf_hash(text.encode()))
        expected += 1
        if expected in targets:
            roots[expected] = tree.root()
    report.leaves = expected - start
    report.size = expected
    report.root = tree.root().hex()
    report.right_edge = [h.hex() for h in tree.hashes]

    for size, cp in sorted(by_size.items()):
        if size < start:
            continue
        if size > expected:
            problems.append(
                f"truncated: the checkpoint of size {size} covers leaves the export does not hold "
                f"(it ends at {expected})"
            )
            continue
        if roots.get(size) != cp.root:
            problems.append(
                f"the leaves do not produce the signed root of the checkpoint of size {size}: "
                "a leaf was rewritten, inserted, deleted or reordered"
            )
    latest = max(by_size) if by_size else None
    if latest is None:
        problems.append("the export holds no valid signed checkpoint")
    elif expected > latest:
        problems.append(
            f"{expected - latest} leaves after index {latest - 1} are covered by no signed checkpoint (inserted?)"
        )

    if prev_cp is not None:
        if latest is not None and prev_cp.size > max(latest, expected):
            problems.append(
                f"the log shrank: your previous checkpoint has size {prev_cp.size}, "
                f"the export ends at {max(latest, expected)} (truncated or rolled back)"
            )
        elif prev_cp.size < start:
            problems.append(
                f"your previous checkpoint (size {prev_cp.size}) lies before this export's first leaf ({start}); "
                "export from an earlier time to check it"
            )
        elif prev_cp.size in by_size and by_size[prev_cp.size].root != prev_cp.root:
            problems.append(
                f"split view: your previous checkpoint of size {prev_cp.size} and the log's differ "
                "(the log showed you a different history)"
            )
        elif prev_cp.size in roots and roots[prev_cp.size] != prev_cp.root:
            problems.append(
                f"inconsistent with your previous checkpoint of size {prev_cp.size}: the history was rewritten"
            )
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Verify a Gatehouse ledger export offline.")
    parser.add_argument("export", help="the export file (JSON)")
    parser.add_argument("--key", required=True, help="trusted public keys (the well-known JSON document)")
    parser.add_argument("--previous", help="a checkpoint note you kept from before")
    parser.add_argument(
        "--min-cosignatures", type=int, default=0, help="trusted witness cosignatures the latest checkpoint needs"
    )
    args = parser.parse_args(argv)
    try:
        with open(args.export, encoding="utf-8") as fh:
            export = json.load(fh)
        with open(args.key, encoding="utf-8") as fh:
            log_keys, witness_keys = keys_load(json.load(fh))
        previous = None
        if args.previous:
            with open(args.previous, encoding="utf-8") as fh:
                previous = fh.read()
    except (OSError, ValueError, KeyError, VerificationError) as exc:
        print(f"FAIL cannot read the input: {exc}")
        return 2
    report = export_verify(export, log_keys, witness_keys, previous, args.min_cosignatures)
    if report.ok:
        print(
            f"OK {report.origin}: {report.leaves} leaves, {report.checkpoints} checkpoints, "
            f"{report.cosignatures} cosignatures; size {report.size}, root {report.root}"
        )
        return 0
    for problem in report.problems:
        print(f"FAIL {problem}")
    return 1


if __name__ == "__main__":
    sys.exit(main())

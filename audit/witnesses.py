"""Collecting witness cosignatures (c2sp.org/tlog-witness add-checkpoint) for each log."""

from __future__ import annotations

import base64
import logging
import struct
from datetime import UTC, datetime

import httpx
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.models import Checkpoint, Cosignature, Log, Witness, WitnessState
from audit.selectors import checkpoint_latest, consistency_proof
from audit.verifier import gatehouse_verify as gv

logger = logging.getLogger(__name__)


class WitnessError(Exception):
    pass


def witness_add(*, name: str, url: str, public_key: str) -> Witness:
    """Trust a witness: its key name, where it listens, and its public key (base64)."""
    try:
        pk = base64.b64decode(public_key, validate=True)
    except ValueError as exc:
        raise WitnessError("The public key is not base64.") from exc
    if len(pk) != 1952:
        raise WitnessError("An ML-DSA-65 public key is 1952 bytes.")
    if not name or " " in name or "+" in name:
        raise WitnessError("A witness name has no spaces or '+' (e.g. witness.example.org/w1).")
    witness, _ = Witness.objects.update_or_create(
        name=name,
        defaults={"url": url.rstrip("/"), "public_key": public_key, "key_id": gv.key_id(name, "cosignature", pk).hex()},
    )
    return witness


def _witness_key(witness: Witness) -> gv.PublicKey:
    pk = base64.b64decode(witness.public_key)
    return gv.PublicKey(witness.name, "cosignature", pk, bytes.fromhex(witness.key_id))


def cosignature_request(
    witness: Witness, log: Log, checkpoint: Checkpoint, old: int, client: httpx.Client
) -> httpx.Response:
    proof = consistency_proof(log, size1=old, size2=checkpoint.size) if 0 < old <= checkpoint.size else []
    body = f"old {old}\n" + "".join(base64.b64encode(h).decode() + "\n" for h in proof) + "\n" + checkpoint.note
    return client.post(f"{witness.url}/add-checkpoint", content=body.encode())


def cosign(*, witness: Witness, log: Log, checkpoint: Checkpoint, client: httpx.Client) -> Cosignature:
    """Ask one witness to cosign one checkpoint, from the size it last told us it holds."""
    state, _ = WitnessState.objects.get_or_create(witness=witness, log=log)
    response = cosignature_request(witness, log, checkpoint, state.size, client)
    if response.status_code == 409 and response.text.strip().isdigit():
        held = int(response.text.strip())
        if held > checkpoint.size:
            raise WitnessError(f"the witness holds size {held}, larger than this log's {checkpoint.size}")
        response = cosignature_request(witness, log, checkpoint, held, client)
    if response.status_code != 200:
        raise WitnessError(f"{witness.name} answered {response.status_code}: {response.text.strip()[:200]}")
    line = response.text.strip() + "\n"
    cp = gv.note_parse(checkpoint.note + line)
    found = gv.cosignatures_verify(cp, [_witness_key(witness)])
    if not found:
        raise WitnessError(f"{witness.name} answered without its cosignature")
    timestamp = datetime.fromtimestamp(found[0][1], tz=UTC)
    with transaction.atomic():
        try:
            cosignature = Cosignature.objects.create(
                checkpoint=checkpoint, witness=witness, line=line, timestamp=timestamp
            )
        except IntegrityError:
            cosignature = Cosignature.objects.get(checkpoint=checkpoint, witness=witness)
        WitnessState.objects.filter(pk=state.pk).update(size=checkpoint.size, error="", updated_at=timezone.now())
    return cosignature


def cosignatures_collect() -> int:
    """Every enabled witness is asked to cosign every log's latest checkpoint it has not cosigned."""
    made = 0
    witnesses = list(Witness.objects.filter(enabled=True))
    if not witnesses:
        return 0
    with httpx.Client(timeout=settings.GATEHOUSE_LEDGER["WITNESS_TIMEOUT"]) as client:
        for log in Log.objects.filter(size__gt=0):
            checkpoint = checkpoint_latest(log)
            for witness in witnesses:
                if Cosignature.objects.filter(checkpoint=checkpoint, witness=witness).exists():
                    continue
                try:
                    cosign(witness=witness, log=log, checkpoint=checkpoint, client=client)
                    made += 1
                except (WitnessError, gv.VerificationError, httpx.HTTPError) as exc:
                    logger.warning("ledger: witness %s on %s: %s", witness.name, log.origin, exc)
                    WitnessState.objects.update_or_create(
                        witness=witness, log=log, defaults={"error": str(exc)[:500], "updated_at": timezone.now()}
                    )
    return made


def cosignature_timestamp(raw_line: str) -> int:
    raw = base64.b64decode(raw_line.rsplit(" ", 1)[1])
    return struct.unpack(">Q", raw[4:12])[0]

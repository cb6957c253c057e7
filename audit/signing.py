"""Checkpoint signing keys: ML-DSA-65, the secret half encrypted with the encryption keys."""

from __future__ import annotations

import base64

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.models import SigningKey
from audit.verifier import gatehouse_verify as gv
from gatehouse.crypto import secret_decrypt, secret_encrypt


def ledger_name() -> str:
    return settings.GATEHOUSE_LEDGER["NAME"]


class Signer:
    """The current key, decrypted once; owned by whoever seals (a task run, the seal loop)."""

    def __init__(self, key: SigningKey) -> None:
        self.key = key
        self.name = key.name
        self.kid = bytes.fromhex(key.key_id)
        self._secret = base64.b64decode(secret_decrypt(key.secret_encrypted))

    def sign_body(self, body: str) -> str:
        """The signed note: body, blank line, one signature line."""
        sig = gv.ml_dsa().sign(self._secret, body.encode())
        return body + "\n" + gv.signature_line(self.name, self.kid, sig)


def signing_key_create(*, name: str | None = None) -> SigningKey:
    name = name or ledger_name()
    pk, sk = gv.ml_dsa().keygen()
    return SigningKey.objects.create(
        name=name,
        key_id=gv.key_id(name, "checkpoint", pk).hex(),
        public_key=base64.b64encode(pk).decode(),
        secret_encrypted=secret_encrypt(base64.b64encode(sk).decode()),
    )


def signing_key_current() -> SigningKey:
    """The key that signs now; made on first use."""
    key = SigningKey.objects.filter(valid_until__isnull=True).order_by("-valid_from").first()
    if key is not None:
        return key
    with transaction.atomic():
        key = SigningKey.objects.select_for_update().filter(valid_until__isnull=True).first()
        return key or signing_key_create()


def signing_key_rotate() -> SigningKey:
    """A new key with a new key id signs from now on; the old public keys stay published."""
    with transaction.atomic():
        now = timezone.now()
        SigningKey.objects.select_for_update().filter(valid_until__isnull=True).update(valid_until=now)
        return signing_key_create()


def public_keys_document() -> dict:
    """The well-known document: every log key (with validity) and every witness key."""
    from audit.models import Witness

    return {
        "log_keys": [
            {
                "name": k.name,
                "key_id": k.key_id,
                "algorithm": k.algorithm,
                "signature_type": gv.CHECKPOINT_SIG_TYPE.hex(),
                "public_key": k.public_key,
                "valid_from": k.valid_from.isoformat(),
                "valid_until": k.valid_until.isoformat() if k.valid_until else None,
            }
            for k in SigningKey.objects.order_by("valid_from")
        ],
        "witness_keys": [
            {
                "name": w.name,
                "key_id": w.key_id,
                "algorithm": "ML-DSA-65",
                "signature_type": gv.COSIGNATURE_SIG_TYPE.hex(),
                "public_key": w.public_key,
            }
            for w in Witness.objects.filter(enabled=True).order_by("name")
        ],
    }

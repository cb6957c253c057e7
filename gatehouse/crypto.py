"""Secrets at rest: Fernet with key rotation (MultiFernet), shared by every app.

The first key in GATEHOUSE_ENCRYPTION_KEYS encrypts; every key decrypts, so a new
key can be put in front and `manage.py rotate_secrets` re-encrypts what is stored.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class SecretUnavailable(Exception):
    pass


def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(key) for key in settings.ENCRYPTION_KEYS])


def secret_encrypt(plaintext: str) -> str:
    if not plaintext:
        return ""
    return _fernet().encrypt(plaintext.encode()).decode()


def secret_decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise SecretUnavailable("The secret cannot be decrypted with the configured keys.") from exc


def secret_rotate(token: str) -> str:
    """Re-encrypt a stored token under the newest key."""
    if not token:
        return ""
    return _fernet().rotate(token.encode()).decode()

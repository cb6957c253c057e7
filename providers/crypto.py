"""Provider secrets at rest; the encryption itself lives in `gatehouse.crypto`."""

from __future__ import annotations

from django.conf import settings

from gatehouse.crypto import SecretUnavailable, secret_decrypt

__all__ = ["SecretUnavailable", "provider_secret"]


def provider_secret(*, secret_encrypted: str, secret_env: str) -> str:
    if secret_encrypted:
        return secret_decrypt(secret_encrypted)
    if secret_env:
        return settings.GATEHOUSE_ENV_SECRETS.get(secret_env, "")
    return ""

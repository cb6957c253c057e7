"""manage.py rotate_secrets: re-encrypt stored provider secrets under the newest key.

Put a new Fernet key in front of GATEHOUSE_ENCRYPTION_KEYS, run this, then drop
the old key once every process runs with the new list.
"""

from __future__ import annotations

from cryptography.fernet import InvalidToken
from django.core.management.base import BaseCommand, CommandError

from providers.services import provider_secrets_rotate


class Command(BaseCommand):
    help = "Re-encrypt every stored provider secret under the first key of GATEHOUSE_ENCRYPTION_KEYS."

    def handle(self, *args, **options) -> None:
        try:
            count = provider_secrets_rotate()
        except InvalidToken as exc:
            raise CommandError(
                "A stored provider secret cannot be decrypted with any configured key; nothing was changed. "
                "Keep the old key in GATEHOUSE_ENCRYPTION_KEYS (after the new one) while rotating."
            ) from exc
        self.stdout.write(
            f"Re-encrypted {count} provider secret{'s' if count != 1 else ''} under the newest key. "
            "Older keys can leave GATEHOUSE_ENCRYPTION_KEYS once every process has the new list."
        )

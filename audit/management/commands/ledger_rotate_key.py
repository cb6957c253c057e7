from __future__ import annotations

from django.core.management.base import BaseCommand

from audit.signing import signing_key_rotate


class Command(BaseCommand):
    help = "Sign checkpoints with a new ML-DSA-65 key (new key id); old public keys stay published."

    def handle(self, *args, **options):
        key = signing_key_rotate()
        self.stdout.write(f"new checkpoint key {key.name} {key.key_id}")

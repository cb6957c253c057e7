from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from audit.witnesses import WitnessError, witness_add


class Command(BaseCommand):
    help = "Trust a witness: its URL and its witness-key.json (the public part it wrote)."

    def add_arguments(self, parser):
        parser.add_argument("url")
        parser.add_argument("key_file")

    def handle(self, *args, url, key_file, **options):
        try:
            doc = json.loads(Path(key_file).read_text())
            witness = witness_add(name=doc["name"], url=url, public_key=doc["public_key"])
        except (OSError, ValueError, KeyError, WitnessError) as exc:
            raise CommandError(f"Cannot add the witness: {exc}") from exc
        self.stdout.write(f"witness {witness.name} ({witness.key_id}) at {witness.url}")

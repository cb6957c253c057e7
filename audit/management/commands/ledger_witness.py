"""Run a witness (the standalone audit/verifier/gatehouse_witness.py) with this gateway's keys."""

from __future__ import annotations

import json
import tempfile

from django.core.management.base import BaseCommand

from audit.signing import public_keys_document, signing_key_current


class Command(BaseCommand):
    help = "Run a ledger witness process (its own key and state directory)."

    def add_arguments(self, parser):
        parser.add_argument("--state-dir", required=True)
        parser.add_argument("--name", required=True)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8650)

    def handle(self, *args, state_dir, name, host, port, **options):
        from audit.verifier import gatehouse_witness

        signing_key_current()
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
            json.dump(public_keys_document(), fh)
        gatehouse_witness.main(
            ["--state-dir", state_dir, "--log-keys", fh.name, "--name", name, "--host", host, "--port", str(port)]
        )

"""Seal pending leaves into their logs: once, or in a loop (off the hot path)."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.management.base import BaseCommand

from audit.services import ledger_seal
from audit.signing import Signer, signing_key_current


class Command(BaseCommand):
    help = "Seal pending ledger leaves and sign checkpoints (--loop to keep sealing)."

    def add_arguments(self, parser):
        parser.add_argument("--loop", action="store_true", help="keep sealing every SEAL_INTERVAL seconds")
        parser.add_argument("--rounds", type=int, default=0, help="stop after this many rounds (with --loop)")

    def handle(self, *args, loop: bool, rounds: int, **options):
        interval = settings.GATEHOUSE_LEDGER["SEAL_INTERVAL"]
        signer = Signer(signing_key_current())
        done = 0
        while True:
            results = ledger_seal(signer=signer)
            sealed = sum(r.sealed for r in results)
            if sealed:
                self.stdout.write(f"sealed {sealed} leaves into {len({r.log_id for r in results if r.sealed})} logs")
            done += 1
            if not loop or (rounds and done >= rounds):
                return
            time.sleep(interval)

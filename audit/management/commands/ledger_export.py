from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime

from audit.selectors import log_for
from audit.services import export_build, export_for_time
from audit.signing import public_keys_document


class Command(BaseCommand):
    help = "Write an organization's ledger export (and the public keys) for the offline verifier."

    def add_arguments(self, parser):
        who = parser.add_mutually_exclusive_group(required=True)
        who.add_argument("--organization", type=int, help="organization id")
        who.add_argument("--operator", action="store_true", help="the log of changes of no organization")
        parser.add_argument("--since")
        parser.add_argument("--until")
        parser.add_argument("--out", required=True)
        parser.add_argument("--keys-out")

    def handle(self, *args, organization, operator, since, until, out, keys_out, **options):
        log = log_for(None if operator else organization)
        if log is None:
            raise CommandError("This organization has no log yet.")
        if since or until:
            start, end = parse_datetime(since or ""), parse_datetime(until or "")
            if not start or not end or not start.tzinfo or not end.tzinfo:
                raise CommandError("--since and --until are ISO 8601 times with a zone.")
            doc = export_for_time(log=log, since=start, until=end)
        else:
            doc = export_build(log=log)
        with open(out, "w", encoding="utf-8") as fh:
            json.dump(doc, fh)
        if keys_out:
            with open(keys_out, "w", encoding="utf-8") as fh:
                json.dump(public_keys_document(), fh)
        self.stdout.write(f"{len(doc['leaves'])} leaves, {len(doc['checkpoints'])} checkpoints -> {out}")

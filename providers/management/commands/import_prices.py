"""manage.py import_prices FILE: model prices from a LiteLLM price list.

The file is LiteLLM's `model_prices_and_context_window.json`: model names as keys,
per-token costs as values. Costs are read as exact decimals (never floats) and
converted to the registry's per-1M prices. New names become cards; on an existing
curated card only the prices change, and operator-priced cards are left alone.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from providers.catalog import model_rows_plan, model_rows_write
from providers.litellm import LITELLM_MODES, import_policy, litellm_rows


def _csv(value: str) -> set[str]:
    return {item.strip() for item in value.split(",") if item.strip()}


class Command(BaseCommand):
    help = "Import model prices and context windows from a LiteLLM model_prices_and_context_window.json file."

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", type=Path, help="Path to model_prices_and_context_window.json.")
        parser.add_argument("--dry-run", action="store_true", help="Report what would change; write nothing.")
        parser.add_argument(
            "--only-mode",
            default="chat,embedding",
            help=f"Comma-separated LiteLLM modes (default chat,embedding; any of {', '.join(LITELLM_MODES)}).",
        )
        parser.add_argument(
            "--provider",
            default="",
            help="Comma-separated litellm_provider values or vendors to import (default: all).",
        )

    def handle(self, *args, **options) -> None:
        path: Path = options["file"]
        modes = _csv(options["only_mode"])
        unsupported = sorted(modes - set(LITELLM_MODES))
        if not modes or unsupported:
            raise CommandError(
                f"--only-mode: {', '.join(unsupported) or 'nothing'} cannot be imported; "
                f"the gateway serves {', '.join(LITELLM_MODES)}."
            )
        data = self.read(path)
        prices = litellm_rows(data, modes=modes, providers=_csv(options["provider"]) or None)
        plan = model_rows_plan(prices.rows, policy=import_policy)
        skipped = prices.skipped + plan.skipped
        unchanged, skipped_total = len(plan.unchanged), sum(skipped.values())
        if options["dry_run"]:
            if options["verbosity"] >= 2:
                for row in plan.create:
                    self.stdout.write(f"create    {row['name']}")
                for row in plan.update:
                    self.stdout.write(f"update    {row['name']}: {', '.join(sorted(set(row) - {'name', 'source'}))}")
            self.stdout.write(
                f"Dry run, nothing written: would create {len(plan.create)}, update {len(plan.update)}; "
                f"{unchanged} unchanged, {skipped_total} skipped."
            )
        else:
            created, updated = model_rows_write(plan, source="import")
            self.stdout.write(
                f"Imported prices: {created} created, {updated} updated, "
                f"{unchanged} unchanged, {skipped_total} skipped."
            )
        for reason, count in sorted(skipped.items(), key=lambda item: (-item[1], item[0])):
            self.stdout.write(f"  skipped {count}: {reason}")
        if prices.rounded:
            shown = ", ".join(prices.rounded[:10]) + (" ..." if len(prices.rounded) > 10 else "")
            self.stdout.write(f"  {len(prices.rounded)} prices rounded to 6 decimal places per 1M tokens: {shown}")

    def read(self, path: Path) -> dict:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise CommandError(f"{path}: no such file.") from exc
        except OSError as exc:
            raise CommandError(f"{path}: cannot read ({exc.strerror}).") from exc
        except UnicodeDecodeError as exc:
            raise CommandError(f"{path}: not UTF-8 text.") from exc
        try:
            data = json.loads(text, parse_float=Decimal)  # exact decimals, never binary floats
        except json.JSONDecodeError as exc:
            raise CommandError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}).") from exc
        if not isinstance(data, dict):
            raise CommandError(f"{path}: expected a JSON object of model names to price entries.")
        return data

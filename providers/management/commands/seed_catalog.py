"""manage.py seed_catalog: load the built-in model catalog (idempotent)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from providers.catalog import CatalogError, catalog_seed


class Command(BaseCommand):
    help = "Load the built-in model catalog into the registry. A second run changes nothing."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--file", type=Path, help="A catalog YAML file instead of the built-in providers/catalog.yaml."
        )

    def handle(self, *args, **options) -> None:
        try:
            result = catalog_seed(path=options["file"])
        except CatalogError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Catalog: {result.created} created, {result.updated} updated, {result.unchanged} unchanged.")

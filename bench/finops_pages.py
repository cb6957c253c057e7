"""Render every FinOps page against a seeded database and report p50 / p95 per page.

    DATABASE_URL=sqlite:///$PWD/var/bench/bench.sqlite3 .venv/bin/python manage.py migrate
    DATABASE_URL=sqlite:///$PWD/var/bench/bench.sqlite3 .venv/bin/python manage.py seed_usage   # 1M records
    DATABASE_URL=sqlite:///$PWD/var/bench/bench.sqlite3 .venv/bin/python bench/finops_pages.py

Pages are rendered in process through Django's test client (no network), as a finance
user of the seeded organization, `--runs` times each after one warm-up.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gatehouse.settings")

PAGES = [
    ("Overview", "/finops/"),
    ("Spend explorer (model, this month)", "/finops/spend/"),
    ("Spend explorer (team, 90 days)", "/finops/spend/?period=90d&group=team"),
    ("Spend explorer (key, filtered by model)", "/finops/spend/?group=key&f_model=gpt-4o"),
    ("Unit economics", "/finops/unit-economics/"),
    ("Performance", "/finops/performance/"),
    ("Outcomes & CPSI", "/finops/outcomes/"),
    ("Routing savings", "/finops/savings/"),
    ("On-prem break-even", "/finops/on-prem/"),
]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--org", default="finops-bench")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from budgets.models import UsageRecord
    from console import services
    from console.models import Membership, Organization

    org = Organization.objects.filter(slug=args.org).first()
    if org is None:
        print(f"no organization {args.org!r}: run `manage.py seed_usage` first")
        return 2
    user = get_user_model().objects.filter(username=f"{args.org}-finance").first()
    if user is None:
        user = services.user_create(username=f"{args.org}-finance", email=f"finance@{args.org}.test")
    if not Membership.objects.filter(organization=org, user=user).exists():
        services.membership_set(organization=org, user=user, role="finance")
    client = Client()
    client.force_login(user)
    records = UsageRecord.objects.filter(organization_id=org.id).count()
    print(f"{records:,} usage records in {org.slug}; {args.runs} runs per page; database {connection.vendor}")
    print(f"{'page':44} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'queries':>8}")
    worst = 0.0
    for name, url in PAGES:
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        times = []
        for _ in range(args.runs):
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                response = client.get(url)
                times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
        times.sort()
        p95 = times[max(0, round(0.95 * len(times)) - 1)]
        worst = max(worst, p95)
        print(f"{name:44} {statistics.median(times):8.1f} {p95:8.1f} {times[-1]:8.1f} {len(queries):8d}")
    member = get_user_model().objects.filter(memberships__organization=org, memberships__role="member").first()
    if member is not None:
        client = Client()
        client.force_login(member)
        for name, url in PAGES[:2]:
            client.get(url)
            times = []
            for _ in range(args.runs):
                with CaptureQueriesContext(connection) as queries:
                    started = time.perf_counter()
                    client.get(url)
                    times.append((time.perf_counter() - started) * 1000)
            times.sort()
            p95 = times[max(0, round(0.95 * len(times)) - 1)]
            worst = max(worst, p95)
            label = f"{name} (a member: own keys)"
            print(f"{label:44} {statistics.median(times):8.1f} {p95:8.1f} {times[-1]:8.1f} {len(queries):8d}")
    print(f"worst p95: {worst:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())

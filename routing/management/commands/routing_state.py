"""Show (or reset) what the gateways know about deployment health."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from budgets.clock import SettableClock
from providers.models import Deployment
from routing.engine.state import routing_state_from_settings


class Command(BaseCommand):
    help = "Show the shared routing state (breakers, in flight, latency) of every active deployment; --reset clears it."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--reset", action="store_true", help="forget breakers, averages and counters")
        parser.add_argument("--deployment", action="append", default=[], help="only this deployment (repeatable)")

    def handle(self, *args, **options) -> None:
        from django.conf import settings

        from routing.gateway import Snapshots

        state = routing_state_from_settings(settings.GATEHOUSE, redis_url=settings.REDIS_URL, clock=SettableClock())
        snapshots = Snapshots(state=state)
        snapshots.refresh()  # sets the shared namespace of this installation
        snapshot = snapshots.routing
        deployments = Deployment.objects.filter(is_active=True).order_by("name")
        if options["deployment"]:
            deployments = deployments.filter(name__in=options["deployment"])
        rows = list(deployments.values_list("id", "name"))
        if options["reset"]:
            state.reset([i for i, _ in rows] if options["deployment"] else None)
            self.stdout.write(f"Routing state reset ({state.name}, namespace {snapshot.namespace}).")
            return
        health = state.inspect([i for i, _ in rows])
        now = state.now()
        self.stdout.write(f"backend: {state.name}, namespace: {snapshot.namespace}")
        for deployment_id, name in rows:
            h = health[deployment_id]
            latency = f"{h.latency:.2f} ms/token" if h.latency is not None else "-"
            ttft = f"{h.ttft:.0f} ms TTFT" if h.ttft is not None else "-"
            self.stdout.write(
                f"{name:50} {h.status(now):9} in flight {h.inflight:3}  {latency:16} {ttft:12} "
                f"ok {h.successes} / failed {h.failures}"
            )

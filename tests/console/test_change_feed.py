"""The change feed delivers every change once per reader, whatever order ids commit in."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from django.core.management.color import no_style
from django.db import connection, connections, transaction
from django.test.utils import override_settings
from django.utils import timezone

from console import services
from console.authlimit import MemoryAuthLimiter
from console.changes import RESYNC, Change, ChangeFeed, ChangeFeedSettings
from console.keycache import KeyCache
from console.models import ChangeEvent
from console.tasks import change_feed_prune
from routing.errors import GatewayError
from routing.pipeline.authenticate import authenticate


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def insert_with_id(event_id: int, topic: str = "key", ref: str = "") -> None:
    """A row with a chosen id: how a transaction that took a lower id and committed late looks to a reader."""
    ChangeEvent.objects.create(id=event_id, topic=topic, ref=ref)
    with connection.cursor() as cursor:  # keep the sequence ahead of hand-picked ids (PostgreSQL)
        for sql in connection.ops.sequence_reset_sql(no_style(), [ChangeEvent]):
            cursor.execute(sql)


def feed(clock=None, **overrides) -> ChangeFeed:
    return ChangeFeed(ChangeFeedSettings(**overrides), clock=clock or FakeClock())


@pytest.mark.django_db
def test_a_change_whose_lower_id_commits_after_a_higher_one_is_still_delivered():
    reader = feed()
    head = reader.head()
    insert_with_id(head + 2, ref="second")
    assert [c.ref for c in reader.poll()] == ["second"]
    assert head + 1 in reader.gaps

    insert_with_id(head + 1, ref="first")
    assert [(c.id, c.ref) for c in reader.poll()] == [(head + 1, "first")]
    assert reader.gaps == {}
    assert reader.poll() == []


@pytest.mark.django_db
def test_every_change_is_delivered_once_whether_it_arrives_by_poll_or_by_announcement():
    reader = feed()
    head = reader.head()
    services.change_publish(topic="catalog", ref="a")
    services.change_publish(topic="catalog", ref="b")
    first, second = ChangeEvent.objects.filter(id__gt=head).order_by("id")
    # The announcement of the second arrives before any poll.
    assert reader.accept([Change(second.id, "catalog", "b")]) == [Change(second.id, "catalog", "b")]
    assert reader.accept([Change(second.id, "catalog", "b")]) == []
    assert [c.ref for c in reader.poll()] == ["a"]
    assert reader.poll() == []


@pytest.mark.django_db
def test_head_counts_recent_missing_ids_as_gaps_and_old_ones_as_settled():
    clock = FakeClock()
    top = ChangeFeed(ChangeFeedSettings(), clock=clock).head()
    ChangeEvent.objects.create(id=top + 1, topic="key", ref="old", created_at=timezone.now() - timedelta(hours=1))
    insert_with_id(top + 3, ref="recent")
    insert_with_id(top + 5, ref="newest")
    reader = ChangeFeed(ChangeFeedSettings(gap_horizon=300), clock=clock)
    assert reader.head() == top + 5
    assert set(reader.gaps) == {top + 2, top + 4}
    insert_with_id(top + 4, ref="late")
    assert [c.ref for c in reader.poll()] == ["late"]


@pytest.mark.django_db
def test_a_gap_is_given_up_after_the_horizon():
    clock = FakeClock()
    reader = feed(clock, gap_horizon=60)
    head = reader.head()
    insert_with_id(head + 2)
    reader.poll()
    clock.now += 59
    reader.poll()
    assert head + 1 in reader.gaps
    clock.now += 2
    reader.poll()
    assert head + 1 not in reader.gaps


@pytest.mark.django_db
def test_more_gaps_than_tracked_resynchronize_everything():
    reader = feed(max_gaps=5)
    head = reader.head()
    insert_with_id(head + 20, ref="far")
    changes = reader.poll()
    assert [c.ref for c in changes if c.topic != RESYNC] == ["far"]
    assert any(c.topic == RESYNC for c in changes)
    assert len(reader.gaps) <= 5


@pytest.mark.django_db
def test_a_change_is_written_with_its_transaction_and_rolled_back_with_it():
    org = services.organization_create(name="Feed Org")
    issued = services.api_key_create(organization=org, name="app")
    before = ChangeEvent.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        services.change_publish(topic="key", ref="never")
        raise RuntimeError("rolled back")
    assert ChangeEvent.objects.count() == before
    services.api_key_revoke(key=issued.key)
    assert ChangeEvent.objects.filter(topic="key", ref=issued.key.secret_hash).count() == 2  # create, revoke


@pytest.mark.django_db
def test_pruning_deletes_old_changes_in_batches_and_keeps_recent_ones():
    old = timezone.now() - timedelta(days=2)
    for i in range(5):
        ChangeEvent.objects.create(topic="catalog", ref=f"old{i}", created_at=old)
    services.change_publish(topic="catalog", ref="recent")
    with override_settings(GATEHOUSE={**_gatehouse(), "CHANGE_FEED_RETENTION": 86_400.0, "CHANGE_FEED_PRUNE_BATCH": 2}):
        assert change_feed_prune() == 5
    assert list(ChangeEvent.objects.values_list("ref", flat=True)) == ["recent"]


@pytest.mark.django_db
def test_pruning_keeps_the_newest_change_however_old_so_readers_start_after_it():
    old = timezone.now() - timedelta(days=2)
    ChangeEvent.objects.create(topic="catalog", ref="older", created_at=old)
    last = ChangeEvent.objects.create(topic="catalog", ref="newest", created_at=old)
    assert change_feed_prune() == 1
    assert feed().head() == last.id


def _gatehouse() -> dict:
    from django.conf import settings

    return settings.GATEHOUSE


def test_the_prune_task_is_scheduled():
    from django.conf import settings

    assert settings.CELERY_BEAT_SCHEDULE["change-feed-prune"]["task"] == "console.tasks.change_feed_prune"


# -- real out-of-order commits (PostgreSQL: writers do not serialize there) ----------------

postgres_only = pytest.mark.skipif(
    "postgres" not in os.environ.get("DATABASE_URL", ""), reason="needs PostgreSQL (concurrent writers)"
)


class HeldTransaction:
    """A change written in a transaction, in its own thread and connection, committed on demand."""

    def __init__(self, write) -> None:
        self.written = threading.Event()
        self.commit = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(write,))
        self.thread.start()
        assert self.written.wait(10), "the held transaction did not write"

    def _run(self, write) -> None:
        try:
            with transaction.atomic():
                write()
                self.written.set()
                assert self.commit.wait(10)
        except BaseException as exc:  # reported by finish()
            self.error = exc
            self.written.set()
        finally:
            connections.close_all()

    def finish(self) -> None:
        self.commit.set()
        self.thread.join(10)
        if self.error is not None:
            raise self.error


def in_thread(write) -> None:
    """Write and commit in another thread, with its own connection."""
    errors: list[BaseException] = []

    def run():
        try:
            write()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "the write did not commit"
    if errors:
        raise errors[0]


@pytest.mark.services
@postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_changes_committed_out_of_order_are_both_delivered_to_every_reader():
    readers = [feed(), feed()]  # two processes' feeds
    for reader in readers:
        reader.head()
    held = HeldTransaction(lambda: services.change_publish(topic="key", ref="lower"))
    in_thread(lambda: services.change_publish(topic="key", ref="higher"))
    seen = {id(reader): [c.ref for c in reader.poll()] for reader in readers}
    assert all(refs == ["higher"] for refs in seen.values())
    held.finish()
    for reader in readers:
        seen[id(reader)] += [c.ref for c in reader.poll()]
    lower, higher = (ChangeEvent.objects.get(ref=r).id for r in ("lower", "higher"))
    assert lower < higher  # the ids really committed out of order
    assert all(refs == ["higher", "lower"] for refs in seen.values())


@pytest.mark.services
@postgres_only
@pytest.mark.django_db(transaction=True)
def test_changes_committed_out_of_order_reach_other_processes():
    import subprocess
    import sys

    from tests.conftest import database_url_for_tests

    env = {**os.environ, "DATABASE_URL": database_url_for_tests(), "GATEHOUSE_ENV": "test"}
    script = str(Path(__file__).with_name("feed_reader.py"))
    readers = [
        subprocess.Popen([sys.executable, script, "lower", "higher"], stdout=subprocess.PIPE, text=True, env=env)
        for _ in range(2)
    ]
    try:
        for reader in readers:
            assert reader.stdout.readline().strip() == "ready"
        held = HeldTransaction(lambda: services.change_publish(topic="key", ref="lower"))
        in_thread(lambda: services.change_publish(topic="key", ref="higher"))
        for reader in readers:  # each process has polled past the lower id
            assert reader.stdout.readline().strip() == "higher"
        held.finish()
        for reader in readers:
            assert reader.stdout.readline().strip() == "lower"
            assert reader.wait(10) == 0
        assert ChangeEvent.objects.get(ref="lower").id < ChangeEvent.objects.get(ref="higher").id
    finally:
        for reader in readers:
            if reader.poll() is None:
                reader.kill()
                reader.wait()


@pytest.mark.services
@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_gap_outlives_the_horizon_while_the_transaction_that_may_fill_it_is_open():
    reader = ChangeFeed(ChangeFeedSettings(gap_horizon=0.3))
    reader.head()
    held = HeldTransaction(lambda: services.change_publish(topic="key", ref="slow"))
    in_thread(lambda: services.change_publish(topic="key", ref="quick"))
    assert [c.ref for c in reader.poll()] == ["quick"]
    time.sleep(0.6)  # the gap is past the horizon, but its transaction is still open
    assert reader.poll() == []
    kept = set(reader.gaps)
    held.finish()
    assert [c.ref for c in reader.poll()] == ["slow"]
    assert ChangeEvent.objects.get(ref="slow").id in kept


@pytest.mark.services
@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_revocation_committed_out_of_order_is_enforced():
    """The gateway's wiring in small: feed -> key cache invalidation -> authenticate."""
    org = services.organization_create(name="Revoke Org")
    issued = services.api_key_create(organization=org, name="app")
    reader = feed()
    reader.head()
    with ThreadPoolExecutor(4) as executor:
        keys = KeyCache(executor=executor)
        limiter = MemoryAuthLimiter()

        def check() -> str:
            async def run():
                try:
                    await authenticate(f"Bearer {issued.secret}", client="10.0.0.9", keys=keys, limiter=limiter)
                except GatewayError as exc:
                    return exc.code
                return "ok"

            return asyncio.run(run())

        def apply(changes):
            for change in changes:
                if change.topic == "key":
                    keys.invalidate(change.ref)

        assert check() == "ok"  # cached as valid
        held = HeldTransaction(lambda: services.api_key_revoke(key=issued.key))
        # A catalog change (providers publish outside any audited transaction) commits meanwhile.
        in_thread(lambda: services.change_publish(topic="catalog", ref="provider:sim"))
        apply(reader.poll())  # sees the later id only
        held.finish()
        apply(reader.poll())
        assert check() == "revoked_api_key"


# -- Redis announcements --------------------------------------------------------------------

redis_only = pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="REDIS_URL is not set")


@pytest.mark.services
@redis_only
@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_an_announced_change_is_applied_before_any_poll_and_not_again_by_the_poll():
    from django.conf import settings

    reader = ChangeFeed(ChangeFeedSettings.from_settings())
    await sync_to_async(reader.head)()
    applied: list[Change] = []
    arrived = asyncio.Event()
    ready = asyncio.Event()

    async def apply(changes):
        applied.extend(changes)
        arrived.set()

    listener = asyncio.create_task(reader.listen(apply, ready=ready))
    try:
        await asyncio.wait_for(ready.wait(), 5)
        assert settings.REDIS_URL
        await sync_to_async(services.change_publish)(topic="catalog", ref="announced")
        await asyncio.wait_for(arrived.wait(), 5)
        assert [c.ref for c in applied] == ["announced"]
        assert await sync_to_async(reader.poll)() == []
    finally:
        listener.cancel()
        with pytest.raises(asyncio.CancelledError):
            await listener
        await sync_to_async(connections.close_all)()


# -- through the running gateway --------------------------------------------------------------


@pytest.mark.services
@postgres_only
def test_the_gateway_refuses_a_key_whose_revocation_committed_out_of_order(demo):
    import httpx
    from django.conf import settings

    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    headers = {"authorization": f"Bearer {demo.secret}"}

    def status() -> tuple[int, str]:
        response = httpx.post(f"{demo.base_url}/chat/completions", json=body, headers=headers, timeout=10)
        code = response.json().get("error", {}).get("code", "") if response.status_code != 200 else ""
        return response.status_code, code

    assert status() == (200, "")  # the key is now cached as valid in the gateway
    held = HeldTransaction(lambda: services.api_key_revoke(key=demo.key))
    in_thread(lambda: services.change_publish(topic="catalog", ref="provider:sim"))
    time.sleep(settings.GATEHOUSE["CHANGE_POLL_INTERVAL"] * 4)  # the gateway polls past the revocation's id
    held.finish()
    deadline = time.monotonic() + 10
    while status() != (401, "revoked_api_key"):
        assert time.monotonic() < deadline, "the gateway still accepts a revoked key"
        time.sleep(0.1)

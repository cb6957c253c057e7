"""The usage journal: a worker killed with SIGKILL loses no record of a request that
reached the upstream; replay is idempotent and leaves live processes' files alone."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from budgets.journal import LOST_CODE, UsageJournal, journal_lines, replay
from budgets.models import UsageRecord
from budgets.pricing import cost_of
from budgets.usage import UsageEvent, UsageSink
from tests.budgets.helpers import database_unreachable
from tests.conftest import database_url_for_tests


def run_worker(directory: Path, scenario: str) -> subprocess.Popen:
    """Start the stand-in worker, wait until it has journaled, and return it (alive)."""
    from django.conf import settings

    env = {**os.environ, "DATABASE_URL": database_url_for_tests(), "GATEHOUSE_ENV": "test"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.budgets.journal_worker", str(directory), scenario],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    line = worker.stdout.readline()
    if line.strip() != b"ready":
        worker.kill()
        raise AssertionError(f"worker failed: {line!r} {worker.stderr.read().decode()[-2000:]}")
    return worker


def kill9(worker: subprocess.Popen) -> None:
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)
    assert worker.returncode == -signal.SIGKILL


def event(request_id: str | None = None, **values) -> UsageEvent:
    base = {
        "request_id": request_id or uuid.uuid4().hex,
        "created_at": datetime.now(UTC),
        "organization_id": 1,
        "endpoint": "chat",
        "status_code": 200,
    }
    return UsageEvent(**{**base, **values})


@pytest.mark.django_db(transaction=True)
def test_a_killed_worker_leaves_records_that_replay_writes_once(tmp_path):
    worker = run_worker(tmp_path, "streams")
    files = list(tmp_path.glob("usage-*.jsonl"))
    assert len(files) == 1 and f"usage-{worker.pid}-" in files[0].name
    # While the worker lives its file is locked: replay leaves it alone.
    report = replay(tmp_path)
    assert (report.live, report.files, report.written) == (1, 0, 0)
    kill9(worker)
    assert UsageRecord.objects.count() == 0

    report = replay(tmp_path)

    assert (report.files, report.records, report.lost, report.written) == (1, 4, 2, 4)
    records = {r.request_id: r for r in UsageRecord.objects.all()}
    assert set(records) == {"req-a", "req-b", "req-c", "req-d"}
    lost = records["req-a"]
    assert (lost.status_code, lost.error_code) == (502, LOST_CODE)
    assert (lost.organization_id, lost.team_id, lost.user_id, lost.key_id) == (42, 5, 6, 7)
    assert (lost.input_tokens, lost.output_tokens, lost.tokens_estimated) == (1000, 147, True)
    expected = cost_of(
        input_tokens=1000,
        output_tokens=147,
        cached_tokens=0,
        input_price=Decimal(3),
        output_price=Decimal(15),
        cached_input_price=Decimal("0.3"),
    )
    assert lost.cost == expected.total == Decimal("0.005205")
    assert lost.stream and lost.deployment_name == "claude-test@sim"
    assert records["req-d"].output_tokens == 300
    assert records["req-b"].status_code == 200 and records["req-b"].cost == Decimal("0.003540")
    assert records["req-c"].status_code == 404
    assert not list(tmp_path.glob("usage-*.jsonl"))  # the orphan is gone once stored

    again = replay(tmp_path)
    assert (again.files, again.written) == (0, 0)
    assert UsageRecord.objects.count() == 4


@pytest.mark.django_db(transaction=True)
def test_replay_leaves_stored_request_ids_untouched(tmp_path):
    journal = UsageJournal(tmp_path)
    journal.begin(event("req-x", input_tokens=10))
    journal.done(event("req-y", status_code=200, output_tokens=5))
    journal.close(flushed=False)  # as a crash would: the file stays, unlocked
    UsageRecord.objects.create(
        request_id="req-y", created_at=datetime.now(UTC), organization_id=1, endpoint="chat", status_code=201
    )
    report = replay(tmp_path)
    assert (report.records, report.written) == (2, 1)
    assert UsageRecord.objects.get(request_id="req-y").status_code == 201
    assert UsageRecord.objects.get(request_id="req-x").status_code == 502


@pytest.mark.django_db(transaction=True)
def test_rotation_keeps_files_small_and_running_requests_survive_it(tmp_path):
    worker = run_worker(tmp_path, "rotate")
    # The flush wrote three records and deleted the file that held them; one file remains.
    files = list(tmp_path.glob("usage-*.jsonl"))
    assert len(files) == 1
    assert UsageRecord.objects.count() == 3
    kinds = [orjson.loads(line)["t"] for line in journal_lines(files[0].read_bytes())]
    assert kinds == ["begin", "progress", "done"]  # req-r carried over, its progress, req-s4
    kill9(worker)

    report = replay(tmp_path)

    assert (report.records, report.lost, report.written) == (2, 1, 2)
    assert UsageRecord.objects.get(request_id="req-r").output_tokens == 147
    assert UsageRecord.objects.get(request_id="req-s4").status_code == 200
    assert UsageRecord.objects.count() == 5


@pytest.mark.django_db(transaction=True)
def test_a_live_journal_in_the_same_directory_is_left_alone(tmp_path):
    live = UsageSink(journal_dir=tmp_path, buffer_max=100)
    live.begin(event("req-live"))
    orphan = UsageJournal(tmp_path)
    orphan.done(event("req-orphan"))
    orphan.close(flushed=False)

    assert live.replay() == 1  # the orphan's record, not the running request of this process

    assert list(UsageRecord.objects.values_list("request_id", flat=True)) == ["req-orphan"]
    assert live.journal.path.exists()
    live.add(event("req-live"))
    assert live.flush_final() == 1
    assert not list(tmp_path.glob("usage-*.jsonl"))  # a clean shutdown leaves no file behind


@pytest.mark.django_db(transaction=True)
def test_a_cut_last_line_is_skipped_and_the_rest_replayed(tmp_path):
    journal = UsageJournal(tmp_path)
    journal.done(event("req-whole"))
    path = journal.path
    journal.close(flushed=False)
    with open(path, "ab") as handle:
        handle.write(b'{"t": "done", "rec": {"request_id": "req-cut", "crea')
    report = replay(tmp_path)
    assert (report.written, report.unreadable_lines) == (1, 1)
    assert list(UsageRecord.objects.values_list("request_id", flat=True)) == ["req-whole"]


def test_the_journal_directory_and_files_are_private(tmp_path):
    directory = tmp_path / "journal"
    journal = UsageJournal(directory)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(journal.path.stat().st_mode) == 0o600
    journal.close(flushed=True)
    assert not journal.path.exists()


@pytest.mark.django_db(transaction=True)
def test_a_shutdown_with_requests_running_keeps_the_file_for_replay(tmp_path):
    sink = UsageSink(journal_dir=tmp_path, buffer_max=100)
    sink.begin(event("req-running", input_tokens=50, input_price=Decimal(1)))
    sink.add(event("req-settled"))
    assert sink.flush_final() == 1
    assert len(list(tmp_path.glob("usage-*.jsonl"))) == 1
    assert UsageSink(journal_dir=tmp_path, buffer_max=100).replay() == 1
    assert UsageRecord.objects.get(request_id="req-running").error_code == LOST_CODE


def test_settings_name_a_journal_directory():
    from django.conf import settings

    assert isinstance(settings.GATEHOUSE["JOURNAL_DIR"], Path)
    assert settings.GATEHOUSE["JOURNAL_DIR"].name == "journal"


@pytest.mark.django_db(transaction=True)
def test_replay_keeps_the_files_while_the_database_is_unreachable(tmp_path):
    journal = UsageJournal(tmp_path)
    journal.begin(event("req-waiting", input_tokens=10))
    journal.close(flushed=False)
    with database_unreachable():
        report = replay(tmp_path)
    assert report.written == 0 and "unreachable" in report.errors[0]
    assert len(list(tmp_path.glob("usage-*.jsonl"))) == 1
    assert replay(tmp_path).written == 1
    assert UsageRecord.objects.filter(request_id="req-waiting", error_code=LOST_CODE).exists()


@pytest.mark.django_db(transaction=True)
def test_records_the_buffer_bound_dropped_come_back_from_the_journal(tmp_path, caplog):
    sink = UsageSink(journal_dir=tmp_path, buffer_max=3, rotate_bytes=0)
    records = [event() for _ in range(5)]
    for record in records:
        sink.add(record)
    with database_unreachable():
        assert sink.flush() == 0
    assert (len(sink), sink.dropped) == (3, 2)
    assert sink.flush() == 3  # the three still in memory
    assert set(UsageRecord.objects.values_list("request_id", flat=True)) == {r.request_id for r in records}
    sink.add(event("req-after"))
    assert sink.flush() == 1
    assert sink.flush_final() == 0
    assert not list(tmp_path.glob("usage-*.jsonl"))


@pytest.mark.django_db(transaction=True)
def test_a_begun_request_with_unstorable_text_is_journaled_and_replayed_storable(tmp_path):
    # A lone surrogate cannot be encoded as UTF-8: the begin entry is made storable first;
    # a model name too long and with a NUL is made storable when replayed.
    journal = UsageJournal(tmp_path)
    journal.begin(event("req-surrogate", model_requested="gpt-\ud800"))
    journal.begin(event("req-long", model_requested="m\x00" + "x" * 300))
    journal.close(flushed=False)
    report = replay(tmp_path)
    assert (report.records, report.written) == (2, 2)
    assert UsageRecord.objects.get(request_id="req-surrogate").model_requested.startswith("gpt-")
    long = UsageRecord.objects.get(request_id="req-long")
    assert "\x00" not in long.model_requested and len(long.model_requested) <= 200 and long.sanitized


def test_lines_are_readable_by_others_at_once_and_the_file_grows_past_its_reservation(tmp_path):
    """Lines go into a shared map of the file: another reader sees each one as soon as it
    is written (a killed process loses none), across several extensions of the file;
    a file kept for replay is cut to what was written."""
    from budgets.journal import GROW_BYTES

    journal = UsageJournal(tmp_path)
    journal.begin(event("req-first", input_tokens=10))
    content = journal.path.read_bytes()
    assert len(content) == GROW_BYTES and content.endswith(b"\0")  # reserved ahead, padded
    assert [orjson.loads(line)["rec"]["request_id"] for line in journal_lines(content)] == ["req-first"]
    ids = [f"req-{i:05d}" for i in range(3 * GROW_BYTES // 1000)]
    for rid in ids:
        journal.done(event(rid, metadata={"pad": "x" * 600}))
    lines = journal_lines(journal.path.read_bytes())
    assert [orjson.loads(line)["rec"]["request_id"] for line in lines] == ["req-first", *ids]
    size = sum(len(line) + 1 for line in lines)
    assert size > 3 * GROW_BYTES
    path = journal.path
    journal.close(flushed=False)
    assert path.stat().st_size == size  # no padding left behind
    with open(path, "ab") as handle:
        handle.write(b'{"t": "done", "rec": {"request_id": "req-cut"')  # a cut line after the last one
    assert len(journal_lines(path.read_bytes())) == len(lines) + 1


FULL_DISK = """
import os, resource, signal, sys
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gatehouse.settings")
django.setup()
from datetime import UTC, datetime
from budgets.journal import GROW_BYTES, UsageJournal
from budgets.usage import UsageEvent
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (GROW_BYTES + 1, GROW_BYTES + 1))
journal = UsageJournal(sys.argv[1])
for i in range(GROW_BYTES // 500):
    journal.done(UsageEvent(request_id=f"req-{i}", created_at=datetime.now(UTC), organization_id=1,
                            endpoint="chat", status_code=200, metadata={"pad": "x" * 600}))
journal.close(flushed=False)
print("survived")
"""


def test_a_file_that_cannot_grow_is_logged_and_the_process_goes_on(tmp_path):
    """No room for the next extension (here a file size limit; a full disk alike) fails
    the reservation, which is logged once, never a store into the map (SIGBUS)."""
    from django.conf import settings

    env = {**os.environ, "DATABASE_URL": database_url_for_tests(), "GATEHOUSE_ENV": "test"}
    done = subprocess.run(
        [sys.executable, "-c", FULL_DISK, str(tmp_path)],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "survived"
    assert done.stderr.count("cannot be written") == 1
    (path,) = tmp_path.glob("usage-*.jsonl")
    lines = journal_lines(path.read_bytes())
    assert 0 < len(lines) < 500 and orjson.loads(lines[0])["rec"]["request_id"] == "req-0"

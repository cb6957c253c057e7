"""Shared fixtures.

The gateway under test is the real ASGI application served by uvicorn on a
loopback port in a background thread; provider adapters reach the built-in
simulator through the same server over real HTTP. Data is created through the
services, never by hand.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass
from decimal import Decimal

import pytest  # noqa: E402


def pytest_configure(config) -> None:
    """On PostgreSQL, empty the tables between tests with DELETE instead of TRUNCATE."""
    from django.db.backends.postgresql.operations import DatabaseOperations

    truncate = DatabaseOperations.sql_flush

    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        # TRUNCATE of the ~150 tables took 0.3 s after every test that used the database
        # (a quarter of the PostgreSQL pass); DELETE of the few rows a test wrote takes
        # milliseconds. Django's foreign keys are deferrable, so the order does not matter
        # inside the one transaction `flush` runs these in. Asked to reset sequences,
        # Django's own statement is kept.
        if reset_sequences or not tables:
            return truncate(self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade)
        quote = self.quote_name
        return ["SET CONSTRAINTS ALL DEFERRED"] + [f"DELETE FROM {quote(table)}" for table in tables]

    DatabaseOperations.sql_flush = sql_flush
    _one_ssl_context_per_arguments()


def _one_ssl_context_per_arguments() -> None:
    """httpx builds a new SSL context for every client, loading the CA bundle: about 30 ms
    of CPU each, even for a client that only speaks plain HTTP to loopback. The suite makes
    thousands (every `httpx.post`, every SDK client): in the routing strategy tests 667
    contexts took 26 of 45 seconds. Built once per set of arguments, they serve every
    client alike (none of the suite's clients changes a context after it is built)."""
    import functools

    from httpx._transports import default

    default.create_ssl_context = functools.lru_cache(maxsize=16)(default.create_ssl_context)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerThread:
    """uvicorn serving an ASGI app in a thread, started and stopped explicitly."""

    def __init__(self, app, port: int) -> None:
        import uvicorn

        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", loop="asyncio")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def gateway_server(django_db_setup, django_db_blocker):
    """The whole Gatehouse app (console, /v1, /sim) on a loopback port."""
    from django.conf import settings

    port = free_port()
    settings.GATEHOUSE["SIMULATOR"] = True
    settings.GATEHOUSE["SIMULATOR_URL"] = f"http://127.0.0.1:{port}/sim"
    # Tests run probe rounds themselves (tests/evals/test_health_probe.py), never on a timer.
    settings.GATEHOUSE["HEALTH_PROBE"]["enabled"] = False
    from gatehouse.asgi import GatehouseApp

    global _server_gateway
    app = GatehouseApp()
    with django_db_blocker.unblock():
        server = ServerThread(app, port).start()
    server.gateway = _server_gateway = app.gateway
    yield server
    _server_gateway = None
    with django_db_blocker.unblock():
        server.stop()
        close_pools()


def close_pools() -> None:
    """Close pooled connections other threads opened, so the test database can be dropped."""
    from django.db import connections

    for connection in connections.all():
        if getattr(connection, "pool", None) is not None:
            connection.close_pool()


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """New passwords are hashed with MD5 in tests (Django's advice for test suites): the
    default PBKDF2 with a million iterations took about 0.3 s per user, and most fixtures
    create several. Hashes made by other processes (PBKDF2) still verify."""
    from django.contrib.auth.hashers import get_hashers

    default = [f"{type(h).__module__}.{type(h).__name__}" for h in get_hashers()]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *default]


@pytest.fixture
def _django_db_helper(_django_db_helper):
    """pytest-django's database fixture, wrapped: before it empties the tables after a
    test, the gateway server writes what its background loops still hold (usage
    records, budget settlements) and pauses them until the next database test, so no
    write of the last request races the flush."""
    gateway = _server_gateway
    if gateway is not None:
        gateway.call_soon(gateway.resume_background)
    yield _django_db_helper
    gateway = _server_gateway
    if gateway is not None:
        gateway.call_soon(gateway.drain)
        # No background job may write while the tables are emptied: on PostgreSQL a
        # budget alert written during the TRUNCATE deadlocked it (and the next test
        # found the last one's rows). They start again with the next database test.
        gateway.call_soon(gateway.pause_background)
        # Tests share 127.0.0.1: one test's bad keys must not count against the next.
        gateway.call_soon(lambda: gateway.auth_limiter.reset("127.0.0.1"))


# The gateway of the session's test server (tests reach it to drain and refresh it).
_server_gateway = None


def server_gateway():
    return _server_gateway


def sim_control_headers() -> dict[str, str]:
    """The admin token the simulator's `/_control` endpoint asks for."""
    from django.conf import settings

    return {"authorization": f"Bearer {settings.GATEHOUSE['SIMULATOR_CONTROL_TOKEN']}"}


def gateway_sync() -> None:
    """Make the gateway see the database as it is now (instead of waiting for its poll)."""
    if _server_gateway is not None:
        _server_gateway.refresh_now()


def usage_wait(request_id: str, timeout: float = 5.0):
    """The usage record of a request, once the batch writer has written it."""
    from budgets.models import UsageRecord

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = UsageRecord.objects.filter(request_id=request_id).first()
        if record is not None:
            return record
        time.sleep(0.05)
    raise AssertionError(f"no usage record for {request_id} after {timeout}s")


@dataclass
class Demo:
    org: object
    owner: object
    team: object
    key: object
    secret: str
    base_url: str


FAST = {"x-sim-latency-scale": "0"}


def demo_build(*, base_url: str, suffix: str = "") -> Demo:
    """An organization with an owner, a team, simulator providers for each wire
    format, a few priced models with deployments and a key — through services."""
    from console import services as console_services
    from providers import services as provider_services

    owner = console_services.user_create(username=f"owner{suffix}", email="owner@example.com", password="pw-Owner-123")
    org = console_services.organization_create(name=f"Acme{suffix}", owner=owner)
    team = console_services.team_create(organization=org, name="Research", actor=owner)
    wires = {
        "openai": "sim://openai/v1",
        "anthropic": "sim://anthropic",
        "gemini": "sim://gemini/v1beta",
        "azure_openai": "sim://azure",
    }
    providers = {
        kind: provider_services.provider_create(
            name=f"sim-{kind}{suffix}", kind=kind, base_url=url, secret="sim-secret", extra_headers=FAST
        )
        for kind, url in wires.items()
    }
    models = [
        ("gpt-4o-mini", "openai", "0.15", "0.60", "0.075", ["chat", "streaming", "tools", "json_mode", "vision"]),
        ("claude-sonnet-4-6", "anthropic", "3", "15", "0.30", ["chat", "streaming", "tools", "json_mode"]),
        ("gemini-3.1-pro", "gemini", "2", "12", "0.50", ["chat", "streaming", "tools", "json_mode"]),
        ("gpt-5.5", "azure_openai", "15", "60", "1.5", ["chat", "streaming", "tools", "json_mode"]),
        ("text-embedding-3-small", "openai", "0.02", "0", "0", ["embeddings"]),
    ]
    for name, kind, price_in, price_out, price_cached, caps in models:
        card, _ = provider_services.model_card_upsert(
            name=name,
            vendor=kind,
            input_price=Decimal(price_in),
            output_price=Decimal(price_out),
            cached_input_price=Decimal(price_cached),
            capabilities=caps,
        )
        provider = providers[kind]
        if not card.deployments.filter(provider=provider).exists():
            provider_services.deployment_create(model=card, provider=provider, name=f"{name}@{provider.name}")
    issued = console_services.api_key_create(organization=org, name="demo app", team=team, user=owner, actor=owner)
    gateway_sync()
    return Demo(org=org, owner=owner, team=team, key=issued.key, secret=issued.secret, base_url=base_url + "/v1")


@pytest.fixture
def demo(gateway_server, transactional_db) -> Demo:
    return demo_build(base_url=gateway_server.url)


def database_url_for_tests() -> str:
    """DATABASE_URL of the test database, for processes the tests start."""
    from django.db import connection

    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}" if db["NAME"].startswith("/") else f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, gateway_server, tmp_path_factory):
    """A real Celery worker in its own process, on the test database and the
    configured broker (Redis when REDIS_URL is set, the filesystem otherwise); its
    `sim://` providers reach the simulator of the test server."""
    import subprocess
    import sys

    from django.conf import settings

    env = {
        **os.environ,
        "DATABASE_URL": database_url_for_tests(),
        "GATEHOUSE_ENV": "test",
        "GATEHOUSE_SIMULATOR_URL": settings.GATEHOUSE["SIMULATOR_URL"],
    }
    log = tmp_path_factory.mktemp("celery") / "worker.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "gatehouse",
                "worker",
                "--loglevel=info",
                "--concurrency=1",
                "--pool=solo",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while b"ready" not in log.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("the Celery worker did not start:\n" + log.read_text()[-3000:])
        time.sleep(0.2)
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()

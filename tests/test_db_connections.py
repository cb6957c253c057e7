"""`connections_repair`: the writer thread keeps a healthy connection, and loses a broken one."""

from __future__ import annotations

import pytest
from django.db import OperationalError, connection

from gatehouse.db import connections_repair


def one() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_a_healthy_connection_is_kept():
    one()
    raw = connection.connection
    connections_repair()
    assert connection.connection is raw
    assert one() == 1 and connection.connection is raw


@pytest.mark.django_db(transaction=True)
def test_a_connection_left_with_autocommit_off_is_closed():
    one()
    connection.set_autocommit(False)
    connections_repair()
    assert connection.connection is None
    assert one() == 1 and connection.get_autocommit()


@pytest.mark.django_db(transaction=True)
def test_a_connection_that_no_longer_answers_is_replaced():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (a server that can end the session)")
    one()
    raw = connection.connection
    with pytest.raises(OperationalError), connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")
    assert connection.errors_occurred
    connections_repair()
    assert connection.connection is None
    assert one() == 1 and connection.connection is not raw

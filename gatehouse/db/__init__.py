"""Database backends of Gatehouse (the embedded SQLite default, with one change), and
connection care for the gateway's own long-lived threads."""

from __future__ import annotations

from django.db import connections


def connections_repair() -> None:
    """Close this thread's connections that cannot be used any more; keep the healthy ones.

    Django's own check (`close_if_unusable_or_obsolete`, what `close_old_connections`
    runs), without its age limit: `CONN_MAX_AGE` is 0 here, which closes every
    connection after each use and suits request threads. The gateway's writer and
    poller threads live as long as the process and run every fraction of a second:
    reconnecting each time cost more than their work (on SQLite a file open and its
    PRAGMAs). A connection left with autocommit off, or that saw an error and no
    longer answers, is still closed, so the next query opens a fresh one.
    """
    for conn in connections.all(initialized_only=True):
        conn.close_at = None  # kept however old; set again when it reconnects
        conn.close_if_unusable_or_obsolete()

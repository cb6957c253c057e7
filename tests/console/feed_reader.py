"""A gateway process's view of the change feed, in its own process, for the tests.

    python tests/console/feed_reader.py REF [REF ...]

Prints `ready` once it has its cursor, then each awaited ref the feed delivers, one
per line, in the order delivered; exits when it has seen them all (or after 20 s).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gatehouse.settings")

import django  # noqa: E402

django.setup()

from console.changes import ChangeFeed, ChangeFeedSettings  # noqa: E402


def main(wanted: set[str]) -> None:
    feed = ChangeFeed(ChangeFeedSettings())
    feed.head()
    print("ready", flush=True)
    deadline = time.monotonic() + 20
    while wanted and time.monotonic() < deadline:
        for change in feed.poll():
            if change.ref in wanted:
                wanted.discard(change.ref)
                print(change.ref, flush=True)
        time.sleep(0.02)


if __name__ == "__main__":
    main(set(sys.argv[1:]))

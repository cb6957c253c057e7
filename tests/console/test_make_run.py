"""`make run` under a terminal: Ctrl-C stops everything and make reports no error.

The recipe runs for real (make, bash, its trap) in a pseudo-terminal; only the
three long-running programs are stand-ins (processes that wait for a signal),
so the test needs no server and takes a second or two.
"""

from __future__ import annotations

import os
import pty
import select
import shutil
import signal
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent

STANDIN = """#!/bin/bash
# Stand-in: manage.py steps finish at once; long-running programs wait like a server.
case "$*" in
  *migrate*|*seed_demo*|*seed_usage*|*evals_seed*) echo "stand-in: $*"; exit 0 ;;
esac
echo "stand-in running: $(basename "$0") $1"
exec sleep 300
"""


def _read(fd: int, seconds: float, until: bytes = b"") -> bytes:
    """What the terminal shows within `seconds`, or until `until` has appeared (output ended: stop)."""
    out = b""
    end = time.monotonic() + seconds
    while time.monotonic() < end and not (until and out.count(until) >= 3):
        ready, _, _ = select.select([fd], [], [], 0.1)
        if not ready:
            continue
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        out += data
    return out


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_ctrl_c_ends_make_run_cleanly_with_a_clean_message(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    for name in ("python", "celery", "uvicorn"):
        path = venv / "bin" / name
        path.write_text(STANDIN)
        path.chmod(0o755)
    (venv / ".runtime").touch()  # newer than requirements.txt: no install step

    pid, fd = pty.fork()
    if pid == 0:  # the child: make in a terminal of its own, as a person runs it
        # As in a person's shell, SIGINT is neither ignored nor blocked, whatever state the
        # test process is in (a runner started in the background of a shell without job
        # control ignores it; a blocked or ignored signal stays so across exec, and a
        # non-interactive shell cannot trap a signal it was started with ignored).
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        os.chdir(ROOT)
        os.execvp("make", ["make", "--no-print-directory", "run", f"VENV={venv}", "PORT=8999", "WORKERS=1"])
    try:
        output = _read(fd, 20.0, until=b"stand-in running")  # celery, uvicorn and demo traffic
        assert b"stand-in running" in output, output.decode(errors="replace")
        os.write(fd, b"\x03")  # Ctrl-C: the terminal signals the whole foreground group
        output += _read(fd, 20.0)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    text = output.decode(errors="replace")
    assert "Gatehouse stopped." in text
    assert "make: ***" not in text and "Segmentation fault" not in text
    assert "console login: see the seed output above" in text
    assert os.waitstatus_to_exitcode(status) in (0, -2, 130)  # make itself ends from the interrupt

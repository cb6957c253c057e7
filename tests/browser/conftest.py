"""Headless Chromium (Debian's package) for the console's end-to-end tests.

pytest-playwright never downloads a browser here: it drives /usr/bin/chromium.
The test bodies query the database while Playwright's event loop runs in the
same thread, which Django refuses unless told that this is intended — for these
tests only: everywhere else a synchronous ORM call on an event loop must fail.

Playwright's sync API keeps an event loop running for as long as it is started.
pytest-playwright starts it once per session, which would leave that loop running
under every async test collected after this folder; here it lives per module.
"""

from __future__ import annotations

import os

import pytest

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module", autouse=True)
def _allow_orm_beside_playwright_loop():
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict:
    return {
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-gpu",
        ],
        "headless": True,
    }


@pytest.fixture(scope="module")
def playwright():
    from playwright.sync_api import sync_playwright

    driver = sync_playwright().start()
    yield driver
    driver.stop()


@pytest.fixture(scope="module")
def browser(playwright, browser_type_launch_args):
    chromium = playwright.chromium.launch(**browser_type_launch_args)
    yield chromium
    chromium.close()


@pytest.fixture(scope="module")
def browser_context_args() -> dict:
    return {"viewport": {"width": 1280, "height": 900}}

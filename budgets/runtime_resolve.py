"""Completing a waiting admission from the commit loop."""

from __future__ import annotations

import asyncio
from typing import Any


def _resolve(future: asyncio.Future, value: Any) -> None:
    if future.done():
        return
    if isinstance(value, BaseException):
        future.set_exception(value)
    else:
        future.set_result(value)

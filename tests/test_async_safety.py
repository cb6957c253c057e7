"""The data plane's promise — no synchronous ORM query on the event loop — is
guarded: outside the browser tests, such a query fails loudly."""

from __future__ import annotations

import os

import pytest
from django.core.exceptions import SynchronousOnlyOperation

from console.models import Organization


def test_the_suite_does_not_allow_synchronous_orm_calls_on_the_event_loop():
    assert os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE") is None


@pytest.mark.asyncio
@pytest.mark.django_db
async def test_a_synchronous_query_on_the_event_loop_is_refused():
    with pytest.raises(SynchronousOnlyOperation):
        Organization.objects.count()

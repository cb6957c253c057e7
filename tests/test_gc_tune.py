"""The served app tunes the cyclic garbage collector once its gateway has started."""

from __future__ import annotations

import gc

import httpx

from gatehouse.asgi import GC_YOUNG_THRESHOLD, gc_tune


def test_after_start_up_the_heap_is_frozen_and_young_collections_are_rarer(demo):
    assert httpx.get(demo.base_url + "/models", headers={"authorization": f"Bearer {demo.secret}"}).status_code == 200
    assert gc.get_freeze_count() > 10_000  # Django, the guard's recognizers, the snapshots
    assert gc.get_threshold()[0] == GC_YOUNG_THRESHOLD
    frozen = gc.get_freeze_count()
    gc_tune()  # once per process: a second server start freezes nothing more
    assert gc.get_freeze_count() == frozen

"""Ordering a route's candidates around ejected deployments: never more than the
route's max ejection percent left out, and panic mode when all of them are."""

from __future__ import annotations

import pytest

from routing.engine.rules import RequestFacts
from routing.engine.snapshot import CompiledRoute
from routing.engine.state import Health
from routing.pipeline.route import ejection_allowance, order_candidates
from tests.routing.test_strategies import candidate

NOW = 1_000_000.0
FACTS = RequestFacts(body={}, requested="r", tags=[], workflow="", key_prefix="", key_name="", team_id=None)


def route(n: int, *, percent: int | None) -> CompiledRoute:
    candidates = tuple(candidate(i) for i in range(1, n + 1))
    return CompiledRoute(
        name="r",
        kind="standard",
        strategy="weighted",
        candidates=candidates,
        by_class={},
        fallbacks={},
        max_attempts=0,
        exploration=0.0,
        max_ejection_percent=percent,
    )


def ejected(times: int = 1, *, left: float = 30.0) -> Health:
    return Health(opened=True, open_until=NOW + left, ejections=times)


def order(r: CompiledRoute, health: dict[int, Health]):
    return order_candidates(r, r.candidates, health, ticket=0, stream=False, facts=FACTS, now=NOW)


@pytest.mark.parametrize(
    ("total", "percent", "allowed"), [(1, 50, 1), (2, 50, 1), (4, 50, 2), (10, 10, 1), (10, 35, 3), (5, 0, 0)]
)
def test_allowance_is_the_share_rounded_down_but_at_least_one(total, percent, allowed):
    assert ejection_allowance(total, percent) == allowed


def test_an_ejected_deployment_is_left_out():
    r = route(2, percent=50)
    found = order(r, {1: ejected()})
    assert [c.id for c in found.ordered] == [2]
    assert [c.id for c in found.ejected] == [1] and not found.panic


def test_never_more_than_the_max_percent_is_left_out():
    r = route(4, percent=50)
    found = order(r, {1: ejected(1), 2: ejected(3), 3: ejected(2)})
    # Two of four may be out: the ones ejected most often; the third is readmitted.
    assert {c.id for c in found.ejected} == {2, 3}
    assert [c.id for c in found.readmitted] == [1]
    assert {c.id for c in found.ordered} == {1, 4} and not found.panic


def test_panic_mode_routes_to_every_deployment_when_all_are_ejected():
    r = route(2, percent=100)
    found = order(r, {1: ejected(), 2: ejected()})
    assert found.panic
    assert {c.id for c in found.ordered} == {1, 2}


def test_a_single_ejected_deployment_is_used_in_panic_mode():
    r = route(1, percent=None)
    found = order(r, {1: ejected()})
    assert found.panic and [c.id for c in found.ordered] == [1]


def test_a_finished_ejection_waits_for_its_probe():
    r = route(2, percent=50)
    found = order(r, {1: ejected(left=-1.0)})
    assert [c.id for c in found.half_open] == [1] and [c.id for c in found.ordered] == [2]


def test_zero_percent_turns_ejection_off_for_the_route():
    r = route(2, percent=0)
    found = order(r, {1: ejected(), 2: ejected()})
    assert {c.id for c in found.ordered} == {1, 2} and not found.panic and len(found.readmitted) == 2

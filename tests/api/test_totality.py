"""The management API is total: inputs the fuzzer found to break it get a 400 (or a
normal answer), never a 500, and every unknown `/api/` path answers in JSON."""

from __future__ import annotations

import pytest

from tests.api.conftest import client_for

pytestmark = pytest.mark.django_db

EXTREME_TIMES = [
    "0001-01-01T00:00:00-23:00",
    "0001-01-01T00:00:00+23:00",
    "9999-12-31T23:59:59-23:00",
    "9999-12-31T23:59:59+23:00",
]


@pytest.mark.parametrize("since", EXTREME_TIMES)
@pytest.mark.parametrize("path", ["/api/v1/usage/", "/api/v1/usage/summary/"])
def test_usage_filters_at_the_edges_of_time_never_fail(a, path, since) -> None:
    client = client_for(a.owner, a.org)
    for params in ({"since": since}, {"until": since}):
        response = client.get(path, params)
        assert response.status_code in (200, 400), response.content[:300]
        assert response["content-type"].startswith("application/json")


@pytest.mark.parametrize(
    "query", ["limit=abc", "limit=0", "limit=-5", "offset=-1", "offset=null", "limit=", "offset=99999999999999999999"]
)
def test_pagination_parameters_outside_the_schema_are_refused(a, query) -> None:
    response = client_for(a.owner, a.org).get(f"/api/v1/teams/?{query}")
    assert response.status_code == 400
    assert set(response.json()) <= {"limit", "offset"}


def test_pagination_within_the_schema_is_served(a) -> None:
    response = client_for(a.owner, a.org).get("/api/v1/teams/?limit=1&offset=0")
    assert response.status_code == 200 and len(response.json()["results"]) == 1


def test_unknown_api_paths_answer_json_404_even_to_a_post_without_csrf(a) -> None:
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(a.owner)
    for method, path in [("get", "/api/v1/teams/x/"), ("post", "/api/v1/nothing/"), ("delete", "/api/v1/keys/%C2%84/")]:
        response = getattr(client, method)(path)
        assert response.status_code == 404, (method, path)
        assert response.json() == {"detail": "Not found."}


def test_bodies_are_json_only_and_fields_take_their_published_types(a) -> None:
    client = client_for(a.owner, a.org)
    form = client.post("/api/v1/teams/", {"name": "by form"})
    assert form.status_code == 415
    for body, field in [
        ({"name": 0}, "name"),
        ({"name": "t", "description": 5}, "description"),
    ]:
        response = client.post("/api/v1/teams/", body, format="json")
        assert response.status_code == 400 and field in response.json(), body
    money = client.post(
        "/api/v1/budgets/", {"scope": "team", "scope_id": a.team.id, "amount": 5.5, "hard": 1}, format="json"
    )
    assert money.status_code == 400 and {"amount", "hard"} <= set(money.json())


def test_every_operation_documents_the_errors_it_answers(db) -> None:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    assert "Error" in schema["components"]["schemas"]
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            codes = set(operation["responses"])
            assert {"401", "403", "404", "406"} <= codes, (method, path)
            if "requestBody" in operation:
                assert {"400", "415", "409"} <= codes, (method, path)


def test_a_revoked_key_cannot_change_and_says_so_with_409(a) -> None:
    from console import services

    services.api_key_revoke(key=a.member_key, actor=a.owner)
    response = client_for(a.owner, a.org).patch(f"/api/v1/keys/{a.member_key.id}/", {"name": "x"}, format="json")
    assert response.status_code == 409 and "revoked" in response.json()["detail"]


def test_a_read_without_its_trailing_slash_is_still_redirected(a) -> None:
    response = client_for(a.owner, a.org).get("/api/v1/teams?limit=1")
    assert response.status_code == 301 and response["Location"] == "/api/v1/teams/?limit=1"


def test_nul_characters_are_refused_before_any_database_sees_them(a) -> None:
    """PostgreSQL refuses NUL in text and jsonb: the API answers 400/404 on every database."""
    client = client_for(a.owner, a.org)
    body = client.post("/api/v1/keys/", {"name": "k", "metadata": {"a\u0000": "b"}}, format="json")
    assert body.status_code == 400 and "NUL" in body.json()["detail"]
    nested = client.post("/api/v1/teams/", {"name": "t", "description": ["x\u0000"]}, format="json")
    assert nested.status_code == 400
    assert client.get("/api/v1/usage/req%00x/").status_code == 404
    assert client.get("/api/v1/models/gpt%00x/").status_code == 404
    query = client.get("/api/v1/usage/", {"model": "gpt\u0000"})
    assert query.status_code == 400 and "model" in query.json()


def test_integers_beyond_what_the_database_stores_are_refused_not_a_500(a) -> None:
    client = client_for(a.owner, a.org)
    huge = 2**70
    for url, body in [
        ("/api/v1/rate-limits/", {"scope": "team", "scope_id": a.team.id, "rpm": huge}),
        ("/api/v1/rate-limits/", {"scope": "team", "scope_id": huge, "rpm": 5}),
        ("/api/v1/keys/", {"name": "k", "team": huge}),
        ("/api/v1/deployments/", {"model": "gpt-test", "provider": a.provider.id, "weight": huge}),
    ]:
        assert client.post(url, body, format="json").status_code == 400, body
    assert client.get("/api/v1/usage/", {"key": huge}).status_code == 400
    assert client.get(f"/api/v1/teams/{huge}/").status_code == 404
    assert client.get("/api/v1/ledger/leaves/", {"start": huge, "end": huge + 1}).status_code in (400, 404)

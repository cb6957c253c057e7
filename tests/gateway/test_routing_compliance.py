"""Data classification and the compliance matrix over real HTTP: a request's class is
the highest of header, key default and detector; candidates not approved for it are
removed before the strategy runs; none left is a 403 naming the class."""

from __future__ import annotations

import pytest

from console.services import api_key_create
from tests.conftest import gateway_sync, usage_wait
from tests.routing.support import chat, model_card, policy, reset_state, sim_deployment


@pytest.fixture
def matrix(demo):
    card = model_card("matrix-model")
    public = sim_deployment(card, "matrix@public-cloud")
    private = sim_deployment(card, "matrix@private")
    reset_state(public, private)
    policy(
        demo.org,
        demo.owner,
        routes=[
            {
                "name": "assistant",
                "targets": [{"deployment": public.name, "weight": 1000}, {"deployment": private.name, "weight": 1}],
            }
        ],
        matrix={
            public.name: ["public", "internal"],
            private.name: ["public", "internal", "confidential", "pii"],
            "gpt-4o-mini": ["public", "internal"],
        },
    )
    return public, private


def test_detected_pii_removes_unapproved_deployments(demo, matrix):
    public, private = matrix
    plain = chat(demo, "assistant")
    assert plain.headers["x-gatehouse-deployment"] == public.name
    assert plain.headers["x-gatehouse-data-classification"] == "internal"
    for _ in range(5):
        message = {"role": "user", "content": "Mail jane.doe@example.com the offer"}
        response = chat(demo, "assistant", messages=[message])
        assert response.status_code == 200
        assert response.headers["x-gatehouse-deployment"] == private.name
        assert response.headers["x-gatehouse-data-classification"] == "pii"
    record = usage_wait(response.headers["x-request-id"])
    assert record.metadata["routing"]["data_class"] == "pii"
    assert record.metadata["routing"]["detected"] == ["email"]
    assert "jane.doe" not in str(record.metadata)


def test_no_compliant_model_is_403_naming_the_class(demo, matrix):
    response = chat(demo, "gpt-4o-mini", messages=[{"role": "user", "content": "Card 4111 1111 1111 1111, exp 12/29"}])
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "no_compliant_model" and "'pci'" in error["message"]
    record = usage_wait(response.headers["x-request-id"])
    assert record.status_code == 403 and record.error_code == "no_compliant_model"


def test_header_and_key_default_raise_the_class(demo, matrix):
    public, private = matrix
    response = chat(demo, "assistant", headers={"x-data-classification": "confidential"})
    assert response.headers["x-gatehouse-deployment"] == private.name
    response = chat(demo, "assistant", headers={"x-data-classification": "restricted"})
    assert response.status_code == 403 and "'restricted'" in response.json()["error"]["message"]
    # A header can only raise the class: the key's default still counts.
    issued = api_key_create(organization=demo.org, name="phi app", data_classification="phi")
    gateway_sync()
    response = chat(
        demo, "assistant", headers={"authorization": f"Bearer {issued.secret}", "x-data-classification": "public"}
    )
    assert response.status_code == 403 and "'phi'" in response.json()["error"]["message"]


def test_unknown_classification_header_is_400(demo, matrix):
    response = chat(demo, "assistant", headers={"x-data-classification": "top-secret"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_data_classification"


def test_checksums_keep_lookalike_numbers_public(demo, matrix):
    public, _ = matrix
    # Fails the Luhn check, and an order number is not a card.
    response = chat(demo, "assistant", messages=[{"role": "user", "content": "Order 4111 1111 1111 1112 shipped"}])
    assert response.headers["x-gatehouse-deployment"] == public.name

"""The ledger API: checkpoints, proofs, leaves and export, each scoped to the caller's organization."""

from __future__ import annotations

import base64
import json

import pytest
from rest_framework.test import APIClient

from audit.selectors import checkpoint_latest
from audit.verifier import gatehouse_verify as gv
from tests.audit.conftest import org_make, seal

pytestmark = pytest.mark.django_db


def client_for(user, org) -> APIClient:
    client = APIClient()
    client.force_login(user)
    client.credentials(HTTP_X_GATEHOUSE_ORGANIZATION=org.slug)
    return client


@pytest.fixture
def two():
    org_a, owner_a = org_make("Tenant A")
    org_b, owner_b = org_make("Tenant B")
    log_a, ids_a = seal(org_a.id, 30, rounds=3)
    log_b, ids_b = seal(org_b.id, 10)
    return {"a": (org_a, owner_a, log_a, ids_a), "b": (org_b, owner_b, log_b, ids_b)}


def unb64(items):
    return [base64.b64decode(x) for x in items]


def test_checkpoint_latest_and_by_size_are_signed_notes(two):
    org, owner, log, _ = two["a"]
    client = client_for(owner, org)
    latest = client.get("/api/v1/ledger/checkpoint/").json()
    assert latest["size"] == log.size and latest["origin"] == log.origin
    cp = gv.note_parse(latest["note"])
    keys, _ = gv.keys_load(client.get("/.well-known/gatehouse-ledger-keys.json").json())
    assert gv.note_verify(cp, keys).key_id.hex() == latest["key_id"]
    older = log.checkpoints.order_by("size").first()
    assert client.get(f"/api/v1/ledger/checkpoint/?size={older.size}").json()["size"] == older.size
    note = client.get("/api/v1/ledger/checkpoint/?output=note")
    assert note["content-type"].startswith("text/plain") and note.content.decode() == latest["note"]
    assert client.get("/api/v1/ledger/checkpoint/?size=99999").status_code == 404
    assert client.get("/api/v1/ledger/checkpoint/?size=abc").status_code == 400


def test_inclusion_proof_by_request_id_and_by_index_verifies(two):
    org, owner, log, ids = two["a"]
    client = client_for(owner, org)
    for query in (f"request_id={ids[7]}", "index=3"):
        body = client.get(f"/api/v1/ledger/inclusion/?{query}").json()
        cp = gv.note_parse(body["checkpoint"])
        assert gv.verify_inclusion(
            body["index"], body["tree_size"], gv.leaf_hash(body["leaf"].encode()), unb64(body["proof"]), cp.root
        )
    older = log.checkpoints.order_by("size").first()
    body = client.get(f"/api/v1/ledger/inclusion/?index=0&size={older.size}").json()
    assert body["tree_size"] == older.size
    assert client.get(f"/api/v1/ledger/inclusion/?index={log.size - 1}&size={older.size}").status_code == 400
    assert client.get("/api/v1/ledger/inclusion/?request_id=nope").status_code == 404
    assert client.get("/api/v1/ledger/inclusion/").status_code == 400


def test_consistency_proof_between_two_sizes_verifies(two):
    org, owner, log, _ = two["a"]
    client = client_for(owner, org)
    sizes = list(log.checkpoints.order_by("size").values_list("size", "root_hash"))
    (s1, r1), (s2, r2) = sizes[0], sizes[-1]
    body = client.get(f"/api/v1/ledger/consistency/?first={s1}&second={s2}").json()
    assert gv.verify_consistency(s1, s2, bytes.fromhex(r1), bytes.fromhex(r2), unb64(body["proof"]))
    assert client.get(f"/api/v1/ledger/consistency/?first={s2}&second={s1}").status_code == 400
    assert client.get(f"/api/v1/ledger/consistency/?first={s1}&second=77777").status_code == 404


def test_leaves_by_range_are_canonical_and_bounded(two):
    org, owner, log, _ = two["a"]
    client = client_for(owner, org)
    leaves = client.get("/api/v1/ledger/leaves/?start=2&end=6").json()
    assert [x["index"] for x in leaves] == [2, 3, 4, 5]
    assert all(gv.leaf_is_canonical(x["leaf"]) for x in leaves)
    assert all(gv.leaf_hash(x["leaf"].encode()).hex() == x["leaf_hash"] for x in leaves)
    assert client.get("/api/v1/ledger/leaves/?start=0&end=5000").status_code == 400
    assert client.get("/api/v1/ledger/leaves/?start=5&end=2").status_code == 400


def test_export_endpoint_gives_what_the_verifier_accepts(two):
    org, owner, log, _ = two["a"]
    client = client_for(owner, org)
    response = client.get("/api/v1/ledger/export/")
    assert "attachment" in response["content-disposition"]
    doc = json.loads(response.content)
    keys, witnesses = gv.keys_load(client.get("/.well-known/gatehouse-ledger-keys.json").json())
    report = gv.export_verify(doc, keys, witnesses)
    assert report.ok and report.size == log.size
    assert client.get("/api/v1/ledger/export/?since=yesterday&until=now").status_code == 400


def test_an_organization_never_sees_another_organizations_log(two):
    org_a, owner_a, log_a, ids_a = two["a"]
    org_b, owner_b, log_b, ids_b = two["b"]
    client_b = client_for(owner_b, org_b)
    assert client_b.get(f"/api/v1/ledger/inclusion/?request_id={ids_a[0]}").status_code == 404
    assert client_b.get("/api/v1/ledger/checkpoint/").json()["origin"] == log_b.origin
    doc = json.loads(client_b.get("/api/v1/ledger/export/").content)
    assert doc["origin"] == log_b.origin
    assert not any(rid in json.dumps(doc) for rid in ids_a)
    assert all(json.loads(x["leaf"])["organization_id"] == org_b.id for x in doc["leaves"])
    # Tenant A's owner acting in B's organization is not a member there.
    assert client_for(owner_a, org_b).get("/api/v1/ledger/checkpoint/").status_code == 403


def test_members_cannot_read_the_ledger_api_and_anonymous_callers_only_the_keys(two):
    from console import services as console_services
    from console.models import Role

    org, owner, _, _ = two["a"]
    user = console_services.user_create(username="plain", email="p@example.com", password="pw-Plain-123")
    console_services.membership_set(organization=org, user=user, role=Role.MEMBER, actor=owner)
    assert client_for(user, org).get("/api/v1/ledger/checkpoint/").status_code == 403
    anonymous = APIClient()
    assert anonymous.get("/api/v1/ledger/checkpoint/").status_code in (401, 403)
    keys = anonymous.get("/.well-known/gatehouse-ledger-keys.json")
    assert keys.status_code == 200 and keys.json()["log_keys"][0]["algorithm"] == "ML-DSA-65"


def test_rotated_keys_stay_published_and_old_checkpoints_still_verify(two):
    from audit.signing import signing_key_rotate

    org, owner, log, _ = two["a"]
    old_checkpoint = checkpoint_latest(log)
    new_key = signing_key_rotate()
    seal(org.id, 3)
    client = client_for(owner, org)
    doc = client.get("/.well-known/gatehouse-ledger-keys.json").json()
    assert len(doc["log_keys"]) == 2
    assert doc["log_keys"][0]["valid_until"] and doc["log_keys"][1]["valid_until"] is None
    latest = client.get("/api/v1/ledger/checkpoint/").json()
    assert latest["key_id"] == new_key.key_id != old_checkpoint.key_id
    keys, witnesses = gv.keys_load(doc)
    export = json.loads(client.get("/api/v1/ledger/export/").content)
    assert gv.export_verify(export, keys, witnesses).ok

"""The OpenAPI schema: served, valid, complete, and generated without warnings."""

from __future__ import annotations

import json

import pytest
import yaml
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

from tests.api.conftest import client_for

pytestmark = pytest.mark.django_db

PATHS = {
    "/api/v1/organizations/",
    "/api/v1/organizations/{id}/",
    "/api/v1/teams/",
    "/api/v1/teams/{id}/",
    "/api/v1/teams/{id}/members/",
    "/api/v1/teams/{id}/members/{user_id}/",
    "/api/v1/members/",
    "/api/v1/members/{id}/",
    "/api/v1/invitations/",
    "/api/v1/invitations/{id}/",
    "/api/v1/keys/",
    "/api/v1/keys/{id}/",
    "/api/v1/keys/{id}/revoke/",
    "/api/v1/keys/{id}/rotate/",
    "/api/v1/tokens/",
    "/api/v1/tokens/{id}/",
    "/api/v1/tokens/{id}/revoke/",
    "/api/v1/models/",
    "/api/v1/models/{ref}/",
    "/api/v1/model-settings/",
    "/api/v1/model-settings/{ref}/",
    "/api/v1/providers/",
    "/api/v1/providers/{id}/",
    "/api/v1/deployments/",
    "/api/v1/deployments/{id}/",
    "/api/v1/usage/",
    "/api/v1/usage/{request_id}/",
    "/api/v1/usage/summary/",
    "/api/v1/budgets/",
    "/api/v1/budgets/{id}/",
    "/api/v1/budgets/{id}/periods/",
    "/api/v1/rate-limits/",
    "/api/v1/rate-limits/{id}/",
    "/api/v1/budget-alerts/",
    "/api/v1/budget-alerts/active/",
    "/api/v1/budget-alerts/{id}/dismiss/",
    "/api/v1/budget-alert-settings/",
    "/api/v1/focus",
    "/api/v1/chargeback",
    "/api/v1/outcomes",
    "/api/v1/ledger/checkpoint/",
    "/api/v1/ledger/inclusion/",
    "/api/v1/ledger/consistency/",
    "/api/v1/ledger/leaves/",
    "/api/v1/ledger/export/",
    "/api/v1/provider-facts/{id}/",
    "/api/v1/deployment-facts/{id}/",
    "/api/v1/certifications/",
    "/api/v1/certifications/{slug}/",
}


def test_schema_is_served_as_yaml_and_json_with_every_path():
    client = APIClient()
    response = client.get("/api/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    assert set(schema["paths"]) >= PATHS
    as_json = client.get("/api/schema/", {"format": "json"})
    assert as_json.status_code == 200
    assert set(json.loads(as_json.content)["paths"]) >= PATHS


def test_schema_documents_filters_pagination_and_write_only_secrets():
    schema = json.loads(APIClient().get("/api/schema/", {"format": "json"}).content)
    usage_params = {p["name"] for p in schema["paths"]["/api/v1/usage/"]["get"]["parameters"]}
    assert {"cursor", "page_size", "since", "until", "model", "key", "team", "user", "status", "tag"} <= usage_params
    model_params = {p["name"] for p in schema["paths"]["/api/v1/models/"]["get"]["parameters"]}
    assert {"tier", "vendor", "lifecycle", "capability", "search", "limit", "offset"} <= model_params
    components = schema["components"]["schemas"]
    assert "secret" not in components["ProviderOutput"]["properties"]
    assert "has_secret" in components["ProviderOutput"]["properties"]
    assert "secret" in components["ProviderCreateInputRequest"]["properties"]
    assert "secret" not in components["KeyOutput"]["properties"]
    assert "secret" in components["IssuedKeyOutput"]["properties"]
    assert components["ModelOutput"]["properties"]["input_price"]["type"] == "string"
    assert "adminToken" in schema["components"]["securitySchemes"]


def test_the_management_api_schema_is_valid_and_generates_without_warnings():
    GENERATOR_STATS.reset()
    schema = SchemaGenerator(urlconf="tests.api.urls").get_schema(request=None, public=True)
    assert not GENERATOR_STATS, "drf-spectacular reported warnings or errors for the management API"
    validate_schema(schema)
    assert set(schema["paths"]) == PATHS


def test_docs_page_is_served(a):
    response = APIClient().get("/api/docs/")
    assert response.status_code == 200
    assert b"swagger" in response.content.lower()


def test_the_browsable_api_and_options_work_for_a_signed_in_user(a):
    client = client_for(a.admin, a.org)
    assert client.get("/api/v1/keys/", HTTP_ACCEPT="text/html").status_code == 200
    assert client.options("/api/v1/keys/").status_code == 200

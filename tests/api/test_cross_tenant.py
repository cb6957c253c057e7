"""Cross-tenant suite: every member of organization A (owner, admin, finance, member, and
an owner's admin token) tries every verb of every management-API operation on organization
B's objects, and every console page that names an object by id. Each attempt is refused
(403 or 404), no answer carries B's data, and B's objects are unchanged afterwards.

The operations come from the published schema and the console pages from the URL conf, so
a new endpoint is covered the day it is added: one whose object kind this suite does not
know fails `test_every_object_kind_is_known` until B gets such an object below.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from tests.api.conftest import client_for, usage_event, usage_write

pytestmark = pytest.mark.django_db(transaction=True)

ROLES = ("owner", "admin", "finance", "member")
REFUSED = {403, 404}
# No API kind is global any more: the catalog's shared models are read by everyone by
# design, and B's private model stands for "models" below.
GLOBAL: set[str] = set()
# Console pages whose path parameter does not name another organization's object.
CONSOLE_COVERED_ELSEWHERE = {
    "providers:model-edit": "catalog cards: a platform operator's pages (tests/api/test_catalog_tenancy.py)",
    "providers:model-lifecycle": "catalog cards: a platform operator's pages (tests/api/test_catalog_tenancy.py)",
    "routing:version-detail": "versions are numbered per organization: a number names the caller's own",
    "routing:version-decide": "versions are numbered per organization: a number names the caller's own",
    "routing:version-rollback": "versions are numbered per organization: a number names the caller's own",
    "evals:model-detail": "a model name, not an object (scores are read for the caller's organization)",
    "console:invitation-accept": "a one-time token, not an id (tests/console/test_invitations.py)",
}


def b_objects(b) -> dict[str, object]:
    """One object of organization B per kind, made through the services; values are path ids."""
    from budgets import services as budget_services
    from budgets.alerts import Crossing, alerts_record
    from console import services

    token = services.admin_token_create(organization=b.org, user=b.owner, name="b token").token
    budget = budget_services.budget_create(
        organization=b.org, scope="team", scope_id=b.team.id, amount=Decimal("10"), actor=b.owner
    )
    limit = budget_services.rate_limit_set(organization=b.org, scope="team", scope_id=b.team.id, rpm=10)
    now = datetime.now(UTC)
    (alert_id,) = alerts_record(
        [Crossing(budget.id, b.org.id, now, None, threshold=50, spent_units=5, limit_units=10)]
    ) or (None,)
    from evals import services as eval_services
    from workspace import services as workspace_services
    from workspace.personas import persona_save

    conversation = workspace_services.conversation_create(
        organization=b.org, user=b.member, model="gpt-test", title="B secret chat"
    )
    fact = workspace_services.memory_add(organization=b.org, user=b.member, text="B remembers this")
    persona = persona_save(organization=b.org, actor=b.owner, name="B persona")
    suite = eval_services.suite_create(organization=b.org, name="B secret suite", models=["gpt-test"])
    case = eval_services.case_add(suite=suite, case={"messages": "2+2?", "check": {"kind": "exact", "expected": "4"}})
    request_id = "req-b-secret-0001"
    usage_write(**{request_id: usage_event(b, at=now, key=b.member_key, cost="0.5")})
    more = b_more_objects(b, suite)
    return {
        **more,
        "organizations": b.org.id,
        "teams": b.team.id,
        "members": b.memberships["member"].id,
        "keys": b.member_key.id,
        "tokens": token.id,
        "providers": b.provider.id,
        "deployments": b.deployment.id,
        "usage": request_id,
        "budgets": budget.id,
        "rate-limits": limit.id,
        "budget-alerts": alert_id,
        "user_id": b.member.id,
        "conversation": conversation.id,
        "memory": fact.id,
        "persona": persona.id,
        "suite": suite.id,
        "case": case.id,
    }


def b_more_objects(b, suite) -> dict[str, object]:
    """B's objects of the registry layer, sign-in, guard, ledger, dead letters, evaluation runs
    and knowledge bases (made through their services where one exists)."""
    from audit.models import Verification
    from audit.services import log_get_or_create
    from budgets.models import UsageDeadLetter
    from console.signin.invitations import invitation_create
    from console.signin.policy import mapping_set
    from evals import services as eval_services
    from guardrails import services as guard_services
    from providers.facts_services import certification_term_put, compliance_facts_set
    from providers.services_org import private_model_upsert
    from workspace.knowledge import knowledge_base_create
    from workspace.models import Chunk, Document, DocumentStatus

    private, _ = private_model_upsert(
        organization=b.org, name="b-secret-model", actor=b.owner, vendor="b", input_price="1", output_price="2"
    )
    invitation = invitation_create(
        organization=b.org, email="b-secret-invitee@b.example", role="member", actor=b.owner, send=False
    ).invitation
    term = certification_term_put(organization=b.org, slug="b-secret-cert", label="B secret certification")
    compliance_facts_set(provider=b.provider, region="eu", certifications=["soc2"])
    mapping = mapping_set(organization=b.org, group="b-secret-group", role="admin", actor=b.owner)
    layer = guard_services.policy_set(
        organization=b.org, team=b.team, document={"injection": {"threshold": 0.7, "action": "block"}}
    )
    recognizer = guard_services.recognizer_create(organization=b.org, entity="B_SECRET_ID", pattern=r"\bBSEC-\d{6}\b")
    review = guard_services.review_open(organization_id=b.org.id, request_id="req-b-secret-0001", verdict={})
    log = log_get_or_create(organization_id=b.org.id)
    verification = Verification.objects.create(log=log, requested_by=b.owner.username)
    letter = UsageDeadLetter.objects.create(
        request_id="req-b-dead-0001", organization_id=b.org.id, record="{}", error="B secret dead letter"
    )
    run = eval_services.run_create(suite=suite, models=["gpt-test"], concurrency=1, actor=b.owner, enqueue=False)
    knowledge = knowledge_base_create(organization=b.org, actor=b.owner, name="B secret knowledge")
    document = Document.objects.create(
        knowledge_base=knowledge, name="b-secret.txt", status=DocumentStatus.FAILED, uploaded_by=b.owner
    )
    passage = Chunk.objects.create(document=document, knowledge_base=knowledge, ordinal=0, text="B secret passage")
    return {
        "models": private.id,
        "model-settings": private.id,
        "invitations": invitation.id,
        "certifications": term.slug,
        "provider-facts": b.provider.id,
        "deployment-facts": b.deployment.id,
        "mapping": mapping.id,
        "guard-layer": layer.id,
        "recognizer": recognizer.id,
        "review": review.id,
        "verification": verification.id,
        "dead-letter": letter.id,
        "run": run.id,
        "knowledge": knowledge.id,
        "document": document.id,
        "passage": passage.id,
    }


def b_markers(b) -> list[str]:
    return [
        b.org.name,
        b.org.slug,
        b.provider_secret,
        b.provider.name,
        b.team.name,
        b.member.username,
        b.member.email,
        b.member_key.prefix,
        "req-b-secret-0001",
        "B secret chat",
        "B remembers this",
        "B persona",
        "B secret suite",
        "b-secret-model",
        "b-secret-invitee",
        "b-secret-cert",
        "B secret certification",
        "b-secret-group",
        "B_SECRET_ID",
        "req-b-dead-0001",
        "B secret dead letter",
        "B secret knowledge",
        "b-secret.txt",
        "B secret passage",
    ]


def b_fingerprint(b) -> dict:
    from budgets.models import Budget, RateLimit
    from console.models import AdminToken, ApiKey, Membership, Organization, Team
    from providers.models import Deployment, Provider

    return {
        "org": list(Organization.objects.filter(id=b.org.id).values("name", "time_zone")),
        "teams": list(Team.objects.filter(organization=b.org).values("id", "name", "description")),
        "members": list(Membership.objects.filter(organization=b.org).values("id", "role").order_by("id")),
        "keys": list(ApiKey.objects.filter(organization=b.org).values("id", "name", "revoked_at").order_by("id")),
        "tokens": list(AdminToken.objects.filter(organization=b.org).values("id", "revoked_at").order_by("id")),
        "providers": list(Provider.objects.filter(organization=b.org).values("id", "name", "is_active")),
        "deployments": list(Deployment.objects.filter(provider__organization=b.org).values("id", "name", "weight")),
        "budgets": list(Budget.objects.filter(organization=b.org).values("id", "amount", "archived_at")),
        "limits": list(RateLimit.objects.filter(organization=b.org).values("id", "rpm")),
        "more": b_more_fingerprint(b),
    }


def b_more_fingerprint(b) -> dict:
    """Every field of B's other objects that an attempt could change (or delete)."""
    from django.forms.models import model_to_dict

    from audit.models import Verification
    from budgets.models import UsageDeadLetter
    from console.models import Invitation, SsoGroupMapping
    from evals.models import Run
    from guardrails.models import GuardPolicy, GuardRecognizer, GuardReview
    from providers.models import ModelCard
    from providers.models_compliance import CertificationTerm, ComplianceFacts
    from providers.models_org import OrganizationModel
    from workspace.models import Chunk, Document, KnowledgeBase

    def rows(queryset) -> list[dict]:
        return [model_to_dict(row) for row in queryset.order_by("pk")]

    return {
        "private models": rows(ModelCard.objects.filter(organization=b.org)),
        "model settings": rows(OrganizationModel.objects.filter(organization=b.org)),
        "invitations": rows(Invitation.objects.filter(organization=b.org)),
        "certifications": rows(CertificationTerm.objects.filter(organization=b.org)),
        "facts": rows(ComplianceFacts.objects.filter(provider__organization=b.org)),
        "mappings": rows(SsoGroupMapping.objects.filter(organization=b.org)),
        "guard layers": rows(GuardPolicy.objects.filter(organization=b.org)),
        "recognizers": rows(GuardRecognizer.objects.filter(organization=b.org)),
        "reviews": rows(GuardReview.objects.filter(organization=b.org)),
        "verifications": rows(Verification.objects.filter(log__organization_id=b.org.id)),
        "dead letters": rows(UsageDeadLetter.objects.filter(organization_id=b.org.id)),
        "runs": rows(Run.objects.filter(organization=b.org)),
        "knowledge": rows(KnowledgeBase.objects.filter(organization=b.org)),
        "documents": rows(Document.objects.filter(knowledge_base__organization=b.org)),
        "passages": rows(Chunk.objects.filter(knowledge_base__organization=b.org)),
    }


def api_operations() -> list[tuple[str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return [
        (path, method.upper())
        for path, item in schema["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    ]


def kind_of(path: str) -> str:
    return path.removeprefix("/api/v1/").split("/")[0]


def fill(path: str, ids: dict[str, object]) -> str:
    kind = kind_of(path)

    def value(match: re.Match) -> str:
        name = match.group(1)
        return str(ids["user_id"] if name == "user_id" else ids[kind])

    return re.sub(r"\{(\w+)\}", value, path)


def clients(a) -> dict[str, APIClient]:
    from console import services

    found = {role: client_for(getattr(a, role), a.org) for role in ROLES}
    token = services.admin_token_create(organization=a.org, user=a.owner, name="a token").secret
    by_token = APIClient()
    by_token.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    found["owner-token"] = by_token
    return found


def assert_no_leak(response, markers: list[str], where: str) -> None:
    body = response.content.decode(errors="replace")
    leaked = [marker for marker in markers if marker and marker in body]
    assert not leaked, f"{where} shows organization B's data: {leaked}"


def test_every_object_kind_is_known(a, b) -> None:
    ids = b_objects(b)
    unknown = {
        path
        for path, _ in api_operations()
        if "{" in path and kind_of(path) not in GLOBAL and ids.get(kind_of(path)) is None
    }
    assert not unknown, f"no object of organization B for {sorted(unknown)}: add one in b_objects()"


def test_no_role_of_a_reaches_b_objects_through_the_api(a, b) -> None:
    ids = b_objects(b)
    markers = b_markers(b)
    before = b_fingerprint(b)
    tried = 0
    for who, client in clients(a).items():
        for path, method in api_operations():
            if "{" not in path or kind_of(path) in GLOBAL:
                continue
            url = fill(path, ids)
            response = client.generic(
                method, url, data='{"name": "taken over", "role": "owner"}', content_type="application/json"
            )
            tried += 1
            assert response.status_code in REFUSED, f"{who} {method} {url} -> {response.status_code}"
            assert_no_leak(response, markers, f"{who} {method} {url}")
    assert tried >= 5 * 30  # every way in x every id-taking operation
    assert b_fingerprint(b) == before


def test_no_list_or_summary_of_a_shows_b_data(a, b) -> None:
    b_objects(b)
    usage_write(**{"req-a-own-0001": usage_event(a, at=datetime.now(UTC), cost="0.1")})
    markers = b_markers(b)
    for who, client in clients(a).items():
        for path, method in api_operations():
            if "{" in path or method != "GET":
                continue
            response = client.get(path)
            assert response.status_code in {200, 400, 403, 404}, f"{who} GET {path} -> {response.status_code}"
            assert_no_leak(response, markers, f"{who} GET {path}")


def test_b_ids_in_a_request_body_are_unknown(a, b) -> None:
    """Referencing B's objects from A's own writes is refused like an id that does not exist."""
    ids = b_objects(b)
    client = client_for(a.owner, a.org)
    attempts = [
        ("/api/v1/keys/", {"name": "k", "team": ids["teams"]}),
        ("/api/v1/keys/", {"name": "k", "user": ids["user_id"]}),
        ("/api/v1/deployments/", {"model": "gpt-test", "provider": ids["providers"]}),
        ("/api/v1/budgets/", {"scope": "team", "scope_id": ids["teams"], "amount": "5"}),
        ("/api/v1/rate-limits/", {"scope": "team", "scope_id": ids["teams"], "rpm": 5}),
        (f"/api/v1/teams/{a.team.id}/members/", {"user": ids["user_id"]}),
    ]
    before = b_fingerprint(b)
    for url, body in attempts:
        response = client.post(url, body, format="json")
        assert response.status_code in {400, 404}, f"POST {url} {body} -> {response.status_code}"
        assert_no_leak(response, b_markers(b), f"POST {url}")
    assert b_fingerprint(b) == before


def console_patterns() -> list[tuple[str, str, list[str]]]:
    """(namespaced name, route, parameter names) of every console page that takes an id."""
    found: list[tuple[str, str, list[str]]] = []

    def walk(resolver, prefix: str, namespace: str) -> None:
        for entry in resolver.url_patterns:
            if isinstance(entry, URLResolver):
                inner = f"{namespace}:{entry.namespace}" if namespace and entry.namespace else entry.namespace
                walk(entry, prefix + str(entry.pattern), inner or namespace)
            elif isinstance(entry, URLPattern):
                route = prefix + str(entry.pattern)
                params = re.findall(r"<(?:\w+:)?(\w+)>", route)
                if params and not route.startswith(("api/", "admin/", "v1/", "^")):
                    found.append((f"{namespace}:{entry.name}", route, params))

    walk(get_resolver(), "", "")
    return found


def console_target(name: str, ids: dict[str, object], b) -> dict[str, object] | None:
    table = {
        "providers:provider": {"pk": ids["providers"]},
        "providers:deployment-create": {"pk": ids["providers"]},
        "providers:deployment": {"pk": ids["deployments"]},
        "budgets:rate-limit": {"pk": ids["rate-limits"]},
        "budgets:alert": {"pk": ids["budget-alerts"]},
        "budgets:budget": {"pk": ids["budgets"]},
        "budgets:usage-detail": {"request_id": ids["usage"]},
        "console:team-member-remove": {"pk": ids["teams"], "user_id": ids["user_id"]},
        "console:team": {"pk": ids["teams"]},
        "console:member": {"pk": ids["user_id"]},
        "console:token": {"pk": ids["tokens"]},
        "console:key": {"pk": ids["keys"]},
        "workspace:conversation": {"pk": ids["conversation"], "fmt": "md"},
        "workspace:memory": {"pk": ids["memory"]},
        "workspace:persona": {"pk": ids["persona"]},
        "evals:case-delete": {"pk": ids["suite"], "case_pk": ids["case"]},
        "evals:suite": {"pk": ids["suite"], "fmt": "yaml"},
        "evals:case-add": {"pk": ids["suite"]},
        "evals:run": {"pk": ids["run"]},
        "providers:model-organization": {"pk": ids["models"]},
        "providers:model-facts": {"pk": ids["models"]},
        "routing:breaker-edit": {"pk": ids["deployments"]},
        "guardrails:policy-delete": {"pk": ids["guard-layer"]},
        "guardrails:recognizer-delete": {"pk": ids["recognizer"]},
        "guardrails:review-detail": {"pk": ids["review"]},
        "audit:verification": {"pk": ids["verification"]},
        "budgets:dead-letter": {"pk": ids["dead-letter"]},
        "workspace:knowledge": {"pk": ids["knowledge"]},
        "workspace:document": {"pk": ids["document"]},
        "workspace:passage": {"pk": ids["passage"]},
        "console:invitation-revoke": {"pk": ids["invitations"]},
        "console:sso-mapping-delete": {"pk": ids["mapping"]},
    }
    for prefix, kwargs in table.items():
        if name.startswith(prefix):
            return kwargs
    return None


def test_every_console_page_with_an_id_is_covered() -> None:
    unknown = [
        name
        for name, _, _ in console_patterns()
        if name not in CONSOLE_COVERED_ELSEWHERE
        and console_target(
            name,
            {
                k: 1
                for k in (
                    "run",
                    "models",
                    "guard-layer",
                    "recognizer",
                    "review",
                    "verification",
                    "dead-letter",
                    "knowledge",
                    "document",
                    "passage",
                    "invitations",
                    "mapping",
                    "conversation",
                    "memory",
                    "persona",
                    "suite",
                    "case",
                    "providers",
                    "deployments",
                    "rate-limits",
                    "budget-alerts",
                    "budgets",
                    "usage",
                    "teams",
                    "user_id",
                    "tokens",
                    "keys",
                )
            },
            None,
        )
        is None
    ]
    assert not unknown, f"console pages with ids this suite does not know: {unknown}"


def test_no_role_of_a_reaches_b_objects_through_the_console(a, b) -> None:
    from django.test import Client
    from django.urls import reverse

    ids = b_objects(b)
    markers = b_markers(b)
    before = b_fingerprint(b)
    tried = 0
    for role in ROLES:
        client = Client()
        client.force_login(getattr(a, role))
        session = client.session
        session["organization_id"] = a.org.id
        session.save()
        for name, _route, params in console_patterns():
            kwargs = console_target(name, ids, b)
            if kwargs is None:
                continue
            url = reverse(name, kwargs={p: kwargs[p] for p in params})
            for method in ("get", "post"):
                response = getattr(client, method)(url, HTTP_X_GATEHOUSE_ORGANIZATION=a.org.slug)
                tried += 1
                assert response.status_code in REFUSED | {405}, f"{role} {method} {url} -> {response.status_code}"
                assert_no_leak(response, markers, f"{role} {method} {url}")
    assert tried >= 4 * 2 * 40  # every role x GET and POST x every page that takes an id
    assert b_fingerprint(b) == before

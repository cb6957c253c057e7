"""Suites and checks: validation, import and export, console pages, tenant isolation."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from evals.checks import CheckError, check_answer, check_validate, rubric_grade
from evals.models import Suite
from evals.services import case_add, suite_create, suite_import
from evals.suite_io import suite_dump


def test_checks_grade_answers():
    assert check_answer("exact", {"expected": "Positive"}, " positive. ").passed
    assert not check_answer("exact", {"expected": "positive"}, "negative").passed
    assert check_answer("contains", {"expected": "paris"}, "It is Paris, France").passed
    assert check_answer("regex", {"pattern": r"^\d{4}-\d{2}-\d{2}$"}, "2026-01-15").passed
    assert check_answer("numeric", {"expected": 449, "tolerance": 0.01}, "The answer is 449").passed
    assert not check_answer("numeric", {"expected": 449, "tolerance": 0.01}, "450").passed
    schema = {"type": "object", "properties": {"a": {"const": 1}}, "required": ["a"]}
    assert check_answer("json_schema", {"schema": schema}, '{"a": 1}').passed
    verdict = check_answer("json_schema", {"schema": schema}, '{"a": 2}')
    assert not verdict.passed and "1 was expected" in verdict.detail
    assert not check_answer("json_schema", {"schema": schema}, "not json").passed
    graded = rubric_grade({"rubric": "r"}, "SCORE: 8")
    assert graded.passed and graded.score == Decimal("0.8")
    assert not rubric_grade({"rubric": "r"}, "no idea").passed


@pytest.mark.parametrize(
    ("kind", "spec"),
    [
        ("regex", {"pattern": "("}),
        ("json_schema", {"schema": {"type": 5}}),
        ("numeric", {"expected": "x"}),
        ("exact", {}),
        ("nonsense", {"expected": 1}),
        ("rubric", {"reference": "x"}),
    ],
)
def test_bad_check_specs_are_refused_with_a_reason(kind, spec):
    with pytest.raises(CheckError):
        check_validate(kind, spec)


YAML = """
name: capitals
task_class: other
cases:
  - name: france
    messages: [{role: user, content: "What is the capital of France?"}]
    check: {kind: contains, expected: Paris}
  - messages: "Compute: 2 + 2"
    check: {kind: numeric, expected: 4}
"""


@pytest.mark.django_db
def test_yaml_and_jsonl_round_trip(demo_org):
    suite = suite_import(organization=demo_org, text=YAML, fmt="yaml")
    assert suite.cases.count() == 2 and suite.version == 1
    jsonl = suite_dump(suite, "jsonl")
    assert json.loads(jsonl.splitlines()[0])["suite"]["name"] == "capitals"
    again = suite_import(organization=demo_org, text=jsonl, fmt="jsonl")
    assert again.pk == suite.pk and again.version == 2 and again.cases.count() == 2
    assert suite_dump(again, "yaml").count("kind:") == 2


@pytest.mark.django_db
def test_an_invalid_import_writes_nothing(demo_org):
    bad = YAML.replace("expected: 4", "tolerance: 1")
    with pytest.raises(ValidationError) as exc:
        suite_import(organization=demo_org, text=bad, fmt="yaml")
    assert "Case 2" in str(exc.value)
    assert not Suite.objects.filter(organization=demo_org).exists()
    with pytest.raises(ValidationError):
        suite_import(organization=demo_org, text="{not json", fmt="jsonl")


@pytest.mark.django_db
def test_adding_a_case_raises_the_version(demo_org):
    suite = suite_create(organization=demo_org, name="s1", task_class="classification")
    case_add(suite=suite, case={"messages": "hi", "check": {"kind": "exact", "expected": "hello"}})
    suite.refresh_from_db()
    assert suite.version == 2
    with pytest.raises(ValidationError):
        suite_create(organization=demo_org, name="s1")


@pytest.fixture
def demo_org(db):
    from console import services

    owner = services.user_create(username="eval-owner", password="pw-Owner-123")
    return services.organization_create(name="Eval Org", owner=owner)


@pytest.mark.django_db
def test_console_pages_create_import_export_and_isolate(client):
    from console import services

    owner = services.user_create(username="eval-a", password="pw-Owner-123")
    org = services.organization_create(name="Org A", owner=owner)
    other_owner = services.user_create(username="eval-b", password="pw-Owner-123")
    other = services.organization_create(name="Org B", owner=other_owner)
    foreign = suite_import(organization=other, text=YAML, fmt="yaml")
    client.force_login(owner)

    page = client.get(reverse("evals:suite-list"))
    assert page.status_code == 200 and "No suites yet" in page.content.decode()
    made = client.post(reverse("evals:suite-list"), {"suite-name": "mine", "suite-task_class": "classification"})
    assert made.status_code == 302
    suite = Suite.objects.get(organization=org, name="mine")
    bad = client.post(
        reverse("evals:case-add", args=[suite.pk]),
        {"case-prompt": "x", "case-check_kind": "regex", "case-check": '{"pattern": "("}', "case-max_tokens": 5},
    )
    assert bad.status_code == 400 and "does not compile" in bad.content.decode()
    good = client.post(
        reverse("evals:case-add", args=[suite.pk]),
        {"case-prompt": "x", "case-check_kind": "exact", "case-check": '{"expected": "y"}', "case-max_tokens": 5},
    )
    assert good.status_code == 302 and suite.cases.count() == 1
    imported = client.post(reverse("evals:suite-import"), {"import-format": "yaml", "import-text": YAML})
    assert imported.status_code == 302
    exported = client.get(reverse("evals:suite-export", args=[suite.pk, "yaml"]))
    assert exported.status_code == 200 and b"name: mine" in exported.content
    broken = client.post(reverse("evals:suite-import"), {"import-format": "yaml", "import-text": "name: [x"})
    assert broken.status_code == 400
    # Another organization's suite is not there for this one.
    assert client.get(reverse("evals:suite-detail", args=[foreign.pk])).status_code == 404
    assert client.get(reverse("evals:suite-export", args=[foreign.pk, "yaml"])).status_code == 404
    assert "capitals" not in client.get(reverse("evals:suite-list")).content.decode() or (
        Suite.objects.filter(organization=org, name="capitals").exists()
    )
    confirm = client.get(reverse("evals:suite-delete", args=[suite.pk]))
    assert b"Delete the suite" in confirm.content
    assert client.post(reverse("evals:suite-delete", args=[suite.pk])).status_code == 302
    assert not Suite.objects.filter(pk=suite.pk).exists()


def test_make_runs_seed_installs_starter_suites_once_and_never_brings_back_a_deleted_one(demo):
    """`make run` calls `evals_seed --once` at every start: an operator's deletion stays."""
    from io import StringIO

    from django.core.management import call_command

    from evals.models import Suite

    call_command("evals_seed", "--once", "--organization", demo.org.slug, stdout=StringIO())
    names = set(Suite.objects.filter(organization=demo.org).values_list("name", flat=True))
    assert {"arithmetic", "sentiment-classification", "invoice-extraction"} <= names
    Suite.objects.filter(organization=demo.org, name="arithmetic").delete()
    out = StringIO()
    call_command("evals_seed", "--once", "--organization", demo.org.slug, stdout=out)
    assert not Suite.objects.filter(organization=demo.org, name="arithmetic").exists()
    assert "left as they are" in out.getvalue()
    # Without --once the command installs what is missing (the documented way to get them back).
    call_command("evals_seed", "--organization", demo.org.slug, stdout=StringIO())
    assert Suite.objects.filter(organization=demo.org, name="arithmetic").exists()

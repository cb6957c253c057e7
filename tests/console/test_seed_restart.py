"""Seeding twice never changes routing: only what the first run created is the seed's."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core.management import call_command

from console import services as console_services
from console.models import Organization, SeedRecord
from providers import services as provider_services
from providers.models import Deployment, ModelCard, Provider
from providers.snapshot import catalog_build
from routing.engine.snapshot import routing_build
from routing.selectors import policy_document, policy_live
from routing.services import unlisted_classes


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.fixture
def quick(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.GATEHOUSE = {**django_settings.GATEHOUSE, "DEMO_PASSWORD": ""}
    settings.GATEHOUSE_ENV_SECRETS = {}  # the environment as settings read it: no vendor keys
    return settings


def deployments_of(model: str) -> set[str]:
    return set(Deployment.objects.filter(model__name=model).values_list("name", flat=True))


@pytest.mark.django_db
def test_a_model_the_operator_configured_never_gains_a_deployment_from_a_restart(quick, tmp_path):
    key_file = tmp_path / "k"
    run("seed_demo", f"--key-file={key_file}")
    admin = get_user_model().objects.get(username="admin")
    org = Organization.objects.get(slug="acme")
    upstream = provider_services.provider_create(
        name="our-vllm", kind="openai", base_url="http://10.0.0.5:8000/v1", organization=org, actor=admin
    )
    # A model of the operator's own, and a catalog model moved off the simulator onto the real upstream.
    own, _ = provider_services.model_card_upsert(name="acme-llm", vendor="acme", capabilities=["chat", "streaming"])
    provider_services.deployment_create(model=own, provider=upstream, name="acme-llm@our-vllm")
    moved = ModelCard.objects.get(name="gpt-4o-mini")
    for deployment in Deployment.objects.filter(model=moved):
        provider_services.deployment_delete(deployment=deployment)
    provider_services.deployment_create(model=moved, provider=upstream, name="gpt-4o-mini@our-vllm")
    before = set(Deployment.objects.values_list("name", "model__name", "provider__name", "weight", "is_active"))

    output = run("seed_demo", f"--key-file={key_file}")

    assert deployments_of("acme-llm") == {"acme-llm@our-vllm"}
    assert deployments_of("gpt-4o-mini") == {"gpt-4o-mini@our-vllm"}
    assert set(Deployment.objects.values_list("name", "model__name", "provider__name", "weight", "is_active")) == before
    assert "nothing created" in output


@pytest.mark.django_db
def test_deleted_and_disabled_demo_providers_stay_so_after_a_restart(quick, tmp_path):
    key_file = tmp_path / "k"
    run("seed_demo", f"--key-file={key_file}")
    sim_gemini = Provider.objects.get(name="sim-gemini")
    provider_services.provider_delete(provider=sim_gemini)
    sim_openai = Provider.objects.get(name="sim-openai")
    provider_services.provider_update(provider=sim_openai, is_active=False)
    count = Deployment.objects.count()

    run("seed_demo", f"--key-file={key_file}")

    assert not Provider.objects.filter(name="sim-gemini").exists()
    assert not Provider.objects.get(name="sim-openai").is_active
    assert Deployment.objects.count() == count
    assert SeedRecord.objects.filter(kind="provider", name="sim-gemini").exists()


@pytest.mark.django_db
def test_a_real_provider_from_the_environment_skips_models_the_operator_owns(quick, tmp_path):
    key_file = tmp_path / "k"
    run("seed_demo", f"--key-file={key_file}")
    org = Organization.objects.get(slug="acme")
    mine = provider_services.provider_create(
        name="our-openai", kind="openai", base_url="https://api.openai.com/v1", organization=org
    )
    gpt = ModelCard.objects.get(name="gpt-5.5")
    provider_services.deployment_create(model=gpt, provider=mine, name="gpt-5.5@ours")
    quick.GATEHOUSE_ENV_SECRETS = {"OPENAI_API_KEY": "sk-live-never-copied"}

    run("seed_demo", f"--key-file={key_file}")

    assert Provider.objects.filter(name="openai").exists()
    assert "gpt-5.5@openai" not in deployments_of("gpt-5.5")
    assert Deployment.objects.filter(name="gpt-4o-mini@openai").exists()  # a model only the seed had served


@pytest.mark.django_db
def test_a_database_seeded_before_the_ledger_adopts_the_seed_objects(quick, tmp_path):
    key_file = tmp_path / "k"
    run("seed_demo", f"--key-file={key_file}")
    SeedRecord.objects.all().delete()  # as an older release left it
    provider_services.deployment_delete(deployment=Deployment.objects.get(name="gpt-5.5@sim-openai"))
    count = Deployment.objects.count()

    run("seed_demo", f"--key-file={key_file}")

    assert Deployment.objects.count() == count
    assert SeedRecord.objects.filter(kind="provider", name="sim-openai").exists()
    assert SeedRecord.objects.filter(kind="deployment", name="claude-opus-4-6@sim-anthropic").exists()


@pytest.mark.django_db
def test_second_start_says_how_to_get_in_and_reset_password_works(quick, tmp_path):
    run("seed_demo", f"--key-file={tmp_path / 'k'}")
    second = run("seed_demo", f"--key-file={tmp_path / 'k'}")
    assert "seed_demo --reset-password" in second and "createsuperuser" in second

    output = run("seed_demo", "--reset-password")
    password = re.search(r"with password (\S+)", output).group(1)
    for name in ("admin", "finance", "dev"):
        assert get_user_model().objects.get(username=name).check_password(password)


@pytest.mark.django_db
def test_the_demo_matrix_approves_phi_only_for_self_hosted_models(quick, tmp_path):
    run("seed_demo", f"--key-file={tmp_path / 'k'}")
    org = Organization.objects.get(slug="acme")
    document = policy_document(policy_live(organization=org))
    matrix = document["matrix"]
    assert "phi" in matrix["llama-4-maverick"]
    assert "pci" not in matrix["llama-4-maverick"]
    assert "gpt-5.5" not in matrix  # a hosted frontier model: only what unlisted models get
    assert document["settings"]["unlisted_max_class"] == "pii"
    versions = org.policy_versions.count()
    run("seed_demo", f"--key-file={tmp_path / 'k'}")
    assert org.policy_versions.count() == versions


@pytest.mark.django_db
def test_platform_staff_disable_and_delete_a_shared_demo_provider_in_the_console(quick, client, tmp_path):
    run("seed_demo", f"--key-file={tmp_path / 'k'}")
    admin = get_user_model().objects.get(username="admin")
    provider = Provider.objects.get(name="sim-gemini")
    client.force_login(admin)
    # An organization owner who is not platform staff sees the provider but cannot change it.
    assert client.get(f"/registry/providers/{provider.pk}/").status_code == 200
    assert client.post(f"/registry/providers/{provider.pk}/delete/").status_code == 403

    admin.is_staff = True
    admin.save(update_fields=["is_staff"])
    page = client.get(f"/registry/providers/{provider.pk}/")
    assert b"Disable" in page.content
    response = client.post(f"/registry/providers/{provider.pk}/toggle/")
    assert response.status_code == 302
    assert not Provider.objects.get(pk=provider.pk).is_active
    assert client.post(f"/registry/providers/{provider.pk}/delete/").status_code == 302
    assert not Provider.objects.filter(pk=provider.pk).exists()


def routing_picture() -> dict[str, list[tuple[str, str, int]]]:
    return {
        name: sorted((d.name, d.provider_name, d.weight) for d in info.deployments)
        for name, info in catalog_build().models.items()
    }


@pytest.mark.django_db
def test_seeding_again_routes_exactly_as_before(quick, tmp_path):
    run("seed_demo", f"--key-file={tmp_path / 'k'}")
    before = routing_picture()
    run("seed_demo", f"--key-file={tmp_path / 'k'}")
    assert routing_picture() == before


@pytest.mark.django_db
def test_a_new_organization_approves_no_sensitive_class_until_an_admin_does():
    owner = get_user_model().objects.create_user(username="new-owner")
    org = console_services.organization_create(name="Newco", owner=owner)
    document = policy_document(policy_live(organization=org))
    allowed = set(unlisted_classes(document))
    assert {"phi", "pci", "restricted"}.isdisjoint(allowed)
    assert {"public", "internal", "confidential", "pii"} <= allowed
    policy = routing_build(catalog_build(), organization_id=org.id).policy(org.id)
    assert policy.detect_needed and policy.detectors  # the data detector runs


@pytest.mark.django_db
def test_a_price_the_operator_set_to_zero_stays_zero_after_a_restart(quick, tmp_path):
    run("seed_demo", f"--key-file={tmp_path / 'k'}")
    assert ModelCard.objects.get(name="llama-4-maverick").input_price > 0
    provider_services.model_card_upsert(name="llama-4-maverick", input_price="0", output_price="0")
    run("seed_demo", f"--key-file={tmp_path / 'k'}")
    card = ModelCard.objects.get(name="llama-4-maverick")
    assert card.input_price == 0 and card.output_price == 0

"""The demo organization, seeded through the services so it looks like real use.

`demo_seed` is idempotent: a second run creates nothing and writes nothing. It
builds the catalog, the Acme Corp organization with its people and teams, the
built-in simulator providers with a deployment for every active chat or
embedding model, a key per team, and real providers for whichever vendor API
keys are in the environment (by variable name; the secret is never copied).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q

from console.models import ApiKey, Membership, Organization, Role, SeedRecord, Team
from console.services import (
    api_key_create,
    api_key_rotate,
    membership_set,
    organization_create,
    secret_hash,
    team_create,
    user_create,
)
from providers.catalog import Catalog, catalog_load, catalog_seed
from providers.facts_services import compliance_facts_set
from providers.models import Deployment, Lifecycle, ModelCard, Provider, Tier
from providers.services import deployment_create, model_card_upsert, provider_create, provider_update

ORG_NAME, ORG_SLUG = "Acme Corp", "acme"
USERS = (("admin", Role.OWNER), ("finance", Role.FINANCE), ("dev", Role.MEMBER))
TEAMS = (
    ("Research", "Experiments, evaluations and long-context analysis."),
    ("Support", "Customer-support chat and ticket triage."),
    ("Platform", "Internal tools, code review and automation."),
)
SIM_SECRET = "sim-demo-secret"
LOGIN_HINT = (
    "Console login: admin, finance or dev with the password printed by the first start. Forgot it? "
    "`.venv/bin/python manage.py seed_demo --reset-password` prints a new one; "
    "`.venv/bin/python manage.py createsuperuser` makes an admin of your own."
)
AZURE_API_VERSION = "2024-10-21"
# (provider name, kind = wire format, base URL, api version)
SIM_PROVIDERS = (
    ("sim-openai", "openai", "sim://openai/v1", ""),
    ("sim-anthropic", "anthropic", "sim://anthropic", ""),
    ("sim-gemini", "gemini", "sim://gemini/v1beta", ""),
    ("sim-azure", "azure_openai", "sim://azure", AZURE_API_VERSION),
)
# Illustrative compliance facts of the simulated providers (a demo route can span us and eu).
SIM_FACTS = {
    "sim-openai": {"region": "us", "region_name": "us-east-1", "certifications": ["iso27001", "soc2"]},
    "sim-azure": {"region": "eu", "region_name": "westeurope", "certifications": ["gdpr_dpa", "iso27001", "soc2"]},
}
# OpenAI models also served through the simulated Azure resource, as a second deployment.
SIM_AZURE_MODELS = ("gpt-5.5", "gpt-4o-mini", "text-embedding-3-small")
# Self-hosted models get a demo price so that spend shows for them too (USD per 1M tokens).
DEMO_OPERATOR_PRICE = {
    "input_price": Decimal("0.20"),
    "output_price": Decimal("0.60"),
    "cached_input_price": Decimal("0.10"),
}


@dataclass(frozen=True)
class RealProvider:
    name: str
    key_env: str
    kind: str
    base_url: str
    vendors: tuple[str, ...] = ()  # first-party: every model of these vendors
    endpoint_env: str = ""  # base URL from this variable instead (Azure)
    api_version: str = ""


# Aggregators (no vendor) serve only the models whose catalog entry names them under `upstream`.
REAL_PROVIDERS = (
    RealProvider("openai", "OPENAI_API_KEY", "openai", "https://api.openai.com/v1", ("openai",)),
    RealProvider("anthropic", "ANTHROPIC_API_KEY", "anthropic", "https://api.anthropic.com", ("anthropic",)),
    RealProvider("gemini", "GEMINI_API_KEY", "gemini", "https://generativelanguage.googleapis.com/v1beta", ("google",)),
    RealProvider(
        "azure-openai",
        "AZURE_OPENAI_API_KEY",
        "azure_openai",
        "",
        ("openai",),
        endpoint_env="AZURE_OPENAI_ENDPOINT",
        api_version=AZURE_API_VERSION,
    ),
    RealProvider("deepseek", "DEEPSEEK_API_KEY", "openai", "https://api.deepseek.com/v1", ("deepseek",)),
    RealProvider("mistral", "MISTRAL_API_KEY", "openai", "https://api.mistral.ai/v1", ("mistral",)),
    RealProvider("groq", "GROQ_API_KEY", "openai", "https://api.groq.com/openai/v1"),
    RealProvider("openrouter", "OPENROUTER_API_KEY", "openai", "https://openrouter.ai/api/v1"),
    RealProvider("together", "TOGETHER_API_KEY", "openai", "https://api.together.xyz/v1"),
)


@dataclass
class DemoResult:
    created: dict[str, int] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    demo_secret: str = ""  # the Research key's secret when it was issued by this run

    def count(self, what: str, n: int = 1) -> None:
        self.created[what] = self.created.get(what, 0) + n

    @property
    def changed(self) -> bool:
        return any(self.created.values())


def _environment(name: str) -> str:
    """A provider variable as settings read it from the environment (never read here)."""
    from django.conf import settings

    return settings.GATEHOUSE_ENV_SECRETS.get(name, "").strip()


def _environment_list(name: str) -> list[str]:
    return [item.strip() for item in _environment(name).split(",") if item.strip()]


def demo_seed(*, key_file: Path | None = None) -> DemoResult:
    """Create whatever of the demo is missing; report what was created."""
    key_file = key_file or Path(settings.DATA_DIR) / "demo_key.txt"
    result = DemoResult()
    # Only missing cards: edits made in the console survive a restart (`seed_catalog` resets them).
    seeded = catalog_seed(update=False)
    result.count("models", seeded.created)
    catalog = catalog_load()
    with transaction.atomic():
        admin, organization = _people(result)
        teams = _teams(organization, admin, result)
        ledger = SeedLedger()
        _operator_prices(ledger, result)
        _simulator(catalog, ledger, result)
        _real_providers(catalog, ledger, result)
        _demo_matrix(organization, admin, ledger, result)
        keys = _keys(organization, teams, admin, key_file, result)
    if result.demo_secret:
        _secret_write(key_file, result.demo_secret)
        result.messages.append(f"Demo key (Research) written to {key_file}: {result.demo_secret}")
    elif keys:
        result.messages.append(f"Demo key: in {key_file}.")
    return result


# --------------------------------------------------------------------------- people


def demo_password_reset(*, password: str = "") -> str:
    """Give the demo users (admin, finance, dev) a new password; returns it."""
    password = password or secrets.token_urlsafe(12)
    User = get_user_model()
    users = list(User.objects.filter(username__in=[name for name, _ in USERS]))
    if not users:
        raise ValidationError("There are no demo users yet: run `manage.py seed_demo` first.")
    for user in users:
        user.set_password(password)
        user.save(update_fields=["password"])
    return password


def _people(result: DemoResult) -> tuple[AbstractBaseUser, Organization]:
    User = get_user_model()
    env_password = settings.GATEHOUSE.get("DEMO_PASSWORD", "")
    password = env_password or secrets.token_urlsafe(12)
    users: dict[str, AbstractBaseUser] = {}
    new: list[str] = []
    for username, _role in USERS:
        user = User.objects.filter(username=username).first()
        if user is None:
            user = user_create(username=username, email=f"{username}@acme.example", password=password)
            result.count("users")
            new.append(username)
        elif env_password and not user.check_password(env_password):
            user.set_password(env_password)
            user.save(update_fields=["password"])
            result.messages.append(f"Password of {username} set from GATEHOUSE_DEMO_PASSWORD.")
        users[username] = user
    admin = users["admin"]
    organization = Organization.objects.filter(slug=ORG_SLUG).first()
    if organization is None:
        organization = organization_create(name=ORG_NAME, slug=ORG_SLUG, owner=admin)
        result.count("organizations")
    roles = dict(Membership.objects.filter(organization=organization).values_list("user__username", "role"))
    for username, role in USERS:
        if roles.get(username) != role:
            membership_set(organization=organization, user=users[username], role=role, actor=admin)
            result.count("memberships")
    if new:
        shown = password if not env_password else f"{password} (from GATEHOUSE_DEMO_PASSWORD)"
        result.messages.append(f"Console login for {', '.join(new)}: password {shown}")
    elif env_password:
        result.messages.append(f"Console login: admin / {env_password} (from GATEHOUSE_DEMO_PASSWORD)")
    else:
        result.messages.append(LOGIN_HINT)
    return admin, organization


def _teams(organization: Organization, admin: AbstractBaseUser, result: DemoResult) -> dict[str, Team]:
    teams = {team.name: team for team in Team.objects.filter(organization=organization)}
    for name, description in TEAMS:
        if name not in teams:
            teams[name] = team_create(organization=organization, name=name, description=description, actor=admin)
            result.count("teams")
    return teams


# --------------------------------------------------------------------------- registry


def _operator_prices(ledger: SeedLedger, result: DemoResult) -> None:
    """A demo price for self-hosted models, once each: a price an operator sets (even 0) stays."""
    zero = Decimal(0)
    for card in ModelCard.objects.filter(operator_priced=True, input_price=zero, output_price=zero):
        if ledger.seen("price", card.name):
            continue
        model_card_upsert(name=card.name, **DEMO_OPERATOR_PRICE)
        ledger.add("price", card.name)
        result.count("operator prices")


def _served_models() -> list[ModelCard]:
    cards = ModelCard.objects.filter(lifecycle=Lifecycle.ACTIVE).order_by("name")
    return [card for card in cards if card.has("chat") or card.has("embeddings")]


class SeedLedger:
    """What seeding created before (`SeedRecord` rows), read once per run.

    The rules that keep restarts from changing routing:
    - a provider or deployment the seed created once is never created again (an
      operator who deleted it meant it);
    - deployments are added only along with a provider created in this same run,
      so an existing provider never gains one;
    - a model with any deployment the seed did not create belongs to the
      operator and never gains a deployment from seeding.
    """

    def __init__(self) -> None:
        self.records = set(SeedRecord.objects.values_list("kind", "name"))
        if not self.records:
            self._adopt_earlier_seed()
        self.new_providers: set[str] = set()
        seeded = {name for kind, name in self.records if kind == "deployment"}
        self.operator_models = set(
            Deployment.objects.exclude(name__in=seeded).values_list("model__name", flat=True).distinct()
        )
        self.deployment_names = set(Deployment.objects.values_list("name", flat=True))

    def _adopt_earlier_seed(self) -> None:
        """A database seeded before the ledger existed: record the seed's own objects as seeded."""
        names = [name for name, *_ in SIM_PROVIDERS]
        providers = list(Provider.objects.filter(name__in=names, organization__isnull=True))
        env_names = {spec.name: spec.key_env for spec in REAL_PROVIDERS}
        providers += [
            p
            for p in Provider.objects.filter(name__in=list(env_names), organization__isnull=True)
            if p.secret_env == env_names[p.name]
        ]
        if not providers:
            return
        rows = [SeedRecord(kind="provider", name=p.name) for p in providers]
        for deployment in Deployment.objects.filter(provider__in=providers).select_related("model", "provider"):
            if deployment.name == f"{deployment.model.name}@{deployment.provider.name}":
                rows.append(SeedRecord(kind="deployment", name=deployment.name))
        SeedRecord.objects.bulk_create(rows, ignore_conflicts=True)
        self.records = {(row.kind, row.name) for row in rows}

    def seen(self, kind: str, name: str) -> bool:
        return (kind, name) in self.records

    def add(self, kind: str, name: str) -> None:
        SeedRecord.objects.get_or_create(kind=kind, name=name)
        self.records.add((kind, name))

    def forget(self, kind: str, name: str) -> None:
        SeedRecord.objects.filter(kind=kind, name=name).delete()
        self.records.discard((kind, name))


def _simulator(catalog: Catalog, ledger: SeedLedger, result: DemoResult) -> None:
    providers: dict[str, Provider] = {}
    existing = {p.name: p for p in Provider.objects.filter(name__in=[name for name, *_ in SIM_PROVIDERS])}
    for name, kind, base_url, api_version in SIM_PROVIDERS:
        provider = existing.get(name)
        if provider is None:
            if ledger.seen("provider", name):
                continue  # deleted by an operator: stays deleted
            provider = provider_create(
                name=name, kind=kind, base_url=base_url, secret=SIM_SECRET, api_version=api_version
            )
            ledger.add("provider", name)
            ledger.new_providers.add(name)
            result.count("providers")
            if name in SIM_FACTS:
                compliance_facts_set(provider=provider, source="catalog", **SIM_FACTS[name])
        providers[kind] = provider
    if not providers:
        return
    for card in _served_models():
        vendor = catalog.vendors.get(card.vendor)
        wire = vendor.wire if vendor else "openai"  # vendors without a wire of their own speak OpenAI's
        target = providers.get(wire, providers.get("openai"))
        targets = [target] if target is not None else []
        if card.name in SIM_AZURE_MODELS and "azure_openai" in providers:
            targets.append(providers["azure_openai"])
        for provider in targets:
            _deployment_ensure(card, provider, card.name, ledger, result)


def _deployment_ensure(
    card: ModelCard, provider: Provider, upstream: str, ledger: SeedLedger, result: DemoResult
) -> None:
    name = f"{card.name}@{provider.name}"
    if (
        name in ledger.deployment_names
        or ledger.seen("deployment", name)
        or provider.name not in ledger.new_providers
        or card.name in ledger.operator_models
    ):
        return
    deployment_create(model=card, provider=provider, name=name, upstream_model=upstream)
    ledger.add("deployment", name)
    ledger.deployment_names.add(name)
    result.count("deployments")


def _real_providers(catalog: Catalog, ledger: SeedLedger, result: DemoResult) -> None:
    existing = {p.name: p for p in Provider.objects.filter(name__in=[spec.name for spec in REAL_PROVIDERS])}
    served = _served_models()
    for spec in REAL_PROVIDERS:
        provider = existing.get(spec.name)
        present = bool(_environment(spec.key_env))
        if provider is not None and (provider.secret_env != spec.key_env or not ledger.seen("provider", spec.name)):
            if present:
                result.messages.append(f"Provider {spec.name}: set up by hand, so {spec.key_env} is not used.")
            continue
        if provider is None and ledger.seen("provider", spec.name):
            if present:
                result.messages.append(f"Provider {spec.name}: deleted in the console, so it is not created again.")
            continue
        base_url = (_environment(spec.endpoint_env) if spec.endpoint_env else spec.base_url).rstrip("/")
        if not present or not base_url:
            if provider is not None and provider.is_active:
                provider_update(provider=provider, is_active=False)
                ledger.add("paused", spec.name)
                result.messages.append(f"Provider {spec.name}: {spec.key_env} is gone, provider set inactive.")
            continue
        if provider is None:
            provider = provider_create(
                name=spec.name, kind=spec.kind, base_url=base_url, secret_env=spec.key_env, api_version=spec.api_version
            )
            ledger.add("provider", spec.name)
            ledger.new_providers.add(spec.name)
            result.count("providers")
            result.messages.append(f"Provider {spec.name}: created from {spec.key_env}.")
        else:
            changes = {}
            # Only a provider the seed paused comes back on; one an operator disabled stays off.
            if not provider.is_active and ledger.seen("paused", spec.name):
                changes["is_active"] = True
                ledger.forget("paused", spec.name)
            if provider.base_url != base_url:
                changes["base_url"] = base_url
            if changes:
                provider_update(provider=provider, **changes)
                result.messages.append(f"Provider {spec.name}: {', '.join(sorted(changes))} updated.")
        wanted = set(_environment_list("AZURE_OPENAI_DEPLOYMENTS")) if spec.kind == "azure_openai" else set()
        for card in served:
            upstream = catalog.upstream.get(card.name, {}).get(spec.name)
            first_party = card.vendor in spec.vendors and not card.operator_priced
            if wanted and card.name not in wanted:
                continue
            if upstream or first_party:
                _deployment_ensure(card, provider, upstream or card.name, ledger, result)


# --------------------------------------------------------------------------- compliance


# Classes the demo approves beyond what unlisted models get: sensitive health data only on
# models that run on the operator's own hardware (self-hosted / open-weight).
DEMO_SELF_HOSTED_CLASSES = ("phi",)


def _demo_matrix(organization: Organization, admin: AbstractBaseUser, ledger: SeedLedger, result: DemoResult) -> None:
    """Once, for the demo organization: approve PHI for self-hosted models in the matrix."""
    if ledger.seen("policy", organization.slug):
        return
    from routing.services import policy_edit, unlisted_classes  # the demo is a composition step

    subjects = list(
        ModelCard.objects.filter(Q(operator_priced=True) | Q(tier=Tier.OPEN_WEIGHT), lifecycle=Lifecycle.ACTIVE)
        .order_by("name")
        .values_list("name", flat=True)
    )

    def change(document: dict) -> None:
        classes = [c["name"] for c in document["data_classes"]]
        base = set(unlisted_classes(document))
        for subject in subjects:
            current = set(document["matrix"].get(subject, base))
            document["matrix"][subject] = [c for c in classes if c in current | set(DEMO_SELF_HOSTED_CLASSES)]

    if subjects:
        summary = "Demo: PHI on self-hosted models"
        try:
            policy_edit(organization=organization, actor=admin, summary=summary, change=change)
        except ValidationError as exc:
            result.messages.append(f"Compliance matrix left as it is: {'; '.join(exc.messages)}")
        else:
            result.count("matrix approvals", len(subjects))
    ledger.add("policy", organization.slug)


# --------------------------------------------------------------------------- keys


def _keys(
    organization: Organization, teams: dict[str, Team], admin: AbstractBaseUser, key_file: Path, result: DemoResult
) -> list[ApiKey]:
    keys: list[ApiKey] = []
    for index, (team_name, _description) in enumerate(TEAMS):
        team = teams[team_name]
        name = f"{team_name} demo key"
        key = (
            ApiKey.objects.filter(organization=organization, team=team, name=name, revoked_at__isnull=True)
            .order_by("-created_at")
            .first()
        )
        if key is None:
            issued = api_key_create(
                organization=organization,
                name=name,
                team=team,
                user=admin,
                app_name=f"{team_name.lower()}-demo",
                tags=["demo", team_name.lower()],
                actor=admin,
            )
            key = issued.key
            result.count("keys")
            if index == 0:
                result.demo_secret = issued.secret
        elif index == 0:
            stored = _secret_read(key_file)
            if stored is None or secret_hash(stored) != key.secret_hash:
                # The file with the secret is gone or stale: only a new secret can replace it.
                issued = api_key_rotate(key=key, actor=admin)
                key = issued.key
                result.demo_secret = issued.secret
                result.messages.append(f"{name}: {key_file} was missing or stale, so the key was rotated.")
        keys.append(key)
    return keys


def _secret_read(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def _secret_write(path: Path, secret: str) -> None:
    """Write the demo key readable by its owner only (0600), replacing any older one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    os.chmod(path, 0o600)

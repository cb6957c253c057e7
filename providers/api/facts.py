"""Compliance facts of providers and deployments, and the certification vocabulary.

`/provider-facts/{id}/` and `/deployment-facts/{id}/` read (stated, in force, stale,
history) and change (PATCH) the facts of a provider or deployment the organization
sees; shared ones are changed by the operator only. `/certifications/` lists the
vocabulary and adds or removes the organization's own terms.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from console.api.base import ScopedViewSet
from console.api.permissions import MANAGERS
from providers import facts_services
from providers.api.serializers import is_operator, visible_providers
from providers.facts import Facts, facts_resolve
from providers.models import Deployment, Provider
from providers.models_compliance import REGIONS, CertificationTerm

SHARED_READ_ONLY = "The facts of shared providers and deployments are stated by the operator."


class FactsInput(serializers.Serializer):
    region = serializers.ChoiceField(choices=[("", "unknown / inherited"), *((r, r) for r in REGIONS)], required=False)
    region_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    certifications = serializers.ListField(
        child=serializers.CharField(max_length=32), required=False, allow_null=True, help_text="null: inherited."
    )
    retention_days = serializers.IntegerField(min_value=0, max_value=36500, required=False, allow_null=True)
    trains_on_data = serializers.BooleanField(required=False, allow_null=True)
    zero_data_retention = serializers.BooleanField(required=False, allow_null=True)
    review_due = serializers.DateField(required=False, allow_null=True)
    evidence_url = serializers.URLField(max_length=500, required=False, allow_blank=True)


class FactChangeOutput(serializers.Serializer):
    changed_at = serializers.DateTimeField()
    subject_kind = serializers.CharField()
    subject_name = serializers.CharField()
    actor = serializers.CharField()
    source = serializers.CharField()
    before = serializers.DictField()
    after = serializers.DictField()


class FactsOutput(serializers.Serializer):
    name = serializers.CharField()
    stated = serializers.DictField(help_text="What this provider or deployment states itself.")
    in_force = serializers.DictField(help_text="The facts routing uses (a deployment inherits its provider's).")
    sources = serializers.DictField(help_text="Where each fact in force comes from: deployment, provider or catalog.")
    stale = serializers.BooleanField(help_text="The review date has passed.")
    history = FactChangeOutput(many=True)


def _effective(facts: Facts) -> dict[str, Any]:
    return dict(facts.record) | {"evidence_url": facts.evidence_url}


def _output(name: str, stated: dict, facts: Facts, history: QuerySet) -> dict[str, Any]:
    return {
        "name": name,
        "stated": stated,
        "in_force": _effective(facts),
        "sources": dict(facts.sources),
        "stale": facts.stale(timezone.localdate()),
        "history": list(history),
    }


class _FactsViewSet(ScopedViewSet):
    read_roles = MANAGERS
    write_roles = MANAGERS
    serializer_class = FactsOutput

    def owner_of(self, subject: Any) -> Provider:
        raise NotImplementedError

    def writable(self, subject: Any) -> Any:
        if self.owner_of(subject).organization_id is None and not is_operator(self.request.user):
            raise PermissionDenied(SHARED_READ_ONLY)
        return subject


@extend_schema(tags=["compliance"])
class ProviderFactsViewSet(_FactsViewSet):
    """A provider's compliance facts: region, certifications, retention, training terms, review."""

    queryset = Provider.objects.none()

    def get_queryset(self) -> QuerySet[Provider]:
        if self.schema_only:
            return Provider.objects.none()
        return visible_providers(self.organization)

    def owner_of(self, subject: Provider) -> Provider:
        return subject

    def _render(self, provider: Provider) -> Response:
        stated = facts_services.facts_stated(provider=provider)
        facts = facts_resolve(deployment=None, provider=stated)
        history = facts_services.facts_history(kind="provider", subject_ids=[provider.id])
        return self.render(FactsOutput, _output(provider.name, stated, facts, history))

    @extend_schema(responses=FactsOutput)
    def retrieve(self, request, pk=None):
        return self._render(self.get_object())

    @extend_schema(request=FactsInput, responses=FactsOutput)
    def partial_update(self, request, pk=None):
        provider = self.writable(self.get_object())
        facts_services.compliance_facts_set(
            provider=provider, actor=request.user, source="api", **self.validated(FactsInput)
        )
        return self._render(provider)


@extend_schema(tags=["compliance"])
class DeploymentFactsViewSet(_FactsViewSet):
    """A deployment's own compliance facts over its provider's (empty values inherit)."""

    queryset = Deployment.objects.none()

    def get_queryset(self) -> QuerySet[Deployment]:
        if self.schema_only:
            return Deployment.objects.none()
        visible = Q(provider__organization__isnull=True) | Q(provider__organization=self.organization)
        return Deployment.objects.filter(visible).select_related("model", "provider")

    def owner_of(self, subject: Deployment) -> Provider:
        return subject.provider

    def _render(self, deployment: Deployment) -> Response:
        stated = facts_services.facts_stated(deployment=deployment)
        facts = facts_services.facts_effective(deployment)
        history = facts_services.deployment_facts_history(deployment)
        return self.render(FactsOutput, _output(deployment.name, stated, facts, history))

    @extend_schema(responses=FactsOutput)
    def retrieve(self, request, pk=None):
        return self._render(self.get_object())

    @extend_schema(request=FactsInput, responses=FactsOutput)
    def partial_update(self, request, pk=None):
        deployment = self.writable(self.get_object())
        facts_services.compliance_facts_set(
            deployment=deployment, actor=request.user, source="api", **self.validated(FactsInput)
        )
        return self._render(deployment)


class CertificationTermOutput(serializers.Serializer):
    slug = serializers.CharField()
    label = serializers.CharField()


TERM = CertificationTermOutput
TERMS = CertificationTermOutput(many=True)


class TermInput(serializers.Serializer):
    slug = serializers.CharField(max_length=32)
    label = serializers.CharField(max_length=100)


@extend_schema(tags=["compliance"])
class CertificationViewSet(ScopedViewSet):
    """The certifications and agreements facts and requirements may name: built in and the organization's own."""

    queryset = CertificationTerm.objects.none()
    serializer_class = TermInput
    read_roles = None
    write_roles = MANAGERS
    lookup_url_kwarg = "slug"
    lookup_value_regex = r"[a-z0-9_-]+"
    pagination_class = None  # the vocabulary is short: one plain list

    @extend_schema(responses=TERMS)
    def list(self, request):
        terms = facts_services.certification_vocabulary(organization_id=self.organization.id)
        return Response([{"slug": slug, "label": label} for slug, label in terms])

    @extend_schema(request=TermInput, responses={201: TERM})
    def create(self, request):
        term = facts_services.certification_term_put(
            organization=self.organization, actor=request.user, **self.validated(TermInput)
        )
        return Response({"slug": term.slug, "label": term.label}, status=status.HTTP_201_CREATED)

    @extend_schema(responses={204: None})
    def destroy(self, request, slug=None):
        get_object_or_404(CertificationTerm, organization=self.organization, slug=slug)
        facts_services.certification_term_remove(organization=self.organization, slug=slug, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

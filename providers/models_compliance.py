"""Compliance facts of providers and deployments, their history and the certification vocabulary.

A provider states where it processes data, under which certifications and
agreements, how long it keeps what it is sent and whether it may train on it. A
deployment inherits its provider's facts and may override any of them: an empty
value (``""`` or ``None``) means "as the provider says".
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from console.models import Organization

# Where data is processed. `on-prem`: the organization's own infrastructure.
REGIONS = ("eu", "us", "uk", "ch", "ca", "apac", "global", "on-prem")
BUILTIN_CERTIFICATIONS = (
    ("soc2", "SOC 2"),
    ("iso27001", "ISO 27001"),
    ("hipaa_baa", "HIPAA BAA"),
    ("gdpr_dpa", "GDPR DPA"),
    ("pci_dss", "PCI DSS"),
    ("fedramp", "FedRAMP"),
)
FACT_FIELDS = (
    "region",
    "region_name",
    "certifications",
    "retention_days",
    "trains_on_data",
    "zero_data_retention",
    "review_due",
    "evidence_url",
)


class ComplianceFacts(models.Model):
    """The stated facts of one provider or one deployment (exactly one of the two)."""

    provider = models.OneToOneField(
        "providers.Provider", null=True, blank=True, on_delete=models.CASCADE, related_name="compliance"
    )
    deployment = models.OneToOneField(
        "providers.Deployment", null=True, blank=True, on_delete=models.CASCADE, related_name="compliance"
    )
    region = models.CharField(max_length=16, blank=True, help_text="eu, us, on-prem, ...; empty: unknown or inherited.")
    region_name = models.CharField(max_length=100, blank=True, help_text="The provider's own region, e.g. eu-west-1.")
    certifications = models.JSONField(null=True, blank=True, help_text="Slugs of the vocabulary; null: inherited.")
    retention_days = models.IntegerField(null=True, blank=True, help_text="0: nothing is kept; null: unknown.")
    trains_on_data = models.BooleanField(null=True, blank=True)
    zero_data_retention = models.BooleanField(null=True, blank=True)
    review_due = models.DateField(null=True, blank=True, help_text="After this date the facts show as stale.")
    evidence_url = models.URLField(max_length=500, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(provider__isnull=True, deployment__isnull=False)
                | Q(provider__isnull=False, deployment__isnull=True),
                name="compliance_facts_one_subject",
            )
        ]

    def __str__(self) -> str:
        return f"facts of {self.provider or self.deployment}"


class ComplianceFactChange(models.Model):
    """One change of a provider's or deployment's facts: what it was and what it became.

    Plain names and ids rather than foreign keys: the history outlives what it names.
    """

    organization_id = models.BigIntegerField(null=True, blank=True, db_index=True)  # None: shared
    subject_kind = models.CharField(max_length=16)  # provider | deployment
    subject_id = models.BigIntegerField()
    subject_name = models.CharField(max_length=200)
    changed_at = models.DateTimeField(default=timezone.now)
    actor = models.CharField(max_length=150, blank=True)
    source = models.CharField(max_length=16, default="console")  # console | api | config | catalog
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-changed_at", "-id"]
        indexes = [models.Index(fields=["subject_kind", "subject_id", "-changed_at"])]

    def __str__(self) -> str:
        return f"{self.subject_kind} {self.subject_name} at {self.changed_at:%Y-%m-%d %H:%M}"

    @property
    def changes(self) -> list[tuple[str, object, object]]:
        """(fact, before, after) for each fact this change touched."""
        names = sorted(set(self.before or {}) | set(self.after or {}))
        return [(name, (self.before or {}).get(name), (self.after or {}).get(name)) for name in names]


class CertificationTerm(models.Model):
    """A certification or agreement an organization adds to the built-in vocabulary."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="certification_terms")
    slug = models.CharField(max_length=32)
    label = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["slug"]
        constraints = [models.UniqueConstraint(fields=["organization", "slug"], name="certification_term_unique")]

    def __str__(self) -> str:
        return self.slug

"""Each organization's layer over the operator's catalog (models of the providers app).

The catalog (`ModelCard` rows without an organization) belongs to the platform
operator. What an organization decides about a catalog model lives here: its
contracted prices (the catalog's are the list prices), whether the model is
visible to it, and its own lifecycle state for it.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from console.models import Organization

CONTRACT_PRICE = {"max_digits": 14, "decimal_places": 6, "null": True, "blank": True}


class OrgLifecycle(models.TextChoices):
    """An organization's own state of a catalog model; blank follows the catalog."""

    ACTIVE = "active", "Active"
    DEPRECATED = "deprecated", "Deprecated"
    RETIRED = "retired", "Retired"


class OrganizationModel(models.Model):
    """One organization's prices, visibility and lifecycle for one catalog model."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="model_settings")
    model = models.ForeignKey("providers.ModelCard", on_delete=models.CASCADE, related_name="organization_settings")
    visible = models.BooleanField(default=True, help_text="False: hidden from this organization (404 for its keys).")
    lifecycle = models.CharField(
        max_length=16, choices=OrgLifecycle.choices, blank=True, help_text="Blank: as in the catalog."
    )
    input_price = models.DecimalField(**CONTRACT_PRICE, help_text="Contracted USD per 1M input tokens; empty: list.")
    output_price = models.DecimalField(**CONTRACT_PRICE, help_text="Contracted USD per 1M output tokens; empty: list.")
    cached_input_price = models.DecimalField(
        **CONTRACT_PRICE, help_text="Contracted USD per 1M cached input tokens; empty: list."
    )
    note = models.CharField(max_length=500, blank=True, help_text="e.g. the contract the rates come from.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["organization", "model__name"]
        constraints = [models.UniqueConstraint(fields=["organization", "model"], name="organizationmodel_unique")]

    def __str__(self) -> str:
        return f"{self.organization_id}:{self.model_id}"

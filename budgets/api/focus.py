"""`GET /api/v1/focus?period=YYYY-MM`: billed usage of the organization as FOCUS 1.2 CSV
(owners, admins and finance; admin token or console session)."""

from __future__ import annotations

import re

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.views import APIView

from budgets.finops.focus import COLUMNS, BillingPeriod, focus_rows
from budgets.finops.queries import Scope
from budgets.finops.tables import csv_value
from console.api.permissions import SPEND_READERS, api_membership


class _Echo:
    def write(self, value: str) -> str:
        return value


# The months an export can cover (published in the schema and enforced alike).
PERIOD_PATTERN = r"^(19|20|21)[0-9]{2}-(0[1-9]|1[0-2])$"


class FocusExportView(APIView):
    read_roles = SPEND_READERS

    @extend_schema(
        operation_id="focus_export",
        parameters=[
            OpenApiParameter(
                "period",
                {"type": "string", "pattern": PERIOD_PATTERN},
                required=True,
                description="Billing month, YYYY-MM (UTC).",
            )
        ],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="FOCUS 1.2 rows as CSV."),
            400: OpenApiResponse(description="A period that is not YYYY-MM."),
            403: OpenApiResponse(description="Only owners, admins and finance may export billing data."),
        },
    )
    def get(self, request):
        membership = api_membership(request)
        if membership is None or membership.role not in SPEND_READERS:
            from rest_framework.exceptions import PermissionDenied

            raise PermissionDenied("Only owners, admins and finance may export billing data.")
        raw = request.query_params.get("period", "")
        try:
            if not re.fullmatch(PERIOD_PATTERN, raw):
                raise ValueError(f"Not a month: {raw!r} (use YYYY-MM, years 1900 to 2199).")
            period = BillingPeriod.month(raw)
        except ValueError as error:
            raise serializers.ValidationError({"period": str(error)}) from error
        organization = membership.organization
        rows = focus_rows(
            scope=Scope(organization_id=organization.id), period=period, organization_name=organization.name
        )

        def lines():
            import csv

            writer = csv.writer(_Echo())
            yield writer.writerow(COLUMNS)
            for row in rows:
                yield writer.writerow([csv_value(row[name]) for name in COLUMNS])

        response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="focus-{organization.slug}-{period.start:%Y-%m}.csv"'
        return response

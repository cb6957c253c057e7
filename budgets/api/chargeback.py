"""`GET /api/v1/chargeback?period=YYYY-MM[&team=ID]`: the monthly chargeback statement as CSV —
per team, model and provider, with a total line; one team's statement with `team`
(owners, admins and finance; admin token or console session)."""

from __future__ import annotations

import io

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.views import APIView

from budgets.api.focus import PERIOD_PATTERN
from budgets.finops.focus import BillingPeriod
from budgets.finops.reports import chargeback_csv
from console.api.permissions import SPEND_READERS, api_membership


class ChargebackView(APIView):
    read_roles = SPEND_READERS

    @extend_schema(
        operation_id="chargeback_statement",
        parameters=[
            OpenApiParameter(
                "period",
                {"type": "string", "pattern": PERIOD_PATTERN},
                required=True,
                description="Month, YYYY-MM (UTC).",
            ),
            OpenApiParameter(
                "team",
                {"type": "integer", "minimum": 1, "maximum": 2147483647},
                required=False,
                description="One team's statement.",
            ),
        ],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="The statement as CSV."),
            400: OpenApiResponse(description="A period that is not YYYY-MM, or a team id that is not one."),
            404: OpenApiResponse(description="No such team in this organization."),
            403: OpenApiResponse(description="Only owners, admins and finance may read chargeback statements."),
        },
    )
    def get(self, request):
        membership = api_membership(request)
        if membership is None or membership.role not in SPEND_READERS:
            raise PermissionDenied("Only owners, admins and finance may read chargeback statements.")
        try:
            period = BillingPeriod.month(request.query_params.get("period", ""))
        except ValueError as error:
            raise serializers.ValidationError({"period": str(error)}) from error
        organization = membership.organization
        team_id = None
        raw_team = request.query_params.get("team", "")
        if raw_team:
            if not raw_team.isdigit() or not 1 <= int(raw_team) <= 2147483647:
                raise serializers.ValidationError({"team": "A team id (a positive integer)."})
            if not organization.teams.filter(pk=int(raw_team)).exists():
                raise NotFound("No such team in this organization.")
            team_id = int(raw_team)
        out = io.StringIO()
        chargeback_csv(out, organization_id=organization.id, start=period.start, end=period.end, team_id=team_id)
        response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
        suffix = f"-team{team_id}" if team_id else ""
        name = f"chargeback-{organization.slug}-{period.start:%Y-%m}{suffix}.csv"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response

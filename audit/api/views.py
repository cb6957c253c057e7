"""The ledger's management API (/api/v1/ledger/...): checkpoints, proofs, leaves, export.

Every endpoint reads the log of the organization the request acts in; another
organization's request ids and sizes are simply not found."""

from __future__ import annotations

import base64
import json

from django.http import HttpResponse, JsonResponse
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, NotFound, ValidationError
from rest_framework.response import Response

from audit import selectors
from audit.services import export_build, export_for_time
from audit.signing import public_keys_document
from console.api.base import ScopedViewSet
from console.api.permissions import SPEND_READERS

MAX_LEAVES = 1000


class LedgerInconsistent(APIException):
    status_code = 409
    default_detail = "The stored log is inconsistent; run a verification."
    default_code = "ledger_inconsistent"


def b64(h: bytes) -> str:
    return base64.b64encode(h).decode()


def _int(params, name: str, *, required: bool = True, minimum: int = 0) -> int | None:
    raw = params.get(name)
    if raw in (None, ""):
        if required:
            raise ValidationError({name: "This parameter is required."})
        return None
    try:
        value = int(raw)
    except ValueError as exc:
        raise ValidationError({name: "Expected a whole number."}) from exc
    if value < minimum:
        raise ValidationError({name: f"Must be at least {minimum}."})
    if value > 2**63 - 1:
        raise ValidationError({name: "Too large."})
    return value


class CheckpointOut(serializers.Serializer):
    origin = serializers.CharField(source="log.origin")
    size = serializers.IntegerField()
    root_hash = serializers.CharField()
    key_id = serializers.CharField()
    created_at = serializers.DateTimeField()
    note = serializers.SerializerMethodField()

    def get_note(self, checkpoint) -> str:
        return selectors.checkpoint_with_cosignatures(checkpoint)


class LeafOut(serializers.Serializer):
    index = serializers.IntegerField()
    entry_id = serializers.CharField()
    kind = serializers.CharField()
    created_at = serializers.DateTimeField()
    leaf = serializers.CharField(source="data")
    leaf_hash = serializers.SerializerMethodField()

    def get_leaf_hash(self, leaf) -> str:
        return bytes(leaf.leaf_hash).hex()


class LedgerViewSet(ScopedViewSet):
    read_roles = SPEND_READERS

    def get_queryset(self):
        return selectors.leaves_range(self._log(), start=0, end=0)

    def _log(self):
        log = selectors.log_for(self.organization.id)
        if log is None or log.size == 0:
            raise NotFound("This organization's log has no checkpoint yet.")
        return log

    def _checkpoint(self, log, size: int | None):
        checkpoint = selectors.checkpoint_latest(log) if size is None else selectors.checkpoint_by_size(log, size)
        if checkpoint is None:
            raise NotFound(f"No checkpoint of size {size}.")
        return checkpoint

    @extend_schema(
        parameters=[
            OpenApiParameter("size", OpenApiTypes.INT, description="a checkpoint's tree size; latest when absent")
        ],
        responses=CheckpointOut,
    )
    @action(detail=False, methods=["get"])
    def checkpoint(self, request):
        """The latest signed checkpoint (C2SP signed note, with witness cosignatures), or one by size."""
        log = self._log()
        checkpoint = self._checkpoint(log, _int(request.query_params, "size", required=False, minimum=1))
        if request.query_params.get("output") == "note":
            return HttpResponse(
                selectors.checkpoint_with_cosignatures(checkpoint), content_type="text/plain; charset=utf-8"
            )
        return self.render(CheckpointOut, checkpoint)

    @extend_schema(
        parameters=[
            OpenApiParameter("request_id", OpenApiTypes.STR, description="a request id (or event:<id>)"),
            OpenApiParameter("index", OpenApiTypes.INT, description="a leaf index"),
            OpenApiParameter("size", OpenApiTypes.INT, description="tree size of the checkpoint; latest when absent"),
        ],
        responses=OpenApiTypes.OBJECT,
    )
    @action(detail=False, methods=["get"])
    def inclusion(self, request):
        """An RFC 9162 inclusion proof of one leaf in a checkpoint's tree."""
        log = self._log()
        params = request.query_params
        size = _int(params, "size", required=False, minimum=1)
        checkpoint = self._checkpoint(log, size)
        if params.get("request_id"):
            leaf = selectors.leaf_by_entry(log, params["request_id"])
        else:
            index = _int(params, "index")
            leaf = selectors.leaves_range(log, start=index, end=index + 1).first()
        if leaf is None:
            raise NotFound("No such leaf in this organization's log.")
        if leaf.index >= checkpoint.size:
            raise ValidationError({"size": f"Leaf {leaf.index} is not in the tree of size {checkpoint.size}."})
        try:
            proof = selectors.inclusion_proof(log, index=leaf.index, size=checkpoint.size)
        except selectors.LedgerCorrupt as exc:
            raise LedgerInconsistent(str(exc)) from exc
        return Response(
            {
                "origin": log.origin,
                "index": leaf.index,
                "tree_size": checkpoint.size,
                "leaf": leaf.data,
                "leaf_hash": b64(bytes(leaf.leaf_hash)),
                "proof": [b64(h) for h in proof],
                "checkpoint": selectors.checkpoint_with_cosignatures(checkpoint),
            }
        )

    @extend_schema(
        parameters=[
            OpenApiParameter("first", OpenApiTypes.INT, required=True),
            OpenApiParameter("second", OpenApiTypes.INT, required=True),
        ],
        responses=OpenApiTypes.OBJECT,
    )
    @action(detail=False, methods=["get"])
    def consistency(self, request):
        """An RFC 9162 consistency proof between two checkpoint sizes."""
        log = self._log()
        first = _int(request.query_params, "first", minimum=1)
        second = _int(request.query_params, "second", minimum=1)
        if first > second:
            raise ValidationError({"first": "The first size cannot be larger than the second."})
        self._checkpoint(log, first)
        self._checkpoint(log, second)
        try:
            proof = selectors.consistency_proof(log, size1=first, size2=second)
        except selectors.LedgerCorrupt as exc:
            raise LedgerInconsistent(str(exc)) from exc
        return Response({"origin": log.origin, "first": first, "second": second, "proof": [b64(h) for h in proof]})

    @extend_schema(
        parameters=[
            OpenApiParameter("start", OpenApiTypes.INT, required=True),
            OpenApiParameter(
                "end", OpenApiTypes.INT, required=True, description=f"exclusive; at most {MAX_LEAVES} leaves"
            ),
        ],
        responses=LeafOut(many=True),
    )
    @action(detail=False, methods=["get"])
    def leaves(self, request):
        """Sealed leaves [start, end) as canonical JSON strings."""
        log = self._log()
        start = _int(request.query_params, "start")
        end = _int(request.query_params, "end", minimum=1)
        if end <= start or end - start > MAX_LEAVES:
            raise ValidationError({"end": f"end must be after start, at most {MAX_LEAVES} leaves."})
        if start >= log.size:
            raise ValidationError({"start": f"The log has {log.size} leaves."})
        leaves = selectors.leaves_range(log, start=start, end=min(end, log.size))
        return Response(LeafOut(leaves, many=True).data)

    @extend_schema(
        parameters=[
            OpenApiParameter("since", OpenApiTypes.DATETIME),
            OpenApiParameter("until", OpenApiTypes.DATETIME),
        ],
        responses=OpenApiTypes.OBJECT,
    )
    @action(detail=False, methods=["get"])
    def export(self, request):
        """The export file the offline verifier reads (whole log, or leaves of a time range)."""
        log = self._log()
        since, until = request.query_params.get("since"), request.query_params.get("until")
        if since or until:
            start, end = parse_datetime(since or ""), parse_datetime(until or "")
            if start is None or end is None or start.tzinfo is None or end.tzinfo is None or end <= start:
                raise ValidationError({"since": "since and until are ISO 8601 times with a zone, since before until."})
            doc = export_for_time(log=log, since=start, until=end)
        else:
            doc = export_build(log=log)
        response = HttpResponse(json.dumps(doc), content_type="application/json")
        response["Content-Disposition"] = f'attachment; filename="ledger-{self.organization.slug}.json"'
        return response


def well_known_keys(request):
    """Public: every log key ever used (key ids, validity) and the trusted witness keys."""
    response = JsonResponse(public_keys_document())
    response["Cache-Control"] = "public, max-age=300"
    return response

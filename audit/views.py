"""Console pages of the ledger: Integrity (state, verify now, proof lookup, export) and the audit trail."""

from __future__ import annotations

import base64
import json
from datetime import datetime, time, timedelta

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from audit import selectors
from audit.forms import ExportForm, LookupForm, TrailFilterForm
from audit.models import AuditEvent, Leaf, Verification
from audit.services import export_for_time, log_get_or_create, verification_start
from audit.verifier import gatehouse_verify as gv
from console.access import HtmxHttpRequest, render_page, role_required
from console.models import Role

READERS = (Role.OWNER, Role.ADMIN, Role.FINANCE)
TRAIL_PER_PAGE = 50


def _age(at: datetime | None) -> timedelta | None:
    return timezone.now() - at if at else None


@role_required(*READERS)
@require_GET
def integrity(request: HtmxHttpRequest) -> HttpResponse:
    state = selectors.integrity_state(request.organization.id)
    cosigned = selectors.latest_cosigned(state.log) if state.log else {}
    witnesses = [
        {
            "state": w,
            "cosignature": cosigned.get(w.witness_id),
            "age": _age(getattr(cosigned.get(w.witness_id), "timestamp", None)),
        }
        for w in state.witnesses
    ]
    checkpoint_age = _age(state.checkpoint.created_at if state.checkpoint else None)
    max_age = timedelta(seconds=settings.GATEHOUSE_LEDGER["MAX_CHECKPOINT_AGE"])
    oldest_pending = selectors.pending_oldest(request.organization.id) if state.pending else None
    context = {
        "state": state,
        "checkpoint_age": checkpoint_age,
        "stale": oldest_pending is not None and timezone.now() - oldest_pending > max_age,
        "witnesses": witnesses,
        "verification": state.verification,
        "lookup_form": LookupForm(),
        "export_form": ExportForm(),
        "can_verify": request.membership.role in (Role.OWNER, Role.ADMIN),
    }
    return render(request, "audit/integrity.html", context)


def _dispatch(run: Verification) -> None:
    """Hand the run to the worker; when no worker can be reached the run says so."""
    from kombu.exceptions import OperationalError

    from audit.tasks import ledger_verify_run

    try:
        ledger_verify_run.delay(run.id)
    except OperationalError as exc:
        Verification.objects.filter(pk=run.pk).update(
            status="failed", problems=[f"the background worker could not be reached: {exc}"], finished_at=timezone.now()
        )


@role_required(Role.OWNER, Role.ADMIN)
@require_POST
def verify_now(request: HtmxHttpRequest) -> HttpResponse:
    log = log_get_or_create(organization_id=request.organization.id)
    running = log.verifications.filter(status="running").first()
    run = running or verification_start(log=log, requested_by=request.user.get_username())
    if running is None:
        transaction.on_commit(lambda: _dispatch(run))
    if request.htmx:
        return render(request, "audit/_verification.html", {"verification": run, "can_verify": True})
    messages.info(request, "Verification started; this page shows its progress.")
    return redirect("audit:integrity")


@role_required(*READERS)
@require_GET
def verification_status(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    run = Verification.objects.filter(pk=pk, log__organization_id=request.organization.id).select_related("log").first()
    if run is None:
        raise Http404("No such verification in this organization.")
    return render(
        request,
        "audit/_verification.html",
        {"verification": run, "can_verify": request.membership.role in (Role.OWNER, Role.ADMIN)},
    )


def _b64(h: bytes) -> str:
    return base64.b64encode(h).decode()


@role_required(*READERS)
@require_GET
def lookup(request: HtmxHttpRequest) -> HttpResponse:
    form = LookupForm(request.GET)
    context: dict = {"lookup_form": form}
    if form.is_valid():
        log = selectors.log_for(request.organization.id)
        leaf = selectors.leaf_by_entry(log, form.cleaned_data["request_id"].strip()) if log else None
        checkpoint = selectors.checkpoint_latest(log) if log else None
        if leaf is None or checkpoint is None:
            form.add_error("request_id", "No sealed leaf with this id in this organization's log (yet).")
        else:
            try:
                proof = selectors.inclusion_proof(log, index=leaf.index, size=checkpoint.size)
            except selectors.LedgerCorrupt as exc:
                form.add_error("request_id", f"The stored log is inconsistent ({exc}); run a verification.")
                return render_page(request, "audit/lookup.html", "lookup-result", context)
            ok = gv.verify_inclusion(
                leaf.index,
                checkpoint.size,
                gv.leaf_hash(leaf.data.encode()),
                proof,
                bytes.fromhex(checkpoint.root_hash),
            )
            context.update(
                leaf=leaf,
                leaf_pretty=json.dumps(json.loads(leaf.data), indent=2),
                checkpoint=checkpoint,
                proof=[_b64(h) for h in proof],
                proof_ok=ok,
            )
    return render_page(request, "audit/lookup.html", "lookup-result", context)


@role_required(*READERS)
@require_GET
def export(request: HtmxHttpRequest) -> HttpResponse:
    form = ExportForm(request.GET)
    log = selectors.log_for(request.organization.id)
    if not form.is_valid() or log is None:
        if log is None:
            messages.error(request, "This organization's log has no leaves yet.")
        else:
            for error in form.errors.values():
                messages.error(request, " ".join(error))
        return redirect("audit:integrity")
    doc = export_for_time(log=log, since=form.cleaned_data["since"], until=form.cleaned_data["until"])
    response = HttpResponse(json.dumps(doc), content_type="application/json")
    stamp = form.cleaned_data["since"].strftime("%Y%m%d")
    response["Content-Disposition"] = f'attachment; filename="ledger-{request.organization.slug}-{stamp}.json"'
    return response


@role_required(*READERS)
@require_GET
def trail(request: HtmxHttpRequest) -> HttpResponse:
    """The audit trail: the control-plane leaves of this organization's log, with their details."""
    filters = TrailFilterForm(request.GET)
    events = AuditEvent.objects.filter(organization_id=request.organization.id)
    if filters.is_valid():
        data = filters.cleaned_data
        if data["action"]:
            events = events.filter(action__icontains=data["action"])
        if data["actor"]:
            events = events.filter(actor__icontains=data["actor"])
        zone = timezone.get_current_timezone()
        if data["since"]:
            events = events.filter(created_at__gte=datetime.combine(data["since"], time.min, zone))
        if data["until"]:
            events = events.filter(created_at__lt=datetime.combine(data["until"] + timedelta(days=1), time.min, zone))
    page = Paginator(events.order_by("-created_at", "-id"), TRAIL_PER_PAGE).get_page(request.GET.get("page"))
    log = selectors.log_for(request.organization.id)
    entry_ids = [f"event:{e.id}" for e in page.object_list]
    indexes = dict(Leaf.objects.filter(log=log, entry_id__in=entry_ids).values_list("entry_id", "index")) if log else {}
    rows = [{"event": e, "index": indexes.get(f"event:{e.id}")} for e in page.object_list]
    return render_page(
        request,
        "audit/trail.html",
        "trail-results",
        {"filters": filters, "page": page, "rows": rows, "filtered": bool(request.GET)},
    )

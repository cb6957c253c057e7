"""Knowledge base pages: create, upload (indexed inline), delete with confirmation."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from console.access import HtmxHttpRequest, is_manager, organization_required
from console.forms import form_error_apply
from workspace import knowledge
from workspace.forms import KnowledgeBaseForm, UploadForm
from workspace.models import Document, KnowledgeBase
from workspace.services import workspace_key_ensure
from workspace.turns import with_gateway
from workspace.views.common import require_enabled, serving_gateway


@organization_required
def knowledge_list(request: HtmxHttpRequest) -> HttpResponse:
    require_enabled(request)
    form = KnowledgeBaseForm()
    if request.method == "POST":
        form = KnowledgeBaseForm(request.POST)
        if form.is_valid():
            try:
                base = knowledge.knowledge_base_create(
                    organization=request.organization, actor=request.user, **form.cleaned_data
                )
            except ValidationError as exc:
                form_error_apply(form, exc)
            else:
                return redirect("workspace:knowledge-detail", base.pk)
    bases = KnowledgeBase.objects.filter(organization=request.organization).annotate(document_count=Count("documents"))
    page = Paginator(bases, 25).get_page(request.GET.get("page"))
    context = {"form": form, "page": page, "can_manage": is_manager(request)}
    return render(request, "workspace/knowledge_list.html", context)


@organization_required
def knowledge_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    require_enabled(request)
    base = get_object_or_404(KnowledgeBase, pk=pk, organization=request.organization)
    form = UploadForm()
    if request.method == "POST":
        form = UploadForm(request.POST, request.FILES)
        if form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                document = knowledge.document_create(
                    knowledge_base=base, actor=request.user, name=upload.name, data=upload.read()
                )
            except ValidationError as exc:
                form_error_apply(form, exc)
            else:
                # Indexed inline: small files take a moment; see docs/workspace.md.
                key = workspace_key_ensure(organization=request.organization, user=request.user)
                document = with_gateway(
                    serving_gateway(request),
                    lambda gateway: knowledge.document_ingest(gateway, document_id=document.pk, key_id=key.api_key_id),
                )
                if document.status == "ready":
                    messages.success(request, f"{document.name} indexed in {document.chunk_count} parts.")
                else:
                    messages.error(request, f"{document.name} could not be indexed: {document.error}")
                return redirect("workspace:knowledge-detail", base.pk)
    documents = Paginator(base.documents.all(), 50).get_page(request.GET.get("page"))
    context = {"base": base, "form": form, "documents": documents, "can_manage": is_manager(request)}
    return render(request, "workspace/knowledge_detail.html", context)


@organization_required
def knowledge_delete(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    base = get_object_or_404(KnowledgeBase, pk=pk, organization=request.organization)
    if request.method == "POST":
        try:
            knowledge.knowledge_base_delete(knowledge_base=base, actor=request.user)
        except PermissionDenied as exc:
            messages.error(request, str(exc))
            return redirect("workspace:knowledge-detail", pk)
        messages.success(request, f"Knowledge base {base.name} deleted.")
        return redirect("workspace:knowledge-list")
    return render(
        request,
        "console/confirm.html",
        {
            "title": f"Delete knowledge base {base.name}?",
            "message": "Its documents and their parts are deleted; conversations using it go on without it.",
            "action": reverse("workspace:knowledge-delete", args=[pk]),
            "confirm_label": "Delete knowledge base",
            "cancel_url": reverse("workspace:knowledge-detail", args=[pk]),
        },
    )


@organization_required
def document_delete(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    document = get_object_or_404(
        Document.objects.select_related("knowledge_base"), pk=pk, knowledge_base__organization=request.organization
    )
    back = reverse("workspace:knowledge-detail", args=[document.knowledge_base_id])
    if request.method == "POST":
        try:
            knowledge.document_delete(document=document, actor=request.user)
        except PermissionDenied as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"{document.name} deleted.")
        return redirect(back)
    return render(
        request,
        "console/confirm.html",
        {
            "title": f"Delete {document.name}?",
            "message": "Its parts leave the knowledge base; earlier answers keep their citations.",
            "action": reverse("workspace:document-delete", args=[pk]),
            "confirm_label": "Delete document",
            "cancel_url": back,
        },
    )

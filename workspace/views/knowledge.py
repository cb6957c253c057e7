"""Knowledge base pages: create, upload (indexed by a Celery task, progress polled),
cited passages, delete with confirmation."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from console.access import HtmxHttpRequest, is_manager, organization_required, render_page
from console.forms import form_error_apply
from workspace import knowledge
from workspace.forms import KnowledgeBaseForm, UploadForm
from workspace.models import Chunk, Document, DocumentStatus, KnowledgeBase
from workspace.selectors import workspace_settings
from workspace.services import workspace_key_ensure
from workspace.views.common import require_enabled


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
    bases = (
        KnowledgeBase.objects.filter(organization=request.organization)
        .annotate(document_count=Count("documents"))
        .order_by("name", "id")
    )
    page = Paginator(bases, 25).get_page(request.GET.get("page"))
    context = {"form": form, "page": page, "can_manage": is_manager(request)}
    return render(request, "workspace/knowledge_list.html", context)


@organization_required
def knowledge_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The documents, their indexing progress (polled while one is pending), an upload."""
    require_enabled(request)
    base = get_object_or_404(KnowledgeBase, pk=pk, organization=request.organization)
    can_upload = workspace_settings(organization=request.organization).uploads_allowed or is_manager(request)
    form = UploadForm()
    if request.method == "POST":
        form = UploadForm(request.POST, request.FILES)
        if form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                key = workspace_key_ensure(organization=request.organization, user=request.user)
                document = knowledge.document_create(
                    knowledge_base=base,
                    actor=request.user,
                    name=upload.name,
                    data=upload.read(),
                    key_id=key.api_key_id,
                )
            except ValidationError as exc:
                form_error_apply(form, exc)
            except PermissionDenied as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"{document.name} is being indexed ({document.chunk_count} parts).")
                return redirect("workspace:knowledge-detail", base.pk)
    documents = Paginator(base.documents.all(), 50).get_page(request.GET.get("page"))
    context = {
        "base": base,
        "form": form,
        "documents": documents,
        "indexing": any(d.status == DocumentStatus.PENDING for d in documents.object_list),
        "can_manage": is_manager(request),
        "can_upload": can_upload,
    }
    return render_page(request, "workspace/knowledge_detail.html", "documents", context)


@organization_required
def chunk_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The passage an answer cited, with the parts around it in its document."""
    require_enabled(request)
    chunk = get_object_or_404(
        Chunk.objects.select_related("document", "knowledge_base"),
        pk=pk,
        knowledge_base__organization=request.organization,
    )
    around = Chunk.objects.filter(
        document_id=chunk.document_id, ordinal__gte=chunk.ordinal - 1, ordinal__lte=chunk.ordinal + 1
    ).order_by("ordinal")
    return render(request, "workspace/chunk_detail.html", {"chunk": chunk, "around": around})


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

"""Conversation pages: the list (search, pin, rename, delete) and the thread."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from console.access import HtmxHttpRequest, is_manager, organization_required, render_page
from console.forms import form_error_apply
from workspace import selectors, services
from workspace.forms import ConversationForm, RenameForm
from workspace.markdown import MarkdownRenderer
from workspace.models import Conversation, KnowledgeBase
from workspace.turns import turn_run, with_gateway
from workspace.views.common import attachment_of, chat_models, model_picker, require_enabled, serving_gateway


def _conversation(request: HtmxHttpRequest, pk: int) -> Conversation:
    """The member's own conversation in the current organization (anything else is 404)."""
    return get_object_or_404(
        Conversation.objects.select_related("persona", "knowledge_base"),
        pk=pk,
        organization=request.organization,
        user=request.user,
    )


@organization_required
def conversation_list(request: HtmxHttpRequest) -> HttpResponse:
    require_enabled(request)
    org = request.organization
    personas = selectors.personas_for(organization=org, user=request.user)
    bases = KnowledgeBase.objects.filter(organization=org)
    form = ConversationForm(personas=personas, knowledge_bases=bases)
    if request.method == "POST":
        form = ConversationForm(request.POST, personas=personas, knowledge_bases=bases)
        if form.is_valid():
            persona = form.cleaned_data["persona"]
            try:
                services.workspace_key_ensure(organization=org, user=request.user)
                conversation = services.conversation_create(
                    organization=org,
                    user=request.user,
                    model=form.cleaned_data["model"],
                    persona=persona,
                    knowledge_base=form.cleaned_data["knowledge_base"],
                    data_class=form.cleaned_data["data_class"],
                )
            except ValidationError as exc:
                form_error_apply(form, exc)
            else:
                return redirect("workspace:conversation-detail", conversation.pk)
    search = request.GET.get("q", "")
    everyone = is_manager(request) and request.GET.get("everyone") == "1"
    page = selectors.conversation_page(
        organization=org, user=None if everyone else request.user, search=search, page=request.GET.get("page")
    )
    context = {
        "everyone": everyone,
        "page": page,
        "search": search,
        "form": form,
        "personas": personas,
        "knowledge_bases": bases,
        "models": chat_models(request),
        "has_key": selectors.workspace_key_of(organization=org, user=request.user) is not None,
        "can_manage": is_manager(request),
    }
    return render_page(request, "workspace/conversation_list.html", "conversations", context)


@organization_required
@require_POST
def workspace_open(request: HtmxHttpRequest) -> HttpResponse:
    """Issue the member's workspace key (explicitly: pages never issue one on a GET)."""
    require_enabled(request)
    key = services.workspace_key_ensure(organization=request.organization, user=request.user)
    messages.success(request, f"Your workspace is open; its traffic uses the key {key.api_key.name}.")
    return redirect("workspace:conversation-list")


@organization_required
def conversation_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    require_enabled(request)
    conversation = _conversation(request, pk)
    renderer = MarkdownRenderer()
    thread = [
        {"message": m, "html": renderer.render(m.content) if m.kind == "answer" else ""}
        for m in conversation.messages.all()
    ]
    context = {
        "conversation": conversation,
        "thread": thread,
        "picker": model_picker(request, conversation.persona, conversation.data_class),
        "can_manage": is_manager(request),
        "rename_form": RenameForm(initial={"title": conversation.title}),
    }
    return render(request, "workspace/conversation_detail.html", context)


@organization_required
@require_POST
def conversation_send(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """A turn without streaming (the page without JavaScript): answered whole, then the thread."""
    require_enabled(request)
    conversation = _conversation(request, pk)
    regenerate = request.POST.get("regenerate") == "1"
    try:
        attachment = attachment_of(request)
        with_gateway(
            serving_gateway(request),
            lambda gateway: turn_run(
                gateway,
                conversation_id=conversation.pk,
                user_id=request.user.pk,
                content=request.POST.get("content", ""),
                model=request.POST.get("model", ""),
                regenerate=regenerate,
                edit_of=int(request.POST["edit"]) if request.POST.get("edit", "").isdigit() else None,
                attachment=attachment,
            ),
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("workspace:conversation-detail", conversation.pk)


@organization_required
@require_POST
def conversation_rename(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    conversation = _conversation(request, pk)
    form = RenameForm(request.POST)
    if form.is_valid():
        services.conversation_rename(conversation=conversation, title=form.cleaned_data["title"])
        messages.success(request, "Conversation renamed.")
    else:
        messages.error(request, "A conversation needs a title (at most 200 characters).")
    back = request.POST.get("next", "")
    if back and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        return redirect(back)
    return redirect("workspace:conversation-detail", pk)


@organization_required
@require_POST
def conversation_pin(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    conversation = _conversation(request, pk)
    services.conversation_pin(conversation=conversation, pinned=request.POST.get("pinned") == "1")
    return redirect("workspace:conversation-list")


@organization_required
@require_POST
def conversation_lock(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    if not is_manager(request):
        raise PermissionDenied("Only owners and admins lock a conversation's model.")
    conversation = get_object_or_404(Conversation, pk=pk, organization=request.organization)
    locked = request.POST.get("locked") == "1"
    services.conversation_lock(conversation=conversation, locked=locked, actor=request.user)
    messages.success(request, f"Model {'locked to ' + conversation.model if locked else 'unlocked'}.")
    if conversation.user_id != request.user.pk:
        return redirect(reverse("workspace:conversation-list") + "?everyone=1")
    return redirect("workspace:conversation-detail", pk)


@organization_required
def conversation_delete(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    conversation = _conversation(request, pk)
    if request.method == "POST":
        services.conversation_delete(conversation=conversation)
        messages.success(request, f"Conversation {conversation.title} deleted.")
        return redirect("workspace:conversation-list")
    return render(
        request,
        "console/confirm.html",
        {
            "title": f"Delete {conversation.title}?",
            "message": "Its messages are deleted for good. Usage records of its turns stay.",
            "action": reverse("workspace:conversation-delete", args=[pk]),
            "confirm_label": "Delete conversation",
            "cancel_url": reverse("workspace:conversation-detail", args=[pk]),
        },
    )


@organization_required
def conversation_export(request: HtmxHttpRequest, pk: int, fmt: str) -> HttpResponse:
    conversation = _conversation(request, pk)
    if fmt == "md":
        body, kind = selectors.conversation_export_markdown(conversation=conversation), "text/markdown"
    elif fmt == "json":
        body, kind = selectors.conversation_export_json(conversation=conversation), "application/json"
    else:
        raise Http404("Export as .md or .json.")
    response = HttpResponse(body, content_type=f"{kind}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="conversation-{conversation.pk}.{fmt}"'
    return response

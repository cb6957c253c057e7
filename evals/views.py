"""Console pages of evaluations: suites, cases, runs, leaderboards, diffs, model scores."""

from __future__ import annotations

from collections import defaultdict

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from console.access import HtmxHttpRequest, is_manager, manager_required, organization_required, render_page
from console.forms import form_error_apply
from providers.facade import model_names

from . import charts, selectors, services
from .forms import CaseForm, DiffForm, ImportForm, RecommendForm, RunForm, SuiteForm
from .models import Case, Run, Suite
from .recommend import route_recommend
from .suite_io import suite_dump

PAGE_SIZE = 25


def _suite(request: HtmxHttpRequest, pk: int) -> Suite:
    return get_object_or_404(Suite, organization=request.organization, pk=pk)


@organization_required
@require_http_methods(["GET", "POST"])
def suite_list(request: HtmxHttpRequest) -> HttpResponse:
    org = request.organization
    form = SuiteForm(request.POST or None, prefix="suite")
    import_form = ImportForm(prefix="import")
    if request.method == "POST":
        if not is_manager(request):
            return HttpResponse("Only owners and admins may create suites.", status=403)
        if form.is_valid():
            try:
                suite = services.suite_create(organization=org, actor=request.user, **form.cleaned_data)
            except ValidationError as exc:
                form_error_apply(form, exc)
            else:
                messages.success(request, f"Suite {suite.name} created; add its cases.")
                return redirect("evals:suite-detail", pk=suite.pk)
    page = Paginator(selectors.suites_for(organization_id=org.id), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "evals/suite_list.html",
        {"page": page, "form": form, "import_form": import_form, "can_manage": is_manager(request)},
    )


@manager_required
@require_POST
def suite_import(request: HtmxHttpRequest) -> HttpResponse:
    form = ImportForm(request.POST, request.FILES, prefix="import")
    if form.is_valid():
        try:
            suite = services.suite_import(
                organization=request.organization,
                text=form.cleaned_data["text"],
                fmt=form.cleaned_data["format"],
                actor=request.user,
            )
        except ValidationError as exc:
            form_error_apply(form, exc)
        else:
            messages.success(request, f"Suite {suite.name} imported (version {suite.version}).")
            return redirect("evals:suite-detail", pk=suite.pk)
    page = Paginator(selectors.suites_for(organization_id=request.organization.id), PAGE_SIZE).get_page(1)
    return render(
        request,
        "evals/suite_list.html",
        {"page": page, "form": SuiteForm(prefix="suite"), "import_form": form, "can_manage": True},
        status=400,
    )


@manager_required
@require_POST
def starter_install(request: HtmxHttpRequest) -> HttpResponse:
    suites = services.starter_suites_install(organization=request.organization, actor=request.user)
    messages.success(request, f"Starter suites ready: {', '.join(s.name for s in suites)}.")
    return redirect("evals:suite-list")


def _trend_chart(suite: Suite) -> str:
    series: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for score in selectors.trend(suite=suite):
        series[score.model].append((score.created_at.isoformat(), float(score.score)))
    return charts.trends(dict(series)) if series else ""


@organization_required
@require_http_methods(["GET", "POST"])
def suite_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    suite = _suite(request, pk)
    choices = sorted(set(model_names(organization_id=request.organization.id)) | set(suite.model_names))
    run_form = RunForm(request.POST or None, model_choices=choices, initial={"models": suite.model_names})
    if request.method == "POST":
        if not is_manager(request):
            return HttpResponse("Only owners and admins may start runs.", status=403)
        if run_form.is_valid():
            try:
                run = services.run_create(
                    suite=suite,
                    models=run_form.cleaned_data["models"],
                    concurrency=run_form.cleaned_data["concurrency"],
                    actor=request.user,
                )
            except ValidationError as exc:
                form_error_apply(run_form, exc)
            else:
                messages.success(request, "The run is queued.")
                return redirect("evals:run-detail", pk=run.pk)
    board = selectors.leaderboard(suite=suite)
    cases = Paginator(suite.cases.all(), PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "suite": suite,
        "cases": cases,
        "board": board,
        "chart": charts.quality_cost(board) if board else "",
        "trend_chart": _trend_chart(suite),
        "runs": selectors.runs_for(organization_id=request.organization.id, suite=suite)[:10],
        "run_form": run_form,
        "case_form": CaseForm(prefix="case"),
        "regressions": suite.regressions.all()[:10],
        "can_manage": is_manager(request),
        "recommend_form": RecommendForm(),
    }
    return render(request, "evals/suite_detail.html", context)


@manager_required
@require_http_methods(["POST"])
def suite_recommend(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Propose a route from the leaderboard for review (pending until a second manager approves)."""
    suite = _suite(request, pk)
    form = RecommendForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give a minimum score between 0 and 1.")
        return redirect("evals:suite-detail", pk=suite.pk)
    try:
        number, route = route_recommend(
            suite=suite, threshold=form.cleaned_data["threshold"], actor=request.user, name=form.cleaned_data["route"]
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("evals:suite-detail", pk=suite.pk)
    models = ", ".join(t["model"] for t in route["targets"])
    messages.success(request, f"Route {route['name']} ({models}) proposed as v{number}; it waits for approval.")
    return redirect("routing:version-detail", number=number)


@manager_required
@require_http_methods(["GET", "POST"])
def suite_edit(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    suite = _suite(request, pk)
    initial = {
        "name": suite.name,
        "task_class": suite.task_class,
        "description": suite.description,
        "judge_model": suite.judge_model,
        "models": ", ".join(suite.model_names),
        "schedule": suite.schedule,
        "pinned": suite.pinned,
    }
    form = SuiteForm(request.POST or None, initial=initial, prefix="suite")
    if request.method == "POST" and form.is_valid():
        try:
            services.suite_update(suite=suite, actor=request.user, **form.cleaned_data)
        except ValidationError as exc:
            form_error_apply(form, exc)
        else:
            messages.success(request, "Suite saved.")
            return redirect("evals:suite-detail", pk=suite.pk)
    return render(request, "evals/suite_edit.html", {"suite": suite, "form": form})


@manager_required
@require_POST
def case_add(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    suite = _suite(request, pk)
    form = CaseForm(request.POST, prefix="case")
    if form.is_valid():
        try:
            services.case_add(suite=suite, case=form.case(), actor=request.user)
        except ValidationError as exc:
            form_error_apply(form, exc)
        else:
            messages.success(request, "Case added.")
            return redirect("evals:suite-detail", pk=suite.pk)
    return render(request, "evals/case_form.html", {"suite": suite, "form": form}, status=400)


@manager_required
@require_http_methods(["GET", "POST"])
def case_delete(request: HtmxHttpRequest, pk: int, case_pk: int) -> HttpResponse:
    suite = _suite(request, pk)
    case = get_object_or_404(Case, suite=suite, pk=case_pk)
    if request.method == "POST":
        services.case_delete(case=case, actor=request.user)
        messages.success(request, "Case removed.")
        return redirect("evals:suite-detail", pk=suite.pk)
    return render(
        request,
        "console/confirm.html",
        {
            "title": f"Remove {case}?",
            "message": "Past results keep their answers; the suite's version goes up.",
            "action": request.path,
            "confirm_label": "Remove case",
            "cancel_url": reverse("evals:suite-detail", args=[suite.pk]),
        },
    )


@manager_required
@require_http_methods(["GET", "POST"])
def suite_delete(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    suite = _suite(request, pk)
    if request.method == "POST":
        services.suite_delete(suite=suite, actor=request.user)
        messages.success(request, f"Suite {suite.name} deleted.")
        return redirect("evals:suite-list")
    return render(
        request,
        "console/confirm.html",
        {
            "title": f"Delete the suite {suite.name}?",
            "message": "Its cases, runs and scores go too; routes requiring a score on it then skip every target.",
            "action": request.path,
            "confirm_label": "Delete suite",
            "cancel_url": reverse("evals:suite-detail", args=[suite.pk]),
        },
    )


@organization_required
def suite_export(request: HtmxHttpRequest, pk: int, fmt: str) -> HttpResponse:
    suite = _suite(request, pk)
    if fmt not in ("yaml", "jsonl"):
        raise Http404("Unknown format")
    content_type = "application/yaml" if fmt == "yaml" else "application/jsonl"
    response = HttpResponse(suite_dump(suite, fmt), content_type=f"{content_type}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{suite.name}.{fmt}"'
    return response


@organization_required
def run_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(Run.objects.select_related("suite"), organization=request.organization, pk=pk)
    results = Paginator(run.results.select_related("case"), 50).get_page(request.GET.get("page"))
    context = {
        "run": run,
        "scores": run.scores.order_by("-score", "cost_per_case"),
        "results": results,
        "diff_form": DiffForm(initial={"a": run.model_names[0], "b": run.model_names[-1]}),
        "can_manage": is_manager(request),
    }
    return render_page(request, "evals/run_detail.html", "progress", context)


@manager_required
@require_POST
def run_cancel(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(Run, organization=request.organization, pk=pk)
    try:
        services.run_cancel(run=run, actor=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "Cancelling: cases under way finish, no new case starts.")
    return redirect("evals:run-detail", pk=run.pk)


@organization_required
def run_diff(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(Run.objects.select_related("suite"), organization=request.organization, pk=pk)
    form = DiffForm(request.GET or None)
    rows = []
    if form.is_valid():
        a, b = form.cleaned_data["a"], form.cleaned_data["b"]
        if a not in run.model_names or b not in run.model_names:
            form.add_error(None, "Both models must be in the run.")
        else:
            rows = selectors.run_diff(run=run, model_a=a, model_b=b)
    only = request.GET.get("only") == "differs"
    shown = [r for r in rows if r.differs] if only else rows
    return render(request, "evals/run_diff.html", {"run": run, "form": form, "rows": shown, "only": only})


@organization_required
def model_detail(request: HtmxHttpRequest, name: str) -> HttpResponse:
    scores = selectors.model_scores(organization_id=request.organization.id, model=name)
    regressions = selectors.regressions_for(organization_id=request.organization.id, model=name)[:20]
    return render(request, "evals/model_detail.html", {"model": name, "scores": scores, "regressions": regressions})

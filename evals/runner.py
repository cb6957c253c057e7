"""Executing a run: every case against every model through the gateway's pipeline.

A run opens one short-lived gateway (`routing.facade.gateway_open`), so budgets,
guard, routing, usage records and the ledger apply to evaluation calls exactly as
to `/v1`; an `asyncio.Semaphore` holds the run's concurrency; cancelling is seen
before each case starts.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from asgiref.sync import async_to_sync, sync_to_async
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from console.services import change_publish
from gatehouse.signals import organization_alert
from routing import facade as routing_facade

from .checks import CheckError, Verdict, check_answer, rubric_grade, rubric_prompt
from .models import Case, CheckKind, Regression, Result, Run, RunStatus, Score
from .services import eval_key_id

ZERO = Decimal("0")


@dataclass
class Outcome:
    answer: str = ""
    status: int = 0
    verdict: Verdict | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: Decimal = ZERO
    judge_cost: Decimal = ZERO
    latency_ms: int = 0
    ttft_ms: int | None = None
    deployment: str = ""
    request_id: str = ""
    error: str = ""


def _cost(headers: dict[str, str]) -> Decimal:
    try:
        return Decimal(headers.get("x-gatehouse-cost") or "0")
    except InvalidOperation:
        return ZERO


def _text(payload: dict[str, Any]) -> str:
    choices = payload.get("choices") or [{}]
    message = choices[0].get("message") or {}
    calls = message.get("tool_calls") or []
    if calls:
        return (calls[0].get("function") or {}).get("arguments") or ""
    return message.get("content") or ""


def _error(payload: dict[str, Any]) -> str:
    error = payload.get("error")
    return str(error.get("message", error)) if isinstance(error, dict) else str(error or "error")


def _question(case: Case) -> str:
    users = [m.get("content") for m in case.messages if m.get("role") == "user"]
    return str(users[-1] if users else "")


class RunExecutor:
    """Runs one run's cases; owns its gateway for the duration."""

    def __init__(self, run: Run, cases: list[Case], key_id: int) -> None:
        self.run = run
        self.cases = cases
        self.key_id = key_id
        self.cancelled = False

    async def execute(self) -> None:
        pipeline = routing_facade
        gateway = await pipeline.gateway_open()
        try:
            key = await pipeline.key_context(gateway, key_id=self.key_id)
            if key is None:
                raise RuntimeError("the evaluation key is not usable (revoked or expired)")
            limit = asyncio.Semaphore(self.run.concurrency)

            async def one(case: Case, model: str) -> None:
                async with limit:
                    if self.cancelled or await sync_to_async(_cancel_requested)(self.run.id):
                        self.cancelled = True
                        return
                    outcome = await self.case_call(gateway, key, case, model)
                    await sync_to_async(_result_save)(self.run, case, model, outcome)

            await asyncio.gather(*(one(case, model) for model in self.run.model_names for case in self.cases))
        finally:
            await gateway.stop()

    def _context(self, gateway, key):
        return routing_facade.request_context(
            gateway,
            key,
            endpoint="chat",
            headers={"x-gatehouse-tags": "eval", "x-gatehouse-workflow": f"eval:{self.run.suite.name}"},
        )

    async def case_call(self, gateway, key, case: Case, model: str) -> Outcome:
        chat = routing_facade.chat
        body: dict[str, Any] = {"model": model, "messages": case.messages, "max_tokens": case.max_tokens}
        if case.response_format:
            body["response_format"] = case.response_format
        if case.tools:
            body["tools"] = case.tools
        streamed = not case.tools  # streamed, so the time to the first token is measured
        if streamed:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        started = time.monotonic()
        ctx = self._context(gateway, key)
        reply = await chat(gateway, ctx, body)
        outcome = Outcome(
            status=reply.status,
            cost=_cost(reply.headers),
            deployment=reply.headers.get("x-gatehouse-deployment", ""),
            request_id=reply.headers.get("x-request-id") or getattr(ctx, "request_id", ""),
        )
        if reply.ok and reply.relay is not None:
            await _stream_read(reply, ctx, outcome, started)
        else:
            outcome.error = "" if reply.ok else _error(reply.payload)
            outcome.latency_ms = int((time.monotonic() - started) * 1000)
            if reply.ok:
                usage = reply.payload.get("usage") or {}
                outcome.prompt_tokens = int(usage.get("prompt_tokens") or 0)
                outcome.completion_tokens = int(usage.get("completion_tokens") or 0)
                outcome.answer = _text(reply.payload)
        if outcome.status >= 400:
            outcome.verdict = Verdict(False, ZERO, f"HTTP {outcome.status}: {outcome.error}"[:500])
            return outcome
        if case.check_kind == CheckKind.RUBRIC:
            outcome.verdict, outcome.judge_cost = await self.judge(gateway, key, case, model, outcome.answer)
        else:
            try:
                outcome.verdict = check_answer(case.check_kind, case.spec, outcome.answer)
            except CheckError as exc:
                outcome.verdict = Verdict(False, ZERO, str(exc))
        return outcome

    async def judge(self, gateway, key, case: Case, model: str, answer: str) -> tuple[Verdict, Decimal]:
        chat = routing_facade.chat
        judge_model = case.spec.get("judge_model") or self.run.suite.judge_model or model
        prompt = rubric_prompt(case.spec, _question(case), answer)
        body = {"model": judge_model, "messages": [{"role": "user", "content": prompt}], "max_tokens": 16}
        reply = await chat(gateway, self._context(gateway, key), body)
        if not reply.ok:
            return Verdict(False, ZERO, f"judge HTTP {reply.status}: {_error(reply.payload)}"[:500]), _cost(
                reply.headers
            )
        return rubric_grade(case.spec, _text(reply.payload)), _cost(reply.headers)


async def _stream_read(reply, ctx, outcome: Outcome, started: float) -> None:
    """Read a streamed answer: its text, time to the first token, usage and cost (priced
    as settle prices it, from the usage and the model the pipeline used)."""
    from budgets.facade import cost_of

    parts: list[str] = []
    async for chunk in reply.relay.chunks():
        if "error" in chunk:
            outcome.status = 502 if outcome.status < 400 else outcome.status
            outcome.error = _error(chunk)
            continue
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if content:
                if outcome.ttft_ms is None:
                    outcome.ttft_ms = int((time.monotonic() - started) * 1000)
                parts.append(content)
    outcome.latency_ms = int((time.monotonic() - started) * 1000)
    outcome.answer = "".join(parts)
    usage, model = ctx.usage, ctx.model
    if usage is not None:
        outcome.prompt_tokens = usage.prompt_tokens
        outcome.completion_tokens = usage.completion_tokens
    if usage is not None and model is not None:
        outcome.cost = cost_of(
            input_tokens=usage.prompt_tokens,
            output_tokens=usage.completion_tokens,
            cached_tokens=usage.cached_tokens,
            cache_write_5m_tokens=usage.cache_write_5m_tokens,
            cache_write_1h_tokens=usage.cache_write_1h_tokens,
            input_price=model.price.input,
            output_price=model.price.output,
            cached_input_price=model.price.cached_input,
        ).total


def _cancel_requested(run_id: int) -> bool:
    return Run.objects.filter(pk=run_id, cancel_requested=True).exists()


def _result_save(run: Run, case: Case, model: str, outcome: Outcome) -> None:
    verdict = outcome.verdict or Verdict(False, ZERO, "no verdict")
    with transaction.atomic():
        Result.objects.update_or_create(
            run=run,
            case=case,
            model=model,
            defaults={
                "answer": outcome.answer[:20000],
                "passed": verdict.passed,
                "score": verdict.score,
                "detail": verdict.detail[:2000],
                "status": outcome.status,
                "prompt_tokens": outcome.prompt_tokens,
                "completion_tokens": outcome.completion_tokens,
                "cost": outcome.cost,
                "judge_cost": outcome.judge_cost,
                "latency_ms": outcome.latency_ms,
                "ttft_ms": outcome.ttft_ms,
                "deployment": outcome.deployment[:200],
                "request_id": outcome.request_id[:64],
            },
        )
        Run.objects.filter(pk=run.pk).update(completed=F("completed") + 1)


def scores_record(run: Run) -> list[Score]:
    """Each model's aggregate over the run's results."""
    by_model: dict[str, list[Result]] = defaultdict(list)
    for result in run.results.all():
        by_model[result.model].append(result)
    scores = []
    for model in run.model_names:
        results = by_model.get(model, [])
        if not results:
            continue
        count = len(results)
        cost = sum((r.cost + r.judge_cost for r in results), ZERO)
        scores.append(
            Score(
                run=run,
                suite_id=run.suite_id,
                model=model,
                score=(sum((r.score for r in results), ZERO) / count).quantize(Decimal("0.0001")),
                passed=sum(1 for r in results if r.passed),
                cases=count,
                cost=cost,
                cost_per_case=(cost / count).quantize(Decimal("0.0000000001")),
                p50_latency_ms=int(statistics.median(r.latency_ms for r in results)),
                created_at=timezone.now(),
            )
        )
    return Score.objects.bulk_create(scores)


def regressions_check(run: Run, scores: list[Score]) -> list[Regression]:
    """For a pinned suite: a model whose score fell more than the margin since its
    previous run is flagged (with the deployment that answered) and alerted."""
    suite = run.suite
    if not suite.pinned:
        return []
    found = []
    for score in scores:
        previous = (
            Score.objects.filter(suite=suite, model=score.model).exclude(run=run).order_by("-created_at", "-id").first()
        )
        if previous is None or previous.score - score.score <= suite.regression_margin:
            continue
        deployments = Counter(run.results.filter(model=score.model).values_list("deployment", flat=True))
        deployment = deployments.most_common(1)[0][0] if deployments else ""
        found.append(
            Regression.objects.create(
                suite=suite,
                run=run,
                model=score.model,
                deployment=deployment,
                previous=previous.score,
                current=score.score,
            )
        )
        organization_alert.send(
            sender=Regression,
            organization_id=run.organization_id,
            event="evals.regression",
            subject=f"Gatehouse: {score.model} fell on {suite.name}",
            text=(
                f"The evaluation suite {suite.name} scored {score.model} at {score.score:.1%}, down from "
                f"{previous.score:.1%} (margin {suite.regression_margin:.1%}). Deployment: {deployment or 'unknown'}."
            ),
            payload={
                "suite": suite.name,
                "model": score.model,
                "deployment": deployment,
                "previous": str(previous.score),
                "current": str(score.score),
                "run": run.id,
            },
        )
    return found


def run_execute(*, run_id: int) -> Run:
    """Execute a queued run to its end (done, cancelled or failed)."""
    with transaction.atomic():
        run = Run.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.status != RunStatus.QUEUED:
            return run
        run.status = RunStatus.RUNNING
        run.started_at = timezone.now()
        run.save(update_fields=["status", "started_at"])
    run = Run.objects.select_related("suite", "organization").get(pk=run_id)
    cases = list(run.suite.cases.all())
    executor = RunExecutor(run, cases, eval_key_id(organization=run.organization))
    error = ""
    try:
        async_to_sync(executor.execute)()
    except Exception as exc:  # noqa: BLE001 - recorded on the run and shown on its page
        error = f"{type(exc).__name__}: {exc}"
    run.refresh_from_db()
    with transaction.atomic():
        if error:
            run.status, run.error = RunStatus.FAILED, error[:2000]
        elif executor.cancelled or run.cancel_requested:
            run.status = RunStatus.CANCELLED
        else:
            run.status = RunStatus.DONE
        run.finished_at = timezone.now()
        run.save(update_fields=["status", "error", "finished_at"])
        if run.status == RunStatus.DONE:
            scores = scores_record(run)
            regressions_check(run, scores)
            # Routes with `min_score` read the latest scores: gateways recompile.
            change_publish(topic="routing", ref=f"evals:{run.id}")
    return run

"""The simulator as one ASGI 3 application: routing, lifespan, health and control.

Run alone with `uvicorn providers.simulator.app:app --port 9100`, or mount it
under a prefix (the mounting router strips the prefix from `scope["path"]`).

Routes:
    GET  /_health
    GET|POST|DELETE /_control                      per-model knob overrides (admin token required:
                                                   `Authorization: Bearer <GATEHOUSE_SIMULATOR_CONTROL_TOKEN>`)
    POST /openai[/v1]/chat/completions, /openai[/v1]/embeddings; GET /openai[/v1]/models
    POST /azure/openai/deployments/{deployment}/chat/completions|embeddings?api-version=...
    POST /anthropic/v1/messages
    POST /gemini[/v1beta|/v1]/models/{model}:generateContent|streamGenerateContent|embedContent|
         batchEmbedContents|countTokens
"""

from __future__ import annotations

import hmac
from typing import Any

import orjson

from . import anthropic_api, gemini_api, openai_api
from .asgi import BodyTooLarge, ClientGone, Receive, Request, Scope, Send, send_body
from .common import Reject, Sim
from .compose import PromptCache
from .gemini_wire import status_body
from .knobs import KnobError, KnobRegistry

_OPENAI_ROUTES = {
    "/chat/completions": ("POST", openai_api.chat),
    "/embeddings": ("POST", openai_api.embeddings),
    "/models": ("GET", openai_api.list_models),
}
_GEMINI_METHODS = {
    "generateContent": lambda req, sim, model: gemini_api.generate(req, sim, model, stream=False),
    "streamGenerateContent": lambda req, sim, model: gemini_api.generate(req, sim, model, stream=True),
    "embedContent": lambda req, sim, model: gemini_api.embed(req, sim, model, batch=False),
    "batchEmbedContents": lambda req, sim, model: gemini_api.embed(req, sim, model, batch=True),
    "countTokens": gemini_api.count,
}


def _not_found(req: Request) -> Reject:
    message = f"Invalid URL ({req.method} {req.path})"
    return Reject(404, {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}})


def _wrong_method(req: Request, allowed: str) -> Reject:
    message = f"Method {req.method} not allowed for {req.path}; use {allowed}."
    return Reject(
        405,
        {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}},
        ((b"allow", allowed.encode()),),
    )


class SimulatorApp:
    """ASGI entry point; each instance keeps its own overrides and prompt cache."""

    def __init__(self, *, control_token: str) -> None:
        if not control_token:
            raise ValueError("the simulator needs a control token (GATEHOUSE_SIMULATOR_CONTROL_TOKEN)")
        self.sim = Sim(knobs=KnobRegistry(), cache=PromptCache())
        self._control_token = control_token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.sim.knobs.reload_env()
                except KnobError as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        req = Request(scope, receive, send)
        try:
            await self._route(req)
        except Reject as exc:
            await send_body(req, exc.status, exc.body, exc.content_type, exc.headers)
        except ClientGone:
            return
        except BodyTooLarge:
            body = {
                "error": {
                    "message": "Request body too large.",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": None,
                }
            }
            await send_body(req, 413, orjson.dumps(body))
        finally:
            req.close()

    async def _route(self, req: Request) -> None:
        path = req.path
        if path.startswith("/openai/"):
            rest = path[7:]
            if rest.startswith("/v1/"):
                rest = rest[3:]
            route = _OPENAI_ROUTES.get(rest)
            if route is None:
                raise _not_found(req)
            method, handler = route
            if req.method != method:
                raise _wrong_method(req, method)
            await handler(req, self.sim)
        elif path == "/anthropic/v1/messages":
            if req.method != "POST":
                raise _wrong_method(req, "POST")
            await anthropic_api.messages(req, self.sim)
        elif path.startswith("/gemini/"):
            await self._gemini(req, path)
        elif path.startswith("/azure/openai/deployments/"):
            deployment, _, operation = path[26:].partition("/")
            if not deployment or operation not in ("chat/completions", "embeddings"):
                raise _not_found(req)
            if req.method != "POST":
                raise _wrong_method(req, "POST")
            handler = openai_api.chat if operation == "chat/completions" else openai_api.embeddings
            await handler(req, self.sim, deployment)
        elif path == "/_health":
            await send_body(req, 200, b'{"status":"ok"}')
        elif path == "/_control":
            await self._control(req)
        else:
            raise _not_found(req)

    async def _gemini(self, req: Request, path: str) -> None:
        rest = path[7:]
        for version in ("/v1beta/", "/v1/"):
            if rest.startswith(version):
                rest = rest[len(version) - 1 :]
                break
        if not rest.startswith("/models/") or ":" not in rest:
            raise Reject(404, status_body(404, "NOT_FOUND", f"Method not found: {path}"))
        model, _, method = rest[8:].rpartition(":")
        handler = _GEMINI_METHODS.get(method)
        if handler is None or not model:
            raise Reject(404, status_body(404, "NOT_FOUND", f"Method not found: {path}"))
        if req.method != "POST":
            raise _wrong_method(req, "POST")
        await handler(req, self.sim, model)

    def _check_control_token(self, req: Request) -> None:
        """The control endpoint injects faults into all simulated traffic: an admin token guards it."""
        raw = req.headers.get(b"authorization", b"")
        scheme, _, token = raw.partition(b" ")
        if scheme.lower() != b"bearer" or not token.strip():
            raise Reject(
                401,
                _error_body("The simulator's control endpoint needs `Authorization: Bearer <control token>`."),
                headers=((b"www-authenticate", b'Bearer realm="simulator-control"'),),
            )
        if not hmac.compare_digest(token.strip(), self._control_token):
            raise Reject(403, _error_body("The control token is not valid."))

    async def _control(self, req: Request) -> None:
        self._check_control_token(req)
        knobs = self.sim.knobs
        if req.method == "GET":
            await send_body(req, 200, orjson.dumps({"overrides": knobs.overrides}))
            return
        if req.method == "DELETE":
            knobs.clear(req.query("model"))
            self.sim.cache.clear()
            await send_body(req, 200, orjson.dumps({"status": "ok", "overrides": knobs.overrides}))
            return
        if req.method != "POST":
            raise _wrong_method(req, "GET, POST, DELETE")
        try:
            data: Any = orjson.loads(await req.read_body())
        except orjson.JSONDecodeError:
            raise _control_error("body must be a JSON object") from None
        if not isinstance(data, dict) or not isinstance(data.get("model"), str) or not data["model"]:
            raise _control_error('body must be a JSON object with a "model" name ("*" for every model)')
        model = data.pop("model")
        try:
            current = knobs.set_override(model, data)
        except KnobError as exc:
            raise _control_error(str(exc)) from None
        await send_body(req, 200, orjson.dumps({"status": "ok", "model": model, "override": current}))


def _error_body(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}


def _control_error(message: str) -> Reject:
    return Reject(400, _error_body(message))


def create_app() -> SimulatorApp:
    from django.conf import settings

    if not settings.configured:  # run alone: its defaults come from the project's settings, like everything
        import os

        import django

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gatehouse.settings")
        django.setup()
    return SimulatorApp(control_token=settings.GATEHOUSE["SIMULATOR_CONTROL_TOKEN"])


app = create_app()

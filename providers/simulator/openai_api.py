"""OpenAI and Azure OpenAI endpoints: chat completions, embeddings, models.

Azure speaks the OpenAI body format with its own URL scheme, `api-key` auth,
`api-version` query parameter, error envelope and content-filter annotations.
"""

from __future__ import annotations

import array
import base64
import time
from typing import Any

import orjson

from providers.tokens import count_tokens, estimate_text_tokens

from .asgi import Request, send_body
from .common import Frames, Reject, Sim, respond, respond_plain
from .compose import Answer, argument_pieces, embedding, new_id
from .openai_wire import (
    AZURE_FILTER_RESULT,
    AzureDialect,
    ChatOptions,
    OpenAIDialect,
    azure_error,
    error_body,
    parse_chat,
    parse_json,
)

OPENAI = OpenAIDialect()
AZURE = AzureDialect()
FINISH = {"stop": "stop", "stop_sequence": "stop", "length": "length", "tool": "tool_calls"}
AZURE_API_VERSIONS_MIN = "2022-12-01"
MODELS = (
    "gpt-5.5",
    "gpt-5.4-mini",
    "gpt-4.1",
    "gpt-4o",
    "gpt-4o-mini",
    "text-embedding-3-small",
    "text-embedding-3-large",
)


def _missing_key() -> Reject:
    message = (
        "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer "
        "auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (i.e. Authorization: Basic "
        "base64(:YOUR_KEY)). You can obtain an API key from https://platform.openai.com/account/api-keys."
    )
    return Reject(401, error_body(message))


def check_openai_auth(req: Request) -> None:
    value = req.headers.get(b"authorization")
    if value is None:
        raise _missing_key()
    if not value.startswith(b"Bearer ") or not value[7:].strip():
        message = (
            "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys."
        )
        raise Reject(401, error_body(message, code="invalid_api_key"))


def check_azure_auth(req: Request) -> None:
    if not req.headers.get(b"api-key") and not req.headers.get(b"authorization"):
        raise AZURE.fault("401", "")
    version = req.query("api-version")
    if not version:
        raise Reject(404, azure_error("404", "Resource not found"))
    if len(version) < 10 or version[:10] < AZURE_API_VERSIONS_MIN:
        raise Reject(400, azure_error("BadRequest", "API version not supported"))


def _usage(answer: Answer) -> dict[str, Any]:
    return {
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.completion_tokens,
        "total_tokens": answer.prompt_tokens + answer.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": answer.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": answer.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _message(answer: Answer, call_id: str) -> dict[str, Any]:
    if answer.tool_name is not None:
        call = {
            "id": call_id,
            "type": "function",
            "function": {"name": answer.tool_name, "arguments": answer.tool_arguments},
        }
        return {"role": "assistant", "content": None, "tool_calls": [call], "refusal": None, "annotations": []}
    return {"role": "assistant", "content": answer.text, "refusal": None, "annotations": []}


def render_chat(answer: Answer, model: str, n: int, azure: bool) -> bytes:
    call_id = new_id("call_", 12)
    choice: dict[str, Any] = {
        "index": 0,
        "message": _message(answer, call_id),
        "logprobs": None,
        "finish_reason": FINISH[answer.finish],
    }
    if azure:
        choice["content_filter_results"] = AZURE_FILTER_RESULT
    choices = [choice] if n == 1 else [{**choice, "index": i} for i in range(n)]
    body: dict[str, Any] = {
        "id": new_id("chatcmpl-", 14),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": answer.version or model,
        "choices": choices,
        "usage": _usage(answer),
        "service_tier": "default",
        "system_fingerprint": answer.fingerprint or "fp_sim",
    }
    if azure:
        body["prompt_filter_results"] = [{"prompt_index": 0, "content_filter_results": AZURE_FILTER_RESULT}]
    return orjson.dumps(body)


def render_chunks(answer: Answer, model: str, options: ChatOptions, azure: bool) -> Frames:
    """chat.completion.chunk frames; content chunks come from a byte template (hot path)."""
    chunk_id = new_id("chatcmpl-", 14).encode()
    created = str(int(time.time())).encode()
    base = (
        b'data: {"id":"' + chunk_id + b'","object":"chat.completion.chunk","created":' + created
        + b',"model":' + orjson.dumps(answer.version or model) + b',"service_tier":"default","system_fingerprint":'
        + orjson.dumps(answer.fingerprint or "fp_sim")
    )  # fmt: skip
    head = base + b',"choices":[{"index":0,'
    filters = b'"content_filter_results":{},' if azure else b""
    usage_null = b',"usage":null' if options.include_usage else b""
    open_tail = b',"logprobs":null,"finish_reason":null}]' + usage_null + b"}\n\n"
    frames: Frames = []
    if azure:
        prompt_filter = {
            "choices": [],
            "created": 0,
            "id": "",
            "model": "",
            "object": "",
            "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": AZURE_FILTER_RESULT}],
        }
        frames.append((b"data: " + orjson.dumps(prompt_filter) + b"\n\n", 0))
    if answer.tool_name is not None:
        call = {
            "index": 0,
            "id": new_id("call_", 12),
            "type": "function",
            "function": {"name": answer.tool_name, "arguments": ""},
        }
        first = orjson.dumps({"role": "assistant", "content": None, "tool_calls": [call], "refusal": None})
        frames.append((head + filters + b'"delta":' + first + open_tail, 0))
        for piece in argument_pieces(answer.tool_arguments):
            delta = b'{"tool_calls":[{"index":0,"function":{"arguments":' + orjson.dumps(piece) + b"}}]}"
            frames.append((head + filters + b'"delta":' + delta + open_tail, max(1, len(piece) // 3)))
    else:
        frames.append((head + filters + b'"delta":{"role":"assistant","content":"","refusal":null}' + open_tail, 0))
        for piece in answer.pieces:
            frames.append(
                (head + filters + b'"delta":{"content":' + orjson.dumps(piece) + b"}" + open_tail, count_tokens(piece))
            )
    finish = FINISH[answer.finish].encode()
    frames.append(
        (head + filters + b'"delta":{},"logprobs":null,"finish_reason":"' + finish + b'"}]' + usage_null + b"}\n\n", 0)
    )
    if options.include_usage:
        usage = orjson.dumps(_usage(answer))
        frames.append((base + b',"choices":[],"usage":' + usage + b"}\n\n", 0))
    frames.append((b"data: [DONE]\n\n", 0))
    return frames


async def chat(req: Request, sim: Sim, deployment: str | None = None) -> None:
    """POST /openai/v1/chat/completions and Azure's deployments/{name}/chat/completions."""
    azure = deployment is not None
    dialect = AZURE if azure else OPENAI
    (check_azure_auth if azure else check_openai_auth)(req)
    data = parse_json(await req.read_body())
    turn, options = parse_chat(data, deployment)
    model = turn.model
    await respond(
        req,
        sim,
        dialect,
        turn,
        stream=options.stream,
        render=lambda answer: render_chat(answer, model, options.n, azure),
        render_stream=lambda answer: render_chunks(answer, model, options, azure),
        headers=((b"x-request-id", new_id("req_", 8).encode()),),
    )


def _embedding_inputs(data: dict[str, Any]) -> list[str]:
    raw = data.get("input")
    if raw is None:
        raise Reject(400, error_body("'input' is a required property"))
    if isinstance(raw, str):
        items: list[Any] = [raw]
    elif isinstance(raw, list) and raw and all(isinstance(x, int) for x in raw):
        items = [raw]
    elif isinstance(raw, list) and raw:
        items = raw
    else:
        raise Reject(
            400,
            error_body(
                "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.",
                param="input",
            ),
        )
    texts = []
    for item in items:
        if isinstance(item, str) and item:
            texts.append(item)
        elif isinstance(item, list) and item and all(isinstance(x, int) for x in item):
            texts.append(" ".join(map(str, item)))
        else:
            raise Reject(
                400,
                error_body(
                    "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.",
                    param="input",
                ),
            )
    return texts


async def embeddings(req: Request, sim: Sim, deployment: str | None = None) -> None:
    """POST /openai/v1/embeddings and Azure's deployments/{name}/embeddings."""
    azure = deployment is not None
    dialect = AZURE if azure else OPENAI
    (check_azure_auth if azure else check_openai_auth)(req)
    data = parse_json(await req.read_body())
    model = deployment or data.get("model")
    if not model or not isinstance(model, str):
        raise Reject(400, error_body("you must provide a model parameter"))
    texts = _embedding_inputs(data)
    dims = data.get("dimensions")
    if dims is not None and (isinstance(dims, bool) or not isinstance(dims, int) or not 1 <= dims <= 3072):
        raise Reject(
            400, error_body(f"Invalid value for 'dimensions' = {dims}. Must be between 1 and 3072.", param="dimensions")
        )
    fmt = data.get("encoding_format", "float")
    if fmt not in ("float", "base64"):
        raise Reject(
            400,
            error_body(
                f"Invalid value: '{fmt}'. Supported values are: 'float' and 'base64'.",
                param="encoding_format",
                code="invalid_value",
            ),
        )
    tokens = estimate_text_tokens(data.get("input"))

    def body() -> bytes:
        vectors: list[Any] = [embedding(text, dims or 1536) for text in texts]
        if fmt == "base64":
            vectors = [base64.b64encode(array.array("f", v).tobytes()).decode() for v in vectors]
        data_items = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return orjson.dumps({"object": "list", "data": data_items, "model": model, "usage": usage})

    await respond_plain(req, sim, dialect, model, tokens, body)


async def list_models(req: Request, sim: Sim) -> None:
    """GET /openai/v1/models."""
    check_openai_auth(req)
    created = 1_700_000_000
    data = [{"id": name, "object": "model", "created": created, "owned_by": "system"} for name in MODELS]
    await send_body(req, 200, orjson.dumps({"object": "list", "data": data}))

"""OpenAI-shaped errors for the data plane."""

from __future__ import annotations

import orjson
from django.http import HttpResponse


class GatewayError(Exception):
    """An error the gateway answers with, in OpenAI's vocabulary."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}


def error_payload(message: str, type: str, code: str | None = None, param: str | None = None) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": type, "param": param, "code": code}})


def error_response(exc: GatewayError) -> HttpResponse:
    response = HttpResponse(
        error_payload(exc.message, exc.type, exc.code, exc.param), status=exc.status, content_type="application/json"
    )
    for name, value in exc.headers.items():
        response[name] = value
    return response


def invalid(message: str, *, param: str | None = None, code: str | None = None) -> GatewayError:
    return GatewayError(message, status=400, type="invalid_request_error", param=param, code=code)

"""OpenAI-style errors for the RAG API: `{"error": {"message", "type", "param", "code"}}`.

OpenAI clients (Python, JS, LangChain, LlamaIndex) turn this body into their typed errors, so
every failure the API reports — validation, auth, size, model, LLM down — uses it.
"""

from __future__ import annotations

import json
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

# OpenAI's `type` for each status we use.
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    502: "server_error",
    503: "service_unavailable",
}


class APIError(Exception):
    """An error the API answers with; status and OpenAI fields travel together."""

    def __init__(self, status: int, message: str, *, code: str | None = None, param: str | None = None,
                 type_: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.type = type_ or ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
        self.headers = headers

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def error_body(status: int, message: str, *, code: str | None = None, param: str | None = None) -> bytes:
    return json.dumps(APIError(status, message, code=code, param=param).body()).encode()


def _param_of(loc) -> str | None:
    # FastAPI locations start with "body"/"query"/...; OpenAI's `param` is the field path.
    parts = [str(p) for p in loc if p not in ("body", "query", "header", "path")]
    out = ""
    for p in parts:
        out += f"[{p}]" if p.isdigit() else (f".{p}" if out else p)
    return out or None


def validation_error(exc: RequestValidationError) -> APIError:
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": ""}
    param = _param_of(first.get("loc", ()))
    if first.get("type") == "extra_forbidden":
        message = f"Unrecognized request argument supplied: {param}"
        code = "unknown_parameter"
    elif first.get("type") == "json_invalid":
        message = (
            "We could not parse the JSON body of your request. Fix: send a valid JSON object "
            "with Content-Type: application/json."
        )
        code = "invalid_json"
        param = None
    else:
        message = f"Invalid value for '{param or 'body'}': {first.get('msg')}"
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more problem(s))"
        code = "invalid_value"
    return APIError(400, message, code=code, param=param)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError):
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError):
        # OpenAI answers malformed requests with 400 invalid_request_error, never FastAPI's 422 shape.
        return validation_error(exc).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException):
        message = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        if exc.status_code == 404:
            message = f"Not found: {message}. Routes: POST /v1/chat/completions, GET /v1/models, GET /health."
        return APIError(exc.status_code, message, code=None).response()

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception):
        log.exception("unexpected API error")
        return APIError(500, f"Internal server error: {type(exc).__name__}: {exc}", code="internal_error").response()

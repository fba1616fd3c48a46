"""The server's errors in OpenAI's error shape, and the handlers that turn every failure into one.

Every error the server sends, before or after a stream starts, is the object of OpenAI's API reference
("Error codes"; the ``error`` object of the REST API)::

    {"error": {"message": "...", "type": "invalid_request_error", "param": "messages", "code": "..."}}

Rules:

- a malformed body is a 400 naming the field (``param``: its dotted path, e.g. ``messages.0.role``), not
  FastAPI's default 422 (OpenAI answers a schema error with 400, and clients read ``param``);
- an option the server does not offer is a 400 with code ``unsupported_option`` naming it and the fix;
- an unknown model is a 404 ``model_not_found``; a missing or wrong API key a 401 ``invalid_api_key``;
- a prompt beyond the device's context window is a 400 ``context_length_exceeded``;
- anything unexpected is a 500 ``internal_error`` with the exception's class and message, never a traceback
  (the traceback goes to the server's log).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from pdcore.exceptions import CloudError, DeviceFailedError, InvalidInputError, PdcoreError

__all__ = [
    "APIError",
    "error_body",
    "install_error_handlers",
    "internal_error",
    "runtime_error",
    "unsupported",
    "validation_error",
]

LOG = logging.getLogger("pdcore.serve")

_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error"}


class APIError(Exception):
    """An error answered in OpenAI's shape (module docstring).

    Args:
        status: The HTTP status.
        message: What was wrong and the fix.
        code: OpenAI's ``code`` (``"model_not_found"``, ``"context_length_exceeded"``, ...).
        param: The request field at fault, if one is.
        type: OpenAI's ``type``; by default ``"invalid_request_error"`` for a 4xx, ``"server_error"`` else.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None,
        param: str | None = None,
        type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.type = type or _TYPES.get(status, "invalid_request_error" if status < 500 else "server_error")

    def body(self) -> dict[str, Any]:
        """The JSON body: ``{"error": {...}}``."""
        return error_body(self.message, type=self.type, param=self.param, code=self.code)

    def response(self) -> JSONResponse:
        """The error as an HTTP response."""
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else None
        return JSONResponse(self.body(), status_code=self.status, headers=headers)


def error_body(message: str, *, type: str, param: str | None, code: str | None) -> dict[str, Any]:
    """OpenAI's error object."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def unsupported(param: str, why: str) -> APIError:
    """A 400 for an option the server does not offer: ``why`` says what it does instead and the fix."""
    return APIError(400, f"{param}: {why}", code="unsupported_option", param=param)


_UNION_MEMBERS = frozenset({"str", "int", "float", "bool", "dict", "list", "none"})


def _field(location: tuple[Any, ...]) -> str | None:
    parts = [str(part) for part in location if part != "body"]
    # pydantic names the member of a union it tried (``str``, ``list[...]``, ``function-after[...]``)
    named = [part for part in parts if "[" not in part and part not in _UNION_MEMBERS]
    return ".".join(named) or None


def validation_error(error: RequestValidationError) -> APIError:
    """The 400 for a body that does not match its schema, naming the first field at fault."""
    errors = error.errors()
    if not errors:
        return APIError(400, "the request body is not valid", code="invalid_request_body")
    first = errors[0]
    param = _field(tuple(first.get("loc", ())))
    kind = str(first.get("type", ""))
    if kind == "json_invalid" or (param is None and kind in ("model_attributes_type", "dict_type")):
        return APIError(
            400,
            "the request body is not a JSON object; fix: send a JSON object with Content-Type: "
            "application/json",
            code="invalid_json",
        )
    message = str(first.get("msg", "invalid value"))
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    where = param or "body"
    return APIError(400, f"{where}: {message}", code="invalid_value", param=param)


def install_error_handlers(app: FastAPI, counted: Callable[[str | None], None] | None = None) -> None:
    """Makes every error of ``app`` an OpenAI error object (module docstring); ``counted`` is called with
    each error's code."""

    def answered(error: APIError) -> JSONResponse:
        if counted is not None:
            counted(error.code)
        return error.response()

    async def api_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, APIError)
        return answered(error)

    async def invalid_body(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        return answered(validation_error(error))

    async def http_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, StarletteHTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        message = str(error.detail)
        if error.status_code == 404:
            message = f"no route {request.method} {request.url.path}; fix: see docs/serve.md for the routes"
        elif error.status_code == 405:
            message = f"{request.url.path} does not take {request.method}; fix: see docs/serve.md"
        return answered(APIError(error.status_code, message, code=code))

    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        LOG.exception("unexpected error answering %s %s", request.method, request.url.path)
        return answered(internal_error(error))

    app.add_exception_handler(APIError, api_error)
    app.add_exception_handler(RequestValidationError, invalid_body)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)


def internal_error(error: BaseException) -> APIError:
    """The 500 for an unexpected failure: its class and message, no traceback."""
    return APIError(
        500, f"the server failed: {type(error).__name__}: {error}", code="internal_error", type="server_error"
    )


def runtime_error(error: BaseException) -> APIError:
    """The error for what the live runtime raised while answering: a prompt it refused (400), a cloud
    that failed with no device to answer (502), a device that failed with no cloud to continue (503)."""
    if isinstance(error, APIError):
        return error
    if isinstance(error, InvalidInputError):
        code = "context_length_exceeded" if "context window" in str(error) else "invalid_prompt"
        return APIError(400, str(error), code=code)
    if isinstance(error, CloudError):
        return APIError(
            502, f"the cloud failed and no device could answer: {error}", code="cloud_failed",
            type="server_error",
        )  # fmt: skip
    if isinstance(error, DeviceFailedError):
        return APIError(
            503, f"the device failed and no cloud could continue: {error}", code="device_failed",
            type="server_error",
        )  # fmt: skip
    if isinstance(error, PdcoreError):
        return APIError(500, f"the runtime failed: {error}", code="runtime_error", type="server_error")
    return internal_error(error)

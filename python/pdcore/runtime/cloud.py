"""The cloud side of the live runtime: an OpenAI-compatible streaming completions client.

`CloudClient.stream` posts ``{"prompt", "max_tokens", "stream": true, "temperature": 0}`` to
``/v1/completions`` and yields one `CloudEvent` per server-sent event, stamped with the clock time at
which it was parsed. The URL comes from the argument or ``PDCORE_CLOUD_URL``; the API key (optional) from
the argument or ``PDCORE_CLOUD_API_KEY`` and is sent as a bearer token, never logged and never shown in a
``repr`` or an error message.

Every failure maps onto one of two exceptions, which define the runtime's fallback:

- `CloudUnavailableError` before the first event (cannot connect, connection refused, an HTTP error
  status, no first event within the read timeout, an error object instead of a completion): the session
  goes on with the device alone.
- `CloudStreamCutError` after at least one event (the connection drops, the server stops sending for
  longer than the read timeout, malformed data, or the stream ends with neither a finish reason nor
  ``[DONE]``): the session keeps what arrived and the device continues from there.

A stream that ends normally carries the finish reason on its last event: ``"stop"`` (the answer is
complete) or ``"length"`` (the ``max_tokens`` quota was used up).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx
from httpx_sse import SSEError, aconnect_sse

from pdcore.exceptions import InvalidInputError, PdcoreError

__all__ = [
    "API_KEY_ENV",
    "URL_ENV",
    "CloudClient",
    "CloudError",
    "CloudEvent",
    "CloudStreamCutError",
    "CloudUnavailableError",
    "completions_url",
]

URL_ENV = "PDCORE_CLOUD_URL"
"""The environment variable holding the cloud's base URL (e.g. ``http://127.0.0.1:8000``)."""

API_KEY_ENV = "PDCORE_CLOUD_API_KEY"
"""The environment variable holding the cloud's API key (optional)."""

MODEL_ENV = "PDCORE_CLOUD_MODEL"
"""The environment variable naming the model to ask for (optional; sent as ``model``)."""


class CloudError(PdcoreError):
    """The cloud stream failed; the subclass says whether anything arrived first."""


class CloudUnavailableError(CloudError):
    """The cloud could not be reached or refused the request; nothing was received."""


class CloudStreamCutError(CloudError):
    """The cloud stream broke off after some text arrived; that text is kept."""


@dataclass(frozen=True, slots=True)
class CloudEvent:
    """One server-sent event of a completion stream.

    Attributes:
        text: The text it carries (may be empty, e.g. on the final event).
        at: Clock time at which it was parsed, seconds.
        finish_reason: ``"stop"`` or ``"length"`` on the last event, else ``None``.
    """

    text: str
    at: float
    finish_reason: str | None = None


def completions_url(url: str) -> str:
    """The completions endpoint for a base URL, a ``.../v1`` URL or the endpoint itself.

    Raises:
        InvalidInputError: ``url`` is not an ``http://`` or ``https://`` URL.

    Example:
        >>> completions_url("http://127.0.0.1:8000")
        'http://127.0.0.1:8000/v1/completions'
        >>> completions_url("https://api.example.com/v1/")
        'https://api.example.com/v1/completions'
    """
    stripped = url.strip().rstrip("/")
    if not stripped.startswith(("http://", "https://")):
        raise InvalidInputError(
            f"cloud URL {url!r} is not an http(s) URL; fix: pass e.g. http://127.0.0.1:8000 with --cloud-url "
            f"or set {URL_ENV}"
        )
    if stripped.endswith("/completions"):
        return stripped
    if stripped.endswith("/v1"):
        return f"{stripped}/completions"
    return f"{stripped}/v1/completions"


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class CloudClient:
    """A streaming client for one OpenAI-compatible endpoint, reused across requests (keep-alive).

    Args:
        url: Base URL, ``.../v1`` URL or the completions endpoint; default ``$PDCORE_CLOUD_URL``.
        api_key: Bearer token; default ``$PDCORE_CLOUD_API_KEY`` (none when unset or empty).
        model: The ``model`` field of the request; default ``$PDCORE_CLOUD_MODEL`` (omitted when unset).
        connect_timeout: Seconds to establish the connection.
        read_timeout: Seconds to wait for the first event and between events.
        extra_body: More request fields, e.g. ``{"repeat_penalty": 1.0}`` for llama.cpp's server.

    Raises:
        InvalidInputError: No URL is given or set, or a timeout is not positive.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        api_key: str | None = None,
        model: str | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        extra_body: Mapping[str, Any] | None = None,
    ) -> None:
        chosen = url if url is not None else os.environ.get(URL_ENV, "")
        if not chosen:
            raise InvalidInputError(f"no cloud URL; fix: pass --cloud-url URL or set {URL_ENV}")
        for name, value in (("connect_timeout", connect_timeout), ("read_timeout", read_timeout)):
            if not (isinstance(value, (int, float)) and value > 0):
                raise InvalidInputError(f"{name} = {value!r}; pass a positive number of seconds")
        self.endpoint = completions_url(chosen)
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV, "")
        self._headers = {"Accept": "text/event-stream"}
        if key:
            self._headers["Authorization"] = f"Bearer {key}"
        self.model = model if model is not None else (os.environ.get(MODEL_ENV) or None)
        self.extra_body = dict(extra_body or {})
        self._timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
        self._client = self._new_client()

    @property
    def has_api_key(self) -> bool:
        """Whether a key is sent (the key itself is never exposed)."""
        return "Authorization" in self._headers

    def __repr__(self) -> str:
        key = "set" if self.has_api_key else "none"
        return f"CloudClient(endpoint={self.endpoint!r}, model={self.model!r}, api_key={key})"

    def _new_client(self) -> httpx.AsyncClient:
        # Built up front: loading the TLS trust store takes tens of milliseconds, which must not delay
        # the first request.
        return httpx.AsyncClient(timeout=self._timeout, headers=self._headers)

    def _http(self) -> httpx.AsyncClient:
        if self._client.is_closed:
            self._client = self._new_client()
        return self._client

    async def aclose(self) -> None:
        """Closes the connection pool (a later request opens a new one)."""
        await self._client.aclose()

    async def __aenter__(self) -> CloudClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def body(self, prompt: str, max_tokens: int) -> dict[str, Any]:
        """The JSON request body for ``prompt`` and ``max_tokens``."""
        body: dict[str, Any] = {
            "prompt": prompt,
            "max_tokens": max_tokens,
            "stream": True,
            "temperature": 0.0,
        }
        if self.model is not None:
            body["model"] = self.model
        body.update(self.extra_body)
        return body

    async def ping(self) -> float:
        """One round trip to ``GET /v1/models``, in wall seconds (any HTTP answer counts).

        Raises:
            CloudUnavailableError: The server cannot be reached.
        """
        models = self.endpoint.rsplit("/", 1)[0] + "/models"
        started = time.perf_counter()
        try:
            await self._http().get(models)
        except httpx.HTTPError as exc:
            raise CloudUnavailableError(f"cannot reach {models}: {_describe(exc)}") from None
        return time.perf_counter() - started

    async def stream(
        self, prompt: str, *, max_tokens: int, now: Callable[[], float] = time.perf_counter
    ) -> AsyncGenerator[CloudEvent, None]:
        """Streams a completion of ``prompt``: one event per server-sent event, in order.

        Args:
            prompt: The full prompt text (already in the model's chat format).
            max_tokens: Tokens to ask for, ``>= 1``.
            now: The clock that stamps each event (the session passes its `RealtimeClock.now`).

        Yields:
            The events; the last one of a normal end carries the finish reason.

        Raises:
            InvalidInputError: ``max_tokens`` is below 1.
            CloudUnavailableError: Nothing was received (see the module docstring).
            CloudStreamCutError: The stream broke off after at least one event.
        """
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise InvalidInputError(f"max_tokens = {max_tokens!r}; ask the cloud for at least 1 token")
        received = 0
        finished = False

        def failure(reason: str) -> CloudError:
            if received == 0:
                return CloudUnavailableError(f"cloud {self.endpoint} unavailable: {reason}")
            return CloudStreamCutError(
                f"cloud stream from {self.endpoint} cut after {received} events: {reason}"
            )

        try:
            async with aconnect_sse(
                self._http(), "POST", self.endpoint, json=self.body(prompt, max_tokens)
            ) as source:
                response = source.response
                if response.status_code >= 400:
                    detail = (await response.aread()).decode("utf-8", "replace")[:200]
                    raise failure(f"HTTP {response.status_code} {detail!r}")
                async for sse in source.aiter_sse():
                    at = now()
                    if sse.data.strip() == "[DONE]":
                        finished = True
                        break
                    if not sse.data.strip():
                        continue
                    event = self._parse(sse.data, at)
                    if event is None:
                        raise failure(f"unexpected event {sse.data[:200]!r}")
                    received += 1
                    yield event
                    if event.finish_reason is not None:
                        finished = True
        except CloudError:
            raise
        except (httpx.HTTPError, SSEError, OSError) as exc:
            raise failure(_describe(exc)) from None
        if not finished:
            raise failure("the stream ended without a finish reason or [DONE]")

    @staticmethod
    def _parse(data: str, at: float) -> CloudEvent | None:
        try:
            payload = json.loads(data)
        except json.JSONDecodeError:
            return None
        if not isinstance(payload, dict) or "error" in payload:
            return None
        choices = payload.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return None
        choice = choices[0]
        text = choice.get("text")
        if text is None and isinstance(choice.get("delta"), dict):
            text = choice["delta"].get("content")
        reason = choice.get("finish_reason")
        return CloudEvent(
            text=text if isinstance(text, str) else "",
            at=at,
            finish_reason=reason if isinstance(reason, str) else None,
        )

"""The cloud side of the live runtime: an OpenAI-compatible streaming completions client.

`CloudClient.stream` posts ``{"prompt", "max_tokens", "stream": true}`` and greedy sampling
(`GREEDY_SAMPLING`) to ``/v1/completions`` (or, with ``api="chat"``, the prompt's turns as ``messages`` to
``/v1/chat/completions``) and yields one `CloudEvent` per server-sent event, stamped with the clock time at
which it was parsed.

Sampling is matched to the device, which decodes greedily with no repetition penalty: ``temperature`` 0,
``top_p`` 1, no frequency or presence penalty, and ``repeat_penalty`` 1 (llama.cpp's servers apply 1.1 by
default, which makes the cloud's text differ from what the device would write). A user's own
``extra_body`` fields win. A server that refuses ``repeat_penalty`` (HTTP 400 or 422 naming it) is asked
again without it, once, and not sent it again.

The cloud's limits are learned, not guessed (`CloudClient.context_window`): the context window from
``GET /v1/models`` (vLLM's ``max_model_len`` and similar fields) or llama.cpp's ``GET /props`` where the
server says, else from its error when a request exceeds it (`CloudContextError`), and remembered. Prompt
lengths in the server's tokens come from its tokenize route where it has one (`CloudClient.count_tokens`).

The URL comes from the argument or ``PDCORE_CLOUD_URL``; the API key (optional) from
the argument or ``PDCORE_CLOUD_API_KEY`` and is sent as a bearer token, never logged and never shown in a
``repr`` or an error message.

Every failure maps onto one of two exceptions (`pdcore.exceptions`, re-exported here), which define the
runtime's fallback:

- `CloudUnavailableError` before the first event (cannot connect, connection refused, an HTTP error
  status, no first event within the read timeout, an error object instead of a completion): the session
  goes on with the device alone. `CloudContextError`, a subclass, when the server says the request
  exceeds its context window (with the window, when it names it).
- `CloudStreamCutError` after at least one event (the connection drops, the server stops sending for
  longer than the read timeout, malformed data, or the stream ends with neither a finish reason nor
  ``[DONE]``): the session keeps what arrived and the device continues from there.

A stream that ends normally carries the finish reason on its last event: ``"stop"`` (the answer is
complete) or ``"length"`` (the ``max_tokens`` quota was used up).
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from types import TracebackType
from typing import Any

import httpx
from httpx_sse import SSEError, aconnect_sse

from pdcore.exceptions import (
    CloudContextError,
    CloudError,
    CloudStreamCutError,
    CloudUnavailableError,
    InvalidInputError,
)
from pdcore.runtime.openai_api import (
    CONTEXT_WORDS,
    GREEDY_SAMPLING,
    MODEL_CONTEXT_KEYS,
    CloudEvent,
    chat_messages,
    completions_url,
    context_in_error,
    parse_event,
)

__all__ = [
    "API_KEY_ENV",
    "GREEDY_SAMPLING",
    "URL_ENV",
    "CloudClient",
    "CloudContextError",
    "CloudError",
    "CloudEvent",
    "CloudStreamCutError",
    "CloudUnavailableError",
    "chat_messages",
    "completions_url",
]

URL_ENV = "PDCORE_CLOUD_URL"
"""The environment variable holding the cloud's base URL (e.g. ``http://127.0.0.1:8000``)."""

API_KEY_ENV = "PDCORE_CLOUD_API_KEY"
"""The environment variable holding the cloud's API key (optional)."""

MODEL_ENV = "PDCORE_CLOUD_MODEL"
"""The environment variable naming the model to ask for (optional; sent as ``model``)."""


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
        extra_body: More request fields; they override `GREEDY_SAMPLING`.
        api: ``"completions"`` (``/v1/completions``, the default) or ``"chat"`` (``/v1/chat/completions``,
            for endpoints that only offer chat; the prompt's ChatML turns become ``messages``, and an open
            assistant turn with text is sent as the final message for the server to continue, with vLLM's
            ``continue_final_message``).
        context_tokens: The server's context window when known; else learned (`context_window`).

    Raises:
        InvalidInputError: No URL is given or set, a timeout is not positive, or an unknown ``api``.
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
        api: str = "completions",
        context_tokens: int | None = None,
    ) -> None:
        chosen = url if url is not None else os.environ.get(URL_ENV, "")
        if not chosen:
            raise InvalidInputError(f"no cloud URL; fix: pass --cloud-url URL or set {URL_ENV}")
        for name, value in (("connect_timeout", connect_timeout), ("read_timeout", read_timeout)):
            if not (isinstance(value, (int, float)) and value > 0):
                raise InvalidInputError(f"{name} = {value!r}; pass a positive number of seconds")
        if api not in ("completions", "chat"):
            raise InvalidInputError(f"api = {api!r}; fix: use 'completions' or 'chat'")
        self.api = api
        self.endpoint = completions_url(chosen)
        if api == "chat":
            self.endpoint = self.endpoint.rsplit("/", 1)[0] + "/chat/completions"
        self.base_url = self.endpoint.split("/v1/", 1)[0]
        self.context_tokens = context_tokens
        """The server's context window in its tokens, once known (given, read or learned from an error)."""
        self._context_asked = context_tokens is not None
        self._tokenize_route: str | None = None
        self._drop_repeat_penalty = False
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV, "")
        self._headers = {"Accept": "text/event-stream"}
        if key:
            self._headers["Authorization"] = f"Bearer {key}"
        self.model = model if model is not None else (os.environ.get(MODEL_ENV) or None)
        self.extra_body = dict(extra_body or {})
        self.read_timeout = float(read_timeout)
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
        """The JSON request body for ``prompt`` and ``max_tokens``: greedy sampling unless the user's
        ``extra_body`` says otherwise."""
        body: dict[str, Any] = {"max_tokens": max_tokens, "stream": True}
        if self.api == "chat":
            messages = chat_messages(prompt)
            body["messages"] = messages
            if messages and messages[-1]["role"] == "assistant":
                body["continue_final_message"] = True
                body["add_generation_prompt"] = False
        else:
            body["prompt"] = prompt
        body.update(GREEDY_SAMPLING)
        if self._drop_repeat_penalty:
            del body["repeat_penalty"]
        if self.model is not None:
            body["model"] = self.model
        body.update(self.extra_body)
        return body

    async def _get_json(self, url: str) -> Any:
        try:
            response = await self._http().get(url)
        except httpx.HTTPError:
            return None
        if response.status_code != 200:
            return None
        try:
            return response.json()
        except ValueError:
            return None

    async def context_window(self) -> int | None:
        """The server's context window in tokens, where it says (module docstring); remembered.

        Read from ``GET /v1/models`` (vLLM's ``max_model_len`` and similar fields) or llama.cpp's
        ``GET /props``; None when neither says (a request that exceeds the window then teaches it, through
        `CloudContextError`).
        """
        if self._context_asked:
            return self.context_tokens
        self._context_asked = True
        models = await self._get_json(self.base_url + "/v1/models")
        entries = models.get("data") if isinstance(models, dict) else None
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict):
                for key in MODEL_CONTEXT_KEYS:
                    value = entry.get(key)
                    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                        self.context_tokens = value
                        return value
        props = await self._get_json(self.base_url + "/props")
        if isinstance(props, dict):
            settings = props.get("default_generation_settings")
            for source in (settings if isinstance(settings, dict) else {}, props):
                value = source.get("n_ctx")
                if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                    self.context_tokens = value
                    return value
        return self.context_tokens

    async def count_tokens(self, text: str) -> int | None:
        """``text``'s length in the server's tokens, from its tokenize route (llama-cpp-python's
        ``/extras/tokenize``, llama.cpp's and vLLM's ``/tokenize``); None when it has none."""
        routes = (
            ("/extras/tokenize", {"input": text}),
            ("/tokenize", {"content": text, "prompt": text}),
        )
        for route, body in routes:
            if self._tokenize_route not in (None, route):
                continue
            try:
                response = await self._http().post(self.base_url + route, json=body)
            except httpx.HTTPError:
                continue
            if response.status_code != 200:
                continue
            try:
                payload = response.json()
            except ValueError:
                continue
            tokens = payload.get("tokens") if isinstance(payload, dict) else None
            count = payload.get("count") if isinstance(payload, dict) else None
            if isinstance(count, int):
                self._tokenize_route = route
                return count
            if isinstance(tokens, list):
                self._tokenize_route = route
                return len(tokens)
        return None

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

        for attempt in range(2):
            try:
                async with aconnect_sse(
                    self._http(), "POST", self.endpoint, json=self.body(prompt, max_tokens)
                ) as source:
                    response = source.response
                    if response.status_code >= 400:
                        detail = (await response.aread()).decode("utf-8", "replace")[:400]
                        if attempt == 0 and self._refuses_repeat_penalty(response.status_code, detail):
                            self._drop_repeat_penalty = True
                            continue
                        raise self._refusal(response.status_code, detail, failure)
                    async for sse in source.aiter_sse():
                        at = now()
                        if sse.data.strip() == "[DONE]":
                            finished = True
                            break
                        if not sse.data.strip():
                            continue
                        event = parse_event(sse.data, at)
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
            break
        if not finished:
            if received == 0:
                await self._diagnose_empty_stream(prompt)
            raise failure("the stream ended without a finish reason or [DONE]")

    async def _diagnose_empty_stream(self, prompt: str) -> None:
        """A stream that ended with nothing: llama-cpp-python's server does that when the prompt exceeds its
        context window (it has already answered 200 when it finds out). The same prompt without streaming,
        for one token, makes such a server say so at once, with its window; raises `CloudContextError` if
        it does. Asked only in this rare failure, since a prompt that fits costs the server its prefill."""
        body = self.body(prompt, 1)
        body["stream"] = False
        for _ in range(2):  # the broken stream's pooled connection may be the first one tried
            try:
                response = await self._http().post(self.endpoint, json=body)
                break
            except httpx.TransportError:
                continue
            except httpx.HTTPError:
                return
        else:
            return
        if response.status_code >= 400:
            error = self._refusal(response.status_code, response.text[:400], CloudUnavailableError)
            if isinstance(error, CloudContextError):
                raise error

    def _refuses_repeat_penalty(self, status: int, detail: str) -> bool:
        """Whether the server refused the request for the ``repeat_penalty`` field we added."""
        return status in (400, 422) and "repeat_penalty" in detail and "repeat_penalty" not in self.extra_body

    def _refusal(self, status: int, detail: str, failure: Callable[[str], CloudError]) -> CloudError:
        """The error for an HTTP refusal: `CloudContextError` when it is about the context window."""
        lowered = detail.lower()
        if "token" in lowered and any(word in lowered for word in CONTEXT_WORDS):
            window = context_in_error(detail)
            if window is not None:
                self.context_tokens = window
            return CloudContextError(
                f"cloud {self.endpoint} refused a request beyond its context window"
                + (f" of {window} tokens" if window is not None else "")
                + f": HTTP {status} {detail[:200]!r}",
                window,
            )
        return failure(f"HTTP {status} {detail[:200]!r}")

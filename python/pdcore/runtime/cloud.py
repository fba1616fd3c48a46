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

The stream travels over aiohttp (`pdcore.runtime.cloud_http`), the JSON replies over httpx. Every network
read has a deadline (ours): a stream a stall deadline only a token resets, a budget of the tokens asked for
and a whole deadline (`pdcore.runtime.token_stream`); a JSON reply one deadline for headers and body, a size
and a nesting limit (`pdcore.runtime.json_reply`); a tokenize route that hangs is dropped after its first
timeout (`pdcore.runtime.cloud_tokenize`). Numbers a server sends are range-checked.

The URL comes from the argument or ``PDCORE_CLOUD_URL``; the API key (optional) from
the argument or ``PDCORE_CLOUD_API_KEY`` and is sent as a bearer token, never logged and never shown in a
``repr`` or an error message.

Every failure maps onto one of two exceptions (`pdcore.exceptions`, re-exported here), which define the
runtime's fallback:

- `CloudUnavailableError` before the first event (cannot connect, connection refused, an HTTP error
  status, no token within the read timeout, an error object instead of a completion): the session
  goes on with the device alone. `CloudContextError`, a subclass, when the server says the request
  exceeds its context window (with the window, when it names it).
- `CloudStreamCutError` after at least one event (the connection drops, no token for longer than the
  read timeout, the whole-request deadline passes, malformed data, or the stream ends with neither a
  finish reason nor ``[DONE]``): the session keeps what arrived and the device continues from there.

A stream that ends normally carries the finish reason on its last event: ``"stop"`` (the answer is
complete) or ``"length"`` (the ``max_tokens`` quota was used up, also when the server would have sent more).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from types import TracebackType
from typing import Any

import httpx

from pdcore.exceptions import (
    CloudContextError,
    CloudError,
    CloudStreamCutError,
    CloudUnavailableError,
    InvalidInputError,
)
from pdcore.runtime.cloud_http import TRANSPORT_ERRORS, StreamTransport
from pdcore.runtime.cloud_tokenize import TOKENIZE_DEADLINE_S, TokenizeRoutes
from pdcore.runtime.json_reply import DETAIL_CHARS, ReplyError, describe, fetch_json, read_limited
from pdcore.runtime.openai_api import (
    GREEDY_SAMPLING,
    MODEL_CONTEXT_KEYS,
    CloudEvent,
    chat_messages,
    completions_url,
    context_refusal,
    window_tokens,
)
from pdcore.runtime.token_stream import SLOWEST_TOKEN_S, TokenStream

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

INFO_DEADLINE_S = 5.0
"""Seconds a model-information reply (``GET /v1/models``, ``GET /props``, the round trip) has for its
headers and body (ours): a small JSON document the server has at hand, asked a few times a run."""


class CloudClient:
    """A streaming client for one OpenAI-compatible endpoint, reused across requests (keep-alive).

    Args:
        url: Base URL, ``.../v1`` URL or the completions endpoint; default ``$PDCORE_CLOUD_URL``.
        api_key: Bearer token; default ``$PDCORE_CLOUD_API_KEY`` (none when unset or empty).
        model: The ``model`` field of the request; default ``$PDCORE_CLOUD_MODEL`` (omitted when unset).
        connect_timeout: Seconds to establish the connection.
        read_timeout: Seconds to wait for the first token and between tokens (only a token resets it).
        extra_body: More request fields; they override `GREEDY_SAMPLING`.
        api: ``"completions"`` (``/v1/completions``, the default) or ``"chat"`` (``/v1/chat/completions``,
            for endpoints that only offer chat; the prompt's ChatML turns become ``messages``, and an open
            assistant turn with text is sent as the final message for the server to continue, with vLLM's
            ``continue_final_message``).
        context_tokens: The server's context window when known; else learned (`context_window`).
        slowest_token_s: The slowest plausible pace, seconds a token, for a stream's whole deadline
            (`pdcore.runtime.token_stream`).
        tokenize_timeout: Seconds a tokenize reply has, headers and body (`count_tokens`).
        info_timeout: Seconds a model-information reply has, headers and body (`context_window`, `ping`).

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
        slowest_token_s: float = SLOWEST_TOKEN_S,
        tokenize_timeout: float = TOKENIZE_DEADLINE_S,
        info_timeout: float = INFO_DEADLINE_S,
    ) -> None:
        chosen = url if url is not None else os.environ.get(URL_ENV, "")
        if not chosen:
            raise InvalidInputError(f"no cloud URL; fix: pass --cloud-url URL or set {URL_ENV}")
        for name, value in (
            ("connect_timeout", connect_timeout),
            ("read_timeout", read_timeout),
            ("slowest_token_s", slowest_token_s),
            ("tokenize_timeout", tokenize_timeout),
            ("info_timeout", info_timeout),
        ):
            if isinstance(value, bool) or not (isinstance(value, (int, float)) and 0 < value <= 86_400):
                raise InvalidInputError(
                    f"{name} = {value!r}; pass a positive number of seconds, at most a day"
                )
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
        self._tokenize = TokenizeRoutes(self.base_url, deadline_s=tokenize_timeout)
        self._drop_repeat_penalty = False
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV, "")
        self._headers = {"Accept": "text/event-stream"}
        if key:
            self._headers["Authorization"] = f"Bearer {key}"
        self.model = model if model is not None else (os.environ.get(MODEL_ENV) or None)
        self.extra_body = dict(extra_body or {})
        self.read_timeout = float(read_timeout)
        self.slowest_token_s = float(slowest_token_s)
        self.info_timeout = float(info_timeout)
        # every read has a deadline of its own; httpx's read timeout, restarted by each byte, is a backstop
        self._timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
        self._client = self._new_client()
        self._stream = StreamTransport(
            self.endpoint, connect_timeout=connect_timeout, read_timeout=read_timeout, headers=self._headers
        )

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
        """Closes the connection pools (a later request opens new ones)."""
        await self._client.aclose()
        await self._stream.aclose()

    async def warm(self) -> None:
        """Opens the stream's connection ahead of the first request (`StreamTransport.warm`)."""
        await self._stream.warm(self.base_url + "/v1/models", self.info_timeout)

    async def __aenter__(self) -> CloudClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
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
        """A model-information reply's JSON, or None (unreachable, late, refused or malformed)."""
        try:
            return (await fetch_json(self._http(), "GET", url, deadline_s=self.info_timeout)).value
        except ReplyError:
            return None

    async def context_window(self) -> int | None:
        """The server's context window in tokens, where it says (module docstring); remembered.

        Read from ``GET /v1/models`` (vLLM's ``max_model_len`` and similar fields) or llama.cpp's
        ``GET /props``, each with `info_timeout` for its reply, and believed from 1 to
        `pdcore.limits.MAX_TOKENS` tokens; None when neither says (a request that exceeds the window then
        teaches it, through `CloudContextError`).
        """
        if self._context_asked:
            return self.context_tokens
        self._context_asked = True
        models = await self._get_json(self.base_url + "/v1/models")
        entries = models.get("data") if isinstance(models, dict) else None
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict):
                for key in MODEL_CONTEXT_KEYS:
                    value = window_tokens(entry.get(key))
                    if value is not None:
                        self.context_tokens = value
                        return value
        props = await self._get_json(self.base_url + "/props")
        if isinstance(props, dict):
            settings = props.get("default_generation_settings")
            for source in (settings if isinstance(settings, dict) else {}, props):
                value = window_tokens(source.get("n_ctx"))
                if value is not None:
                    self.context_tokens = value
                    return value
        return self.context_tokens

    async def count_tokens(self, text: str, *, notice: Callable[[str], None] | None = None) -> int | None:
        """``text``'s length in the server's tokens, from its tokenize route (llama-cpp-python's
        ``/extras/tokenize``, llama.cpp's and vLLM's ``/tokenize``); None when it has none, or when the
        route has been dropped for not answering within ``tokenize_timeout`` (``notice`` is called once
        when that happens; `pdcore.runtime.cloud_tokenize`).

        Raises:
            InvalidInputError: The server's count is out of range for ``text``.
        """
        return await self._tokenize.count(self._http(), text, notice)

    async def ping(self) -> float:
        """One round trip to ``GET /v1/models``, in wall seconds (any HTTP answer counts; the reply has
        ``info_timeout`` for its headers and body).

        Raises:
            CloudUnavailableError: The server cannot be reached, or does not answer in time.
        """
        models = self.endpoint.rsplit("/", 1)[0] + "/models"
        started = time.perf_counter()
        try:
            await fetch_json(self._http(), "GET", models, deadline_s=self.info_timeout)
        except ReplyError as exc:
            raise CloudUnavailableError(str(exc)) from None
        return time.perf_counter() - started

    async def stream(
        self, prompt: str, *, max_tokens: int, now: Callable[[], float] = time.perf_counter
    ) -> AsyncGenerator[CloudEvent, None]:
        """Streams a completion of ``prompt``: one event per server-sent event with text or a finish
        reason, in order, within the stream's deadlines and token budget (module docstring).

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
        reader = TokenStream(
            self.endpoint,
            budget=max_tokens,
            stall_s=self.read_timeout,
            slowest_token_s=self.slowest_token_s,
            now=now,
        )
        for attempt in range(2):
            try:
                response = await reader.within(
                    self._stream.post(self.endpoint, self.body(prompt, max_tokens))
                )
            except TRANSPORT_ERRORS as exc:
                raise reader.failure(describe(exc)) from None
            try:
                if response.status >= 400:
                    detail, _ = await reader.within(read_limited(response.chunks(), DETAIL_CHARS))
                    text = detail.decode("utf-8", "replace")
                    if attempt == 0 and self._refuses_repeat_penalty(response.status, text):
                        self._drop_repeat_penalty = True
                        continue
                    raise self._refusal(response.status, text, reader.failure)
                kind = response.content_type
                if "text/event-stream" not in kind:
                    raise reader.failure(
                        f"the server answered with Content-Type {kind!r}, not an event stream"
                    )
                async with contextlib.aclosing(reader.events(response.chunks())) as events:
                    async for event in events:
                        yield event
            except CloudError:
                raise
            except TRANSPORT_ERRORS as exc:
                raise reader.failure(describe(exc)) from None
            finally:
                response.close()
            break
        if not reader.finished:
            if reader.delivered == 0:
                await self._diagnose_empty_stream(prompt)
            raise reader.failure("the stream ended without a finish reason or [DONE]")

    async def _diagnose_empty_stream(self, prompt: str) -> None:
        """A stream that ended with nothing: llama-cpp-python's server does that when the prompt exceeds its
        context window (it has already answered 200 when it finds out). The same prompt without streaming,
        for one token, makes such a server say so at once, with its window; raises `CloudContextError` if
        it does. Asked only in this rare failure, since a prompt that fits costs the server its prefill."""
        body = self.body(prompt, 1)
        body["stream"] = False
        for _ in range(2):  # the broken stream's pooled connection may be the first one tried
            try:
                http, deadline = self._http(), self.read_timeout
                reply = await fetch_json(http, "POST", self.endpoint, deadline_s=deadline, body=body)
                break
            except ReplyError as exc:
                if exc.timed_out:
                    return
        else:
            return
        if reply.status >= 400:
            error = self._refusal(reply.status, reply.detail, CloudUnavailableError)
            if isinstance(error, CloudContextError):
                raise error

    def _refuses_repeat_penalty(self, status: int, detail: str) -> bool:
        """Whether the server refused the request for the ``repeat_penalty`` field we added."""
        return status in (400, 422) and "repeat_penalty" in detail and "repeat_penalty" not in self.extra_body

    def _refusal(self, status: int, detail: str, failure: Callable[[str], CloudError]) -> CloudError:
        """The error for an HTTP refusal: `CloudContextError` when it is about the context window."""
        error = context_refusal(self.endpoint, status, detail)
        if error is None:
            return failure(f"HTTP {status} {detail[:200]!r}")
        if error.context_tokens is not None:
            self.context_tokens = error.context_tokens
        return error

"""The ASGI app: P/D-Device behind OpenAI's HTTP API (FastAPI).

Routes (``docs/serve.md``): ``POST /v1/chat/completions``, ``POST /v1/completions`` (streaming or not),
``GET /v1/models``, ``GET /health``, ``GET /metrics``. With an API key every route but ``/health``
requires ``Authorization: Bearer KEY`` (compared in constant time); without one, none does.

Each request: its body is validated (`pdcore.serve.schemas`), its model checked, the options the server
does not offer refused, its prompt built, its answer opened on the session (`pdcore.serve.answers`), and
its prompt checked against the device's context window while the answer starts
(`pdcore.serve.conversation`; a streamed answer whose prompt is likely to fit starts before the count,
`pdcore.serve.context_guard`). A streamed
answer's first piece is awaited before the response starts, so an error up to then is an HTTP error with
its status; one after is an error event and ``[DONE]`` (`pdcore.serve.streaming`). Whatever ends a
request (the end, an error, the client going away), the answer is closed in a ``finally``, shielded from
the cancellation that a disconnect brings, so no cloud stream or device work outlives its request.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from pdcore.runtime.display import Piece
from pdcore.runtime.session import Session
from pdcore.serve.answers import AnswerRun, open_answer
from pdcore.serve.context_guard import ContextGuard
from pdcore.serve.conversation import chat_prompt, check_context
from pdcore.serve.errors import APIError, install_error_handlers, runtime_error
from pdcore.serve.figures import AnswerFigures
from pdcore.serve.metrics import CONTENT_TYPE, ServeMetrics
from pdcore.serve.schemas import ChatCompletionRequest, CompletionRequest, unsupported_options
from pdcore.serve.streaming import Shape, usage

__all__ = ["Served", "create_app"]

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
"""Headers of a stream: not cached, not buffered by a proxy in front (nginx's ``X-Accel-Buffering``)."""


class Served:
    """What the app serves: the session, the model id, the chat template, the metrics.

    Args:
        session: The live session every answer is opened on.
        model_id: The model id the server answers to (``GET /v1/models``).
        chat_template: The model's chat template (None: ChatML).
        context_tokens: The device's context window (None: not checked here).
    """

    def __init__(
        self, session: Session, *, model_id: str, chat_template: str | None, context_tokens: int | None
    ) -> None:
        self.session = session
        self.model_id = model_id
        self.chat_template = chat_template
        self.context_tokens = context_tokens
        self.metrics = ServeMetrics()
        self.guard = ContextGuard()
        """Whether a streamed answer may start before its prompt is counted (`pdcore.serve.context_guard`)."""

    def check_model(self, model: str | None) -> None:
        """Refuses a model other than the one served."""
        if model is not None and model != self.model_id:
            raise APIError(
                404,
                f"model {model!r} is not served here; fix: use {self.model_id!r} (GET /v1/models) or leave "
                "model out",
                code="model_not_found",
                param="model",
            )

    async def answer(
        self, request: Request, prompt: str, shape: Shape, body_tokens: int | None, param: str
    ) -> Response:
        """Opens the answer to ``prompt`` (from the request field ``param``), checks that it fits the device's
        context window while it starts, and sends it, streamed or whole (module docstring)."""
        try:
            answer = await open_answer(self.session, prompt, body_tokens)
        except Exception as error:
            raise runtime_error(error) from error

        async def counted() -> int | None:
            tokens = await answer.prompt_tokens()
            self.guard.learn(prompt, tokens)
            return tokens

        check = check_context(prompt, self.session.device, self.context_tokens, param, counted)
        pending: asyncio.Future[None] | None = None
        try:
            if shape.streaming and self.guard.likely_fits(prompt, self.context_tokens):
                pending = asyncio.ensure_future(check)  # counted alongside (pdcore.serve.context_guard)
            else:
                await check
        except BaseException:
            with anyio.CancelScope(shield=True):
                await answer.aclose()
            raise
        self.metrics.in_progress.inc()
        run = AnswerRun(
            answer,
            max_tokens=body_tokens,
            session_max_tokens=self.session.max_tokens,
            observe=self._observe,
        )
        if not shape.streaming:
            return await self._whole(request, run, prompt, shape)
        try:
            first = await run.next_piece()
            if pending is not None and pending.done():
                pending.result()  # a prompt found too long by now is still refused before any byte
                pending = None
        except BaseException as error:
            refusal = _refusal(pending)
            await _settle(pending)
            await self._close(run)
            if isinstance(error, Exception):
                raise (refusal or runtime_error(error)) from error
            raise
        return StreamingResponse(
            self._events(run, prompt, shape, first, pending),
            media_type="text/event-stream",
            headers=SSE_HEADERS,
        )

    def _observe(self, figures: AnswerFigures) -> None:
        self.metrics.in_progress.dec()
        self.metrics.observe(figures)

    async def _close(self, run: AnswerRun) -> None:
        with anyio.CancelScope(shield=True):
            await run.close()

    def _ending(self, run: AnswerRun, prompt: str) -> tuple[dict[str, Any], dict[str, Any]]:
        figures = run.figures
        assert figures is not None
        prompt_tokens = figures.prompt_tokens
        self.guard.learn(prompt, prompt_tokens)
        if prompt_tokens is None:  # the device did not read the prompt: the session's estimate
            prompt_tokens = max(1, round(len(prompt) * self.session.tokens_per_char))
        return usage(prompt_tokens, run.positions, figures.cached_tokens), figures.extension()

    async def _events(
        self,
        run: AnswerRun,
        prompt: str,
        shape: Shape,
        first: Piece | None,
        pending: asyncio.Future[None] | None,
    ) -> AsyncIterator[bytes]:
        try:
            piece = first
            while piece is not None:
                if pending is not None and pending.done():
                    pending.result()  # the prompt's count came: an error when it does not fit
                    pending = None
                yield shape.piece(piece.text)
                piece = await run.next_piece()
            if pending is not None:
                await pending
        except Exception as error:
            failure = _refusal(pending) or runtime_error(error)
            self.metrics.error(failure.code)
            await self._close(run)
            for event in shape.error(failure.body()):
                yield event
            return
        finally:
            await _settle(pending)
            await self._close(run)
        counted, extension = self._ending(run, prompt)
        for event in shape.ending(run.finish_reason, counted, extension):
            yield event

    async def _whole(self, request: Request, run: AnswerRun, prompt: str, shape: Shape) -> Response:
        async def read() -> str:
            return "".join([piece.text async for piece in run.pieces()])

        reading = asyncio.ensure_future(read())
        watching = asyncio.ensure_future(_disconnected(request))
        text: str | None = None
        try:
            await asyncio.wait({reading, watching}, return_when=asyncio.FIRST_COMPLETED)
            if reading.done():
                text = reading.result()
        except Exception as error:
            raise runtime_error(error) from error
        finally:  # whatever ends the request (its end, an error, a cancellation), nothing outlives it
            with anyio.CancelScope(shield=True):
                for task in (reading, watching):
                    task.cancel()
                await asyncio.gather(reading, watching, return_exceptions=True)
                await run.close()
        if text is None:  # the client went away: its answer was stopped, and nobody reads a reply
            return Response(status_code=499)
        counted, extension = self._ending(run, prompt)
        return JSONResponse(shape.response(text, run.finish_reason, counted, extension))


def _refusal(pending: asyncio.Future[None] | None) -> APIError | None:
    """The context check's refusal, once it has one: it names the request field, which the device's own
    refusal of the same prompt does not."""
    if pending is None or not pending.done() or pending.cancelled():
        return None
    error = pending.exception()
    return error if isinstance(error, APIError) else None


async def _settle(pending: asyncio.Future[None] | None) -> None:
    """Stops a context check still running and consumes its outcome, shielded from a cancellation."""
    if pending is None:
        return
    with anyio.CancelScope(shield=True):
        pending.cancel()
        await asyncio.gather(pending, return_exceptions=True)


async def _disconnected(request: Request) -> None:
    """Returns when the client has gone away (the body was read already: the next message is the
    disconnect)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _auth(api_key: str | None) -> Callable[[Request], Awaitable[None]]:
    expected = f"Bearer {api_key}".encode() if api_key else None

    async def check(request: Request) -> None:
        if expected is None:
            return
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            raise APIError(
                401,
                "missing or wrong API key; fix: send the header 'Authorization: Bearer KEY' with the key "
                "the server was started with (--api-key or PDCORE_API_KEY)",
                code="invalid_api_key",
            )

    return check


def _routes(served: Served) -> APIRouter:
    router = APIRouter()

    @router.post("/v1/chat/completions", response_model=None)
    async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
        served.check_model(body.model)
        refusal = unsupported_options(body)
        if refusal is not None:
            raise refusal
        prompt = chat_prompt(body, served.chat_template)
        include = body.stream_options is not None and body.stream_options.include_usage
        shape = Shape("chat", served.model_id, streaming=body.stream, include_usage=include)
        return await served.answer(request, prompt, shape, body.answer_tokens, "messages")

    @router.post("/v1/completions", response_model=None)
    async def completions(body: CompletionRequest, request: Request) -> Response:
        served.check_model(body.model)
        refusal = unsupported_options(body)
        if refusal is not None:
            raise refusal
        include = body.stream_options is not None and body.stream_options.include_usage
        shape = Shape("completion", served.model_id, streaming=body.stream, include_usage=include)
        return await served.answer(request, body.text, shape, body.answer_tokens, "prompt")

    @router.get("/v1/models")
    async def models() -> dict[str, Any]:
        entry = {"id": served.model_id, "object": "model", "created": 0, "owned_by": "pdcore"}
        if served.context_tokens is not None:
            entry["context_length"] = served.context_tokens
        return {"object": "list", "data": [entry]}

    @router.get("/metrics")
    async def metrics() -> Response:
        return Response(served.metrics.text(), media_type=CONTENT_TYPE)

    return router


def create_app(
    session: Session,
    *,
    model_id: str,
    api_key: str | None = None,
    chat_template: str | None = None,
    context_tokens: int | None = None,
    on_startup: Callable[[], Awaitable[None]] | None = None,
    on_shutdown: Callable[[], Awaitable[None]] | None = None,
) -> FastAPI:
    """The server's ASGI app over ``session`` (module docstring).

    Args:
        session: The live session (its cloud, device and settings).
        model_id: The model id the server answers to.
        api_key: The key clients must send (None: no key needed).
        chat_template: The model's chat template for chat requests (None: ChatML).
        context_tokens: The device's context window, for the prompt check (None: not checked here).
        on_startup: Awaited before the server takes requests (warms what the caller opened).
        on_shutdown: Awaited when the server stops (closes what the caller opened).
    """
    served = Served(session, model_id=model_id, chat_template=chat_template, context_tokens=context_tokens)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            if on_startup is not None:
                await on_startup()
            yield
        finally:
            if on_shutdown is not None:
                await on_shutdown()

    app = FastAPI(
        title="pdcore serve",
        summary="P/D-Device (cloud-device split decoding) behind OpenAI's API",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.served = served
    install_error_handlers(app, served.metrics.error)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "model": served.model_id}

    app.include_router(_routes(served), dependencies=[Depends(_auth(api_key))])
    return app

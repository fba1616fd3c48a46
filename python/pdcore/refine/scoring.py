"""Per-token surprisal of a prompt, from what the cloud's prefill already computes.

The surprisal of a prompt token is ``-log p(token | the tokens before it)`` in nats: the prefill computes
the logits at every position anyway (only the last row is normally kept), so keeping all rows costs the
cloud one log-softmax per token and no extra model call. Two sources:

- `LlamaScorer`: llama.cpp in process (llama-cpp-python with ``logits_all=True``), the cloud stand-in of
  the live runtime; the same GGUF model the device runs, or another.
- `OpenAIScorer` / `score_openai` / `parse_echo_logprobs` (`pdcore.refine.endpoint_scoring`): an
  OpenAI-compatible ``/v1/completions`` endpoint asked for ``echo=true, logprobs=1``; not llama.cpp's or
  llama-cpp-python's servers, whose prompt log-probabilities are absent or mean something else.

The scored sequence is ``prefix + text + suffix`` (the prompt exactly as the cloud sees it, e.g. the
ChatML wrapper around one user turn); only the tokens that start inside ``text`` are reported, with
character offsets into ``text``. A token that straddles the edge of ``text`` is clipped to it. The scores are
a `pdcore.refine.surprisal.TokenSurprisal`; this module offers every name of the three.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from pdcore.exceptions import InvalidInputError, InvalidStateError
from pdcore.refine.endpoint_scoring import OpenAIScorer, parse_echo_logprobs, score_openai
from pdcore.refine.surprisal import TokenSurprisal, clip_to_text, surprisal_from_logits

__all__ = [
    "CHATML",
    "LlamaScorer",
    "OpenAIScorer",
    "TokenSurprisal",
    "parse_echo_logprobs",
    "score_openai",
    "surprisal_from_logits",
]

IntArray = npt.NDArray[np.int64]

CHATML: tuple[str, str] = ("<|im_start|>user\n", "<|im_end|>\n<|im_start|>assistant\n")
"""The ChatML wrapper of one user turn (prefix, suffix), as SmolLM2 is prompted."""


def _byte_to_char(text: str) -> IntArray:
    """For each UTF-8 byte offset of ``text`` (and its end), the index of the character it falls in."""
    widths = np.fromiter((len(c.encode("utf-8")) for c in text), dtype=np.int64, count=len(text))
    return np.append(np.repeat(np.arange(len(text), dtype=np.int64), widths), len(text))


class LlamaScorer:
    """Prompt surprisal from llama.cpp with all logits kept, the cloud's prefill run in process.

    Args:
        model_path: The ``.gguf`` file.
        n_threads: Threads for the prefill (default: llama.cpp's choice).
        n_ctx: Context window; the scored prompt must fit.
        n_batch: Tokens per llama.cpp decode call.

    Raises:
        InvalidInputError: llama-cpp-python is missing or the file does not exist.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        n_threads: int | None = None,
        n_ctx: int = 4096,
        n_batch: int = 512,
    ) -> None:
        from pdcore.runtime.device import load_llama  # noqa: PLC0415  (the optional runtime)

        self._lib, self._llama, self.path = load_llama(
            model_path,
            needed_for="scoring with a local model (or score through an endpoint with --cloud-url)",
            n_ctx=n_ctx,
            n_batch=n_batch,
            n_threads=n_threads,
            logits_all=True,
        )

    @property
    def n_ctx(self) -> int:
        """The context window in tokens."""
        return int(self._llama.n_ctx())

    def count_tokens(self, text: str, *, prompt: bool = False) -> int:
        """Tokens of ``text`` (``prompt=True``: special tokens parsed, BOS added if the model wants one)."""
        return len(self._llama.tokenize(text.encode("utf-8"), add_bos=prompt, special=prompt))

    def score(self, text: str, *, prefix: str = "", suffix: str = "") -> TokenSurprisal:
        """Surprisal of the tokens of ``text``, scored as ``prefix + text + suffix``.

        Raises:
            InvalidInputError: The text is empty or the sequence does not fit the context window.
        """
        if not text.strip():
            raise InvalidInputError("prompt is empty; fix: pass the prompt text to score")
        full = prefix + text + suffix
        raw = full.encode("utf-8")
        llama = self._llama
        tokens = [int(t) for t in llama.tokenize(raw, add_bos=True, special=True)]
        if len(tokens) > self.n_ctx:
            raise InvalidInputError(
                f"the prompt has {len(tokens)} tokens but the scorer's context window is {self.n_ctx}; fix: "
                "raise n_ctx or shorten the prompt"
            )
        llama.reset()
        llama.eval(tokens)
        surprisal = surprisal_from_logits(llama.scores[: len(tokens)], tokens)
        pieces = [bytes(llama.detokenize([t], special=True)) for t in tokens]
        detokenized = b"".join(pieces)
        if not detokenized.endswith(raw):
            raise InvalidInputError(
                f"the tokenizer of {self.path.name} does not reproduce the prompt's bytes, so token offsets "
                "cannot be mapped back; fix: score through an endpoint (--cloud-url) or use another model"
            )
        # bytes the tokenizer adds in front (a BOS piece, a SentencePiece space) belong to no character
        lead = len(detokenized) - len(raw)
        byte_ends = np.cumsum([len(p) for p in pieces], dtype=np.int64)
        byte_starts = np.clip(byte_ends - [len(p) for p in pieces] - lead, 0, len(raw))
        byte_ends = np.clip(byte_ends - lead, 0, len(raw))
        byte_to_char = _byte_to_char(full)
        starts, ends, values = clip_to_text(
            byte_to_char[byte_starts], byte_to_char[byte_ends], surprisal, len(prefix), len(text)
        )
        return TokenSurprisal(text, starts, ends, values, source=f"llama.cpp {self.path.name}")

    def generate(self, max_tokens: int, *, stop: Callable[[str], bool] | None = None) -> str:
        """Greedy continuation of the sequence last scored: the cloud's own answer to that prompt.

        Args:
            max_tokens: The most tokens to generate.
            stop: Called with the text so far after each token; generation ends when it returns True.

        Raises:
            InvalidStateError: Nothing has been scored yet.
        """
        llama = self._llama
        if int(llama.n_tokens) == 0:
            raise InvalidStateError("generate: nothing is scored yet; fix: call score first")
        raw = b""
        for _ in range(max_tokens):
            token = int(np.argmax(llama.scores[int(llama.n_tokens) - 1]))
            if llama.token_eos() == token or self._is_eog(token):
                break
            raw += bytes(llama.detokenize([token]))
            if stop is not None and stop(raw.decode("utf-8", errors="ignore")):
                break
            if int(llama.n_tokens) >= self.n_ctx:
                break
            llama.eval([token])
        return raw.decode("utf-8", errors="replace")

    def _is_eog(self, token: int) -> bool:
        return bool(self._lib.llama_vocab_is_eog(self._lib.llama_model_get_vocab(self._llama.model), token))

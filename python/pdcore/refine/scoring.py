"""Per-token surprisal of a prompt, from what the cloud's prefill already computes.

The surprisal of a prompt token is ``-log p(token | the tokens before it)`` in nats: the prefill computes
the logits at every position anyway (only the last row is normally kept), so keeping all rows costs the
cloud one log-softmax per token and no extra model call. Two sources:

- `LlamaScorer`: llama.cpp in process (llama-cpp-python with ``logits_all=True``), the cloud stand-in of
  the live runtime; the same GGUF model the device runs, or another.
- `score_openai` / `parse_echo_logprobs`: an OpenAI-compatible ``/v1/completions`` endpoint asked for
  ``echo=true, logprobs=1`` (``choices[0].logprobs.token_logprobs``, null for the first token). The
  OpenAI semantics are that entry ``i`` is the log-probability of prompt token ``i`` given the tokens
  before it. llama-cpp-python's own server (0.3.x) returns something else under that name, the
  probability that each token *repeats itself* (checked against its logits; abetlen/llama-cpp-python
  issue #1983), and llama.cpp's server returns no prompt log-probabilities at all, so with those the
  in-process `LlamaScorer` is the source.

The scored sequence is ``prefix + text + suffix`` (the prompt exactly as the cloud sees it, e.g. the
ChatML wrapper around one user turn); only the tokens that start inside ``text`` are reported, with
character offsets into ``text``. A token that straddles the edge of ``text`` is clipped to it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from pdcore.exceptions import InvalidInputError, InvalidStateError

__all__ = [
    "CHATML",
    "LlamaScorer",
    "OpenAIScorer",
    "TokenSurprisal",
    "parse_echo_logprobs",
    "score_openai",
    "surprisal_from_logits",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

CHATML: tuple[str, str] = ("<|im_start|>user\n", "<|im_end|>\n<|im_start|>assistant\n")
"""The ChatML wrapper of one user turn (prefix, suffix), as SmolLM2 is prompted."""


@dataclass(frozen=True, eq=False)
class TokenSurprisal:
    """The tokens of a text with their character spans and surprisal.

    Attributes:
        text: The scored text (without the prefix and suffix it was scored in).
        starts: Character offset in ``text`` where each token starts (non-decreasing).
        ends: Character offset where each token ends (``starts[i] <= ends[i] <= len(text)``).
        surprisal: ``-log p`` of each token given everything before it, nats; NaN where unknown (the
            very first token of a sequence has no prediction).
        source: Where the numbers come from (model file or endpoint).

    Raises:
        InvalidInputError: The arrays differ in length or the spans do not fit ``text``.
    """

    text: str
    starts: IntArray
    ends: IntArray
    surprisal: FloatArray
    source: str = ""

    def __post_init__(self) -> None:
        starts = np.asarray(self.starts, dtype=np.int64)
        ends = np.asarray(self.ends, dtype=np.int64)
        surprisal = np.asarray(self.surprisal, dtype=np.float64)
        if not (starts.ndim == ends.ndim == surprisal.ndim == 1) or not (
            len(starts) == len(ends) == len(surprisal)
        ):
            raise InvalidInputError(
                f"token scores: starts, ends and surprisal have lengths {starts.size}, {ends.size} and "
                f"{surprisal.size}; fix: pass one start, end and surprisal per token"
            )
        if len(starts) and (
            starts.min() < 0
            or ends.max() > len(self.text)
            or (ends < starts).any()
            or (np.diff(starts) < 0).any()
        ):
            raise InvalidInputError(
                f"token scores: token spans must be ordered and lie within the text of {len(self.text)} "
                "characters; fix: pass character offsets into the scored text"
            )
        if (surprisal[~np.isnan(surprisal)] < -1e-6).any():
            raise InvalidInputError(
                "token scores: a surprisal is negative; fix: pass -log p (nats >= 0), not log p"
            )
        for name, value in (("starts", starts), ("ends", ends), ("surprisal", surprisal)):
            value.setflags(write=False)
            object.__setattr__(self, name, value)

    def __len__(self) -> int:
        return len(self.starts)

    @classmethod
    def from_pieces(
        cls, pieces: Sequence[str], surprisal: Sequence[float | None], source: str = ""
    ) -> TokenSurprisal:
        """Token scores of the text made by joining ``pieces`` (one string per token).

        Example:
            >>> s = TokenSurprisal.from_pieces(["Hi", " there", "."], [None, 2.0, 0.5])
            >>> s.text, s.starts.tolist(), s.ends.tolist()
            ('Hi there.', [0, 2, 8], [2, 8, 9])
        """
        if len(pieces) != len(surprisal):
            raise InvalidInputError(
                f"token scores: {len(pieces)} pieces but {len(surprisal)} surprisals; fix: pass one each"
            )
        lengths = np.fromiter((len(p) for p in pieces), dtype=np.int64, count=len(pieces))
        ends = np.cumsum(lengths)
        starts = ends - lengths
        values = np.array([math.nan if v is None else float(v) for v in surprisal], dtype=np.float64)
        return cls("".join(pieces), starts, ends, values, source)


def surprisal_from_logits(logits: npt.ArrayLike, tokens: Sequence[int]) -> FloatArray:
    """Surprisal of ``tokens[1:]`` from the logits after each of ``tokens[:-1]``.

    Args:
        logits: ``(n, vocab)`` logits, row ``i`` computed after token ``i``; ``n >= len(tokens) - 1``.
        tokens: The token ids.

    Returns:
        ``len(tokens)`` values in nats; the first is NaN (nothing predicts the first token).

    Example:
        >>> import numpy as np
        >>> s = surprisal_from_logits(np.log([[0.5, 0.25, 0.25], [0.1, 0.1, 0.8]]), [0, 1, 2])
        >>> [round(x, 4) for x in s.tolist()]
        [nan, 1.3863, 0.2231]
    """
    ids = np.asarray(tokens, dtype=np.int64)
    out = np.full(len(ids), math.nan)
    if len(ids) < 2:
        return out
    rows = np.asarray(logits)[: len(ids) - 1].astype(np.float64, copy=False)
    if rows.ndim != 2 or rows.shape[0] < len(ids) - 1:
        raise InvalidInputError(
            f"logits of shape {np.shape(logits)} for {len(ids)} tokens; fix: pass one row per token but "
            "the last"
        )
    peak = rows.max(axis=1)
    lse = peak + np.log(np.exp(rows - peak[:, None]).sum(axis=1))
    out[1:] = lse - rows[np.arange(len(ids) - 1), ids[1:]]
    return out


def _clip_to_text(
    starts: IntArray, ends: IntArray, values: FloatArray, offset: int, length: int
) -> tuple[IntArray, IntArray, FloatArray]:
    """The tokens that start inside ``[offset, offset + length)``, shifted and clipped to it."""
    local_starts = starts - offset
    local_ends = ends - offset
    inside = (local_starts >= 0) & (local_starts < length)
    # a token that begins in the prefix and runs into the text covers the text's first characters
    straddle = (local_starts < 0) & (local_ends > 0)
    if straddle.any() and not (inside & (local_starts == 0)).any():
        inside |= straddle
        local_starts = np.maximum(local_starts, 0)
    return (
        local_starts[inside],
        np.minimum(local_ends[inside], length),
        values[inside],
    )


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
        starts, ends, values = _clip_to_text(
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


def parse_echo_logprobs(
    payload: Mapping[str, Any], *, text: str, prefix: str = "", source: str = ""
) -> TokenSurprisal:
    """Token scores of ``text`` from an OpenAI ``/v1/completions`` response with ``echo`` and ``logprobs``.

    Reads ``choices[0].logprobs``: ``tokens`` (the token strings), ``token_logprobs`` (null for the first)
    and ``text_offset`` (character offsets into the echoed prompt; rebuilt from the token strings when
    absent). Entries past the end of ``prefix + text`` (the suffix and any generated tokens) are ignored.

    Raises:
        InvalidInputError: The payload has no echoed log-probabilities, or they do not cover ``text``.

    Example:
        >>> payload = {"choices": [{"logprobs": {"tokens": ["Hi", " there", "!"],
        ...     "token_logprobs": [None, -2.0, -0.5], "text_offset": [0, 2, 8]}}]}
        >>> s = parse_echo_logprobs(payload, text="Hi there!")
        >>> s.surprisal.tolist()[1:], s.starts.tolist()
        ([2.0, 0.5], [0, 2, 8])
    """
    try:
        logprobs = payload["choices"][0]["logprobs"]
        pieces = [str(t) for t in logprobs["tokens"]]
        values = [None if v is None else float(v) for v in logprobs["token_logprobs"]]
    except (KeyError, IndexError, TypeError, ValueError):
        raise InvalidInputError(
            "the completions response has no choices[0].logprobs.tokens and token_logprobs; fix: ask for "
            "echo=true and logprobs=1 from an endpoint that returns prompt log-probabilities (OpenAI, vLLM)"
        ) from None
    if len(pieces) != len(values):
        raise InvalidInputError(
            f"the completions response has {len(pieces)} tokens but {len(values)} token_logprobs; fix: check "
            "the endpoint's logprobs output"
        )
    offsets_raw = logprobs.get("text_offset")
    if offsets_raw is not None and len(offsets_raw) == len(pieces):
        starts = np.asarray([int(o) for o in offsets_raw], dtype=np.int64)
        # some servers count the offsets from the start of the whole completion including a BOS piece
        starts = starts - int(starts[0]) if len(starts) else starts
    else:
        lengths = np.fromiter((len(p) for p in pieces), dtype=np.int64, count=len(pieces))
        starts = np.cumsum(lengths) - lengths
    lengths = np.fromiter((len(p) for p in pieces), dtype=np.int64, count=len(pieces))
    ends = starts + lengths
    surprisal = np.asarray([math.nan if v is None else -v for v in values], dtype=np.float64)
    # servers round a certain token's log-probability to a tiny positive number
    surprisal = np.where((surprisal < 0.0) & (surprisal > -1e-4), 0.0, surprisal)
    local_starts, local_ends, local_values = _clip_to_text(starts, ends, surprisal, len(prefix), len(text))
    if len(local_starts) == 0 or int(local_ends.max()) < len(text.rstrip()):
        raise InvalidInputError(
            f"the echoed log-probabilities cover {len(pieces)} tokens and do not span the "
            f"{len(text)}-character prompt; fix: ask for echo=true (the endpoint must return the "
            "prompt's own tokens)"
        )
    return TokenSurprisal(text, local_starts, local_ends, local_values, source=source)


def score_openai(
    text: str,
    url: str,
    *,
    prefix: str = "",
    suffix: str = "",
    model: str | None = None,
    api_key: str | None = None,
    max_tokens: int = 1,
    timeout_s: float = 120.0,
) -> TokenSurprisal:
    """Surprisal of ``text`` from an OpenAI-compatible completions endpoint (``echo``, ``logprobs=1``).

    Args:
        text: The text to score.
        url: Base URL, ``.../v1`` URL or the completions endpoint.
        prefix: Sent before ``text`` (e.g. the chat template's opening).
        suffix: Sent after ``text``.
        model: The ``model`` field, when the endpoint wants one.
        api_key: Bearer token (never shown in messages).
        max_tokens: Tokens to generate after the echo: OpenAI accepts 0, but some servers read 0 as
            "up to the context window", so 1 is the portable choice; the generated token is ignored.
        timeout_s: Seconds to wait for the response.

    Raises:
        InvalidInputError: The text is empty, or the response carries no prompt log-probabilities.
        CloudUnavailableError: The endpoint could not be reached or answered with an error status.
    """
    if not text.strip():
        raise InvalidInputError("prompt is empty; fix: pass the prompt text to score")
    import httpx  # noqa: PLC0415  # reason: optional dependency, the `device` extra

    from pdcore.runtime.cloud import (  # noqa: PLC0415  # reason: pulls in httpx-sse
        CloudUnavailableError,
        completions_url,
    )

    endpoint = completions_url(url)
    body: dict[str, Any] = {
        "prompt": prefix + text + suffix,
        "echo": True,
        "logprobs": 1,
        "max_tokens": max_tokens,
        "temperature": 0,
    }
    if model is not None:
        body["model"] = model
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        response = httpx.post(endpoint, json=body, headers=headers, timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise CloudUnavailableError(
            f"cannot reach {endpoint}: {type(exc).__name__}; fix: check --cloud-url and that the server runs"
        ) from None
    if response.status_code >= 400:
        raise CloudUnavailableError(
            f"{endpoint} answered HTTP {response.status_code}; fix: check that it supports echo and logprobs"
        )
    try:
        payload = response.json()
    except ValueError:
        raise InvalidInputError(
            f"{endpoint} did not answer with JSON; fix: pass an OpenAI-compatible URL"
        ) from None
    return parse_echo_logprobs(payload, text=text, prefix=prefix, source=endpoint)


@dataclass(frozen=True)
class OpenAIScorer:
    """`score_openai` with its endpoint settings bound: the cloud scores the prompt it prefills.

    Attributes:
        url: Base URL, ``.../v1`` URL or the completions endpoint.
        model: The ``model`` field, when the endpoint wants one.
        api_key: Bearer token; not shown in the ``repr``.
        max_tokens: Tokens generated after the echo (ignored).
    """

    url: str
    model: str | None = None
    api_key: str | None = field(default=None, repr=False)
    max_tokens: int = 1

    def score(self, text: str, *, prefix: str = "", suffix: str = "") -> TokenSurprisal:
        """Surprisal of the tokens of ``text``, scored as ``prefix + text + suffix``."""
        return score_openai(
            text,
            self.url,
            prefix=prefix,
            suffix=suffix,
            model=self.model,
            api_key=self.api_key,
            max_tokens=self.max_tokens,
        )

"""Prompt surprisal from an OpenAI-compatible ``/v1/completions`` endpoint: the cloud scores the prompt it
prefills, asked for ``echo=true, logprobs=1``.

The OpenAI semantics of ``choices[0].logprobs.token_logprobs`` (null for the first token) are that entry
``i`` is the log-probability of prompt token ``i`` given the tokens before it. llama-cpp-python's own server
(0.3.x) returns something else under that name, the probability that each token *repeats itself* (checked
against its logits; abetlen/llama-cpp-python issue #1983), and llama.cpp's server returns no prompt
log-probabilities at all, so with those the in-process `pdcore.refine.scoring.LlamaScorer` is the source.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pdcore.exceptions import InvalidInputError
from pdcore.refine.surprisal import TokenSurprisal, clip_to_text

__all__ = ["OpenAIScorer", "parse_echo_logprobs", "score_openai"]


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
    local_starts, local_ends, local_values = clip_to_text(starts, ends, surprisal, len(prefix), len(text))
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

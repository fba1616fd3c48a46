"""Prompt refinement: keep the most informative sentences (or phrases) of a prompt within a token budget.

What is followed, and from where:

- **Selective Context** (Li et al., 2023, arXiv 2304.12102): a token's informativeness is its
  self-information ``-log p(token | context)`` under a language model; tokens are grouped into lexical
  units (sentences, phrases) and the units of least self-information are dropped. Here the numbers come
  from the cloud's own prefill (`pdcore.refine.scoring`), so scoring costs no extra model call.
- **LLMLingua** (Jiang et al., 2023, arXiv 2310.05736): a budget controller that splits the prompt into
  instruction, context and question, keeps the instruction and the question, and compresses the context
  at the coarse level by each segment's perplexity (the mean surprisal); and the question-aware ranking
  of LongLLMLingua (Jiang et al., 2023, arXiv 2310.06839), which ranks context segments by how they
  relate to the question.

What is pdcore's own:

- A unit's score is the percentile rank of its mean surprisal among the droppable units (0 to 1) plus
  ``question_weight`` times its *lexical* relevance to the question (the protected span nearest the
  end): the IDF-weighted share of the question's content words (stop words dropped, a light suffix
  strip) that the unit contains, IDF over the droppable units. LongLLMLingua measures relevance with
  extra model passes (the question's perplexity given each segment); the lexical form needs none, so
  refinement costs the cloud nothing beyond the prefill it runs anyway. ``question_weight=0`` is the
  question-unaware Selective-Context ranking. It fails exactly where it matters when the prompt states
  the question before the context: the sentences that answer it become predictable, so they carry the
  *least* surprisal and go first (measured in the bundled evaluation's ablation).
- Selection is the greedy knapsack by score under a token budget ``floor(r * L)`` over the scored
  tokens: units are taken best first, a unit that no longer fits is skipped and smaller ones are still
  tried. Protected units are always kept; when they alone exceed the budget the result keeps only them
  and says the ratio was not met.
- Line breaks are units of their own ("glue"): between two kept units the longest run of the dropped
  stretch is kept (a paragraph break stays a paragraph break), and the leading spaces of a unit that
  follows a line break or starts the result are trimmed. Kept spans are character offsets into the
  original, so the refined text is exactly ``"".join(text[s:e] for s, e in kept_spans)``.

Determinism: ties in score break by position (earlier first); no randomness anywhere.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from pdcore.exceptions import InvalidInputError
from pdcore.quality_curves import check_ratio
from pdcore.refine.relevance import relevance as lexical_relevance
from pdcore.refine.scoring import CHATML, TokenSurprisal
from pdcore.refine.units import (
    UNITS,
    Span,
    check_prompt,
    check_spans,
    default_protected,
    find_spans,
    segment,
)

__all__ = [
    "DEFAULT_QUESTION_WEIGHT",
    "UNITS",
    "Refinement",
    "Scorer",
    "UnitScore",
    "check_prompt",
    "check_ratio",
    "default_protected",
    "find_spans",
    "refine",
    "segment",
    "select",
]

DEFAULT_QUESTION_WEIGHT = 2.0
"""Weight of the lexical relevance (0..1) against the surprisal rank (0..1): a unit holding the question's
words outranks every unit whose relevance is lower by more than a half, whatever their surprisal. On
items of the bundled evaluation with seed 1 (the shipped curve uses seed 0) every weight from 1 up kept
all 18 key facts down to ``r = 0.25`` (0.5 kept 16 at ``r = 0.5``; surprisal alone, 6); 2 leaves a
margin."""


class Scorer(Protocol):
    """A source of prompt surprisal: `pdcore.refine.LlamaScorer` or `pdcore.refine.OpenAIScorer`."""

    def score(self, text: str, *, prefix: str = "", suffix: str = "") -> TokenSurprisal:
        """Surprisal of the tokens of ``text``, scored as ``prefix + text + suffix``."""
        ...


@dataclass(frozen=True, slots=True)
class UnitScore:
    """One unit of the prompt and its score.

    Attributes:
        start: Character offset in the original text where the unit starts (its leading spaces included).
        end: Character offset where it ends.
        kind: ``"text"`` (a sentence or phrase) or ``"glue"`` (a run of whitespace with a line break).
        tokens: Scored tokens that start inside the unit.
        surprisal: Mean surprisal of those tokens, nats (NaN when none is known).
        relevance: Lexical relevance to the question, 0..1 (0 for protected and glue units).
        score: The ranking score (NaN for protected and glue units, which are not ranked).
        protected: Always kept (part of the instruction or the question).
        kept: In the refined prompt.
    """

    start: int
    end: int
    kind: str
    tokens: int
    surprisal: float
    relevance: float
    score: float
    protected: bool
    kept: bool


@dataclass(frozen=True, slots=True)
class Refinement:
    """A refined prompt and how it was made.

    Attributes:
        original: The prompt as given.
        text: The refined prompt, ``"".join(original[s:e] for s, e in kept_spans)``.
        ratio: The target ratio ``r``.
        kept_spans: Kept ``(start, end)`` character spans of ``original``, in order, not touching.
        kept_tokens: Scored tokens kept (``<= floor(r * total_tokens)`` when ``ratio_met``).
        total_tokens: Scored tokens of the whole prompt (``L``).
        units: Every unit with its score, in text order.
        ratio_met: False when the protected units alone exceed the budget (then only they are kept).
        unit: The unit kind used.
        question_weight: The relevance weight used.
        source: Where the token scores came from.
    """

    original: str
    text: str
    ratio: float
    kept_spans: tuple[Span, ...]
    kept_tokens: int
    total_tokens: int
    units: tuple[UnitScore, ...]
    ratio_met: bool
    unit: str
    question_weight: float
    source: str

    @property
    def kept_ratio(self) -> float:
        """``kept_tokens / total_tokens``."""
        return self.kept_tokens / self.total_tokens if self.total_tokens else 1.0

    @property
    def budget(self) -> int:
        """The token budget ``floor(ratio * total_tokens)``."""
        return _budget(self.ratio, self.total_tokens)

    @property
    def dropped_spans(self) -> tuple[Span, ...]:
        """The complement of `kept_spans` in the original text."""
        out: list[Span] = []
        position = 0
        for start, end in self.kept_spans:
            if start > position:
                out.append((position, start))
            position = end
        if position < len(self.original):
            out.append((position, len(self.original)))
        return tuple(out)


def _budget(ratio: float, total: int) -> int:
    # the epsilon keeps e.g. 0.57 * 100 = 56.99999999999999 from losing a token to rounding
    return min(total, math.floor(ratio * total + 1e-9))


def _percentile_rank(values: np.ndarray) -> np.ndarray:
    """Each value's rank among the finite ones, 0 (lowest) to 1 (highest), ties averaged; NaN: 0.5."""
    out = np.full(len(values), 0.5)
    known = np.isfinite(values)
    finite = values[known]
    if finite.size > 1:
        ranks = np.empty(finite.size)
        ranks[finite.argsort(kind="stable")] = np.arange(finite.size)
        _, inverse = np.unique(finite, return_inverse=True)
        ranks = (np.bincount(inverse, weights=ranks) / np.bincount(inverse))[inverse]
        out[known] = ranks / (finite.size - 1)
    return out


def select(
    scores: TokenSurprisal,
    ratio: float,
    *,
    protect: Sequence[Span] | None = None,
    unit: str = "sentence",
    question_weight: float = DEFAULT_QUESTION_WEIGHT,
) -> Refinement:
    """Keeps the best units of ``scores.text`` within ``floor(ratio * L)`` scored tokens.

    The pure core of refinement: no model, deterministic.

    Args:
        scores: The prompt's tokens with their surprisal.
        ratio: The fraction of the prompt's scored tokens to keep, in (0, 1].
        protect: Character spans always kept; a unit that overlaps one is kept whole. Default: the
            instruction and the question (`default_protected`).
        unit: ``"sentence"`` or ``"phrase"``.
        question_weight: Weight of the lexical relevance to the question, the protected span nearest
            the end (0: surprisal alone).

    Raises:
        InvalidInputError: A ratio outside (0, 1], an empty prompt, a bad span, unit or weight.
    """
    text = check_prompt(scores.text)
    ratio = check_ratio(ratio)
    if not (math.isfinite(question_weight) and question_weight >= 0.0):
        raise InvalidInputError(f"question_weight = {question_weight!r}; fix: pass a weight >= 0")
    spans = check_spans(default_protected(text) if protect is None else protect, len(text))
    pieces = segment(text, unit)
    n = len(pieces)
    tokens, mean = _unit_surprisal(scores, pieces)
    protected = np.array(
        [kind == "text" and any(s < e_ and s_ < e for s_, e_ in spans) for s, e, kind in pieces]
    )
    candidates = np.array([p[2] == "text" for p in pieces]) & ~protected
    relevance, score = _unit_scores(text, pieces, spans, candidates, mean, question_weight)
    total = int(tokens.sum())
    kept_spans: tuple[Span, ...]
    if ratio == 1.0:
        kept_all = np.ones(n, dtype=bool)
        kept_tokens, ratio_met, kept_spans = total, True, ((0, len(text)),)
    else:
        kept, ratio_met = _fill(_budget(ratio, total), protected, candidates, score, tokens, pieces, text)
        kept_tokens, glue = _count(kept, tokens, pieces, text)
        kept_all = kept | glue
        kept_spans = _spans(kept_all, pieces, text)
    units = tuple(
        UnitScore(
            start=s,
            end=e,
            kind=kind,
            tokens=int(tokens[i]),
            surprisal=float(mean[i]),
            relevance=float(relevance[i]),
            score=float(score[i]),
            protected=bool(protected[i]),
            kept=bool(kept_all[i]),
        )
        for i, (s, e, kind) in enumerate(pieces)
    )
    return Refinement(
        original=text,
        text="".join(text[s:e] for s, e in kept_spans),
        ratio=ratio,
        kept_spans=kept_spans,
        kept_tokens=kept_tokens,
        total_tokens=total,
        units=units,
        ratio_met=ratio_met,
        unit=unit,
        question_weight=float(question_weight),
        source=scores.source,
    )


def _unit_scores(
    text: str,
    pieces: list[tuple[int, int, str]],
    spans: Sequence[Span],
    candidates: np.ndarray,
    mean: np.ndarray,
    question_weight: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Each candidate's lexical relevance to the question (the protected span nearest the end) and its
    score: the percentile rank of its mean surprisal plus ``question_weight`` times that relevance
    (module docstring); 0 and NaN for the other units."""
    n = len(pieces)
    query = text[slice(*max(spans, key=lambda span: (span[1], span[0])))] if spans else ""
    relevance = np.zeros(n)
    relevance[candidates] = lexical_relevance(
        [text[s:e] for s, e, _ in (pieces[i] for i in np.flatnonzero(candidates))], query
    )
    score = np.full(n, math.nan)
    score[candidates] = _percentile_rank(mean[candidates]) + question_weight * relevance[candidates]
    return relevance, score


def _unit_surprisal(
    scores: TokenSurprisal, pieces: Sequence[tuple[int, int, str]]
) -> tuple[np.ndarray, np.ndarray]:
    """Each unit's scored tokens and their mean surprisal (NaN where none is known)."""
    n = len(pieces)
    starts = np.array([p[0] for p in pieces], dtype=np.int64)
    owner = np.searchsorted(starts, scores.starts, side="right") - 1
    tokens = np.bincount(owner, minlength=n).astype(np.int64)
    sums = np.bincount(owner, weights=np.nan_to_num(scores.surprisal, nan=0.0), minlength=n)
    known = np.bincount(owner, weights=np.isfinite(scores.surprisal).astype(np.float64), minlength=n)
    mean = np.divide(sums, known, out=np.full(n, math.nan), where=known > 0)
    return tokens, mean


def _fill(
    budget: int,
    protected: np.ndarray,
    candidates: np.ndarray,
    score: np.ndarray,
    tokens: np.ndarray,
    pieces: Sequence[tuple[int, int, str]],
    text: str,
) -> tuple[np.ndarray, bool]:
    """The greedy knapsack (module docstring): the protected units, then the candidates best first while
    they fit ``budget``; and whether the protected units alone fit (else only they are kept)."""
    kept = protected.copy()
    ratio_met = _count(kept, tokens, pieces, text)[0] <= budget
    if ratio_met:
        for i in sorted(np.flatnonzero(candidates), key=lambda i: (-score[i], i)):
            kept[i] = True
            if _count(kept, tokens, pieces, text)[0] > budget:
                kept[i] = False
    return kept, ratio_met


def _count(
    kept: np.ndarray, tokens: np.ndarray, pieces: Sequence[tuple[int, int, str]], text: str
) -> tuple[int, np.ndarray]:
    """Kept tokens with the glue that ``kept`` implies, and that glue as a mask."""
    glue = np.zeros(len(pieces), dtype=bool)
    previous = -1
    best = -1
    for i, (s, e, kind) in enumerate(pieces):
        if kind == "glue":
            if previous >= 0 and (best < 0 or text.count("\n", s, e) > text.count("\n", *pieces[best][:2])):
                best = i
        elif kept[i]:
            if best >= 0:
                glue[best] = True
            previous, best = i, -1
    return int(tokens[kept | glue].sum()), glue


def _spans(kept: np.ndarray, pieces: Sequence[tuple[int, int, str]], text: str) -> tuple[Span, ...]:
    out: list[Span] = []
    after_break = True
    for i, (s, e, kind) in enumerate(pieces):
        if not kept[i]:
            continue
        start = s
        if kind == "text" and after_break:
            start = s + len(text[s:e]) - len(text[s:e].lstrip(" \t"))
        after_break = kind == "glue"
        if out and out[-1][1] == start:
            out[-1] = (out[-1][0], e)
        elif e > start:
            out.append((start, e))
    return tuple(out)


def refine(
    prompt: str,
    ratio: float,
    *,
    scorer: Scorer,
    template: tuple[str, str] = CHATML,
    protect: Sequence[Span] | None = None,
    unit: str = "sentence",
    question_weight: float = DEFAULT_QUESTION_WEIGHT,
) -> Refinement:
    """Scores ``prompt`` as the cloud prefills it and keeps the best units within ``ratio`` (`select`).

    Args:
        prompt: The user's prompt (the text that is refined).
        ratio: The fraction of its tokens to keep, in (0, 1].
        scorer: Where the surprisal comes from.
        template: The ``(prefix, suffix)`` around the prompt in the sequence the cloud prefills.
        protect: Character spans always kept (default: `default_protected`).
        unit: ``"sentence"`` or ``"phrase"``.
        question_weight: Weight of the lexical relevance to the question.

    Raises:
        InvalidInputError: A ratio outside (0, 1], an empty prompt, or a bad span, unit or weight.
    """
    check_prompt(prompt)
    check_ratio(ratio)
    if unit not in UNITS:
        raise InvalidInputError(f"unit = {unit!r}; fix: pass one of {', '.join(UNITS)}")
    scores = scorer.score(prompt, prefix=template[0], suffix=template[1])
    return select(scores, ratio, protect=protect, unit=unit, question_weight=question_weight)

"""The quality and device-prefill cost of refinement, on an evaluation pdcore generates from a seed.

Items: long-context retrieval questions built from templates (`pdcore.refine.items`). Scoring: exact
match and token F1 of the answer's first span, as in the SQuAD evaluation script
(`pdcore.refine.answers`). The result is a `QualityCurve` (`pdcore.quality_curves`), which ships as a
data file.

Run (`evaluate`): the cloud stand-in (`LlamaScorer`, llama.cpp with all logits) scores each prompt once;
for each ratio the refined prompt goes to the device (`pdcore.runtime.device.LlamaEngine`, the live
runtime's engine), which prefills it (timed) and answers greedily. The quality drop at ``r`` is the mean
F1 at ``r = 1`` minus the mean F1 at ``r``, with a paired bootstrap 95% interval over items. The prefill
time at ``r`` is the median of ``timing_repeats`` runs of the longest item's refined prompt, the ratios
interleaved so that a change of machine load hits all of them alike.
"""

from __future__ import annotations

import importlib.metadata
import math
import os
import platform
import re
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np

from pdcore.exceptions import InvalidInputError
from pdcore.quality_curves import ItemResult, QualityCurve, QualityPoint, check_ratio
from pdcore.refine.answers import exact_match, normalize_answer, token_f1
from pdcore.refine.items import CHARS_PER_TOKEN, FAMILIES, INSTRUCTION, EvalItem, make_items
from pdcore.refine.refiner import DEFAULT_QUESTION_WEIGHT, select
from pdcore.refine.scoring import CHATML

if TYPE_CHECKING:  # the runtime needs the `device` extra at import time
    from pdcore.refine.scoring import LlamaScorer, TokenSurprisal
    from pdcore.runtime.device import DeviceEngine, LlamaEngine

__all__ = [
    "CHARS_PER_TOKEN",
    "DEFAULT_RATIOS",
    "FAMILIES",
    "INSTRUCTION",
    "EvalItem",
    "ItemResult",
    "QualityCurve",
    "QualityPoint",
    "evaluate",
    "exact_match",
    "make_items",
    "normalize_answer",
    "token_f1",
]

DEFAULT_RATIOS = (1.0, 0.75, 0.5, 0.35)

Variant: TypeAlias = tuple[float, float]
"""A refinement measured: (ratio, question weight)."""


def _bootstrap_drop(
    base: np.ndarray, refined: np.ndarray, seed: int, resamples: int = 2000
) -> tuple[float, float]:
    """Paired bootstrap 95% interval of ``mean(base) - mean(refined)``."""
    diff = base - refined
    if diff.size == 0:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, diff.size, size=(resamples, diff.size))].mean(axis=1)
    return (float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5)))


def _version(distribution: str) -> str:
    """The installed version of ``distribution``, or ``"unknown"``."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _answer_done(text: str) -> bool:
    """Whether a generated answer is complete: a line break or a sentence end after some text."""
    return "\n" in text.strip() or re.search(r"\S[.!?](\s|$)", text) is not None


def _device_answer(engine: DeviceEngine, prompt: str, max_new_tokens: int) -> tuple[str, int, float]:
    """The device's greedy answer to ``prompt``: (text, prompt tokens, prefill seconds)."""
    tokens = engine.tokenize(prompt, prompt=True)
    engine.reset()
    started = time.perf_counter()
    engine.eval(tokens)
    prefill_s = time.perf_counter() - started
    raw = b""
    for _ in range(max_new_tokens):
        token = engine.greedy()
        if engine.is_eog(token):
            break
        raw += engine.token_bytes(token)
        if _answer_done(raw.decode("utf-8", errors="ignore")):
            break
        engine.eval([token])
    return raw.decode("utf-8", errors="replace"), len(tokens), prefill_s


def _prefill_once(engine: DeviceEngine, prompt: str) -> tuple[int, float]:
    """One timed prefill of ``prompt``: (prompt tokens, seconds)."""
    tokens = engine.tokenize(prompt, prompt=True)
    engine.reset()
    started = time.perf_counter()
    engine.eval(tokens)
    return len(tokens), time.perf_counter() - started


def evaluate(
    items: Sequence[EvalItem],
    *,
    model_path: str | os.PathLike[str],
    ratios: Sequence[float] = DEFAULT_RATIOS,
    question_weight: float = DEFAULT_QUESTION_WEIGHT,
    ablation_weights: Sequence[float] = (0.0,),
    ablation_ratios: Sequence[float] = (0.5,),
    n_threads: int = 2,
    timing_repeats: int = 3,
    max_new_tokens: int = 8,
    seed: int = 0,
    name: str = "smollm2-135m",
    on_step: Callable[[str], None] | None = None,
) -> QualityCurve:
    """Answers every item at every ratio and builds the curves (module docstring).

    The answer at ``r = 1`` is the cloud stand-in's greedy continuation of the prompt it has just scored
    (the same model and prompt as the device's unrefined prefill, without a second prefill); answers at
    ``r < 1`` come from the device.

    Args:
        items: The evaluation items (`make_items`).
        model_path: The GGUF model: the cloud stand-in scores with it and the device answers with it.
        ratios: Refinement ratios; 1.0 is added when missing (the baseline).
        question_weight: The relevance weight of the main curve.
        ablation_weights: Further weights (0: surprisal alone), measured at ``ablation_ratios``.
        ablation_ratios: The ratios of the ablation.
        n_threads: llama.cpp threads of both models.
        timing_repeats: Prefill runs per ratio of the timing prompt.
        max_new_tokens: The longest answer, tokens.
        seed: Recorded in the file and seeds the bootstrap (the items' seed, normally).
        name: The curve's name.
        on_step: Called with a short label after each item and each timing round.

    Raises:
        InvalidInputError: No items, a bad ratio, or a missing model or llama-cpp-python.
    """
    from pdcore.refine.scoring import LlamaScorer  # noqa: PLC0415  # reason: needs llama-cpp-python
    from pdcore.runtime.device import LlamaEngine  # noqa: PLC0415  # reason: needs llama-cpp-python

    if not items:
        raise InvalidInputError("no evaluation items; fix: pass at least one item (make_items)")
    if timing_repeats < 1:
        raise InvalidInputError(f"timing_repeats = {timing_repeats!r}; fix: pass at least 1")
    grid = sorted({check_ratio(r) for r in ratios} | {1.0}, reverse=True)
    main_weight = float(question_weight)
    variants = _variants(grid, main_weight, ablation_weights, ablation_ratios)
    load_before = _load_average()
    started = time.perf_counter()
    scorer = LlamaScorer(model_path, n_threads=n_threads)
    engine = LlamaEngine(model_path, n_threads=n_threads)
    results, timing_item, timing_texts = _answer_all(items, variants, scorer, engine, max_new_tokens, on_step)
    timing = _time_prefills(engine, timing_item, timing_texts, timing_repeats, on_step)
    wall_s = time.perf_counter() - started
    measured = _Measured(items, results, timing, main_weight, seed)
    evaluation: dict[str, Any] = {
        **measured.items_record(),
        "ratios": grid,
        "question_weight": main_weight,
        "unit": "sentence",
        "max_new_tokens": max_new_tokens,
        "n_threads": n_threads,
        "timing_item": timing_item.id,
        "timing_repeats": timing_repeats,
        "wall_s": round(wall_s, 1),
        "load_average_1min": [load_before, _load_average()],
        **_machine(model_path),
        "how": _HOW,
    }
    return QualityCurve(
        name=name,
        model=engine.describe(),
        points=tuple(measured.point(r, main_weight) for r in grid),
        ablation=tuple(measured.point(r, w) for r, w in variants if w != main_weight),
        evaluation=evaluation,
        results=tuple(results),
    )


def _variants(
    grid: Sequence[float], main_weight: float, weights: Sequence[float], ratios: Sequence[float]
) -> list[Variant]:
    """The main curve's variants (every ratio of ``grid``), then the ablation's: each other weight at
    each refined ratio of ``ratios``, descending."""
    return [(r, main_weight) for r in grid] + [
        (check_ratio(r), float(w))
        for w in weights
        if float(w) != main_weight
        for r in sorted(set(ratios), reverse=True)
        if r < 1.0
    ]


def _answer_all(
    items: Sequence[EvalItem],
    variants: Sequence[Variant],
    scorer: LlamaScorer,
    engine: LlamaEngine,
    max_new_tokens: int,
    on_step: Callable[[str], None] | None,
) -> tuple[list[ItemResult], EvalItem, dict[Variant, str]]:
    """Every item answered at every variant, and the longest item (the timing item) with its refined
    texts; the cloud stand-in scores each item once."""
    results: list[ItemResult] = []
    longest: tuple[int, EvalItem, dict[Variant, str]] | None = None
    for item in items:
        scores = scorer.score(item.prompt, prefix=CHATML[0], suffix=CHATML[1] + item.answer_prefix)
        refined: dict[Variant, str] = {}
        for ratio, weight in variants:
            result, refined[ratio, weight] = _answer(
                item, scores, ratio, weight, scorer=scorer, engine=engine, max_new_tokens=max_new_tokens
            )
            results.append(result)
        if longest is None or len(scores) > longest[0]:
            longest = (len(scores), item, refined)
        if on_step is not None:
            on_step(item.id)
    assert longest is not None  # items is not empty
    return results, longest[1], longest[2]


def _machine(model_path: str | os.PathLike[str]) -> dict[str, str]:
    """What the evaluation ran on: the machine, the model file and the versions."""
    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}",
        "model_file": Path(model_path).name,
        "llama_cpp_python": _version("llama_cpp_python"),
        "python": platform.python_version(),
    }


def _load_average() -> float:
    """The 1-minute load average (NaN where the system has none)."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan


def _answer(
    item: EvalItem,
    scores: TokenSurprisal,
    ratio: float,
    weight: float,
    *,
    scorer: LlamaScorer,
    engine: LlamaEngine,
    max_new_tokens: int,
) -> tuple[ItemResult, str]:
    """One item answered at one ratio and relevance weight, and the refined text it was answered from.

    At ``r = 1`` the cloud stand-in answers (its greedy continuation of the prompt it just scored);
    below, the device answers from the refined prompt.
    """
    from pdcore.runtime.device import chatml  # noqa: PLC0415  # reason: needs llama-cpp-python

    refinement = select(scores, ratio, protect=item.protect, question_weight=weight)
    prompt = chatml(refinement.text) + item.answer_prefix
    if ratio == 1.0:
        prediction = scorer.generate(max_new_tokens, stop=_answer_done)
        device_tokens, prefill_s = len(engine.tokenize(prompt, prompt=True)), math.nan
    else:
        prediction, device_tokens, prefill_s = _device_answer(engine, prompt, max_new_tokens)
    result = ItemResult(
        item=item.id,
        family=item.family,
        ratio=ratio,
        question_weight=weight,
        scored_tokens=refinement.total_tokens,
        kept_tokens=refinement.kept_tokens,
        device_tokens=device_tokens,
        prefill_s=prefill_s,
        fact_kept=item.fact in refinement.text,
        prediction=prediction,
        exact_match=exact_match(prediction, item.answer),
        f1=token_f1(prediction, item.answer),
    )
    return result, refinement.text


@dataclass(frozen=True)
class _Timing:
    """Device prefill times of the timing item's refined prompts, per (ratio, weight)."""

    runs_s: dict[Variant, list[float]]
    tokens: dict[Variant, int]


def _time_prefills(
    engine: DeviceEngine,
    item: EvalItem,
    texts: Mapping[Variant, str],
    repeats: int,
    on_step: Callable[[str], None] | None,
) -> _Timing:
    """Prefills each refined text of ``item`` ``repeats`` times, every variant once per round."""
    from pdcore.runtime.device import chatml  # noqa: PLC0415  # reason: needs llama-cpp-python

    timing = _Timing(runs_s={key: [] for key in texts}, tokens={})
    for repeat in range(repeats):
        for key, text in texts.items():
            n_tokens, seconds = _prefill_once(engine, chatml(text) + item.answer_prefix)
            timing.tokens[key] = n_tokens
            timing.runs_s[key].append(seconds)
        if on_step is not None:
            on_step(f"timing {repeat + 1}/{repeats}")
    return timing


class _Measured:
    """Every item's results and the prefill timings, reduced to one `QualityPoint` per variant."""

    def __init__(
        self,
        items: Sequence[EvalItem],
        results: Sequence[ItemResult],
        timing: _Timing,
        main_weight: float,
        seed: int,
    ) -> None:
        self.items = items
        self.timing = timing
        self.main_weight = main_weight
        self.seed = seed
        self._by_key = {(r.item, r.ratio, r.question_weight): r for r in results}
        self._base_f1 = np.array([self.row(i, 1.0, main_weight).f1 for i in items])
        self._base_time = statistics.median(timing.runs_s[1.0, main_weight])

    def items_record(self) -> dict[str, Any]:
        """The evaluation's seed, its items and their scored lengths, for the data file."""
        scored = [self.row(i, 1.0, self.main_weight).scored_tokens for i in self.items]
        return {
            "seed": self.seed,
            "items": len(self.items),
            "families": sorted({i.family for i in self.items}),
            "scored_tokens_min": min(scored),
            "scored_tokens_mean": round(float(np.mean(scored)), 1),
            "scored_tokens_max": max(scored),
        }

    def row(self, item: EvalItem, ratio: float, weight: float) -> ItemResult:
        """The result of ``item`` at one variant."""
        return self._by_key[item.id, ratio, weight]

    def point(self, ratio: float, weight: float) -> QualityPoint:
        """Quality against the unrefined answers (paired bootstrap interval), and prefill time."""
        rows = [self.row(i, ratio, weight) for i in self.items]
        f1 = np.array([r.f1 for r in rows])
        seconds = statistics.median(self.timing.runs_s[ratio, weight])
        base_tokens = [self._by_key[r.item, 1.0, self.main_weight].device_tokens for r in rows]
        return QualityPoint(
            ratio=ratio,
            question_weight=weight,
            exact_match=float(np.mean([r.exact_match for r in rows])),
            f1=float(f1.mean()),
            drop=float(self._base_f1.mean() - f1.mean()),
            drop_ci95=_bootstrap_drop(self._base_f1, f1, self.seed),
            fact_kept=float(np.mean([r.fact_kept for r in rows])),
            kept_ratio=float(np.mean([r.kept_tokens / r.scored_tokens for r in rows])),
            device_token_ratio=float(
                np.mean([r.device_tokens / b for r, b in zip(rows, base_tokens, strict=True)])
            ),
            prefill_s=seconds,
            prefill_tokens=self.timing.tokens[ratio, weight],
            prefill_speedup=self._base_time / seconds if seconds > 0 else math.nan,
            prefill_runs_s=tuple(self.timing.runs_s[ratio, weight]),
            f1_by_family={
                family: float(np.mean([r.f1 for r in rows if r.family == family]))
                for family in sorted({r.family for r in rows})
            },
        )


_HOW = (
    "Items: pdcore.refine.evaluation.make_items(items, seed=seed), templated long-context retrieval "
    "(passkey, town, count). The cloud stand-in (llama.cpp, logits_all) prefills each "
    "ChatML prompt once, which gives the surprisal and, continued greedily, the answer at r = 1. "
    "pdcore.refine.select keeps the instruction and the question and the best sentences within "
    "floor(r * L) scored tokens; the device (pdcore.runtime.device.LlamaEngine, the same model) prefills "
    "chatml(refined) + answer prefix and answers greedily. EM and F1 as in the SQuAD script, on the answer "
    "up to its first sentence end. drop = mean F1 at r = 1 minus mean F1 at r, with a paired bootstrap 95% "
    "interval over items (2000 resamples). prefill_s: median of timing_repeats prefill runs of the longest "
    "item refined at r, the ratios interleaved; prefill_speedup = prefill_s(1) / prefill_s(r)."
)

"""Prompt refinement from the cloud's prefill data, and its measured quality cost.

P/D-Device's second lever (arXiv 2508.09035): while the cloud prefills, the prompt is refined from data
the prefill already produces, so the device prefills fewer tokens and takes over sooner.

- `pdcore.refine.scoring`: per-token surprisal of the prompt, from llama.cpp with all logits
  (`LlamaScorer`) or from an OpenAI-compatible endpoint with ``echo`` and ``logprobs`` (`OpenAIScorer`).
- `pdcore.refine.refiner`: the pure selection (`select`): the most informative sentences within
  ``floor(r * L)`` tokens, the instruction and the question always kept; `refine` scores and selects.
- `pdcore.refine.evaluation`: a seeded, generated long-context evaluation (`pdcore.refine.items`, scored as
  in `pdcore.refine.answers`) that measures quality and device prefill time over ``r``; its result ships
  as ``data/quality-<name>.toml``.

`load_quality_curve` (`pdcore.quality_curves`, re-exported here) reads such a file as the optimizer's
``quality`` mapping::

    Optimizer(..., refine_ratios=(1.0, 0.75, 0.5, 0.35), quality=load_quality_curve("smollm2-135m"))
"""

from __future__ import annotations

from pdcore.quality_curves import (
    QualityCurve,
    QualityPoint,
    list_quality_curves,
    load_quality_curve,
    load_quality_report,
    parse_quality_text,
    read_quality_file,
)
from pdcore.refine.evaluation import evaluate, make_items
from pdcore.refine.refiner import (
    DEFAULT_QUESTION_WEIGHT,
    Refinement,
    Scorer,
    UnitScore,
    default_protected,
    find_spans,
    refine,
    segment,
    select,
)
from pdcore.refine.scoring import (
    CHATML,
    LlamaScorer,
    OpenAIScorer,
    TokenSurprisal,
    parse_echo_logprobs,
    score_openai,
)

__all__ = [
    "CHATML",
    "DEFAULT_QUESTION_WEIGHT",
    "LlamaScorer",
    "OpenAIScorer",
    "QualityCurve",
    "QualityPoint",
    "Refinement",
    "Scorer",
    "TokenSurprisal",
    "UnitScore",
    "default_protected",
    "evaluate",
    "find_spans",
    "list_quality_curves",
    "load_quality_curve",
    "load_quality_report",
    "make_items",
    "parse_echo_logprobs",
    "parse_quality_text",
    "read_quality_file",
    "refine",
    "score_openai",
    "segment",
    "select",
]

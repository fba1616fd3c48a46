"""Planning helpers: the settings a policy derives from the device, cloud and network models."""

from __future__ import annotations

from pdcore.optimize.catchup import (
    DEFAULT_MAX_K,
    CatchUp,
    catchup_k,
    refined_prompt_tokens,
    solve_catchup,
)
from pdcore.optimize.optimizer import Choice, Optimizer
from pdcore.optimize.quality import (
    DEFAULT_QUALITY_BOUND,
    DEFAULT_QUALITY_BUDGET,
    DEFAULT_QUALITY_CURVE,
    QUALITY_BOUNDS,
    MeasuredQuality,
    QualityBound,
    QualityDrop,
)

__all__ = [
    "DEFAULT_MAX_K",
    "DEFAULT_QUALITY_BOUND",
    "DEFAULT_QUALITY_BUDGET",
    "DEFAULT_QUALITY_CURVE",
    "QUALITY_BOUNDS",
    "CatchUp",
    "Choice",
    "MeasuredQuality",
    "Optimizer",
    "QualityBound",
    "QualityDrop",
    "catchup_k",
    "refined_prompt_tokens",
    "solve_catchup",
]

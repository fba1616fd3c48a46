"""Request workloads: the `Workload` record, trace loaders and the seeded synthetic default."""

from __future__ import annotations

from pdcore.traces.loaders import (
    AZURE_COLUMNS,
    MOONCAKE_KEYS,
    load_azure,
    load_bailian,
    load_mooncake,
    load_trace,
)
from pdcore.traces.synthetic import (
    LONG_ANSWER_TOKENS,
    MULTI_TURN,
    OUTPUT_LOGNORMAL,
    PROMPT_LOGNORMAL,
    TARGET_STATS,
    synthetic_default,
    synthetic_long_answer,
    synthetic_multi_turn,
)
from pdcore.traces.workload import OVERSIZE, TURN_BUCKETS, Workload, turn_buckets

__all__ = [
    "AZURE_COLUMNS",
    "LONG_ANSWER_TOKENS",
    "MOONCAKE_KEYS",
    "MULTI_TURN",
    "OUTPUT_LOGNORMAL",
    "OVERSIZE",
    "PROMPT_LOGNORMAL",
    "TARGET_STATS",
    "TURN_BUCKETS",
    "Workload",
    "load_azure",
    "load_bailian",
    "load_mooncake",
    "load_trace",
    "synthetic_default",
    "synthetic_long_answer",
    "synthetic_multi_turn",
    "turn_buckets",
]

"""Request workloads: the `Workload` record, trace loaders, the seeded synthetic default, and the public
traces by name (`pdcore.traces.registry`, cached by `pdcore.traces.cache`, downloaded by
`pdcore.traces.fetch`)."""

from __future__ import annotations

from pdcore.traces.cache import add_trace, cache_dir, trace_path
from pdcore.traces.loaders import (
    AZURE_COLUMNS,
    MOONCAKE_KEYS,
    load_azure,
    load_bailian,
    load_mooncake,
    load_trace,
)
from pdcore.traces.registry import TRACES, PublicTrace, public_trace
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
    "TRACES",
    "TURN_BUCKETS",
    "PublicTrace",
    "Workload",
    "add_trace",
    "cache_dir",
    "load_azure",
    "load_bailian",
    "load_mooncake",
    "load_trace",
    "public_trace",
    "synthetic_default",
    "synthetic_long_answer",
    "synthetic_multi_turn",
    "trace_path",
    "turn_buckets",
]

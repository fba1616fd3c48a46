"""The latency objectives and their defaults, and the rule for "a gap within the objective".

This is a ground-floor module: the simulator's metrics, the policies, the optimizer and the live runtime
all take their defaults and the within-objective test from here, and it imports nothing of theirs.

A time is within an objective when it exceeds it by at most `GAP_SLACK_S`, 1 ns: the simulator's time grain,
so a gap the simulator rounds onto the objective still meets it. The rule itself is the cost model's,
`within_objective` (`pdcore._core.within_objective`, the Rust crate's ``cost::gap``), which the simulator
applies too; `meets` reads one measured figure by it, where a missing figure (NaN) does not meet its
objective. ``within`` and ``SLACK_S`` are the deprecated names of `within_objective` and `GAP_SLACK_S`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pdcore import _core
from pdcore._core import GAP_SLACK_S, within_objective
from pdcore.deprecation import deprecated_attributes
from pdcore.exceptions import InvalidInputError

__all__ = [
    "DEFAULT_MAX_TPOT_S",
    "DEFAULT_QOE_TOKENS_PER_S",
    "DEFAULT_TTFT_SLO_S",
    "GAP_SLACK_S",
    "SLO",
    "meets",
    "slo_met",
    "within_objective",
]

DEFAULT_MAX_TPOT_S: float = _core.DEFAULT_MAX_TPOT_S
"""Default largest display gap: 50 ms, the paper's "tens of milliseconds" maximum TPOT (20 tokens/s).

The display gap policies and the live session aim for, and the default objective of a run
(`SLO.max_tpot_s`).
"""

DEFAULT_TTFT_SLO_S = 1.0
"""Default TTFT objective: one second.

Andes (arXiv 2404.16283) takes about 1 s as the expected TTFT of a chat service in its QoE, and 1 s is
the classic limit for a user's flow of thought to stay uninterrupted (Nielsen, Usability Engineering,
1993). It sits between the cloud's light-load TTFT (tens to hundreds of ms) and a phone's prefill of a
1,000-token prompt (about 0.7 s at 1,450 tokens/s), so it separates the policies on the shipped profiles.
"""

DEFAULT_QOE_TOKENS_PER_S = 10.0
"""Default expected token delivery speed of the QoE metric, a reading-speed scale (Andes)."""


FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class SLO:
    """The latency objectives a request must meet.

    Attributes:
        ttft_s: Time to first displayed token, seconds (default `DEFAULT_TTFT_SLO_S`).
        max_tpot_s: The largest display gap, seconds (default `DEFAULT_MAX_TPOT_S`): the gap policies
            aim for, the bound of ``gap_slo_attainment``, and the bound of each request's mean time per
            output token after the first (``slo_attainment``).
    """

    ttft_s: float = DEFAULT_TTFT_SLO_S
    max_tpot_s: float = DEFAULT_MAX_TPOT_S

    def __post_init__(self) -> None:
        """Checks both objectives are finite and positive.

        Raises:
            InvalidInputError: An objective is not a finite number of seconds above 0.
        """
        for flag, value in (("--ttft-slo", self.ttft_s), ("--max-tpot", self.max_tpot_s)):
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not (math.isfinite(value) and value > 0.0)
            ):
                raise InvalidInputError(f"{flag} = {value!r}; fix: pass a finite number of seconds above 0")
        object.__setattr__(self, "ttft_s", float(self.ttft_s))
        object.__setattr__(self, "max_tpot_s", float(self.max_tpot_s))


def meets(seconds: float, objective_s: float) -> bool:
    """Whether one measured time (a display gap, a TTFT, a percentile of them) is within its objective by
    `within_objective`; a missing one (NaN) does not meet it."""
    return not math.isnan(seconds) and bool(within_objective(float(seconds), objective_s))


def _within(seconds: npt.ArrayLike, objective_s: float) -> npt.NDArray[np.bool_]:
    """`within_objective` as an array for any input: the deprecated ``within``."""
    return np.asarray(within_objective(np.asarray(seconds, dtype=np.float64), objective_s), dtype=np.bool_)


__getattr__ = deprecated_attributes(
    "pdcore.slo", {"within": ("within_objective", _within), "SLACK_S": ("GAP_SLACK_S", GAP_SLACK_S)}
)


def slo_met(results: Mapping[str, FloatArray], slo: SLO) -> npt.NDArray[np.bool_]:
    """Per request: TTFT within the TTFT SLO and mean TPOT within the TPOT SLO (no TPOT counts as met)."""
    ttft = np.asarray(results["ttft_s"], dtype=np.float64)
    ttft_ok = ~np.isnan(ttft) & within_objective(ttft, slo.ttft_s)
    return np.asarray(ttft_ok & within_objective(results["tpot_s"], slo.max_tpot_s), dtype=np.bool_)

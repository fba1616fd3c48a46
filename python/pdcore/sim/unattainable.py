"""How sizing knows that no cloud can meet an SLO: a bound before any probe, and a doubling that no
longer helps. Both rules are ours; `pdcore.sim.sizing` applies them.

The bound (`attainment_bound`), from the cost model's floors; it holds for every policy pdcore simulates:

- every token is made by one model call that starts once the token before it exists somewhere: on the
  device, a call takes at least the fastest step of its decode curve (a decode step never gets cheaper,
  and appending tokens costs at least one step); on a cloud replica, at least its fastest iteration (one
  sequence decoding with no context, or a one-token prefill chunk, each with the shared intercept). A
  speculative round's accepted drafts are device steps and its last token one cloud iteration more, so
  the rule holds for it too. Hence the ``n``-th token exists no earlier than ``first + (n - 1) * step``
  after the request arrives, where ``step`` is the faster of the two floors and ``first`` the fastest
  call that can make a first token (a one-token prefill or a decode step on the device, one iteration
  in the cloud). Network delays, queues and pacing only add to this.
- a request meets the SLO only when its first token is shown within the TTFT objective and each of its
  ``n - 1`` gaps within ``max_tpot`` (each with the grain `pdcore.slo.GAP_SLACK_S`), so its last token is
  shown at most ``ttft + (n - 1) * max_tpot`` after it arrives.

Over a fleet, the floors are the fastest of the run's device and every device of the fleet.

A request with ``first + (n - 1) * step > ttft + (n - 1) * max_tpot`` therefore misses the SLO on any
cloud, however idle (each step is taken one clock grain shorter, so the simulator's rounding cannot
break the bound); the share of the other requests bounds the attainment of every cloud.

The plateau (`doubling_helps`): doubling the cloud helps when it raises the attainment, or cuts by
`PLATEAU_GAIN` what the missing requests miss by: the mean TTFT of those that missed TTFT, or the mean
largest gap of those that met TTFT but missed the gap objective. When it does neither, the cloud is no
longer what holds those requests back (they wait on no queue it could shorten), and a larger cloud is
taken not to help either.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pdcore.sim.scenario import Scenario
from pdcore.slo import GAP_SLACK_S, SLO, within_objective
from pdcore.traces.workload import Workload

__all__ = ["PLATEAU_GAIN", "AttainmentBound", "attainment_bound", "doubling_helps", "meetable"]

PLATEAU_GAIN = 0.01
"""The least relative cut in what the missing requests miss by that counts as doubling the cloud still
helping (module docstring)."""

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class AttainmentBound:
    """The most any cloud can attain on a workload (module docstring).

    Attributes:
        attainment: The share of requests that can meet the SLO at all: no cloud attains more.
        step_s: The fastest a token can follow the one before it (the device's or a replica's floor).
        first_token_s: The fastest a first token can be made.
        longest_answer: The longest answer, in tokens, that can still meet the SLO (0 when no first token
            can be made in time); None when any length can (``step_s`` within ``max_tpot``).
    """

    attainment: float
    step_s: float
    first_token_s: float
    longest_answer: int | None

    def reason(self) -> str:
        """Why no cloud reaches more than ``attainment``, as a clause."""
        if self.longest_answer == 0:
            why = f"no first token can be made within TTFT (the fastest takes {self.first_token_s:.3g} s)"
        else:
            why = (
                f"a token follows the one before it after at least {self.step_s * 1e3:.3g} ms (the device's "
                f"or an idle replica's fastest step), so only answers of at most {self.longest_answer} "
                "tokens can keep every gap within the objective and the first token within TTFT"
            )
        return f"even alone on an idle cloud at most {self.attainment:.1%} of the requests could: {why}"


def _floors(scenario: Scenario) -> tuple[float, float]:
    """The fastest step between two tokens and the fastest first token, seconds (module docstring)."""
    cloud = scenario.cloud
    devices = [scenario.device] + ([] if scenario.fleet is None else scenario.fleet.devices())
    device_step = min(float(np.min(device.decode_points()[1])) for device in devices)
    cloud_step = min(cloud.iteration_s([], [0]), cloud.iteration_s([1], []))
    step = min(device_step, cloud_step)
    return step, min(step, *(float(device.prefill_s(1)) for device in devices))


def meetable(workload: Workload, scenario: Scenario) -> npt.NDArray[np.bool_]:
    """Per request: whether it could meet the SLO on some cloud, however idle (module docstring)."""
    step, first = _floors(scenario)
    slo = scenario.slo
    # one clock grain off every step, and the grain of the objectives on every gap
    per_token = (step - GAP_SLACK_S) - (slo.max_tpot_s + GAP_SLACK_S)
    room = slo.ttft_s + GAP_SLACK_S - first
    gaps = np.maximum(workload.output_tokens.astype(np.float64) - 1.0, 0.0)
    return np.asarray((room >= 0.0) & (gaps * per_token <= room), dtype=np.bool_)


def attainment_bound(workload: Workload, scenario: Scenario) -> AttainmentBound:
    """The bound of the module docstring for ``workload`` in ``scenario`` (any replica counts)."""
    step, first = _floors(scenario)
    slo = scenario.slo
    per_token = (step - GAP_SLACK_S) - (slo.max_tpot_s + GAP_SLACK_S)
    room = slo.ttft_s + GAP_SLACK_S - first
    if room < 0.0:
        longest: int | None = 0
    elif per_token <= 0.0:
        longest = None
    else:
        longest = 1 + math.floor(room / per_token)
    possible = meetable(workload, scenario)
    share = float(np.mean(possible)) if len(possible) else 1.0
    return AttainmentBound(attainment=share, step_s=step, first_token_s=first, longest_answer=longest)


def doubling_helps(
    slo: SLO,
    attainment: tuple[float, float],
    ttft_s: tuple[FloatArray, FloatArray],
    max_gap_s: tuple[FloatArray, FloatArray],
) -> bool:
    """Whether a cloud twice as large helped (module docstring); each pair is (before, after)."""
    if attainment[1] > attainment[0]:
        return True
    ttft_ok = within_objective(ttft_s[0], slo.ttft_s)
    missed = (~ttft_ok, ttft_ok & ~within_objective(max_gap_s[0], slo.max_tpot_s))
    for which, (before, after) in zip(missed, (ttft_s, max_gap_s), strict=True):
        if np.any(which) and np.nanmean(after[which]) < np.nanmean(before[which]) * (1.0 - PLATEAU_GAIN):
            return True
    return False

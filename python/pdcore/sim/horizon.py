"""A run's simulated time is bounded before it starts, so the int64-nanosecond clock cannot saturate.

The simulator's clock counts nanoseconds in an int64 and saturates at 2**63 ns (about 9.2e9 s); a run
that got there would print confident nonsense (a TTFT p99 of 9e12 ms). `check_horizon` bounds the time a
run can reach from above and refuses one whose bound passes `pdcore.limits.MAX_SIM_TIME_S`:

    last arrival + max(requests x the cloud's time for the largest request served alone,
                       the device's time for the largest request)

The cloud term is serial (one replica, no batching: the worst case); the device term is not multiplied,
since every request has its own device. The largest request takes the largest prompt and the largest
output of the workload, which bounds every request's time because both curves grow with length.
"""

from __future__ import annotations

import math

from pdcore.exceptions import InvalidInputError
from pdcore.limits import LIMITS_DOC, MAX_SIM_TIME_S
from pdcore.profiles.cloud import CloudProfile
from pdcore.profiles.device import DeviceProfile
from pdcore.traces.workload import Workload

__all__ = ["check_horizon", "horizon_bound_s"]


def horizon_bound_s(workload: Workload, cloud: CloudProfile, device: DeviceProfile) -> float:
    """An upper bound on the simulated time a run of ``workload`` can reach, in seconds."""
    prompt = int(workload.prompt_tokens.max())
    output = int(workload.output_tokens.max())
    chunk = cloud.max_tokens_per_iteration
    chunks = math.ceil(prompt / chunk)
    cloud_s = chunks * cloud.iteration_s([min(prompt, chunk)], []) + output * cloud.iteration_s(
        [], [prompt + output]
    )
    device_s = float(device.prefill_s(prompt)) + output * float(device.decode_tpot_s(prompt + output))
    return float(workload.arrival_s[-1]) + max(len(workload) * cloud_s, device_s)


def check_horizon(workload: Workload, cloud: CloudProfile, device: DeviceProfile) -> None:
    """Refuses a run whose simulated time could pass `MAX_SIM_TIME_S`.

    Raises:
        InvalidInputError: Naming the bound, the profiles and the fix.
    """
    bound = horizon_bound_s(workload, cloud, device)
    if not bound < MAX_SIM_TIME_S:
        raise InvalidInputError(
            f"this run could reach {bound:.3g} s of simulated time (cloud {cloud.name!r}, device "
            f"{device.name!r}, {len(workload):,} requests of up to {int(workload.prompt_tokens.max()):,} + "
            f"{int(workload.output_tokens.max()):,} tokens), beyond the clock's limit of "
            f"{MAX_SIM_TIME_S:g} s; fix: check the profiles' time values, or pass fewer or shorter "
            f"requests (limits: {LIMITS_DOC})"
        )

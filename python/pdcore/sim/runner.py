"""Running a workload through the simulator under a policy: `simulate`, the one-call form of
`Scenario.run`.

The environment of a run is `pdcore.sim.scenario.Scenario`, what it yields `pdcore.sim.result.SimResult`,
and the decision loop of a policy planned in Python `pdcore.sim.decisions`; this module re-exports them
where they were first published.
"""

from __future__ import annotations

import numpy.typing as npt

from pdcore.policies.base import Policy
from pdcore.profiles.cloud import CloudProfile
from pdcore.profiles.device import DeviceProfile
from pdcore.profiles.network import NetworkProfile
from pdcore.sim.decisions import request_info
from pdcore.sim.result import (
    CSV_CHUNK_ROWS,
    MODES,
    SERVED_BY,
    SimResult,
    _csv_cells,  # noqa: F401  # reason: the benches read the CSV cell format here
)
from pdcore.sim.scenario import (
    DEFAULT_KV_LINK_BYTES_PER_S,
    DEPLOYMENTS,
    K_SITES,
    Scenario,
    conversation_inputs,
)
from pdcore.slo import DEFAULT_QOE_TOKENS_PER_S, SLO
from pdcore.traces.workload import Workload

__all__ = [
    "CSV_CHUNK_ROWS",
    "DEFAULT_KV_LINK_BYTES_PER_S",
    "DEPLOYMENTS",
    "K_SITES",
    "MODES",
    "SERVED_BY",
    "Scenario",
    "SimResult",
    "conversation_inputs",
    "request_info",
    "simulate",
]


def simulate(
    workload: Workload,
    policy: Policy | str,
    *,
    cloud: CloudProfile,
    device: DeviceProfile,
    network: NetworkProfile,
    deployment: str = "disaggregated",
    replicas: int = 1,
    prefill_replicas: int = 1,
    decode_replicas: int = 1,
    seed: int = 0,
    slo: SLO | None = None,
    qoe_tokens_per_s: float = DEFAULT_QOE_TOKENS_PER_S,
    kv_link_bytes_per_s: float = DEFAULT_KV_LINK_BYTES_PER_S,
    one_way_s: npt.ArrayLike | None = None,
) -> SimResult:
    """Simulates ``workload`` under ``policy`` in the given environment (see `Scenario` for the settings).

    The same arguments and seed give identical results.

    Example:
        >>> from pdcore.profiles import load_cloud_profile, load_device_profile, network_preset
        >>> from pdcore.traces import synthetic_default
        >>> result = simulate(
        ...     synthetic_default(seed=0, n_requests=50),
        ...     "pd-device",
        ...     cloud=load_cloud_profile("llama3-8b-a100"),
        ...     device=load_device_profile("llama32-3b-w4a16-8elite-genie"),
        ...     network=network_preset("wifi"),
        ... )
        >>> result.aggregate()["requests"]
        50
    """
    scenario = Scenario(
        cloud=cloud,
        device=device,
        network=network,
        deployment=deployment,
        replicas=replicas,
        prefill_replicas=prefill_replicas,
        decode_replicas=decode_replicas,
        slo=slo if slo is not None else SLO(),
        qoe_tokens_per_s=qoe_tokens_per_s,
        kv_link_bytes_per_s=kv_link_bytes_per_s,
    )
    return scenario.run(workload, policy, seed=seed, one_way_s=one_way_s)

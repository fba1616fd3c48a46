"""Running a workload through the simulator under a policy: `simulate`, the one-call form of
`Scenario.run`, and `policy_reports`, several policies on one workload at once.

The environment of a run is `pdcore.sim.scenario.Scenario`, what it yields `pdcore.sim.result.SimResult`,
and the decision loop of a policy planned in Python `pdcore.sim.decisions`; this module re-exports them
where they were first published.

`policy_reports` runs the policies of one comparison at once on threads (`pdcore.sim.threads`): the
same reports as one after another, bit for bit, each run reduced to its report as soon as it ends.
Our rule, for the wall time: the runs start longest first (`RUN_COST`), so that the last to end is a short
one and every worker stays busy to the end; listed last, speculative decoding (the longest) would run
alone at the end while the other core idles.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

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
from pdcore.sim.threads import default_workers, on_threads
from pdcore.slo import DEFAULT_QOE_TOKENS_PER_S, SLO
from pdcore.traces.workload import Workload

__all__ = [
    "CSV_CHUNK_ROWS",
    "DEFAULT_KV_LINK_BYTES_PER_S",
    "DEPLOYMENTS",
    "K_SITES",
    "MODES",
    "RUN_COST",
    "SERVED_BY",
    "Scenario",
    "SimResult",
    "conversation_inputs",
    "longest_first",
    "policy_reports",
    "request_info",
    "simulate",
]

RUN_COST = {
    "spec-decode": 4.5,
    "disco": 3.3,
    "pd-device": 2.9,
    "naive-split": 1.8,
    "cloud-only": 1.6,
    "router": 1.6,
    "race": 1.5,
    "kv-transfer": 1.1,
    "device-only": 0.8,
}
"""A built-in policy's run time, relative (measured: seconds of CPU per 200,000 synthetic requests), to
start the longest first; a policy not listed (planned in Python, a decision per request) counts as the
longest."""


def longest_first(policies: Sequence[Policy]) -> list[int]:
    """The indices of ``policies`` in the order their runs start: by `RUN_COST`, the longest first, a
    policy not listed before every listed one; ties in the given order."""
    longest = max(RUN_COST.values())
    return sorted(range(len(policies)), key=lambda k: -RUN_COST.get(policies[k].name, 2 * longest))


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


def policy_reports(
    scenario: Scenario,
    workload: Workload,
    policies: Sequence[Policy],
    *,
    seed: int = 0,
    workers: int | None = None,
    started: Callable[[Policy], None] | None = None,
    finished: Callable[[Policy], None] | None = None,
) -> list[dict[str, Any]]:
    """Each policy's report (`SimResult.aggregate`) on ``workload``, in the order of ``policies``, the
    runs on threads (`pdcore.sim.threads.on_threads`).

    Args:
        scenario: The environment every policy runs in.
        workload: The requests.
        policies: Distinct policy objects (each is prepared for its run).
        seed: Seed of the network delays, the same for every policy.
        workers: Runs at once; default one per CPU, at most one per policy and as many as the memory
            budget holds (`pdcore.sim.threads.default_workers`; 1: one after another).
        started: Called with each policy as its run starts.
        finished: Called with each policy as its run ends.

    Returns:
        The reports, in the order of ``policies``, identical to running them one after another (the runs
        start longest first, `longest_first`).
    """

    def report(policy: Policy) -> dict[str, Any]:
        # reduced to its report at once: the per-request results of at most `workers` runs are alive
        return scenario.run(workload, policy, seed=seed).aggregate()

    if workers is None:
        workers = default_workers(len(policies), requests=len(workload))
    order = longest_first(policies)
    return on_threads(report, policies, workers=workers, started=started, finished=finished, order=order)

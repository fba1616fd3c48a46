"""Whether the cloud ``pdcore size`` picked keeps up with the workload: one run on it, its pools' busy share
and the overload test (`pdcore.sim.overload`).

The search (`pdcore.sim.sizing.size_cloud`) answers at the SLO attainment, which cannot tell a cloud that
keeps up from one whose queue grows slowly over a short window. So, for each policy, ``size`` looks at the
run of the workload on the cloud it picked (or, when no cloud met the SLO, on the largest it may try) and
says how busy each pool was and whether the delays grew over the arrivals; an overloaded run gets the
notice every command prints (`pdcore.cli.notices`). The search has already run the cloud it picked, with
the same seed and network delays, and kept what the check reads (`pdcore.sim.sizing_result.CloudRun`), so
that run is read, not repeated; only a cloud the search did not run (the largest, when no cloud met the
SLO) is run here, the policies' runs on threads (`pdcore.sim.threads`).

The prefill pool's busy share is ours: the cloud GPU-seconds its iterations spent on prefill
(`docs/schema.md`: ``cloud_gpu_s_per_request``, iteration time x GPUs per replica, shared among the batch),
summed over the requests, over the pool's GPUs times the run's span (first arrival to last displayed
token). No such share is given for decode: a decode replica iterates whenever any answer is in flight, so
its busy time says nothing of its headroom (a batch of one and a full batch are both busy); the overload
test is what tells whether it keeps up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pdcore.policies import Policy
from pdcore.sim import Scenario
from pdcore.sim.sizing import Sizing
from pdcore.sim.sizing_probes import cloud_run
from pdcore.traces import Workload

__all__ = ["CloudCheck", "check_cloud"]


@dataclass(frozen=True)
class CloudCheck:
    """One policy's run on the cloud ``size`` picked for it.

    Attributes:
        policy: The policy's name.
        cloud: The cloud run, ``"2P+1D"`` or ``"x3"``.
        picked: Whether it is the cloud the search found (else the largest it may try).
        busy: The prefill pool's busy share (``prefill pool``; none when colocated).
        report: What the run's report (`SimResult.aggregate`) says of its load: ``overloaded``,
            ``delay_growth``, ``overload_site`` and ``duration_s``.
    """

    policy: str
    cloud: str
    picked: bool
    busy: dict[str, float]
    report: dict[str, Any]

    def describe(self) -> dict[str, Any]:
        """The check as a JSON-ready dict."""
        return {
            "cloud": self.cloud,
            "picked": self.picked,
            "busy": dict(self.busy),
            "overloaded": bool(self.report["overloaded"]),
            "delay_growth": self.report["delay_growth"],
        }

    def line(self) -> str:
        """The check in one line: the cloud, whether it keeps up, and how busy its prefill pool was."""
        which = "" if self.picked else "the largest cloud tried, "
        growth = self.report["delay_growth"]
        if self.report["overloaded"]:
            verdict, figures = "falls behind", [f"utilisation of its bottleneck {1.0 + float(growth):.2f}"]
        elif growth is None:
            verdict, figures = "too few requests to tell whether it keeps up", []
        else:
            verdict = "keeps up"
            figures = [f"delays grow {max(float(growth), 0.0):.3f} s per second of arrivals"]
        figures += [f"{pool} {share:.0%} busy" for pool, share in self.busy.items()]
        detail = f" ({'; '.join(figures)})" if figures else ""
        return f"{self.policy} on {which}{self.cloud}: {verdict}{detail}"


def _cloud_of(sized: Sizing, scenario: Scenario, max_replicas: int) -> tuple[Scenario, str, bool]:
    """The cloud to run: the one found, or the largest the search may try."""
    picked = sized.bound == "found"
    if scenario.deployment == "colocated":
        replicas = sized.replicas if picked else max_replicas
        return scenario.replace(replicas=replicas), f"x{replicas}", picked
    prefill = sized.prefill_replicas if picked else max_replicas
    decode = sized.decode_replicas if picked else max_replicas
    return scenario.replace(prefill_replicas=prefill, decode_replicas=decode), f"{prefill}P+{decode}D", picked


def check_cloud(
    workload: Workload, policy: Policy, sized: Sizing, scenario: Scenario, *, seed: int, max_replicas: int
) -> CloudCheck | None:
    """The check of the cloud the sizing picked (module docstring): from the search's run of it when there
    was one, else from a run here; None when the policy needs no cloud."""
    if sized.bound == "no_cloud":
        return None
    on, cloud, picked = _cloud_of(sized, scenario, max_replicas)
    run = sized.run if sized.run is not None and sized.cloud == cloud else None
    if run is None:
        run = cloud_run(on.run(workload, policy, seed=seed))
    report = {
        "overloaded": run.overloaded,
        "delay_growth": run.delay_growth,
        "overload_site": run.overload_site,
        "duration_s": run.duration_s,
    }
    busy: dict[str, float] = {}
    if on.deployment == "disaggregated":
        span = max(run.duration_s, 1e-9)
        gpus = on.cloud.gpus_per_replica * on.prefill_replicas
        busy["prefill pool"] = run.prefill_gpu_s / (gpus * span)
    return CloudCheck(policy=sized.policy, cloud=cloud, picked=picked, busy=busy, report=report)

"""The run ``pdcore compare`` and ``pdcore simulate`` share: their flags turned into one run specification
(`pdcore.sim.spec`), checked at the edge (`run_spec`, which also lists the files the run reads, so that
outputs are compared with them before any work), then the scenario built once and the workload loaded
once (`RunSpec.build`)."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pdcore import __version__
from pdcore.cli.options import check_slo_flags, check_workload_flags, max_tpot_flag, workload_spec
from pdcore.cli.tables import arrival_rate
from pdcore.exceptions import InvalidInputError
from pdcore.policies.base import DEFAULT_K_SITES
from pdcore.sim import Scenario
from pdcore.sim.horizon import check_horizon
from pdcore.sim.spec import ScenarioSpec, WorkloadSpec
from pdcore.traces import OVERSIZE, Workload

__all__ = ["SCHEMA_VERSION", "Run", "RunSpec", "build_run", "check_replica_flags", "run_spec"]

SCHEMA_VERSION = 1
"""The version of the JSON report's layout (``docs/schema.md``)."""


@dataclass(frozen=True)
class Run:
    """What `compare` and `simulate` share: the workload, the scenario and how they were chosen."""

    workload: Workload
    scenario: Scenario
    seed: int
    rate_scale: float
    limit: int | None

    def document(self, reports: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """The JSON report (``docs/schema.md``) of the policies' ``reports``."""
        return {
            "workload": self.workload.describe(),
            "config": self.scenario.describe()
            | {"seed": self.seed, "rate_scale": self.rate_scale, "limit": self.limit},
            "schema_version": SCHEMA_VERSION,
            "pdcore_version": __version__,
            "policies": reports,
        }

    def cloud(self) -> str:
        """The cloud profile and its shape, ``llama3-8b-a100 1P+1D`` or ``llama3-8b-a100 x2``."""
        if self.scenario.deployment == "colocated":
            return f"{self.scenario.cloud.name} x{self.scenario.replicas}"
        return (
            f"{self.scenario.cloud.name} {self.scenario.prefill_replicas}P+{self.scenario.decode_replicas}D"
        )

    def headline(self) -> str:
        """The title of the run's table: the workload, the profiles, the cloud's shape and the SLO."""
        stats = self.workload.summary()
        cloud = self.cloud()
        fleet = self.scenario.fleet
        devices = (
            f"device {self.scenario.device.name} | cloud {cloud} ({self.scenario.deployment}) | network "
            f"{self.scenario.network.name}"
            if fleet is None
            else f"fleet {fleet.name} ({fleet.capable_share:.0%} capable) | cloud {cloud} "
            f"({self.scenario.deployment})"
        )
        return (
            f"{self.workload.name}: {len(self.workload)} requests over {stats['duration_s']:.0f} s "
            f"({arrival_rate(stats['rate_rps'])}) | {devices} | SLO TTFT "
            f"{self.scenario.slo.ttft_s:g} s, TPOT {self.scenario.slo.max_tpot_s * 1e3:g} ms"
        )


@dataclass(frozen=True)
class RunSpec:
    """The run the flags of `compare` and `simulate` name, by reference: checked, nothing read yet."""

    workload: WorkloadSpec
    scenario: ScenarioSpec
    oversize: str

    def inputs(self) -> dict[str, str]:
        """Every file the run reads, by flag (`WorkloadSpec.inputs`, `ScenarioSpec.inputs`)."""
        return self.workload.inputs() | self.scenario.inputs()

    def build(self) -> Run:
        """The scenario built once and the workload loaded once, fitted to one cloud replica's KV cache."""
        scenario = self.scenario.build()
        what = f"one {scenario.cloud.name} replica's KV cache"
        workload = self.workload.load().fit(scenario.cloud.kv_cache_tokens, self.oversize, what=what)
        check_horizon(workload, scenario.cloud, scenario.device)
        spec = self.workload
        return Run(
            workload=workload, scenario=scenario, seed=spec.seed, rate_scale=spec.rate_scale, limit=spec.limit
        )


def run_spec(
    *,
    trace: Path | None,
    device: str,
    cloud: str,
    deployment: str,
    replicas: int | None,
    prefill_replicas: int | None,
    decode_replicas: int | None,
    network: str,
    rate_scale: float,
    k_sites: str = DEFAULT_K_SITES,
    limit: int | None,
    seed: int,
    requests: int | None,
    rate: float | None,
    ttft_slo: float,
    max_tpot: float,
    oversize: str,
    cost_weight: float = 0.0,
    energy_weight: float = 0.0,
    multi_turn: bool = False,
    one_answer_per_device: bool = False,
    cloud_model: str = "engine",
    fleet: str | None = None,
) -> RunSpec:
    """The workload and the scenario the flags name (`pdcore.sim.spec`), each range-checked at the edge,
    before any file is read."""
    # flags first, then profiles: a misspelt name should fail before a large trace is read
    check_workload_flags(requests=requests, rate=rate, limit=limit, rate_scale=rate_scale, seed=seed)
    check_slo_flags(ttft_slo, max_tpot)
    check_replica_flags(deployment, replicas, prefill_replicas, decode_replicas)
    if oversize not in OVERSIZE:
        raise InvalidInputError(f"--oversize {oversize!r} is unknown; fix: use one of {', '.join(OVERSIZE)}")
    scenario = ScenarioSpec(
        device=device,
        cloud=cloud,
        network=network,
        deployment=deployment,
        replicas=1 if replicas is None else replicas,
        prefill_replicas=1 if prefill_replicas is None else prefill_replicas,
        decode_replicas=1 if decode_replicas is None else decode_replicas,
        ttft_slo_s=ttft_slo,
        max_tpot_s=max_tpot,
        k_sites=k_sites,
        cost_weight=cost_weight,
        energy_weight=energy_weight,
        one_answer_per_device=one_answer_per_device,
        cloud_model=cloud_model,
        fleet=fleet,
    )
    workload = workload_spec(
        trace,
        seed=seed,
        requests=requests,
        rate=rate,
        limit=limit,
        rate_scale=rate_scale,
        multi_turn=multi_turn,
    )
    return RunSpec(workload=workload, scenario=scenario, oversize=oversize)


def flags_run_spec(flags: Mapping[str, Any]) -> RunSpec:
    """The run specification of a command's flags (its ``locals()``): the run flags `run_spec` takes,
    picked by name, so the commands that declare them (compare, simulate) assemble their run in one
    place; ``--max-tpot`` is read with its old spelling ``--tpot-slo`` (`max_tpot_flag`)."""
    taken = inspect.signature(run_spec).parameters
    picked = {name: flags[name] for name in taken if name in flags and name != "max_tpot"}
    return run_spec(max_tpot=max_tpot_flag(flags["max_tpot"], flags.get("tpot_slo")), **picked)


def build_run(**flags: Any) -> Run:
    """The run the flags name (`run_spec`), built: the scenario once, the workload once."""
    return run_spec(**flags).build()


def check_replica_flags(
    deployment: str, replicas: int | None, prefill_replicas: int | None, decode_replicas: int | None
) -> None:
    """Refuses replica flags that the deployment would ignore."""
    if deployment == "colocated":
        for flag, given in (("--prefill-replicas", prefill_replicas), ("--decode-replicas", decode_replicas)):
            if given is not None:
                raise InvalidInputError(
                    f"{flag} applies to a disaggregated cloud, but --deployment is colocated; fix: drop "
                    f"{flag} and size the cloud with --replicas, or pass --deployment disaggregated"
                )
    elif replicas is not None:
        raise InvalidInputError(
            f"--replicas applies to a colocated cloud, but --deployment is {deployment}; fix: size it with "
            "--prefill-replicas and --decode-replicas, or pass --deployment colocated"
        )

"""The environment of a run (`Scenario`): cloud, device, network, deployment and objectives, and how a
workload runs in it.

`Scenario.run` samples one network delay per request, builds the native ``pdcore._core.Simulator`` and
runs it with the GIL released. A built-in policy gives the simulator its rule (`Policy.native`), so every
request is planned inside Rust; a custom policy is asked per request through the decision loop
(`pdcore.sim.decisions`). Both paths plan with the same cost model and give identical results.

Adapters from the profiles to the simulator's configuration records, with the values the profiles do not
carry: ``kv_link_bytes_per_s`` (the link that moves a KV cache from the prefill to the decode pool of a
disaggregated cloud): `DEFAULT_KV_LINK_BYTES_PER_S`, 25 GB/s, one 200 Gbit/s NIC (HDR InfiniBand or 200G
RoCE) per server, unless the cloud profile carries its own. The device's KV bytes per token (the size of the
cache a kv-transfer ships to the device) is the device profile's ``kv_bytes_per_token``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from pdcore import _core
from pdcore._core import CloudConfig, DeviceCost, Prices, Simulator
from pdcore.exceptions import InvalidInputError
from pdcore.fleet import Fleet
from pdcore.limits import MAX_REPLICAS, check_int
from pdcore.policies.base import DEFAULT_K_SITES, Policy, PolicyContext
from pdcore.policies.builtin import make_policy
from pdcore.profiles.cloud import CloudProfile
from pdcore.profiles.device import DeviceProfile
from pdcore.profiles.network import NetworkProfile
from pdcore.sim.accounting import bill, prices
from pdcore.sim.conversations import conversation_inputs, when_device_busy
from pdcore.sim.decisions import plan_each_request
from pdcore.sim.fleet_runs import class_bill, class_delays, class_policies, fleet_arguments, request_classes
from pdcore.sim.horizon import check_horizon
from pdcore.sim.result import SimResult, timeline_records
from pdcore.sim.scenario_record import scenario_record
from pdcore.slo import DEFAULT_QOE_TOKENS_PER_S, SLO
from pdcore.traces.workload import Workload

__all__ = [
    "DEFAULT_KV_LINK_BYTES_PER_S",
    "DEPLOYMENTS",
    "K_SITES",
    "Scenario",
    "conversation_inputs",
]

DEFAULT_KV_LINK_BYTES_PER_S = 25e9
"""Prefill-to-decode KV link of a disaggregated cloud: 200 Gbit/s, in bytes per second."""

DEPLOYMENTS: tuple[str, ...] = _core.DEPLOYMENTS
"""The cloud deployments the simulator models (`pdcore._core.DEPLOYMENTS`)."""

K_SITES: tuple[str, ...] = _core.K_SITES
"""Where a disaggregated cloud may decode P/D-Device's ``k`` tokens (`Scenario.k_sites`, `pdcore._core`)."""

FloatArray = npt.NDArray[np.float64]


def _positive_int(value: int, flag: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidInputError(f"{flag} = {value!r}; fix: pass a whole number, at least 1")
    return check_int(int(value), flag, minimum=1, maximum=MAX_REPLICAS)


@dataclass(frozen=True)
class Scenario:
    """The environment of a run: cloud, device, network, deployment and objectives.

    Attributes:
        cloud: The cloud replica's iteration-time profile.
        device: The device's speed profile.
        network: The network between them (per-request delays are sampled from it).
        deployment: ``"colocated"`` or ``"disaggregated"``.
        replicas: Colocated replicas.
        prefill_replicas: Prefill replicas of a disaggregated cloud.
        decode_replicas: Decode replicas of a disaggregated cloud.
        slo: The objectives (also the default ``max_tpot_s`` of the policies).
        qoe_tokens_per_s: The QoE metric's expected token delivery speed; its expected TTFT is the TTFT SLO.
        kv_link_bytes_per_s: Prefill-to-decode KV link of a disaggregated cloud, bytes per second.
        device_kv_bytes_per_token: Override of the device profile's ``kv_bytes_per_token``.
        cost_weight: The optimizer's weight on cloud dollars (`pdcore.optimize.Optimizer`), for the
            automatic split policies that set none of their own.
        energy_weight: The optimizer's weight on device energy, likewise.
        k_sites: Where a disaggregated cloud lets P/D-Device's ``k`` tokens be decoded: ``"pool"`` (the
            decode pool after a KV transfer, as any request), ``"prefill"`` (the prefill instance that
            prefilled the prompt) or ``"both"`` (each plan says; ``pd-device:k_site=auto`` picks).
        one_answer_per_device: A device serves one answer at a time: a request that finds it busy is
            served by the cloud, or waits for it under the device-only policy (`pdcore.sim.conversations`).
        fleet: The device classes the requests come from (`pdcore.sim.fleet_runs`: each request's device,
            network, plan and bill are its class's); None: every request has ``device`` and ``network``.
    """

    cloud: CloudProfile
    device: DeviceProfile
    network: NetworkProfile
    deployment: str = "disaggregated"
    replicas: int = 1
    prefill_replicas: int = 1
    decode_replicas: int = 1
    slo: SLO = field(default_factory=SLO)
    qoe_tokens_per_s: float = DEFAULT_QOE_TOKENS_PER_S
    kv_link_bytes_per_s: float = DEFAULT_KV_LINK_BYTES_PER_S
    device_kv_bytes_per_token: float | None = None
    k_sites: str = DEFAULT_K_SITES
    cost_weight: float = 0.0
    energy_weight: float = 0.0
    one_answer_per_device: bool = False
    fleet: Fleet | None = None

    def __post_init__(self) -> None:
        """Checks the deployment, replica counts and rates.

        Raises:
            InvalidInputError: An unknown deployment, a replica count below 1, a rate that is not a
                finite number above 0, or a ``one_answer_per_device`` that is not a bool.
        """
        profiles: tuple[tuple[str, object, type, str], ...] = (
            ("cloud", self.cloud, CloudProfile, "load_cloud_profile"),
            ("device", self.device, DeviceProfile, "load_device_profile"),
            ("network", self.network, NetworkProfile, "network_preset"),
        )
        for argument, given, kind, loader in profiles:
            if not isinstance(given, kind):
                raise InvalidInputError(
                    f"{argument} = {given!r} is a {type(given).__name__}, not a {kind.__name__}; fix: pass "
                    f"pdcore.profiles.{loader}({given!r})"
                )
        if self.deployment not in DEPLOYMENTS:
            raise InvalidInputError(
                f"--deployment {self.deployment!r} is unknown; fix: use {' or '.join(DEPLOYMENTS)}"
            )
        if self.k_sites not in K_SITES:
            raise InvalidInputError(
                f"--k-sites {self.k_sites!r} is unknown; fix: use one of {', '.join(K_SITES)}"
            )
        if not isinstance(self.one_answer_per_device, bool):
            raise InvalidInputError(
                f"one_answer_per_device = {self.one_answer_per_device!r}; fix: pass True or False"
            )
        _positive_int(self.replicas, "--replicas")
        _positive_int(self.prefill_replicas, "--prefill-replicas")
        _positive_int(self.decode_replicas, "--decode-replicas")
        for name, value in (
            ("qoe_tokens_per_s", self.qoe_tokens_per_s),
            ("kv_link_bytes_per_s", self.kv_link_bytes_per_s),
            ("device_kv_bytes_per_token", self.device_kv_bytes_per_token),
        ):
            if value is not None and not (math.isfinite(value) and value > 0.0):
                raise InvalidInputError(f"{name} = {value!r}; fix: pass a finite number above 0")
        for flag, weight in (("--cost-weight", self.cost_weight), ("--energy-weight", self.energy_weight)):
            if (
                isinstance(weight, bool)
                or not isinstance(weight, (int, float))
                or not 0.0 <= weight < math.inf
            ):
                raise InvalidInputError(
                    f"{flag} {weight!r}; fix: pass a finite weight, 0 or more (seconds of TTFT per $ per 1k "
                    "requests for the cost, per J for the energy)"
                )

    def replace(self, **changes: Any) -> Scenario:
        """A copy with some fields changed (`dataclasses.replace`)."""
        return dataclasses.replace(self, **changes)

    def kv_link(self) -> float:
        """The prefill-to-decode KV link in bytes per second: the cloud profile's, if it has one."""
        link = getattr(self.cloud, "kv_link_bytes_per_s", None)
        if isinstance(link, (int, float)) and not isinstance(link, bool) and link > 0:
            return float(link)
        return self.kv_link_bytes_per_s

    def cloud_config(self) -> CloudConfig:
        """The simulator's cloud configuration."""
        cloud = self.cloud
        return CloudConfig(
            deployment=self.deployment,
            replicas=self.replicas,
            prefill_replicas=self.prefill_replicas,
            decode_replicas=self.decode_replicas,
            **cloud.iteration_terms(),
            max_batch_size=cloud.max_batch_size,
            max_tokens_per_iteration=cloud.max_tokens_per_iteration,
            kv_cache_tokens=cloud.kv_cache_tokens,
            gpus_per_replica=cloud.gpus_per_replica,
            kv_bytes_per_token=float(cloud.kv_bytes_per_token),
            kv_link_bytes_per_s=self.kv_link(),
            k_sites=self.k_sites,
            prefill_decode_budget=self.prefill_decode_budget(),
            kv_write_token_s=float(cloud.kv_write_token_s),
            prefill_decode_gap_s=0.0 if self.k_sites == "pool" else self.slo.max_tpot_s,
        )

    def prefill_decode_budget(self) -> int:
        """A prefill replica's token budget while it decodes ``k`` tokens: the cost model's rule at the
        largest-gap objective (`pdcore._core.CloudCost.prefill_decode_budget`), or 0 (no cap) when the
        cloud offers only the decode pool."""
        if self.k_sites == "pool":
            return 0
        return self.cloud.cost.prefill_decode_budget(self.slo.max_tpot_s)

    def device_config(self) -> DeviceCost:
        """The simulator's device model: the profile's cost model, with the KV override if one is set."""
        kv = self.device_kv_bytes_per_token
        if kv is None:
            return self.device.cost
        return DeviceCost(
            prefill_tokens=list(self.device.prefill_tokens),
            prefill_s=list(self.device.prefill_seconds),
            decode_context=list(self.device.decode_context_tokens),
            decode_tpot_s=list(self.device.decode_tpot),
            kv_bytes_per_token=float(kv),
            step_spread=self.device.step_spread,
        )

    def context(self, workload: Workload | None = None) -> PolicyContext:
        """What `Policy.prepare` receives, with the run's ``workload`` when there is one."""
        return PolicyContext(
            device=self.device,
            cloud=self.cloud,
            network=self.network,
            deployment=self.deployment,
            ttft_slo_s=self.slo.ttft_s,
            max_tpot_s=self.slo.max_tpot_s,
            prefill_replicas=self.replicas if self.deployment == "colocated" else self.prefill_replicas,
            k_sites=self.k_sites,
            kv_link_bytes_per_s=self.kv_link(),
            workload=workload,
            cost_weight=self.cost_weight,
            energy_weight=self.energy_weight,
        )

    def describe(self) -> dict[str, Any]:
        """The scenario as a JSON-ready dict (the ``config`` object of a report, `scenario_record`)."""
        return scenario_record(self)

    def one_way_s(self, count: int, seed: int) -> FloatArray:
        """Per-request one-way delays, drawn from ``np.random.default_rng(seed)``."""
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise InvalidInputError(f"--seed = {seed!r}; fix: pass a non-negative integer, e.g. 0")
        return self.network.sample_one_way_s(count, np.random.default_rng(int(seed)))

    def run(
        self,
        workload: Workload,
        policy: Policy | str,
        *,
        seed: int = 0,
        one_way_s: npt.ArrayLike | None = None,
    ) -> SimResult:
        """Simulates ``workload`` under ``policy``.

        Args:
            workload: The requests.
            policy: A policy, or a registry name for `make_policy`.
            seed: Seed of the per-request network delays.
            one_way_s: Per-request one-way delays to use instead of sampling them, seconds.

        Returns:
            The per-request results and counters.

        Raises:
            InvalidInputError: A bad policy name, seed or delay array, or the simulator rejects an input.
        """
        chosen = make_policy(policy) if isinstance(policy, str) else policy
        if not isinstance(chosen, Policy):
            raise InvalidInputError(
                f"policy = {policy!r} is a {type(policy).__name__}; fix: pass a pdcore.Policy or a policy "
                "name such as 'pd-device'"
            )
        classes = None if self.fleet is None else request_classes(self.fleet, workload, seed)
        delays = self._delays(workload, seed, one_way_s, classes)
        simulator = self._simulator(workload, delays, chosen, classes)
        policies = self._policies(chosen, workload)
        natives = [native for policy in policies if (native := policy.native()) is not None]
        if len(natives) == len(policies):
            simulator.run_policies(natives)
        else:
            plan_each_request(simulator, policies, workload, delays, classes=classes)
        results = self._priced(dict(simulator.results()), classes)
        return SimResult(
            policy=chosen.name,
            workload=workload,
            one_way_s=delays,
            results=results,
            summary={key: float(value) for key, value in simulator.summary().items()},
            slo=self.slo,
            seed=int(seed),
            device_class=classes,
            fleet=self.fleet,
        )

    def _policies(self, policy: Policy, workload: Workload) -> list[Policy]:
        """``policy`` prepared for the run, or one per fleet class (`pdcore.sim.fleet_runs`)."""
        if self.fleet is None:
            policy.prepare(self.context(workload))
            return [policy]
        return class_policies(policy, self.context(workload), self.fleet)

    def prices(self) -> Prices | None:
        """The deployment's prices (`pdcore.sim.accounting.prices`), or None when a profile lacks them."""
        return prices(self.cloud, self.device, self.network)

    def _priced(
        self, results: dict[str, npt.NDArray[Any]], classes: npt.NDArray[np.int64] | None
    ) -> dict[str, npt.NDArray[Any]]:
        """The results with their bill (`pdcore.sim.accounting.bill`, by class with a fleet); bytes are NaN
        without ``[wire]``."""
        if self.cloud.prompt_bytes_per_token is None:
            results["bytes_up"] = np.full(len(results["ttft_s"]), np.nan)
            results["bytes_down"] = np.full(len(results["ttft_s"]), np.nan)
        if classes is not None:
            return results | class_bill(results, self, classes)
        return results | bill(results, self.prices())

    def _delays(
        self,
        workload: Workload,
        seed: int,
        one_way_s: npt.ArrayLike | None,
        classes: npt.NDArray[np.int64] | None = None,
    ) -> FloatArray:
        if one_way_s is None and classes is not None and self.fleet is not None:
            return class_delays(self.fleet, classes, seed)
        if one_way_s is None:
            return self.one_way_s(len(workload), seed)
        delays = np.ascontiguousarray(one_way_s, dtype=np.float64)
        if delays.shape != (len(workload),):
            raise InvalidInputError(
                f"one_way_s has shape {delays.shape}; fix: pass one delay per request ({len(workload)})"
            )
        return delays

    def _simulator(
        self, workload: Workload, delays: FloatArray, policy: Policy, classes: npt.NDArray[np.int64] | None
    ) -> Simulator:
        for device in [self.device] if self.fleet is None else self.fleet.devices():
            check_horizon(workload, self.cloud, device)
        simulator = Simulator(
            arrival_s=workload.arrival_s,
            prompt_tokens=workload.prompt_tokens,
            output_tokens=workload.output_tokens,
            one_way_s=delays,
            cloud=self.cloud_config(),
            device=self.device_config(),
            bandwidth_bps=self.network.bandwidth_bps,
            qoe_ttft_s=self.slo.ttft_s,
            qoe_tokens_per_s=self.qoe_tokens_per_s,
            prompt_bytes_per_token=self.cloud.prompt_bytes_per_token or 0.0,
            stream_bytes_per_token=self.cloud.stream_bytes_per_token or 0.0,
            when_device_busy=when_device_busy(self, policy),
            **conversation_inputs(workload, self),
        )
        if classes is not None:
            simulator.set_fleet(**fleet_arguments(self, classes))
        return simulator

    def record_timelines(
        self,
        workload: Workload,
        policy: Policy | str,
        requests: Sequence[int],
        *,
        seed: int = 0,
        one_way_s: npt.ArrayLike | None = None,
    ) -> dict[int, dict[str, Any]]:
        """Simulates ``workload`` as `run` does (planning in Python), recording the token timelines of
        ``requests``.

        Returns:
            By request: ``request``, ``arrival_s``, ``prompt_tokens``, ``output_tokens``, ``one_way_s``,
            ``mode`` and ``k`` of its plan (``k`` -1 outside a split), then, in seconds from the request's
            arrival, ``cloud_arrivals_s``, ``displays_s``, ``from_cloud``, ``handoff_s`` (None without a
            hand-off) and ``handoff_estimates`` (``(n, 2)``: when the hand-off estimate was set or
            changed, and to what).

        Raises:
            InvalidInputError: A request out of range, or what `run` raises.
        """
        outside = [request for request in requests if not 0 <= request < len(workload)]
        if outside:
            raise InvalidInputError(f"timeline requests {outside}; fix: pass indices below {len(workload)}")
        chosen = make_policy(policy) if isinstance(policy, str) else policy
        classes = None if self.fleet is None else request_classes(self.fleet, workload, seed)
        delays = self._delays(workload, seed, one_way_s, classes)
        simulator = self._simulator(workload, delays, chosen, classes)
        for request in requests:
            simulator.record_timeline(request)
        policies = self._policies(chosen, workload)
        plans = plan_each_request(simulator, policies, workload, delays, record=requests, classes=classes)
        return timeline_records(simulator, workload, delays, requests, plans)

"""Running a workload through the simulator under a policy.

`simulate` (or `Scenario.run`) samples one network delay per request, builds the native
``pdcore._core.Simulator`` and runs it with the GIL released. A built-in policy gives the simulator its rule
(`Policy.native`), so every request is planned inside Rust; a custom policy is asked per request through
the decision loop (the simulator advances until a request arrives, the policy plans it, and the loop
continues). Both paths plan with the same cost model and give identical results.

Adapters from the profiles to the simulator's configuration records, with the values the profiles do not
carry: ``kv_link_bytes_per_s`` (the link that moves a KV cache from the prefill to the decode pool of a
disaggregated cloud): `DEFAULT_KV_LINK_BYTES_PER_S`, 25 GB/s, one 200 Gbit/s NIC (HDR InfiniBand or 200G
RoCE) per server, unless the cloud profile carries its own. The device's KV bytes per token (the size of the
cache a kv-transfer ships to the device) is the device profile's ``kv_bytes_per_token``.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from pdcore._core import CloudConfig, DeviceCost, Plan, Prices, Simulator
from pdcore.exceptions import InvalidInputError
from pdcore.limits import MAX_REPLICAS, check_int
from pdcore.outputs import atomic_path, open_text
from pdcore.policies.base import DEFAULT_K_SITES, CloudLoad, Policy, PolicyContext, RequestInfo
from pdcore.policies.builtin import make_policy
from pdcore.profiles.cloud import CloudProfile
from pdcore.profiles.device import DeviceProfile
from pdcore.profiles.network import NetworkProfile
from pdcore.profiles.registry import profile_provenance
from pdcore.sim.accounting import BILL_COLUMNS, bill, prices
from pdcore.sim.horizon import check_horizon
from pdcore.sim.metrics import DECODED_AT, aggregate, per_turn
from pdcore.slo import DEFAULT_QOE_TOKENS_PER_S, SLO, slo_met
from pdcore.traces.workload import Workload

__all__ = [
    "DEFAULT_KV_LINK_BYTES_PER_S",
    "DEPLOYMENTS",
    "K_SITES",
    "MODES",
    "SERVED_BY",
    "Scenario",
    "SimResult",
    "simulate",
]

DEFAULT_KV_LINK_BYTES_PER_S = 25e9
"""Prefill-to-decode KV link of a disaggregated cloud: 200 Gbit/s, in bytes per second."""

DEPLOYMENTS = ("colocated", "disaggregated")
"""The cloud deployments the simulator models."""

K_SITES = ("pool", "prefill", "both")
"""Where a disaggregated cloud may decode P/D-Device's ``k`` tokens (`Scenario.k_sites`)."""

MODES = ("cloud", "device", "pd", "naive", "kv-transfer", "race", "disco", "spec")
"""Plan modes, indexed by the simulator's ``mode`` result."""

SERVED_BY = ("cloud", "device", "both")
"""Who displayed a request's tokens, indexed by the simulator's ``served_by`` result."""

_RESULT_COLUMNS = (
    "ttft_s",
    "tpot_s",
    "max_gap_s",
    "e2e_s",
    "handoff_gap_s",
    "handoff_stall_s",
    "handoff_pos",
    "qoe",
    "cloud_ttft_s",
    "cloud_tpot_s",
    "cloud_prefill_gpu_s",
    "cloud_decode_gpu_s",
    "cloud_decode_tokens",
    "cloud_tokens_kept",
    "cloud_tokens_discarded",
    "device_prefill_tokens",
    "device_decode_tokens",
    "displayed_tokens",
    "finish_s",
    "refine_ratio",
    "bytes_up",
    "bytes_down",
    "radio_s",
    *BILL_COLUMNS,
)

FloatArray = npt.NDArray[np.float64]


CSV_CHUNK_ROWS = 65536
"""Rows `SimResult.to_csv` formats at a time."""


def _csv_cells(values: npt.NDArray[Any]) -> npt.NDArray[np.str_]:
    """One column's CSV cells: booleans as true/false, floats to 9 significant digits, NaN as empty."""
    if values.dtype == object:
        return values.astype(str)
    if values.dtype == np.bool_:
        return np.where(values, "true", "false")
    if np.issubdtype(values.dtype, np.integer):
        return values.astype(str)
    text = np.char.mod("%.9g", values)
    return np.where(np.isfinite(values), text, "")


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
        slo: The objectives (also the default ``max_tpot`` of the policies).
        qoe_tokens_per_s: The QoE metric's expected token delivery speed; its expected TTFT is the TTFT SLO.
        kv_link_bytes_per_s: Prefill-to-decode KV link of a disaggregated cloud, bytes per second.
        device_kv_bytes_per_token: Override of the device profile's ``kv_bytes_per_token``.
        cost_weight: The optimizer's weight on cloud dollars (`pdcore.optimize.Optimizer`), for the
            automatic split policies that set none of their own.
        energy_weight: The optimizer's weight on device energy, likewise.
        k_sites: Where a disaggregated cloud lets P/D-Device's ``k`` tokens be decoded: ``"pool"`` (the
            decode pool after a KV transfer, as any request), ``"prefill"`` (the prefill instance that
            prefilled the prompt) or ``"both"`` (each plan says; ``pd-device:k_site=auto`` picks).
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

    def __post_init__(self) -> None:
        """Checks the deployment, replica counts and rates.

        Raises:
            InvalidInputError: An unknown deployment, a replica count below 1, or a rate that is not a
                finite number above 0.
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
            base_s=cloud.base_s,
            prefill_token_s=cloud.prefill_token_s,
            prefill_attn_s=cloud.prefill_attn_s,
            decode_seq_s=cloud.decode_seq_s,
            decode_context_s=cloud.decode_context_s,
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
        """The scenario as a JSON-ready dict (the ``config`` object of a report)."""
        cloud, device = profile_provenance(self.cloud), profile_provenance(self.device)
        out: dict[str, Any] = {
            # a user's file is named by its path, never by the name it may share with a shipped profile
            "cloud_profile": cloud["name"] if cloud["shipped"] else cloud["path"] or cloud["name"],
            "device_profile": device["name"] if device["shipped"] else device["path"] or device["name"],
            "profiles": {"cloud": cloud, "device": device},
            "network": {
                "name": self.network.name,
                "rtt_s": self.network.rtt_s,
                "bandwidth_bps": self.network.bandwidth_bps,
                "jitter_s": self.network.jitter_s,
            },
            "deployment": self.deployment,
            "slo": {"ttft_s": self.slo.ttft_s, "max_tpot_s": self.slo.max_tpot_s},
            "qoe_tokens_per_s": self.qoe_tokens_per_s,
        }
        if self.deployment == "colocated":
            out["replicas"] = self.replicas
        else:
            out["prefill_replicas"] = self.prefill_replicas
            out["decode_replicas"] = self.decode_replicas
            out["kv_link_bytes_per_s"] = self.kv_link()
            out["k_sites"] = self.k_sites
        if self.cost_weight or self.energy_weight:
            out["weights"] = {"cost": self.cost_weight, "energy": self.energy_weight}
        return out

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
        delays = self._delays(workload, seed, one_way_s)
        simulator = self._simulator(workload, delays)
        chosen.prepare(self.context(workload))
        native = chosen.native()
        if native is not None:
            simulator.run_policy(native)
        else:
            _plan_in_python(simulator, chosen, workload, delays)
        results = self._priced(dict(simulator.results()))
        return SimResult(
            policy=chosen.name,
            workload=workload,
            one_way_s=delays,
            results=results,
            summary={key: float(value) for key, value in simulator.summary().items()},
            slo=self.slo,
            seed=int(seed),
        )

    def prices(self) -> Prices | None:
        """The deployment's prices (`pdcore.sim.accounting.prices`), or None when a profile lacks them."""
        return prices(self.cloud, self.device, self.network)

    def _priced(self, results: dict[str, npt.NDArray[Any]]) -> dict[str, npt.NDArray[Any]]:
        """The results with their bill (`pdcore.sim.accounting.bill`); bytes are NaN without ``[wire]``."""
        if self.cloud.prompt_bytes_per_token is None:
            results["bytes_up"] = np.full(len(results["ttft_s"]), np.nan)
            results["bytes_down"] = np.full(len(results["ttft_s"]), np.nan)
        return results | bill(results, self.prices())

    def _delays(self, workload: Workload, seed: int, one_way_s: npt.ArrayLike | None) -> FloatArray:
        if one_way_s is None:
            return self.one_way_s(len(workload), seed)
        delays = np.ascontiguousarray(one_way_s, dtype=np.float64)
        if delays.shape != (len(workload),):
            raise InvalidInputError(
                f"one_way_s has shape {delays.shape}; fix: pass one delay per request ({len(workload)})"
            )
        return delays

    def _simulator(self, workload: Workload, delays: FloatArray) -> Simulator:
        check_horizon(workload, self.cloud, self.device)
        return Simulator(
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
            **conversation_inputs(workload, self),
        )

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
        delays = self._delays(workload, seed, one_way_s)
        simulator = self._simulator(workload, delays)
        for request in requests:
            simulator.record_timeline(request)
        chosen.prepare(self.context(workload))
        arrivals = workload.arrival_s.tolist()
        prompts = workload.prompt_tokens.tolist()
        delay_list = delays.tolist()
        plans: dict[int, tuple[str, int]] = {}
        wanted = set(requests)
        while (index := simulator.next_decision()) is not None:
            info = request_info(
                simulator, workload, index, arrivals[index], prompts[index], delay_list[index]
            )
            plan = chosen.plan(info, CloudLoad.from_mapping(simulator.cloud_load()))
            if index in wanted:
                plans[index] = (plan.mode, plan.k if plan.mode in {"pd", "naive"} else -1)
            simulator.decide(index, plan)
        out: dict[int, dict[str, Any]] = {}
        for request in requests:
            recorded = simulator.timeline(request)
            if recorded is None:  # pragma: no cover - every request in range was recorded
                raise InvalidInputError(
                    f"request {request} recorded no timeline; fix: pick a request in range"
                )
            start = float(workload.arrival_s[request])
            handoff = recorded.get("handoff_s")
            mode, k = plans.get(request, ("", -1))
            out[request] = {
                "request": request,
                "arrival_s": start,
                "prompt_tokens": int(workload.prompt_tokens[request]),
                "output_tokens": int(workload.output_tokens[request]),
                "one_way_s": float(delays[request]),
                "mode": mode,
                "k": k,
                "cloud_arrivals_s": np.asarray(recorded["cloud_arrivals_s"], dtype=np.float64) - start,
                "displays_s": np.asarray(recorded["displays_s"], dtype=np.float64) - start,
                "from_cloud": np.asarray(recorded["from_cloud"], dtype=np.bool_),
                "handoff_s": None if handoff is None else float(handoff) - start,
                "handoff_estimates": np.column_stack(
                    (recorded["handoff_estimates_at_s"] - start, recorded["handoff_estimates_s"] - start)
                ).reshape(-1, 2),
            }
        return out


def conversation_inputs(workload: Workload, scenario: Scenario) -> dict[str, Any]:
    """The simulator's conversation arguments: none for a single-turn workload (every request a first turn,
    no cache can hit), else the workload's columns and the two caches' budgets from the profiles."""
    if not workload.multi_turn:
        return {}
    return {
        "session": workload.session,
        "turn": workload.turn,
        "parent": workload.parent,
        "shared_prefix_tokens": workload.shared_prefix_tokens,
        "block_offsets": workload.block_offsets,
        "block_ids": workload.block_ids,
        "block_tokens": workload.block_tokens,
        "device_cache_tokens": scenario.device.session_cache_tokens,
        "cloud_cache_tokens": scenario.cloud.prefix_cache_capacity,
    }


def request_info(
    simulator: Simulator, workload: Workload, index: int, arrival: float, prompt: int, delay: float
) -> RequestInfo:
    """What a policy sees of request ``index`` at its decision point, cached tokens included."""
    if not workload.multi_turn:
        return RequestInfo(index, arrival, prompt, delay)
    device_cached, cloud_cached = simulator.cached(index)
    return RequestInfo(
        index,
        arrival,
        prompt,
        delay,
        session=int(workload.session[index]),
        turn=int(workload.turn[index]),
        device_cached_tokens=device_cached,
        cloud_cached_tokens=cloud_cached,
    )


def _plan_in_python(simulator: Simulator, policy: Policy, workload: Workload, delays: FloatArray) -> None:
    """The decision loop: the simulator runs until a request arrives, ``policy`` plans it, and so on."""
    arrivals = workload.arrival_s.tolist()
    prompts = workload.prompt_tokens.tolist()
    delay_list = delays.tolist()
    plan = policy.plan
    load = simulator.cloud_load
    decide = simulator.decide
    next_decision = simulator.next_decision
    while (index := next_decision()) is not None:
        decision = plan(
            request_info(simulator, workload, index, arrivals[index], prompts[index], delay_list[index]),
            CloudLoad.from_mapping(load()),
        )
        if not isinstance(decision, Plan):
            raise InvalidInputError(
                f"{type(policy).__name__}.plan() returned {decision!r} for request {index}; fix: return a "
                "pdcore.Plan"
            )
        decide(index, decision)


@dataclass(frozen=True, eq=False)
class SimResult:
    """The outcome of one run.

    Attributes:
        policy: The policy's name.
        workload: The requests simulated.
        one_way_s: The per-request one-way delays used.
        results: ``Simulator.results()``: one array per metric, one entry per request, plus
            ``refine_ratio``, the kept fraction of the prompt each request's plan gave the device, and
            the bill (`pdcore.sim.accounting.BILL_COLUMNS`).
        summary: ``Simulator.summary()``: run counters and the inter-token latency distribution.
        slo: The objectives the attainment figures use.
        seed: The seed of the network delays.
    """

    policy: str
    workload: Workload
    one_way_s: FloatArray
    results: Mapping[str, npt.NDArray[Any]]
    summary: Mapping[str, float]
    slo: SLO
    seed: int

    @property
    def duration_s(self) -> float:
        """From the first arrival to the last displayed token, seconds."""
        finish = np.asarray(self.results["finish_s"], dtype=np.float64)
        return float(np.nanmax(finish)) if np.isfinite(finish).any() else 0.0

    def slo_met(self) -> npt.NDArray[np.bool_]:
        """Per request: whether both the TTFT and the TPOT objective were met."""
        return slo_met(self.results, self.slo)

    def aggregate(self) -> dict[str, Any]:
        """The report of this run (``docs/schema.md``, one entry of ``policies``); a multi-turn workload's
        adds ``per_turn`` (`pdcore.sim.metrics.per_turn`)."""
        report = aggregate(self.results, self.summary, slo=self.slo, duration_s=self.duration_s)
        if self.workload.multi_turn:
            report["per_turn"] = per_turn(self.results, self.workload.turn)
        return report

    def columns(self) -> dict[str, npt.NDArray[Any]]:
        """Per-request table: the inputs, then every result; ``mode``, ``served_by`` and ``k_site`` as
        names."""
        modes = np.asarray((*MODES, "none"), dtype=object)
        mode_index = np.minimum(np.asarray(self.results["mode"], dtype=np.int64), len(MODES))
        served = np.asarray(SERVED_BY, dtype=object)
        decoded_at = np.asarray(DECODED_AT, dtype=object)
        table: dict[str, npt.NDArray[Any]] = {
            "request": np.arange(len(self.workload), dtype=np.int64),
            "arrival_s": self.workload.arrival_s,
            "prompt_tokens": self.workload.prompt_tokens,
            "output_tokens": self.workload.output_tokens,
            "one_way_s": self.one_way_s,
            "mode": modes[mode_index],
            "served_by": served[np.asarray(self.results["served_by"], dtype=np.int64)],
            "k_site": decoded_at[np.asarray(self.results["k_site"], dtype=np.int64)],
        }
        for name in _RESULT_COLUMNS:
            table[name] = np.asarray(self.results[name])
        table["slo_met"] = self.slo_met()
        table["session"] = self.workload.session
        table["turn"] = self.workload.turn
        for name in ("device_cached_tokens", "cloud_cached_tokens"):
            table[name] = np.asarray(self.results[name])
        return table

    def to_csv(self, path: str | Path) -> None:
        """Writes `columns` as CSV: a header, one row per request, empty cells for undefined values.

        Rows are formatted and written in chunks of `CSV_CHUNK_ROWS`, so memory beyond the result itself
        stays bounded, and the file appears whole or not at all (`pdcore.outputs.open_text`).
        """
        table = self.columns()
        with open_text(path) as handle:
            handle.write(",".join(table) + "\n")
            for start in range(0, len(self.workload), CSV_CHUNK_ROWS):
                cells = [_csv_cells(values[start : start + CSV_CHUNK_ROWS]) for values in table.values()]
                handle.write("\n".join(",".join(row) for row in zip(*cells, strict=True)))
                handle.write("\n")

    def to_parquet(self, path: str | Path) -> None:
        """Writes `columns` as Parquet (needs ``pyarrow``).

        Raises:
            InvalidInputError: ``pyarrow`` is not installed.
        """
        try:
            pa: Any = importlib.import_module("pyarrow")
            pq: Any = importlib.import_module("pyarrow.parquet")
        except ImportError:
            raise InvalidInputError(
                f"cannot write {str(path)!r}: Parquet output needs pyarrow; fix: `pip install pyarrow`, "
                "or write .csv instead"
            ) from None
        table = self.columns()
        arrays = {
            name: pa.array(values.tolist() if values.dtype == object else values)
            for name, values in table.items()
        }
        with atomic_path(path) as temporary:
            pq.write_table(pa.table(arrays), str(temporary))


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

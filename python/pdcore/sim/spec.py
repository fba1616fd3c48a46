"""One run specification: what a run is, as two small picklable records, each built in one place.

- `WorkloadSpec` names the requests: a trace file, or one of the seeded synthetic workloads (`SYNTHETIC`),
  with how many to keep and how fast to replay them. `WorkloadSpec.load` reads or draws them; it is the
  one place that chooses between a trace and a synthetic workload.
- `ScenarioSpec` names the environment: the device and cloud profiles by name or path, the network preset
  and an optional round-trip time, the cloud's deployment and replica counts, where ``k`` tokens may be
  decoded, the objectives, the QoE speed, the KV links, the optimizer's weights and whether a device serves
  one answer at a time. `ScenarioSpec.build`
  loads each profile once and returns the `Scenario` every run receives.

Both are frozen and pickle to a few hundred bytes. The command line turns its flags into them, the report
builds them from its settings, and a sweep's task carries them to its worker (`pdcore.sim.sweep`): names
travel only as far as these loaders; past them, built objects travel.

Each also lists the files it reads (`WorkloadSpec.inputs`, `ScenarioSpec.inputs`; `policy_inputs` for the
files named in policy settings, `named_input` for a flag that takes a name or a path), so that a command
compares its outputs with every input before any work (`pdcore.outputs.check_outputs`).
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from pdcore.exceptions import InvalidInputError
from pdcore.fleet import load_fleet
from pdcore.inputs import names_file
from pdcore.policies import split_policy_specs
from pdcore.policies.base import DEFAULT_K_SITES
from pdcore.profiles.cloud import CloudProfile
from pdcore.profiles.device import DeviceProfile
from pdcore.profiles.network import NetworkProfile
from pdcore.profiles.registry import (
    DEFAULT_CLOUD,
    DEFAULT_DEVICE,
    DEFAULT_NETWORK,
    load_cloud_profile,
    load_device_profile,
    network_preset,
)
from pdcore.sim.scenario import DEFAULT_KV_LINK_BYTES_PER_S, Scenario
from pdcore.slo import DEFAULT_MAX_TPOT_S, DEFAULT_QOE_TOKENS_PER_S, DEFAULT_TTFT_SLO_S, SLO
from pdcore.traces import (
    Workload,
    load_trace,
    synthetic_default,
    synthetic_long_answer,
    synthetic_multi_turn,
    trace_path,
)

__all__ = [
    "SYNTHETIC",
    "SYNTHETIC_RATE_RPS",
    "SYNTHETIC_REQUESTS",
    "ScenarioSpec",
    "WorkloadSpec",
    "named_input",
    "policy_inputs",
]

SYNTHETIC_REQUESTS = 2000
"""Requests of a synthetic workload unless told otherwise."""

SYNTHETIC_RATE_RPS = 5.5
"""Arrival rate of the synthetic default and multi-turn workloads unless told otherwise, requests per
second (the Azure conversation trace's)."""

_DRAWN: dict[str, tuple[Callable[..., Workload], float]] = {
    "default": (synthetic_default, SYNTHETIC_RATE_RPS),
    "multi-turn": (synthetic_multi_turn, SYNTHETIC_RATE_RPS),
    "long-answer": (synthetic_long_answer, 1.0),
}

SYNTHETIC = tuple(_DRAWN)
"""The seeded synthetic workloads: ``"default"`` (`pdcore.traces.synthetic_default`, fitted to the Azure
conversation trace), ``"multi-turn"`` (`pdcore.traces.synthetic_multi_turn`, sessions whose context grows)
and ``"long-answer"`` (`pdcore.traces.synthetic_long_answer`, its prompts with 1-4k-token answers, drawn at
1 request per second unless told otherwise)."""


def _positive_scale(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0.0):
        raise InvalidInputError(f"{name} = {value!r}; fix: pass a finite number above 0, e.g. 2.0")


@dataclass(frozen=True)
class WorkloadSpec:
    """A workload by reference: a trace file, or a seeded synthetic workload, and how to replay it.

    Attributes:
        trace: Path of an Azure CSV or Mooncake JSONL trace, or the name of a registered public trace
            (`pdcore.traces.registry`), which becomes the path of its cached file (`trace_path`); None for
            the synthetic workload.
        seed: Seed of the synthetic workload (ignored for a trace).
        requests: Requests of the synthetic workload.
        rate_rps: Arrival rate of the synthetic workload, requests per second; None (the default) takes
            the synthetic workload's own (`SYNTHETIC`).
        limit: Keep only the first ``limit`` requests.
        output_scale: Multiply every output length by this (rounded, at least 1): the same arrivals and
            prompts with longer or shorter answers.
        synthetic: Which synthetic workload (`SYNTHETIC`) without a trace.
        rate_scale: Replay the workload this many times faster (after the limit).
    """

    trace: str | None = None
    seed: int = 0
    requests: int = SYNTHETIC_REQUESTS
    rate_rps: float | None = None
    limit: int | None = None
    output_scale: float = 1.0
    synthetic: str = "default"
    rate_scale: float = 1.0

    def __post_init__(self) -> None:
        """Checks the synthetic kind and the scales, and fills in the synthetic workload's own rate.

        Raises:
            InvalidInputError: An unknown synthetic workload, one named beside a trace, a scale that is
                not a finite number above 0, or a trace name that is unknown or not in the cache.
        """
        if self.trace is not None:
            object.__setattr__(self, "trace", trace_path(self.trace))
        if self.synthetic not in _DRAWN:
            raise InvalidInputError(
                f"synthetic = {self.synthetic!r} is unknown; fix: use one of {', '.join(SYNTHETIC)}"
            )
        if self.trace is not None and self.synthetic != "default":
            raise InvalidInputError(
                f"synthetic = {self.synthetic!r} draws a workload and trace = {self.trace!r} reads one; fix: "
                "pass one of them"
            )
        if self.rate_rps is None:
            object.__setattr__(self, "rate_rps", _DRAWN[self.synthetic][1])
        _positive_scale("output_scale", self.output_scale)
        _positive_scale("rate_scale", self.rate_scale)

    def replace(self, **changes: Any) -> WorkloadSpec:
        """A copy with some fields changed (`dataclasses.replace`)."""
        return dataclasses.replace(self, **changes)

    def inputs(self) -> dict[str, str]:
        """The file the workload reads, by flag: ``{"--trace": path}``, or nothing for a synthetic one."""
        return {} if self.trace is None else {"--trace": self.trace}

    def load(self) -> Workload:
        """Reads the trace or draws the synthetic workload, keeps the first ``limit`` requests, scales its
        answers by ``output_scale`` and replays it ``rate_scale`` times faster (uncached: a sweep's worker
        caches per process).

        Raises:
            InvalidInputError: The trace cannot be read, or a setting is out of range.
        """
        if self.trace is None:
            draw, own_rate = _DRAWN[self.synthetic]
            rate = own_rate if self.rate_rps is None else self.rate_rps
            workload = draw(seed=self.seed, n_requests=self.requests, rate_rps=rate)
        else:
            workload = load_trace(self.trace)
        return _longer_answers(workload.limit(self.limit), self.output_scale).scaled(self.rate_scale)


def _longer_answers(workload: Workload, scale: float) -> Workload:
    """``workload`` with every output length multiplied by ``scale`` (rounded, at least 1)."""
    if scale == 1.0:
        return workload
    outputs = np.maximum(np.rint(workload.output_tokens * scale), 1.0).astype(np.int64)
    return Workload(
        name=workload.name,
        arrival_s=workload.arrival_s,
        prompt_tokens=workload.prompt_tokens,
        output_tokens=outputs,
        source=workload.source,
        notes=(*workload.notes, f"output tokens multiplied by {scale:g}"),
        **workload.carried_columns(),
    )


@dataclass(frozen=True)
class ScenarioSpec:
    """The environment of a run by reference; `build` turns it into the `Scenario`.

    Attributes:
        device: Device profile name or .toml path.
        cloud: Cloud profile name or .toml path.
        network: Network preset name.
        rtt_s: Replaces the preset's round-trip time (its bandwidth and jitter are kept); None keeps it.
        deployment: ``"colocated"`` or ``"disaggregated"``.
        replicas: Replicas of a colocated cloud.
        prefill_replicas: Prefill replicas of a disaggregated cloud.
        decode_replicas: Decode replicas of a disaggregated cloud.
        ttft_slo_s: TTFT objective, seconds.
        max_tpot_s: The largest display gap (the TPOT objective, and the policies' default gap), seconds.
        k_sites: Where a disaggregated cloud lets P/D-Device's ``k`` tokens be decoded (`Scenario.k_sites`).
        qoe_tokens_per_s: The QoE metric's expected token delivery speed.
        kv_link_bytes_per_s: Prefill-to-decode KV link of a disaggregated cloud (a cloud profile's own
            link wins), bytes per second.
        device_kv_bytes_per_token: Override of the device profile's ``kv_bytes_per_token``.
        cost_weight: The optimizer's weight on cloud dollars (`Scenario.cost_weight`).
        energy_weight: The optimizer's weight on device energy (`Scenario.energy_weight`).
        one_answer_per_device: A device serves one answer at a time (`Scenario.one_answer_per_device`).
        cloud_model: ``"engine"`` (the cloud profile with its ``[engine]`` per-step overhead) or ``"kernel"``
            (without it; `CloudProfile.with_cloud_model`).
        fleet: A shipped fleet's name or a fleet file's path (`pdcore.fleet.load_fleet`, `Scenario.fleet`);
            None: every request has ``device`` and ``network``.
    """

    device: str = DEFAULT_DEVICE
    cloud: str = DEFAULT_CLOUD
    network: str = DEFAULT_NETWORK
    rtt_s: float | None = None
    deployment: str = "disaggregated"
    replicas: int = 1
    prefill_replicas: int = 1
    decode_replicas: int = 1
    ttft_slo_s: float = DEFAULT_TTFT_SLO_S
    max_tpot_s: float = DEFAULT_MAX_TPOT_S
    k_sites: str = DEFAULT_K_SITES
    qoe_tokens_per_s: float = DEFAULT_QOE_TOKENS_PER_S
    kv_link_bytes_per_s: float = DEFAULT_KV_LINK_BYTES_PER_S
    device_kv_bytes_per_token: float | None = None
    cost_weight: float = 0.0
    energy_weight: float = 0.0
    one_answer_per_device: bool = False
    cloud_model: str = "engine"
    fleet: str | None = None

    def __post_init__(self) -> None:
        """Checks the round-trip time (the rest is checked by `build`, after the profiles are found).

        Raises:
            InvalidInputError: A round-trip time that is not finite seconds >= 0.
        """
        object.__setattr__(self, "device", os.fspath(self.device))
        object.__setattr__(self, "cloud", os.fspath(self.cloud))
        if self.fleet is not None:
            object.__setattr__(self, "fleet", os.fspath(self.fleet))
        if self.rtt_s is not None and not (math.isfinite(self.rtt_s) and self.rtt_s >= 0.0):
            raise InvalidInputError(f"rtt_s = {self.rtt_s!r}; fix: pass finite seconds >= 0, or None")

    def replace(self, **changes: Any) -> ScenarioSpec:
        """A copy with some fields changed (`dataclasses.replace`)."""
        return dataclasses.replace(self, **changes)

    def inputs(self) -> dict[str, str]:
        """The profile and fleet files the scenario reads, by flag (a shipped name reads none)."""
        return (
            named_input("--device", self.device)
            | named_input("--cloud", self.cloud)
            | named_input("--fleet", self.fleet)
        )

    def slo(self) -> SLO:
        """The objectives."""
        return SLO(ttft_s=self.ttft_slo_s, max_tpot_s=self.max_tpot_s)

    def network_profile(self) -> NetworkProfile:
        """The network preset, with its round-trip time replaced when ``rtt_s`` is set."""
        preset = network_preset(self.network)
        if self.rtt_s is None:
            return preset
        return NetworkProfile(
            name=f"{preset.name}@{self.rtt_s * 1e3:g}ms",
            rtt_s=self.rtt_s,
            bandwidth_bps=preset.bandwidth_bps,
            jitter_s=preset.jitter_s,
            description=f"{preset.name} with its round-trip time set to {self.rtt_s * 1e3:g} ms",
            radio=preset.radio,
        )

    def profiles(self) -> tuple[DeviceProfile, CloudProfile, NetworkProfile]:
        """The device profile, the cloud profile and the network, loaded in that order.

        Raises:
            ProfileError: A name is unknown (the message lists the known ones) or a file is invalid.
        """
        cloud = load_cloud_profile(self.cloud).with_cloud_model(self.cloud_model)
        return load_device_profile(self.device), cloud, self.network_profile()

    def build(self) -> Scenario:
        """The `Scenario`: each profile loaded once, then every setting checked.

        Raises:
            ProfileError: A profile is unknown or invalid.
            InvalidInputError: A setting is out of range (`Scenario`).
        """
        device, cloud, network = self.profiles()
        return Scenario(
            cloud=cloud,
            device=device,
            network=network,
            deployment=self.deployment,
            replicas=self.replicas,
            prefill_replicas=self.prefill_replicas,
            decode_replicas=self.decode_replicas,
            slo=self.slo(),
            qoe_tokens_per_s=self.qoe_tokens_per_s,
            kv_link_bytes_per_s=self.kv_link_bytes_per_s,
            device_kv_bytes_per_token=self.device_kv_bytes_per_token,
            k_sites=self.k_sites,
            cost_weight=self.cost_weight,
            energy_weight=self.energy_weight,
            one_answer_per_device=self.one_answer_per_device,
            fleet=None if self.fleet is None else load_fleet(self.fleet),
        )


def named_input(flag: str, name_or_path: str | os.PathLike[str] | None) -> dict[str, str]:
    """``{flag: path}`` when a flag that takes a shipped name or a path names a file
    (`pdcore.inputs.names_file`), else nothing."""
    if name_or_path is None or not names_file(name_or_path):
        return {}
    return {flag: os.fspath(name_or_path)}


def policy_inputs(policies: str | Iterable[str], flag: str = "--policies") -> dict[str, str]:
    """The files named in policy settings (``pd-device:quality=q.toml``), by ``"{key} in {flag} {spec}"``.

    ``policies`` is a comma-separated list (`pdcore.policies.split_policy_specs`) or the specs themselves;
    a setting's value is a file when `pdcore.inputs.names_file` says so, as the settings that read a file
    (a quality curve) tell a path from a shipped name.
    """
    specs = split_policy_specs(policies) if isinstance(policies, str) else list(policies)
    found: dict[str, str] = {}
    for spec in specs:
        _, _, settings = spec.partition(":")
        for setting in re.split(r"[:,]", settings) if settings else []:
            key, sep, value = setting.partition("=")
            if sep and value.strip():
                found |= named_input(f"{key.strip()} in {flag} {spec}", value.strip())
    return found

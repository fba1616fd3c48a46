"""The headline study of ``pdcore reproduce``: its settings (`Settings`, two presets), the fixed choices of
its experiments, the record of one workload's results (`WorkloadRun`), and the study built (`Study`).

`Study.build` is the study's one loader: it builds the scenario from the settings once, loads every device
profile the study names once, and reads or draws every workload once (`pdcore.sim.spec`). Each section of
the report receives the built study, not names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from pdcore.fleet import Fleet
from pdcore.policies import POLICIES as REGISTERED
from pdcore.policies.base import DEFAULT_K_SITES
from pdcore.profiles import DeviceProfile, list_device_profiles, load_device_profile
from pdcore.report.refinement import LoadedCurve
from pdcore.sim.scenario import Scenario
from pdcore.sim.spec import ScenarioSpec, WorkloadSpec
from pdcore.slo import SLO
from pdcore.traces import Workload

__all__ = [
    "EXPLORED_PER_FILTER",
    "EXPLORED_POLICIES",
    "EXPLORED_SAMPLE",
    "FASTER_DEVICE",
    "POLICIES",
    "WHAT_IF",
    "Settings",
    "StageProgress",
    "Study",
    "WorkloadRun",
]

POLICIES = tuple(REGISTERED)
"""The policies of the main table, in its order: every registered policy (`pdcore.policies.POLICIES`), the
rival strategies after pdcore's own."""

FASTER_DEVICE = "llama32-1b-w4a16-8elite-genie"
"""The growth experiment's faster device: the same phone running the 1B model (about 2.4x the prefill)."""

WHAT_IF: dict[str, dict[str, Any]] = {
    "2 decode replicas": {"decode_replicas": 2},
    "H100 cloud": {"cloud": "llama3-8b-h100"},
}
"""Cloud-side changes the report tries when the largest display gap misses its target."""

EXPLORED_POLICIES = ("pd-device", "naive-split", "cloud-only")
"""The policies whose timelines the explorer of ``report.html`` shows side by side."""

EXPLORED_PER_FILTER = 4
"""Requests the explorer embeds per filter (slowest TTFT, largest gap, largest hand-off stall)."""

EXPLORED_SAMPLE = 6
"""Requests the explorer embeds evenly spaced over the workload, first and last included."""

StageProgress = Callable[[str, int, int], None]
"""Called with (stage, done, total) as simulations finish."""


@dataclass(frozen=True)
class Settings:
    """What the study runs; `Settings.full` and `Settings.quick_preset` are the two presets.

    Attributes:
        device: The device profile of the headline experiments.
        cloud: The cloud profile.
        network: The network preset.
        deployment: The cloud deployment.
        k_sites: Where a disaggregated cloud lets P/D-Device's ``k`` tokens be decoded.
        seed: Seed of the synthetic workload and the network delays.
        quick: Whether this is the quick preset.
        synthetic_requests: Requests of the embedded default workload.
        trace_limit: Requests kept of each trace (None: all).
        window: Requests per capacity probe, and of the loaded operating point.
        target: Attainment a rate must reach in a capacity search.
        slo: The objectives.
        tpot_grid_s: TPOT objectives of the capacity-over-SLO sweep.
        rtt_grid_s: Round-trip times of the RTT sweep.
        devices: Device profiles of the device sweep.
        output_scales: Answer-length multipliers of the growth experiment.
        refine_ratio: Refinement ratio the growth experiment allows.
        prompt_lengths: Prompt lengths of the ``k*`` table.
        quality: The measured refinement curve to report (a shipped name or a .toml path; None: none).
        explore: Requests (by index) whose timelines the explorer of ``report.html`` embeds besides
            those it picks (`explored_requests`), in every workload that has them.
        fleet: The ``--fleet`` of the fleet section (a shipped name or a .toml path; None: no section).
    """

    device: str
    cloud: str
    network: str
    deployment: str = "disaggregated"
    k_sites: str = DEFAULT_K_SITES
    seed: int = 0
    quick: bool = False
    synthetic_requests: int = 2000
    trace_limit: int | None = None
    window: int = 1000
    target: float = 0.9
    slo: SLO = field(default_factory=SLO)
    tpot_grid_s: tuple[float, ...] = (0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.1)
    rtt_grid_s: tuple[float, ...] = (0.001, 0.01, 0.02, 0.04, 0.07, 0.1, 0.15, 0.2, 0.3)
    devices: tuple[str, ...] = ()
    output_scales: tuple[float, ...] = (2.0, 4.0)
    refine_ratio: float = 0.5
    prompt_lengths: tuple[int, ...] = tuple(sorted({round(16 * 2 ** (step / 2)) for step in range(19)}))
    quality: str | None = None
    explore: tuple[int, ...] = ()
    fleet: str | None = None

    @classmethod
    def full(
        cls, *, device: str, cloud: str, network: str, seed: int = 0, quality: str | None = None
    ) -> Settings:
        """The full preset: every sweep point, capacity windows of 1000 requests."""
        return cls(
            device=device,
            cloud=cloud,
            network=network,
            seed=seed,
            devices=tuple(list_device_profiles()),
            quality=quality,
        )

    @classmethod
    def quick_preset(
        cls, *, device: str, cloud: str, network: str, seed: int = 0, quality: str | None = None
    ) -> Settings:
        """The quick preset: a small default workload, 300-request windows, three points per sweep."""
        devices = tuple(dict.fromkeys((device, FASTER_DEVICE)))
        return cls(
            device=device,
            cloud=cloud,
            network=network,
            seed=seed,
            quick=True,
            synthetic_requests=400,
            trace_limit=2000,
            window=300,
            tpot_grid_s=(0.03, 0.05, 0.1),
            rtt_grid_s=(0.001, 0.02, 0.1),
            devices=devices,
            output_scales=(4.0,),
            prompt_lengths=(64, 256, 1024, 4096),
            quality=quality,
        )

    def describe(self) -> dict[str, Any]:
        """The settings as a JSON-ready dict."""
        return {
            "device_profile": self.device,
            "cloud_profile": self.cloud,
            "network": self.network,
            "deployment": self.deployment,
            "k_sites": self.k_sites,
            "seed": self.seed,
            "quick": self.quick,
            "synthetic_requests": self.synthetic_requests,
            "trace_limit": self.trace_limit,
            "capacity": {"window": self.window, "target": self.target},
            "slo": {"ttft_s": self.slo.ttft_s, "max_tpot_s": self.slo.max_tpot_s},
            "tpot_grid_s": list(self.tpot_grid_s),
            "rtt_grid_s": list(self.rtt_grid_s),
            "devices": list(self.devices),
            "output_scales": list(self.output_scales),
            "refine_ratio": self.refine_ratio,
            "quality_curve": self.quality,
            "explore": list(self.explore),
            "policies": list(POLICIES),
        } | ({} if self.fleet is None else {"fleet": self.fleet})

    def scenario_spec(self) -> ScenarioSpec:
        """The environment of the headline experiments (each experiment changes some of it)."""
        return ScenarioSpec(
            device=self.device,
            cloud=self.cloud,
            network=self.network,
            deployment=self.deployment,
            k_sites=self.k_sites,
            ttft_slo_s=self.slo.ttft_s,
            max_tpot_s=self.slo.max_tpot_s,
        )


@dataclass
class WorkloadRun:
    """Everything measured on one workload: JSON-ready sections plus the arrays the plots need.

    Attributes:
        key: The workload's key in the report.
        spec: The workload reference.
        workload: The workload itself (for its summary).
        sections: JSON-ready results by section name.
        ttft_s: Per-request TTFT by operating point (``"trace_rate"``, ``"under_load"``) and policy.
        timelines: Recorded timelines by policy (``pd-device``, ``naive-split``).
        explored: The timelines the explorer of ``report.html`` embeds, by request and policy.
        explored_reasons: Why each explored request was picked.
        explored_filters: Explored request ids by filter name, in the order shown.
    """

    key: str
    spec: WorkloadSpec
    workload: Workload
    sections: dict[str, Any] = field(default_factory=dict)
    ttft_s: dict[str, dict[str, npt.NDArray[np.float64]]] = field(default_factory=dict)
    timelines: dict[str, dict[str, Any]] = field(default_factory=dict)
    explored: dict[int, dict[str, dict[str, Any]]] = field(default_factory=dict)
    explored_reasons: dict[int, list[str]] = field(default_factory=dict)
    explored_filters: dict[str, list[int]] = field(default_factory=dict)


@dataclass(frozen=True)
class Study:
    """The study built: what every section of the report receives.

    Attributes:
        settings: The settings.
        scenario: The environment of the headline experiments, built once from the settings.
        devices: Every device profile the study names (its own, the faster one, the device sweep's and
            every shipped one), loaded once, by the name the settings give.
        runs: The workloads, the embedded default first, then one per trace.
        curve: The measured refinement curve to report (None: no refinement section).
        fleet: The fleet of the fleet section, loaded once (None: no fleet section).
        progress: Called with (stage, done, total) as the work advances.
    """

    settings: Settings
    scenario: Scenario
    devices: Mapping[str, DeviceProfile]
    runs: tuple[WorkloadRun, ...]
    curve: LoadedCurve | None = None
    progress: StageProgress | None = None
    fleet: Fleet | None = None

    @classmethod
    def build(
        cls,
        settings: Settings,
        scenario: Scenario,
        traces: Sequence[str],
        *,
        curve: LoadedCurve | None = None,
        progress: StageProgress | None = None,
        fleet: Fleet | None = None,
    ) -> Study:
        """Loads the study's device profiles and workloads once (``scenario`` is built from
        ``settings.scenario_spec()``)."""
        named = (FASTER_DEVICE, *settings.devices, *list_device_profiles())
        devices = {settings.device: scenario.device}
        devices |= {name: load_device_profile(name) for name in named if name not in devices}
        specs = [WorkloadSpec(seed=settings.seed, requests=settings.synthetic_requests)]
        specs += [WorkloadSpec(trace=trace, limit=settings.trace_limit) for trace in traces]
        taken: set[str] = set()
        runs = []
        for spec in specs:
            workload = spec.load()
            runs.append(WorkloadRun(key=_unique_key(workload.name, taken), spec=spec, workload=workload))
        return cls(settings, scenario, devices, tuple(runs), curve=curve, progress=progress, fleet=fleet)

    def workloads(self) -> dict[str, Workload]:
        """Every workload by its key in the report."""
        return {run.key: run.workload for run in self.runs}

    def stage(self, name: str, done: int, total: int) -> None:
        """Reports progress, if anyone listens."""
        if self.progress is not None:
            self.progress(name, done, total)


def _unique_key(name: str, taken: set[str]) -> str:
    key, suffix = name, 2
    while key in taken:
        key, suffix = f"{name}-{suffix}", suffix + 1
    taken.add(key)
    return key

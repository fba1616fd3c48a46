"""A run over a fleet (`pdcore.fleet.Fleet`): each request's class, network delay, device, plan and bill by
its class, and the results by class.

Rules:

- Each request draws its class from the fleet's seeded mix with the run's seed (`Fleet.draw`), unless the
  workload names each request's class (a trace's ``device_class`` column, `pdcore.traces.class_column`):
  then its class is the one it names, and a name the fleet does not have is refused (`request_classes`).
- Its one-way delay is drawn from its class's network: each distinct network draws ``n`` delays from
  ``np.random.default_rng(seed)`` (as a run without a fleet does from its one network) and a request takes
  the delay at its own index from its class's network. So a one-class fleet over the run's network draws
  the run's delays.
- The simulator gets each class's device (None for a class with no capable device: the cloud alone serves
  it whatever the policy plans, ``pdcore._core.Simulator.set_fleet``) and downlink bandwidth.
- Every class with a device plans with its own copy of the policy, prepared with the run's context in
  which the device and the network are the class's (`class_policies`): the built-in policies' optimizer,
  thresholds and rules see the request's own device. The objectives a policy plans with stay the run's
  (ours: a plan aims at the service's largest gap; a class's own objectives judge its results).
- The bill of each class uses its device's energy and its network's radio (`class_bill`); a class with no
  capable device is billed with the run's device profile, whose only share of its bill is the waiting SoC
  while the connection is open (ours: the phone still waits for the answer; no figure for an older SoC is
  cited here).
- Results by class (`by_class`): per class, its requests' TTFT, largest gap, cloud GPU-s, dollars, device
  energy and battery per request, and its SLO attainment under its own objectives (`ClassSLO`; each one
  not given is the run's).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from pdcore._core import DeviceCost
from pdcore.exceptions import InvalidInputError
from pdcore.fleet import DeviceClass, Fleet
from pdcore.policies.base import Policy, PolicyContext
from pdcore.profiles.network import NetworkProfile
from pdcore.sim.accounting import BILL_COLUMNS, bill, prices
from pdcore.sim.accounting import summary as cost_summary
from pdcore.sim.metrics import summarize
from pdcore.sim.scenario_fields import ScenarioFields
from pdcore.slo import SLO, slo_met

if TYPE_CHECKING:
    from pdcore.traces.workload import Workload

__all__ = [
    "by_class",
    "class_bill",
    "class_delays",
    "class_policies",
    "class_slo",
    "fleet_arguments",
    "fleet_slo_met",
    "request_classes",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def request_classes(fleet: Fleet, workload: Workload, seed: int) -> IntArray:
    """Each request's class index in ``fleet``: from the workload's ``device_class`` names when it has them,
    else the seeded draw (module docstring).

    Raises:
        InvalidInputError: A name that is not a class of the fleet (the first such request, its name, the
            fleet's classes and the fix).
    """
    names = workload.device_class
    if not len(names):
        return fleet.draw(len(workload), seed)
    known = [c.name for c in fleet.classes]
    found, index = np.unique(names, return_inverse=True)
    unknown = [str(name) for name in found if str(name) not in known]
    if unknown:
        first = int(np.flatnonzero(names == unknown[0])[0])
        raise InvalidInputError(
            f"{workload.source}: request {first + 1} names device_class {unknown[0]!r}, which fleet "
            f"{fleet.name!r} has no class for (its classes: {', '.join(known)}; {len(unknown)} unknown "
            "name(s) in all); fix: rename it in the trace to one of those classes, or add a [[class]] of "
            "that name to the fleet file"
        )
    lookup = np.array([known.index(str(name)) for name in found], dtype=np.int64)
    return lookup[index.reshape(-1)]


def class_delays(fleet: Fleet, classes: IntArray, seed: int) -> FloatArray:
    """Each request's one-way delay, drawn from its class's network (module docstring)."""
    count = len(classes)
    delays = np.empty(count, dtype=np.float64)
    drawn: dict[NetworkProfile, FloatArray] = {}
    for index, device_class in enumerate(fleet.classes):
        network = device_class.network
        if network not in drawn:
            drawn[network] = network.sample_one_way_s(count, np.random.default_rng(int(seed)))
        mine = classes == index
        delays[mine] = drawn[network][mine]
    return delays


def fleet_arguments(scenario: ScenarioFields, classes: IntArray) -> dict[str, Any]:
    """The simulator's ``set_fleet`` arguments: each class's device (None: no capable device) and
    downlink, each request's class."""
    assert scenario.fleet is not None
    devices: list[DeviceCost | None] = [
        None if c.device is None else scenario.replace(device=c.device).device_config()
        for c in scenario.fleet.classes
    ]
    return {
        "devices": devices,
        "bandwidth_bps": [c.network.bandwidth_bps for c in scenario.fleet.classes],
        "device_class": np.ascontiguousarray(classes, dtype=np.int64),
    }


def class_policies(policy: Policy, context: PolicyContext, fleet: Fleet) -> list[Policy]:
    """One prepared policy per class (module docstring): a copy of ``policy`` prepared with ``context``
    whose device and network are the class's; ``policy`` itself, prepared with ``context``, for a class
    with no capable device (never asked: the cloud serves it). Classes of one device and network share
    their copy."""
    policy.prepare(context)
    devices = fleet.devices()
    prepared: dict[tuple[int, NetworkProfile], Policy] = {}
    out: list[Policy] = []
    for device_class in fleet.classes:
        if device_class.device is None:
            out.append(policy)
            continue
        key = (devices.index(device_class.device), device_class.network)
        if key not in prepared:
            mine = copy.copy(policy)
            network = device_class.network
            mine.prepare(dataclasses.replace(context, device=device_class.device, network=network))
            prepared[key] = mine
        out.append(prepared[key])
    return out


def class_bill(
    results: Mapping[str, npt.NDArray[Any]], scenario: ScenarioFields, classes: IntArray
) -> dict[str, FloatArray]:
    """The bill columns (`pdcore.sim.accounting.bill`), each request's with its class's prices."""
    assert scenario.fleet is not None
    count = len(classes)
    out = {name: np.full(count, np.nan) for name in BILL_COLUMNS}
    for index, device_class in enumerate(scenario.fleet.classes):
        mine = classes == index
        if not mine.any():
            continue
        device = device_class.device if device_class.device is not None else scenario.device
        priced = prices(scenario.cloud, device, device_class.network)
        billed = bill({name: np.asarray(values)[mine] for name, values in results.items()}, priced)
        for name in BILL_COLUMNS:
            out[name][mine] = billed[name]
    return out


def class_slo(device_class: DeviceClass, slo: SLO) -> SLO:
    """A class's objectives: its own where it gives them, else the run's."""
    own = device_class.slo
    if own is None:
        return slo
    return dataclasses.replace(
        slo,
        ttft_s=slo.ttft_s if own.ttft_s is None else own.ttft_s,
        max_tpot_s=slo.max_tpot_s if own.max_tpot_s is None else own.max_tpot_s,
    )


def fleet_slo_met(
    results: Mapping[str, npt.NDArray[Any]], fleet: Fleet, classes: IntArray, slo: SLO
) -> npt.NDArray[np.bool_]:
    """Per request: whether its class's objectives (`class_slo`) were met."""
    met = np.zeros(len(classes), dtype=np.bool_)
    for index, device_class in enumerate(fleet.classes):
        mine = classes == index
        if mine.any():
            sub = {name: np.asarray(results[name])[mine] for name in ("ttft_s", "tpot_s")}
            met[mine] = slo_met(sub, class_slo(device_class, slo))
    return met


def by_class(
    results: Mapping[str, npt.NDArray[Any]], fleet: Fleet, classes: IntArray, slo: SLO
) -> list[dict[str, Any]]:
    """The ``by_class`` list of a report: one record per class, in the fleet's order (module docstring)."""
    met = fleet_slo_met(results, fleet, classes, slo)
    out: list[dict[str, Any]] = []
    for index, device_class in enumerate(fleet.classes):
        mine = classes == index
        count = int(mine.sum())
        record: dict[str, Any] = device_class.describe() | {"requests": count}
        if count:
            sub = {name: np.asarray(values)[mine] for name, values in results.items()}
            gpu_s = np.asarray(sub["cloud_prefill_gpu_s"], dtype=np.float64) + np.asarray(
                sub["cloud_decode_gpu_s"], dtype=np.float64
            )
            record |= {
                "ttft_s": summarize(sub["ttft_s"]),
                "max_gap_s": summarize(sub["max_gap_s"], maximum=True),
                "cloud_gpu_s_per_request": float(gpu_s.mean()),
                "slo_attainment": float(met[mine].mean()),
                "on_device_share": float(np.mean(np.asarray(sub["device_decode_tokens"]) > 0)),
            }
            if "usd" in sub:
                record["cost"] = cost_summary(sub)
        out.append(record)
    return out

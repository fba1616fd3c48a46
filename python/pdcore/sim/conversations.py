"""What the simulator takes of a run's conversations: the workload's session columns, the two caches'
budgets from the profiles, and whether a device serves one answer at a time.

A request's device is its session's: the turns of a conversation share one device (its session cache),
and single-turn requests each have their own. With ``one_answer_per_device`` (`pdcore.sim.Scenario`; off
by default) a device serves one answer at a time, as the live runtime's does (`pdcore.runtime.device_gate`):
a request whose device is still busy with an earlier answer (prefilling, catching up or decoding for it)
when it arrives is served by the cloud for the whole answer, as a live P/D-Device session serves it
(`pdcore.runtime.planning.BUSY_CLOUD`); under the device-only policy, a run without a cloud, it waits for
the device instead, its TTFT counting the wait, as a live device-only session queues it (``BUSY_WAIT``).
Which rule a run gets is `when_device_busy`'s; the rule, when a device is busy and its reasons are the
Rust simulator's (``rust/src/sim/busy.rs``). Each request's outcome is its ``device_busy`` result
(`DEVICE_BUSY`) and its wait ``device_wait_s``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pdcore import _core
from pdcore.policies.base import Policy
from pdcore.policies.fixed import DeviceOnly
from pdcore.sim.scenario_fields import ScenarioFields

if TYPE_CHECKING:
    from pdcore.traces.workload import Workload

__all__ = ["DEVICE_BUSY", "WHEN_DEVICE_BUSY", "conversation_inputs", "when_device_busy"]

DEVICE_BUSY: tuple[str, ...] = _core.DEVICE_BUSY
"""What the one-answer-per-device rule did to a request, indexed by the simulator's ``device_busy`` result:
``"free"`` (its device was free, its plan left the device alone, or the rule is off), ``"cloud"`` (its
device was busy: the cloud served the whole answer), ``"waited"`` (its device-only plan waited)."""

WHEN_DEVICE_BUSY: tuple[str, ...] = _core.WHEN_DEVICE_BUSY
"""The simulator's rules for a request that finds its device busy (its ``when_device_busy`` argument):
``"cloud"`` (the cloud serves the whole answer) and ``"wait"`` (a device-only plan waits for the device)."""


def when_device_busy(scenario: ScenarioFields, policy: Policy) -> str | None:
    """The simulator's ``when_device_busy`` for ``policy`` in ``scenario`` (module docstring): None without
    ``one_answer_per_device``, ``"wait"`` for the device-only policy, ``"cloud"`` for every other policy (it
    can turn to the cloud, device-alone plans included)."""
    if not scenario.one_answer_per_device:
        return None
    return "wait" if isinstance(policy, DeviceOnly) else "cloud"


def conversation_inputs(workload: Workload, scenario: ScenarioFields) -> dict[str, Any]:
    """The simulator's conversation arguments: none for a single-turn workload (every request a first turn on
    its own device, no cache can hit), else the workload's columns and the two caches' budgets from the
    profiles."""
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

"""What a run's environment shows the code that serves it: its fields, read-only, and three methods.

`pdcore.sim.scenario.Scenario` hands itself to the code that turns it into the simulator's inputs and
records: the conversation arguments (`pdcore.sim.conversations`), the fleet's arguments and bill
(`pdcore.sim.fleet_runs`) and the report's ``config`` record (`pdcore.sim.scenario_record`). They read it
through this Protocol, which the class meets (mypy checks it where the class hands itself over), so they
stand below the class they serve. The fields mean what `Scenario` documents.
"""

from __future__ import annotations

from typing import Any, Protocol

from pdcore._core import DeviceCost
from pdcore.fleet import Fleet
from pdcore.profiles.cloud import CloudProfile
from pdcore.profiles.device import DeviceProfile
from pdcore.profiles.network import NetworkProfile
from pdcore.slo import SLO

__all__ = ["ScenarioFields"]


class ScenarioFields(Protocol):
    """The fields of a run's environment that the code beneath `Scenario` reads (`Scenario` documents
    each)."""

    @property
    def cloud(self) -> CloudProfile: ...
    @property
    def device(self) -> DeviceProfile: ...
    @property
    def network(self) -> NetworkProfile: ...
    @property
    def deployment(self) -> str: ...
    @property
    def replicas(self) -> int: ...
    @property
    def prefill_replicas(self) -> int: ...
    @property
    def decode_replicas(self) -> int: ...
    @property
    def slo(self) -> SLO: ...
    @property
    def qoe_tokens_per_s(self) -> float: ...
    @property
    def k_sites(self) -> str: ...
    @property
    def cost_weight(self) -> float: ...
    @property
    def energy_weight(self) -> float: ...
    @property
    def one_answer_per_device(self) -> bool: ...
    @property
    def fleet(self) -> Fleet | None: ...

    def replace(self, **changes: Any) -> ScenarioFields:
        """A copy with some fields changed."""
        ...

    def kv_link(self) -> float:
        """The prefill-to-decode KV link in bytes per second."""
        ...

    def device_config(self) -> DeviceCost:
        """The simulator's device model."""
        ...

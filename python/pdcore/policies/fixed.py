"""The policies that give every request the same plan: the cloud alone, the device alone, the KV-cache
transfer and the race (the registry's table: `pdcore.policies.builtin`)."""

from __future__ import annotations

from typing import ClassVar

from pdcore._core import NativePolicy, Plan
from pdcore.policies.base import CloudLoad, PacedPolicy, PolicyContext, RequestInfo, check_max_tpot
from pdcore.slo import DEFAULT_MAX_TPOT_S

__all__ = ["CloudOnly", "DeviceOnly", "KVTransfer", "Race"]


class _FixedMode(PacedPolicy):
    """A policy that gives every request the same plan."""

    mode: ClassVar[str]

    def __init__(self, max_tpot_s: float | None = None) -> None:
        self.max_tpot_s = check_max_tpot(max_tpot_s)
        self._plan = Plan(self.mode, max_tpot_s=self.max_tpot_s or DEFAULT_MAX_TPOT_S)

    def prepare(self, context: PolicyContext) -> None:
        self._plan = Plan(self.mode, max_tpot_s=self.max_tpot_s or context.max_tpot_s)

    def plan(self, req: RequestInfo, load: CloudLoad) -> Plan:
        return self._plan

    def native(self) -> NativePolicy | None:
        if type(self).plan is not _FixedMode.plan:
            return None  # a subclass plans in Python
        return NativePolicy.fixed(self._plan)


class CloudOnly(_FixedMode):
    """Every token from the cloud, shown on arrival."""

    name = "cloud-only"
    mode = "cloud"


class DeviceOnly(_FixedMode):
    """Every token from the device: prefill the prompt, then decode."""

    name = "device-only"
    mode = "device"


class KVTransfer(_FixedMode):
    """The cloud prefills and sends the first token and the prompt's KV cache; the device decodes the rest.

    The transfer is bandwidth-bound: ``prompt_tokens * kv_bytes_per_token`` bytes over the device's
    downlink.
    """

    name = "kv-transfer"
    mode = "kv-transfer"


class Race(_FixedMode):
    """Cloud and device both start; the first to produce a token serves the whole request."""

    name = "race"
    mode = "race"

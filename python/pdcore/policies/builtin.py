"""The built-in policies and the registry that names them.

=================  ===============  ==========================================================================
registry name      class            what each request does
=================  ===============  ==========================================================================
``cloud-only``     `CloudOnly`      the cloud prefills and decodes every token
``device-only``    `DeviceOnly`     the device prefills and decodes every token
``pd-device``      `PDDevice`       P/D-Device: the cloud sends the first token plus ``k``, shown through the
                                    speed controller while the device catches up, then the device decodes
``naive-split``    `NaiveSplit`     as P/D-Device, but cloud tokens are shown as they arrive (no controller)
``kv-transfer``    `KVTransfer`     the cloud prefills and ships the prompt's KV cache; the device decodes
``race``           `Race`           both start; whichever shows the first token serves the request
=================  ===============  ==========================================================================

Every policy carries ``max_tpot``, the display gap it aims for; hand-off stalls are measured above it.
Left unset, it is the run's TPOT SLO (`PolicyContext.tpot_slo_s`), or `DEFAULT_MAX_TPOT_S` outside a run.

`make_policy` builds a policy from a registry name with optional settings, such as
``"pd-device:k=8:refine_ratio=0.5"``, which then labels the policy in reports.
"""

from __future__ import annotations

import inspect
import math
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pdcore._core import Plan
from pdcore.exceptions import InvalidInputError, InvalidStateError
from pdcore.optimize.catchup import DEFAULT_MAX_K
from pdcore.policies.base import CloudLoad, Policy, PolicyContext, RequestInfo

if TYPE_CHECKING:
    from pdcore.optimize.optimizer import Optimizer

__all__ = [
    "DEFAULT_MAX_TPOT_S",
    "POLICIES",
    "CloudOnly",
    "DeviceOnly",
    "KVTransfer",
    "NaiveSplit",
    "PDDevice",
    "Race",
    "make_policy",
]

DEFAULT_MAX_TPOT_S = 0.05
"""The display gap policies aim for outside a run: the default TPOT SLO (``pdcore.sim.SLO``)."""


def _check_max_tpot(value: float | None, min_tpot: float = 0.0) -> float | None:
    if value is None:
        return None
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > min_tpot):
        raise InvalidInputError(
            f"max_tpot = {value!r}; pass the largest display gap in seconds, finite and above "
            f"min_tpot = {min_tpot!r} (e.g. 0.05), or leave it unset to use the TPOT SLO"
        )
    return float(value)


class _FixedMode(Policy):
    """A policy that gives every request the same plan."""

    mode: ClassVar[str]

    def __init__(self, max_tpot: float | None = None) -> None:
        self.max_tpot = _check_max_tpot(max_tpot)
        self._plan = Plan(self.mode, max_tpot=self.max_tpot or DEFAULT_MAX_TPOT_S)

    def prepare(self, context: PolicyContext) -> None:
        self._plan = Plan(self.mode, max_tpot=self.max_tpot or context.tpot_slo_s)

    def plan(self, req: RequestInfo, load: CloudLoad) -> Plan:
        return self._plan


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


class _Split(Policy):
    """Cloud first, device after: P/D-Device and the naive split share the choice of ``k``."""

    mode: ClassVar[str]

    def __init__(
        self,
        k: int | Literal["auto"],
        refine_ratio: float,
        min_tpot: float,
        max_tpot: float | None,
        max_k: int,
        load_adaptive: bool = True,
    ) -> None:
        if k != "auto" and (isinstance(k, bool) or not isinstance(k, int) or k < 0):
            raise InvalidInputError(
                f"k = {k!r}; pass the number of cloud decode tokens after the first (0 or more) or 'auto'"
            )
        if not (isinstance(refine_ratio, (int, float)) and 0.0 < refine_ratio <= 1.0):
            raise InvalidInputError(
                f"refine_ratio = {refine_ratio!r}; pass the kept fraction of the prompt in (0, 1]"
            )
        if not (isinstance(min_tpot, (int, float)) and math.isfinite(min_tpot) and min_tpot >= 0.0):
            raise InvalidInputError(f"min_tpot = {min_tpot!r}; pass the smallest display gap, seconds >= 0")
        if isinstance(max_k, bool) or not isinstance(max_k, int) or max_k < 0:
            raise InvalidInputError(f"max_k = {max_k!r}; pass the cap on k, a whole number >= 0")
        self.k: int | Literal["auto"] = k
        self.refine_ratio = float(refine_ratio)
        self.min_tpot = float(min_tpot)
        self.max_tpot = _check_max_tpot(max_tpot, self.min_tpot)
        self.max_k = max_k
        self.load_adaptive = bool(load_adaptive)
        self._optimizer: Optimizer | None = None
        self._context: PolicyContext | None = None
        self._pace = self.max_tpot or DEFAULT_MAX_TPOT_S
        self._plans: dict[int, Plan] = {}

    def prepare(self, context: PolicyContext) -> None:
        self._context = context
        self._pace = self.max_tpot or context.tpot_slo_s
        if self._pace <= self.min_tpot:
            raise InvalidInputError(
                f"{self.name}: min_tpot = {self.min_tpot!r} is not below the TPOT SLO {self._pace!r}; "
                "lower min_tpot or pass max_tpot explicitly"
            )
        self._plans = {}
        self._optimizer = None

    def _split_plan(self, k: int) -> Plan:
        plan = self._plans.get(k)
        if plan is None:
            plan = Plan(
                self.mode, k=k, refine_ratio=self.refine_ratio, min_tpot=self.min_tpot, max_tpot=self._pace
            )
            self._plans[k] = plan
        return plan

    def plan(self, req: RequestInfo, load: CloudLoad) -> Plan:
        if self.k != "auto":
            return self._split_plan(self.k)
        context = self._context
        if context is None:
            raise InvalidStateError(
                f"{type(self).__name__}(k='auto') needs the run's profiles to choose k; call "
                "prepare(context) first (pdcore.sim.simulate does), or pass a fixed k"
            )
        optimizer = self._optimizer
        if optimizer is None:
            # imported here: the optimizer builds on the simulator, which imports the policies
            from pdcore.optimize.optimizer import Optimizer  # noqa: PLC0415
            from pdcore.sim.metrics import SLO  # noqa: PLC0415

            optimizer = self._optimizer = Optimizer(
                device=context.device,
                cloud=context.cloud,
                slo=SLO(ttft_s=context.ttft_slo_s, tpot_s=self._pace),
                refine_ratios=(self.refine_ratio,),
                quality={self.refine_ratio: 0.0},
                load_adaptive=self.load_adaptive,
                prefill_replicas=context.prefill_replicas,
                max_k=self.max_k,
            )
        choice = optimizer.choose(req.prompt_tokens, one_way_s=req.one_way_s, load=load)
        if choice.mode == "device":
            return self._split_plan(-1)
        if choice.refine_ratio != self.refine_ratio:
            # the optimizer fell back to the full prompt (a refined one would arrive too late)
            return Plan(
                self.mode,
                k=choice.k,
                refine_ratio=choice.refine_ratio,
                min_tpot=self.min_tpot,
                max_tpot=self._pace,
            )
        return self._split_plan(choice.k)


class PDDevice(_Split):
    """P/D-Device: the cloud streams the first token plus ``k``; the device catches up and finishes.

    With ``k="auto"`` (the default) each request gets the optimizer's choice (`pdcore.optimize.Optimizer`):
    the smallest ``k`` of the catch-up fixed point, with the cloud's first token expected at the round
    trip plus the cloud's prefill on an idle replica plus, with ``load_adaptive``, the prefill work
    queued ahead of the request. When the device's own first token would come no later than the cloud's,
    the request goes to the device alone (mode ``"device"``).

    Args:
        k: Cloud decode tokens after the first, or ``"auto"``.
        refine_ratio: Fraction of the prompt the device prefills, in (0, 1]; below 1 the cloud sends the
            refined prompt with the first token and the device starts prefilling then.
        min_tpot: The smallest display gap, seconds.
        max_tpot: The largest display gap the controller aims for, seconds; unset, the TPOT SLO.
        max_k: The cap on an automatic ``k``.
        load_adaptive: Let ``k`` (and the device-alone choice) respond to the cloud's queue.
    """

    name = "pd-device"
    mode = "pd"

    def __init__(
        self,
        k: int | Literal["auto"] = "auto",
        refine_ratio: float = 1.0,
        min_tpot: float = 0.0,
        max_tpot: float | None = None,
        max_k: int = DEFAULT_MAX_K,
        load_adaptive: bool = True,
    ) -> None:
        super().__init__(k, refine_ratio, min_tpot, max_tpot, max_k, load_adaptive)

    def _split_plan(self, k: int) -> Plan:
        if k < 0:
            plan = self._plans.get(k)
            if plan is None:
                plan = Plan("device", min_tpot=self.min_tpot, max_tpot=self._pace)
                self._plans[k] = plan
            return plan
        return super()._split_plan(k)


class NaiveSplit(PDDevice):
    """The naive split: as P/D-Device with the same ``k``, but cloud tokens are shown as they arrive.

    Without the speed controller the buffer is shown at the cloud's pace and runs out early, so the user
    waits at the hand-off; compare its ``handoff_stall_s`` with P/D-Device's.

    Args:
        k: Cloud decode tokens after the first, or ``"auto"`` (P/D-Device's rule).
        max_tpot: The gap above which a hand-off counts as a stall; unset, the TPOT SLO.
        max_k: The cap on an automatic ``k``.
    """

    name = "naive-split"
    mode = "naive"

    def __init__(
        self, k: int | Literal["auto"] = "auto", max_tpot: float | None = None, max_k: int = DEFAULT_MAX_K
    ) -> None:
        super().__init__(k, 1.0, 0.0, max_tpot, max_k)


POLICIES: dict[str, type[Policy]] = {
    cls.name: cls for cls in (CloudOnly, DeviceOnly, PDDevice, NaiveSplit, KVTransfer, Race)
}
"""The built-in policies by registry name. Add your own class here to make it available by name."""


def _parse_value(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def make_policy(spec: str) -> Policy:
    """Builds a policy from ``name`` or ``name:key=value:key=value`` (e.g. ``"pd-device:k=8"``).

    Values are read as integers, then floats, else strings (``auto``). With settings, the policy's
    ``name`` becomes the whole ``spec`` so that reports tell variants apart.

    Raises:
        InvalidInputError: The name is not in `POLICIES`, a setting is malformed or the class does not
            take it.
    """
    name, *settings = spec.strip().split(":")
    cls = POLICIES.get(name)
    if cls is None:
        raise InvalidInputError(
            f"unknown policy {name!r}; fix: use one of {', '.join(sorted(POLICIES))} "
            "(optionally with settings, e.g. pd-device:k=8)"
        )
    parameters = inspect.signature(cls).parameters
    kwargs: dict[str, Any] = {}
    for setting in settings:
        key, sep, value = setting.partition("=")
        key = key.strip()
        if not sep or not key or key not in parameters:
            known = ", ".join(parameters) or "none"
            raise InvalidInputError(
                f"policy {spec!r}: bad setting {setting!r}; fix: write key=value with a key of {name} "
                f"({known})"
            )
        kwargs[key] = _parse_value(value.strip())
    policy = cls(**kwargs)
    if settings:
        policy.name = spec.strip()
    return policy

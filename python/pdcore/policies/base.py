"""The policy interface: what a policy sees at a decision point and what it returns.

The simulator runs in Rust until a request arrives, then hands that request to a policy, which returns a
`Plan` (see ``pdcore._core.Plan``): serve it on the cloud, on the device, or split it between them, and
with which settings. A policy decides once per request; token-level work (streaming, pacing, the
hand-off) stays in the simulator.

What a policy may look at is deliberately what a real dispatcher knows when a request arrives:

- `RequestInfo`: the request's index, arrival time, prompt length and the one-way network delay to the
  cloud. The true output length is not part of it: no real system knows it in advance.
- `CloudLoad`: the cloud's current queue and occupancy, as the simulator reports it (`pdcore.cloud_load`,
  beneath the optimizer, which reads it too).
- `PolicyContext` (given once, before the run, through `Policy.prepare`): the device, cloud and network
  profiles and the SLO, for policies that plan from models (for example P/D-Device's automatic ``k``),
  and the run's workload, for policies that fit a model to the trace before it starts (the router's
  answer-length predictor, DiSCo's length threshold).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pdcore import _core
from pdcore.cloud_load import CloudLoad
from pdcore.deprecation import RenamedAttribute, accepts_renamed_keywords
from pdcore.limits import MAX_SLO_S, check_float

DEFAULT_K_SITES: str = _core.DEFAULT_K_SITES
"""Where a disaggregated cloud lets P/D-Device's ``k`` tokens be decoded unless told otherwise: either site
(``"both"``, `pdcore._core.DEFAULT_K_SITES`), so the prefill instance can keep a request whose first decode
token the pool would deliver late (the cost model's bridge at the first token, Rust ``cost::ksite``) and the
largest display gap stays within ``max_tpot_s`` by design."""

if TYPE_CHECKING:
    from pdcore._core import NativePolicy, Plan
    from pdcore.profiles.cloud import CloudProfile
    from pdcore.profiles.device import DeviceProfile
    from pdcore.profiles.network import NetworkProfile
    from pdcore.traces.workload import Workload

__all__ = [
    "CloudLoad",
    "PacedPolicy",
    "Policy",
    "PolicyContext",
    "RequestInfo",
    "check_max_tpot",
    "check_min_tpot",
]


def check_min_tpot(value: object) -> float:
    """A policy's ``min_tpot_s`` setting: the smallest display gap, seconds from 0 to
    `pdcore.limits.MAX_SLO_S`.

    Raises:
        InvalidInputError: Anything else (a bool, a str, NaN, an integer beyond a float), named with the fix.
    """
    return check_float(
        value, "min_tpot_s (the smallest display gap)", minimum=0.0, maximum=MAX_SLO_S, unit="s"
    )


@accepts_renamed_keywords
def check_max_tpot(value: object, min_tpot_s: float = 0.0) -> float | None:
    """A policy's ``max_tpot_s`` setting: None (the run's TPOT SLO) or seconds above ``min_tpot_s``
    (``min_tpot=``: its deprecated name) and at most `pdcore.limits.MAX_SLO_S`.

    Raises:
        InvalidInputError: Any other value, named with the fix.
    """
    if value is None:
        return None
    where = "max_tpot_s (the largest display gap; leave it unset for the TPOT SLO)"
    return check_float(value, where, minimum=min_tpot_s, maximum=MAX_SLO_S, above_minimum=True, unit="s")


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """A request as a dispatcher sees it on arrival.

    Attributes:
        index: Position of the request in the workload (0-based).
        arrival_s: Arrival time in seconds from the start of the workload.
        prompt_tokens: Prompt length in tokens.
        one_way_s: One-way network delay between this device and the cloud, in seconds (the round trip is
            twice this).
        session: The request's conversation (its index for a single-turn workload).
        turn: Its turn in the conversation, 1 for the first.
        device_cached_tokens: Leading prompt tokens the device holds in its session cache now (its
            prefill of the full prompt covers only the rest; a refined prompt reuses nothing).
        cloud_cached_tokens: Leading prompt tokens in the cloud's prefix cache now (its prefill covers the
            rest).
    """

    index: int
    arrival_s: float
    prompt_tokens: int
    one_way_s: float
    session: int = -1
    turn: int = 1
    device_cached_tokens: int = 0
    cloud_cached_tokens: int = 0


@dataclass(frozen=True)
class PolicyContext:
    """The models and objectives of a run, handed to `Policy.prepare` once before the first decision.

    Attributes:
        device: The device speed profile.
        cloud: The cloud iteration-time profile.
        network: The network profile (per-request delays are in `RequestInfo.one_way_s`).
        deployment: ``"colocated"`` or ``"disaggregated"``.
        ttft_slo_s: The time-to-first-token objective, in seconds.
        max_tpot_s: The time-per-output-token objective, in seconds; policies use it as the largest
            display gap they aim for.
        prefill_replicas: Replicas that prefill (the colocated replicas, or the prefill pool).
        k_sites: Where the cloud lets P/D-Device's ``k`` tokens be decoded: ``"pool"``, ``"prefill"`` or
            ``"both"`` (a colocated cloud ignores it: a replica decodes what it prefilled).
        kv_link_bytes_per_s: The prefill-to-decode KV link, bytes per second (disaggregated).
        workload: The run's requests (None outside a run), for policies that fit a model to the trace
            before the first decision; a policy must not read a request's answer length while planning it.
        cost_weight: The run's weight on cloud dollars in the optimizer's objective (seconds of TTFT per $
            per 1,000 requests; `pdcore.optimize.Optimizer`); a policy's own setting overrides it.
        energy_weight: The run's weight on device energy (seconds of TTFT per J).
    """

    device: DeviceProfile
    cloud: CloudProfile
    network: NetworkProfile
    deployment: str
    ttft_slo_s: float
    max_tpot_s: float
    prefill_replicas: int = 1
    k_sites: str = DEFAULT_K_SITES
    kv_link_bytes_per_s: float | None = None
    workload: Workload | None = None
    cost_weight: float = 0.0
    energy_weight: float = 0.0


class Policy(abc.ABC):
    """Decides, per request, how it is served.

    Subclass it, give it a ``name`` and implement `plan`; override `prepare` to read the run's profiles
    and SLO before the first decision. A policy object may keep state across the requests of one run;
    `prepare` is called at the start of every run, so reset such state there.

    Example:
        >>> from pdcore._core import Plan
        >>> class ShortOnDevice(Policy):
        ...     name = "short-on-device"
        ...
        ...     def plan(self, req: RequestInfo, load: CloudLoad) -> Plan:
        ...         return Plan("device" if req.prompt_tokens < 256 else "cloud")
        >>> ShortOnDevice().plan(RequestInfo(0, 0.0, 100, 0.01), CloudLoad()).mode
        'device'
    """

    name: str = "policy"
    """The label used in reports and the registry."""

    def prepare(self, context: PolicyContext) -> None:  # noqa: B027  # reason: an optional hook
        """Receives the run's models and SLO before the first decision; the default does nothing."""

    @abc.abstractmethod
    def plan(self, req: RequestInfo, load: CloudLoad) -> Plan:
        """Returns how to serve ``req`` given the cloud's current ``load``."""

    def native(self) -> NativePolicy | None:
        """The same rule planned inside the simulator, if it has one (called after `prepare`).

        The built-in policies return their rule, so a run needs no Python call per request and gives the
        same plans; a custom policy returns None (the default) and the simulator asks `plan` per request.
        """
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class PacedPolicy(Policy):
    """A built-in policy with display-gap settings (``max_tpot_s``, and ``min_tpot_s`` where it has one).

    It keeps their old names for one release: each subclass's ``__init__`` takes ``max_tpot=`` and
    ``min_tpot=``, and ``policy.max_tpot`` and ``policy.min_tpot`` read the new attributes, each with a
    `DeprecationWarning` (`pdcore.deprecation`).
    """

    max_tpot = RenamedAttribute("max_tpot_s")
    min_tpot = RenamedAttribute("min_tpot_s")

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = accepts_renamed_keywords(cls.__dict__["__init__"])  # type: ignore[method-assign]

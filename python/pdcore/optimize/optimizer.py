"""The per-request optimizer: P/D-Device's ``k``, pace and prompt refinement.

The paper (arXiv 2508.09035) describes "an algorithm to decide the best settings" but publishes none;
this formulation is pdcore's own.

Problem, per request (prompt length ``L``, one-way network delay ``d``, the cloud's current load):

    minimise   cloud cost = prefill(L) + k * (cost of one cloud decode token)
    subject to TTFT = the cloud's TTFT (the first displayed token is the cloud's),
               every display gap, the hand-off gap included, <= max_tpot_s (the TPOT SLO),
               quality drop of the refinement ratio r <= the quality budget.

The cloud prefills the whole prompt whatever ``k`` and ``r`` are, so the cost is minimised by the
smallest feasible ``k``. For a fixed ``r`` that is the catch-up fixed point
(`pdcore.optimize.catchup.solve_catchup`): the smallest ``n = k + 1`` such that the device has prefilled
the (refined) prompt plus the ``n`` received tokens by the time ``n`` tokens shown at ``max_tpot_s`` apart
run out, ``T(n) <= F + n * max_tpot_s``. The optimizer solves it for every allowed ``r`` and keeps the
smallest ``k`` (ties go to the larger ``r``, the better answer). The pace is ``max_tpot_s`` itself: it
stretches the buffer furthest, which is what makes ``k`` smallest; the speed controller then shows tokens
no slower than that. When the device's own first token comes no later than the cloud's (``P <= F``), the
request goes to the device alone (no cloud cost, TTFT no worse).

Load adaptation: ``F``, the arrival of the cloud's first token, is the round trip plus the cloud's
prefill on an idle replica plus a *lower bound* of the queueing delay: the prompt tokens waiting ahead of
the request beyond one iteration's token budget per prefill replica, at the per-token prefill cost,
``max(0, W - budget * R) * prefill_token_s / R``. A lower bound, because overestimating ``F`` is what
hurts: the cloud's tokens would then arrive earlier than planned and too few of them would run out
before the device is ready (a stall), while underestimating only costs cloud tokens. Chunked prefill
packs a new prompt into the iteration under way whenever the budget has room, so the queue's full
backlog (`CloudLoad.prefill_backlog_s`) often overstates the wait; the bound held for every request of
the Azure conversation trace in our checks. A queued cloud answers later, the device has more of a head
start, so ``k`` falls, and past the point where the device is faster the request stays on the device:
the cloud's queue drains itself. Refinement responds the other way: a refined prompt reaches the device
only with the first token, so under load ``r < 1`` loses its head start and ``r = 1`` wins.

Where the ``k`` tokens are decoded (a P/D-disaggregated cloud): in the decode pool, after the KV
transfer, or on the prefill instance that prefilled the prompt, beside its prefill chunks. With
``k_sites="both"`` the optimizer solves the catch-up at each site's decode pace and keeps one, saying why
(`Choice.k_site_reason`): the prefill instance when it is done with the ``k`` tokens before the pool's
first would arrive, else the pool (the prefill instance's decode steps would cap everyone's prefill
chunks). The cloud may still bridge a pool request at its first token: its prefill instance decodes it
while its KV cache crosses, when the pool would deliver the first decode token later than ``max_tpot_s``
(the bridge at the first token); each request's ``k_site`` result says where its tokens were decoded.
The rule and its prices live in the cost model (Rust ``cost::ksite``).

Latency, cost and energy (``cost_weight``, ``energy_weight``; the objective is ours): the SLOs stay
constraints; among the plans of a request expected to meet them (the plan above, the device alone, the
cloud alone), the optimizer keeps the one with the smallest ``expected TTFT (s) + cost_weight x cloud $
per 1,000 such requests + energy_weight x device J``, each estimated at the deployment's prices
(`pdcore.profiles.prices`) for an answer of ``expected_output_tokens``. So ``cost_weight`` is the seconds
of first-token latency one dollar per thousand requests is worth, ``energy_weight`` the seconds one joule
of the device's battery is worth. With both 0 (the default) the rule above applies unchanged. The rule
and its estimates live in the cost model (Rust ``cost::tradeoff``).

Quality: the allowed ratios are those whose quality drop, as given in ``quality``, is within the budget;
``r = 1`` is the reference and always allowed. Which drop to give (the measured estimate or the upper
end of its 95% interval) is decided where the curve is read, `pdcore.optimize.quality`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from pdcore._core import DEFAULT_MAX_K, PlanOptimizer, Weights
from pdcore.cloud_load import CloudLoad
from pdcore.exceptions import InvalidInputError
from pdcore.limits import MAX_TOKENS, check_float, parse_bool
from pdcore.optimize.arguments import (
    check_max_k,
    check_refine_ratio,
    check_replicas,
    check_seconds,
    check_tokens,
)
from pdcore.optimize.choice import Choice
from pdcore.optimize.quality import DEFAULT_QUALITY_BUDGET, check_quality_budget, check_quality_mapping
from pdcore.profiles.cloud import CloudProfile
from pdcore.profiles.device import DeviceProfile
from pdcore.profiles.network import NetworkProfile
from pdcore.profiles.prices import missing_prices, prices
from pdcore.slo import SLO

__all__ = ["DEFAULT_EXPECTED_OUTPUT_TOKENS", "K_SITES", "Choice", "Optimizer", "check_weight"]

K_SITES = ("pool", "prefill", "both")
"""Where the optimizer may place the ``k`` tokens (``k_sites``)."""

DEFAULT_EXPECTED_OUTPUT_TOKENS = 256.0
"""The answer length the weighted objective assumes when the run does not say (a run passes its
workload's mean output length)."""


def _waiting(load: CloudLoad | None) -> float | None:
    """The cloud's queued prefill tokens, what the load-adaptive first-token estimate reads."""
    return None if load is None else float(load.waiting_prefill_tokens)


def check_weight(value: object, name: str, *, unset: str = "") -> float:
    """A weight of the objective (``cost_weight``, ``energy_weight``): a finite number, 0 or more.

    Raises:
        InvalidInputError: Anything else (a bool, a str, an integer beyond a float), naming ``name``.
    """
    try:
        return check_float(value, name, minimum=0.0, maximum=math.inf)
    except InvalidInputError:
        raise InvalidInputError(
            f"{name} = {value!r}; fix: pass a finite weight, 0 or more (seconds of TTFT per $ per 1k "
            f"requests for the cost, per J for the energy){', ' + unset if unset else ''}"
        ) from None


def _weights(
    cost_weight: float,
    energy_weight: float,
    device: DeviceProfile,
    cloud: CloudProfile,
    network: NetworkProfile | None,
    slo: SLO,
    expected_output_tokens: float,
) -> Weights | None:
    """The cost model's weights, or None when both are 0 (module docstring)."""
    cost_weight = check_weight(cost_weight, "cost_weight (--cost-weight)")
    energy_weight = check_weight(energy_weight, "energy_weight (--energy-weight)")
    if cost_weight == 0.0 and energy_weight == 0.0:
        return None
    priced = None if network is None else prices(cloud, device, network)
    if network is None or priced is None:
        lacking = "the network" if network is None else "; ".join(missing_prices(cloud, device, network))
        raise InvalidInputError(
            f"a weight on cost or energy needs the deployment's prices, but {lacking} gives none; fix: add "
            "the missing table to the profile, or drop the weights"
        )
    return Weights(
        cost_weight=cost_weight,
        energy_weight=energy_weight,
        prices=priced,
        gpus_per_replica=float(cloud.gpus_per_replica),
        expected_output_tokens=float(expected_output_tokens),
        ttft_slo_s=slo.ttft_s,
        prompt_bytes_per_token=float(cloud.prompt_bytes_per_token or 0.0),
        stream_bytes_per_token=float(cloud.stream_bytes_per_token or 0.0),
    )


def _check_models(device: object, cloud: object, slo: object, network: object) -> None:
    """Refuses a model of the wrong type, naming the argument."""
    for name, value, kind, what in (
        ("device", device, DeviceProfile, "a DeviceProfile"),
        ("cloud", cloud, CloudProfile, "a CloudProfile"),
        ("slo", slo, SLO, "an SLO"),
        ("network", network, (NetworkProfile, type(None)), "a NetworkProfile or None"),
    ):
        if not isinstance(value, kind):
            raise InvalidInputError(
                f"{name} = {value!r} is not {what}; fix: pass one (pdcore.profiles loads profiles by name "
                "or path; pdcore.slo.SLO holds the objectives)"
            )


class Optimizer:
    """Chooses ``k``, the pace and the refinement ratio per request (module docstring).

    Args:
        device: The device's profile.
        cloud: The cloud's profile.
        slo: The SLO; its ``max_tpot_s`` is the largest display gap allowed.
        refine_ratios: Candidate refinement ratios, each in (0, 1].
        quality: Quality drop (absolute, e.g. 0.01 = one point) at each ratio, the number the budget is
            checked against (`pdcore.optimize.quality.MeasuredQuality.checked` gives it from a measured
            curve, as its estimate or its 95% upper bound); a ratio without an entry is allowed only if
            it is 1.0.
        quality_budget: The largest quality drop accepted.
        load_adaptive: Add a lower bound of the cloud's queueing delay to the expected first-token time.
        prefill_replicas: Replicas that prefill, over which the queued prompt tokens are shared.
        max_k: The cap on ``k``.
        k_sites: Where the ``k`` tokens may be decoded: ``"pool"``, ``"prefill"`` or ``"both"`` (the
            optimizer picks per request). Unset: `pdcore._core.DEFAULT_K_SITES` (both) with
            ``kv_link_bytes_per_s``, the pool alone without it (nothing prices the pool's transfer);
            `k_sites` reads the sites in force.
        kv_link_bytes_per_s: The prefill-to-decode KV link, bytes per second (prices the pool's transfer
            with the cloud profile's ``kv_bytes_per_token``); needed with ``k_sites="both"``.
        cost_weight: Seconds of TTFT one dollar per 1,000 requests is worth (module docstring), >= 0.
        energy_weight: Seconds of TTFT one joule of device energy is worth, >= 0.
        network: The network, whose radio prices the weighted objective (needed with a weight).
        expected_output_tokens: The answer length the weighted objective assumes.

    Raises:
        InvalidInputError: A setting out of range, or a weight without the prices it needs.
    """

    def __init__(
        self,
        *,
        device: DeviceProfile,
        cloud: CloudProfile,
        slo: SLO,
        refine_ratios: Sequence[float] = (1.0,),
        quality: Mapping[float, float] | None = None,
        quality_budget: float = DEFAULT_QUALITY_BUDGET,
        load_adaptive: bool = True,
        prefill_replicas: int = 1,
        max_k: int = DEFAULT_MAX_K,
        k_sites: str | None = None,
        kv_link_bytes_per_s: float | None = None,
        cost_weight: float = 0.0,
        energy_weight: float = 0.0,
        network: NetworkProfile | None = None,
        expected_output_tokens: float = DEFAULT_EXPECTED_OUTPUT_TOKENS,
    ) -> None:
        _check_models(device, cloud, slo, network)
        prefill_replicas = check_replicas(prefill_replicas, "prefill_replicas")
        max_k = check_max_k(max_k)
        load_adaptive = parse_bool(load_adaptive, "load_adaptive")
        if k_sites is not None and (not isinstance(k_sites, str) or k_sites not in K_SITES):
            raise InvalidInputError(f"k_sites = {k_sites!r}; fix: pass one of {', '.join(K_SITES)}")
        if kv_link_bytes_per_s is not None:
            kv_link_bytes_per_s = check_float(
                kv_link_bytes_per_s, "kv_link_bytes_per_s", minimum=0.0, maximum=math.inf, above_minimum=True
            )
        expected_output_tokens = check_float(
            expected_output_tokens, "expected_output_tokens", minimum=1.0, maximum=MAX_TOKENS, unit="tokens"
        )
        self.prefill_replicas = prefill_replicas
        self.quality_budget = check_quality_budget(quality_budget)
        if isinstance(refine_ratios, (str, bytes)) or not isinstance(refine_ratios, Sequence):
            raise InvalidInputError(
                f"refine_ratios = {refine_ratios!r}; fix: pass a list of kept fractions, e.g. [1.0, 0.5]"
            )
        given = [
            check_float(r, "a refine ratio in refine_ratios", minimum=0.0, maximum=1.0, above_minimum=True)
            for r in refine_ratios
        ]
        ratios = sorted(set(given) | {1.0}, reverse=True)
        self.quality: dict[float, float] = check_quality_mapping(quality or {})
        self.allowed_ratios: tuple[float, ...] = tuple(
            r for r in ratios if r == 1.0 or self.quality.get(r, math.inf) <= self.quality_budget
        )
        self.device = device
        self.cloud = cloud
        self.slo = slo
        self.load_adaptive = load_adaptive
        self.max_k = max_k
        self.cost_weight, self.energy_weight = cost_weight, energy_weight
        self._native = PlanOptimizer(
            device=device.cost,
            cloud=cloud.cost,
            max_tpot_s=slo.max_tpot_s,
            refine_ratios=list(self.allowed_ratios),
            load_adaptive=load_adaptive,
            prefill_replicas=prefill_replicas,
            max_k=max_k,
            k_sites=k_sites,
            kv_bytes_per_token=None if kv_link_bytes_per_s is None else float(cloud.kv_bytes_per_token),
            kv_link_bytes_per_s=kv_link_bytes_per_s,
            kv_write_token_s=float(cloud.kv_write_token_s),
            weights=_weights(cost_weight, energy_weight, device, cloud, network, slo, expected_output_tokens),
            cloud_kv_cache_tokens=cloud.kv_cache_tokens,
        )
        self.k_sites: str = self._native.k_sites

    @property
    def native(self) -> PlanOptimizer:
        """The optimizer in the cost model (`pdcore._core.PlanOptimizer`); every choice is made there."""
        return self._native

    def first_token_s(self, prompt_tokens: int, *, one_way_s: float, load: CloudLoad | None = None) -> float:
        """Expected arrival of the cloud's first token: round trip, lone prefill and a lower bound of the
        queueing delay (module docstring)."""
        return float(
            self._native.first_token_s(
                check_tokens(prompt_tokens, "prompt_tokens", minimum=1),
                one_way_s=check_seconds(one_way_s, "one_way_s"),
                waiting_prefill_tokens=_waiting(load),
            )
        )

    def choose(
        self,
        prompt_tokens: int,
        *,
        one_way_s: float,
        load: CloudLoad | None = None,
        device_cached_tokens: int = 0,
        cloud_cached_tokens: int = 0,
    ) -> Choice:
        """The settings for one request: the smallest ``k`` over the allowed ratios, with the prompt
        tokens it finds cached on the device and in the cloud (follow-up turns).

        Raises:
            InvalidInputError: A bad prompt length or delay.
        """
        native = self._native.choose(
            check_tokens(prompt_tokens, "prompt_tokens", minimum=1),
            one_way_s=check_seconds(one_way_s, "one_way_s"),
            waiting_prefill_tokens=_waiting(load),
            device_cached_tokens=check_tokens(device_cached_tokens, "device_cached_tokens"),
            cloud_cached_tokens=check_tokens(cloud_cached_tokens, "cloud_cached_tokens"),
        )
        return Choice.from_native(native, self.slo.max_tpot_s)

    def choose_at(
        self, prompt_tokens: int, refine_ratio: float, *, one_way_s: float, load: CloudLoad | None = None
    ) -> Choice:
        """The settings with the refinement ratio fixed (allowed or not): the catch-up ``k`` at that ratio.

        Raises:
            InvalidInputError: A bad prompt length, ratio or delay.
        """
        native = self._native.choose_at(
            check_tokens(prompt_tokens, "prompt_tokens", minimum=1),
            check_refine_ratio(refine_ratio),
            one_way_s=check_seconds(one_way_s, "one_way_s"),
            waiting_prefill_tokens=_waiting(load),
        )
        return Choice.from_native(native, self.slo.max_tpot_s)

    def table(self, prompt_lengths: Sequence[int], *, one_way_s: float) -> list[Choice]:
        """Choices over prompt lengths on an idle cloud (the ``pdcore optimize`` table)."""
        if isinstance(prompt_lengths, (str, bytes)) or not isinstance(prompt_lengths, Sequence):
            raise InvalidInputError(
                f"prompt_lengths = {prompt_lengths!r}; fix: pass a list of prompt lengths in tokens"
            )
        return [self.choose(n, one_way_s=one_way_s) for n in prompt_lengths]

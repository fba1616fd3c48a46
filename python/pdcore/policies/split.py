"""The split policies: the cloud first, the device after. P/D-Device (`PDDevice`), and the naive split
(`NaiveSplit`) that shows cloud tokens as they arrive; both choose ``k`` (and P/D-Device the refinement
ratio) alike, fixed or per request through the optimizer (`pdcore.optimize.Optimizer`)."""

from __future__ import annotations

import math
from typing import ClassVar, Literal

from pdcore._core import NativePolicy, Plan
from pdcore.exceptions import InvalidInputError, InvalidStateError
from pdcore.limits import parse_bool
from pdcore.optimize.catchup import DEFAULT_MAX_K
from pdcore.optimize.optimizer import DEFAULT_EXPECTED_OUTPUT_TOKENS, Optimizer
from pdcore.optimize.quality import (
    DEFAULT_QUALITY_BOUND,
    DEFAULT_QUALITY_BUDGET,
    DEFAULT_QUALITY_CURVE,
    MeasuredQuality,
    QualityBound,
    QualitySource,
    check_quality_budget,
)
from pdcore.policies.base import (
    CloudLoad,
    PacedPolicy,
    PolicyContext,
    RequestInfo,
    check_max_tpot,
    check_min_tpot,
)
from pdcore.policies.split_settings import K_SITE_SETTINGS, check_split_settings
from pdcore.slo import DEFAULT_MAX_TPOT_S, SLO

__all__ = ["K_SITE_SETTINGS", "NaiveSplit", "PDDevice"]


def _expected_output(context: PolicyContext) -> float:
    """The answer length the weighted objective assumes: the run's mean (a length predictor's average
    answer), else `DEFAULT_EXPECTED_OUTPUT_TOKENS`."""
    workload = context.workload
    if workload is None or len(workload) == 0:
        return DEFAULT_EXPECTED_OUTPUT_TOKENS
    return max(float(workload.output_tokens.mean()), 1.0)


class _Split(PacedPolicy):
    """Cloud first, device after: P/D-Device and the naive split share the choice of ``k``."""

    mode: ClassVar[str]

    def __init__(
        self,
        k: int | Literal["auto"],
        refine_ratio: float | Literal["auto"],
        min_tpot_s: float,
        max_tpot_s: float | None,
        max_k: int,
        load_adaptive: bool = True,
        quality: QualitySource | None = None,
        quality_budget: float = DEFAULT_QUALITY_BUDGET,
        quality_bound: QualityBound = DEFAULT_QUALITY_BOUND,
        k_site: str = "auto",
        cost_weight: float | None = None,
        energy_weight: float | None = None,
    ) -> None:
        check_split_settings(
            k, refine_ratio, min_tpot_s, max_k, quality_bound, k_site, cost_weight, energy_weight
        )
        self.cost_weight, self.energy_weight = cost_weight, energy_weight
        self.k: int | Literal["auto"] = k
        self.k_site = k_site
        self.refine_ratio: float | Literal["auto"] = "auto" if refine_ratio == "auto" else float(refine_ratio)
        self.min_tpot_s = check_min_tpot(min_tpot_s)
        self.max_tpot_s = check_max_tpot(max_tpot_s, self.min_tpot_s)
        self.max_k = max_k
        self.load_adaptive = parse_bool(load_adaptive, "load_adaptive")
        self.quality_budget = check_quality_budget(quality_budget)
        self.quality_bound: QualityBound = quality_bound
        if quality is None and refine_ratio == "auto":
            quality = DEFAULT_QUALITY_CURVE
        self.quality = None if quality is None else MeasuredQuality.load(quality)
        # the refinement ratios the optimizer may pick, and the drops it checks against the budget
        self._ratios, self._drops = self._refine_choices(self.quality)
        self.allowed_refine_ratios: tuple[float, ...] = tuple(
            r
            for r in sorted(set(self._ratios) | {1.0}, reverse=True)
            if r == 1.0 or self._drops.get(r, math.inf) <= self.quality_budget
        )
        """The ratios the quality budget allows (1.0 always); ``auto`` picks among them per request."""
        self._optimizer: Optimizer | None = None
        self._context: PolicyContext | None = None
        self._pace = self.max_tpot_s or DEFAULT_MAX_TPOT_S
        self._plans: dict[tuple[int, float, str], Plan] = {}

    def _refine_choices(
        self, quality: MeasuredQuality | None
    ) -> tuple[tuple[float, ...], dict[float, float]]:
        """The refinement ratios the optimizer may pick and the drops it checks against the budget."""
        if quality is not None:
            drops = quality.checked(self.quality_bound)
            if self.refine_ratio == "auto":
                return quality.ratios, drops
            return (self._check_fixed_ratio(quality, self.refine_ratio),), drops
        if self.refine_ratio != "auto":
            # no curve: a fixed ratio is taken as free of quality cost (the caller's choice)
            return (self.refine_ratio,), {self.refine_ratio: 0.0}
        return (1.0,), {}

    def _check_fixed_ratio(self, quality: MeasuredQuality, ratio: float) -> float:
        """The curve's ratio equal to ``ratio``, if its drop is within the budget."""
        if ratio == 1.0:
            return ratio
        measured = quality.find(ratio)
        allowed = ", ".join(f"{r:g}" for r in quality.allowed(self.quality_budget, self.quality_bound))
        if measured is None:
            known = ", ".join(f"{r:g}" for r in quality.ratios)
            raise InvalidInputError(
                f"refine_ratio = {ratio!r} has no measured quality drop in {quality.source} (measured: "
                f"{known}); fix: pass a measured ratio within the budget ({allowed}), refine_ratio='auto', "
                "or no quality"
            )
        drop = measured.bound(self.quality_bound)
        if drop > self.quality_budget:
            if not quality.has_interval:
                which = "as given"
            elif self.quality_bound == "ci95":
                which = f"the upper end of its 95% interval; estimate {measured.mean:.4g}"
            else:
                which = f"the estimate; 95% upper bound {measured.high:.4g}"
            raise InvalidInputError(
                f"refine_ratio = {ratio!r}: its quality drop in {quality.source} is {drop:.4g} ({which}), "
                f"over quality_budget = {self.quality_budget:g}; fix: pass a ratio the budget allows "
                f"({allowed}), refine_ratio='auto', or raise quality_budget"
            )
        return measured.ratio

    def prepare(self, context: PolicyContext) -> None:
        self._context = context
        self._pace = self.max_tpot_s or context.max_tpot_s
        if self._pace <= self.min_tpot_s:
            raise InvalidInputError(
                f"{self.name}: min_tpot_s = {self.min_tpot_s!r} is not below the TPOT SLO {self._pace!r}; "
                "lower min_tpot_s or pass max_tpot_s explicitly"
            )
        offered = context.k_sites
        fixed = self.k_site != "auto"
        if context.deployment == "disaggregated" and fixed and offered not in ("both", self.k_site):
            raise InvalidInputError(
                f"{self.name}: k_site = {self.k_site!r} but the cloud's k_sites is {offered!r}; fix: "
                f"pass k_site={offered!r} or 'auto', or offer both sites (--k-sites both)"
            )
        self._plans = {}
        self._optimizer = None

    def _sites(self) -> str:
        """The sites the optimizer may choose from: the fixed one, or what the cloud offers."""
        if self.k_site != "auto":
            return self.k_site
        context = self._context
        if context is None or context.deployment != "disaggregated":
            return "pool"  # a colocated replica decodes what it prefilled: the site is moot
        return context.k_sites

    def _split_plan(self, k: int, refine_ratio: float, k_site: str = "pool") -> Plan:
        plan = self._plans.get((k, refine_ratio, k_site))
        if plan is None:
            plan = Plan(
                self.mode,
                k=k,
                refine_ratio=refine_ratio,
                min_tpot_s=self.min_tpot_s,
                max_tpot_s=self._pace,
                k_site=k_site,
            )
            self._plans[(k, refine_ratio, k_site)] = plan
        return plan

    def plan(self, req: RequestInfo, load: CloudLoad) -> Plan:
        if self.k != "auto":
            assert self.refine_ratio != "auto"  # rejected in __init__
            return self._split_plan(self.k, self.refine_ratio, self._fixed_site())
        context = self._context
        if context is None:
            raise InvalidStateError(
                f"{type(self).__name__}(k='auto') needs the run's profiles to choose k; call "
                "prepare(context) first (pdcore.sim.simulate does), or pass a fixed k"
            )
        choice = self._auto_optimizer(context).choose(
            req.prompt_tokens,
            one_way_s=req.one_way_s,
            load=load,
            device_cached_tokens=req.device_cached_tokens,
            cloud_cached_tokens=req.cloud_cached_tokens,
        )
        if choice.mode == "device":
            return self._split_plan(-1, 1.0)
        if choice.mode == "cloud":
            return self._cloud_plan()
        # with a fixed ratio below 1 the optimizer may still fall back to the full prompt (a refined one
        # would arrive too late); the plan carries the ratio chosen
        return self._split_plan(choice.k, choice.refine_ratio, choice.k_site)

    def _cloud_plan(self) -> Plan:
        """The cloud alone, as the native policy plans it (the weights preferred it)."""
        plan = self._plans.get((-2, 1.0, "pool"))
        if plan is None:
            plan = self._plans[(-2, 1.0, "pool")] = Plan(
                "cloud", min_tpot_s=self.min_tpot_s, max_tpot_s=self._pace
            )
        return plan

    def _fixed_site(self) -> str:
        """The site of a fixed-``k`` plan: the one set, else the one the cloud offers, else the pool."""
        if self.k_site != "auto":
            return self.k_site
        sites = self._sites()
        return "pool" if sites == "both" else sites

    def _auto_optimizer(self, context: PolicyContext) -> Optimizer:
        optimizer = self._optimizer
        if optimizer is None:
            optimizer = self._optimizer = Optimizer(
                device=context.device,
                cloud=context.cloud,
                slo=SLO(ttft_s=context.ttft_slo_s, max_tpot_s=self._pace),
                refine_ratios=self._ratios,
                quality=self._drops,
                quality_budget=self.quality_budget,
                load_adaptive=self.load_adaptive,
                prefill_replicas=context.prefill_replicas,
                max_k=self.max_k,
                k_sites=self._sites(),
                kv_link_bytes_per_s=(
                    context.kv_link_bytes_per_s if context.deployment == "disaggregated" else None
                ),
                cost_weight=context.cost_weight if self.cost_weight is None else self.cost_weight,
                energy_weight=context.energy_weight if self.energy_weight is None else self.energy_weight,
                network=context.network,
                expected_output_tokens=_expected_output(context),
            )
        return optimizer

    def native(self) -> NativePolicy | None:
        if type(self).plan is not _Split.plan or type(self)._split_plan not in (
            _Split._split_plan,
            PDDevice._split_plan,
        ):
            return None  # a subclass plans in Python
        if self.k != "auto":
            assert self.refine_ratio != "auto"  # rejected in __init__
            return NativePolicy.fixed(self._split_plan(self.k, self.refine_ratio, self._fixed_site()))
        if self._context is None:
            return None  # plan() explains that prepare() comes first
        return NativePolicy.auto(
            self.mode,
            optimizer=self._auto_optimizer(self._context).native,
            min_tpot_s=self.min_tpot_s,
            max_tpot_s=self._pace,
        )


class PDDevice(_Split):
    """P/D-Device: the cloud streams the first token plus ``k``; the device catches up and finishes.

    With ``k="auto"`` (the default) each request gets the optimizer's choice (`pdcore.optimize.Optimizer`):
    the smallest ``k`` of the catch-up fixed point, with the cloud's first token expected at the round
    trip plus the cloud's prefill on an idle replica plus, with ``load_adaptive``, the prefill work
    queued ahead of the request. When the device's own first token would come no later than the cloud's,
    the request goes to the device alone (mode ``"device"``).

    Refinement: with ``refine_ratio="auto"`` the optimizer also picks the ratio per request, the one with
    the smallest ``k`` among the ratios of the quality curve ``quality`` whose drop is within
    ``quality_budget``, and ``r = 1`` (always allowed, and the fallback when a refined prompt, which
    reaches the device only with the first token, would arrive too late). `allowed_refine_ratios` says
    which ratios the budget allowed; each plan carries its ratio, and the simulator's results record it per
    request (``refine_ratio``).

    The budget is checked, by default, against the upper end of the drop's 95% interval
    (``quality_bound="ci95"``), not its estimate. The rule is pdcore's own (the paper publishes no quality
    criterion): a budget should be a promise the measurement backs, and an estimate from a small
    evaluation is not one (its interval can be ten points wide). The cost is that a small evaluation lets
    nothing but ``r = 1`` qualify, and ``"auto"`` then plans as without refinement; pass
    ``quality_bound="mean"`` to accept the estimate. See `pdcore.optimize.quality`.

    Args:
        k: Cloud decode tokens after the first, or ``"auto"``.
        refine_ratio: Fraction of the prompt the device prefills, in (0, 1], or ``"auto"`` (needs
            ``k="auto"``); below 1 the cloud sends the refined prompt with the first token and the
            device starts prefilling then.
        min_tpot_s: The smallest display gap, seconds.
        max_tpot_s: The largest display gap the controller aims for, seconds; unset, the TPOT SLO.
        max_k: The cap on an automatic ``k``.
        load_adaptive: Let ``k`` (and the device-alone choice) respond to the cloud's queue.
        quality: The measured quality curve: a shipped curve's name (`pdcore.refine.list_quality_curves`),
            the path of a ``.toml`` written by ``pdcore refine-eval``, or a mapping ``{ratio: drop}``
            (checked as given, whatever ``quality_bound``). Default: ``"smollm2-135m"`` with
            ``refine_ratio="auto"``, none otherwise. With a fixed ratio, a ratio the curve does not
            measure or whose drop exceeds the budget is rejected.
        quality_budget: The largest quality drop accepted (absolute F1, 0.02 = 2 points).
        quality_bound: What the budget is checked against: ``"ci95"``, the upper end of the drop's 95%
            interval, or ``"mean"``, its estimate.
        k_site: Where a disaggregated cloud decodes the ``k`` tokens: ``"pool"`` (the decode pool, after
            the KV transfer, as any request), ``"prefill"`` (the prefill instance that prefilled the
            prompt, beside its prefill chunks: no transfer, no decode slot) or ``"auto"`` (the default:
            the site the cloud offers, `pdcore.sim.Scenario.k_sites`; where it offers both, the optimizer
            picks per request and says why, `pdcore.optimize.Optimizer`, and a fixed ``k`` goes to the
            pool). A fixed site must be one the cloud offers.
        cost_weight: With ``k="auto"``, the optimizer's weight on cloud dollars: seconds of TTFT one dollar
            per 1,000 requests is worth; with a weight, the device alone or the cloud alone may win over
            the split (`pdcore.optimize.Optimizer`). Unset: the run's (``--cost-weight``, default 0).
        energy_weight: Likewise for device energy, seconds of TTFT per joule (``--energy-weight``).

    Raises:
        InvalidInputError: A setting out of range, an unreadable curve, or a fixed ratio over budget.
    """

    name = "pd-device"
    mode = "pd"

    def __init__(
        self,
        k: int | Literal["auto"] = "auto",
        refine_ratio: float | Literal["auto"] = 1.0,
        min_tpot_s: float = 0.0,
        max_tpot_s: float | None = None,
        max_k: int = DEFAULT_MAX_K,
        load_adaptive: bool = True,
        quality: QualitySource | None = None,
        quality_budget: float = DEFAULT_QUALITY_BUDGET,
        quality_bound: QualityBound = DEFAULT_QUALITY_BOUND,
        k_site: str = "auto",
        cost_weight: float | None = None,
        energy_weight: float | None = None,
    ) -> None:
        super().__init__(
            k,
            refine_ratio,
            min_tpot_s,
            max_tpot_s,
            max_k,
            load_adaptive,
            quality=quality,
            quality_budget=quality_budget,
            quality_bound=quality_bound,
            k_site=k_site,
            cost_weight=cost_weight,
            energy_weight=energy_weight,
        )

    def _split_plan(self, k: int, refine_ratio: float, k_site: str = "pool") -> Plan:
        if k < 0:
            plan = self._plans.get((k, 1.0, "pool"))
            if plan is None:
                plan = Plan("device", min_tpot_s=self.min_tpot_s, max_tpot_s=self._pace)
                self._plans[(k, 1.0, "pool")] = plan
            return plan
        return super()._split_plan(k, refine_ratio, k_site)


class NaiveSplit(PDDevice):
    """The naive split: as P/D-Device with the same ``k``, but cloud tokens are shown as they arrive.

    Without the speed controller the buffer is shown at the cloud's pace and runs out early, so the user
    waits at the hand-off; compare its ``handoff_stall_s`` with P/D-Device's.

    Args:
        k: Cloud decode tokens after the first, or ``"auto"`` (P/D-Device's rule).
        max_tpot_s: The gap above which a hand-off counts as a stall; unset, the TPOT SLO.
        max_k: The cap on an automatic ``k``.
        k_site: Where the ``k`` tokens are decoded (P/D-Device's setting).
    """

    name = "naive-split"
    mode = "naive"

    def __init__(
        self,
        k: int | Literal["auto"] = "auto",
        max_tpot_s: float | None = None,
        max_k: int = DEFAULT_MAX_K,
        k_site: str = "auto",
    ) -> None:
        super().__init__(k, 1.0, 0.0, max_tpot_s, max_k, k_site=k_site)

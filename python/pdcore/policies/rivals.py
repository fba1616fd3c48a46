"""The rival device-cloud strategies, each run through the same simulator and metrics as P/D-Device.

- `DiSCo` (``disco``): Sun, Wang and Lai, "DiSCo: Device-Server Collaborative LLM-Based Text Streaming
  Services", arXiv 2502.11417 (ACL Findings 2025).
- `Router` (``router``): after Ong et al., "RouteLLM: Learning to Route LLMs with Preference Data",
  arXiv 2406.18665 (2024).
- `SpecDecoding` (``spec-decode``): speculative decoding (Leviathan, Kalman and Matias, ICML 2023,
  arXiv 2211.17192) across the network, the device drafting and the cloud verifying, as in SLED (Li et
  al., arXiv 2506.09397).

Each docstring states the paper's rule and, plainly, where the paper leaves a choice open and the rule is
pdcore's own. Both plan natively (`Policy.native`) with the same rule their `plan` applies, so a run gives
the same results either way.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import numpy.typing as npt

from pdcore._core import ROUTER_BUCKETS, DeviceCost, NativePolicy, Plan, RouterRule
from pdcore.exceptions import InvalidInputError, InvalidStateError
from pdcore.limits import MAX_REQUESTS, check_float, check_int
from pdcore.policies.base import (
    CloudLoad,
    PacedPolicy,
    PolicyContext,
    RequestInfo,
    check_max_tpot,
    check_min_tpot,
)
from pdcore.slo import DEFAULT_MAX_TPOT_S

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_DISCO_BUDGET",
    "DEFAULT_GAMMA",
    "DEFAULT_ROUTER_MIN_BUCKET",
    "DEFAULT_ROUTER_QUANTILE",
    "DiSCo",
    "Router",
    "SpecDecoding",
    "disco_threshold",
    "higher_quantile",
    "length_table",
]

DEFAULT_DISCO_BUDGET = 0.5
"""DiSCo's default cloud budget: the share of requests that may start on the cloud (ours; module doc)."""

DEFAULT_ROUTER_QUANTILE = 0.5
"""The router's default quantile of the answer lengths in a prompt bucket: the median (ours)."""

DEFAULT_GAMMA = 4
"""Speculative decoding's default draft length (ours; Leviathan et al. evaluate drafts of 1 to 10)."""

DEFAULT_ALPHA = 0.7
"""Speculative decoding's default acceptance rate of a draft token (ours: a small draft model of the
target's family; Leviathan et al. measure rates from about 0.5 to 0.9 across model pairs and tasks)."""

DEFAULT_ROUTER_MIN_BUCKET = 32
"""The fewest requests a prompt bucket needs for its own quantile; sparser buckets use the trace's (ours)."""


def _fraction(value: object, name: str, *, low_open: bool) -> float:
    """A setting that is a fraction: in (0, 1] when ``low_open``, else [0, 1]."""
    return check_float(value, name, minimum=0.0, maximum=1.0, above_minimum=low_open)


def _workload_of(context: PolicyContext | None, who: str) -> tuple[npt.NDArray[np.int64], ...]:
    if context is None or context.workload is None:
        raise InvalidStateError(
            f"{who} fits its rule to the run's workload; call prepare(context) with "
            "PolicyContext.workload set first (pdcore.sim.simulate does)"
        )
    workload = context.workload
    return (
        np.asarray(workload.prompt_tokens, dtype=np.int64),
        np.asarray(workload.output_tokens, dtype=np.int64),
    )


def higher_quantile(values: npt.ArrayLike, q: float) -> int:
    """The smallest value that at least a fraction ``q`` of ``values`` are at most: the sorted values'
    entry ``ceil(q * n) - 1`` (numpy's ``method="inverted_cdf"``), so the prediction is a length seen in
    the trace.

    Example:
        >>> higher_quantile([5, 1, 3, 2], 0.5)
        2
    """
    ordered = np.sort(np.asarray(values, dtype=np.int64))
    if ordered.size == 0:
        raise InvalidInputError("a quantile of no values; fix: pass a workload with requests")
    rank = max(math.ceil(q * ordered.size), 1)
    return int(ordered[rank - 1])


def length_table(
    prompt_tokens: npt.ArrayLike, output_tokens: npt.ArrayLike, q: float, min_bucket: int
) -> list[int]:
    """The router's predictor: per prompt bucket ``floor(log2 p)`` (32 buckets), the ``q``
    `higher_quantile` of the answer lengths of the trace's requests in that bucket, or of the whole
    trace where the bucket holds fewer than ``min_bucket`` requests.

    Example:
        >>> length_table([1, 2, 3], [10, 20, 40], 0.5, 2)[:3]
        [20, 20, 20]
        >>> length_table([1, 2, 3], [10, 20, 40], 0.5, 1)[:3]
        [10, 20, 20]
    """
    prompts = np.asarray(prompt_tokens, dtype=np.int64)
    outputs = np.asarray(output_tokens, dtype=np.int64)
    everyone = higher_quantile(outputs, q)
    # frexp gives p = m * 2**e with m in [0.5, 1): floor(log2 p) = e - 1, exactly for whole numbers
    buckets = np.frexp(prompts.astype(np.float64))[1] - 1
    table = [everyone] * ROUTER_BUCKETS
    for b in range(ROUTER_BUCKETS):
        mine = outputs[buckets == b]
        if mine.size >= min_bucket:
            table[b] = higher_quantile(mine, q)
    return table


def disco_threshold(prompt_tokens: npt.ArrayLike, budget: float) -> int:
    """DiSCo's length threshold for a cloud ``budget``: the shortest prompt length such that at most
    ``floor(budget * n)`` of the ``n`` requests have a longer prompt (0 when every request may use it).

    Example:
        >>> disco_threshold([10, 20, 30, 40], 0.5)
        20
        >>> disco_threshold([10, 20, 30, 40], 1.0), disco_threshold([10, 20, 30, 40], 0.0)
        (0, 40)
    """
    ordered = np.sort(np.asarray(prompt_tokens, dtype=np.int64))
    n = int(ordered.size)
    allowed = math.floor(budget * n)
    if allowed >= n:
        return 0
    return int(ordered[n - allowed - 1])


class DiSCo(PacedPolicy):
    """DiSCo (Sun et al., arXiv 2502.11417): a length-threshold dispatch under a cloud budget, racing both
    sides for the first token, and migration of the stream from the cloud to the device.

    The paper's rule, as run here (its server-cost-constrained setting, the one where the cloud's cost is
    what the budget limits, as pdcore's GPU-seconds are):

    - Dispatch. The device's TTFT grows predictably with the prompt while the cloud's barely does, so a
      request whose prompt is at most the length threshold starts on the device alone; a longer one starts
      on both sides, and whichever shows the first token first serves it. In a conversation the length
      compared is what the device must prefill: the prompt less what its session cache holds
      (`RequestInfo.device_cached_tokens`; ours, the paper's requests are single-turn). The threshold is
      the shortest length that keeps the share of requests allowed on the cloud within ``budget``
      (`disco_threshold` over the run's prompts), or ``length_threshold`` when given.
    - Migration. When the cloud wins the first token, it streams the answer while the device prefills the
      prompt. The migration starts when the device has the prompt: it tells the cloud to stop (the cloud
      hears of it one network delay later), prefills the tokens generated so far, in chunks, as they
      arrive, and continues decoding from the first position it was not sent. The token buffer holds the
      cloud's tokens and shows them at a paced rate (pdcore's speed controller, between ``min_tpot_s`` and
      ``max_tpot_s``, aimed at the device's hand-off) so the stream stays smooth across the migration. When
      the device wins the race, it serves alone and the cloud is cancelled; when the cloud finishes the
      answer before the device has the prompt, the cloud serves it all. In the simulator this is the
      ``disco`` mode (`pdcore.sim`): no token is lost or shown twice.

    What is ours: the paper tunes its threshold to a budget measured on its traces and sweeps the budget;
    pdcore's default ``budget`` of 0.5 (half the requests may use the cloud) is our choice, and so are
    fitting the threshold to the run's own prompts, pacing the buffer with pdcore's speed controller, and
    the moment the migration starts: as soon as the device has prefilled the prompt, the cloud is stopped
    (a device that spends at least one decode step per appended chunk never catches up with a cloud that
    keeps streaming faster than it decodes). The paper's device-cost-constrained variant (the cloud first,
    the device as a delayed backup, migration to the cloud) is not modelled.

    Args:
        budget: The share of requests that may start on the cloud, in [0, 1].
        length_threshold: The longest prompt that starts on the device alone, or ``"auto"`` (from
            ``budget`` and the run's prompts).
        min_tpot_s: The smallest display gap of the buffer, seconds.
        max_tpot_s: The largest display gap the buffer aims for, seconds; unset, the TPOT SLO.
        k_site: Where a disaggregated cloud decodes: ``"pool"``, ``"prefill"`` or ``"auto"`` (the decode
            pool, unless the cloud offers only the prefill instance).

    Raises:
        InvalidInputError: A setting out of range.
    """

    name = "disco"

    def __init__(
        self,
        budget: float = DEFAULT_DISCO_BUDGET,
        length_threshold: int | Literal["auto"] = "auto",
        min_tpot_s: float = 0.0,
        max_tpot_s: float | None = None,
        k_site: str = "auto",
    ) -> None:
        self.budget = _fraction(budget, "budget", low_open=False)
        if length_threshold != "auto" and (
            isinstance(length_threshold, bool)
            or not isinstance(length_threshold, int)
            or not 0 <= length_threshold < 2**32
        ):
            raise InvalidInputError(
                f"length_threshold = {length_threshold!r}; pass the longest prompt (tokens, 0 or more) that "
                "starts on the device alone, or 'auto'"
            )
        if not isinstance(k_site, str) or k_site not in ("pool", "prefill", "auto"):
            raise InvalidInputError(f"k_site = {k_site!r}; pass 'pool', 'prefill' or 'auto'")
        self.length_threshold: int | Literal["auto"] = length_threshold
        self.min_tpot_s = check_min_tpot(min_tpot_s)
        self.max_tpot_s = check_max_tpot(max_tpot_s, self.min_tpot_s)
        self.k_site = k_site
        self.threshold: int | None = None
        """The threshold of the run (set by `prepare`)."""
        self._short = Plan(
            "device", min_tpot_s=self.min_tpot_s, max_tpot_s=self.max_tpot_s or DEFAULT_MAX_TPOT_S
        )
        self._long = self._short

    def prepare(self, context: PolicyContext) -> None:
        pace = self.max_tpot_s or context.max_tpot_s
        if pace <= self.min_tpot_s:
            raise InvalidInputError(
                f"{self.name}: min_tpot_s = {self.min_tpot_s!r} is not below the TPOT SLO {pace!r}; lower "
                "min_tpot_s or pass max_tpot_s explicitly"
            )
        if self.length_threshold == "auto":
            prompts, _ = _workload_of(context, f"{self.name} (length_threshold='auto')")
            self.threshold = disco_threshold(prompts, self.budget)
        else:
            self.threshold = self.length_threshold
        site = self.k_site
        if site == "auto":
            only_prefill = context.deployment == "disaggregated" and context.k_sites == "prefill"
            site = "prefill" if only_prefill else "pool"
        self._short = Plan("device", min_tpot_s=self.min_tpot_s, max_tpot_s=pace)
        self._long = Plan("disco", min_tpot_s=self.min_tpot_s, max_tpot_s=pace, k_site=site)

    def plan(self, req: RequestInfo, load: CloudLoad) -> Plan:
        if self.threshold is None:
            raise InvalidStateError(f"{self.name} needs the run's threshold; call prepare(context) first")
        uncached = req.prompt_tokens - req.device_cached_tokens
        return self._short if uncached <= self.threshold else self._long

    def native(self) -> NativePolicy | None:
        if self.threshold is None:
            return None  # plan() explains that prepare() comes first
        return NativePolicy.by_prompt(threshold=self.threshold, short=self._short, long=self._long)


class Router(PacedPolicy):
    """A whole-request router after RouteLLM (Ong et al., arXiv 2406.18665): each request entirely on the
    device or entirely on the cloud, chosen before it starts by a predictor.

    RouteLLM routes a query to the cheap model when a learned predictor says the cheap model's answer
    suffices. Here the cheap side is the device and "suffices" is pdcore's objectives, judged from the
    prompt's length and a prediction of the answer's (the rule is the cost model's,
    `pdcore._core.RouterRule`): the device takes the request when, alone, its prefill (of what its session
    cache does not hold, `RequestInfo.device_cached_tokens`) is within the TTFT SLO and each of its decode
    steps up to the predicted last token is within the largest-gap objective; otherwise the cloud serves
    it all.

    The predictor (ours; RouteLLM's predictors score quality, not length): a per-trace quantile model. The
    run's requests are put in buckets by ``floor(log2 prompt)``, and a request's answer is predicted as the
    ``quantile`` of the answer lengths in its bucket (`length_table`; a bucket of fewer than ``min_bucket``
    requests uses the whole trace's). It is fitted once before the run, as a length predictor trained on
    the service's history would be; no request's own answer length is read while it is planned.

    Args:
        quantile: The quantile of a bucket's answer lengths that predicts an answer, in (0, 1]; higher
            sends more requests to the cloud.
        min_bucket: The fewest requests a bucket needs for its own quantile.
        max_tpot_s: The largest-gap objective and the plans' pacing bound, seconds; unset, the TPOT SLO.

    Raises:
        InvalidInputError: A setting out of range.
    """

    name = "router"

    def __init__(
        self,
        quantile: float = DEFAULT_ROUTER_QUANTILE,
        min_bucket: int = DEFAULT_ROUTER_MIN_BUCKET,
        max_tpot_s: float | None = None,
    ) -> None:
        self.quantile = _fraction(quantile, "quantile", low_open=True)
        self.min_bucket = check_int(
            min_bucket, "min_bucket", minimum=1, maximum=MAX_REQUESTS, unit="requests"
        )
        self.max_tpot_s = check_max_tpot(max_tpot_s)
        self.rule: RouterRule | None = None
        """The run's rule, with its fitted predictor (set by `prepare`)."""
        self._device: DeviceCost | None = None
        self._pace = self.max_tpot_s or DEFAULT_MAX_TPOT_S
        self._plans = {
            "device": Plan("device", max_tpot_s=self._pace),
            "cloud": Plan("cloud", max_tpot_s=self._pace),
        }

    def prepare(self, context: PolicyContext) -> None:
        prompts, outputs = _workload_of(context, self.name)
        self._pace = self.max_tpot_s or context.max_tpot_s
        self.rule = RouterRule(
            predicted_output=length_table(prompts, outputs, self.quantile, self.min_bucket),
            ttft_slo_s=context.ttft_slo_s,
            max_tpot_s=self._pace,
        )
        self._device = context.device.cost
        self._plans = {mode: Plan(mode, max_tpot_s=self._pace) for mode in ("device", "cloud")}

    def plan(self, req: RequestInfo, load: CloudLoad) -> Plan:
        if self.rule is None or self._device is None:
            raise InvalidStateError(f"{self.name} needs its fitted predictor; call prepare(context) first")
        device = self.rule.on_device(self._device, req.prompt_tokens, req.device_cached_tokens)
        return self._plans["device" if device else "cloud"]

    def native(self) -> NativePolicy | None:
        if self.rule is None:
            return None  # plan() explains that prepare() comes first
        return NativePolicy.router(self.rule, min_tpot_s=0.0, max_tpot_s=self._pace)


class SpecDecoding(PacedPolicy):
    """Speculative edge-cloud decoding: the device drafts, the cloud verifies, round after round.

    Speculative decoding (Leviathan, Kalman and Matias, ICML 2023, arXiv 2211.17192) lets a small draft
    model propose ``gamma`` tokens that the target model checks in one forward pass, keeping the accepted
    prefix and one token of its own; SLED (Li et al., arXiv 2506.09397) splits it across the network, edge
    devices drafting and a shared server verifying their drafts in batches. Here the device's model drafts
    and the cloud's verifies:

    - TTFT comes from the cloud's prefill: the cloud prefills the prompt and sends the first token, then
      holds the request's decode slot (and cache) for the whole answer.
    - The device prefills the prompt from the request's arrival; until it has the prompt and the first
      token, it cannot draft, so the stream shows the first token and waits (ours: the papers start the
      draft model on the prompt too and leave this wait implicit).
    - Each round: the device drafts ``gamma`` tokens (one of its decode steps each), sends them (one
      network delay), the cloud verifies them in one iteration of its continuous batch (priced by the
      iteration model: the sequence's decode term plus ``gamma`` tokens as a prefill chunk after its
      context), and sends back the accepted drafts and its own token (one network delay); they are shown
      at once on arrival.
    - A round yields ``E = (1 - alpha^(gamma+1)) / (1 - alpha)`` tokens in expectation (Leviathan et al.,
      eq. 1), simulated deterministically (ours): round ``r`` yields ``floor(r E) - floor((r-1) E)``, so
      the total after any round is the expected one rounded down (`pdcore._core.Plan`, Rust
      ``cost::spec``).

    Args:
        gamma: Draft tokens per round, 1 to 64.
        alpha: The acceptance rate of a draft token, in [0, 1].
        min_tpot_s: The smallest display gap between the tokens of a round, seconds.
        max_tpot_s: The largest-gap objective the plan carries, seconds; unset, the TPOT SLO.

    Raises:
        InvalidInputError: A setting out of range.
    """

    name = "spec-decode"

    def __init__(
        self,
        gamma: int = DEFAULT_GAMMA,
        alpha: float = DEFAULT_ALPHA,
        min_tpot_s: float = 0.0,
        max_tpot_s: float | None = None,
    ) -> None:
        if isinstance(gamma, bool) or not isinstance(gamma, int) or not 1 <= gamma <= 64:
            raise InvalidInputError(f"gamma = {gamma!r}; pass the draft tokens per round, 1 to 64")
        self.gamma = gamma
        self.alpha = _fraction(alpha, "alpha", low_open=False)
        self.min_tpot_s = check_min_tpot(min_tpot_s)
        self.max_tpot_s = check_max_tpot(max_tpot_s, self.min_tpot_s)
        self._plan = self._make(self.max_tpot_s or DEFAULT_MAX_TPOT_S)

    def _make(self, pace: float) -> Plan:
        return Plan("spec", gamma=self.gamma, alpha=self.alpha, min_tpot_s=self.min_tpot_s, max_tpot_s=pace)

    def prepare(self, context: PolicyContext) -> None:
        pace = self.max_tpot_s or context.max_tpot_s
        if pace <= self.min_tpot_s:
            raise InvalidInputError(
                f"{self.name}: min_tpot_s = {self.min_tpot_s!r} is not below the TPOT SLO {pace!r}; lower "
                "min_tpot_s or pass max_tpot_s explicitly"
            )
        self._plan = self._make(pace)

    def plan(self, req: RequestInfo, load: CloudLoad) -> Plan:
        return self._plan

    def native(self) -> NativePolicy | None:
        return NativePolicy.fixed(self._plan)

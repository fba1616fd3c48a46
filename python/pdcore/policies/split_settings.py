"""The settings of the split policies (`pdcore.policies.split`), checked where a policy is built: each
setting of the wrong type or out of range is refused, naming it and the fix."""

from __future__ import annotations

from typing import Literal

from pdcore.exceptions import InvalidInputError
from pdcore.limits import LIMITS_DOC, MAX_K
from pdcore.optimize.arguments import check_max_k
from pdcore.optimize.optimizer import check_weight
from pdcore.optimize.quality import QUALITY_BOUNDS, QualityBound
from pdcore.policies.base import check_min_tpot

__all__ = ["K_SITE_SETTINGS", "check_split_settings"]

K_SITE_SETTINGS = ("pool", "prefill", "auto")
"""The values of the split policies' ``k_site`` setting."""


def check_split_settings(
    k: int | Literal["auto"],
    refine_ratio: float | Literal["auto"],
    min_tpot_s: float,
    max_k: int,
    quality_bound: QualityBound,
    k_site: str,
    cost_weight: float | None,
    energy_weight: float | None,
) -> None:
    """Refuses a split policy's setting out of range, naming it and the fix."""
    for key, weight in (("cost_weight", cost_weight), ("energy_weight", energy_weight)):
        if weight is not None:
            check_weight(weight, key, unset="or leave it unset for the run's")
    if not isinstance(k_site, str) or k_site not in K_SITE_SETTINGS:
        raise InvalidInputError(
            f"k_site = {k_site!r}; pass where the k tokens are decoded: 'pool' (the decode pool), "
            "'prefill' (the prefill instance) or 'auto' (the optimizer picks per request)"
        )
    if k != "auto" and (isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= MAX_K):
        raise InvalidInputError(
            f"k = {k!r}; pass the number of cloud decode tokens after the first (0 to {MAX_K:,}) "
            f"or 'auto' (limits: {LIMITS_DOC})"
        )
    if refine_ratio != "auto" and (
        isinstance(refine_ratio, bool)
        or not isinstance(refine_ratio, (int, float))
        or not 0.0 < refine_ratio <= 1.0
    ):
        raise InvalidInputError(
            f"refine_ratio = {refine_ratio!r}; pass the kept fraction of the prompt in (0, 1] or 'auto'"
        )
    if refine_ratio == "auto" and k != "auto":
        raise InvalidInputError(
            f"refine_ratio = 'auto' with k = {k!r}: the ratio is chosen together with k; fix: pass "
            "k='auto', or a fixed refine_ratio"
        )
    check_min_tpot(min_tpot_s)
    check_max_k(max_k)
    if not isinstance(quality_bound, str) or quality_bound not in QUALITY_BOUNDS:
        raise InvalidInputError(
            f"quality_bound = {quality_bound!r}; pass 'ci95' (the upper end of the drop's 95% interval) "
            "or 'mean' (its estimate)"
        )

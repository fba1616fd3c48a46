"""The quality side of refinement: which ratios a quality budget allows, from a measured curve.

A quality curve (`pdcore.quality_curves`: measured by ``pdcore refine-eval``, shipped as
``pdcore/refine/data/quality-<name>.toml``) gives, per refinement ratio ``r``, the measured drop of answer
quality (absolute F1, 0.02 = two points) and a paired bootstrap 95% interval of it. `MeasuredQuality`
reads such a curve, or a plain mapping ``{ratio: drop}``, and answers which drop the budget is checked
against.

The bound (pdcore's rule, not the paper's; arXiv 2508.09035 publishes no quality criterion):

- ``"ci95"`` (the default): the upper end of the drop's 95% interval. A ratio is allowed only when the
  evaluation supports "the drop is at most the budget" (one-sided, at 97.5%). The budget is then a
  promise the data backs; a point estimate from a small evaluation is not. With few items the intervals
  are wide and nothing but ``r = 1`` may qualify: refinement then stays off until an evaluation is large
  enough to show it is safe.
- ``"mean"``: the point estimate. It lets refinement in on the evidence of the average alone, so the true
  drop may exceed the budget (by up to the interval's half-width).

A plain mapping carries no interval: its values are checked as given, whatever the bound (pass upper
bounds yourself to be conservative). ``r = 1`` is the reference and is always allowed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

from pdcore.exceptions import InvalidInputError
from pdcore.limits import check_float
from pdcore.quality_curves import load_quality_report

__all__ = [
    "DEFAULT_QUALITY_BOUND",
    "DEFAULT_QUALITY_BUDGET",
    "DEFAULT_QUALITY_CURVE",
    "QUALITY_BOUNDS",
    "MeasuredQuality",
    "QualityBound",
    "QualityDrop",
    "QualitySource",
    "check_quality_budget",
    "check_quality_mapping",
]

QualityBound: TypeAlias = Literal["mean", "ci95"]
"""What a quality budget is checked against: the drop's point estimate or its 95% upper bound."""

QualitySource: TypeAlias = "str | os.PathLike[str] | Mapping[float, float]"
"""A shipped curve's name, the path of a curve file, or a mapping ``{ratio: drop}``."""

QUALITY_BOUNDS: tuple[QualityBound, ...] = ("mean", "ci95")
DEFAULT_QUALITY_BOUND: QualityBound = "ci95"
"""The conservative bound (module docstring)."""

DEFAULT_QUALITY_CURVE = "smollm2-135m"
"""The shipped curve used when refinement is automatic and no curve is named."""

DEFAULT_QUALITY_BUDGET = 0.02
"""The largest accepted quality drop: two points of F1."""


def check_quality_budget(budget: object, name: str = "quality_budget") -> float:
    """The budget as a float.

    Raises:
        InvalidInputError: Not a finite number >= 0 (a bool, a str or an integer beyond a float is not one).
    """
    try:
        return check_float(budget, name, minimum=0.0, maximum=math.inf)
    except InvalidInputError:
        raise InvalidInputError(f"{name} = {budget!r}; pass a finite drop >= 0 (0.02 = 2 points)") from None


def _is_real(value: object) -> bool:
    """Whether ``value`` is a finite real number (`pdcore.limits.check_float`)."""
    try:
        check_float(value, "value", minimum=-math.inf, maximum=math.inf)
    except InvalidInputError:
        return False
    return True


def check_quality_mapping(quality: Mapping[float, float], name: str = "quality") -> dict[float, float]:
    """``{ratio: drop}`` with float keys and values, checked.

    Raises:
        InvalidInputError: A ratio outside (0, 1] or a drop that is not a finite number; the message
            names the entry.
    """
    if not isinstance(quality, Mapping):
        raise InvalidInputError(
            f"{name} = {quality!r}; pass a mapping {{ratio: drop}}, a shipped curve's name or a .toml path"
        )
    out: dict[float, float] = {}
    for ratio, drop in quality.items():
        if not _is_real(ratio) or not 0.0 < ratio <= 1.0:
            raise InvalidInputError(
                f"{name}: ratio {ratio!r} (drop {drop!r}) is not in (0, 1]; fix: key the drops by the kept "
                "fraction of the prompt, e.g. {0.5: 0.01}"
            )
        if not _is_real(drop):
            raise InvalidInputError(
                f"{name}: the drop at ratio {ratio!r} is {drop!r}; fix: pass a finite quality drop "
                "(absolute F1, 0.02 = 2 points)"
            )
        out[float(ratio)] = float(drop)
    return out


@dataclass(frozen=True, slots=True)
class QualityDrop:
    """The measured quality drop at one ratio.

    Attributes:
        ratio: The refinement ratio.
        mean: The drop's point estimate.
        high: The upper end of its 95% interval (``mean`` when the source has no interval).
    """

    ratio: float
    mean: float
    high: float

    def bound(self, which: QualityBound) -> float:
        """The drop the budget is checked against."""
        return self.high if which == "ci95" else self.mean


@dataclass(frozen=True, slots=True)
class MeasuredQuality:
    """Quality drops over refinement ratios, from a curve file or a mapping.

    Attributes:
        source: What was read: the curve's name or path, or ``"the given mapping"``.
        drops: One entry per measured ratio, ratios descending.
        has_interval: Whether the drops carry a 95% interval (a curve file does, a mapping does not).
    """

    source: str
    drops: tuple[QualityDrop, ...]
    has_interval: bool

    @classmethod
    def load(cls, quality: QualitySource, name: str = "quality") -> MeasuredQuality:
        """Reads a shipped curve's name, a curve file's path, or a mapping ``{ratio: drop}``.

        Raises:
            InvalidInputError: An unknown name, a missing or malformed file, or a bad mapping entry.
        """
        if isinstance(quality, Mapping):
            drops = check_quality_mapping(quality, name)
            entries = tuple(QualityDrop(r, d, d) for r, d in sorted(drops.items(), reverse=True))
            return cls(source="the given mapping", drops=entries, has_interval=False)
        if not isinstance(quality, (str, os.PathLike)):
            raise InvalidInputError(
                f"{name} = {quality!r}; pass a shipped curve's name (e.g. {DEFAULT_QUALITY_CURVE!r}), the "
                "path of a .toml written by `pdcore refine-eval`, or a mapping {ratio: drop}"
            )
        curve = load_quality_report(quality)
        entries = tuple(
            QualityDrop(float(p.ratio), float(p.drop), max(float(p.drop), float(p.drop_ci95[1])))
            for p in sorted(curve.points, key=lambda p: p.ratio, reverse=True)
        )
        return cls(source=os.fspath(quality), drops=entries, has_interval=True)

    @property
    def ratios(self) -> tuple[float, ...]:
        """The measured ratios, descending."""
        return tuple(d.ratio for d in self.drops)

    def checked(self, bound: QualityBound) -> dict[float, float]:
        """``{ratio: drop}`` with the drop the budget is checked against (the optimizer's ``quality``)."""
        return {d.ratio: d.bound(bound) for d in self.drops}

    def find(self, ratio: float) -> QualityDrop | None:
        """The entry measured at ``ratio`` (up to float rounding), if any."""
        for d in self.drops:
            if math.isclose(d.ratio, ratio, rel_tol=0.0, abs_tol=1e-9):
                return d
        return None

    def allowed(self, budget: float, bound: QualityBound) -> tuple[float, ...]:
        """The ratios within ``budget``, descending; ``1.0`` always."""
        within = {d.ratio for d in self.drops if d.bound(bound) <= budget}
        return tuple(sorted(within | {1.0}, reverse=True))

    def describe(self, budget: float, bound: QualityBound, ratios: Sequence[float] | None = None) -> str:
        """One line: the budget, the bound, which ratios it allows and every ratio's measured drop.

        Args:
            budget: The quality budget.
            bound: What the budget is checked against.
            ratios: The candidate ratios (default: every measured one).
        """
        shown = [d for d in self.drops if d.ratio < 1.0 and (ratios is None or d.ratio in ratios)]
        allowed = [r for r in self.allowed(budget, bound) if ratios is None or r == 1.0 or r in ratios]
        if not self.has_interval:
            against = "the drops given"
        else:
            which = "the 95% CI upper bound" if bound == "ci95" else "the estimate"
            against = f"{which} of quality {self.source}"
        head = (
            f"refinement: budget {budget:g} checked against {against} allows r = "
            + ", ".join(f"{r:g}" for r in allowed)
            + (" only (no refined ratio qualifies)" if allowed == [1.0] else "")
        )
        if not shown:
            return head
        label = "estimate / 95% CI upper" if self.has_interval else "as given"
        parts = []
        for d in shown:
            value = f"{d.mean:+.3f} / {d.high:+.3f}" if self.has_interval else f"{d.mean:+.3f}"
            verdict = "ok" if d.bound(bound) <= budget else "over budget"
            parts.append(f"r = {d.ratio:g} {value} {verdict}")
        return f"{head}; F1 drop ({label}): " + ", ".join(parts)

"""One measured point of a quality curve: the record, and how a data file's ``[[point]]`` table is read into
one, every value by its type and range (`read_point`), so that a hand-edited or hostile curve file is
refused with the key and the fix rather than failing inside the optimizer.

What is refused (`pdcore.quality_curves` reads the file): a missing key, a value of the wrong type (a
string, a bool, a nested table where a number goes), a ratio outside (0, 1], a drop that is not finite, a
reversed 95% interval, times outside [0, `pdcore.limits.MAX_PROFILE_SECONDS`] (NaN: not measured), scores
outside [0, 1], and a token count outside [0, `pdcore.limits.MAX_TOKENS`]. An integer too large for a
float is read as infinite, and so refused where a finite value is needed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pdcore.exceptions import InvalidInputError
from pdcore.limits import LIMITS_DOC, MAX_PROFILE_SECONDS, MAX_TOKENS, check_int

__all__ = ["QualityPoint", "read_point"]


@dataclass(frozen=True, slots=True)
class QualityPoint:
    """Quality and device prefill time at one ratio.

    Attributes:
        ratio: The refinement ratio ``r``.
        question_weight: The relevance weight.
        exact_match: Mean exact match, 0..1.
        f1: Mean token F1, 0..1.
        drop: ``f1(r = 1) - f1(r)`` (0.02 = two points; negative: refinement helped).
        drop_ci95: Paired bootstrap 95% interval of ``drop``.
        fact_kept: Share of items whose key fact survived.
        kept_ratio: Mean share of scored tokens kept.
        device_token_ratio: Mean device prompt tokens over those at ``r = 1``.
        prefill_s: Median prefill seconds of the timing prompt (the longest item), refined at ``r``.
        prefill_tokens: Device tokens of that prompt.
        prefill_speedup: ``prefill_s(r = 1) / prefill_s(r)``.
        prefill_runs_s: Every timed run behind ``prefill_s``, in order.
        f1_by_family: Mean F1 per family.
    """

    ratio: float
    question_weight: float
    exact_match: float
    f1: float
    drop: float
    drop_ci95: tuple[float, float]
    fact_kept: float
    kept_ratio: float
    device_token_ratio: float
    prefill_s: float
    prefill_tokens: int
    prefill_speedup: float
    prefill_runs_s: tuple[float, ...]
    f1_by_family: dict[str, float]


_NOT_ONE_NUMBER = ("prefill_tokens", "drop_ci95", "prefill_runs_s", "f1_by_family")
_FIX = "write every key of a QualityPoint with a ratio in (0, 1] and a finite drop"


def read_point(entry: object, where: str) -> QualityPoint:
    """One ``[[point]]`` table as a `QualityPoint`, every value read by its type and checked (module doc).

    Raises:
        InvalidInputError: Naming ``where``, the key and the fix.
    """
    if not isinstance(entry, Mapping):
        raise InvalidInputError(f"{where} is not a table; fix: {_FIX}")
    missing = next((key for key in QualityPoint.__slots__ if key not in entry), None)
    if missing is not None:
        raise InvalidInputError(f"{where} has missing key {missing!r}; fix: {_FIX}")

    def numbers(key: str, count: int | None = None) -> tuple[float, ...]:
        raw = entry[key]
        if not isinstance(raw, list) or (count is not None and len(raw) != count):
            raise InvalidInputError(f"{where}: {key} = {raw!r} is not a list of numbers; fix: {_FIX}")
        return tuple(_number(value, f"{where}: {key}[{i}]") for i, value in enumerate(raw))

    singles = [key for key in QualityPoint.__slots__ if key not in _NOT_ONE_NUMBER]
    values: dict[str, Any] = {key: _number(entry[key], f"{where}: {key}") for key in singles}
    families = entry["f1_by_family"]
    if not isinstance(families, Mapping):
        raise InvalidInputError(f"{where}: f1_by_family = {families!r} is not a table; fix: {_FIX}")
    low, high = numbers("drop_ci95", 2)
    tokens = check_int(entry["prefill_tokens"], f"{where}: prefill_tokens", minimum=0, maximum=MAX_TOKENS)
    point = QualityPoint(
        **values,
        prefill_tokens=tokens,
        drop_ci95=(low, high),
        prefill_runs_s=numbers("prefill_runs_s"),
        f1_by_family={str(k): _number(v, f"{where}: f1_by_family.{k}") for k, v in families.items()},
    )
    if not (0.0 < point.ratio <= 1.0 and math.isfinite(point.drop)):
        raise InvalidInputError(f"{where} has ratio = {point.ratio!r}, drop = {point.drop!r}; fix: {_FIX}")
    _check_point(point, where)
    return point


def _number(value: object, where: str) -> float:
    """A number of a data file: an int or a float (NaN allowed here, checked by its key); an integer too
    large for a float is infinite."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInputError(f"{where} = {value!r} is not a number; fix: write a number")
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _check_point(point: QualityPoint, where: str) -> None:
    """Refuses what no measurement can give: a reversed interval, negative or absurd times, scores
    outside [0, 1]."""
    low, high = point.drop_ci95
    no_interval = math.isnan(low) and math.isnan(high)  # the file has no interval: nan on both ends
    if not no_interval and not (math.isfinite(low) and math.isfinite(high) and low <= high):
        raise InvalidInputError(
            f"{where}: drop_ci95 = [{low!r}, {high!r}] is not an interval (low above high, or not finite); "
            "fix: write [low, high] with low <= high, or [nan, nan] for none"
        )
    times = {"prefill_s": float(point.prefill_s)} | {
        f"prefill_runs_s[{i}]": float(v) for i, v in enumerate(point.prefill_runs_s)
    }
    for key, value in times.items():
        if not (math.isnan(value) or 0.0 <= value <= MAX_PROFILE_SECONDS):
            raise InvalidInputError(
                f"{where}: {key} = {value!r}; fix: a time must be from 0 to {MAX_PROFILE_SECONDS:g} s "
                f"(limits: {LIMITS_DOC})"
            )
    scores = {"f1": point.f1, "exact_match": point.exact_match, "fact_kept": point.fact_kept}
    for key, value in scores.items():
        if not 0.0 <= float(value) <= 1.0:
            raise InvalidInputError(f"{where}: {key} = {value!r}; fix: a score must be in [0, 1]")

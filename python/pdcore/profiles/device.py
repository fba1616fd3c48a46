"""Device (phone/laptop) speed profiles: prefill time against prompt length, decode TPOT against context.

A device profile is two piecewise-linear curves read from a TOML file:

- prefill: measured (or derived) points ``(prompt_tokens, seconds)``. Below the first point the curve runs
  straight from the origin (0 tokens cost 0 s) to that point; between points it interpolates linearly;
  beyond the last point it continues with the last segment's slope.
- decode: points ``(context_tokens, tpot_s)``, the time per output token at that KV-cache length. Below the
  first point the TPOT is the first point's; between points it interpolates linearly; beyond the last
  point it continues with the last segment's slope (flat when there is one point or that slope is
  negative).

Invariants, checked on load: x strictly increasing, prefill x >= 1 and decode x >= 0; times finite;
prefill seconds >= 0 and non-decreasing; TPOT > 0.

TOML layout::

    name = "..."            description = "..."   hardware = "..."   model = "..."   engine = "..."
    [prefill]  prompt_tokens = [...]   seconds = [...]
    [decode]   context_tokens = [...]  tpot_s = [...]
    [source]   citation = "..."        notes = "..."
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from pdcore.exceptions import InvalidInputError, ProfileError
from pdcore.profiles._toml import (
    Table,
    check_keys,
    get_number_list,
    get_str,
    get_table,
    parse_toml,
    read_toml,
)

__all__ = ["DeviceProfile"]

FloatArray = npt.NDArray[np.float64]
Scalar = float | int | np.integer[Any] | np.floating[Any]
ArrayInput = npt.NDArray[Any] | Sequence[float]

_TOP_KEYS = ("name", "description", "hardware", "model", "engine", "prefill", "decode", "source")
_PREFILL_KEYS = ("prompt_tokens", "seconds")
_DECODE_KEYS = ("context_tokens", "tpot_s")
_SOURCE_KEYS = ("citation", "notes")


def _tokens_argument(values: Any, argument: str) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(array) | (array < 0)
    if bad.any():
        first = float(array.flat[int(np.flatnonzero(bad)[0])])
        raise InvalidInputError(
            f"{argument} = {first!r}: token counts must be finite and 0 or more; pass a valid token count"
        )
    return array


def _result(values: FloatArray, scalar: bool) -> float | FloatArray:
    return float(values) if scalar else values


@dataclass(frozen=True)
class DeviceProfile:
    """Prefill and decode speed of one model on one device.

    Build one with `DeviceProfile.from_toml_file` or through the registry
    (`pdcore.profiles.load_device_profile`); direct construction validates the same invariants.

    Attributes:
        name: Registry name, e.g. ``"smollm2-135m-q4-cpu2"``.
        description: One-line description.
        hardware: The device (SoC, accelerator, thread count).
        model: The model and its quantisation.
        engine: The inference engine.
        prefill_tokens: Prompt lengths of the prefill points, strictly increasing, each >= 1.
        prefill_seconds: Prefill time at each prompt length, non-decreasing, >= 0.
        decode_context_tokens: KV-cache lengths of the decode points, strictly increasing, each >= 0.
        decode_tpot: Time per output token at each context length, > 0.
        citation: Where the numbers come from.
        notes: How the points were measured or derived.
        source: The file the profile was read from (used in error messages).
    """

    name: str
    description: str
    hardware: str
    model: str
    engine: str
    prefill_tokens: tuple[float, ...]
    prefill_seconds: tuple[float, ...]
    decode_context_tokens: tuple[float, ...]
    decode_tpot: tuple[float, ...]
    citation: str
    notes: str
    source: str = "<memory>"

    def __post_init__(self) -> None:
        """Checks the curve invariants.

        Raises:
            ProfileError: Lengths differ, a value is non-finite or out of range, x is not strictly
                increasing, or prefill seconds decrease.
        """
        object.__setattr__(self, "prefill_tokens", tuple(float(v) for v in self.prefill_tokens))
        object.__setattr__(self, "prefill_seconds", tuple(float(v) for v in self.prefill_seconds))
        object.__setattr__(self, "decode_context_tokens", tuple(float(v) for v in self.decode_context_tokens))
        object.__setattr__(self, "decode_tpot", tuple(float(v) for v in self.decode_tpot))
        self._check_curve(
            "prefill", "prompt_tokens", self.prefill_tokens, "seconds", self.prefill_seconds, x_min=1.0
        )
        self._check_curve(
            "decode", "context_tokens", self.decode_context_tokens, "tpot_s", self.decode_tpot, x_min=0.0
        )
        for index, (before, after) in enumerate(
            zip(self.prefill_seconds, self.prefill_seconds[1:], strict=False), start=1
        ):
            if after < before:
                raise ProfileError(
                    f"{self.source}: key '[prefill] seconds'[{index}] = {after!r} is below the previous "
                    f"point ({before!r}); fix: prefill time must not decrease as the prompt grows"
                )
        for index, value in enumerate(self.decode_tpot):
            if value <= 0.0:
                raise ProfileError(
                    f"{self.source}: key '[decode] tpot_s'[{index}] = {value!r}; fix: time per output token "
                    "must be greater than 0"
                )

    def _check_curve(
        self,
        section: str,
        x_key: str,
        xs: tuple[float, ...],
        y_key: str,
        ys: tuple[float, ...],
        *,
        x_min: float,
    ) -> None:
        if not xs:
            raise ProfileError(
                f"{self.source}: key '[{section}] {x_key}' is empty; fix: give at least one measured point"
            )
        if len(xs) != len(ys):
            raise ProfileError(
                f"{self.source}: '[{section}] {x_key}' has {len(xs)} values but '[{section}] {y_key}' has "
                f"{len(ys)}; fix: give one {y_key} per {x_key}"
            )
        for key, values in ((x_key, xs), (y_key, ys)):
            for index, value in enumerate(values):
                if not np.isfinite(value) or value < 0.0:
                    raise ProfileError(
                        f"{self.source}: key '[{section}] {key}'[{index}] = {value!r}; fix: values must be "
                        "finite and 0 or more"
                    )
        if xs[0] < x_min:
            raise ProfileError(
                f"{self.source}: key '[{section}] {x_key}'[0] = {xs[0]!r}; fix: the first point must be at "
                f"{x_min:g} tokens or more"
            )
        for index in range(1, len(xs)):
            if xs[index] <= xs[index - 1]:
                raise ProfileError(
                    f"{self.source}: key '[{section}] {x_key}'[{index}] = {xs[index]!r} does not exceed the "
                    f"previous value {xs[index - 1]!r}; fix: list the points in strictly increasing order"
                )

    @classmethod
    def from_mapping(cls, table: Table, *, source: str) -> DeviceProfile:
        """Builds a profile from parsed TOML.

        Args:
            table: The parsed document.
            source: Name used in error messages (the file path).

        Returns:
            The validated profile.

        Raises:
            ProfileError: A key is missing, unknown, mistyped or out of range.
        """
        check_keys(table, "", _TOP_KEYS, source)
        prefill = get_table(table, "prefill", source)
        decode = get_table(table, "decode", source)
        cited = get_table(table, "source", source)
        check_keys(prefill, "prefill", _PREFILL_KEYS, source)
        check_keys(decode, "decode", _DECODE_KEYS, source)
        check_keys(cited, "source", _SOURCE_KEYS, source)
        return cls(
            name=get_str(table, "", "name", source),
            description=get_str(table, "", "description", source),
            hardware=get_str(table, "", "hardware", source),
            model=get_str(table, "", "model", source),
            engine=get_str(table, "", "engine", source),
            prefill_tokens=get_number_list(prefill, "prefill", "prompt_tokens", source),
            prefill_seconds=get_number_list(prefill, "prefill", "seconds", source),
            decode_context_tokens=get_number_list(decode, "decode", "context_tokens", source),
            decode_tpot=get_number_list(decode, "decode", "tpot_s", source),
            citation=get_str(cited, "source", "citation", source),
            notes=get_str(cited, "source", "notes", source),
            source=source,
        )

    @classmethod
    def from_toml_text(cls, text: str, *, source: str = "<string>") -> DeviceProfile:
        """Parses a profile from TOML text (``source`` names it in errors)."""
        return cls.from_mapping(parse_toml(text, source), source=source)

    @classmethod
    def from_toml_file(cls, path: str | os.PathLike[str]) -> DeviceProfile:
        """Reads a profile from a TOML file.

        Raises:
            ProfileError: The file is missing, is not valid TOML, or fails validation.
        """
        file = Path(path)
        return cls.from_mapping(read_toml(file), source=str(file))

    def prefill_points(self) -> tuple[FloatArray, FloatArray]:
        """Returns the prefill points ``(prompt_tokens, seconds)`` as float64 arrays.

        The implicit origin (0, 0) is not included; consumers apply the interpolation rules in the module
        docstring.
        """
        return (
            np.array(self.prefill_tokens, dtype=np.float64),
            np.array(self.prefill_seconds, dtype=np.float64),
        )

    def decode_points(self) -> tuple[FloatArray, FloatArray]:
        """Returns the decode points ``(context_tokens, tpot_s)`` as float64 arrays."""
        return (
            np.array(self.decode_context_tokens, dtype=np.float64),
            np.array(self.decode_tpot, dtype=np.float64),
        )

    def _prefill(self, tokens: FloatArray) -> FloatArray:
        xs = np.array((0.0, *self.prefill_tokens))
        ys = np.array((0.0, *self.prefill_seconds))
        slope = (ys[-1] - ys[-2]) / (xs[-1] - xs[-2])
        inside = np.interp(tokens, xs, ys)
        beyond = ys[-1] + slope * (tokens - xs[-1])
        return np.asarray(np.where(tokens > xs[-1], beyond, inside), dtype=np.float64)

    @overload
    def prefill_s(self, prompt_tokens: Scalar) -> float: ...
    @overload
    def prefill_s(self, prompt_tokens: ArrayInput) -> FloatArray: ...
    def prefill_s(self, prompt_tokens: Scalar | ArrayInput) -> float | FloatArray:
        """Time to prefill a prompt of ``prompt_tokens`` tokens from an empty KV cache.

        Args:
            prompt_tokens: A token count or an array of them (finite, >= 0).

        Returns:
            Seconds, as a float for a scalar input or a float64 array of the input's shape.

        Raises:
            InvalidInputError: A token count is negative or not finite.
        """
        tokens = _tokens_argument(prompt_tokens, "prompt_tokens")
        return _result(self._prefill(tokens), tokens.ndim == 0)

    @overload
    def append_prefill_s(self, context_tokens: Scalar, new_tokens: Scalar) -> float: ...
    @overload
    def append_prefill_s(self, context_tokens: ArrayInput, new_tokens: ArrayInput | Scalar) -> FloatArray: ...
    @overload
    def append_prefill_s(self, context_tokens: Scalar, new_tokens: ArrayInput) -> FloatArray: ...
    def append_prefill_s(
        self, context_tokens: Scalar | ArrayInput, new_tokens: Scalar | ArrayInput
    ) -> float | FloatArray:
        """Time to prefill ``new_tokens`` tokens appended to a KV cache already holding ``context_tokens``.

        Modelled as ``prefill_s(context + new) - prefill_s(context)``: the cost of the longer prefill minus
        the part already done. This amortised-difference model is pdcore's own assumption, not a
        measurement: it charges the appended tokens the same attention cost per token they would have had
        in one long prefill, and it ignores the fixed per-call overhead a real engine pays on each call.

        Args:
            context_tokens: Tokens already in the KV cache (scalar or array, >= 0).
            new_tokens: Tokens appended (scalar or array, >= 0); broadcast against ``context_tokens``.

        Returns:
            Seconds, as a float when both inputs are scalars, else a float64 array.

        Raises:
            InvalidInputError: A token count is negative or not finite.
        """
        context = _tokens_argument(context_tokens, "context_tokens")
        new = _tokens_argument(new_tokens, "new_tokens")
        values = self._prefill(context + new) - self._prefill(context)
        return _result(np.maximum(values, 0.0), context.ndim == 0 and new.ndim == 0)

    @overload
    def decode_tpot_s(self, context_tokens: Scalar) -> float: ...
    @overload
    def decode_tpot_s(self, context_tokens: ArrayInput) -> FloatArray: ...
    def decode_tpot_s(self, context_tokens: Scalar | ArrayInput) -> float | FloatArray:
        """Time to decode one token when the KV cache holds ``context_tokens`` tokens.

        Args:
            context_tokens: A context length or an array of them (finite, >= 0).

        Returns:
            Seconds per token, as a float for a scalar input or a float64 array.

        Raises:
            InvalidInputError: A token count is negative or not finite.
        """
        tokens = _tokens_argument(context_tokens, "context_tokens")
        xs, ys = self.decode_points()
        inside = np.interp(tokens, xs, ys)
        if len(xs) == 1:
            return _result(np.asarray(inside, dtype=np.float64), tokens.ndim == 0)
        slope = max((ys[-1] - ys[-2]) / (xs[-1] - xs[-2]), 0.0)
        beyond = ys[-1] + slope * (tokens - xs[-1])
        values = np.asarray(np.where(tokens > xs[-1], beyond, inside), dtype=np.float64)
        return _result(values, tokens.ndim == 0)

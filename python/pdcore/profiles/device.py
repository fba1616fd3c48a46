"""Device (phone/laptop) speed profiles: prefill time against prompt length, decode TPOT against context.

A device profile is two measured curves read from a TOML file, priced by the one cost model
(`pdcore._core.DeviceCost`, the Rust crate's ``cost::device``), which the simulator, the optimizer and the
live runtime all share:

- prefill: points ``(prompt_tokens, seconds)``. Below the first point the curve runs straight from the
  origin; between points it interpolates linearly; beyond the last point it continues along the last
  segment (attention's growth continues).
- decode: points ``(context_tokens, tpot_s)``, the time per output token at that KV-cache length. Held
  flat below the first point; interpolated between points; beyond the last point it continues along the
  last segment only if that segment rises, else it stays at the last measured value (a decode step never
  gets cheaper because the context grew).
- appending ``n`` received tokens to a cache of ``c``: ``max(prefill(c + n) - prefill(c), tpot(c))``.
- ``[decode] step_spread`` (optional, default 0): the relative root-mean-square spread of one model call's
  time around its price (a prefill chunk, an append, a decode step), finite, from 0 to 2, measured by
  ``pdcore profile-device``. It prices nothing: the simulator draws each device call's time around its
  price with it and its hand-off guard covers it (Rust ``sim::jitter``, ``cost::handoff``); 0 simulates a
  device whose every call takes its price, as before the key existed.

Invariants, checked on load (a profile that breaks one is refused, naming the key and the fix): x strictly
increasing, prefill x >= 1 and decode x >= 0; times finite and above 0 (every step takes time); prefill
seconds non-decreasing; ``kv_bytes_per_token`` a whole number above 0.

TOML layout::

    name = "..."            description = "..."   hardware = "..."   model = "..."   engine = "..."
    kv_bytes_per_token = 32768    # the device model's KV cache per token (kv-transfer ships it)
    session_cache_bytes = 134217728   # optional: memory for conversations' KV caches (default below)
    [prefill]  prompt_tokens = [...]   seconds = [...]
    [decode]   context_tokens = [...]  tpot_s = [...]   step_spread = 0.1   (optional)
    [energy]   prefill_j_per_token, decode_j_per_token, wait_w, battery_wh   (optional table; all four
               keys when present; without it the run's device energy is unknown;
               `pdcore.profiles.device_energy`)
    [source]   citation = "..."        notes = "..."
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from pdcore._core import DeviceCost
from pdcore.exceptions import InvalidInputError, ProfileError
from pdcore.limits import MAX_PROFILE_SECONDS, MAX_TOKENS
from pdcore.profiles._toml import (
    Table,
    check_keys,
    get_float,
    get_int,
    get_number_list,
    get_str,
    get_table,
    parse_toml,
    read_toml,
    toml_document,
)
from pdcore.profiles.device_energy import DeviceEnergy, read_energy

__all__ = ["DEFAULT_SESSION_CACHE_TOKENS", "DeviceEnergy", "DeviceProfile"]

DEFAULT_SESSION_CACHE_TOKENS = 4096
"""The session-cache budget of a profile that sets no ``session_cache_bytes``: the KV of 4,096 tokens, the
context window the shipped on-device engines allocate their KV cache for (an assumption: one context's
cache kept between turns)."""

FloatArray = npt.NDArray[np.float64]
Scalar = float | int | np.integer[Any] | np.floating[Any]
ArrayInput = npt.NDArray[Any] | Sequence[float]

_TOP_KEYS = (
    "name",
    "description",
    "hardware",
    "model",
    "engine",
    "kv_bytes_per_token",
    "session_cache_bytes",
    "prefill",
    "decode",
    "energy",
    "source",
)
_PREFILL_KEYS = ("prompt_tokens", "seconds")
_DECODE_KEYS = ("context_tokens", "tpot_s", "step_spread")
_SOURCE_KEYS = ("citation", "notes")


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
        kv_bytes_per_token: The device model's KV-cache bytes per token (for an fp16 cache,
            ``2 * layers * kv_heads * head_dim * 2``).
        citation: Where the numbers come from.
        notes: How the points were measured or derived.
        source: The file the profile was read from (used in error messages).
        energy: Energy per token, waiting power and battery (``[energy]``), or None when not given.
        step_spread: The relative RMS spread of a model call's time around its price (``[decode]
            step_spread``, module docstring), 0 when not given.
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
    kv_bytes_per_token: int
    citation: str
    notes: str
    source: str = "<memory>"
    energy: DeviceEnergy | None = None
    session_cache_bytes: int | None = None
    step_spread: float = 0.0

    @property
    def session_cache_tokens(self) -> int:
        """Tokens of conversation KV the device keeps (`pdcore.sim` evicts sessions least recently used
        beyond it): ``session_cache_bytes // kv_bytes_per_token``, or `DEFAULT_SESSION_CACHE_TOKENS`."""
        if self.session_cache_bytes is None:
            return DEFAULT_SESSION_CACHE_TOKENS
        return self.session_cache_bytes // self.kv_bytes_per_token

    def __post_init__(self) -> None:
        """Checks the curve invariants (module docstring) by building the cost model.

        Raises:
            ProfileError: A value is out of range, the lengths differ, x is not strictly increasing,
                prefill seconds decrease, or ``kv_bytes_per_token`` is not a whole number above 0; the
                message names the key and the fix.
        """
        for field in ("prefill_tokens", "prefill_seconds", "decode_context_tokens", "decode_tpot"):
            try:
                values = tuple(float(v) for v in getattr(self, field))
            except (TypeError, ValueError):
                raise ProfileError(
                    f"{self.source}: {field} = {getattr(self, field)!r}; fix: give a list of numbers"
                ) from None
            object.__setattr__(self, field, values)
        kv = self.kv_bytes_per_token
        if isinstance(kv, bool) or not isinstance(kv, (int, np.integer)) or not 1 <= kv <= 2**40:
            raise ProfileError(
                f"{self.source}: key 'kv_bytes_per_token' = {kv!r}; fix: give the device model's KV-cache "
                "bytes per token, a whole number from 1 to 2**40 (fp16: 2 * layers * kv_heads * head_dim * 2)"
            )
        object.__setattr__(self, "kv_bytes_per_token", int(kv))
        if self.energy is not None:
            self.energy.check(self.source)
        spread = self.step_spread
        if isinstance(spread, bool) or not isinstance(spread, (int, float, np.integer, np.floating)):
            raise ProfileError(
                f"{self.source}: key '[decode] step_spread' = {spread!r}; fix: give the relative spread of a "
                "model call's time around its price, a number from 0 to 2"
            )
        object.__setattr__(self, "step_spread", float(spread))
        budget = self.session_cache_bytes
        if budget is not None and (
            isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or not 0 <= budget <= 2**50
        ):
            raise ProfileError(
                f"{self.source}: key 'session_cache_bytes' = {budget!r}; fix: give the bytes the device "
                "keeps for conversations' KV caches, a whole number from 0 (no cache) to 2**50"
            )
        try:
            _ = self.cost
        except InvalidInputError as error:
            what, _, fix = str(error).partition("; ")
            raise ProfileError(f"{self.source}: key {what}; fix: {fix}") from None

    @cached_property
    def cost(self) -> DeviceCost:
        """The cost model of this device (`pdcore._core.DeviceCost`): every price of its work, and the
        spread of its calls' times around them."""
        return DeviceCost(
            prefill_tokens=list(self.prefill_tokens),
            prefill_s=list(self.prefill_seconds),
            decode_context=list(self.decode_context_tokens),
            decode_tpot_s=list(self.decode_tpot),
            kv_bytes_per_token=float(self.kv_bytes_per_token),
            step_spread=self.step_spread,
        )

    def __getstate__(self) -> dict[str, Any]:
        """Pickles the fields only; the cost model is rebuilt on first use."""
        state = dict(self.__dict__)
        state.pop("cost", None)
        return state

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
            kv_bytes_per_token=get_int(table, "", "kv_bytes_per_token", source),
            prefill_tokens=get_number_list(prefill, "prefill", "prompt_tokens", source, maximum=MAX_TOKENS),
            prefill_seconds=get_number_list(
                prefill, "prefill", "seconds", source, maximum=MAX_PROFILE_SECONDS
            ),
            decode_context_tokens=get_number_list(
                decode, "decode", "context_tokens", source, maximum=MAX_TOKENS
            ),
            decode_tpot=get_number_list(decode, "decode", "tpot_s", source, maximum=MAX_PROFILE_SECONDS),
            citation=get_str(cited, "source", "citation", source),
            notes=get_str(cited, "source", "notes", source),
            source=source,
            energy=read_energy(table, source),
            step_spread=get_float(decode, "decode", "step_spread", source) if "step_spread" in decode else 0,
            session_cache_bytes=(
                get_int(table, "", "session_cache_bytes", source, minimum=0, maximum=2**50)
                if "session_cache_bytes" in table
                else None
            ),
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

    def to_toml(self) -> str:
        """The profile as TOML (the layout in the module docstring), which `from_toml_text` reads back as an
        equal profile (its ``source`` aside); comments of the file it was read from are not kept."""
        named = ("name", "description", "hardware", "model", "engine", "kv_bytes_per_token")
        top = {key: getattr(self, key) for key in named}
        budget = None if self.session_cache_bytes is None else int(self.session_cache_bytes)
        energy = None if self.energy is None else self.energy.as_table()
        decode = {"context_tokens": self.decode_context_tokens, "tpot_s": self.decode_tpot}
        return toml_document(
            top | {"session_cache_bytes": budget},
            {
                "prefill": {"prompt_tokens": self.prefill_tokens, "seconds": self.prefill_seconds},
                "decode": decode | {"step_spread": self.step_spread or None},  # 0: left out, as before
                "energy": energy,
                "source": {"citation": self.citation, "notes": self.notes},
            },
        )

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

    @overload
    def prefill_s(self, prompt_tokens: Scalar) -> float: ...
    @overload
    def prefill_s(self, prompt_tokens: ArrayInput) -> FloatArray: ...
    def prefill_s(self, prompt_tokens: Scalar | ArrayInput) -> float | FloatArray:
        """Time to prefill a prompt of ``prompt_tokens`` tokens from an empty KV cache (`cost`).

        Args:
            prompt_tokens: A token count or an array of them (finite, >= 0).

        Returns:
            Seconds, as a float for a scalar input or a float64 array of the input's shape.

        Raises:
            InvalidInputError: A token count is negative or not finite.
        """
        value: float | FloatArray = self.cost.prefill_s(prompt_tokens)
        return value

    @overload
    def append_s(self, context_tokens: Scalar, new_tokens: Scalar) -> float: ...
    @overload
    def append_s(self, context_tokens: ArrayInput, new_tokens: ArrayInput | Scalar) -> FloatArray: ...
    @overload
    def append_s(self, context_tokens: Scalar, new_tokens: ArrayInput) -> FloatArray: ...
    def append_s(
        self, context_tokens: Scalar | ArrayInput, new_tokens: Scalar | ArrayInput
    ) -> float | FloatArray:
        """Time of one model call that appends ``new_tokens`` to a KV cache of ``context_tokens`` (`cost`).

        ``max(prefill_s(context + new) - prefill_s(context), decode_tpot_s(context))``: the marginal
        prefill cost, as if the tokens had been part of one long prompt, but never less than one forward
        pass. The rule is pdcore's own (module docstring).

        Args:
            context_tokens: Tokens already in the KV cache (scalar or array, >= 0).
            new_tokens: Tokens appended (scalar or array, >= 0); broadcast against ``context_tokens``.

        Returns:
            Seconds, as a float when both inputs are scalars, else a float64 array.

        Raises:
            InvalidInputError: A token count is negative or not finite.
        """
        value: float | FloatArray = self.cost.append_s(context_tokens, new_tokens)
        return value

    @overload
    def decode_tpot_s(self, context_tokens: Scalar) -> float: ...
    @overload
    def decode_tpot_s(self, context_tokens: ArrayInput) -> FloatArray: ...
    def decode_tpot_s(self, context_tokens: Scalar | ArrayInput) -> float | FloatArray:
        """Time to decode one token when the KV cache holds ``context_tokens`` tokens (`cost`).

        Args:
            context_tokens: A context length or an array of them (finite, >= 0).

        Returns:
            Seconds per token, as a float for a scalar input or a float64 array.

        Raises:
            InvalidInputError: A token count is negative or not finite.
        """
        value: float | FloatArray = self.cost.tpot_s(context_tokens)
        return value

"""The optional tables of a cloud profile that say what it stands for, and the physics guard they enable.

``[hardware]`` (the GPU's dense bf16/fp16 tensor FLOPs and HBM bandwidth, per GPU), ``[model_size]``
(parameter count and bytes per parameter; not ``[model]``, since the top-level ``model`` key names the model),
``[engine]`` (a serving engine's per-step overhead, named and cited) and
``[fit]`` (mean and max relative error of the iteration model on the rows it was fitted to, per kind of
iteration). Hand-made profiles may leave them out; profiles built by ``pdcore profiles build`` carry all four.

The physics guard (ours; the rule and its 85% are pdcore's): with ``[hardware]`` and ``[model_size]`` given, a
profile may not price a prefill of ``n`` tokens (for ``n`` up to the iteration budget) faster than
``2 * parameters * n / (tensor_parallel * peak_dense_flops * 0.85)`` (a forward pass does two FLOPs per
parameter per token, and dense GEMMs reach about 80% of a datasheet's peak at best), nor a decode step faster
than ``parameters * bytes_per_parameter / (tensor_parallel * hbm_bytes_per_s)`` (a decode step reads every
weight once). The check prices kernels only: an ``[engine]`` overhead is CPU time and does not count.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pdcore.exceptions import ProfileError
from pdcore.profiles._toml import Table, check_keys, get_float, get_str, get_table

__all__ = [
    "FIT_KINDS",
    "PEAK_FLOPS_FRACTION",
    "Engine",
    "FitErrors",
    "Hardware",
    "ModelSize",
    "check_physics",
    "physics_floors",
    "read_optional_tables",
]

PEAK_FLOPS_FRACTION = 0.85
"""The largest fraction of peak dense FLOPs a priced prefill may use (ours, see the module docstring)."""
FIT_KINDS = ("prefill", "decode", "mixed")
"""The kinds of iteration a fit reports its error for."""
_HUGE = 1e18
"""The largest FLOPs, bytes per second or parameter count a profile may give."""


@dataclass(frozen=True)
class Hardware:
    """One GPU's datasheet figures: dense bf16/fp16 tensor FLOPs per second and HBM bytes per second."""

    peak_dense_flops: float
    hbm_bytes_per_s: float


@dataclass(frozen=True)
class ModelSize:
    """The served model's parameter count and bytes per parameter (2 for bf16/fp16)."""

    parameters: float
    bytes_per_parameter: float


@dataclass(frozen=True)
class Engine:
    """A serving engine's per-step overhead (CPU scheduling, input preparation, sampling), seconds."""

    name: str
    step_overhead_s: float
    citation: str


@dataclass(frozen=True)
class FitErrors:
    """Mean and max relative error of the iteration model per kind of iteration, and how many rows."""

    mean: Mapping[str, float]
    max: Mapping[str, float]
    rows: Mapping[str, float]

    def as_table(self) -> dict[str, float]:
        """The ``[fit]`` table: ``<kind>_mean``, ``<kind>_max``, ``<kind>_rows`` for each kind."""
        table: dict[str, float] = {}
        for kind in FIT_KINDS:
            table[f"{kind}_mean"] = self.mean[kind]
            table[f"{kind}_max"] = self.max[kind]
            table[f"{kind}_rows"] = self.rows[kind]
        return table


def _fit_keys() -> tuple[str, ...]:
    return tuple(f"{kind}_{what}" for kind in FIT_KINDS for what in ("mean", "max", "rows"))


def read_optional_tables(
    table: Table, source: str
) -> tuple[Hardware | None, ModelSize | None, Engine | None, FitErrors | None]:
    """Reads ``[hardware]``, ``[model_size]``, ``[engine]`` and ``[fit]`` where present (each complete).

    Raises:
        ProfileError: A table has an unknown, missing or out-of-range key.
    """

    def number(section: Table, name: str, key: str) -> float:
        return get_float(section, name, key, source, positive=True, maximum=_HUGE)

    hardware = model = engine = fit = None
    if "hardware" in table:
        section = get_table(table, "hardware", source)
        check_keys(section, "hardware", ("peak_dense_flops", "hbm_bytes_per_s"), source)
        hardware = Hardware(
            number(section, "hardware", "peak_dense_flops"), number(section, "hardware", "hbm_bytes_per_s")
        )
    if "model_size" in table:
        section = get_table(table, "model_size", source)
        check_keys(section, "model_size", ("parameters", "bytes_per_parameter"), source)
        model = ModelSize(
            number(section, "model_size", "parameters"), number(section, "model_size", "bytes_per_parameter")
        )
    if "engine" in table:
        section = get_table(table, "engine", source)
        check_keys(section, "engine", ("engine", "step_overhead_s", "citation"), source)
        engine = Engine(
            get_str(section, "engine", "engine", source),
            get_float(section, "engine", "step_overhead_s", source),
            get_str(section, "engine", "citation", source),
        )
    if "fit" in table:
        section = get_table(table, "fit", source)
        keys = _fit_keys()
        check_keys(section, "fit", keys, source)
        values = {key: get_float(section, "fit", key, source, maximum=_HUGE) for key in keys}
        fit = FitErrors(
            {kind: values[f"{kind}_mean"] for kind in FIT_KINDS},
            {kind: values[f"{kind}_max"] for kind in FIT_KINDS},
            {kind: values[f"{kind}_rows"] for kind in FIT_KINDS},
        )
    return hardware, model, engine, fit


def _prefill_points(budget: int) -> list[int]:
    points, n = [], 1
    while n < budget:
        points.append(n)
        n *= 2
    return [*points, budget]


def physics_floors(hardware: Hardware, model: ModelSize, tensor_parallel: int) -> tuple[float, float]:
    """The two floors of the physics guard (module docstring): the fastest a prefill token may be priced
    (``2 x parameters / (tensor_parallel x peak_dense_flops x 0.85)``) and the fastest decode step (reading
    every weight once over the HBM), in seconds."""
    flops_per_token = (
        2.0 * model.parameters / (tensor_parallel * hardware.peak_dense_flops * PEAK_FLOPS_FRACTION)
    )
    weights_s = model.parameters * model.bytes_per_parameter / (tensor_parallel * hardware.hbm_bytes_per_s)
    return flops_per_token, weights_s


def check_physics(
    hardware: Hardware,
    model: ModelSize,
    tensor_parallel: int,
    budget: int,
    iteration_s: Callable[[list[int], list[int]], float],
    source: str,
) -> None:
    """Refuses a kernel price faster than the hardware allows (the rule in the module docstring).

    Args:
        hardware: The GPU's figures.
        model: The model's size.
        tensor_parallel: GPUs a replica splits the model over.
        budget: The iteration's token budget (the longest prefill priced).
        iteration_s: The kernel-level iteration price (no engine overhead) of prefill lengths and decode
            contexts.
        source: The profile's name in errors.

    Raises:
        ProfileError: A prefill or decode step is priced below its bound; the message names the key.
    """
    flops_per_token, weights_s = physics_floors(hardware, model, tensor_parallel)
    for n in _prefill_points(budget):
        priced, bound = iteration_s([n], []), flops_per_token * n
        if priced < bound:
            raise ProfileError(
                f"{source}: key '[iteration] prefill_token_s' prices a {n}-token prefill at {priced:.6g} s, "
                f"faster than {PEAK_FLOPS_FRACTION:.0%} of [hardware] peak_dense_flops allows ({bound:.6g} s "
                "= 2 x [model_size] parameters x tokens / (tensor_parallel x peak_dense_flops x "
                f"{PEAK_FLOPS_FRACTION})); fix: raise prefill_token_s (or the knee's prefill_knee_token_s), "
                "or correct [hardware] and [model_size]"
            )
    priced = iteration_s([], [1])
    if priced < weights_s:
        raise ProfileError(
            f"{source}: keys '[iteration] base_s' + decode_seq_s price a decode step at "
            f"{priced:.6g} s, faster "
            f"than the HBM reads the weights ({weights_s:.6g} s = [model_size] parameters x "
            "bytes_per_parameter / "
            "(tensor_parallel x [hardware] hbm_bytes_per_s)); fix: raise base_s, or correct [hardware] and "
            "[model_size]"
        )

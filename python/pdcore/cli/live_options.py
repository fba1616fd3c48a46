"""What the live commands share (``pdcore chat``, ``validate``, ``serve``): the device's threads, its
profile, ``--k`` and ``--cloud-param``; ``pdcore profile-cloud``'s physics guard (``--gpu``, ``--parameters``,
...).

Ground floor beside `pdcore.cli.options`: the live command modules import it and none imports another.
Each value is checked where it enters, naming the flag and the fix.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from pdcore.exceptions import InvalidInputError
from pdcore.profiles import DeviceProfile, list_device_profiles, load_device_profile

__all__ = [
    "SHIPPED_PROFILE",
    "BytesPerParameterOption",
    "CloudUrlOption",
    "GpuOption",
    "GpuPeakFlopsOption",
    "HbmBandwidthOption",
    "MaxTpotOption",
    "ModelOption",
    "ParametersOption",
    "ProfileOption",
    "TensorParallelOption",
    "ThreadsOption",
    "cloud_params",
    "device_profile",
    "device_threads",
    "k_flag",
    "lengths_flag",
    "ms",
]

MaxTpotOption = Annotated[float, typer.Option("--max-tpot", help="Largest display gap, seconds.")]
CloudUrlOption = Annotated[
    str | None, typer.Option("--cloud-url", help="OpenAI-compatible endpoint; default $PDCORE_CLOUD_URL.")
]
ModelOption = Annotated[Path | None, typer.Option("--model", help="Device GGUF model; default SmolLM2-135M.")]
ProfileOption = Annotated[
    str | None, typer.Option("--profile", help="Device profile name or .toml (`pdcore profile-device`).")
]
ThreadsOption = Annotated[int | None, typer.Option("--threads", help="Device threads (llama.cpp).")]
GpuOption = Annotated[
    str,
    typer.Option(
        "--gpu", help="The accelerator; a100, h100 or a40 also gives the physics guard its figures."
    ),
]
GpuPeakFlopsOption = Annotated[
    float | None, typer.Option("--gpu-peak-flops", help="Peak dense bf16/fp16 FLOPs a second of one GPU.")
]
HbmBandwidthOption = Annotated[
    float | None, typer.Option("--hbm-bandwidth", help="HBM bytes a second of one GPU.")
]
ParametersOption = Annotated[
    float | None,
    typer.Option("--parameters", help="The model's parameter count: turns on the physics guard."),
]
BytesPerParameterOption = Annotated[
    float, typer.Option("--bytes-per-parameter", help="Bytes a weight (2 for bf16/fp16).")
]
TensorParallelOption = Annotated[
    int, typer.Option("--tensor-parallel", min=1, max=4096, help="GPUs the server splits the model over.")
]

SHIPPED_PROFILE = "smollm2-135m-q4-cpu{threads}"
"""The shipped profile used for the default model when ``--profile`` is not given."""


def device_threads(threads: int | None) -> int:
    """The device's threads: as given, else llama-cpp-python's own default (half the CPUs, at least one),
    made explicit so that the device runs and the shipped profile is chosen with the same count."""
    if threads is not None:
        if isinstance(threads, bool) or threads < 1 or threads > 1024:
            raise InvalidInputError(f"--threads {threads!r}; fix: pass a thread count from 1 to 1024")
        return threads
    return max((os.cpu_count() or 2) // 2, 1)


def device_profile(
    profile: str | None, threads: int | None, model: Path | None, *, needed: bool = False
) -> DeviceProfile | None:
    """The device profile ``--profile`` names, else the shipped one of the default model at ``threads``
    (``--model`` left out or naming the default model's own file), else None; ``needed``: ``--k auto``
    plans from it, so none is an error naming the flags to pass."""
    if profile is not None:
        return load_device_profile(profile)
    shipped = SHIPPED_PROFILE.format(threads=device_threads(threads))
    if is_default_model(model) and shipped in list_device_profiles():
        return load_device_profile(shipped)
    if needed:
        raise InvalidInputError(
            f"--k auto plans from the device's speed, and --model {str(model)!r} has no profile; fix: "
            "pass --profile FILE (measure one with `pdcore profile-device --model ...`) or a fixed --k N"
        )
    return None


def is_default_model(model: Path | None) -> bool:
    """Whether ``--model`` is left out or names the installed SmolLM2-135M's own file (so its shipped
    profiles apply)."""
    if model is None:
        return True
    from pdcore.runtime.device import smollm2_path  # noqa: PLC0415  # reason: the optional runtime

    default = smollm2_path()
    try:
        return default is not None and model.resolve() == default.resolve()
    except OSError:
        return False


def k_flag(value: str) -> int | Literal["auto"]:
    """``--k``: ``auto`` or a whole number of tokens."""
    if value == "auto":
        return "auto"
    try:
        return int(value)
    except ValueError:
        raise InvalidInputError(f"--k {value!r}; fix: pass a whole number of tokens or 'auto'") from None


def cloud_params(values: list[str] | None) -> dict[str, Any]:
    """``--cloud-param KEY=VALUE`` (repeatable) as request fields; a VALUE that is JSON is parsed."""
    params: dict[str, Any] = {}
    for item in values or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise InvalidInputError(f"--cloud-param {item!r}; fix: pass KEY=VALUE, e.g. repeat_penalty=1.0")
        try:
            params[key] = json.loads(raw)
        except json.JSONDecodeError:
            params[key] = raw
        try:  # the request body is strict JSON: NaN and Infinity are not numbers a server reads
            json.dumps(params[key], allow_nan=False)
        except ValueError:
            raise InvalidInputError(
                f"--cloud-param {item!r} is not a finite number; fix: pass a finite value"
            ) from None
    return params


def lengths_flag(spec: str, flag: str) -> list[int]:
    """The comma-separated token counts of ``flag``, refused naming it when malformed or empty."""
    try:
        values = [int(part) for part in spec.split(",") if part.strip()]
    except ValueError:
        raise InvalidInputError(
            f"{flag} {spec!r}; fix: pass comma-separated token counts, e.g. 256,512"
        ) from None
    if not values:
        raise InvalidInputError(f"{flag} {spec!r} is empty; fix: pass comma-separated token counts")
    return values


def ms(value: float | None) -> str:
    """Seconds as milliseconds for a table, ``-`` when unknown."""
    return "-" if value is None else f"{value * 1e3:.1f} ms"

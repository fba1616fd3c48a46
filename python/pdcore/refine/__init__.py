"""Prompt refinement from the cloud's prefill data, and its measured quality cost.

P/D-Device's second lever (arXiv 2508.09035): while the cloud prefills, the prompt is refined from data
the prefill already produces, so the device prefills fewer tokens and takes over sooner.

- `pdcore.refine.scoring`: per-token surprisal of the prompt, from llama.cpp with all logits
  (`LlamaScorer`) or from an OpenAI-compatible endpoint with ``echo`` and ``logprobs`` (`OpenAIScorer`).
- `pdcore.refine.refiner`: the pure selection (`select`): the most informative sentences within
  ``floor(r * L)`` tokens, the instruction and the question always kept; `refine` scores and selects.
- `pdcore.refine.evaluation`: a seeded, generated long-context evaluation that measures quality and
  device prefill time over ``r``; its result ships as ``data/quality-<name>.toml``.

`load_quality_curve` reads such a file as the optimizer's ``quality`` mapping::

    Optimizer(..., refine_ratios=(1.0, 0.75, 0.5, 0.35), quality=load_quality_curve("smollm2-135m"))
"""

from __future__ import annotations

import os
import sys
from importlib import resources
from pathlib import Path

from pdcore.exceptions import InvalidInputError
from pdcore.refine.evaluation import QualityCurve, QualityPoint, evaluate, make_items
from pdcore.refine.refiner import (
    DEFAULT_QUESTION_WEIGHT,
    Refinement,
    Scorer,
    UnitScore,
    default_protected,
    find_spans,
    refine,
    segment,
    select,
)
from pdcore.refine.scoring import (
    CHATML,
    LlamaScorer,
    OpenAIScorer,
    TokenSurprisal,
    parse_echo_logprobs,
    score_openai,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = [
    "CHATML",
    "DEFAULT_QUESTION_WEIGHT",
    "LlamaScorer",
    "OpenAIScorer",
    "QualityCurve",
    "QualityPoint",
    "Refinement",
    "Scorer",
    "TokenSurprisal",
    "UnitScore",
    "default_protected",
    "evaluate",
    "find_spans",
    "list_quality_curves",
    "load_quality_curve",
    "load_quality_report",
    "make_items",
    "parse_echo_logprobs",
    "parse_quality_text",
    "read_quality_file",
    "refine",
    "score_openai",
    "segment",
    "select",
]


def list_quality_curves() -> list[str]:
    """Names of the shipped quality curves (``data/quality-<name>.toml``), sorted."""
    folder = resources.files("pdcore.refine").joinpath("data")
    if not folder.is_dir():
        return []
    return sorted(
        entry.name.removeprefix("quality-").removesuffix(".toml")
        for entry in folder.iterdir()
        if entry.name.startswith("quality-") and entry.name.endswith(".toml")
    )


def read_quality_file(name_or_path: str | os.PathLike[str]) -> tuple[str, str]:
    """Finds a quality curve's file and reads it.

    Args:
        name_or_path: A shipped curve's name (``"smollm2-135m"``, `list_quality_curves`) or the path of
            a ``.toml`` file written by ``pdcore refine-eval`` (a value ending in ``.toml`` or holding a
            ``/`` is a path).

    Returns:
        ``(source, text)``: the file's path (``pdcore/refine/data/quality-<name>.toml`` for a shipped
        curve) and its text.

    Raises:
        InvalidInputError: An unknown name, or a missing or unreadable file.
    """
    is_path = not isinstance(name_or_path, str) or name_or_path.endswith(".toml") or "/" in name_or_path
    try:
        if is_path:
            path = Path(name_or_path)
            if not path.is_file():
                raise InvalidInputError(
                    f"quality curve file {str(path)!r} does not exist; fix: pass a .toml file written by "
                    "`pdcore refine-eval` or a shipped name"
                )
            return str(path), path.read_text(encoding="utf-8")
        name = str(name_or_path).removeprefix("quality-")
        entry = resources.files("pdcore.refine").joinpath("data").joinpath(f"quality-{name}.toml")
        if not entry.is_file():
            known = ", ".join(list_quality_curves()) or "(none)"
            raise InvalidInputError(
                f"unknown quality curve {name_or_path!r}; fix: pass one of {known} or a .toml path"
            )
        return f"pdcore/refine/data/quality-{name}.toml", entry.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(
            f"quality curve {str(name_or_path)!r}: cannot read the file ({exc}); fix: pass a readable UTF-8 "
            ".toml file written by `pdcore refine-eval --out`, or a shipped name"
        ) from None


def parse_quality_text(text: str, source: str) -> QualityCurve:
    """A quality curve from the text of its file; ``source`` names the file in errors.

    Raises:
        InvalidInputError: Invalid TOML or a malformed curve.
    """
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInputError(f"{source}: invalid TOML ({exc}); fix: correct the syntax") from None
    return QualityCurve.from_toml(table, source)


def load_quality_report(name_or_path: str | os.PathLike[str]) -> QualityCurve:
    """A quality curve with everything recorded in its file (points, ablation, how it was measured).

    Args:
        name_or_path: As `read_quality_file`.

    Raises:
        InvalidInputError: An unknown name, a missing or unreadable file, or a malformed curve.
    """
    source, text = read_quality_file(name_or_path)
    return parse_quality_text(text, source)


def load_quality_curve(name_or_path: str | os.PathLike[str]) -> dict[float, float]:
    """Ratio to measured quality drop (absolute F1, 0.02 = two points): the optimizer's ``quality``.

    Raises:
        InvalidInputError: As `load_quality_report`.
    """
    return load_quality_report(name_or_path).drops()

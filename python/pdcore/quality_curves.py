"""Measured quality curves of prompt refinement: the records, their data file, and the shipped curves.

A quality curve (measured by ``pdcore refine-eval``, `pdcore.refine.evaluation`) gives, per refinement
ratio ``r`` (the fraction of the prompt's tokens kept), the drop of answer quality against the unrefined
prompt (absolute token F1, 0.02 = two points) with a paired bootstrap 95% interval, and the device's
prefill time: one `QualityPoint` per ratio (`pdcore.quality_points`, where a data file's point is read and
range-checked). `QualityCurve.to_toml` writes it as a data file, `QualityCurve.from_toml` reads it back, and
`load_quality_curve` gives the optimizer's ``quality`` mapping ``{ratio: drop}``. A curve file named by
path must be a regular file; it is noted as an input of the run (`pdcore.inputs`), and its text is refused
past `pdcore.nesting.MAX_NESTING` levels of nesting before it is parsed.

The curves shipped with pdcore are files ``quality-<name>.toml`` in ``pdcore/refine/data/``, named by
their path in the package; reading them imports nothing from `pdcore.refine`, so the optimizer
(`pdcore.optimize.quality`) reads a curve without the evaluation's code.
"""

from __future__ import annotations

import math
import numbers
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any

from pdcore.exceptions import InvalidInputError
from pdcore.inputs import input_file, note_input
from pdcore.nesting import check_nesting
from pdcore.quality_points import QualityPoint, read_point

if TYPE_CHECKING:
    from importlib.abc import Traversable

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = [
    "ItemResult",
    "QualityCurve",
    "QualityPoint",
    "check_ratio",
    "list_quality_curves",
    "load_quality_curve",
    "load_quality_report",
    "parse_quality_text",
    "read_quality_file",
]

SHIPPED = "pdcore/refine/data"
"""Where the shipped curves are, in the package (the ``source`` a shipped curve is read from)."""


def check_ratio(ratio: float) -> float:
    """``ratio`` as a float in (0, 1].

    Raises:
        InvalidInputError: It is outside (0, 1] or not a number (a bool or a str is not one).
    """
    if isinstance(ratio, bool) or not isinstance(ratio, numbers.Real) or not 0.0 < ratio <= 1.0:
        raise InvalidInputError(
            f"ratio = {ratio!r}; fix: pass the fraction of the prompt's tokens to keep, in (0, 1], e.g. 0.5"
        )
    return float(ratio)


@dataclass(frozen=True, slots=True)
class ItemResult:
    """One item answered at one ratio.

    Attributes:
        item: The item's id.
        family: Its family.
        ratio: The refinement ratio.
        question_weight: The relevance weight of the refinement.
        scored_tokens: Tokens of the user prompt as scored (``L``).
        kept_tokens: Scored tokens kept.
        device_tokens: Tokens the device prefilled (chat template and answer prefix included).
        prefill_s: Wall seconds of that prefill (one run; NaN at ``r = 1``, answered by the cloud stand-in).
        fact_kept: Whether the key fact survived the refinement.
        prediction: The answer text generated after the prefix.
        exact_match: 0 or 1.
        f1: Token F1.
    """

    item: str
    family: str
    ratio: float
    question_weight: float
    scored_tokens: int
    kept_tokens: int
    device_tokens: int
    prefill_s: float
    fact_kept: bool
    prediction: str
    exact_match: float
    f1: float


@dataclass(frozen=True)
class QualityCurve:
    """The quality-over-``r`` and prefill-time-over-``r`` curves of one model (the shipped data file).

    Attributes:
        name: The curve's name (``load_quality_curve`` finds shipped curves by it).
        model: The model answering and scoring.
        points: The main curve (the default question weight), ratios descending.
        ablation: Other question weights (e.g. 0: surprisal alone), same layout.
        evaluation: How it was measured (seed, items, lengths, machine, ...).
        results: Per-item results (not written to the data file).
    """

    name: str
    model: str
    points: tuple[QualityPoint, ...]
    ablation: tuple[QualityPoint, ...] = ()
    evaluation: Mapping[str, Any] = field(default_factory=dict)
    results: tuple[ItemResult, ...] = ()

    def drops(self) -> dict[float, float]:
        """Ratio to quality drop of the main curve (the optimizer's ``quality`` argument)."""
        return {p.ratio: p.drop for p in self.points}

    def to_toml(self) -> str:
        """The data file's text (`load_quality_curve` reads it back)."""
        lines = [
            "# Quality and device prefill time of prompt refinement (pdcore.refine.evaluation).",
            "# drop = mean token F1 at r = 1 minus mean token F1 at r (absolute; 0.02 = 2 points).",
            f"name = {_toml_value(self.name)}",
            f"model = {_toml_value(self.model)}",
            'metric = "f1"',
            "",
            "[evaluation]",
        ]
        lines += [f"{key} = {_toml_value(value)}" for key, value in self.evaluation.items()]
        for table, points in (("point", self.points), ("ablation", self.ablation)):
            for p in points:
                lines += ["", f"[[{table}]]"]
                for key in QualityPoint.__slots__:
                    value = getattr(p, key)
                    if key != "f1_by_family":
                        lines.append(f"{key} = {_toml_value(value)}")
                lines.append(
                    "f1_by_family = { "
                    + ", ".join(f"{k} = {_toml_value(v)}" for k, v in sorted(p.f1_by_family.items()))
                    + " }"
                )
        return "\n".join(lines) + "\n"

    @classmethod
    def from_toml(cls, table: Mapping[str, Any], source: str) -> QualityCurve:
        """Reads a parsed data file.

        Raises:
            InvalidInputError: A key is missing or a value is out of range (named with ``source``).
        """

        def points(key: str) -> tuple[QualityPoint, ...]:
            raw = table.get(key, [])
            if not isinstance(raw, list):
                raise InvalidInputError(
                    f"{source}: [[{key}]] must be an array of tables; fix: write [[{key}]]"
                )
            out = []
            for index, entry in enumerate(raw):
                where = f"{source}: [[{key}]] entry {index}"
                out.append(read_point(entry, where))
            return tuple(out)

        main = points("point")
        if not main:
            raise InvalidInputError(f"{source}: no [[point]] entries; fix: add the measured points")
        evaluation = table.get("evaluation", {})
        return cls(
            name=str(table.get("name", "")),
            model=str(table.get("model", "")),
            points=main,
            ablation=points("ablation"),
            evaluation=dict(evaluation) if isinstance(evaluation, Mapping) else {},
        )


def _toml_value(value: Any) -> str:
    """``value`` written as a TOML value (floats to 4 decimals, nan and inf spelled out)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(round(value, 4))
    if isinstance(value, str):
        if "\n" in value:
            return '"""\n' + value.replace("\\", "\\\\").replace('"""', '\\"""') + '"""'
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def list_quality_curves() -> list[str]:
    """Names of the shipped quality curves (``data/quality-<name>.toml``), sorted."""
    folder = _shipped()
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
        InvalidInputError: Not a name or a path, an unknown name, or a path that is missing, not a regular
            file, or unreadable. A file read is noted as an input of the run (`pdcore.inputs`).
    """
    if isinstance(name_or_path, bytes) or not isinstance(name_or_path, (str, os.PathLike)):
        raise InvalidInputError(
            f"quality curve = {name_or_path!r} is neither a shipped curve's name nor a file path; fix: pass "
            "a name such as 'smollm2-135m' or the path of a .toml written by `pdcore refine-eval`, as a str "
            "or pathlib.Path"
        )
    is_path = not isinstance(name_or_path, str) or name_or_path.endswith(".toml") or "/" in name_or_path
    try:
        if is_path:
            path = input_file(
                name_or_path,
                "quality curve file",
                "pass a .toml file written by `pdcore refine-eval` or a shipped name",
            )
            return str(path), path.read_text(encoding="utf-8")
        name = str(name_or_path).removeprefix("quality-")
        entry = _shipped().joinpath(f"quality-{name}.toml")
        if not entry.is_file():
            known = ", ".join(list_quality_curves()) or "(none)"
            raise InvalidInputError(
                f"unknown quality curve {name_or_path!r}; fix: pass one of {known} or a .toml path"
            )
        if isinstance(entry, os.PathLike):
            note_input(entry)  # the package's own file: no output may replace it either
        return f"{SHIPPED}/quality-{name}.toml", entry.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(
            f"quality curve {str(name_or_path)!r}: cannot read the file ({exc}); fix: pass a readable UTF-8 "
            ".toml file written by `pdcore refine-eval --out`, or a shipped name"
        ) from None


def parse_quality_text(text: str, source: str) -> QualityCurve:
    """A quality curve from the text of its file; ``source`` names the file in errors.

    Raises:
        InvalidInputError: Not text, invalid TOML, nested deeper than `pdcore.nesting.MAX_NESTING`, or a
            malformed curve.
    """
    if not isinstance(text, str):
        raise InvalidInputError(f"{source}: text = {text!r} is not text; fix: pass the file's text as a str")
    check_nesting(text, source, "toml", fix="write the curve as `pdcore refine-eval --out` does")
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInputError(f"{source}: invalid TOML ({exc}); fix: correct the syntax") from None
    except ValueError:  # an integer of more digits than int() reads
        raise InvalidInputError(
            f"{source}: a number has too many digits to read; fix: write each number as "
            "`pdcore refine-eval --out` does"
        ) from None
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


def _shipped() -> Traversable:
    """The folder of the shipped curves, found through the `pdcore` package (`SHIPPED`)."""
    folder = resources.files("pdcore")
    for part in SHIPPED.split("/")[1:]:
        folder = folder.joinpath(part)
    return folder

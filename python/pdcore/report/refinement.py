"""The prompt-refinement section of ``pdcore reproduce``: measured quality and device prefill time over ``r``.

The numbers come from a quality curve (`pdcore.refine.load_quality_report`): the shipped data file or one
written by ``pdcore refine-eval --out``. `load` reads it (and its text, copied beside the report);
`section` turns it into the JSON-ready ``refinement`` entry of ``results.json``; `table_rows`,
`sentences` and `provenance` render that entry for ``report.md``. Nothing here holds a measured number:
every figure in the text is read from the entry, and the verdict on the quality target is computed from
the drop's 95% interval.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pdcore.refine import QualityCurve, parse_quality_text, read_quality_file

__all__ = [
    "DEFAULT_QUALITY",
    "DROP_TARGET",
    "TABLE_HEADER",
    "LoadedCurve",
    "headline",
    "load",
    "provenance",
    "section",
    "sentences",
    "summary_line",
    "table_rows",
]

DEFAULT_QUALITY = "smollm2-135m"
"""The shipped curve `pdcore reproduce` reports unless told otherwise."""

DROP_TARGET = 0.02
"""The quality target: refinement costs at most two points of token F1 (absolute, 0.02)."""

TABLE_HEADER = (
    "r",
    "relevance weight",
    "EM",
    "F1",
    "F1 drop, points (95% CI)",
    "fact kept",
    "kept tokens",
    "device prefill",
    "speed-up",
)
"""The columns of `table_rows`."""


@dataclass(frozen=True)
class LoadedCurve:
    """A quality curve and the file it came from.

    Attributes:
        curve: The curve.
        source: The shipped file (``pdcore/refine/data/quality-<name>.toml``) or the path given.
        text: The file's text, copied unchanged into the output directory.
        file_name: The copy's name, ``quality-<name>.toml``.
    """

    curve: QualityCurve
    source: str
    text: str
    file_name: str


def load(name_or_path: str | os.PathLike[str] | None) -> LoadedCurve | None:
    """The curve to report; None for None or ``"none"`` (no refinement section).

    Raises:
        InvalidInputError: An unknown name, or a file that is missing, unreadable or not a quality curve
            (the message names the file and the fix).
    """
    if name_or_path is None or (isinstance(name_or_path, str) and name_or_path.lower() == "none"):
        return None
    source, text = read_quality_file(name_or_path)
    curve = parse_quality_text(text, source)
    stem = curve.name or Path(source).stem.removeprefix("quality-")
    file_name = "quality-" + re.sub(r"[^A-Za-z0-9._-]+", "_", stem) + ".toml"
    return LoadedCurve(curve=curve, source=source, text=text, file_name=file_name)


def _finite(value: float) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _nearest(points: Sequence[Mapping[str, Any]], ratio: float) -> Mapping[str, Any] | None:
    """The point whose ratio is nearest ``ratio`` (the larger ratio on a tie)."""
    if not points:
        return None
    return min(points, key=lambda p: (abs(p["ratio"] - ratio), -p["ratio"]))


def _verdict(drop: float, ci95: Sequence[float]) -> tuple[str, bool]:
    """(verdict on the drop target, whether an interval backs it): met when the whole 95% interval is
    within the target, missed when all of it is beyond, not resolved when it straddles the target."""
    low, high = ci95
    if not (_finite(low) and _finite(high)):
        return ("met" if drop <= DROP_TARGET + 1e-12 else "missed"), False
    if high <= DROP_TARGET + 1e-12:
        return "met", True
    if low > DROP_TARGET + 1e-12:
        return "missed", True
    return "not resolved", True


def headline(
    points: Sequence[Mapping[str, Any]], ablation: Sequence[Mapping[str, Any]], ratio: float
) -> dict[str, Any] | None:
    """The point the text is about: the refined point (``r < 1``) nearest ``ratio``, its verdict on the
    drop target, and the ablation points at the ratio nearest it. None when no point is refined."""
    refined = [p for p in points if p["ratio"] < 1.0]
    point = _nearest(refined, ratio)
    if point is None:
        return None
    verdict, backed = _verdict(point["drop"], point["drop_ci95"])
    nearest = _nearest(ablation, point["ratio"])
    return {
        "requested_ratio": ratio,
        "ratio": point["ratio"],
        "drop": point["drop"],
        "drop_ci95": list(point["drop_ci95"]),
        "prefill_speedup": point["prefill_speedup"],
        "drop_target": DROP_TARGET,
        "verdict": verdict,
        "interval": backed,
        "ablation": [dict(p) for p in ablation if nearest is not None and p["ratio"] == nearest["ratio"]],
    }


def section(loaded: LoadedCurve, *, ratio: float = 0.5) -> dict[str, Any]:
    """The ``refinement`` entry of ``results.json``.

    Args:
        loaded: The curve (`load`).
        ratio: The ratio the text is about (the point nearest it); the growth experiment's ratio.
    """
    curve = loaded.curve
    points = [dataclasses.asdict(p) for p in curve.points]
    ablation = [dataclasses.asdict(p) for p in curve.ablation]
    return {
        "name": curve.name,
        "model": curve.model,
        "source": loaded.source,
        "file": loaded.file_name,
        "evaluation": dict(curve.evaluation),
        "points": points,
        "ablation": ablation,
        "headline": headline(points, ablation, ratio),
    }


def _points(value: float) -> str:
    """An F1 difference in points, signed: ``+1.4``."""
    return f"{value * 100:+.1f}"


def _interval(ci95: Sequence[float]) -> str:
    low, high = ci95
    return "no interval" if not (_finite(low) and _finite(high)) else f"[{_points(low)}, {_points(high)}]"


def _weight(value: float) -> str:
    return f"{value:g}"


def _speedup(value: float) -> str:
    return f"{value:.2f}x" if _finite(value) else "-"


def table_rows(entry: Mapping[str, Any]) -> list[list[str]]:
    """One row per point of the main curve, then the ablation rows (their weight marked)."""
    rows = []
    for kind, points in (("", entry["points"]), (" (ablation)", entry["ablation"])):
        for p in points:
            rows.append(
                [
                    f"{p['ratio']:g}",
                    _weight(p["question_weight"]) + kind,
                    f"{p['exact_match'] * 100:.1f}",
                    f"{p['f1'] * 100:.1f}",
                    "baseline"
                    if not kind and p["ratio"] == 1.0
                    else f"{_points(p['drop'])} {_interval(p['drop_ci95'])}",
                    f"{p['fact_kept'] * 100:.0f}%",
                    f"{p['kept_ratio'] * 100:.0f}%",
                    f"{p['prefill_s']:.2f} s ({p['prefill_tokens']:,} tok)",
                    _speedup(p["prefill_speedup"]),
                ]
            )
    return rows


def _base(entry: Mapping[str, Any]) -> Mapping[str, Any] | None:
    return next((p for p in entry["points"] if p["ratio"] == 1.0), None)


def _ablation_sentence(main: Mapping[str, Any], ablation: Sequence[Mapping[str, Any]]) -> str:
    if not ablation:
        return "The curve has no ablation (another relevance weight), so the relevance term is not tested."
    clauses = []
    for p in ablation:
        what = (
            "surprisal alone (relevance weight 0)"
            if p["question_weight"] == 0
            else f"relevance weight {_weight(p['question_weight'])}"
        )
        low, high = p["drop_ci95"]
        main_high = main["drop_ci95"][1]
        if p["drop"] <= main["drop"]:
            compared = "no worse than the main curve: the relevance term does not help on this evaluation"
        elif all(_finite(v) for v in (low, main_high)) and low > main_high:
            compared = (
                "clearly worse than the main curve (the two intervals do not overlap): the relevance term "
                "is what keeps the answer"
            )
        else:
            compared = "worse than the main curve, but the two intervals overlap"
        clauses.append(
            f"with {what} at r = {p['ratio']:g} the F1 drop is {_points(p['drop'])} points "
            f"{_interval((low, high))} and the key fact survives in {p['fact_kept']:.0%} of items "
            f"(against {main['fact_kept']:.0%} at relevance weight {_weight(main['question_weight'])}), "
            f"{compared}"
        )
    return "The ablation: " + "; ".join(clauses) + "."


def sentences(entry: Mapping[str, Any]) -> list[str]:
    """What the curve says at the headline ratio: the prefill speed-up, the F1 drop against the target,
    and what the ablation shows."""
    head = entry["headline"]
    if head is None:
        return ["The curve has no refined point (every ratio is 1), so there is nothing to compare."]
    point = _nearest([p for p in entry["points"] if p["ratio"] < 1.0], head["ratio"])
    assert point is not None  # headline found it
    base = _base(entry)
    r = point["ratio"]
    where = f"At r = {r:g}"
    if not math.isclose(r, head["requested_ratio"]):
        where += f" (the measured ratio nearest {head['requested_ratio']:g})"
    speed = (
        f"{where} the device prefills the timing prompt in {point['prefill_s']:.2f} s "
        f"({point['prefill_tokens']:,} tokens)"
    )
    if base is not None:
        speed += f" instead of {base['prefill_s']:.2f} s ({base['prefill_tokens']:,} tokens)"
    speed += (
        f", a {_speedup(point['prefill_speedup'])} speed-up (time proportional to r would give "
        f"{1.0 / r:.2f}x)."
    )
    f1_before = base["f1"] if base is not None else point["f1"] + point["drop"]
    items = entry["evaluation"].get("items")
    over = f" over {items} items" if items is not None else ""
    limit = f"{head['drop_target'] * 100:g} points"
    target = f"{head['drop_target'] * 100:g}-point target"
    quality = (
        f"Token F1 goes from {f1_before * 100:.1f} at r = 1 to {point['f1'] * 100:.1f}, a drop of "
        f"{_points(point['drop'])} points (95% CI {_interval(point['drop_ci95'])}{over}); the {target} is "
    )
    if not head["interval"]:
        quality += f"**{head['verdict']}** on the point estimate alone (the file has no interval)."
    elif head["verdict"] == "met":
        quality += f"**met**: the whole interval lies within {limit}."
    elif head["verdict"] == "missed":
        quality += f"**missed**: the whole interval lies beyond {limit}."
    else:
        quality += (
            f"**not resolved**: the interval straddles {limit}, so this evaluation cannot tell (more items "
            "would narrow it)."
        )
    return [speed, quality, _ablation_sentence(point, head["ablation"])]


def provenance(entry: Mapping[str, Any]) -> list[str]:
    """How the curve was measured, and the command that measures it again (paragraphs)."""
    ev = entry["evaluation"]
    families = ev.get("families")
    family_text = f" ({', '.join(families)})" if isinstance(families, list) and families else ""
    lengths = ""
    if "scored_tokens_min" in ev and "scored_tokens_max" in ev:
        lengths = f", prompts of {ev['scored_tokens_min']:,}-{ev['scored_tokens_max']:,} tokens"
    timing = ""
    if "timing_repeats" in ev:
        timing = (
            f"; device prefill time: the median of {ev['timing_repeats']} runs of "
            f"`{ev.get('timing_item', 'the longest item')}`"
        )
    text = (
        f"Measured with {entry['model'] or entry['name']}: {ev.get('items', '?')} items{family_text}, seed "
        f"{ev.get('seed', '?')}{lengths}, on {ev.get('machine', 'an unrecorded machine')}{timing}. Source "
        f"`{entry['source']}`, copied here as [`{entry['file']}`]({entry['file']})."
    )
    lines = [text]
    if ev.get("how"):
        lines += ["", f"How: {ev['how']}"]
    if ev.get("command"):
        command = str(ev["command"])
        how = "" if "--out" in command else " (add `--out FILE` to write a curve this report reads)"
        lines += ["", f"To measure it again{how}:", ""]
        lines += ["```", command, "```"]
    return lines


def summary_line(entry: Mapping[str, Any]) -> str:
    """One line for the command's closing summary."""
    head = entry["headline"]
    if head is None:
        return f"refinement ({entry['name']}): no refined point"
    return (
        f"refinement at r = {head['ratio']:g} ({entry['name']}): prefill {_speedup(head['prefill_speedup'])}"
        f" faster, F1 drop {_points(head['drop'])} pts {_interval(head['drop_ci95'])}: "
        f"{head['drop_target'] * 100:g}-point target {head['verdict']}"
    )

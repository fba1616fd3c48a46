"""The sizing front of a report: the candidates of ``pdcore size --model-family NAME --json`` (or
``--clouds a,b --json``) read back, checked, and written as ``front.md``, each policy's two Pareto fronts
as tables with the command that made them, beside the figures of `pdcore.report.front_plots` (PNG) and
`pdcore.report.front_page` (interactive).

Rules (ours): the section is driven from that JSON alone and never recomputes a front: a candidate is on
a front when the command marked it so (``on_ttft_front``, ``on_speed_front``; `pdcore.sim.front`). Every
candidate is read strictly at the edge (`read_front`), naming the candidate and key that is wrong, since
the file may have been edited or written by another version. A candidate is a point of the figures when
the search found a cloud for it (``gpus`` set) and the figure's two values are finite numbers; the rest
(unattainable, no cloud) are listed under the tables. A candidate's label is its cloud profile without
the model family when every searched profile is of one (``llama3-70b-``, as ``--model-family`` names
it), then its split (``a100-tp4-vidur 1P+1D``): the profile names carry the GPU and the tensor
parallelism.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pdcore.exceptions import InvalidInputError
from pdcore.outputs import write_text
from pdcore.sim.planner_search import model_family

__all__ = [
    "FIGURES",
    "STEPS",
    "FrontPoint",
    "SizingFront",
    "front_markdown",
    "read_front",
    "write_markdown",
]

FIGURES = {"ttft": "front_ttft.png", "speed": "front_speed.png"}
"""The PNG file of each front: goodput per GPU against TTFT p90, and against per-user tokens/s."""

STEPS = {"ttft": "steps-post", "speed": "steps-pre"}
"""How each front's step line is drawn (matplotlib's ``drawstyle``), its points by increasing x: the best
goodput per GPU within a TTFT p90 holds from a point up to the next (larger TTFT), and the best within a
per-user speed holds from a point down to the one before (slower)."""

_FIX = "fix: pass the file written by pdcore size --model-family NAME --json F (or --clouds a,b --json F)"
_TEXT = ("policy", "deployment", "cloud_profile", "bound")
_NUMBERS = ("goodput_per_gpu_rps", "ttft_p90_s", "user_tokens_per_s", "usd_per_hour", "usd_per_month")
_FLAGS = ("on_ttft_front", "on_speed_front")


@dataclass(frozen=True)
class FrontPoint:
    """One candidate of the search: a policy on a cloud profile (a GPU at a tensor parallelism) in a
    deployment, with the cloud found (``split``, None when none) and its figures."""

    policy: str
    deployment: str
    cloud_profile: str
    tensor_parallel: int
    bound: str
    split: str | None
    gpus: int | None
    goodput_per_gpu_rps: float | None
    ttft_p90_s: float | None
    user_tokens_per_s: float | None
    usd_per_hour: float | None
    usd_per_month: float | None
    on_ttft_front: bool
    on_speed_front: bool
    label: str

    @property
    def split_text(self) -> str:
        """The cloud found as the table of ``pdcore size`` writes it."""
        if self.split is not None and self.bound == "found":
            return self.split
        return "no cloud" if self.bound == "no_cloud" else "unattainable"

    def value(self, kind: str) -> float | None:
        """The x value of the ``kind`` figure (``ttft``: TTFT p90; ``speed``: per-user tokens/s)."""
        return self.ttft_p90_s if kind == "ttft" else self.user_tokens_per_s

    def plotted(self, kind: str) -> bool:
        """Whether the candidate is a point of the ``kind`` figure (module docstring)."""
        x, y = self.value(kind), self.goodput_per_gpu_rps
        return self.gpus is not None and _finite(x) and _finite(y)

    def xy(self, kind: str) -> tuple[float, float]:
        """The point of the ``kind`` figure (x, goodput per GPU); NaN where a value is missing."""
        x, y = self.value(kind), self.goodput_per_gpu_rps
        return (math.nan if x is None else x, math.nan if y is None else y)

    def on_front(self, kind: str) -> bool:
        return self.on_ttft_front if kind == "ttft" else self.on_speed_front


@dataclass(frozen=True)
class SizingFront:
    """A ``pdcore size --model-family/--clouds --json`` document, read: its candidates by policy (in the
    document's order), the workload's name and rate, and the search's figures."""

    path: Path
    points: dict[str, list[FrontPoint]]
    workload: str
    rate_rps: float | None
    search: dict[str, Any]

    def front(self, policy: str, kind: str) -> list[FrontPoint]:
        """The policy's ``kind`` front, plotted points only, by increasing x (the step line's order)."""
        on = [p for p in self.points[policy] if p.on_front(kind) and p.plotted(kind)]
        return sorted(on, key=lambda p: p.xy(kind))


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _bad(path: Path, what: str) -> InvalidInputError:
    return InvalidInputError(f"--size-json {str(path)!r} {what}; {_FIX}")


def _field(record: Mapping[str, Any], key: str, where: str, path: Path) -> Any:
    if key not in record:
        raise _bad(path, f"has no {key!r} in {where}")
    value = record[key]
    if key in _TEXT and not isinstance(value, str):
        raise _bad(path, f"has {key}={value!r} in {where}, not a text")
    if key in _FLAGS and not isinstance(value, bool):
        raise _bad(path, f"has {key}={value!r} in {where}, not true or false")
    if key in _NUMBERS and value is not None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise _bad(path, f"has {key}={value!r} in {where}, not a number >= 0 or null")
        return float(value)
    whole = isinstance(value, int) and not isinstance(value, bool) and value >= 1
    if key in ("gpus", "tensor_parallel") and not whole and (value is not None or key == "tensor_parallel"):
        raise _bad(path, f"has {key}={value!r} in {where}, not a whole number >= 1")
    if key == "cloud" and value is not None and not isinstance(value, str):
        raise _bad(path, f"has cloud={value!r} in {where}, not a split or null")
    return value


def _family_prefix(profiles: list[str]) -> str:
    """``FAMILY-`` when every profile is of one model family (`pdcore.sim.planner_search.model_family`),
    else nothing."""
    families = {model_family(name) for name in profiles}
    family = families.pop() if len(families) == 1 else None
    return "" if family is None else f"{family}-"


def _point(record: Mapping[str, Any], where: str, path: Path, prefix: str) -> FrontPoint:
    values = {
        key: _field(record, key, where, path)
        for key in (*_TEXT, *_NUMBERS, *_FLAGS, "cloud", "gpus", "tensor_parallel")
    }
    split = values.pop("cloud")
    short = values["cloud_profile"][len(prefix) :] or values["cloud_profile"]
    shown = split if split is not None and values["bound"] == "found" else values["bound"]
    return FrontPoint(split=split, label=f"{short} {shown}", **values)


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def read_front(path: Path) -> SizingFront:
    """The candidates of the JSON in ``path`` (module docstring).

    Raises:
        InvalidInputError: The file cannot be read as JSON, or is not such a document: no
            ``candidates`` list, or a candidate without a key or with a value of the wrong kind.
    """
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"--size-json {str(path)!r} cannot be read as JSON ({exc}); {_FIX}") from None
    if not isinstance(document, dict) or not isinstance(document.get("candidates"), list):
        raise _bad(path, "has no 'candidates' list")
    records = document["candidates"]
    if not records:
        raise _bad(path, "has no candidates")
    for index, record in enumerate(records):
        if not isinstance(record, dict) or not isinstance(record.get("cloud_profile"), str):
            raise _bad(path, f"has candidate {index} without a text 'cloud_profile'")
    prefix = _family_prefix([record["cloud_profile"] for record in records])
    points: dict[str, list[FrontPoint]] = {}
    for index, record in enumerate(records):
        point = _point(record, f"candidate {index}", path, prefix)
        points.setdefault(point.policy, []).append(point)
    workload = _mapping(document.get("workload"))
    rate = workload.get("rate_rps")
    search = _mapping(document.get("search"))
    return SizingFront(
        path=path,
        points=points,
        workload=str(workload.get("name", "?")),
        rate_rps=float(rate) if isinstance(rate, (int, float)) and not isinstance(rate, bool) else None,
        search=search,
    )


def _number(value: float | None, digits: int) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:,.{digits}f}"


def _front_table(points: list[FrontPoint]) -> list[str]:
    rows = [
        "| candidate | deployment | TP | split | GPUs | goodput/GPU req/s | TTFT p90 s | tok/s/user "
        "| $/month |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for p in points:
        rows.append(
            f"| {p.cloud_profile} | {p.deployment} | {p.tensor_parallel} | {p.split_text} | {p.gpus} | "
            f"{_number(p.goodput_per_gpu_rps, 3)} | {_number(p.ttft_p90_s, 2)} | "
            f"{_number(p.user_tokens_per_s, 1)} | {_number(p.usd_per_month, 0)} |"
        )
    return rows


def _policy_lines(front: SizingFront, policy: str) -> list[str]:
    lines = [f"### {policy}", ""]
    for kind, what in (
        ("ttft", "goodput per GPU against TTFT p90"),
        ("speed", "goodput per GPU against per-user tokens/s"),
    ):
        points = front.front(policy, kind)
        lines += [f"Front of {what}:", ""]
        lines += [*_front_table(points), ""] if points else ["none: no candidate meets the SLO with GPUs", ""]
    left = [p for p in front.points[policy] if p.gpus is None]
    if left:
        names = ", ".join(f"{p.cloud_profile} {p.deployment} ({p.split_text})" for p in left)
        lines += [f"Not drawn (no cloud found): {names}.", ""]
    return lines


def front_markdown(front: SizingFront, command: str | None) -> str:
    """``front.md``'s text: what was searched and by which command, each policy's two fronts as
    tables, and the two PNGs (`FIGURES`)."""
    made = command or f"pdcore size --model-family ... --json {front.path.name}"
    rate = "" if front.rate_rps is None else f" at {front.rate_rps:.2f} req/s"
    search = front.search
    searched = (
        f"{search.get('candidates', '?')} candidates, {search.get('probes', '?')} clouds probed, "
        f"{float(search.get('wall_s', math.nan)):.1f} s on {search.get('executor', '?')}"
        if isinstance(search.get("wall_s"), (int, float))
        else f"{sum(len(v) for v in front.points.values())} candidates"
    )
    lines = [
        "## Sizing front",
        "",
        f"Goodput per GPU against TTFT p90 and against per-user tokens/s of every candidate (cloud profile "
        f"x deployment x policy) on {front.workload}{rate}; {searched}.",
        "",
        f"Made by: `{made}`",
        "",
    ]
    for policy in front.points:
        lines += _policy_lines(front, policy)
    lines += [
        "Each point is a candidate at the cloud found; each policy's front is its step line.",
        "",
        f"![goodput per GPU against TTFT p90]({FIGURES['ttft']})",
        "",
        f"![goodput per GPU against per-user tokens/s]({FIGURES['speed']})",
        "",
    ]
    return "\n".join(lines)


def write_markdown(out: Path, front: SizingFront, command: str | None) -> Path:
    """Writes ``out/front.md`` (`front_markdown`); returns its path."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "front.md"
    write_text(path, front_markdown(front, command))
    return path

"""``pdcore view FILE``: a live timeline in the browser, in the explorer of ``report.html``.

FILE is the JSON that ``pdcore chat --json`` writes (one request's `pdcore.runtime.timeline.Timeline`) or
that ``pdcore validate --json`` writes (every live request, each with its timeline and, when the report
carries it, the simulator's prediction of the same request as ``predicted_timeline``). The page shows
each request's token positions (cloud arrivals, displayed tokens by source, the hand-off), its display
gaps against the gap objective and the hand-off estimate as it was revised; for ``validate``, the live
run and the prediction side by side on one time axis.

Every field is read strictly: a missing or mistyped one is reported with its file and key.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pdcore.exceptions import InvalidInputError
from pdcore.outputs import check_outputs, write_text
from pdcore.report.page import compact_timeline, escape, explorer_html, page

__all__ = ["read_view", "render_view", "write_view"]

_EXPLORER = "explorer-view"


class _Reader:
    """Reads fields of one JSON document, naming the file and key of anything wrong."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, what: str) -> InvalidInputError:
        return InvalidInputError(
            f"{self.source}: {where} {what}; fix: pass the JSON that `pdcore chat --json` or "
            "`pdcore validate --json` wrote"
        )

    def mapping(self, value: Any, where: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(where, f"is {type(value).__name__}, not an object")
        return value

    def items(self, parent: Mapping[str, Any], key: str, where: str) -> Sequence[Any]:
        value = parent.get(key)
        if not isinstance(value, list):
            raise self.fail(f"{where}.{key}", "is missing or not a list")
        return value

    def number(
        self, parent: Mapping[str, Any], key: str, where: str, *, optional: bool = False
    ) -> float | None:
        value = parent.get(key)
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.fail(f"{where}.{key}", f"= {value!r} is not a finite number")
        return float(value)

    def seconds(self, parent: Mapping[str, Any], key: str, where: str) -> float:
        value = self.number(parent, key, where)
        if value is None:  # pragma: no cover - number() refuses None unless optional
            raise self.fail(f"{where}.{key}", "is missing")
        return value


def _title(plan: str, displays: Sequence[float]) -> str:
    gaps = np.diff(np.asarray(displays, dtype=np.float64))
    text = f"{plan}, " + (f"first token {displays[0]:.3f} s" if displays else "nothing shown")
    return text + (f", largest gap {gaps.max() * 1e3:.0f} ms" if gaps.size else "")


def _live(reader: _Reader, timeline: Mapping[str, Any], where: str) -> dict[str, Any]:
    """A ``Timeline.to_dict`` record as the explorer reads it."""
    tokens = reader.items(timeline, "tokens", where)
    shown: list[float] = []
    from_cloud: list[bool] = []
    for index, token in enumerate(tokens):
        record = reader.mapping(token, f"{where}.tokens[{index}]")
        shown.append(reader.seconds(record, "shown_s", f"{where}.tokens[{index}]"))
        source = record.get("source")
        if source not in {"cloud", "device"}:
            raise reader.fail(f"{where}.tokens[{index}].source", f"= {source!r} is not 'cloud' or 'device'")
        from_cloud.append(source == "cloud")
    arrivals = [
        reader.seconds(
            reader.mapping(event, f"{where}.cloud_events[{index}]"), "at_s", f"{where}.cloud_events[{index}]"
        )
        for index, event in enumerate(reader.items(timeline, "cloud_events", where))
    ]
    estimates = []
    for index, entry in enumerate(reader.items(timeline, "handoff_estimates", where)):
        record = reader.mapping(entry, f"{where}.handoff_estimates[{index}]")
        at = reader.seconds(record, "at_s", f"{where}.handoff_estimates[{index}]")
        estimates.append((at, reader.seconds(record, "estimate_s", f"{where}.handoff_estimates[{index}]")))
    summary = reader.mapping(timeline.get("summary"), f"{where}.summary")
    handoff = reader.number(summary, "handoff_s", f"{where}.summary", optional=True)
    max_tpot = reader.seconds(timeline, "max_tpot", where)
    quota = timeline.get("cloud_quota")
    asked = f"cloud quota {quota}" if isinstance(quota, int) else "no cloud request"
    title = _title(f"mode {timeline.get('mode', '?')}, {asked}", shown)
    return compact_timeline(
        displays_s=shown,
        from_cloud=from_cloud,
        cloud_arrivals_s=arrivals,
        handoff_s=handoff,
        estimates=estimates,
        max_tpot_s=max_tpot,
        title=title,
    )


def _predicted(reader: _Reader, recorded: Mapping[str, Any], where: str, max_tpot_s: float) -> dict[str, Any]:
    """A ``predicted_timeline`` (the simulator's record of the same request) as the explorer reads it."""
    displays = [float(value) for value in reader.items(recorded, "displays_s", where)]
    from_cloud = [bool(value) for value in reader.items(recorded, "from_cloud", where)]
    if len(from_cloud) != len(displays):
        raise reader.fail(
            f"{where}.from_cloud", f"has {len(from_cloud)} entries for {len(displays)} displays"
        )
    estimates = [
        (float(pair[0]), float(pair[1]))
        for pair in reader.items(recorded, "handoff_estimates", where)
        if isinstance(pair, list) and len(pair) == 2
    ]
    title = _title(f"simulated, k = {recorded.get('k')}", displays)  # k: cloud tokens after the first
    return compact_timeline(
        displays_s=displays,
        from_cloud=from_cloud,
        cloud_arrivals_s=[float(value) for value in reader.items(recorded, "cloud_arrivals_s", where)],
        handoff_s=reader.number(recorded, "handoff_s", where, optional=True),
        estimates=estimates,
        max_tpot_s=max_tpot_s,
        title=title,
    )


def _describe(timeline: Mapping[str, Any]) -> str:
    summary = timeline.get("summary") or {}
    parts = [
        f"{timeline.get('prompt_tokens')} prompt tokens",
        f"{summary.get('tokens')} tokens shown",
        f"mode {timeline.get('mode')}",
    ]
    ttft = summary.get("ttft_s")
    if isinstance(ttft, (int, float)):
        parts.append(f"TTFT {ttft * 1e3:.0f} ms")
    if summary.get("handoff_position") is not None:
        parts.append(f"hand-off at token {summary['handoff_position']}")
    return ", ".join(parts)


def read_view(path: str | os.PathLike[str]) -> tuple[str, dict[str, Any]]:
    """Reads a ``chat --json`` or ``validate --json`` file: its kind (``"chat"`` or ``"validate"``) and
    the explorer's data (`pdcore.report.page`).

    Raises:
        InvalidInputError: The file cannot be read, is not JSON, or is neither kind of file.
    """
    source = Path(path)
    try:
        document = json.loads(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInputError(
            f"FILE {str(source)!r} cannot be read ({exc.strerror}); fix: pass a JSON file"
        ) from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError(
            f"FILE {str(source)!r} is not JSON ({exc}); fix: pass the JSON that `pdcore chat --json` or "
            "`pdcore validate --json` wrote"
        ) from exc
    reader = _Reader(str(source))
    root = reader.mapping(document, "the document")
    requests: dict[str, Any] = {}
    if "runs" in root:
        kind = "validate"
        max_tpot = reader.seconds(root, "max_tpot_s", "the document")
        for index, entry in enumerate(reader.items(root, "runs", "the document")):
            run = reader.mapping(entry, f"runs[{index}]")
            timeline = reader.mapping(run.get("timeline"), f"runs[{index}].timeline")
            columns = {"live": _live(reader, timeline, f"runs[{index}].timeline")}
            predicted = run.get("predicted_timeline")
            if predicted is not None:
                where = f"runs[{index}].predicted_timeline"
                columns["predicted"] = _predicted(reader, reader.mapping(predicted, where), where, max_tpot)
            requests[str(index)] = {
                "label": f"live request {index + 1}",
                "description": f"live request {index + 1}: {_describe(timeline)}"
                + ("" if predicted is not None else " (this report carries no prediction to compare)"),
                "columns": columns,
            }
        how = f"{len(requests)} live requests of the validate run, each beside the simulator's prediction"
    elif "tokens" in root:
        kind = "chat"
        requests["0"] = {
            "label": "the request",
            "description": _describe(root),
            "columns": {f"live ({root.get('mode')})": _live(reader, root, "the document")},
        }
        how = "one live request (pdcore chat)"
    else:
        raise reader.fail("the document", "has neither 'tokens' (chat) nor 'runs' (validate)")
    if not requests:
        raise reader.fail("runs", "is empty")
    ids = [int(key) for key in requests]
    explorer = {"how": how, "filters": {"every request": ids}, "requests": requests}
    return kind, explorer


def render_view(path: str | os.PathLike[str]) -> str:
    """The page of `read_view`'s file.

    Raises:
        InvalidInputError: A bad file (`read_view`), or plotly is not installed.
    """
    kind, explorer = read_view(path)
    name = Path(path).name
    heading = f"pdcore {kind}: {name}"
    body = (
        f"<h1>{escape(heading)}</h1>"
        f'<p class="note">{escape(explorer["how"])}. Drag to zoom, double-click to zoom out; hover a point '
        "for its time.</p>" + explorer_html(_EXPLORER, "timeline")
    )
    return page(heading, body, explorers={_EXPLORER: explorer})


def write_view(path: str | os.PathLike[str], out: str | os.PathLike[str] | None = None) -> Path:
    """Writes the page of ``path`` to ``out`` (default: beside it, ``.html`` for its suffix) and returns
    where.

    Raises:
        InvalidInputError: A bad file (`read_view`), an output that would replace the input, or plotly is
            not installed.
    """
    source = Path(path)
    target = Path(out) if out is not None else source.with_suffix(".html")
    check_outputs({"--out": target}, {"FILE": source})
    write_text(target, render_view(source))
    return target

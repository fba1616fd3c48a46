"""``pdcore view FILE``: a live timeline in the browser, in the explorer of ``report.html``.

FILE is the JSON that ``pdcore chat --json`` writes (one request's `pdcore.runtime.timeline.Timeline`) or
that ``pdcore validate --json`` writes (every live request, each with its timeline and, when the report
carries it, the simulator's prediction of the same request as ``predicted_timeline``). The page shows
each request's token positions (cloud arrivals, displayed tokens by source, the hand-off), its display
gaps against the gap objective and the hand-off estimate as it was revised; for ``validate``, the live
run and the prediction side by side on one time axis.

Every field is read strictly (`pdcore.report.timeline_file`): a missing or mistyped field, or a time that is
not finite, is negative, is beyond a day or runs backwards, is reported with its file, key and index and
the fix, so the page never draws a timeline it cannot draw truthfully.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pdcore.escaping import html_text
from pdcore.limits import MAX_K, MAX_TOKENS
from pdcore.outputs import check_outputs, write_text
from pdcore.report.page import compact_timeline, explorer_html, page
from pdcore.report.timeline_file import FieldReader, read_timeline_json

__all__ = ["read_view", "render_view", "write_view"]

_EXPLORER = "explorer-view"


def _title(plan: str, displays: Sequence[float]) -> str:
    gaps = np.diff(np.asarray(displays, dtype=np.float64))
    text = f"{plan}, " + (f"first token {displays[0]:.3f} s" if displays else "nothing shown")
    return text + (f", largest gap {gaps.max() * 1e3:.0f} ms" if gaps.size else "")


def _entries(
    reader: FieldReader, parent: Mapping[str, Any], key: str, where: str
) -> list[tuple[str, Mapping[str, Any]]]:
    """Each object of the list ``parent[key]`` with its name (``where.key[index]``)."""
    named = []
    for index, entry in enumerate(reader.items(parent, key, where)):
        at = f"{where}.{key}[{index}]"
        named.append((at, reader.mapping(entry, at)))
    return named


def _live(reader: FieldReader, timeline: Mapping[str, Any], where: str) -> dict[str, Any]:
    """A ``Timeline.to_dict`` record as the explorer reads it."""
    shown: list[float] = []
    from_cloud: list[bool] = []
    for at, record in _entries(reader, timeline, "tokens", where):
        shown.append(reader.time(record, "shown_s", at))
        source = record.get("source")
        if source not in ("cloud", "device"):  # a tuple: an unhashable value is refused, not a TypeError
            raise reader.fail(f"{at}.source", f"= {source!r:.60} is not 'cloud' or 'device'")
        from_cloud.append(source == "cloud")
    reader.in_order(shown, f"{where}.tokens", ".shown_s")
    arrivals = [
        reader.time(record, "at_s", at) for at, record in _entries(reader, timeline, "cloud_events", where)
    ]
    reader.in_order(arrivals, f"{where}.cloud_events", ".at_s")
    estimates = [
        (reader.time(record, "at_s", at), reader.time(record, "estimate_s", at))
        for at, record in _entries(reader, timeline, "handoff_estimates", where)
    ]
    reader.in_order([at for at, _ in estimates], f"{where}.handoff_estimates", ".at_s")
    summary = reader.mapping(timeline.get("summary"), f"{where}.summary")
    handoff = reader.optional_time(summary, "handoff_s", f"{where}.summary")
    max_tpot = reader.objective(timeline, "max_tpot", where)
    quota = reader.whole(timeline, "cloud_quota", where, minimum=0, maximum=MAX_TOKENS)
    asked = f"cloud quota {quota}" if quota is not None else "no cloud request"
    title = _title(f"mode {reader.text(timeline, 'mode', where)}, {asked}", shown)
    return compact_timeline(
        displays_s=shown,
        from_cloud=from_cloud,
        cloud_arrivals_s=arrivals,
        handoff_s=handoff,
        estimates=estimates,
        max_tpot_s=max_tpot,
        title=title,
    )


def _times(reader: FieldReader, parent: Mapping[str, Any], key: str, where: str) -> list[float]:
    """The list of times ``parent[key]``, in time order."""
    values = reader.items(parent, key, where)
    times = [reader.time_of(value, f"{where}.{key}[{index}]") for index, value in enumerate(values)]
    return reader.in_order(times, f"{where}.{key}")


def _predicted(
    reader: FieldReader, recorded: Mapping[str, Any], where: str, max_tpot_s: float
) -> dict[str, Any]:
    """A ``predicted_timeline`` (the simulator's record of the same request) as the explorer reads it."""
    displays = _times(reader, recorded, "displays_s", where)
    from_cloud = [
        reader.flag(value, f"{where}.from_cloud[{index}]")
        for index, value in enumerate(reader.items(recorded, "from_cloud", where))
    ]
    if len(from_cloud) != len(displays):
        raise reader.fail(
            f"{where}.from_cloud", f"has {len(from_cloud)} entries for {len(displays)} displays"
        )
    estimates = []
    for index, pair in enumerate(reader.items(recorded, "handoff_estimates", where)):
        at = f"{where}.handoff_estimates[{index}]"
        if not isinstance(pair, list) or len(pair) != 2:
            raise reader.fail(at, f"= {pair!r:.60} is not a pair [at_s, estimate_s]")
        estimates.append((reader.time_of(pair[0], f"{at}[0]"), reader.time_of(pair[1], f"{at}[1]")))
    reader.in_order([at for at, _ in estimates], f"{where}.handoff_estimates", "[0]")
    k = reader.whole(recorded, "k", where, minimum=-1, maximum=MAX_K)  # cloud tokens after the first
    return compact_timeline(
        displays_s=displays,
        from_cloud=from_cloud,
        cloud_arrivals_s=_times(reader, recorded, "cloud_arrivals_s", where),
        handoff_s=reader.optional_time(recorded, "handoff_s", where),
        estimates=estimates,
        max_tpot_s=max_tpot_s,
        title=_title(f"simulated, k = {k}", displays),
    )


def _describe(reader: FieldReader, timeline: Mapping[str, Any], where: str) -> str:
    summary = reader.mapping(timeline.get("summary"), f"{where}.summary")
    tokens = reader.whole(summary, "tokens", f"{where}.summary", minimum=0, maximum=MAX_TOKENS)
    parts = [
        f"{reader.whole(timeline, 'prompt_tokens', where, minimum=0, maximum=MAX_TOKENS)} prompt tokens",
        f"{tokens} tokens shown",
        f"mode {reader.text(timeline, 'mode', where)}",
    ]
    ttft = reader.optional_time(summary, "ttft_s", f"{where}.summary")
    if ttft is not None:
        parts.append(f"TTFT {ttft * 1e3:.0f} ms")
    position = reader.whole(summary, "handoff_position", f"{where}.summary", minimum=0, maximum=MAX_TOKENS)
    if position is not None:
        parts.append(f"hand-off at token {position}")
    return ", ".join(parts)


def _validate_requests(reader: FieldReader, root: Mapping[str, Any]) -> dict[str, Any]:
    """The explorer's requests of a ``validate --json`` document: each live run beside its prediction."""
    max_tpot = reader.objective(root, "max_tpot_s", "the document")
    requests: dict[str, Any] = {}
    for index, entry in enumerate(reader.items(root, "runs", "the document")):
        run = reader.mapping(entry, f"runs[{index}]")
        where = f"runs[{index}].timeline"
        timeline = reader.mapping(run.get("timeline"), where)
        columns = {"live": _live(reader, timeline, where)}
        predicted = run.get("predicted_timeline")
        if predicted is not None:
            at = f"runs[{index}].predicted_timeline"
            columns["predicted"] = _predicted(reader, reader.mapping(predicted, at), at, max_tpot)
        requests[str(index)] = {
            "label": f"live request {index + 1}",
            "description": f"live request {index + 1}: {_describe(reader, timeline, where)}"
            + ("" if predicted is not None else " (this report carries no prediction to compare)"),
            "columns": columns,
        }
    if not requests:
        raise reader.fail("runs", "is empty")
    return requests


def read_view(path: str | os.PathLike[str]) -> tuple[str, dict[str, Any]]:
    """Reads a ``chat --json`` or ``validate --json`` file: its kind (``"chat"`` or ``"validate"``) and
    the explorer's data (`pdcore.report.page`). The file is read strictly
    (`pdcore.report.timeline_file`) and recorded as an input, so no output replaces it.

    Raises:
        InvalidInputError: The file cannot be read, is not JSON, is neither kind of file, or has a field
            missing, of the wrong type, or a time that is not finite, is negative, is beyond a day or
            runs backwards.
    """
    source = Path(path)
    reader = FieldReader(str(source))
    root = reader.mapping(read_timeline_json(source), "the document")
    if "runs" in root:
        kind = "validate"
        requests = _validate_requests(reader, root)
        how = f"{len(requests)} live requests of the validate run, each beside the simulator's prediction"
    elif "tokens" in root:
        kind = "chat"
        mode = reader.text(root, "mode", "the document")
        requests = {
            "0": {
                "label": "the request",
                "description": _describe(reader, root, "the document"),
                "columns": {f"live ({mode})": _live(reader, root, "the document")},
            }
        }
        how = "one live request (pdcore chat)"
    else:
        raise reader.fail("the document", "has neither 'tokens' (chat) nor 'runs' (validate)")
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
        f"<h1>{html_text(heading)}</h1>"
        f'<p class="note">{html_text(explorer["how"])}. Drag to zoom, double-click to zoom out; hover a '
        "point for its time.</p>" + explorer_html(_EXPLORER, "timeline")
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

"""The Mooncake trace (``.jsonl`` / ``.json``): one JSON object a line with ``timestamp`` (milliseconds),
``input_length``, ``output_length`` and, optionally, ``hash_ids`` (a list of 512-token prefix-block ids,
from which follow-up turns are found: `pdcore.traces.conversations`) and ``device_class`` (each request's
device class, on every line or none: `pdcore.traces.class_column`).

Lines are read by the shared JSON Lines reader (`pdcore.traces.jsonl`); requests must already be in
arrival order (equal timestamps are allowed) and blank lines are skipped.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import numpy.typing as npt

from pdcore.limits import MAX_TRACE_SPAN_S
from pdcore.traces.checks import ZeroClamps, trace_file
from pdcore.traces.class_column import ClassCells
from pdcore.traces.conversations import conversation_from_parents, flatten_blocks, follow_ups_from_blocks
from pdcore.traces.jsonl import (
    json_blocks,
    json_count,
    json_in_order,
    json_keys,
    json_lines,
    json_time,
    no_requests,
)
from pdcore.traces.workload import Workload

__all__ = ["MOONCAKE_BLOCK_TOKENS", "MOONCAKE_KEYS", "load_mooncake"]

MOONCAKE_KEYS: tuple[str, str, str] = ("timestamp", "input_length", "output_length")
"""Keys every Mooncake JSON line must contain."""

MOONCAKE_BLOCK_TOKENS = 512
"""Tokens per ``hash_ids`` block of the Mooncake trace."""

_MAX_JSON_MS = MAX_TRACE_SPAN_S * 1000.0
_MILLIS = "milliseconds since the start of the trace"
_SHAPE = 'write each request as {"timestamp": ..., "input_length": ..., "output_length": ...}'


def load_mooncake(path: str | os.PathLike[str]) -> Workload:
    """Loads a Mooncake trace: JSON Lines with ``timestamp`` (ms), ``input_length``, ``output_length``.

    Args:
        path: JSON Lines file, one request object per line. ``hash_ids``, when present, must be a list of
            non-negative integers (512-token prefix blocks): they become the cloud prefix blocks, and
            follow-up turns are found from them (`pdcore.traces.conversations`); a line without them has
            no blocks and opens a session.

    Returns:
        The workload, named after the file stem, with arrival times in seconds relative to the first line.
        ``input_length`` becomes ``prompt_tokens`` and ``output_length`` ``output_tokens``; zeros are
        clamped to 1 and recorded in ``notes``.

    Raises:
        TraceFormatError: The file is missing, unreadable, a JSON array rather than JSON Lines, empty, or a
            line is not a JSON object, lacks a key, holds a non-numeric or negative value, or has a
            timestamp earlier than the line before it.
    """
    file = trace_file(path)
    name = str(path)
    rows = _MooncakeRows(name)
    for line, record in json_lines(file, name, _SHAPE):
        rows.add(line, record)
    if not rows.stamps:
        raise no_requests(name)
    millis = np.asarray(rows.stamps, dtype=np.float64)
    prompts = np.asarray(rows.prompts, dtype=np.int64)
    outputs = np.asarray(rows.outputs, dtype=np.int64)
    columns = _conversation_columns(rows.blocks, prompts, outputs) if any(rows.blocks) else {}
    return Workload(
        name=file.stem,
        arrival_s=(millis - millis[0]) / 1000.0,
        prompt_tokens=prompts,
        output_tokens=outputs,
        source=name,
        notes=rows.clamps.notes(name),
        **columns,
        **rows.classes.column(),
    )


class _MooncakeRows:
    """The requests of a Mooncake trace read so far, each line checked as it is added."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.stamps: list[float] = []
        self.prompts: list[int] = []
        self.outputs: list[int] = []
        self.blocks: list[list[int]] = []
        self.clamps = ZeroClamps()
        self.classes = ClassCells(name)
        self.previous_line = 0

    def add(self, line: int, record: dict[str, Any]) -> None:
        """Checks one line (keys, timestamp, order, token counts, blocks, in that order) and keeps it."""
        name = self.name
        json_keys(record, MOONCAKE_KEYS, name, line)
        stamp = json_time(record, "timestamp", name, line, _MAX_JSON_MS, _MILLIS)
        json_in_order(stamp, self.stamps, record["timestamp"], name, line, self.previous_line)
        prompt = json_count(record, "input_length", name, line)
        output = json_count(record, "output_length", name, line)
        hash_ids = json_blocks(record, name, line, "write hash_ids as e.g. [0, 1, 2] or leave the key out")
        self.blocks.append(hash_ids or [])
        self.stamps.append(stamp)
        self.prompts.append(self.clamps.clamp(prompt, "input_length", line))
        self.outputs.append(self.clamps.clamp(output, "output_length", line))
        self.classes.add(line, record)
        self.previous_line = line


def _conversation_columns(
    blocks: list[list[int]], prompts: npt.NDArray[np.int64], outputs: npt.NDArray[np.int64]
) -> dict[str, Any]:
    """The `Workload` conversation columns found from the prefix blocks (`pdcore.traces.conversations`)."""
    parent, shared = follow_ups_from_blocks(blocks, prompts, outputs, MOONCAKE_BLOCK_TOKENS)
    session, turn = conversation_from_parents(parent)
    offsets, ids = flatten_blocks(blocks)
    return {
        "session": session,
        "turn": turn,
        "parent": parent,
        "shared_prefix_tokens": shared,
        "block_offsets": offsets,
        "block_ids": ids,
        "block_tokens": MOONCAKE_BLOCK_TOKENS,
    }

"""Qwen-Bailian-style conversation records (``.jsonl`` whose first record has ``chat_id``): one JSON object
a line with ``chat_id``, ``parent_chat_id`` (-1 for a first turn), ``timestamp`` (seconds),
``input_length``, ``output_length``, ``turn`` and, optionally, ``hash_ids`` and ``device_class`` (each
request's device class, on every line or none: `pdcore.traces.class_column`).

Lines are read by the shared JSON Lines reader (`pdcore.traces.jsonl`); requests must already be in
arrival order (equal timestamps are allowed) and blank lines are skipped.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from pdcore.exceptions import TraceFormatError
from pdcore.limits import MAX_TOKENS, MAX_TRACE_SPAN_S
from pdcore.traces.checks import ZeroClamps, row_error, trace_file
from pdcore.traces.class_column import ClassCells
from pdcore.traces.conversations import (
    conversation_from_parents,
    derive_blocks,
    flatten_blocks,
    shared_from_blocks,
)
from pdcore.traces.jsonl import (
    json_blocks,
    json_count,
    json_id,
    json_in_order,
    json_keys,
    json_lines,
    json_time,
    no_requests,
)
from pdcore.traces.workload import Workload

__all__ = ["BAILIAN_BLOCK_TOKENS", "BAILIAN_KEYS", "load_bailian"]

BAILIAN_KEYS: tuple[str, ...] = (
    "chat_id",
    "parent_chat_id",
    "timestamp",
    "input_length",
    "output_length",
    "turn",
)
"""Keys every Qwen-Bailian-style JSON line must contain (``hash_ids`` is optional)."""

BAILIAN_BLOCK_TOKENS = 16
"""Tokens per ``hash_ids`` block of a Qwen-Bailian-style trace unless the caller gives another size."""


def load_bailian(path: str | os.PathLike[str], *, block_tokens: int = BAILIAN_BLOCK_TOKENS) -> Workload:
    """Loads Qwen-Bailian-style conversation records: one JSON object per line with ``chat_id``,
    ``parent_chat_id`` (-1 for a first turn), ``timestamp`` (seconds), ``input_length``, ``output_length``,
    ``turn`` and, optionally, ``hash_ids`` (prefix-block ids of ``block_tokens`` tokens each).

    A follow-up's parent is its ``parent_chat_id``, which must be an earlier line's ``chat_id``, and its
    ``turn`` must be the parent's plus one. The shared prefix comes from ``hash_ids`` when given, else it is
    the parent's whole context (`pdcore.traces.conversations`); cloud prefix blocks are derived when the
    records have none.

    Raises:
        TraceFormatError: The file is missing or malformed; the message names the line, the key and the fix
            (an unknown or later parent, a turn that does not follow its parent's, a repeated ``chat_id``).
    """
    file = trace_file(path)
    name = str(path)
    if (
        isinstance(block_tokens, bool)
        or not isinstance(block_tokens, int)
        or not 1 <= block_tokens <= MAX_TOKENS
    ):
        raise TraceFormatError(
            f"block_tokens = {block_tokens!r}; fix: give the tokens of one hash block, >= 1"
        )
    rows = _BailianRows(name)
    for line, record in json_lines(file, name, "write each request as one JSON object"):
        rows.add(line, record)
    if not rows.stamps:
        raise no_requests(name)
    return rows.workload(file.stem, block_tokens)


class _BailianRows:
    """The records of a Qwen-Bailian-style trace read so far, each line checked as it is added."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.stamps: list[float] = []
        self.prompts: list[int] = []
        self.outputs: list[int] = []
        self.parents: list[int] = []
        self.turns: list[int] = []
        self.blocks: list[list[int]] = []
        self.index_of: dict[int, int] = {}
        self.clamps = ZeroClamps()
        self.classes = ClassCells(name)
        self.previous_line = 0

    def add(self, line: int, record: dict[str, Any]) -> None:
        """Checks one line (keys, timestamp, ids, parent and turn, blocks, token counts, in that order) and
        keeps it."""
        name = self.name
        json_keys(record, BAILIAN_KEYS, name, line)
        stamp = json_time(record, "timestamp", name, line, MAX_TRACE_SPAN_S, "seconds from the trace start")
        json_in_order(stamp, self.stamps, record["timestamp"], name, line, self.previous_line)
        chat = json_id(record, "chat_id", name, line, 0)
        if chat in self.index_of:
            raise row_error(
                name,
                line,
                "chat_id",
                f"{chat} appears on an earlier line",
                "give every request its own chat_id",
            )
        parent_chat = json_id(record, "parent_chat_id", name, line, -1)
        turn = json_id(record, "turn", name, line, 1)
        parent = self._parent(parent_chat, turn, line)
        self._blocks(record, line)
        self.index_of[chat] = len(self.stamps)
        self.stamps.append(stamp)
        clamp = self.clamps.clamp
        self.prompts.append(clamp(json_count(record, "input_length", name, line), "input_length", line))
        self.outputs.append(clamp(json_count(record, "output_length", name, line), "output_length", line))
        self.parents.append(parent)
        self.turns.append(turn)
        self.classes.add(line, record)
        self.previous_line = line

    def _parent(self, parent_chat: int, turn: int, line: int) -> int:
        """The index of the line's parent (-1 for a first turn), which must be an earlier line whose turn
        is one less."""
        name = self.name
        if parent_chat < 0:
            if turn != 1:
                raise row_error(
                    name,
                    line,
                    "turn",
                    f"{turn} without a parent",
                    "a request with parent_chat_id -1 is turn 1",
                )
            return -1
        if parent_chat not in self.index_of:
            raise row_error(
                name,
                line,
                "parent_chat_id",
                f"{parent_chat} is not the chat_id of an earlier line",
                "point a follow-up at its previous turn, which must come first, or write -1",
            )
        parent = self.index_of[parent_chat]
        if turn != self.turns[parent] + 1:
            raise row_error(
                name,
                line,
                "turn",
                f"{turn} does not follow its parent's turn {self.turns[parent]}",
                "a follow-up's turn is its parent's plus one",
            )
        return parent

    def _blocks(self, record: dict[str, Any], line: int) -> None:
        """Keeps the line's ``hash_ids``, which every line gives or none does."""
        name = self.name
        hash_ids = json_blocks(record, name, line, "write e.g. [0, 1, 2] or leave it out")
        if hash_ids is not None:
            if len(self.blocks) != len(self.stamps):
                raise row_error(
                    name,
                    line,
                    "hash_ids",
                    "is given here but not on every earlier line",
                    "give it on every line or none",
                )
            self.blocks.append(hash_ids)
        elif self.blocks:
            raise row_error(
                name,
                line,
                "hash_ids",
                "is missing but given on earlier lines",
                "give it on every line or none",
            )

    def workload(self, stem: str, block_tokens: int) -> Workload:
        """The workload of the records read, with the shared prefixes and the cloud prefix blocks."""
        prompts = np.asarray(self.prompts, dtype=np.int64)
        outputs = np.asarray(self.outputs, dtype=np.int64)
        parents = np.asarray(self.parents, dtype=np.int64)
        session, _ = conversation_from_parents(parents)
        if self.blocks:
            shared = shared_from_blocks(self.blocks, parents, prompts, outputs, block_tokens)
            offsets, ids = flatten_blocks(self.blocks)
        else:
            has = parents >= 0
            shared = np.zeros(len(self.stamps), dtype=np.int64)
            p = parents[has]
            shared[has] = np.minimum(prompts[has], prompts[p] + outputs[p])
            offsets, ids = derive_blocks(prompts, parents, shared, block_tokens)
        seconds = np.asarray(self.stamps, dtype=np.float64)
        return Workload(
            name=stem,
            arrival_s=seconds - seconds[0],
            prompt_tokens=prompts,
            output_tokens=outputs,
            source=self.name,
            notes=self.clamps.notes(self.name),
            session=session,
            turn=np.asarray(self.turns, dtype=np.int64),
            parent=parents,
            shared_prefix_tokens=shared,
            block_offsets=offsets,
            block_ids=ids,
            block_tokens=block_tokens,
            **self.classes.column(),
        )

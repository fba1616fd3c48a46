"""Readers for public LLM request traces, and `load_trace`, which picks one from the file suffix.

Three formats, one module each, the JSON ones over the shared JSON Lines reader (`pdcore.traces.jsonl`):

- ``.csv``: the Azure LLM inference trace 2023 (`pdcore.traces.azure`).
- ``.jsonl`` / ``.json``: the Mooncake trace (`pdcore.traces.mooncake`).
- ``.jsonl`` whose first record has ``chat_id``: Qwen-Bailian-style conversation records
  (`pdcore.traces.bailian`).

A trace's path must name a regular file (a FIFO, a device or a directory is refused, named as what it is),
and the file becomes an input of the run that no output may replace (`pdcore.traces.checks.trace_file`).
Every malformed row (missing column, non-numeric, negative or out-of-range value, decreasing timestamp, bad
or too deeply nested JSON) raises `TraceFormatError` naming the file, the 1-based line number, the column
and the fix. Blank lines are skipped. Requests must already be in arrival order; equal timestamps are
allowed. Token counts of 0 are clamped to 1 and recorded in `Workload.notes` (`pdcore.traces.checks`).
"""

from __future__ import annotations

import os

from pdcore.exceptions import TraceFormatError
from pdcore.traces.azure import AZURE_COLUMNS, load_azure
from pdcore.traces.bailian import BAILIAN_BLOCK_TOKENS, BAILIAN_KEYS, load_bailian
from pdcore.traces.checks import trace_file
from pdcore.traces.jsonl import first_record_keys
from pdcore.traces.mooncake import MOONCAKE_BLOCK_TOKENS, MOONCAKE_KEYS, load_mooncake
from pdcore.traces.workload import Workload

__all__ = [
    "AZURE_COLUMNS",
    "BAILIAN_BLOCK_TOKENS",
    "BAILIAN_KEYS",
    "MOONCAKE_BLOCK_TOKENS",
    "MOONCAKE_KEYS",
    "load_azure",
    "load_bailian",
    "load_mooncake",
    "load_trace",
]


def load_trace(path: str | os.PathLike[str]) -> Workload:
    """Loads a trace, choosing the reader from the file suffix.

    ``.csv`` is read by `load_azure`; ``.jsonl`` and ``.json`` by `load_bailian` when the first record has
    a ``chat_id``, else by `load_mooncake`. Suffixes are matched case-insensitively.

    Args:
        path: The trace file.

    Returns:
        The workload.

    Raises:
        TraceFormatError: ``path`` is not a path, names no regular file, its suffix is not one of the
            above, or its contents are malformed (see the readers).
    """
    file = trace_file(path)
    suffix = file.suffix.lower()
    if suffix == ".csv":
        return load_azure(path)
    if suffix in {".jsonl", ".json"}:
        if "chat_id" in first_record_keys(file):
            return load_bailian(path)
        return load_mooncake(path)
    raise TraceFormatError(
        f"trace file {str(path)!r} has suffix {file.suffix!r}, which names no known format; fix: use .csv "
        "for the Azure LLM inference trace or .jsonl for the Mooncake trace (rename the file if needed)"
    )

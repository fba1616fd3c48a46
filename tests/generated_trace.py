"""A small generated trace in the Azure 2023 format, registered under a test name, for the tests of the
trace cache, ``traces add`` and ``traces fetch`` (no real trace needed).

Tests import this module by name (``from generated_trace import BODY``), as they import ``servers``.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from pdcore.traces.registry import TRACES, PublicTrace

NAME = "test-azure"
BODY = (
    "TIMESTAMP,ContextTokens,GeneratedTokens\n"
    + "".join(
        f"2023-11-16 18:{i // 60:02d}:{i % 60:02d}.0000000,{100 + 7 * i},{20 + i}\n" for i in range(120)
    )
).encode()
SHA256 = hashlib.sha256(BODY).hexdigest()


def register(monkeypatch: pytest.MonkeyPatch, url: str, **pins: Any) -> PublicTrace:
    """Registers the generated trace as ``NAME``, served at ``url``, pinned to `BODY` unless ``pins`` say
    otherwise (``sha256``, ``size_bytes``, ``git_blob``...)."""
    fields: dict[str, Any] = {"sha256": SHA256, "size_bytes": len(BODY)} | pins
    trace = PublicTrace(
        name=NAME,
        title="a generated Azure-format trace",
        source="the tests",
        url=url,
        licence="CC-BY-4.0",
        licence_url="https://example.invalid/licence",
        paper="none",
        reader="azure",
        suffix=".csv",
        **fields,
    )
    monkeypatch.setitem(TRACES, NAME, trace)
    return trace

"""The real public traces, where a test can find them: beside the checkout or in the user's trace cache.

The traces are never part of the repository (their licences ask for attribution, and the project's own
default workload is generated). A test of a real trace runs when ``../shared/traces/FILE`` (beside the
checkout) or the trace cache (`pdcore.traces.cache`, after ``pdcore traces fetch NAME`` or ``pdcore traces
add NAME PATH``) has it, and is skipped with the fix otherwise.

Tests import this module by name (``from traces_at_hand import real_trace``), as they import ``servers``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pdcore.traces.cache import cached_file
from pdcore.traces.registry import public_trace

SHARED = Path(__file__).resolve().parents[2] / "shared" / "traces"
"""The shared traces beside the checkout, under the names the shared directory gives them."""


def real_trace(name: str, shared_name: str) -> Path | None:
    """The registered trace ``name``: ``SHARED / shared_name`` if present, else its cached file, else None."""
    shared = SHARED / shared_name
    if shared.is_file():
        return shared
    return cached_file(public_trace(name))


def needs_trace(name: str, shared_name: str) -> pytest.MarkDecorator:
    """Skips a test when `real_trace` finds neither copy, saying how to get one."""
    return pytest.mark.skipif(
        real_trace(name, shared_name) is None,
        reason=f"trace {name} not at hand: neither {SHARED / shared_name} nor the trace cache has it "
        f"(`pdcore traces fetch {name}` or `pdcore traces add {name} PATH`)",
    )

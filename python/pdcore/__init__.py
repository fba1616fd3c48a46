"""pdcore: cloud-device disaggregated LLM inference (P/D-Device, arXiv 2508.09035).

The cloud prefills and streams the first token plus ``k`` decode tokens; the device shows them through
a speed controller while it prefills the prompt and the received tokens, then decodes the rest itself.
This package holds the native core (pacing, token buffer, event loop), the simulator, the optimizer and
the live runtime.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _dist_version

from pdcore import _core
from pdcore._core import EventLoop, SpeedController, TokenBuffer
from pdcore.exceptions import (
    DeadlineMissedError,
    InvalidInputError,
    InvalidStateError,
    PdcoreError,
    ProfileError,
    TraceFormatError,
)
from pdcore.pacing import pace

__version__: str = _core.__version__


def _check_native_version() -> None:
    """Fails loudly when the compiled extension and the installed package disagree (a stale build)."""
    try:
        dist = _dist_version("pdcore")
    except PackageNotFoundError:  # running from a source tree without metadata
        return
    if dist != __version__:
        raise ImportError(
            f"pdcore's native extension is version {__version__} but the package is {dist}: "
            "the compiled module is stale; rebuild it with `make dev` or `pip install .`"
        )


_check_native_version()

__all__ = [
    "DeadlineMissedError",
    "EventLoop",
    "InvalidInputError",
    "InvalidStateError",
    "PdcoreError",
    "ProfileError",
    "SpeedController",
    "TokenBuffer",
    "TraceFormatError",
    "__version__",
    "pace",
]

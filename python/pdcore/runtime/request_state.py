"""What the parts of one streamed request share: its terms, its clock and start, its timeline, the token
buffer and the speed controller across the hand-off, whether the answer is complete, and how a change or a
notice is told.

The parts themselves (`pdcore.runtime.cloud_stream.CloudStream`,
`pdcore.runtime.device_progress.DeviceProgress`, `pdcore.runtime.failover.Failover` and
`pdcore.runtime.display.Display`) each own their own fields and get this record, not the session.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from pdcore._core import SpeedController, TokenBuffer
from pdcore.runtime.clock import RealtimeClock
from pdcore.runtime.timeline import Notice, Timeline

__all__ = ["MODES", "Mode", "RequestState", "RequestTerms"]

logger = logging.getLogger("pdcore.runtime")

Mode = Literal["pd-device", "device-only", "cloud-only"]
MODES: tuple[Mode, ...] = ("pd-device", "device-only", "cloud-only")


@dataclass(frozen=True, slots=True)
class RequestTerms:
    """A request's settings, fixed by its session when it starts.

    Attributes:
        mode: The session's mode.
        max_tokens: The longest answer in output positions.
        max_tpot: The largest display gap aimed for, seconds.
        min_tpot: The smallest display gap, seconds.
        pace_s: The largest gap the controller schedules (``max_tpot`` less the pacing margin), seconds.
        k_margin: How much a continuation request pads the tokens it asks for.
        max_extensions: Continuation requests allowed per answer.
    """

    mode: Mode
    max_tokens: int
    max_tpot: float
    min_tpot: float
    pace_s: float
    k_margin: float
    max_extensions: int


class RequestState:
    """The shared record of one streamed request (module docstring).

    Args:
        clock: The real-time clock.
        prompt: The full prompt text.
        terms: The request's settings.
        on_notice: Called with each `Notice` as it happens; ``None`` logs it as a warning instead.
    """

    def __init__(
        self,
        clock: RealtimeClock,
        prompt: str,
        terms: RequestTerms,
        on_notice: Callable[[Notice], None] | None,
    ) -> None:
        self.clock = clock
        self.prompt = prompt
        self.terms = terms
        self.mode: Mode = terms.mode
        self.t0 = clock.now()
        self.timeline = Timeline(
            mode=terms.mode,
            prompt=prompt,
            started_at=self.t0,
            max_tpot_s=terms.max_tpot,
            min_tpot_s=terms.min_tpot,
        )
        self.changed = asyncio.Event()
        self.buffer = TokenBuffer()
        self.controller: SpeedController | None = None
        """Paces the cloud's tokens (P/D-Device plans that split)."""
        self.answer_complete = False
        """The cloud finished the whole answer: nothing more is shown after what it sent."""
        self.closed = False
        """The answer was closed before its end (`pdcore.runtime.answer.Answer.aclose`): nothing more is
        shown."""
        self._on_notice = on_notice

    def rel(self, at: float) -> float:
        """Clock seconds ``at`` as seconds from the request's start."""
        return at - self.t0

    def close(self) -> None:
        """Ends the display: the answer was closed."""
        self.closed = True
        self.notify()

    def notify(self) -> None:
        """Wakes the display loop: something it waits for may have changed."""
        self.changed.set()

    def notice(self, kind: str, message: str) -> None:
        """Records a `Notice` in the timeline and tells it once (the callback, else the log)."""
        notice = Notice(at_s=self.rel(self.clock.now()), kind=kind, message=message)
        self.timeline.notices.append(notice)
        if self._on_notice is not None:
            logger.debug("%s: %s", kind, message)
            self._on_notice(notice)
        else:
            logger.warning("%s: %s", kind, message)

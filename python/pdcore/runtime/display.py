"""The display's part of a streamed request: which output position is shown next, when, and from where.

Cloud tokens are shown at the speed controller's due times (on arrival when nothing paces them), device
tokens as they are decoded but never closer than ``min_tpot``; each position once and in order. After a
device failure the cloud's continuation (`pdcore.runtime.failover`) fills the positions after the hand-off
and is shown as it arrives, like device tokens. The request's display loop
(`pdcore.runtime.request.Request.pieces`) sleeps until the next due time and asks `Display.show`.
"""

from __future__ import annotations

from dataclasses import dataclass

from pdcore.runtime.cloud_stream import CloudStream
from pdcore.runtime.device_progress import DeviceProgress
from pdcore.runtime.failover import Failover
from pdcore.runtime.request_state import RequestState
from pdcore.runtime.timeline import TokenRecord

__all__ = ["PRECISE_WAKE_S", "Display", "Piece"]

PRECISE_WAKE_S = 0.002
"""The display loop sleeps on the event loop until this long before a token is due, then the rest with a
blocking timer sleep. asyncio's selector rounds its timeout up to a whole millisecond and the loop wakes
behind whatever callback runs, so a token waited for on the loop alone was shown 1.3 ms late at the median
and up to 4.3 ms late while the device prefilled on the same core; with the last 2 ms on the OS timer,
0.08 ms at the median and 2.0 ms at most (an 807-token prefill, then 150 decoded tokens, on a 2-core x86
machine, the model and the loop on one core). The price: the loop's other work (reading the cloud's
events) waits up to 2 ms once per displayed token, far below a display gap."""


@dataclass(frozen=True, slots=True)
class Piece:
    """A piece of displayed text.

    Attributes:
        text: The text.
        source: ``"cloud"`` or ``"device"``.
        position: Its output position, from 0.
        at: When it was shown, seconds from the request's start.
    """

    text: str
    source: str
    position: int
    at: float


class Display:
    """The display's part of one request (module docstring).

    Args:
        state: The request's shared record.
        cloud: The cloud's part (its text and arrivals by position).
        device: The device's part (its decoded tokens by position).
        failover: The cloud's continuation after a device failure (its tokens by position).
    """

    def __init__(
        self, state: RequestState, cloud: CloudStream, device: DeviceProgress, failover: Failover
    ) -> None:
        self.state = state
        self._cloud = cloud
        self._device = device
        self._failover = failover
        self.last_shown: float | None = None
        """When the latest token was shown (clock seconds)."""

    def next_due(self) -> tuple[str, float] | None:
        """The source and due time of the next position, or ``None`` when nothing can be shown yet."""
        buffer = self.state.buffer
        position = buffer.displayed
        if position >= buffer.available:
            return None
        handoff = buffer.handoff
        if handoff is None or position < handoff:
            controller = self.state.controller
            if controller is None:
                return "cloud", self._cloud.arrivals[position]
            due = controller.next_due()
            assert due is not None
            return "cloud", due
        if self._failover.holds(position):
            source, ready = "cloud", self._failover.arrival(position)
        else:
            source, ready = "device", self._device.ready[position]
        if self.last_shown is None:
            return source, ready
        return source, max(ready, self.last_shown + self.state.terms.min_tpot)

    def show(self, source: str, due: float) -> TokenRecord:
        """Shows the next position, from ``source``, due at ``due`` (clock seconds), and records it."""
        state = self.state
        now = max(state.clock.now(), due)
        handoff = state.buffer.handoff
        paced = handoff is None or state.buffer.displayed < handoff
        if source == "cloud" and paced and state.controller is not None:
            now = state.controller.mark_shown(now)
        position, slot = state.buffer.display()
        continued = self._failover.holds(position)
        actual = "cloud" if continued else slot
        if actual != source:
            raise AssertionError(f"position {position}: expected a {source} token, the buffer has {actual}")
        if continued:
            text, available = self._failover.token(position)
        elif source == "cloud":
            text, available = self._cloud.pieces[position], self._cloud.arrivals[position]
        else:
            text, available = self._device.token(position)
        self.last_shown = now
        record = TokenRecord(
            position=position,
            text=text,
            source=source,
            available_s=state.rel(available),
            due_s=state.rel(due),
            shown_s=state.rel(now),
        )
        state.timeline.tokens.append(record)
        state.timeline.finished_s = record.shown_s
        if source == "cloud":
            self._cloud.maybe_extend(now, self.last_shown)  # a continuation may be due
        return record

"""Who holds the device: one answer at a time, the others in turn.

A device serves one answer at a time (its one context holds one answer's prompt and text; two answers
interleaved on one CPU would each be slower than the plan priced). An answer's device part holds the
`DeviceGate` of its `pdcore.runtime.device.Device` from the moment the session plans it on the device
until its device work ends (decoded to the end, stopped, failed or cancelled), not until its last token is
shown: the next answer gets the device as soon as it is free. A session claims the gate at once when it
plans an answer (`DeviceGate.try_claim`), so two answers opened back to back cannot both plan on an idle
device; an answer that must wait for it (`DeviceGate.claim`) is served first come, first served. What a
session does with an answer that finds the device busy is its plan (`pdcore.runtime.session`).
"""

from __future__ import annotations

import asyncio
from collections import deque

__all__ = ["DeviceGate"]


class DeviceGate:
    """One holder at a time; waiters in order of arrival (module docstring). Owners are any objects
    compared by identity (an answer's device part). Used from one event loop."""

    def __init__(self) -> None:
        self._holder: object | None = None
        self._waiters: deque[tuple[object, asyncio.Future[None]]] = deque()

    @property
    def busy(self) -> bool:
        """Whether an answer holds the device or waits for it."""
        return self._holder is not None or any(not future.done() for _, future in self._waiters)

    def holds(self, owner: object) -> bool:
        """Whether ``owner`` holds the device."""
        return self._holder is owner

    def try_claim(self, owner: object) -> bool:
        """Takes the device for ``owner`` if nobody holds it or waits for it; returns whether ``owner``
        holds it."""
        if self._holder is owner:
            return True
        if self.busy:
            return False
        self._holder = owner
        return True

    async def claim(self, owner: object) -> None:
        """Waits until ``owner`` holds the device (at once when it is free); a cancelled wait leaves the
        queue, and a device handed over meanwhile is passed on."""
        if self.try_claim(owner):
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((owner, future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release(owner)
            raise

    def release(self, owner: object) -> None:
        """Lets the device go if ``owner`` holds it (else nothing) and hands it to the next waiter."""
        if self._holder is not owner:
            return
        self._holder = None
        while self._waiters:
            waiter, future = self._waiters.popleft()
            if future.done():
                continue  # its wait was cancelled
            self._holder = waiter
            future.set_result(None)
            return

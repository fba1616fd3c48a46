"""One answer being streamed: the handle `Session.open` returns.

An `Answer` is one request's handle: its own `Timeline` (there as soon as the answer is opened, filled in
while it streams), its displayed pieces (iterated once, in order), and `Answer.aclose`, which ends it at
any time. Several answers may be open at once on one session; each has its own record and parts
(`pdcore.runtime.request.Request`), and the device serves one of them at a time
(`pdcore.runtime.device_gate`).

Closing. An answer ends when its pieces are iterated to the end, when its iteration is abandoned (the
iterator is closed or collected: an HTTP client gone away), or when `Answer.aclose` is called; whichever
comes first closes it, the others do nothing. Closing cancels the cloud stream (its HTTP connection is
closed) and the device's work (`Device.interrupt` stops a prefill after its chunk), lets the device go to
the next answer, waits until none of the answer's tasks runs, and hands the record to the session to
learn from. An iteration under way when another task closes the answer ends after the pieces shown so
far. An answer opened and never iterated must be closed (``async with`` does it).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from types import TracebackType

from pdcore.exceptions import InvalidStateError
from pdcore.runtime.display import Piece
from pdcore.runtime.request import Request
from pdcore.runtime.timeline import Timeline

__all__ = ["Answer"]


class Answer:
    """One answer being streamed (module docstring).

    Args:
        request: The request's parts, started.
        finished: Called once with the request when the answer is closed (the session learns from it).

    Attributes:
        timeline: This answer's own record.
    """

    def __init__(self, request: Request, finished: Callable[[Request], None]) -> None:
        self.timeline: Timeline = request.state.timeline
        self._request = request
        self._finished = finished
        self._iterated = False
        self._closed = False

    @property
    def cached_tokens(self) -> int:
        """Device tokens reused from the conversation cache for this answer (0 when none)."""
        return self.timeline.device_cached_tokens

    async def prompt_tokens(self) -> int | None:
        """The prompt's length in device tokens as the device counts it for this answer, as soon as it has
        tokenized it (its prefill has not begun: a caller may still refuse the prompt and close the
        answer); None when the device does not read the prompt for this answer (no device, or the cloud
        serves the whole answer)."""
        return await self._request.device.counted_prompt()

    @property
    def closed(self) -> bool:
        """Whether the answer has been closed (to the end, abandoned or by `aclose`)."""
        return self._closed

    def __aiter__(self) -> AsyncIterator[Piece]:
        """The displayed pieces, in order (once per answer).

        Raises:
            InvalidStateError: The answer was iterated before.
            DeadlineMissedError: The clock is strict and the runtime fell behind.
            CloudError: Cloud-only mode and the cloud failed.
            DeviceFailedError: The device failed and no cloud could continue the answer.
            InvalidInputError: The prompt does not fit the device's context window.
        """
        if self._iterated:
            raise InvalidStateError("an answer's pieces can be iterated once; fix: open a new answer")
        self._iterated = True
        return self._pieces()

    async def _pieces(self) -> AsyncIterator[Piece]:
        try:
            if self._closed:
                return
            # closed explicitly: left suspended when this generator is closed, the display loop would be
            # finalized later in a task of its own, after the answer has ended
            async with contextlib.aclosing(self._request.pieces()) as pieces:
                async for piece in pieces:
                    yield piece
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Ends the answer: cancels the cloud stream and the device's work and frees the device (module
        docstring). Idempotent."""
        if self._closed:
            return
        self._closed = True
        request = self._request
        request.state.close()
        await request.cancel_tasks()
        request.device.release()
        self._finished(request)

    async def __aenter__(self) -> Answer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

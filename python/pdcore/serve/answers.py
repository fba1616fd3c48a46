"""One answer as the server drives it: opened on the session, read piece by piece, cut at the request's
``max_tokens``, closed whatever happens.

`open_answer` is the one place the server asks the live runtime for an answer
(``await session.open(prompt)``, `pdcore.runtime.answer.Answer`): several may be open at once on one
session, and the session plans each knowing whether the device is busy.

`AnswerRun` wraps an open answer for one HTTP request:

- the request's ``max_tokens`` cuts the answer (the session's own ``max_tokens`` is the ceiling; a longer
  request is cut there, the rule is ours: clients often send a generous default);
- ``finish_reason`` is ``"length"`` when the answer was cut at ``max_tokens`` (the request's or the
  session's) or filled the device's context, else ``"stop"`` (OpenAI's two reasons for a plain answer);
- `AnswerRun.close` closes the answer (its cloud stream and its device work) and records its figures once,
  from a ``finally`` (a client that went away, an error, or the end).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Protocol

from pdcore.runtime.display import Piece
from pdcore.runtime.session import Session
from pdcore.runtime.timeline import Timeline
from pdcore.serve.figures import AnswerFigures

__all__ = ["Answer", "AnswerRun", "open_answer"]


class Answer(Protocol):
    """What the server needs of an open answer (`pdcore.runtime.answer.Answer`)."""

    @property
    def timeline(self) -> Timeline:
        """The answer's record, filled in as it streams."""

    @property
    def cached_tokens(self) -> int:
        """Prompt tokens the device found in its cache."""

    async def prompt_tokens(self) -> int | None:
        """The device's count of the prompt for this answer (None: the device does not read it)."""

    def __aiter__(self) -> AsyncIterator[Piece]:
        """The shown pieces, in order."""

    async def aclose(self) -> None:
        """Stops the answer: its cloud stream and its device work."""


async def open_answer(session: Session, prompt: str, max_tokens: int | None = None) -> Answer:
    """Opens the answer to ``prompt`` (the full prompt text) on ``session``, of at most ``max_tokens``
    (None: the session's)."""
    return await session.open(prompt, max_tokens=max_tokens)


class AnswerRun:
    """One request's answer (module docstring).

    Args:
        answer: The open answer.
        max_tokens: The longest answer the request asked for (None: the session's).
        session_max_tokens: The session's longest answer.
        observe: Called once with the answer's figures when it is closed.
    """

    def __init__(
        self,
        answer: Answer,
        *,
        max_tokens: int | None,
        session_max_tokens: int,
        observe: Callable[[AnswerFigures], None],
    ) -> None:
        self.answer = answer
        self.limit = min(max_tokens or session_max_tokens, session_max_tokens)
        self.session_max_tokens = session_max_tokens
        self.positions = 0
        """Output positions shown so far."""
        self.figures: AnswerFigures | None = None
        self._observe = observe
        self._pieces = aiter(answer)

    async def next_piece(self) -> Piece | None:
        """The next piece to send, or None at the end of the answer (or at ``max_tokens``)."""
        if self.positions >= self.limit:
            return None
        try:
            piece = await anext(self._pieces)
        except StopAsyncIteration:
            return None
        if piece.position >= self.limit:  # past positions whose text was empty (an incomplete character)
            self.positions = self.limit
            return None
        self.positions = piece.position + 1
        return piece

    async def pieces(self) -> AsyncIterator[Piece]:
        """The pieces to send, to the end (`next_piece`)."""
        while (piece := await self.next_piece()) is not None:
            yield piece

    @property
    def finish_reason(self) -> str:
        """``"length"`` or ``"stop"`` (module docstring)."""
        if self.positions >= self.limit:
            return "length"
        if any(notice.kind == "context-full" for notice in self.answer.timeline.notices):
            return "length"
        return "stop"

    async def close(self) -> AnswerFigures:
        """Closes the answer and records its figures (once; later calls return them)."""
        if self.figures is None:
            try:
                # the pieces' generator first (left suspended, the event loop would finalize it in a task of
                # its own), then the answer
                closer = getattr(self._pieces, "aclose", None)
                if closer is not None:
                    await closer()
                await self.answer.aclose()
            finally:
                self.figures = AnswerFigures.of(
                    self.answer.timeline, cached_tokens=self.answer.cached_tokens, shown=self.shown_tokens()
                )
                self._observe(self.figures)
        return self.figures

    def shown_tokens(self) -> int:
        """The timeline's tokens that were sent (the answer may have shown one more before it was
        closed)."""
        tokens = self.answer.timeline.tokens
        return sum(1 for record in tokens if record.position < self.positions)

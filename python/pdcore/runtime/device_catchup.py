"""The device's catch-up and its own decode: phases 2 and 3 of a P/D-Device request on the device.

`DeviceCatchUp` is the half of `pdcore.runtime.device.Device` that works after the prompt:

2. `DeviceCatchUp.append_text` evaluates the cloud's text as it arrives, tokenized with the device's own
   tokenizer (the amortized prefill), in chunks of ``append_chunk_tokens`` with progress reports. Each
   piece is tokenized on its own and appended, so with the same model as the cloud the device's context
   holds exactly the cloud's tokens; with another model it holds the device's tokenization of the same
   text.
3. `DeviceCatchUp.generate` decodes greedily from the end of that text (the text-exact hand-off point):
   each token comes from the logits of the last evaluation, and is then evaluated to produce the next.

Its state (the engine, the tokens held, their text, the UTF-8 decoder) is `Device`'s, set by
`Device.__init__` and `Device.start`.
"""

from __future__ import annotations

import asyncio
import codecs
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from pdcore.exceptions import InvalidStateError
from pdcore.runtime.engine import DeviceEngine

__all__ = ["DeviceCatchUp", "DeviceToken"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class DeviceToken:
    """A token the device decoded.

    Attributes:
        token: The token id.
        text: Its text; empty while a multi-byte character is incomplete (the next token completes it).
        ready: When it was ready, in the caller's clock seconds.
    """

    token: int
    text: str
    ready: float


class DeviceCatchUp:
    """The received text appended and the device's own decode (module docstring)."""

    append_chunk_tokens: int
    _held: list[int]
    _held_text: list[str]
    _decoder: codecs.IncrementalDecoder

    @property
    def engine(self) -> DeviceEngine:
        """The engine in use (`pdcore.runtime.device.Device.engine`)."""
        raise NotImplementedError

    async def run(self, job: Callable[[], T]) -> T:
        """Runs ``job`` on the worker thread (`pdcore.runtime.device.Device.run`)."""
        raise NotImplementedError

    def _eval(self, tokens: Sequence[int]) -> float:
        """Evaluates ``tokens`` on the worker thread (`pdcore.runtime.device.Device._eval`)."""
        raise NotImplementedError

    async def append_text(
        self, pieces: Sequence[str], on_progress: Callable[[int, int, float], None] | None = None
    ) -> tuple[int, float]:
        """Evaluates received answer text, each piece tokenized on its own, in chunks of
        ``append_chunk_tokens`` back to back in one worker job.

        Args:
            pieces: The text, in order.
            on_progress: Called on the event loop after each chunk with the tokens done, the tokens of
                the whole job and the wall seconds the chunk took.

        Returns:
            The tokens appended and the wall seconds the evaluation took.
        """
        loop = asyncio.get_running_loop()

        def job() -> tuple[int, float]:
            tokens = [token for piece in pieces for token in self.engine.tokenize(piece, prompt=False)]
            total = 0.0
            for start in range(0, len(tokens), self.append_chunk_tokens):
                chunk = tokens[start : start + self.append_chunk_tokens]
                took = self._eval(chunk)
                total += took
                if on_progress is not None:
                    loop.call_soon_threadsafe(on_progress, start + len(chunk), len(tokens), took)
            self._held_text.extend(pieces)
            return len(tokens), total

        return await self.run(job)

    async def generate(
        self, max_tokens: int, now: Callable[[], float] = time.perf_counter
    ) -> AsyncIterator[DeviceToken]:
        """Decodes greedily from the end of the context until an end-of-generation token.

        The first token comes from the logits already computed (no model call); each token yielded is
        then evaluated, on the worker, only when the caller asks for the next one.

        Args:
            max_tokens: The most tokens to yield.
            now: The clock that stamps each token's ready time.

        Yields:
            The tokens, without the end-of-generation token.
        """
        if not self._held:
            raise InvalidStateError("generate: nothing is evaluated yet; fix: prefill the prompt first")
        produced = 0
        while produced < max_tokens and len(self._held) < self.engine.n_ctx:

            def step() -> tuple[int, bool, bytes]:
                token = self.engine.greedy()
                eog = self.engine.is_eog(token)
                return token, eog, b"" if eog else self.engine.token_bytes(token)

            token, eog, raw = await self.run(step)
            if eog:
                return
            produced += 1
            text = self._decoder.decode(raw)
            yield DeviceToken(token=token, text=text, ready=now())
            if produced < max_tokens:
                await self.run(partial(self._eval, [token]))
                self._held_text.append(text)

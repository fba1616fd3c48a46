"""When a streamed answer may start before its prompt is counted against the device's context window.

`pdcore.serve.conversation.check_context` counts a prompt that may not fit (one longer in UTF-8 bytes than the
window) by the device's own tokenization, which its prefill begins with. Waiting for that count before the
first byte put it on the first token's path: a 2,048-token prompt takes about 8 ms to tokenize on the
2-core development machine, longer than a cloud that has the prompt cached takes to send its first token,
and the served first token came that much after a raw client's (`benches/python/serve_bench.py --part
ttft`: median overhead 2.5 ms on 512-token prompts, which are not counted, against 5.2 and 6.2 ms on
1,024- and 2,048-token ones).

Our rule: a streamed answer starts without waiting when its prompt is *likely* to fit: its UTF-8 length
times the most device tokens per byte seen on any prompt counted so far, times `LIKELY_MARGIN`, plus one,
is below the window. The count still runs alongside: a prompt that turns out not to fit is refused as
before (400 ``context_length_exceeded``) when the count comes before the first piece, and otherwise ends
the stream with that error object (`pdcore.serve.streaming`), its answer closed. Until a prompt has been
counted, and for an answer sent whole (whose first byte waits for its last token anyway), the count is
awaited first, as before.
"""

from __future__ import annotations

import math

__all__ = ["LIKELY_MARGIN", "ContextGuard"]

LIKELY_MARGIN = 1.5
"""How much denser than the densest tokenization seen a prompt may be and still be started at once (ours):
English prose and code tokenize at 0.2-0.35 tokens per byte. A prompt in a script the model's vocabulary
barely covers can be far denser (byte fallback: up to one token a byte); near the window it is then refused
in the stream, and its count raises the figure for the prompts after it."""


class ContextGuard:
    """The densest tokenization seen, learned from every counted prompt (module docstring)."""

    def __init__(self) -> None:
        self.most_tokens_per_byte: float | None = None
        """The most device tokens per UTF-8 byte of any prompt counted so far (None: none counted)."""

    def learn(self, prompt: str, tokens: int | None) -> None:
        """Records that the device counted ``tokens`` tokens in ``prompt`` (None: not counted)."""
        size = len(prompt.encode("utf-8"))
        if tokens is None or tokens <= 0 or size == 0:
            return
        density = tokens / size
        if self.most_tokens_per_byte is None or density > self.most_tokens_per_byte:
            self.most_tokens_per_byte = density

    def likely_fits(self, prompt: str, context_tokens: int | None) -> bool:
        """Whether a streamed answer to ``prompt`` may start before it is counted (module docstring)."""
        if context_tokens is None or self.most_tokens_per_byte is None:
            return False
        size = len(prompt.encode("utf-8"))
        return math.ceil(size * self.most_tokens_per_byte * LIKELY_MARGIN) + 1 < context_tokens

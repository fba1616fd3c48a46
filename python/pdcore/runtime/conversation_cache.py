"""The device's conversation cache: the KV state of finished answers, reused by the turns that follow.

A device that keeps conversations (``Device(..., conversation_cache=True)``) records, when an answer's
device work ends, the tokens its context holds: the prompt (what it reused and what it prefilled), the
cloud text it prefilled and the tokens it decoded and ran through the model (the last token decoded is
sampled but never run, so a device-decoded answer leaves ``prompt + output - 1``). The KV state itself
stays inside the engine (`pdcore.runtime.engine.DeviceEngine.save_state`; for the llama engine inside its
worker process, so no KV bytes cross the pipe); this index keeps each entry's tokens and key.

Rules, the simulator's session cache (``rust/src/sim/caches.rs``) with one difference of ours:

- **Lookup (ours: by tokens, not by conversation).** A request reuses the entry with the longest common
  token prefix with its prompt, up to ``prompt - 1`` tokens (the last prompt token is always prefilled: its
  logits start the answer). No conversation id is needed, so a plain OpenAI client that resends the whole
  message history gets the reuse; the simulator keys entries by session instead, which picks the same
  entry for a conversation's next turn.
- **What is kept.** An answer the device took part in is recorded once its prompt was prefilled (a turn the
  cloud answered alone, or one closed before the device finished the prompt, leaves the cache as it was);
  only tokens that exist are reusable: a request still running holds no entry yet. An entry that is a
  prefix of the new one is dropped (the new one holds all of it).
- **Memory.** The budget is ``budget_tokens`` (the device profile's ``session_cache_bytes`` over its
  ``kv_bytes_per_token``, `DeviceProfile.session_cache_tokens`). An entry longer than the budget keeps its
  leading tokens; then entries are evicted least recently used first (used: looked up by a request's plan
  or start, or recorded) until the entries fit. A budget of 0 keeps nothing.
- **A failed engine** loses its cache: the entries are cleared when the device's engine is replaced.

**The plan's estimate (ours).** A plan must not wait for the whole prompt's tokenization (2-8 ms for 1-2k
tokens through SmolLM2's worker, all of it added to the first token, since the cloud request leaves after
the plan): each entry also keeps its text, and `estimate` finds the longest common *character* prefix of the
prompt with an entry's text and counts it at that entry's own tokens per character, one token short when
the texts part inside the entry (the token at the seam may differ). The device's exact lookup by tokens runs
when its answer starts, after the cloud request has left; the estimate only plans.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pdcore.exceptions import InvalidStateError
from pdcore.profiles.device import DEFAULT_SESSION_CACHE_TOKENS, DeviceProfile
from pdcore.runtime.engine import DeviceEngine

__all__ = ["CacheHit", "ConversationCache", "common_prefix", "common_text_prefix"]

TokenArray = npt.NDArray[np.int64]


def common_text_prefix(a: str, b: str) -> int:
    """The length in characters of the longest common prefix of two texts (a binary search over slice
    comparisons: a few dozen C-speed comparisons for texts of thousands of characters)."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        middle = (low + high + 1) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle - 1
    return low


def common_prefix(a: TokenArray, b: TokenArray) -> int:
    """The length of the longest common prefix of two token arrays (vectorised: a few thousand tokens in
    microseconds)."""
    n = min(len(a), len(b))
    if n == 0:
        return 0
    differ = np.flatnonzero(a[:n] != b[:n])
    return int(differ[0]) if len(differ) else n


@dataclass(frozen=True, slots=True)
class CacheHit:
    """The entry a prompt reuses.

    Attributes:
        key: The engine's key of the entry's state.
        tokens: How many leading tokens of the prompt it gives (at most ``prompt - 1``).
    """

    key: int
    tokens: int


@dataclass
class _Entry:
    key: int
    tokens: TokenArray
    used: int
    text: str = ""


class ConversationCache:
    """The index of the conversation cache (module docstring). Thread-safe: the plan reads it on the event
    loop, the device's worker thread updates it.

    Args:
        budget_tokens: The tokens kept at most, over all entries (`keep` sets the profile's).
    """

    def __init__(self, budget_tokens: int = DEFAULT_SESSION_CACHE_TOKENS) -> None:
        self.budget_tokens = budget_tokens
        self._entries: list[_Entry] = []
        self._clock = 0
        self._next_key = 0
        self._lock = threading.Lock()
        self._engine: DeviceEngine | None = None

    def restore(self, engine: DeviceEngine, prompt: Sequence[int]) -> int:
        """On the device's worker thread: makes ``engine``'s context the longest cached prefix of
        ``prompt`` (empty when none) and returns its length, the tokens reused. A state the engine cannot
        restore is forgotten and the context starts empty."""
        self._bind(engine)
        hit = self.lookup(prompt)
        if hit is not None:
            try:
                engine.load_state(hit.key, hit.tokens)
            except InvalidStateError:
                self._forget(hit.key)
                engine.drop_state(hit.key)
            else:
                return hit.tokens
        engine.reset()
        return 0

    def keep(
        self, engine: DeviceEngine, tokens: Sequence[int], profile: DeviceProfile | None, text: str = ""
    ) -> None:
        """On the device's worker thread: records ``engine``'s context, which holds ``tokens`` (``text``:
        their text, for the plan's `estimate`), as an entry (`record`, within the budget of ``profile``,
        read when the entry is made: its `DeviceProfile.session_cache_tokens`, or
        `DEFAULT_SESSION_CACHE_TOKENS` without one), saves its state and frees the states evicted."""
        self._bind(engine)
        if profile is not None:
            self.budget_tokens = profile.session_cache_tokens
        key, dropped = self.record(tokens, text)
        if key is not None:
            try:
                engine.save_state(key)
            except InvalidStateError:
                self._forget(key)
        for old in dropped:
            engine.drop_state(old)

    def reusable(self, engine: DeviceEngine, prompt: Sequence[int]) -> int:
        """The tokens ``prompt`` would reuse on ``engine`` now (0 when its states are gone), marking the
        entry used."""
        if engine is not self._engine:
            return 0
        hit = self.lookup(prompt)
        return 0 if hit is None else hit.tokens

    def estimate(self, engine: DeviceEngine, prompt: str) -> int:
        """The tokens the text ``prompt`` would reuse on ``engine``, estimated from the entries' texts
        without tokenizing it (module docstring; 0 when ``engine``'s states are gone). Marks nothing used:
        the device's exact lookup does when the answer starts."""
        if engine is not self._engine:
            return 0
        with self._lock:
            entries = [(entry.text, len(entry.tokens)) for entry in self._entries if entry.text]
        best = 0
        for text, tokens in entries:
            shared = common_text_prefix(text, prompt)
            if shared == len(text):
                best = max(best, tokens)
            elif shared:
                best = max(best, shared * tokens // len(text) - 1)
        return best

    def _bind(self, engine: DeviceEngine) -> None:
        """Forgets every entry when the engine that holds the states is not ``engine`` (it was replaced)."""
        if engine is not self._engine:
            self.clear()
            self._engine = engine

    def _forget(self, key: int) -> None:
        with self._lock:
            self._entries = [entry for entry in self._entries if entry.key != key]

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def held_tokens(self) -> int:
        """Tokens held over all entries (at most the budget)."""
        return sum(len(entry.tokens) for entry in self._entries)

    def entries(self) -> list[tuple[int, int]]:
        """``(key, tokens)`` of each entry, least recently used first."""
        with self._lock:
            return [(entry.key, len(entry.tokens)) for entry in sorted(self._entries, key=lambda e: e.used)]

    def lookup(self, prompt: Sequence[int], *, touch: bool = True) -> CacheHit | None:
        """The entry ``prompt`` (its device tokens) reuses most of, or ``None`` when none gives a token;
        ``touch``: mark it used."""
        wanted = np.asarray(prompt, dtype=np.int64)
        with self._lock:
            best: _Entry | None = None
            best_tokens = 0
            for entry in self._entries:
                tokens = min(common_prefix(entry.tokens, wanted), len(wanted) - 1)
                newer = best is not None and tokens == best_tokens and entry.used > best.used
                if tokens > best_tokens or (tokens > 0 and newer):
                    best, best_tokens = entry, tokens
            if best is None:
                return None
            if touch:
                self._clock += 1
                best.used = self._clock
            return CacheHit(best.key, best_tokens)

    def record(self, tokens: Sequence[int], text: str = "") -> tuple[int | None, list[int]]:
        """Adds an entry holding ``tokens`` (cut to the budget; ``text``: their text, cut in proportion):
        ``(its key, or None when nothing is kept; the keys of the entries dropped)``; the engine saves the
        first and frees the others."""
        held = np.asarray(tokens, dtype=np.int64)[: self.budget_tokens]
        if len(held) < len(tokens):
            text = text[: len(text) * len(held) // max(len(tokens), 1)]
        with self._lock:
            if len(held) == 0:
                return None, []
            dropped = [e.key for e in self._entries if common_prefix(e.tokens, held) == len(e.tokens)]
            self._entries = [e for e in self._entries if e.key not in dropped]
            self._clock += 1
            key = self._next_key
            self._next_key += 1
            self._entries.append(_Entry(key, held, self._clock, text))
            total = sum(len(e.tokens) for e in self._entries)
            while total > self.budget_tokens:
                oldest = min(self._entries, key=lambda e: e.used)
                self._entries.remove(oldest)
                dropped.append(oldest.key)
                total -= len(oldest.tokens)
            return key, dropped

    def clear(self) -> list[int]:
        """Forgets every entry (the engine that held them is gone); returns their keys."""
        with self._lock:
            keys = [entry.key for entry in self._entries]
            self._entries = []
            return keys

"""The cloud's tokenize routes: a text's length in the server's tokens, asked against a short deadline, a
route that hangs dropped after its first timeout, and every count range-checked before anyone uses it.

Routes: llama-cpp-python's ``POST /extras/tokenize`` (``{"input": text}``) and llama.cpp's and vLLM's
``POST /tokenize`` (``{"content": text, "prompt": text}``); the first that counts is remembered, and a server
with neither says None (its callers then estimate the length themselves).

Deadline (ours): `TOKENIZE_DEADLINE_S` for the whole reply, headers and body
(`pdcore.runtime.json_reply.fetch_json`). Tokenizing is cheap: a fast tokenizer counts about a million
tokens a second on one core, so the 2,048-token prompts ``profile-cloud`` sends take a few milliseconds
and even a 100,000-token prompt a tenth of a second; two seconds leave room for that, a round trip to a
distant region and a busy server. A route that does not answer within it is not asked again (one notice
says so), so a server whose tokenize route hangs costs one deadline, not one per prompt.

Range (ours): a count is a whole number from 1 (0 for an empty text) to the text's UTF-8 bytes plus
`SPECIAL_TOKENS`. No tokenizer makes more than one token of a byte (byte-level BPE and SentencePiece with
byte fallback both fall back to single bytes), and a prompt gains at most a few special tokens (a BOS).
A count outside that is refused (`InvalidInputError`, naming the route and the fix), never fitted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from pdcore.exceptions import InvalidInputError
from pdcore.runtime.json_reply import ReplyError, fetch_json

__all__ = ["SPECIAL_TOKENS", "TOKENIZE_DEADLINE_S", "TokenizeRoutes", "token_count"]

TOKENIZE_DEADLINE_S = 2.0
"""Seconds a tokenize route has for its whole reply (module docstring)."""

SPECIAL_TOKENS = 16
"""Tokens a tokenize route may add to a text beyond one a byte (BOS and the like)."""

_ROUTES = ("/extras/tokenize", "/tokenize")


def _body(route: str, text: str) -> dict[str, str]:
    return {"input": text} if route == "/extras/tokenize" else {"content": text, "prompt": text}


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}...({len(text)} characters)"


def token_count(payload: Any, text: str, url: str) -> int | None:
    """The count a tokenize reply gives for ``text`` (its ``count``, else the length of its ``tokens``);
    None when it gives neither.

    Raises:
        InvalidInputError: The count is not a whole number in range (module docstring).
    """
    if not isinstance(payload, dict):
        return None
    if "count" in payload:
        value = payload["count"]
    elif isinstance(payload.get("tokens"), list):
        value = len(payload["tokens"])
    else:
        return None
    low, high = (1 if text else 0), len(text.encode("utf-8")) + SPECIAL_TOKENS
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInputError(
            f"{url} counted {_shown(value)} tokens in a text of {len(text)} characters; a count must be a "
            f"whole number from {low} to {high} (at most one token a byte, plus {SPECIAL_TOKENS} special "
            "tokens); fix: point --cloud-url at a server whose tokenize route counts the served model's "
            "tokens (llama.cpp's or vLLM's /tokenize, llama-cpp-python's /extras/tokenize)"
        )
    return value


class TokenizeRoutes:
    """The tokenize routes of one server (module docstring).

    Args:
        base_url: The server's base URL.
        deadline_s: Seconds each reply has, headers and body.
    """

    def __init__(self, base_url: str, *, deadline_s: float = TOKENIZE_DEADLINE_S) -> None:
        self.base_url = base_url
        self.deadline_s = float(deadline_s)
        self.chosen: str | None = None
        """The route that counted, once one has."""
        self.dropped: list[str] = []
        """Routes that did not answer within the deadline: not asked again."""

    async def count(
        self, http: httpx.AsyncClient, text: str, notice: Callable[[str], None] | None = None
    ) -> int | None:
        """``text``'s length in the server's tokens, or None when no route counts it.

        Args:
            http: The connection pool to ask through.
            text: The text.
            notice: Called once with a message when a route is dropped for not answering in time.

        Raises:
            InvalidInputError: A route's count is out of range (`token_count`).
        """
        timed_out: list[str] = []
        try:
            for route in _ROUTES:
                if route in self.dropped or self.chosen not in (None, route):
                    continue
                url = self.base_url + route
                try:
                    reply = await fetch_json(
                        http, "POST", url, deadline_s=self.deadline_s, body=_body(route, text)
                    )
                except ReplyError as exc:
                    if exc.timed_out:
                        self.dropped.append(route)
                        self.chosen = None if self.chosen == route else self.chosen
                        timed_out.append(url)
                    continue
                count = token_count(reply.value, text, url)
                if count is not None:
                    self.chosen = route
                    return count
            return None
        finally:
            if timed_out and notice is not None:
                notice(
                    f"the cloud's tokenize route {' and '.join(timed_out)} did not answer within "
                    f"{self.deadline_s:g} s; not asked again (prompt lengths are estimated where the server "
                    "does not count them)"
                )

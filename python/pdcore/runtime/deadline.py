"""Awaiting with a deadline, without a task of its own.

`asyncio.wait_for` runs what it awaits in a task of its own before Python 3.12. Awaiting an async
generator's next item that way leaks an error when the generator ends just as the waiter is cancelled (the
hand-off cancels the cloud stream's reader at any moment): the inner task finishes with
``StopAsyncIteration`` that nobody retrieves, and asyncio logs "Task exception was never retrieved" (seen
twice in 20 live requests). `within_s` awaits in the caller's own task (`asyncio.timeout`, Python 3.11+),
so an end, an error or a cancellation reaches the caller alone; Python 3.10 keeps `asyncio.wait_for`.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable
from typing import TypeVar

__all__ = ["within_s"]

T = TypeVar("T")


async def within_s(awaitable: Awaitable[T], seconds: float) -> T:
    """Awaits ``awaitable`` for at most ``seconds`` (0 or less: only what is ready now).

    Raises:
        TimeoutError: The time passed (`asyncio.TimeoutError`, the same class on Python 3.11+).
    """
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(max(seconds, 0.0)):
            return await awaitable
    return await asyncio.wait_for(awaitable, max(seconds, 0.0))  # pragma: no cover (Python 3.10)

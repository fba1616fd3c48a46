"""Conversations: which request continues which, the prefix it shares, and its cloud prefix blocks.

A follow-up turn's prompt is its session's context so far (the previous prompt and answer) plus a new
user message. Three sources give the structure:

- Prefix-block ids (the Mooncake trace's ``hash_ids``, one id per ``block_tokens``-token block of the
  prompt): `follow_ups_from_blocks`. Rule: request ``i``'s parent is the earlier request with the longest
  leading run of block ids equal to ``i``'s, the latest such request on a tie, provided the run is at least
  `MIN_FOLLOW_UP_BLOCKS` blocks. (In the Mooncake conversation trace every request starts with block 0, a
  common system prompt, so one shared block says nothing about a conversation.) The shared prefix is the
  parent's whole context, ``min(prompt_i, prompt_p + output_p)``, when the run covers every full block of
  the parent's prompt (the follow-up continues the parent: in that trace a follow-up's prompt is the
  parent's prompt plus its answer plus a median of 23 new tokens); otherwise it is the run's
  ``run * block_tokens`` tokens, capped at the prompt (the follow-up branches off inside the parent's prompt).
- Explicit parents (Qwen-Bailian-style ``chat_id`` / ``parent_chat_id`` records): `conversation_from_parents`;
  the shared prefix is computed from block ids as above when the records have them, else it is the parent's
  whole context, ``min(prompt_i, prompt_p + output_p)``.
- The seeded multi-turn synthetic default (`pdcore.traces.synthetic.synthetic_multi_turn`), which knows it.

Cloud prefix blocks where a source has none (`derive_blocks`): request ``i``'s block ``j`` (``j <
ceil(prompt_i / block_tokens)``) is its parent's block ``j`` when that block is one of the parent's full
prompt blocks and lies within the shared prefix, and a fresh id otherwise; so a follow-up can hit in the
cloud's prefix cache exactly the parent's full prompt blocks it repeats, as a block-hashing cache would.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "MIN_FOLLOW_UP_BLOCKS",
    "conversation_from_parents",
    "derive_blocks",
    "flatten_blocks",
    "follow_ups_from_blocks",
    "shared_from_blocks",
]

MIN_FOLLOW_UP_BLOCKS = 2
"""The fewest leading prefix blocks a request must share with an earlier one to be its follow-up."""

IntArray = npt.NDArray[np.int64]


def _shared_tokens(
    run: int, parent_blocks: int, block_tokens: int, prompt: int, parent_prompt: int, parent_output: int
) -> int:
    """The shared prefix of a follow-up whose leading ``run`` blocks equal its parent's (module doc)."""
    if run >= parent_prompt // block_tokens and parent_blocks > 0:
        return min(prompt, parent_prompt + parent_output)
    return min(prompt, run * block_tokens)


def follow_ups_from_blocks(
    blocks: list[list[int]], prompts: IntArray, outputs: IntArray, block_tokens: int
) -> tuple[IntArray, IntArray]:
    """Parents and shared prefixes from prefix-block ids (module doc for the rule).

    Args:
        blocks: Each request's block ids, in arrival order.
        prompts: Prompt tokens per request.
        outputs: Output tokens per request.
        block_tokens: Tokens per block.

    Returns:
        ``(parent, shared_prefix_tokens)``: the parent's index or -1, and the shared tokens (0 without one).
    """
    n = len(blocks)
    parent = np.full(n, -1, dtype=np.int64)
    shared = np.zeros(n, dtype=np.int64)
    # a trie of leading block runs; each node remembers the latest request whose blocks pass through it
    children: list[dict[int, int]] = [{}]
    latest: list[int] = [-1]
    for i, ids in enumerate(blocks):
        node, run, best = 0, 0, -1
        for block in ids:
            nxt = children[node].get(block)
            if nxt is None:
                break
            node, run, best = nxt, run + 1, latest[nxt]
        if run >= MIN_FOLLOW_UP_BLOCKS:
            p = best
            parent[i] = p
            shared[i] = _shared_tokens(
                run, len(blocks[p]), block_tokens, int(prompts[i]), int(prompts[p]), int(outputs[p])
            )
        node = 0
        for block in ids:
            nxt = children[node].get(block)
            if nxt is None:
                nxt = len(children)
                children.append({})
                latest.append(i)
                children[node][block] = nxt
            latest[nxt] = i
            node = nxt
    return parent, shared


def conversation_from_parents(parent: IntArray) -> tuple[IntArray, IntArray]:
    """Sessions and turn numbers from parents: a request without a parent opens a session.

    Returns:
        ``(session, turn)``.
    """
    n = len(parent)
    session = np.empty(n, dtype=np.int64)
    turn = np.empty(n, dtype=np.int64)
    sessions = 0
    for i, p in enumerate(parent.tolist()):
        if p < 0:
            session[i], turn[i] = sessions, 1
            sessions += 1
        else:
            session[i], turn[i] = session[p], turn[p] + 1
    return session, turn


def shared_from_blocks(
    blocks: list[list[int]], parent: IntArray, prompts: IntArray, outputs: IntArray, block_tokens: int
) -> IntArray:
    """Shared prefixes of given parents: from the leading run of equal block ids (module doc)."""
    shared = np.zeros(len(parent), dtype=np.int64)
    for i, p in enumerate(parent.tolist()):
        if p < 0:
            continue
        run = 0
        for a, b in zip(blocks[i], blocks[p], strict=False):
            if a != b:
                break
            run += 1
        shared[i] = _shared_tokens(
            run, len(blocks[p]), block_tokens, int(prompts[i]), int(prompts[p]), int(outputs[p])
        )
    return shared


def derive_blocks(
    prompts: IntArray, parent: IntArray, shared: IntArray, block_tokens: int
) -> tuple[IntArray, npt.NDArray[np.uint64]]:
    """Cloud prefix-block ids for a workload without them (module doc).

    Returns:
        ``(block_offsets, block_ids)`` as `pdcore.traces.Workload` takes them.
    """
    counts = -(-prompts // block_tokens)
    offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    ids = np.empty(int(offsets[-1]), dtype=np.uint64)
    fresh = 0
    for i, p in enumerate(parent.tolist()):
        start, count = int(offsets[i]), int(counts[i])
        inherit = 0
        if p >= 0:
            inherit = min(int(prompts[p]) // block_tokens, int(shared[i]) // block_tokens, count)
            ids[start : start + inherit] = ids[int(offsets[p]) : int(offsets[p]) + inherit]
        new = count - inherit
        ids[start + inherit : start + count] = np.arange(fresh, fresh + new, dtype=np.uint64)
        fresh += new
    return offsets, ids


def flatten_blocks(blocks: list[list[int]]) -> tuple[IntArray, npt.NDArray[np.uint64]]:
    """Per-request block lists as ``(block_offsets, block_ids)``."""
    counts = np.fromiter((len(b) for b in blocks), dtype=np.int64, count=len(blocks))
    offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    flat: Any = [block for ids in blocks for block in ids]
    return offsets, np.asarray(flat, dtype=np.uint64).reshape(-1)

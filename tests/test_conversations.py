"""Conversations in the workload: follow-up detection, Bailian records, the multi-turn synthetic default."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pdcore.exceptions import InvalidInputError, TraceFormatError
from pdcore.traces import (
    TURN_BUCKETS,
    Workload,
    load_bailian,
    load_mooncake,
    load_trace,
    synthetic_default,
    synthetic_multi_turn,
    turn_buckets,
)
from pdcore.traces.conversations import derive_blocks, follow_ups_from_blocks
from traces_at_hand import needs_trace, real_trace

MOONCAKE = real_trace("mooncake-conversation", "mooncake_conversation.jsonl")


def _jsonl(tmp_path: Path, name: str, records: list[dict[str, Any]]) -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_mooncake_follow_up_is_the_latest_longest_leading_run(tmp_path: Path) -> None:
    rows = [
        {"timestamp": 0, "input_length": 1100, "output_length": 100, "hash_ids": [0, 1, 2]},
        {"timestamp": 0, "input_length": 1000, "output_length": 50, "hash_ids": [0, 3]},  # block 0 only
        {"timestamp": 10, "input_length": 1600, "output_length": 20, "hash_ids": [0, 1, 2, 4]},
        {"timestamp": 20, "input_length": 1300, "output_length": 9, "hash_ids": [0, 1, 5]},
        {"timestamp": 30, "input_length": 1300, "output_length": 9, "hash_ids": [0, 1, 2, 4, 6]},
    ]
    work = load_mooncake(_jsonl(tmp_path, "m.jsonl", rows))
    # request 1 shares only the common first block: not a follow-up
    np.testing.assert_array_equal(work.parent, [-1, -1, 0, 2, 2])
    np.testing.assert_array_equal(work.turn, [1, 1, 2, 3, 3])
    np.testing.assert_array_equal(work.session, [0, 1, 0, 0, 0])
    # 2 covers every full block of 0's prompt (two of 512): its whole context, 1100 + 100
    # 3 shares 2 blocks of 2's three full ones: a branch inside the prompt, 2 x 512
    # 4 covers 2's blocks: 2's context 1600 + 20, capped at its own prompt
    np.testing.assert_array_equal(work.shared_prefix_tokens, [0, 0, 1200, 1024, 1300])
    assert work.block_tokens == 512
    np.testing.assert_array_equal(work.block_ids[work.block_offsets[2] : work.block_offsets[3]], [0, 1, 2, 4])


def test_follow_ups_tie_goes_to_the_latest() -> None:
    blocks = [[7, 8, 9], [7, 8, 9], [7, 8, 9, 1]]
    prompts = np.array([1536, 1536, 2000])
    parent, shared = follow_ups_from_blocks(blocks, prompts, np.array([5, 5, 5]), 512)
    np.testing.assert_array_equal(parent, [-1, 0, 1])
    np.testing.assert_array_equal(shared, [0, 1536, 1541])


@needs_trace("mooncake-conversation", "mooncake_conversation.jsonl")
def test_real_mooncake_conversations() -> None:
    assert MOONCAKE is not None
    work = load_trace(MOONCAKE)
    summary = work.conversation_summary()
    assert summary["sessions"] == 7373
    assert summary["follow_ups"] == 4658
    assert summary["requests_per_turn"] == {"1": 7373, "2": 2265, "3": 949, "4+": 1444}


def _bailian(**overrides: Any) -> dict[str, Any]:
    record = {
        "chat_id": 0,
        "parent_chat_id": -1,
        "timestamp": 0.0,
        "input_length": 100,
        "output_length": 10,
        "turn": 1,
        "type": "text",
    }
    record.update(overrides)
    return record


def test_bailian_records(tmp_path: Path) -> None:
    rows = [
        _bailian(),
        _bailian(chat_id=5, timestamp=1.5, input_length=40, output_length=3),
        _bailian(chat_id=9, parent_chat_id=0, timestamp=30.0, turn=2, input_length=150, output_length=7),
        _bailian(chat_id=11, parent_chat_id=9, timestamp=60.0, turn=3, input_length=190, output_length=1),
    ]
    path = _jsonl(tmp_path, "qwen.jsonl", rows)
    work = load_trace(path)  # dispatched on chat_id
    assert work == load_bailian(path)
    np.testing.assert_allclose(work.arrival_s, [0.0, 1.5, 30.0, 60.0])
    np.testing.assert_array_equal(work.parent, [-1, -1, 0, 2])
    np.testing.assert_array_equal(work.session, [0, 1, 0, 0])
    np.testing.assert_array_equal(work.turn, [1, 1, 2, 3])
    # without hash_ids a follow-up shares its parent's prompt and answer
    np.testing.assert_array_equal(work.shared_prefix_tokens, [0, 0, 110, 157])
    # derived 16-token blocks: request 2 repeats request 0's six full blocks
    blocks = [
        work.block_ids[a:b] for a, b in zip(work.block_offsets[:-1], work.block_offsets[1:], strict=True)
    ]
    assert len(blocks[0]) == 7
    np.testing.assert_array_equal(blocks[2][:6], blocks[0][:6])
    assert not set(blocks[2][6:].tolist()) & set(blocks[0].tolist())


def test_bailian_hash_ids_give_the_shared_prefix(tmp_path: Path) -> None:
    rows = [
        _bailian(input_length=48, hash_ids=[1, 2, 3]),  # three full blocks, two repeated
        _bailian(chat_id=1, parent_chat_id=0, turn=2, input_length=60, hash_ids=[1, 2, 9, 10]),
    ]
    work = load_bailian(_jsonl(tmp_path, "q.jsonl", rows), block_tokens=16)
    np.testing.assert_array_equal(work.shared_prefix_tokens, [0, 32])


@pytest.mark.parametrize(
    ("rows", "line", "key"),
    [
        ([_bailian(), _bailian(chat_id=1, parent_chat_id=7, turn=2)], 2, "parent_chat_id"),
        ([_bailian(), _bailian(chat_id=1, parent_chat_id=0, turn=3)], 2, "turn"),
        ([_bailian(turn=2)], 1, "turn"),
        ([_bailian(), _bailian()], 2, "chat_id"),
        ([_bailian(), {"chat_id": 1, "timestamp": 1.0}], 2, "parent_chat_id"),
        ([_bailian(timestamp=5.0), _bailian(chat_id=1, timestamp=1.0)], 2, "timestamp"),
        ([_bailian(), _bailian(chat_id=1, input_length=-3)], 2, "input_length"),
        ([_bailian(chat_id="a")], 1, "chat_id"),
        ([_bailian(hash_ids=[1]), _bailian(chat_id=1)], 2, "hash_ids"),
    ],
)
def test_bailian_bad_rows_name_the_line(
    tmp_path: Path, rows: list[dict[str, Any]], line: int, key: str
) -> None:
    with pytest.raises(TraceFormatError, match=rf"line {line}, column '{key}'.*fix:"):
        load_bailian(_jsonl(tmp_path, "bad.jsonl", rows))


def test_single_turn_workloads_are_unchanged() -> None:
    work = synthetic_default(seed=0, n_requests=50)
    assert not work.multi_turn
    np.testing.assert_array_equal(work.turn, np.ones(50))
    np.testing.assert_array_equal(work.session, np.arange(50))
    assert len(work.block_ids) == 0
    assert "conversations" not in work.describe()


def test_multi_turn_default_grows_the_context() -> None:
    work = synthetic_multi_turn(seed=1, n_requests=600)
    assert work == synthetic_multi_turn(seed=1, n_requests=600)
    assert work != synthetic_multi_turn(seed=2, n_requests=600)
    assert len(work) == 600
    assert work.multi_turn
    follow = np.flatnonzero(work.parent >= 0)
    p = work.parent[follow]
    np.testing.assert_array_equal(work.session[follow], work.session[p])
    np.testing.assert_array_equal(work.turn[follow], work.turn[p] + 1)
    # context growth: the follow-up's prompt is the parent's prompt + answer + a new message
    np.testing.assert_array_equal(
        work.shared_prefix_tokens[follow], work.prompt_tokens[p] + work.output_tokens[p]
    )
    assert (work.prompt_tokens[follow] > work.shared_prefix_tokens[follow]).all()
    assert (work.arrival_s[follow] > work.arrival_s[p]).all()
    buckets = turn_buckets(work.turn)
    assert {TURN_BUCKETS[b] for b in buckets.tolist()} >= {"1", "2", "3"}


def test_derived_blocks_repeat_only_full_parent_blocks() -> None:
    offsets, ids = derive_blocks(np.array([1000, 1700]), np.array([-1, 0]), np.array([0, 1100]), 512)
    np.testing.assert_array_equal(offsets, [0, 2, 6])
    # request 0 has one full block (0) and a partial one (1); request 1 repeats only block 0
    np.testing.assert_array_equal(ids, [0, 1, 0, 2, 3, 4])


def test_conversation_columns_are_checked() -> None:
    base = {
        "name": "w",
        "arrival_s": [0.0, 1.0],
        "prompt_tokens": [10, 20],
        "output_tokens": [1, 1],
        "source": "t",
    }
    with pytest.raises(InvalidInputError, match=r"parent\[1\] = 1 is not an earlier request"):
        Workload(**base, parent=np.array([-1, 1]))  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="request 1's parent 0 is in session 0, not 1"):
        Workload(**base, parent=np.array([-1, 0]), session=np.array([0, 1]))  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match=r"shared_prefix_tokens\[1\] = 30 is not within the prompt"):
        Workload(  # type: ignore[arg-type]
            **base, parent=np.array([-1, 0]), session=np.array([0, 0]), shared_prefix_tokens=np.array([0, 30])
        )
    with pytest.raises(InvalidInputError, match="block_offsets must be 3"):
        Workload(**base, block_offsets=np.array([0, 1]), block_ids=np.array([5]))  # type: ignore[arg-type]


def test_limit_and_skip_keep_the_conversations() -> None:
    work = synthetic_multi_turn(seed=3, n_requests=400)
    head = work.limit(200)
    np.testing.assert_array_equal(head.parent, work.parent[:200])
    np.testing.assert_array_equal(head.block_ids, work.block_ids[: work.block_offsets[200]])
    np.testing.assert_array_equal(work.scaled(2.0).parent, work.parent)
    # dropping a parent leaves its follow-up without one
    cap = int(np.sort(work.prompt_tokens + work.output_tokens)[-20])
    kept = work.fit(cap, "skip")
    assert len(kept) < len(work)
    assert (kept.shared_prefix_tokens[kept.parent < 0] == 0).all()
    assert (kept.parent < np.arange(len(kept))).all()

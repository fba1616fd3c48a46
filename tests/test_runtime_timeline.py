"""The per-token record: gap causes, summary and JSON export."""

from __future__ import annotations

import json
from pathlib import Path

from pdcore.runtime.timeline import CloudRecord, Notice, Timeline, TokenRecord


def timeline() -> Timeline:
    record = Timeline(mode="pd-device", prompt="p", started_at=10.0, max_tpot_s=0.05, min_tpot_s=0.0, k=3)
    record.cloud_first_s = 0.100
    record.handoff_s = 0.45
    record.handoff_position = 3
    record.handoff_estimates = [(0.0, 0.3), (0.2, 0.4), (0.45, 0.45)]
    rows = [
        (0, "A", "cloud", 0.100, 0.100, 0.1002),
        (1, "b", "cloud", 0.101, 0.149, 0.1495),
        (2, "c", "cloud", 0.300, 0.300, 0.3001),  # the network stalled: shown on arrival
        (3, "d", "device", 0.450, 0.450, 0.4502),  # the device was late for the hand-off
        (4, "e", "device", 0.455, 0.455, 0.5600),  # there in time, shown late: the runtime's fault
    ]
    record.tokens = [TokenRecord(*row) for row in rows]
    record.cloud_events = [
        CloudRecord(0, "A", 0.1, True),
        CloudRecord(1, "b", 0.101, True),
        CloudRecord(2, "c", 0.3, True),
        CloudRecord(3, "x", 0.46, False),
    ]
    record.notices = [Notice(0.2, "cloud-cut", "cut")]
    record.finished_s = 0.56
    return record


def test_gap_causes() -> None:
    causes = [(gap.position, gap.cause) for gap in timeline().gaps()]
    assert causes == [(1, "ok"), (2, "cloud-late"), (3, "device-late"), (4, "runtime")]


def test_summary() -> None:
    summary = timeline().summary(largest=2)
    assert summary["ttft_s"] == 0.1002
    assert abs(summary["ttft_over_cloud_s"] - 0.0002) < 1e-9
    assert summary["tokens_by_source"] == {"cloud": 3, "device": 2}
    assert summary["cloud_discarded"] == 1
    assert summary["gaps_over_max_tpot"] == {"cloud-late": 1, "device-late": 1, "runtime": 1}
    assert [gap["position"] for gap in summary["largest_gaps"]] == [2, 3]
    assert summary["handoff_revisions"] == 2
    assert summary["max_gap_without_stalls_s"] < summary["max_gap_s"]
    assert summary["notices"] == ["cloud-cut: cut"]


def test_text_and_json(tmp_path: Path) -> None:
    record = timeline()
    assert record.text == "Abcde"
    assert record.cloud_text == "Abc"
    path = tmp_path / "timeline.json"
    record.write_json(path)
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["text"] == "Abcde"
    assert document["tokens"][2] == {
        "position": 2,
        "text": "c",
        "source": "cloud",
        "available_s": 0.3,
        "due_s": 0.3,
        "shown_s": 0.3001,
    }
    assert document["summary"]["handoff_position"] == 3
    assert document["handoff_estimates"][0] == {"at_s": 0.0, "estimate_s": 0.3}


def test_empty_timeline_summary() -> None:
    summary = Timeline(
        mode="device-only", prompt="p", started_at=0.0, max_tpot_s=0.05, min_tpot_s=0.0
    ).summary()
    assert summary["ttft_s"] is None
    assert summary["max_gap_s"] is None
    assert summary["tokens"] == 0

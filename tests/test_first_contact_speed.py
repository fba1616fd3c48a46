"""The first-contact bench's check of a run's figures against a baseline's
(`benches/python/first_contact_speed.py`)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benches" / "python" / "first_contact_speed.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("first_contact_speed", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BASELINE = {
    "config": {"profiles": {"cloud": {"name": "a100", "sha256": "aa"}}},
    "policies": {"pd-device": {"ttft_p50_ms": 40.0, "slo": [1, 2]}},
}


def test_a_new_key_and_a_profile_digest_are_notes_not_differences(bench: ModuleType) -> None:
    current = json.loads(json.dumps(BASELINE))
    current["config"]["profiles"]["cloud"]["sha256"] = "bb"
    current["policies"]["pd-device"]["overloaded"] = False
    differs, notes = bench.compare_figures(BASELINE, current)
    assert differs == []
    assert notes == [
        "/config/profiles/cloud/sha256 differs (the profile file, not a figure)",
        "/policies/pd-device/overloaded only in the current report",
    ]


@pytest.mark.parametrize(
    ("path", "value"),
    [(("policies", "pd-device", "ttft_p50_ms"), 40.000001), (("policies", "pd-device", "slo"), [1, 3])],
)
def test_any_changed_figure_is_a_difference(bench: ModuleType, path: tuple[str, ...], value: object) -> None:
    current = json.loads(json.dumps(BASELINE))
    node = current
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    differs, _ = bench.compare_figures(BASELINE, current)
    assert differs == ["/" + "/".join(path)]


def test_the_verdict_fails_a_changed_figure_and_passes_identical_bytes(
    bench: ModuleType, tmp_path: Path
) -> None:
    base, same, changed = tmp_path / "base.json", tmp_path / "same.json", tmp_path / "changed.json"
    base.write_text(json.dumps(BASELINE))
    same.write_text(json.dumps(BASELINE))
    other = json.loads(json.dumps(BASELINE))
    other["policies"]["pd-device"]["ttft_p50_ms"] = 41.0
    changed.write_text(json.dumps(other))
    assert bench.json_verdict(base, same) == (True, "JSON identical")
    assert bench.json_verdict(base, changed) == (False, "1 figures DIFFER")

"""End-to-end test of ``pdcore optimize``."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from pdcore.cli import app

RUNNER = CliRunner()


def test_optimize_prints_the_table_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "k.json"
    result = RUNNER.invoke(app, ["optimize", "--lengths", "256,1024,4096", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "k*" in result.output
    rows = json.loads(out.read_text())["rows"]
    assert [r["prompt_tokens"] for r in rows] == [256, 1024, 4096]
    ks = [r["k"] for r in rows]
    assert ks == sorted(ks)
    for r in rows:
        assert r["grid_k"] == r["k"]
        assert r["cost_ratio"] <= 1.05


def test_optimize_rejects_bad_lengths() -> None:
    result = RUNNER.invoke(app, ["optimize", "--lengths", "12,x"])
    assert result.exit_code == 2
    assert "--lengths" in result.output


def test_optimize_rejects_an_unknown_device() -> None:
    result = RUNNER.invoke(app, ["optimize", "--device-profile", "no-such-phone", "--no-check"])
    assert result.exit_code == 2
    assert "no-such-phone" in result.output

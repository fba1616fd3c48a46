"""``pdcore size`` says whether the cloud it picked keeps up, and warns once when the workload outran even
the largest cloud it tried."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from pdcore.cli import app


def _size(*flags: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["size", *flags], terminal_width=200)
    return result.exit_code, " ".join(result.output.split())


def test_size_says_the_cloud_it_picked_keeps_up(tmp_path: Path) -> None:
    out = tmp_path / "size.json"
    code, output = _size("--requests", "300", "--json", str(out))
    assert code == 0, output
    assert "warning: overloaded" not in output
    document = json.loads(out.read_text())
    for name, check in document["cloud_check"].items():
        sized = document["sizing"][name]
        assert check["picked"]
        assert check["cloud"] == f"{sized['prefill_replicas']}P+{sized['decode_replicas']}D"
        assert not check["overloaded"]
        assert 0.0 < check["busy"]["prefill pool"] < 1.0
        assert f"{name} on {check['cloud']}: keeps up (delays grow" in output


def test_size_warns_once_when_the_workload_outruns_the_largest_cloud_it_tried(tmp_path: Path) -> None:
    out = tmp_path / "size.json"
    code, output = _size("--requests", "400", "--rate-scale", "40", "--max-replicas", "2", "--json", str(out))
    assert code == 0, output
    check = json.loads(out.read_text())["cloud_check"]["cloud-only"]
    assert check == check | {"cloud": "2P+2D", "picked": False, "overloaded": True}
    assert (
        "cloud-only on the largest cloud tried, 2P+2D: falls behind (utilisation of its bottleneck" in output
    )
    assert output.count("warning: overloaded") == 1
    assert "under cloud-only on 2P+2D (utilisation" in output
    assert "raise --max-replicas" in output


def test_size_of_a_colocated_cloud_checks_it_without_a_prefill_pool(tmp_path: Path) -> None:
    out = tmp_path / "size.json"
    code, output = _size(
        "--requests", "200", "--deployment", "colocated", "--policies", "cloud-only", "--json", str(out)
    )
    assert code == 0, output
    check = json.loads(out.read_text())["cloud_check"]["cloud-only"]
    assert check["cloud"].startswith("x")
    assert check["busy"] == {}
    assert f"cloud-only on {check['cloud']}: keeps up" in output

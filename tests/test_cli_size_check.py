"""``pdcore size`` says whether the cloud it picked keeps up, and warns once when the workload outran even
the largest cloud it tried."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from pdcore.cli import app
from pdcore.cli.size_check import check_cloud
from pdcore.policies import make_policy
from pdcore.profiles import load_cloud_profile, load_device_profile, network_preset
from pdcore.sim import Scenario
from pdcore.sim.sizing import size_cloud
from pdcore.traces import synthetic_default


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


def _searched(deployment: str, *, max_replicas: int = 64, rate_scale: float = 1.0) -> tuple[Any, ...]:
    workload = synthetic_default(n_requests=300).scaled(rate_scale)
    scenario = Scenario(
        cloud=load_cloud_profile("llama3-8b-a100"),
        device=load_device_profile("llama32-3b-w4a16-8elite-genie"),
        network=network_preset("wifi"),
        deployment=deployment,
    )
    policy = make_policy("cloud-only")
    sized = size_cloud(workload, policy, scenario, max_replicas=max_replicas)
    return workload, policy, scenario, sized


@pytest.mark.parametrize(
    ("deployment", "max_replicas", "rate_scale"),
    [("disaggregated", 64, 1.0), ("colocated", 64, 1.0), ("disaggregated", 1, 40.0)],
)
def test_the_check_reads_the_search_s_run_of_the_cloud_it_picked(
    monkeypatch: pytest.MonkeyPatch, deployment: str, max_replicas: int, rate_scale: float
) -> None:
    workload, policy, scenario, sized = _searched(
        deployment, max_replicas=max_replicas, rate_scale=rate_scale
    )
    assert sized.run is not None
    rerun = check_cloud(
        workload, policy, dataclasses.replace(sized, run=None), scenario, seed=0, max_replicas=max_replicas
    )

    def no_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("the check ran the cloud the search had run")

    monkeypatch.setattr(Scenario, "run", no_run)
    read = check_cloud(workload, policy, sized, scenario, seed=0, max_replicas=max_replicas)
    assert read == rerun
    assert read is not None
    assert read.report["overloaded"] == (rate_scale > 1.0)


def test_the_check_reads_the_search_s_run_only_for_the_cloud_it_checks() -> None:
    # unattainable on 1P+1D as the sizing names it: the check runs the largest cloud, 2P+2D, itself
    workload, policy, scenario, sized = _searched("disaggregated", max_replicas=2, rate_scale=40.0)
    assert sized.bound == "unattainable"
    named = dataclasses.replace(sized, prefill_replicas=1, decode_replicas=1)
    check = check_cloud(workload, policy, named, scenario, seed=0, max_replicas=2)
    assert check is not None
    assert (check.cloud, check.picked) == ("2P+2D", False)
    report = scenario.replace(prefill_replicas=2, decode_replicas=2).run(workload, policy, seed=0).aggregate()
    assert check.report == {key: report[key] for key in check.report}
    first = scenario.replace(prefill_replicas=1, decode_replicas=1).run(workload, policy, seed=0).aggregate()
    assert check.report["duration_s"] != first["duration_s"]

"""An overloaded run is named: one warning on standard error with the measured utilisation and the fix, and
``"overloaded": true`` on the policy in the JSON; a run that keeps up says nothing (`pdcore.sim.overload`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from pdcore.cli import app
from pdcore.cli.notices import overload_notice
from pdcore.cli.report import _warn_overloaded
from pdcore.sim.overload import OVERLOAD_GROWTH, overload

OVERLOADED = ["--requests", "300", "--rate-scale", "8"]
"""The embedded default at 8x its rate: 38 req/s, over what one prefill replica serves."""


def test_overload_is_the_growth_of_the_delay_over_the_arrivals() -> None:
    arrival = np.linspace(0.0, 100.0, 401)
    steady = {"ttft_s": np.full(401, 0.2), "finish_s": arrival + 3.0}
    found = overload(arrival, steady, 1.0)
    assert not found.overloaded
    assert found.growth == 0.0
    # a server at half the arrival rate: the request arriving at t starts at 2t
    queued = {"ttft_s": arrival + 0.2, "finish_s": 2.0 * arrival + 3.0}
    found = overload(arrival, queued, 1.0)
    assert found.overloaded
    assert found.site == "cloud"
    assert found.utilisation is not None
    assert abs(found.utilisation - 2.0) < 0.01
    # a growth below the threshold, or one no larger than the TTFT objective, is not overload
    slow = {"ttft_s": 0.2 + arrival * OVERLOAD_GROWTH / 2, "finish_s": arrival + 3.0}
    assert not overload(arrival, slow, 1.0).overloaded
    assert not overload(arrival, queued, 100.0).overloaded
    # too few requests, or all at one instant, cannot tell
    assert overload(arrival[:5], {k: v[:5] for k, v in queued.items()}, 1.0).growth is None
    assert overload(np.zeros(50), {"ttft_s": np.ones(50), "finish_s": np.ones(50)}, 1.0).growth is None


def test_device_overload_is_named_with_the_device_fix() -> None:
    arrival = np.linspace(0.0, 100.0, 401)
    waiting = {"ttft_s": arrival + 0.5, "finish_s": 2.0 * arrival + 3.0, "device_wait_s": arrival}
    found = overload(arrival, waiting, 1.0)
    assert found.overloaded
    assert found.site == "device"
    report = {"overloaded": True, "delay_growth": found.growth, "overload_site": found.site}
    notice = overload_notice({"device-only": report}, "llama3-8b-a100 1P+1D")
    assert notice is not None
    assert "devices could not keep up under device-only (utilisation 2.00)" in notice
    assert "--one-answer-per-device" in notice


def test_compare_names_an_overloaded_cloud_once(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    args = ["compare", *OVERLOADED, "--policies", "cloud-only,spec-decode,pd-device", "--json", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert result.output.count("overloaded:") == 1, result.output
    assert "cloud-only (utilisation " in result.output
    assert "spec-decode (utilisation " in result.output
    assert "pdcore size" in result.output
    assert "--prefill-replicas" in result.output
    policies = json.loads(out.read_text())["policies"]
    assert policies["cloud-only"]["overloaded"] is True
    assert policies["cloud-only"]["delay_growth"] > OVERLOAD_GROWTH
    assert policies["pd-device"]["overloaded"] is False


def test_simulate_names_an_overloaded_cloud_once() -> None:
    result = CliRunner().invoke(app, ["simulate", *OVERLOADED, "--policy", "cloud-only"])
    assert result.exit_code == 0, result.output
    assert result.output.count("overloaded:") == 1, result.output


def test_the_embedded_default_is_not_overloaded(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    result = CliRunner().invoke(app, ["compare", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "overloaded" not in result.output
    policies = json.loads(out.read_text())["policies"]
    assert not any(report["overloaded"] for report in policies.values())


def test_reproduce_names_overloaded_workloads_at_their_own_rate(capsys: pytest.CaptureFixture[str]) -> None:
    fine = {"overloaded": False, "delay_growth": 0.0, "overload_site": "cloud"}
    queued = {"overloaded": True, "delay_growth": 6.68, "overload_site": "cloud"}
    document = {
        "workloads": {
            "default": {"trace_rate": {"policies": {"cloud-only": fine}}, "under_load": {"policies": {}}},
            "mooncake": {
                "trace_rate": {"policies": {"cloud-only": queued, "pd-device": fine}},
                "under_load": {"policies": {"pd-device": queued}},
            },
        }
    }
    _warn_overloaded(document, "llama3-8b-a100")
    err = capsys.readouterr().err
    assert err.count("overloaded:") == 1
    assert "mooncake: cloud-only (utilisation 7.68)" in err
    assert "pd-device" not in err  # the report's deliberate overload is not named
    assert "pdcore size --trace FILE" in err

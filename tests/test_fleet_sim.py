"""Runs over a fleet (`pdcore.sim.fleet_runs`, ``--fleet``): hand-computed cases (a one-class fleet of the
run's device and network is the plain run, a fleet with no capable device is the cloud-only run, request
for request), the seeded draw, each class on its own device and objectives, and the command line's results
by class and clear errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from pdcore._core import Plan
from pdcore.cli import app
from pdcore.fleet import ClassSLO, DeviceClass, Fleet
from pdcore.policies.base import CloudLoad, Policy, RequestInfo
from pdcore.profiles import load_cloud_profile, load_device_profile, network_preset
from pdcore.profiles.registry import DEFAULT_CLOUD, DEFAULT_DEVICE, DEFAULT_NETWORK
from pdcore.sim.scenario import Scenario
from pdcore.traces import synthetic_default

WORKLOAD = synthetic_default(seed=3, n_requests=200)
DEVICE = load_device_profile(DEFAULT_DEVICE)
LAPTOP = load_device_profile("llama32-3b-w4a16-xelite-genie")
NETWORK = network_preset(DEFAULT_NETWORK)
SCENARIO = Scenario(cloud=load_cloud_profile(DEFAULT_CLOUD), device=DEVICE, network=NETWORK)
PER_REQUEST = ("ttft_s", "tpot_s", "max_gap_s", "cloud_prefill_gpu_s", "cloud_decode_gpu_s", "mode", "usd")


def _fleet(*classes: DeviceClass) -> Fleet:
    return Fleet(name="test", description="a test fleet", classes=classes)


def _class(name: str, share: float, device: Any = DEVICE, network: Any = NETWORK, **kw: Any) -> DeviceClass:
    label = "none" if device is None else device.name
    return DeviceClass(name=name, share=share, device=device, device_name=label, network=network, **kw)


def _same(a: Any, b: Any, columns: tuple[str, ...] = PER_REQUEST) -> None:
    for name in columns:
        assert np.array_equal(np.asarray(a.results[name]), np.asarray(b.results[name]), equal_nan=True), name


@pytest.mark.parametrize("policy", ["pd-device", "cloud-only", "device-only", "disco", "router", "race"])
def test_one_class_of_the_run_device_and_network_is_the_plain_run(policy: str) -> None:
    plain = SCENARIO.run(WORKLOAD, policy, seed=5)
    fleet = SCENARIO.replace(fleet=_fleet(_class("all", 1.0))).run(WORKLOAD, policy, seed=5)
    _same(plain, fleet, tuple(plain.results))
    assert np.array_equal(plain.one_way_s, fleet.one_way_s)
    report = fleet.aggregate()
    assert report.pop("by_class")[0]["requests"] == len(WORKLOAD)
    assert json.dumps(report, sort_keys=True) == json.dumps(plain.aggregate(), sort_keys=True)


@pytest.mark.parametrize("policy", ["pd-device", "device-only", "race", "kv-transfer"])
def test_a_fleet_with_no_capable_device_is_the_cloud_only_run(policy: str) -> None:
    cloud_only = SCENARIO.run(WORKLOAD, "cloud-only", seed=5)
    fleet = SCENARIO.replace(fleet=_fleet(_class("old", 1.0, device=None))).run(WORKLOAD, policy, seed=5)
    _same(cloud_only, fleet)
    assert float(np.sum(fleet.results["device_decode_tokens"])) == 0.0


def test_the_draw_is_the_seeded_mix_and_a_run_repeats_exactly() -> None:
    fleet = _fleet(_class("new", 0.4), _class("old", 0.6, device=None))
    scenario = SCENARIO.replace(fleet=fleet)
    first, again = scenario.run(WORKLOAD, "pd-device", seed=7), scenario.run(WORKLOAD, "pd-device", seed=7)
    assert first.device_class is not None
    assert again.device_class is not None
    assert np.array_equal(first.device_class, fleet.draw(len(WORKLOAD), 7))
    assert np.array_equal(first.device_class, again.device_class)
    _same(first, again, tuple(first.results))
    other = scenario.run(WORKLOAD, "pd-device", seed=8)
    assert not np.array_equal(first.device_class, other.device_class)
    old = first.device_class == 1
    assert np.all(first.results["mode"][old] == 0)  # the cloud's


def test_a_slower_class_waits_longer_for_its_first_token_on_its_own_device() -> None:
    fleet = _fleet(_class("phone", 0.5), _class("laptop", 0.5, device=LAPTOP))
    result = SCENARIO.replace(fleet=fleet).run(WORKLOAD, "device-only", seed=1)
    phone, laptop = result.aggregate()["by_class"]
    assert laptop["ttft_s"]["p50"] > phone["ttft_s"]["p50"]
    # request for request: the same prompt takes the laptop's prefill time, not the phone's
    assert result.device_class is not None
    i = int(np.flatnonzero(result.device_class == 1)[0])
    prompt = int(WORKLOAD.prompt_tokens[i])
    assert result.results["ttft_s"][i] == pytest.approx(float(LAPTOP.prefill_s(prompt)), abs=1e-6)


def test_a_class_is_judged_by_its_own_objectives() -> None:
    strict = ClassSLO(ttft_s=1e-3)
    fleet = _fleet(_class("strict", 0.5, slo=strict), _class("relaxed", 0.5))
    report = SCENARIO.replace(fleet=fleet).run(WORKLOAD, "cloud-only", seed=2).aggregate()
    strict_row, relaxed_row = report["by_class"]
    assert strict_row["slo_attainment"] == 0.0
    assert relaxed_row["slo_attainment"] > 0.9
    share = strict_row["requests"] / len(WORKLOAD)
    assert report["slo_attainment"] == pytest.approx((1 - share) * relaxed_row["slo_attainment"])


class _DeviceEverywhere(Policy):
    """A policy planned in Python that asks every request's device."""

    name = "device-everywhere"

    def plan(self, req: RequestInfo, load: CloudLoad) -> Plan:
        return Plan("device")


def test_a_policy_planned_in_python_leaves_the_incapable_to_the_cloud() -> None:
    fleet = _fleet(_class("new", 0.5), _class("old", 0.5, device=None))
    planned = SCENARIO.replace(fleet=fleet).run(WORKLOAD, _DeviceEverywhere(), seed=4)
    native = SCENARIO.replace(fleet=fleet).run(WORKLOAD, "device-only", seed=4)
    _same(planned, native)


def _cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), terminal_width=200)


def test_compare_with_a_fleet_prints_and_writes_results_by_class(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    args = ["--requests", "200", "--policies", "cloud-only,pd-device", "--json", str(out)]
    result = _cli("compare", "--fleet", "phones-2025", *args)
    assert result.exit_code == 0, result.output
    assert "by device class" in result.output
    assert "none-lte" in result.output
    document = json.loads(out.read_text(encoding="utf-8"))
    assert document["config"]["fleet"]["name"] == "phones-2025"
    rows = document["policies"]["pd-device"]["by_class"]
    assert [row["name"] for row in rows] == ["capable-wifi", "capable-5g", "none-wifi", "none-lte"]
    assert sum(row["requests"] for row in rows) == 200
    simulated = _cli("simulate", "--fleet", "phones-2025", "--requests", "100")
    assert simulated.exit_code == 0
    assert "by device class" in simulated.output


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("missing.toml", "does not exist"),
        ("bad.toml", "share = 1.5 is above 1"),
        ("no-such-fleet", "unknown fleet 'no-such-fleet'"),
    ],
)
def test_a_bad_fleet_is_one_clear_error(tmp_path: Path, given: str, message: str) -> None:
    bad = 'name = "bad"\ndescription = "x"\n[[class]]\nname = "a"\nshare = 1.5\ndevice = "none"\n'
    bad += 'network = "wifi"\n'
    (tmp_path / "bad.toml").write_text(bad, encoding="utf-8")
    fleet = str(tmp_path / given) if given.endswith(".toml") else given
    for command in ("compare", "simulate"):
        result = _cli(command, "--fleet", fleet, "--requests", "20")
        assert result.exit_code == 2, result.output
        assert message in result.output
        assert "Traceback" not in result.output


def test_the_capacity_search_refuses_a_fleet_it_does_not_model() -> None:
    result = _cli("compare", "--fleet", "phones-2025", "--capacity", "--requests", "20")
    assert result.exit_code == 2, result.output
    assert "--capacity does not search over a fleet" in result.output

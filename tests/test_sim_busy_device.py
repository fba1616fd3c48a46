"""One answer at a time per device in the simulator (`pdcore.sim.conversations`): a turn that arrives while
its device serves an earlier one is the cloud's, or waits under device-only; off, nothing changes."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from typer.testing import CliRunner

from pdcore._core import Plan, Simulator
from pdcore.cli import app
from pdcore.exceptions import InvalidInputError
from pdcore.policies import DeviceOnly, Policy
from pdcore.policies.base import CloudLoad, RequestInfo
from pdcore.profiles import load_cloud_profile, load_device_profile, network_preset
from pdcore.sim import Scenario
from pdcore.sim.conversations import DEVICE_BUSY, WHEN_DEVICE_BUSY, when_device_busy
from pdcore.sim.spec import ScenarioSpec
from pdcore.traces import Workload
from pdcore.traces.conversations import derive_blocks

CLOUD = load_cloud_profile("llama3-8b-a100")
DEVICE = load_device_profile("llama32-3b-w4a16-8elite-genie")


def scenario(*, one_answer_per_device: bool) -> Scenario:
    wifi = network_preset("wifi")
    return Scenario(cloud=CLOUD, device=DEVICE, network=wifi, one_answer_per_device=one_answer_per_device)


def overlapping_session() -> Workload:
    """One session of three turns: the second arrives 0.5 s after the first, while the device still
    answers it; the third a minute later, when the device is free. A second session's one turn arrives
    between them, on its own device."""
    arrival = np.array([0.0, 0.5, 1.0, 60.0])
    session = np.array([0, 0, 1, 0], dtype=np.int64)
    turn = np.array([1, 2, 1, 3], dtype=np.int64)
    parent = np.array([-1, 0, -1, 1], dtype=np.int64)
    output = np.array([300, 200, 300, 100], dtype=np.int64)
    shared = np.array([0, 600 + 300, 0, 960 + 200], dtype=np.int64)
    prompt = np.array([600, 960, 600, 1400], dtype=np.int64)
    offsets, ids = derive_blocks(prompt, parent, shared, 512)
    return Workload(
        name="overlapping-session",
        arrival_s=arrival,
        prompt_tokens=prompt,
        output_tokens=output,
        source="test",
        session=session,
        turn=turn,
        parent=parent,
        shared_prefix_tokens=shared,
        block_offsets=offsets,
        block_ids=ids,
        block_tokens=512,
    )


WORK = overlapping_session()


def busy(result: Mapping[str, npt.NDArray[Any]]) -> list[str]:
    return [DEVICE_BUSY[code] for code in result["device_busy"].tolist()]


def test_a_turn_that_finds_its_device_busy_is_the_clouds_under_pd_device() -> None:
    on = scenario(one_answer_per_device=True).run(WORK, "pd-device").results
    assert busy(on) == ["free", "cloud", "free", "free"]
    assert on["served_by"][1] == 0  # the cloud alone
    assert on["device_prefill_tokens"][1] == 0
    assert on["device_decode_tokens"][1] == 0
    assert on["cloud_tokens_kept"][1] == 200
    assert on["device_wait_s"].tolist() == [0.0] * 4
    off = scenario(one_answer_per_device=False).run(WORK, "pd-device").results
    assert "device_busy" not in off
    assert "device_wait_s" not in off
    assert off["device_decode_tokens"][1] > 0, "off: the device answers it beside the first turn"
    assert on["cloud_prefill_gpu_s"][1] + on["cloud_decode_gpu_s"][1] > (
        off["cloud_prefill_gpu_s"][1] + off["cloud_decode_gpu_s"][1]
    )


def test_a_device_only_turn_waits_for_the_device() -> None:
    on = scenario(one_answer_per_device=True).run(WORK, "device-only").results
    assert busy(on) == ["free", "waited", "free", "free"]
    wait = on["device_wait_s"][1]
    # it starts when the first turn's last decode step ends (device tokens are shown as they are ready)
    assert wait == pytest.approx(on["finish_s"][0] - 0.5, abs=1e-6)
    assert on["ttft_s"][1] > wait
    # by then the first turn's whole context exists on the device: only the new message is prefilled
    assert on["device_cached_tokens"][1] == 899
    off = scenario(one_answer_per_device=False).run(WORK, "device-only").results
    assert off["ttft_s"][1] < wait, "off: it prefills beside the first turn"
    assert off["device_cached_tokens"][1] < 899, "off: only what the first turn had computed by 0.5 s"


def test_off_is_the_run_without_the_option() -> None:
    plain = Scenario(cloud=CLOUD, device=DEVICE, network=network_preset("wifi"))
    for policy in ("pd-device", "device-only", "cloud-only", "race"):
        a = plain.run(WORK, policy).results
        b = scenario(one_answer_per_device=False).run(WORK, policy).results
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{policy}: {key}")
    assert "one_answer_per_device" not in plain.describe()
    assert scenario(one_answer_per_device=True).describe()["one_answer_per_device"] is True


class PlannedInPython(DeviceOnly):
    """Device-only, planned through the decision loop (no native rule)."""

    def plan(self, req: RequestInfo, load: CloudLoad) -> Plan:
        return Plan("device")


class AlwaysDevice(Policy):
    """A custom policy with device-alone plans: a run that can turn to the cloud."""

    name = "always-device"

    def plan(self, req: RequestInfo, load: CloudLoad) -> Plan:
        return Plan("device")


def test_the_rule_follows_the_policy_and_both_planning_paths_agree() -> None:
    on = scenario(one_answer_per_device=True)
    assert WHEN_DEVICE_BUSY == ("cloud", "wait")
    assert when_device_busy(on, DeviceOnly()) == "wait"
    assert when_device_busy(on, AlwaysDevice()) == "cloud"
    assert when_device_busy(scenario(one_answer_per_device=False), DeviceOnly()) is None
    native = on.run(WORK, "device-only").results
    looped = on.run(WORK, PlannedInPython()).results
    for key in native:
        np.testing.assert_array_equal(native[key], looped[key], err_msg=key)
    # a policy that could ask the cloud sends its busy device-alone plan there
    custom = on.run(WORK, AlwaysDevice()).results
    assert busy(custom) == ["free", "cloud", "free", "free"]


def test_bad_settings_are_refused() -> None:
    with pytest.raises(InvalidInputError, match=r"one_answer_per_device = 'yes'; fix: pass True or False"):
        Scenario(cloud=CLOUD, device=DEVICE, network=network_preset("wifi"), one_answer_per_device="yes")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="one_answer_per_device"):
        ScenarioSpec(one_answer_per_device=1).build()  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match=r"when_device_busy.*\"wait\""):
        Simulator(
            arrival_s=np.zeros(1),
            prompt_tokens=np.ones(1, dtype=np.int64),
            output_tokens=np.ones(1, dtype=np.int64),
            one_way_s=np.zeros(1),
            cloud=scenario(one_answer_per_device=False).cloud_config(),
            device=DEVICE.cost,
            bandwidth_bps=1e8,
            when_device_busy="queue",
        )
    assert ScenarioSpec(one_answer_per_device=True).build().one_answer_per_device


runner = CliRunner()


def compare_report(tmp_path: Path, *flags: str) -> dict[str, Any]:
    out = tmp_path / f"report{len(flags)}.json"
    args = ["compare", "--multi-turn", "--policies", "device-only,cloud-only,pd-device"]
    result = runner.invoke(app, [*args, "--json", str(out), *flags])
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(out.read_text())
    return report


def test_compare_multi_turn_counts_the_busy_devices(tmp_path: Path) -> None:
    off = compare_report(tmp_path)
    on = compare_report(tmp_path, "--one-answer-per-device")
    assert on["config"]["one_answer_per_device"] is True
    assert "one_answer_per_device" not in off["config"]
    policies_on, policies_off = on["policies"], off["policies"]
    for name in ("device-only", "cloud-only", "pd-device"):
        assert "device_busy" not in policies_off[name]
        first_turns = policies_on[name]["per_turn"]["1"]
        assert first_turns["device_busy_requests"] == 0, "a first turn finds its device free"
    # the multi-turn default's think times are long, but a few follow-ups arrive while the device answers
    assert policies_on["pd-device"]["device_busy"]["cloud"] > 0
    assert policies_on["pd-device"]["device_busy"]["waited"] == 0
    assert policies_on["device-only"]["device_busy"]["waited"] > 0
    assert policies_on["device-only"]["device_busy"]["cloud"] == 0
    assert policies_on["device-only"]["device_busy"]["wait_s"]["p50"] > 0
    assert policies_on["cloud-only"]["device_busy"] == {
        "cloud": 0,
        "waited": 0,
        "share": 0.0,
        "wait_s": {"mean": None, "p50": None, "p90": None, "max": None},
    }
    # cloud-only never holds a device: its run is the same with or without the rule
    assert policies_on["cloud-only"]["ttft_s"] == policies_off["cloud-only"]["ttft_s"]


def test_simulate_writes_each_requests_busy_device(tmp_path: Path) -> None:
    out, plain = tmp_path / "rows.csv", tmp_path / "plain.csv"
    args = ["simulate", "--multi-turn", "--policy", "device-only", "--limit", "400"]
    result = runner.invoke(app, [*args, "--one-answer-per-device", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "found their device busy" in result.output
    with out.open() as handle:
        rows = list(csv.DictReader(handle))
    assert {row["device_busy"] for row in rows} <= set(DEVICE_BUSY)
    waited = [row for row in rows if row["device_busy"] == "waited"]
    assert waited
    assert all(float(row["device_wait_s"]) > 0 for row in waited)
    assert all(float(row["device_wait_s"]) == 0 for row in rows if row["device_busy"] != "waited")
    assert runner.invoke(app, [*args, "--out", str(plain)]).exit_code == 0
    header = plain.read_text().splitlines()[0].split(",")
    assert "device_busy" not in header
    assert "device_wait_s" not in header

"""What each answer costs: prices in the profiles, the per-request bill of every mode, the report."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from pdcore._core import Plan, Prices
from pdcore.cli import app
from pdcore.exceptions import InvalidInputError, ProfileError
from pdcore.policies import PDDevice, Policy
from pdcore.policies.base import CloudLoad, RequestInfo
from pdcore.profiles import (
    CloudProfile,
    DeviceProfile,
    load_cloud_profile,
    load_device_profile,
    network_preset,
)
from pdcore.profiles.network import RadioEnergy
from pdcore.sim import Scenario
from pdcore.traces import Workload

CLOUD = load_cloud_profile("llama3-8b-a100")
DEVICE = load_device_profile("llama32-3b-w4a16-8elite-genie")
WIFI = network_preset("wifi")


class Fixed(Policy):
    """Every request in one mode, planned in Python (the path a new policy takes)."""

    def __init__(self, mode: str, k: int = 0) -> None:
        self.name = f"fixed-{mode}"
        self.mode, self.k = mode, k

    def plan(self, request: RequestInfo, load: CloudLoad) -> Plan:
        if self.mode == "spec":
            return Plan("spec", max_tpot_s=0.05, gamma=4, alpha=0.7)
        return Plan(self.mode, k=self.k, max_tpot_s=0.05)


def one(prompt: int, output: int) -> Workload:
    return Workload(
        name="one",
        arrival_s=np.zeros(1),
        prompt_tokens=np.array([prompt], dtype=np.int64),
        output_tokens=np.array([output], dtype=np.int64),
        source="test",
    )


def run_one(mode: str, *, k: int = 0, prompt: int = 500, output: int = 40) -> dict[str, float]:
    scenario = Scenario(cloud=CLOUD, device=DEVICE, network=WIFI, deployment="colocated")
    result = scenario.run(one(prompt, output), Fixed(mode, k), one_way_s=[0.01])
    columns = result.columns()
    names = {"mode", "served_by", "k_site"}
    return {name: float(values[0]) for name, values in columns.items() if name not in names}


def radio_j(row: dict[str, float]) -> float:
    """Huang et al.'s Wi-Fi model by hand: beta 132.86 mW, alpha 283.17 / 137.01 mW/Mbps, promotion
    124.4 mW x 79.1 ms, tail 119.3 mW x 238.1 ms; the SoC waits at the profile's 0.25 W."""
    fixed = (124.4 * 79.1 + 119.3 * 238.1) * 1e-6
    return (
        (0.13286 + 0.25) * row["radio_s"]
        + 283.17 * 8e-9 * row["bytes_up"]
        + 137.01 * 8e-9 * row["bytes_down"]
        + fixed
    )


def test_device_only_costs_its_tokens_and_no_dollar() -> None:
    row = run_one("device", prompt=500, output=40)
    assert (row["bytes_up"], row["bytes_down"], row["radio_s"], row["usd"]) == (0, 0, 0, 0)
    # 0.6890 ms/token x 3 W per prefilled token, 42.604 ms x 1.39 W per decoded token
    assert row["device_j"] == pytest.approx(500 * 0.002067 + 40 * 0.05922, rel=1e-12)
    assert row["battery_pct"] == pytest.approx(row["device_j"] / (19.4 * 3600) * 100, rel=1e-12)


def test_cloud_only_pays_gpu_time_and_the_radio() -> None:
    row = run_one("cloud", prompt=500, output=40)
    assert row["bytes_up"] == 500 * 4
    assert row["bytes_down"] == 40 * 329
    assert row["radio_s"] == pytest.approx(row["e2e_s"], abs=1e-9)
    gpu_s = row["cloud_prefill_gpu_s"] + row["cloud_decode_gpu_s"]
    assert gpu_s > 0
    assert row["usd"] == pytest.approx(gpu_s * 1.99 / 3600, rel=1e-12)
    assert row["compute_j"] == 0
    assert row["device_j"] == pytest.approx(radio_j(row), rel=1e-12)


@pytest.mark.parametrize("mode", ["pd", "naive", "kv-transfer", "race", "disco", "spec"])
def test_every_mode_is_billed_from_its_columns(mode: str) -> None:
    row = run_one(mode, k=8, prompt=1500, output=60)
    gpu_s = row["cloud_prefill_gpu_s"] + row["cloud_decode_gpu_s"]
    assert row["usd"] == pytest.approx(gpu_s * 1.99 / 3600, rel=1e-12)
    compute = 0.002067 * row["device_prefill_tokens"] + 0.05922 * row["device_decode_tokens"]
    assert row["compute_j"] == pytest.approx(compute, rel=1e-12)
    assert row["network_j"] == pytest.approx(radio_j(row), rel=1e-12)
    if mode == "spec":
        # the prompt, then each round's drafts go up for verification
        assert row["bytes_up"] > 1500 * 4
    else:
        assert row["bytes_up"] == 1500 * 4
    if mode == "kv-transfer":
        # one streamed token and the prompt's KV cache in the device model's size
        assert row["bytes_down"] == 329 + 1500 * DEVICE.kv_bytes_per_token
    if mode in {"pd", "naive"}:
        assert row["bytes_down"] == 9 * 329  # k + 1 tokens streamed


def test_zero_prices_give_zero_cost() -> None:
    cloud = dataclasses.replace(CLOUD, usd_per_gpu_hour=0.0)
    assert DEVICE.energy is not None
    device = dataclasses.replace(
        DEVICE,
        energy=dataclasses.replace(
            DEVICE.energy, prefill_j_per_token=0.0, decode_j_per_token=0.0, wait_w=0.0
        ),
    )
    network = dataclasses.replace(WIFI, radio=RadioEnergy(0.0, 0.0, 0.0, 0.0))
    scenario = Scenario(cloud=cloud, device=device, network=network)
    for policy in ("cloud-only", "device-only", "pd-device", "kv-transfer"):
        result = scenario.run(one(800, 30), policy, one_way_s=[0.02])
        for column in ("usd", "device_j", "battery_pct"):
            assert result.results[column][0] == 0.0, (policy, column)
        assert result.aggregate()["cost"]["usd_per_1k_requests"] == 0.0


def test_a_profile_without_prices_reports_unknown_cost() -> None:
    cloud = dataclasses.replace(CLOUD, usd_per_gpu_hour=None)
    report = Scenario(cloud=cloud, device=DEVICE, network=WIFI).run(one(100, 5), "cloud-only").aggregate()
    assert report["cost"]["usd_per_1k_requests"] is None
    assert report["cost"]["device_mj_per_request"]["mean"] is None
    assert report["cost"]["bytes_up_per_request"] == 400


def test_prices_refuse_bad_values_naming_them() -> None:
    good = {
        "usd_per_gpu_hour": 2.0,
        "prefill_j_per_token": 0.001,
        "decode_j_per_token": 0.05,
        "wait_w": 0.2,
        "radio_base_w": 0.1,
        "radio_up_j_per_byte": 1e-6,
        "radio_down_j_per_byte": 1e-6,
        "radio_fixed_j": 0.04,
        "battery_wh": 19.4,
    }
    Prices(**good)
    for key in good:
        for bad in (-1.0, math.nan, math.inf):
            with pytest.raises(InvalidInputError, match=key):
                Prices(**(good | {key: bad}))
    with pytest.raises(InvalidInputError, match="battery_wh"):
        Prices(**(good | {"battery_wh": 0.0}))


def shipped_text(kind: str, name: str) -> str:
    root = Path(__file__).resolve().parents[1] / "python" / "pdcore" / "profiles" / "data"
    return (root / kind / f"{name}.toml").read_text()


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ("energy", "prefill_j_per_token"),
        ("energy", "decode_j_per_token"),
        ("energy", "wait_w"),
        ("energy", "battery_wh"),
    ],
)
def test_device_energy_values_are_checked_naming_the_key(section: str, key: str) -> None:
    text = shipped_text("device", "llama32-3b-w4a16-8elite-genie")
    line = next(row for row in text.splitlines() if row.startswith(f"{key} = "))
    for bad in ("-0.5", "nan", "inf"):
        with pytest.raises(ProfileError, match=rf"\[{section}\] {key}"):
            DeviceProfile.from_toml_text(text.replace(line, f"{key} = {bad}"))
    with pytest.raises(ProfileError, match=rf"missing key '\[{section}\] {key}'"):
        DeviceProfile.from_toml_text(text.replace(line, ""))
    with pytest.raises(ProfileError, match="unknown key"):
        DeviceProfile.from_toml_text(text.replace(line, f"{line}\nwatts = 1"))


@pytest.mark.parametrize(
    ("section", "key"),
    [("price", "usd_per_gpu_hour"), ("wire", "prompt_bytes_per_token"), ("wire", "stream_bytes_per_token")],
)
def test_cloud_prices_are_checked_naming_the_key(section: str, key: str) -> None:
    text = shipped_text("cloud", "llama3-8b-a100")
    line = next(row for row in text.splitlines() if row.startswith(f"{key} = "))
    for bad in ("-1", "nan"):
        with pytest.raises(ProfileError, match=rf"\[{section}\] {key}"):
            CloudProfile.from_toml_text(text.replace(line, f"{key} = {bad}"))
    with pytest.raises(ProfileError, match=rf"missing key '\[{section}\] {key}'"):
        CloudProfile.from_toml_text(text.replace(line, ""))


def test_every_shipped_profile_is_priced() -> None:
    for name in ("llama3-8b-a100", "llama3-8b-h100", "llama2-70b-a100-tp2", "llama2-70b-h100-tp2"):
        cloud = load_cloud_profile(name)
        assert cloud.usd_per_gpu_hour is not None
        assert cloud.usd_per_gpu_hour > 0
        assert cloud.stream_bytes_per_token is not None
    for name in ("wifi", "lte", "5g", "lan"):
        assert network_preset(name).radio is not None
    # LTE's tail (1.06 W for 11.576 s) dwarfs Wi-Fi's
    lte, wifi = network_preset("lte").radio, network_preset("wifi").radio
    assert lte is not None
    assert wifi is not None
    assert lte.fixed_j == pytest.approx(1.2107 * 0.2601 + 1.06 * 11.576)
    assert lte.fixed_j > 100 * wifi.fixed_j


def test_compare_reports_cost_in_table_and_json(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    policies = "cloud-only,device-only,pd-device"
    args = ["compare", "--limit", "60", "--policies", policies, "--json", str(out), "--wide"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "$/1k req" in result.output
    report = json.loads(out.read_text())["policies"]
    device, cloud = report["device-only"]["cost"], report["cloud-only"]["cost"]
    assert device["usd_per_1k_requests"] == 0
    assert cloud["usd_per_1k_requests"] > 0
    assert device["device_mj_per_request"]["mean"] > cloud["device_mj_per_request"]["mean"]
    assert cloud["bytes_down_per_request"] > cloud["bytes_up_per_request"] > 0
    assert 0 < report["pd-device"]["cost"]["battery_pct_per_request"] < 1


def test_weights_move_work_on_a_seeded_case_where_both_sides_meet_the_slo() -> None:
    # 500 tokens: the device's first token in 0.34 s and its decode within 50 ms; the cloud's sooner
    scenario = Scenario(cloud=CLOUD, device=DEVICE, network=WIFI, deployment="colocated")
    work = one(500, 40)
    modes = {}
    for label, policy in (
        ("own", PDDevice()),
        ("cost", PDDevice(cost_weight=100.0)),
        ("energy", PDDevice(energy_weight=100.0)),
    ):
        result = scenario.run(work, policy, one_way_s=[0.01])
        modes[label] = result.columns()["mode"][0]
        assert result.slo_met()[0], label
        if label == "cost":
            assert result.results["usd"][0] == 0.0
        if label == "energy":
            assert result.results["compute_j"][0] == 0.0
    assert modes == {"own": "pd", "cost": "device", "energy": "cloud"}


def test_run_weights_reach_the_policy_and_a_policy_setting_wins() -> None:
    scenario = Scenario(cloud=CLOUD, device=DEVICE, network=WIFI, energy_weight=100.0)
    assert scenario.describe()["weights"] == {"cost": 0.0, "energy": 100.0}
    assert scenario.run(one(500, 40), "pd-device", one_way_s=[0.01]).columns()["mode"][0] == "cloud"
    own = scenario.run(one(500, 40), PDDevice(energy_weight=0.0), one_way_s=[0.01])
    assert own.columns()["mode"][0] == "pd"
    with pytest.raises(InvalidInputError, match="--energy-weight"):
        Scenario(cloud=CLOUD, device=DEVICE, network=WIFI, energy_weight=-1.0)
    with pytest.raises(InvalidInputError, match="cost_weight"):
        PDDevice(cost_weight=math.inf)


def test_a_weight_without_prices_is_refused_naming_the_table() -> None:
    cloud = dataclasses.replace(CLOUD, usd_per_gpu_hour=None)
    scenario = Scenario(cloud=cloud, device=DEVICE, network=WIFI, cost_weight=1.0)
    with pytest.raises(InvalidInputError, match=r"\[price\]"):
        scenario.run(one(500, 40), "pd-device")


def test_compare_takes_the_weights(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    args = ["compare", "--limit", "80", "--policies", "pd-device", "--json", str(out)]
    plain = CliRunner().invoke(app, args)
    assert plain.exit_code == 0, plain.output
    before = json.loads(out.read_text())["policies"]["pd-device"]["cost"]
    weighted = CliRunner().invoke(app, [*args, "--energy-weight", "1"])
    assert weighted.exit_code == 0, weighted.output
    document = json.loads(out.read_text())
    after = document["policies"]["pd-device"]["cost"]
    assert document["config"]["weights"] == {"cost": 0.0, "energy": 1.0}
    assert after["device_mj_per_request"]["mean"] < before["device_mj_per_request"]["mean"]
    assert after["usd_per_1k_requests"] > before["usd_per_1k_requests"]
    for flag, value in (("--cost-weight", "-2"), ("--energy-weight", "nan"), ("--energy-weight", "inf")):
        bad = CliRunner().invoke(app, [*args, flag, value])
        assert bad.exit_code == 2, (flag, value)
        assert flag in bad.output


def test_compare_prices_each_turn_of_a_multi_turn_workload(tmp_path: Path) -> None:
    out = tmp_path / "turns.json"
    args = ["compare", "--multi-turn", "--requests", "400", "--policies", "device-only,pd-device"]
    result = CliRunner().invoke(app, [*args, "--json", str(out), "--wide"])
    assert result.exit_code == 0, result.output
    assert result.output.count("$/1k req") >= 2  # the main table and the table by turn
    report = json.loads(out.read_text())["policies"]
    for name, policy in report.items():
        turns = policy["per_turn"]
        weights = [row["requests"] for row in turns.values()]
        mean = sum(
            row["cost"]["device_mj_per_request"]["mean"] * count
            for row, count in zip(turns.values(), weights, strict=True)
        ) / sum(weights)
        assert mean == pytest.approx(policy["cost"]["device_mj_per_request"]["mean"], rel=1e-4), name
    assert all(row["cost"]["usd_per_1k_requests"] == 0 for row in report["device-only"]["per_turn"].values())
    # a follow-up prefills only what the device has not seen: less device energy than a first turn
    turns = report["device-only"]["per_turn"]
    assert (
        turns["2"]["cost"]["device_compute_mj_per_request"]
        < turns["1"]["cost"]["device_compute_mj_per_request"]
    )

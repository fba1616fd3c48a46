"""The run specification: picklable records that build the same scenario and load the same workload as every
path that assembled them by hand before."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import numpy as np
import pytest

from pdcore.cli.options import load_profiles, load_workload, workload_spec
from pdcore.cli.run import build_run, run_spec
from pdcore.exceptions import InvalidInputError, ProfileError
from pdcore.profiles import (
    DEFAULT_CLOUD,
    DEFAULT_DEVICE,
    DEFAULT_NETWORK,
    NetworkProfile,
    load_cloud_profile,
    load_device_profile,
    network_preset,
)
from pdcore.sim import SLO, Scenario
from pdcore.sim.spec import SYNTHETIC, ScenarioSpec, WorkloadSpec, named_input, policy_inputs
from pdcore.sim.sweep import SweepTask
from pdcore.sim.sweep import WorkloadSpec as SweepWorkloadSpec
from pdcore.traces import load_trace, synthetic_default, synthetic_long_answer, synthetic_multi_turn

FASTER = "llama32-1b-w4a16-8elite-genie"


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("spec") / "azure_conv_small.csv"
    rows = ["TIMESTAMP,ContextTokens,GeneratedTokens"]
    rows += [f"2023-11-16 18:15:{10 + i:02d}.0000000,{200 + 50 * i},{20 + i}" for i in range(30)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_specs_round_trip_through_pickle() -> None:
    workload = WorkloadSpec(seed=3, requests=50, synthetic="multi-turn", limit=40, rate_scale=2.0)
    scenario = ScenarioSpec(device=FASTER, rtt_s=0.1, deployment="colocated", replicas=3, cost_weight=1.0)
    task = SweepTask(workload=workload, policy="pd-device", environment=scenario, tag="x")
    for record in (workload, scenario, task):
        again = pickle.loads(pickle.dumps(record))
        assert again == record
        assert hash(again) == hash(record)
        assert len(pickle.dumps(record)) < 1000
    assert pickle.loads(pickle.dumps(scenario)).build() == scenario.build()


def test_the_defaults_are_the_registry_s() -> None:
    spec = ScenarioSpec()
    assert (spec.device, spec.cloud, spec.network) == (DEFAULT_DEVICE, DEFAULT_CLOUD, DEFAULT_NETWORK)
    import pdcore.report

    assert pdcore.report.DEFAULT_DEVICE == DEFAULT_DEVICE
    assert pdcore.report.DEFAULT_CLOUD == DEFAULT_CLOUD
    assert pdcore.report.DEFAULT_NETWORK == DEFAULT_NETWORK
    assert SweepWorkloadSpec is WorkloadSpec


def test_build_gives_the_scenario_assembled_by_hand() -> None:
    spec = ScenarioSpec(
        device=FASTER,
        deployment="colocated",
        replicas=2,
        ttft_slo_s=0.8,
        max_tpot_s=0.06,
        k_sites="pool",
        cost_weight=2.0,
        energy_weight=0.01,
        device_kv_bytes_per_token=1e5,
    )
    by_hand = Scenario(
        cloud=load_cloud_profile(DEFAULT_CLOUD),
        device=load_device_profile(FASTER),
        network=network_preset(DEFAULT_NETWORK),
        deployment="colocated",
        replicas=2,
        slo=SLO(ttft_s=0.8, max_tpot_s=0.06),
        k_sites="pool",
        cost_weight=2.0,
        energy_weight=0.01,
        device_kv_bytes_per_token=1e5,
    )
    assert spec.build() == by_hand
    assert ScenarioSpec().build() == Scenario(
        cloud=load_cloud_profile(DEFAULT_CLOUD),
        device=load_device_profile(DEFAULT_DEVICE),
        network=network_preset(DEFAULT_NETWORK),
    )
    assert (
        load_profiles(FASTER, DEFAULT_CLOUD, "lte") == ScenarioSpec(device=FASTER, network="lte").profiles()
    )


def test_a_sweep_task_builds_what_its_spec_builds() -> None:
    """The settings given one by one, as before the spec, land in the task's environment."""
    flat = SweepTask(
        workload=WorkloadSpec(seed=1, requests=100),
        policy="pd-device",
        device=FASTER,
        rtt_s=0.05,
        max_tpot_s=0.07,
        rate_scale=2.0,
    )
    spec = ScenarioSpec(device=FASTER, rtt_s=0.05, max_tpot_s=0.07)
    assert flat.environment == spec
    assert flat.workload == WorkloadSpec(seed=1, requests=100, rate_scale=2.0)
    assert flat == SweepTask(workload=flat.workload, policy="pd-device", environment=spec)
    assert flat.scenario() == spec.build()
    assert (flat.device, flat.max_tpot_s, flat.rate_scale) == (FASTER, 0.07, 2.0)
    changed = dataclasses.replace(flat, decode_replicas=2, compute=("capacity",))
    assert changed.environment == spec.replace(decode_replicas=2)
    assert changed.compute == ("capacity",)
    assert changed.workload == flat.workload
    with pytest.raises(TypeError, match="no_such_setting"):
        SweepTask(workload=WorkloadSpec(), policy="pd-device", no_such_setting=1)
    with pytest.raises(AttributeError, match="no_such"):
        _ = flat.no_such


def test_rtt_override_names_the_network() -> None:
    network = ScenarioSpec(network="lte", rtt_s=0.25).build().network
    preset = network_preset("lte")
    assert isinstance(network, NetworkProfile)
    assert network.name == "lte@250ms"
    assert (network.rtt_s, network.bandwidth_bps, network.jitter_s) == (
        0.25,
        preset.bandwidth_bps,
        preset.jitter_s,
    )
    assert ScenarioSpec(network="lte").build().network == preset


def test_the_synthetic_paths_agree() -> None:
    """The spec, the command line's loader and the generators draw the same workloads."""
    drawn = WorkloadSpec(seed=4, requests=120, rate_rps=3.0).load()
    assert drawn == synthetic_default(seed=4, n_requests=120, rate_rps=3.0)
    flags = {"seed": 4, "requests": 120, "rate": 3.0, "limit": None, "rate_scale": 1.0}
    assert load_workload(None, **flags) == drawn
    multi = WorkloadSpec(seed=4, requests=120, synthetic="multi-turn").load()
    assert multi == synthetic_multi_turn(seed=4, n_requests=120)
    assert load_workload(None, **(flags | {"rate": None}), multi_turn=True) == multi
    long = WorkloadSpec(seed=4, requests=60, synthetic="long-answer")
    assert long.rate_rps == 1.0
    assert long.load() == synthetic_long_answer(seed=4, n_requests=60)
    assert WorkloadSpec().rate_rps == 5.5
    assert WorkloadSpec() == WorkloadSpec(rate_rps=5.5)
    assert set(SYNTHETIC) == {"default", "multi-turn", "long-answer"}


def test_the_trace_paths_agree(trace: Path) -> None:
    """A trace read through the spec, the command line's loader and the reader itself is the same."""
    spec = WorkloadSpec(trace=str(trace), limit=20, rate_scale=2.0)
    by_hand = load_trace(trace).limit(20).scaled(2.0)
    assert spec.load() == by_hand
    flags = {"seed": 0, "requests": None, "rate": None, "limit": 20, "rate_scale": 2.0}
    assert load_workload(trace, **flags) == by_hand
    assert workload_spec(trace, **flags) == spec
    assert WorkloadSpec(trace=trace) == WorkloadSpec(trace=str(trace))  # type: ignore[arg-type]


def test_longer_answers_keep_arrivals_and_prompts() -> None:
    base = WorkloadSpec(seed=2, requests=80)
    longer = base.replace(output_scale=3.0).load()
    plain = base.load()
    np.testing.assert_array_equal(longer.arrival_s, plain.arrival_s)
    np.testing.assert_array_equal(longer.prompt_tokens, plain.prompt_tokens)
    np.testing.assert_array_equal(longer.output_tokens, np.maximum(np.rint(plain.output_tokens * 3.0), 1))
    assert longer.notes[-1] == "output tokens multiplied by 3"


def test_the_command_line_run_is_the_spec_s() -> None:
    run = build_run(
        trace=None,
        device=FASTER,
        cloud=DEFAULT_CLOUD,
        deployment="disaggregated",
        replicas=None,
        prefill_replicas=2,
        decode_replicas=None,
        network="5g",
        rate_scale=1.5,
        limit=50,
        seed=7,
        requests=100,
        rate=None,
        ttft_slo=1.0,
        max_tpot=0.05,
        oversize="fail",
    )
    assert run.scenario == ScenarioSpec(device=FASTER, network="5g", prefill_replicas=2).build()
    assert run.workload == WorkloadSpec(seed=7, requests=100, limit=50, rate_scale=1.5).load()


def test_bad_specs_name_the_fix(trace: Path) -> None:
    with pytest.raises(InvalidInputError, match="synthetic = 'chat' is unknown"):
        WorkloadSpec(synthetic="chat")
    with pytest.raises(InvalidInputError, match="pass one of them"):
        WorkloadSpec(trace=str(trace), synthetic="multi-turn")
    for name in ("output_scale", "rate_scale"):
        with pytest.raises(InvalidInputError, match=name):
            WorkloadSpec(**{name: 0.0})
    with pytest.raises(InvalidInputError, match="rtt_s"):
        ScenarioSpec(rtt_s=-1.0)
    with pytest.raises(ProfileError, match="unknown device profile"):
        ScenarioSpec(device="no-such-phone").build()
    with pytest.raises(InvalidInputError, match="--deployment"):
        ScenarioSpec(deployment="sideways").build()
    with pytest.raises(InvalidInputError, match="do not apply to --trace"):
        workload_spec(trace, seed=0, requests=10, rate=None, limit=None, rate_scale=1.0)


def test_each_spec_lists_the_files_it_reads(tmp_path: Path) -> None:
    """The one list a command compares its outputs with: the trace, profile files whatever their names,
    and the files named in policy settings (never a shipped name)."""
    assert WorkloadSpec().inputs() == {}
    assert WorkloadSpec(trace=tmp_path / "t.csv").inputs() == {"--trace": str(tmp_path / "t.csv")}
    assert ScenarioSpec().inputs() == {}
    spec = ScenarioSpec(device="r/phone.profile", cloud="gpu.TOML")
    assert spec.inputs() == {"--device": "r/phone.profile", "--cloud": "gpu.TOML"}
    specs = "cloud-only,pd-device:refine_ratio=auto,quality=r/q.curve,pd-device:quality=smollm2-135m"
    assert policy_inputs(specs) == {
        "quality in --policies pd-device:refine_ratio=auto,quality=r/q.curve": "r/q.curve"
    }
    assert policy_inputs(["pd-device:k=8:quality=q.toml"], "--policy") == {
        "quality in --policy pd-device:k=8:quality=q.toml": "q.toml"
    }
    assert named_input("--quality", "smollm2-135m") == {}
    assert named_input("--quality", None) == {}
    assert named_input("--quality", tmp_path / "q") == {"--quality": str(tmp_path / "q")}


def test_the_command_line_run_spec_lists_its_inputs_before_reading_them(tmp_path: Path) -> None:
    flags = {
        "device": str(tmp_path / "missing.profile"),
        "cloud": DEFAULT_CLOUD,
        "deployment": "disaggregated",
        "replicas": None,
        "prefill_replicas": None,
        "decode_replicas": None,
        "network": "wifi",
        "rate_scale": 1.0,
        "limit": None,
        "seed": 0,
        "requests": None,
        "rate": None,
        "ttft_slo": 1.0,
        "max_tpot": 0.05,
        "oversize": "fail",
    }
    spec = run_spec(trace=tmp_path / "t.csv", **flags)
    assert spec.inputs() == {
        "--trace": str(tmp_path / "t.csv"),
        "--device": str(tmp_path / "missing.profile"),
    }
    with pytest.raises(InvalidInputError, match="--multi-turn"):
        run_spec(trace=tmp_path / "t.csv", multi_turn=True, **flags)

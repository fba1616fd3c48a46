"""The ``pdcore`` command line: one end-to-end run per command on the embedded default, and bad input."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pdcore.cli import DEFAULT_POLICIES, app
from pdcore.policies import POLICIES

runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def test_compare_writes_table_json_and_csv(tmp_path: Path) -> None:
    out_json, out_csv = tmp_path / "report.json", tmp_path / "report.csv"
    code, output = run("compare", "--limit", "60", "--json", str(out_json), "--csv", str(out_csv))
    assert code == 0, output
    for name in DEFAULT_POLICIES:
        assert name in output
    report = json.loads(out_json.read_text())
    assert report["schema_version"] == 1
    assert report["workload"]["requests"] == 60
    assert report["workload"]["name"] == "synthetic-azure-conv"
    assert list(report["policies"]) == sorted(DEFAULT_POLICIES)
    for policy in report["policies"].values():
        assert {"p50", "p90", "p99"} <= set(policy["ttft_s"])
        assert "mean" in policy["tpot_s"]
        assert {"p50", "p99"} <= set(policy["max_gap_s"])
        assert "p99" in policy["handoff_stall_s"]
        assert "mean" in policy["qoe"]
        for key in ("cloud_gpu_s_per_request", "cloud_decode_tokens_per_request", "slo_attainment"):
            assert key in policy
        assert "capacity_rps" not in policy
    with out_csv.open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["policy"] for row in rows] == list(DEFAULT_POLICIES)
    assert float(rows[2]["ttft_s.p50"]) == pytest.approx(report["policies"]["pd-device"]["ttft_s"]["p50"])


def test_compare_is_byte_identical_for_the_same_seed(tmp_path: Path) -> None:
    paths = [tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.json"]
    for path, seed in zip(paths, ("3", "3", "4"), strict=True):
        code, output = run("compare", "--limit", "80", "--seed", seed, "--json", str(path))
        assert code == 0, output
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_bytes() != paths[2].read_bytes()


def test_compare_with_capacity(tmp_path: Path) -> None:
    out = tmp_path / "capacity.json"
    code, output = run(
        "compare",
        "--policies",
        "cloud-only,pd-device,device-only",
        "--limit",
        "300",
        "--capacity",
        "--capacity-window",
        "300",
        "--json",
        str(out),
    )
    assert code == 0, output
    assert "vs cloud-only" in output  # the capacity table, after the policies
    policies = json.loads(out.read_text())["policies"]
    for policy in policies.values():
        assert "capacity_rps" in policy
        assert "decode_capacity_rps" in policy
        assert policy["capacity"]["window"] == 300
    assert policies["pd-device"]["capacity_rps"] > policies["cloud-only"]["capacity_rps"]
    assert policies["device-only"]["decode_capacity"]["bound"] == "above_max"


def test_compare_takes_comma_separated_policy_settings() -> None:
    code, output = run(
        "compare",
        "--policies",
        "cloud-only,pd-device:refine_ratio=auto,quality_budget=0.05,quality_bound=mean",
        "--limit",
        "40",
    )
    assert code == 0, output
    assert "cloud-only" in output
    assert "quality_budget=0.05" in output


def test_compare_policy_variants_and_disaggregated_cloud() -> None:
    code, output = run(
        "compare",
        "--policies",
        "pd-device,pd-device:k=4",
        "--deployment",
        "disaggregated",
        "--prefill-replicas",
        "2",
        "--limit",
        "40",
    )
    assert code == 0, output
    assert "pd-device:k=4" in output
    assert "1P" not in output
    assert "2P+1D" in output


def test_synthetic_workload_options(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    code, output = run(
        "compare", "--requests", "50", "--rate", "20", "--policies", "race", "--json", str(out)
    )
    assert code == 0, output
    workload = json.loads(out.read_text())["workload"]
    assert workload["requests"] == 50
    assert "rate_rps=20" in workload["source"]


def test_simulate_writes_one_row_per_request(tmp_path: Path) -> None:
    out = tmp_path / "requests.csv"
    code, output = run("simulate", "--policy", "pd-device", "--limit", "40", "--out", str(out))
    assert code == 0, output
    assert "pd-device" in output
    with out.open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 40
    assert {row["mode"] for row in rows} <= {"pd", "device"}
    assert all(int(row["displayed_tokens"]) == int(row["output_tokens"]) for row in rows)


def test_simulate_parquet_needs_pyarrow(tmp_path: Path) -> None:
    out = tmp_path / "requests.parquet"
    code, output = run("simulate", "--policy", "race", "--limit", "20", "--out", str(out))
    if importlib.util.find_spec("pyarrow") is None:
        assert code == 2
        assert "pyarrow" in output
        assert "Traceback" not in output
    else:
        assert code == 0, output
        assert out.stat().st_size > 0


def test_policies_lists_every_registered_policy_with_its_settings() -> None:
    code, output = run("policies")
    assert code == 0, output
    for name in POLICIES:
        assert name in output
    for setting in ("budget=0.5", "quantile=0.5", "gamma=4", "alpha=0.7"):
        assert setting in output


def test_profiles_list_and_show() -> None:
    code, output = run("profiles", "list")
    assert code == 0, output
    for name in ("llama32-3b-w4a16-8elite-genie", "smollm2-135m-q4-cpu2", "llama3-8b-a100", "wifi"):
        assert name in output
    for name, marker in (("smollm2-135m-q4-cpu2", "device"), ("llama3-8b-a100", "cloud"), ("lte", "network")):
        code, output = run("profiles", "show", name)
        assert code == 0, output
        assert marker in output


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (("compare", "--trace", "missing/trace.csv", "--limit", "5"), ["missing/trace.csv", "fix"]),
        (
            ("compare", "--device-profile", "no-such-phone", "--limit", "5"),
            ["no-such-phone", "fix", "--device"],
        ),
        (("simulate", "--cloud-profile", "no-such-gpu", "--limit", "5"), ["no-such-gpu", "fix"]),
        (("compare", "--network", "dialup", "--limit", "5"), ["dialup", "fix"]),
        (("compare", "--policies", "cloud-only,magic", "--limit", "5"), ["magic", "fix"]),
        (("compare", "--deployment", "hybrid", "--limit", "5"), ["hybrid", "fix"]),
        (("compare", "--rate-scale", "0", "--limit", "5"), ["--rate-scale", "0"]),
        (("simulate", "--out", "requests.txt", "--limit", "5"), ["requests.txt", ".parquet"]),
        (("profiles", "show", "no-such-profile"), ["no-such-profile", "fix", "pdcore profiles list"]),
        (("compare", "--trace", "t.csv", "--rate", "3"), ["--rate", "--trace", "fix"]),
        (("compare", "--json", "no/such/dir/r.json", "--limit", "5"), ["no/such/dir", "fix"]),
    ],
)
def test_bad_input_exits_2_with_one_line_naming_input_and_fix(
    args: tuple[str, ...], names: list[str]
) -> None:
    code, output = run(*args)
    assert code == 2, output
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert lines[0].startswith("error:")
    for name in names:
        assert name in output


def test_malformed_trace_row_is_reported(tmp_path: Path) -> None:
    trace = tmp_path / "bad.csv"
    trace.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2023-11-16 18:15:46.6805900,100,20\n"
        "2023-11-16 18:15:47.0000000,lots,20\n"
    )
    code, output = run("compare", "--trace", str(trace))
    assert code == 2
    assert "line 3" in output
    assert "ContextTokens" in output


def test_max_tpot_sets_the_objective_and_the_old_flag_is_a_hidden_alias(tmp_path: Path) -> None:
    documents = []
    for flags in (["--max-tpot", "0.04"], ["--tpot-slo", "0.04"]):
        out = tmp_path / f"{flags[0][2:]}.json"
        code, output = run("simulate", "--limit", "20", *flags, "--json", str(out))
        assert code == 0, output
        documents.append(json.loads(out.read_text()))
    assert documents[0]["config"]["slo"] == {"ttft_s": 1.0, "max_tpot_s": 0.04}
    assert documents[0]["policies"] == documents[1]["policies"]
    _, output = run("simulate", "--limit", "20", "--tpot-slo", "0.04")
    assert "--tpot-slo is now called --max-tpot" in output
    _, help_text = run("compare", "--help")
    assert "--max-tpot" in help_text
    assert "--tpot-slo" not in help_text
    code, output = run("simulate", "--limit", "20", "--max-tpot", "0.04", "--tpot-slo", "0.05")
    assert code == 2
    assert "fix: pass only --max-tpot" in output


def test_compare_on_the_multi_turn_default_reports_per_turn(tmp_path: Path) -> None:
    out_json = tmp_path / "turns.json"
    code, output = run(
        "compare",
        "--multi-turn",
        "--requests",
        "600",
        "--policies",
        "device-only,cloud-only,pd-device",
        "--json",
        str(out_json),
    )
    assert code == 0, output
    assert "by turn" in output
    report = json.loads(out_json.read_text())
    assert report["workload"]["name"] == "synthetic-multi-turn"
    assert report["workload"]["conversations"]["follow_ups"] > 0
    for name, policy in report["policies"].items():
        turns = policy["per_turn"]
        assert {"1", "2"} <= set(turns), name
        assert sum(row["requests"] for row in turns.values()) == 600
        assert {"p50", "p90"} <= set(turns["1"]["ttft_s"])
        assert "max" in turns["1"]["max_gap_s"]
    # follow-ups find their context cached: on the device for device-only, in the cloud for cloud-only
    assert report["policies"]["device-only"]["per_turn"]["2"]["device_cached_tokens_per_request"] > 0
    assert report["policies"]["cloud-only"]["per_turn"]["2"]["cloud_cached_tokens_per_request"] > 0
    assert report["policies"]["device-only"]["per_turn"]["1"]["device_cached_tokens_per_request"] == 0


def test_single_turn_reports_have_no_per_turn_figures(tmp_path: Path) -> None:
    out_json = tmp_path / "plain.json"
    code, output = run("compare", "--limit", "40", "--policies", "pd-device", "--json", str(out_json))
    assert code == 0, output
    assert "by turn" not in output
    report = json.loads(out_json.read_text())
    assert "per_turn" not in report["policies"]["pd-device"]
    assert "conversations" not in report["workload"]


def test_multi_turn_does_not_apply_to_a_trace(tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    trace.write_text('{"timestamp": 0, "input_length": 10, "output_length": 2}\n', encoding="utf-8")
    code, output = run("compare", "--multi-turn", "--trace", str(trace))
    assert code != 0
    assert "--multi-turn" in output
    assert "fix:" in output

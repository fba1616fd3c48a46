"""Sizing over a fleet (`pdcore.sim.fleet_sizing`) and ``pdcore size --fleet``."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from pdcore import InvalidInputError
from pdcore.cli import app
from pdcore.fleet import load_fleet
from pdcore.profiles import load_cloud_profile, load_device_profile, network_preset
from pdcore.sim import Scenario
from pdcore.sim.fleet_sizing import (
    NO_CAPABLE_CLASS,
    capable_mix,
    parse_capable_shares,
    size_fleet_sweep,
)
from pdcore.traces import synthetic_default

runner = CliRunner()
# sixteen times the conversation trace's rate: several replicas in each pool, so offloaded decode shows
WORKLOAD = synthetic_default(seed=0, n_requests=1000, rate_rps=88.0)
SHARES = (0.0, 0.25, 0.5, 0.75, 1.0)
# at the default target (0.9) about 10% of pd-device's requests on a capable phone miss the largest gap at
# the hand-off however large the cloud, so its attainment sits at the target and the GPUs found at 100%
# can exceed those at 75% (docs/sizing.md); at 0.8 the cloud is what decides, and the sweep is monotone
TARGET = 0.8


def scenario() -> Scenario:
    return Scenario(
        cloud=load_cloud_profile("llama3-8b-a100"),
        device=load_device_profile("llama32-3b-w4a16-8elite-genie"),
        network=network_preset("wifi"),
    )


@pytest.fixture(scope="module")
def sweep_threads() -> object:
    fleet = load_fleet("phones-2025")
    return size_fleet_sweep(WORKLOAD, scenario(), fleet, ["cloud-only", "pd-device"], SHARES, target=TARGET)


def test_the_mix_scales_the_capable_classes_to_the_share_by_hand() -> None:
    fleet = load_fleet("phones-2025")  # capable 0.2805 + 0.0495 = 0.33; others 0.5695 + 0.1005 = 0.67
    mix = capable_mix(fleet, 0.5)
    shares = {c.name: c.share for c in mix.classes}
    assert shares["capable-wifi"] == pytest.approx(0.2805 * 0.5 / 0.33)
    assert shares["capable-5g"] == pytest.approx(0.0495 * 0.5 / 0.33)
    assert shares["none-wifi"] == pytest.approx(0.5695 * 0.5 / 0.67)
    assert shares["none-lte"] == pytest.approx(0.1005 * 0.5 / 0.67)
    assert mix.capable_share == pytest.approx(0.5)
    assert math.fsum(shares.values()) == pytest.approx(1.0, abs=1e-12)
    assert capable_mix(fleet, 0.0).capable_share == 0.0
    assert capable_mix(fleet, 1.0).capable_share == pytest.approx(1.0)


def test_the_capable_requests_of_a_smaller_share_stay_capable_at_a_larger_one() -> None:
    fleet = load_fleet("phones-laptops-2028")  # capable classes are not all first in the file
    capable_at = []
    for share in SHARES:
        mix = capable_mix(fleet, share)
        drawn = mix.draw(2000, seed=3)
        capable_at.append(np.array([mix.classes[i].capable for i in drawn]))
    for smaller, larger in itertools.pairwise(capable_at):
        assert np.all(larger[smaller])
    assert capable_at[2].mean() == pytest.approx(0.5, abs=0.05)


def test_a_fleet_with_no_class_without_a_device_gets_one(tmp_path: Path) -> None:
    path = tmp_path / "all.toml"
    path.write_text(
        'name = "all"\ndescription = "all capable"\n[[class]]\nname = "a"\nshare = 1.0\n'
        'device = "llama32-3b-w4a16-8elite-genie"\nnetwork = "5g"\n'
    )
    mix = capable_mix(load_fleet(path), 0.25)
    added = mix.classes[-1]
    assert (added.name, added.capable, added.network.name) == (NO_CAPABLE_CLASS, False, "5g")
    assert added.share == pytest.approx(0.75)


def test_a_fleet_with_no_capable_class_has_only_the_mix_at_zero(tmp_path: Path) -> None:
    path = tmp_path / "none.toml"
    path.write_text(
        'name = "none"\ndescription = "none capable"\n[[class]]\nname = "a"\nshare = 1.0\n'
        'device = "none"\nnetwork = "wifi"\n'
    )
    fleet = load_fleet(path)
    assert capable_mix(fleet, 0.0).capable_share == 0.0
    with pytest.raises(InvalidInputError, match="no class with a capable device"):
        capable_mix(fleet, 0.25)


@pytest.mark.parametrize("given", ["-1", "101", "nan", "", "5,,6", "x", "inf"])
def test_bad_capable_shares_are_refused(given: str) -> None:
    with pytest.raises(InvalidInputError, match="--capable-shares"):
        parse_capable_shares(given)


def test_capable_shares_are_percent_each_once() -> None:
    assert parse_capable_shares("0, 50,100,50") == (0.0, 0.5, 1.0)


def test_at_zero_percent_pd_device_needs_exactly_the_gpus_of_cloud_only(sweep_threads: object) -> None:
    zero = sweep_threads.mixes[1]  # type: ignore[attr-defined]
    assert zero.label == "0%"
    cloud_only, pd_device = zero.planned["cloud-only"].sizing, zero.planned["pd-device"].sizing
    assert pd_device.gpus == cloud_only.gpus
    assert pd_device.describe() | {"policy": ""} == cloud_only.describe() | {"policy": ""}
    assert zero.gpus_saved() == {"pd-device": 0}


def test_pd_device_needs_no_more_gpus_as_the_capable_share_rises(sweep_threads: object) -> None:
    gpus = [mix.planned["pd-device"].sizing.gpus for mix in sweep_threads.mixes[1:]]  # type: ignore[attr-defined]
    assert all(g is not None for g in gpus)
    assert gpus == sorted(gpus, reverse=True)
    assert gpus[-1] < gpus[0]  # offloading decode saves GPUs on this workload


def test_the_sweep_is_the_same_on_threads_and_serial(sweep_threads: object) -> None:
    fleet = load_fleet("phones-2025")
    serial = size_fleet_sweep(
        WORKLOAD, scenario(), fleet, ["cloud-only", "pd-device"], SHARES, executor="serial", target=TARGET
    )
    threads = sweep_threads.describe()  # type: ignore[attr-defined]
    got = serial.describe()
    for record in (threads, got):
        record.pop("wall_s")
        record.pop("executor")
    assert got == threads


def test_size_fleet_prints_the_sweep_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "size.json"
    args = ["size", "--fleet", "phones-2025", "--requests", "300", "--rate", "22"]
    result = runner.invoke(app, [*args, "--capable-shares", "0,100", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "pd-device GPUs saved" in result.stdout
    assert "as given" in result.stdout
    document = json.loads(out.read_text())
    mixes = document["fleet_sizing"]["mixes"]
    assert [m["label"] for m in mixes] == ["as given", "0%", "100%"]
    assert document["capable_shares"] == [0.0, 1.0]
    zero = mixes[1]["sizing"]
    assert zero["pd-device"]["gpus"] == zero["cloud-only"]["gpus"]
    assert zero["cloud-only"]["usd_per_month"] is not None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--fleet", "phones-2025", "--capable-shares", "-5"], "--capable-shares"),
        (["--fleet", "phones-2025", "--capable-shares", "150"], "--capable-shares"),
        (["--fleet", "phones-2025", "--capable-shares", "nan"], "--capable-shares"),
        (["--fleet", "phones-2025", "--capable-shares", ""], "--capable-shares"),
        (["--capable-shares", "50"], "add --fleet"),
        (["--fleet", "phones-2025", "--model-family", "llama3-70b"], "--fleet sizes one cloud"),
        (["--fleet", "phones-2025", "--executor", "gpu"], "--executor"),
        (["--fleet", "no-such-fleet"], "unknown fleet"),
    ],
)
def test_bad_fleet_sizing_flags_are_one_clear_error(extra: list[str], message: str) -> None:
    result = runner.invoke(app, ["size", "--requests", "50", *extra])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_sizing_over_one_class_of_the_run_device_and_network_is_the_plain_sizing(tmp_path: Path) -> None:
    from pdcore.policies import make_policy
    from pdcore.sim.sizing import size_cloud

    path = tmp_path / "one.toml"
    path.write_text(
        'name = "one"\ndescription = "the run device"\n[[class]]\nname = "a"\nshare = 1.0\n'
        'device = "llama32-3b-w4a16-8elite-genie"\nnetwork = "lte"\n'
    )
    plain = scenario().replace(network=network_preset("lte"))
    over_fleet = plain.replace(fleet=load_fleet(path))
    for policy in ("cloud-only", "pd-device"):
        alone = size_cloud(WORKLOAD, make_policy(policy), plain)
        fleet = size_cloud(WORKLOAD, make_policy(policy), over_fleet)
        assert fleet.describe() == alone.describe()


def test_fleet_report_writes_the_class_table_and_the_sweep_figure(tmp_path: Path) -> None:
    compare_json, size_json = tmp_path / "compare.json", tmp_path / "size.json"
    base = ["--fleet", "phones-2025", "--requests", "200", "--rate", "22"]
    assert runner.invoke(app, ["compare", *base, "--json", str(compare_json)]).exit_code == 0
    sized = runner.invoke(app, ["size", *base, "--capable-shares", "0,100", "--json", str(size_json)])
    assert sized.exit_code == 0, sized.output
    out = tmp_path / "report"
    args = [
        "--compare-json",
        str(compare_json),
        "--size-json",
        str(size_json),
        "--size-command",
        "pdcore size X",
    ]
    result = runner.invoke(app, ["fleet-report", "--out", str(out), *args])
    assert result.exit_code == 0, result.output
    text = (out / "fleet.md").read_text()
    assert "| pd-device | capable-wifi |" in text
    assert "`pdcore size X`" in text
    assert (out / "fleet_sweep.png").stat().st_size > 0
    page = (out / "fleet.html").read_text()
    assert 'id="fig-fleet-sweep"' in page
    assert '"fig-fleet-sweep":{"data"' in page
    assert "pd-device" in page
    assert "fleet.html" in result.output
    bad = runner.invoke(app, ["fleet-report", "--out", str(out), "--size-json", str(compare_json)])
    assert bad.exit_code == 2
    assert "has no 'fleet_sizing'" in bad.output


def test_fleet_report_without_plotly_writes_the_rest_and_says_how_to_get_the_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    from pdcore.cli import report_files

    size_json = tmp_path / "size.json"
    base = ["--fleet", "phones-2025", "--requests", "100", "--capable-shares", "0,100"]
    assert runner.invoke(app, ["size", *base, "--json", str(size_json)]).exit_code == 0
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any, **kwargs: Any) -> Any:
        return None if name == "plotly" else real(name, *args, **kwargs)

    monkeypatch.setattr(report_files.importlib.util, "find_spec", find_spec)
    out = tmp_path / "report"
    result = runner.invoke(app, ["fleet-report", "--out", str(out), "--size-json", str(size_json)])
    assert result.exit_code == 0, result.output
    assert "not written: fleet.html (the interactive figure) needs the 'plot' extra" in result.output
    assert "pip install 'pdcore[plot]'" in result.output
    assert (out / "fleet_sweep.png").exists()
    assert not (out / "fleet.html").exists()

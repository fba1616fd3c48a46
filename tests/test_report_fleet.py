"""``pdcore reproduce --fleet``: the Fleet section (results by device class, GPUs against the capable share)
in report.md, results.json, report.html and its PNG, the commands that make it, and a bad ``--fleet``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pdcore.report import Reproduction, reproduce
from report_cli import cli

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def with_fleet(tmp_path_factory: pytest.TempPathFactory) -> Reproduction:
    out = tmp_path_factory.mktemp("fleet") / "report"
    return reproduce(out, quick=True, executor="serial", quality=None, fleet="phones-2025")


def test_the_fleet_section_is_in_every_output(with_fleet: Reproduction) -> None:
    document = json.loads(with_fleet.results.read_text())
    section = document["fleet"]
    assert document["config"]["fleet"] == "phones-2025"
    assert section["fleet"]["name"] == "phones-2025"
    assert section["window"] == 300
    names = [record["name"] for record in section["policies"]["pd-device"]["by_class"]]
    assert names == [c["name"] for c in section["fleet"]["classes"]]
    mixes = section["fleet_sizing"]["mixes"]
    assert [mix["label"] for mix in mixes] == ["as given", "0%", "25%", "50%", "75%", "100%"]
    zero = mixes[1]["sizing"]
    assert zero["pd-device"]["gpus"] == zero["cloud-only"]["gpus"]
    assert "wall_s" not in section["fleet_sizing"]
    text = with_fleet.report.read_text()
    assert "## Fleet" in text
    assert "| pd-device | capable-wifi |" in text
    assert section["commands"]["compare"] in text
    assert section["commands"]["size"].startswith(
        "pdcore size --fleet phones-2025 --requests 400 --limit 300"
    )
    assert "![GPUs against the capable share](fleet_sweep.png)" in text
    page = with_fleet.html.read_text()
    assert 'id="fig-fleet-sweep"' in page
    assert '"fig-fleet-sweep":{"data"' in page


def test_the_sweep_figure_is_written(with_fleet: Reproduction) -> None:
    figure = with_fleet.report.parent / "fleet_sweep.png"
    assert figure in with_fleet.plots
    assert figure.read_bytes().startswith(PNG_SIGNATURE)


def test_the_fleet_section_reproduces_its_size_command(with_fleet: Reproduction, tmp_path: Path) -> None:
    from pdcore.cli import app

    section = json.loads(with_fleet.results.read_text())["fleet"]
    size_json = tmp_path / "S.json"
    words = section["commands"]["size"].split()
    assert words[:2] == ["pdcore", "size"]
    args = [*words[1:-1], str(size_json)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    sized = json.loads(size_json.read_text())["fleet_sizing"]
    assert [m["sizing"] for m in sized["mixes"]] == [m["sizing"] for m in section["fleet_sizing"]["mixes"]]


@pytest.mark.parametrize(
    ("fleet", "message"),
    [("no-such-fleet", "unknown fleet"), ("broken.toml", "broken.toml")],
)
def test_a_bad_fleet_is_the_loaders_error_and_exit_2(tmp_path: Path, fleet: str, message: str) -> None:
    (tmp_path / "broken.toml").write_text('name = "x"\n[[class]]\nshare = "a lot"\n', encoding="utf-8")
    target = fleet if fleet == "no-such-fleet" else str(tmp_path / fleet)
    out = tmp_path / "report"
    result = CliRunner().invoke(cli(), ["reproduce", "--out", str(out), "--quick", "--fleet", target])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not out.exists()

"""``pdcore reproduce``'s prompt-refinement section, on synthetic quality curves written to a temporary file.

The curves are built here with `QualityCurve` and `QualityPoint`, so nothing depends on the shipped
measurement (which a larger evaluation will replace).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pdcore.refine import QualityCurve, QualityPoint
from pdcore.report import refinement
from report_cli import cli

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
COMMAND = "pdcore refine-eval --items 9 --seed 3 --ratios 1,0.6,0.5,0.3"


def point(
    ratio: float,
    drop: float,
    ci95: tuple[float, float],
    *,
    weight: float = 2.0,
    fact_kept: float = 1.0,
) -> QualityPoint:
    """A point of a curve whose F1 at r = 1 is 0.6 and whose prefill time falls a little faster than r."""
    base_s = 2.0
    seconds = base_s * ratio**1.1
    return QualityPoint(
        ratio=ratio,
        question_weight=weight,
        exact_match=0.55 - drop,
        f1=0.6 - drop,
        drop=drop,
        drop_ci95=ci95,
        fact_kept=fact_kept,
        kept_ratio=ratio * 0.98,
        device_token_ratio=ratio,
        prefill_s=seconds,
        prefill_tokens=round(1000 * ratio),
        prefill_speedup=base_s / seconds,
        prefill_runs_s=(seconds * 0.95, seconds, seconds * 1.1),
        f1_by_family={"passkey": 0.6 - drop, "town": 0.6 - drop},
    )


def synthetic(
    drop: float,
    ci95: tuple[float, float],
    *,
    ratios: tuple[float, ...] = (1.0, 0.75, 0.5, 0.3),
    ablation: tuple[QualityPoint, ...] | None = None,
    name: str = "synthetic",
) -> QualityCurve:
    """A curve with ``drop`` and its interval at every refined ratio."""
    points = tuple(
        point(r, 0.0, (0.0, 0.0)) if r == 1.0 else point(r, drop, ci95) for r in sorted(ratios, reverse=True)
    )
    if ablation is None:
        ablation = (point(0.5, 0.3, (0.2, 0.4), weight=0.0, fact_kept=0.4),)
    return QualityCurve(
        name=name,
        model="a synthetic model",
        points=points,
        ablation=ablation,
        evaluation={"seed": 3, "items": 9, "machine": "test machine, 1 CPU", "command": COMMAND},
    )


def write(path: Path, curve: QualityCurve) -> Path:
    path.write_text(curve.to_toml(), encoding="utf-8")
    return path


def entry(tmp_path: Path, curve: QualityCurve, ratio: float = 0.5) -> dict[str, object]:
    loaded = refinement.load(write(tmp_path / "curve.toml", curve))
    assert loaded is not None
    return refinement.section(loaded, ratio=ratio)


@pytest.fixture(scope="module")
def with_curve(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    root = tmp_path_factory.mktemp("refinement")
    source = write(root / "missed.toml", synthetic(0.05, (0.03, 0.07)))
    out = root / "out"
    result = CliRunner().invoke(
        cli(),
        ["reproduce", "--out", str(out), "--quick", "--executor", "serial", "--quality", str(source)],
    )
    assert result.exit_code == 0, result.output
    return source, out, result.output


def test_report_has_the_refinement_section(with_curve: tuple[Path, Path, str]) -> None:
    source, out, output = with_curve
    text = (out / "report.md").read_text(encoding="utf-8")
    section = text[text.index("## Prompt refinement") :]
    assert "| r | relevance weight | EM | F1 |" in section
    assert "| 0.5 | 0 (ablation) | 25.0 | 30.0 | +30.0 [+20.0, +40.0] | 40% |" in section
    assert "| 0.5 | 2 | 50.0 | 55.0 | +5.0 [+3.0, +7.0] |" in section
    assert "![prompt refinement](refinement.png)" in section
    assert "2-point target is **missed**" in section
    assert "surprisal alone (relevance weight 0)" in section
    assert f"```\n{COMMAND}\n```" in section
    assert "9 items" in section
    assert "test machine, 1 CPU" in section
    assert "seed 3" in section
    assert "refinement at r = 0.5 (synthetic)" in output
    assert "target missed" in output
    assert (out / "quality-synthetic.toml").read_bytes() == source.read_bytes()
    data = (out / "refinement.png").read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 10_000


def test_results_json_has_the_curve(with_curve: tuple[Path, Path, str]) -> None:
    source, out, _ = with_curve
    document = json.loads((out / "results.json").read_text(encoding="utf-8"))
    section = document["refinement"]
    assert section["source"] == str(source)
    assert section["name"] == "synthetic"
    assert section["file"] == "quality-synthetic.toml"
    assert [p["ratio"] for p in section["points"]] == [1.0, 0.75, 0.5, 0.3]
    assert [p["question_weight"] for p in section["ablation"]] == [0.0]
    assert section["points"][2]["drop_ci95"] == [0.03, 0.07]
    assert section["evaluation"]["command"] == COMMAND
    assert section["headline"]["ratio"] == 0.5
    assert section["headline"]["verdict"] == "missed"
    assert document["config"]["quality_curve"] == str(source)


def test_quality_none_leaves_the_section_out(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli(), ["reproduce", "--out", str(tmp_path), "--quick", "--executor", "serial", "--quality", "none"]
    )
    assert result.exit_code == 0, result.output
    assert "## Prompt refinement" not in (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "refinement" not in json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert not (tmp_path / "refinement.png").exists()
    assert not list(tmp_path.glob("quality-*.toml"))
    assert "refinement at" not in result.output


@pytest.mark.parametrize(
    ("drop", "ci95", "verdict", "words"),
    [
        (0.05, (0.03, 0.07), "missed", "**missed**: the whole interval lies beyond 2 points"),
        (0.005, (-0.01, 0.015), "met", "**met**: the whole interval lies within 2 points"),
        (0.01, (-0.05, 0.08), "not resolved", "**not resolved**: the interval straddles 2 points"),
        (0.01, (math.nan, math.nan), "met", "**met** on the point estimate alone"),
    ],
)
def test_sentences_follow_the_data(
    tmp_path: Path, drop: float, ci95: tuple[float, float], verdict: str, words: str
) -> None:
    section = entry(tmp_path, synthetic(drop, ci95))
    head = section["headline"]
    assert isinstance(head, dict)
    assert head["verdict"] == verdict
    text = " ".join(refinement.sentences(section))
    assert words in text
    assert f"a drop of {drop * 100:+.1f} points" in text
    speedup = 1.0 / 0.5**1.1
    assert f"a {speedup:.2f}x speed-up" in text
    assert "time proportional to r would give 2.00x" in text
    assert f"{verdict}" in refinement.summary_line(section)


def test_headline_is_the_point_nearest_the_ratio(tmp_path: Path) -> None:
    section = entry(tmp_path, synthetic(0.01, (0.0, 0.015), ratios=(1.0, 0.6, 0.3)))
    text = " ".join(refinement.sentences(section))
    assert text.startswith("At r = 0.6 (the measured ratio nearest 0.5)")
    assert "with surprisal alone (relevance weight 0) at r = 0.5" in text


@pytest.mark.parametrize(
    ("ablation", "words"),
    [
        ((point(0.5, 0.3, (0.2, 0.4), weight=0.0),), "clearly worse than the main curve"),
        ((point(0.5, 0.06, (0.0, 0.12), weight=0.0),), "worse than the main curve, but the two intervals"),
        ((point(0.5, 0.0, (-0.02, 0.02), weight=1.0),), "relevance weight 1 at r = 0.5"),
        ((), "no ablation"),
    ],
)
def test_ablation_sentence_follows_the_data(
    tmp_path: Path, ablation: tuple[QualityPoint, ...], words: str
) -> None:
    section = entry(tmp_path, synthetic(0.02, (0.01, 0.05), ablation=ablation))
    assert words in " ".join(refinement.sentences(section))


def test_figure_without_intervals(tmp_path: Path) -> None:
    from pdcore.report.plots import refinement as figure

    section = entry(tmp_path, synthetic(0.01, (math.nan, math.nan)))
    data = figure(section, tmp_path / "refinement.png").read_bytes()
    assert data.startswith(PNG_SIGNATURE)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("name = \n[[point]\n", "invalid TOML"),
        ('name = "x"\n[[point]]\nratio = 0.5\n', "[[point]] entry 0 has missing key"),
        ('name = "x"\n', "no [[point]] entries"),
    ],
)
def test_malformed_curve_is_one_line_and_exit_2(tmp_path: Path, content: str, words: str) -> None:
    bad = tmp_path / "bad-curve.toml"
    bad.write_text(content, encoding="utf-8")
    result = CliRunner().invoke(cli(), ["reproduce", "--out", str(tmp_path / "out"), "--quality", str(bad)])
    assert result.exit_code == 2
    assert str(bad) in result.output
    assert words in result.output
    assert "fix:" in result.output
    assert not (tmp_path / "out").exists()


def test_missing_or_unknown_curve_is_reported(tmp_path: Path) -> None:
    missing = CliRunner().invoke(
        cli(), ["reproduce", "--out", str(tmp_path), "--quality", str(tmp_path / "nope.toml")]
    )
    assert missing.exit_code == 2
    assert "nope.toml" in missing.output
    assert "does not exist" in missing.output
    unknown = CliRunner().invoke(cli(), ["reproduce", "--out", str(tmp_path), "--quality", "no-such-model"])
    assert unknown.exit_code == 2
    assert "unknown quality curve 'no-such-model'" in unknown.output
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00name")
    unreadable = CliRunner().invoke(cli(), ["reproduce", "--out", str(tmp_path), "--quality", str(binary)])
    assert unreadable.exit_code == 2
    assert "binary.toml" in unreadable.output
    assert "cannot read" in unreadable.output

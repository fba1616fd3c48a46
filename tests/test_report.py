"""``pdcore reproduce``: one end-to-end quick run through the command line, checked against the API."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from pdcore.report import POLICIES, Reproduction, reproduce
from report_cli import cli

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def tiny_azure_trace(path: Path) -> Path:
    """An Azure-format conversation trace: 500 requests at about 5 per second."""
    rng = np.random.default_rng(11)
    start = datetime(2023, 11, 16, 18, 15, 46)
    offsets = np.cumsum(rng.exponential(0.2, size=500))
    prompts = np.clip(rng.lognormal(6.9, 0.8, size=500), 16, 4000).astype(int)
    outputs = np.clip(rng.lognormal(5.0, 0.9, size=500), 1, 600).astype(int)
    rows = ["TIMESTAMP,ContextTokens,GeneratedTokens"]
    for offset, prompt, output in zip(offsets, prompts, outputs, strict=True):
        stamp = (start + timedelta(seconds=float(offset))).strftime("%Y-%m-%d %H:%M:%S.%f")
        rows.append(f"{stamp}0,{prompt},{output}")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str, Reproduction]:
    root = tmp_path_factory.mktemp("reproduce")
    trace = tiny_azure_trace(root / "azure_tiny_conv.csv")
    by_cli = root / "cli"
    result = CliRunner().invoke(
        cli(),
        [
            "reproduce",
            "--out",
            str(by_cli),
            "--trace",
            str(trace),
            "--quick",
            "--workers",
            "2",
            *("--explore", "7", "--explore", "450"),
        ],
    )
    assert result.exit_code == 0, result.output
    by_api = root / "api"
    again = reproduce(by_api, [trace], quick=True, executor="serial", explore=[7, 450])
    return by_cli, by_api, result.output, again


def test_report_has_the_table_per_workload(runs: tuple[Path, Path, str, Reproduction]) -> None:
    out, _, output, _ = runs
    text = (out / "report.md").read_text(encoding="utf-8")
    assert "## Targets" in text
    assert "Checked on `azure_tiny_conv`" in text
    for workload in ("synthetic-azure-conv", "azure_tiny_conv"):
        assert f"## Workload `{workload}`" in text
    header = next(line for line in text.splitlines() if line.startswith("| policy | TTFT p50 | TTFT p99"))
    assert "TTFT cut vs device-only" in header
    assert "decode capacity vs cloud-only" in header
    for policy in POLICIES:
        assert text.count(f"| {policy} |") + text.count(f"| **{policy}** |") == 2
    assert "## Optimizer" in text
    # where the cloud decoded P/D-Device's tokens, and the largest gap without the bridge
    assert text.count("Where P/D-Device's cloud decoded its tokens (`--k-sites both`)") == 2
    assert "With the decode pool only (`--k-sites pool`) the largest-gap p99 is" in text
    assert "## Cloud sizing at the SLO" in text
    assert "![GPUs over request rate](sizing.png)" in text
    assert "## Latency, cost and energy" in text
    assert "![Latency, cost and energy](tradeoff.png)" in text
    assert "## Conversations" in text
    assert "![Conversations](conversations.png)" in text
    assert "| synthetic-multi-turn | 1 |" in text
    assert "| synthetic-multi-turn | 2 |" in text
    assert "targets on azure_tiny_conv" in output


def test_report_shows_the_shipped_refinement_curve(runs: tuple[Path, Path, str, Reproduction]) -> None:
    out, _, output, again = runs
    text = (out / "report.md").read_text(encoding="utf-8")
    assert "## Prompt refinement" in text
    assert "![prompt refinement](refinement.png)" in text
    assert "refinement at r = " in output
    document = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert document["refinement"]["source"] == "pdcore/refine/data/quality-smollm2-135m.toml"
    assert document["refinement"]["headline"]["verdict"] in {"met", "not resolved", "missed"}
    assert again.quality == again.report.parent / "quality-smollm2-135m.toml"
    shipped = resources.files("pdcore.refine").joinpath("data", "quality-smollm2-135m.toml")
    copied = out / "quality-smollm2-135m.toml"
    assert copied.read_text(encoding="utf-8") == shipped.read_text(encoding="utf-8")


def test_results_json_is_deterministic_and_complete(runs: tuple[Path, Path, str, Reproduction]) -> None:
    by_cli, by_api, _, _ = runs
    raw = (by_cli / "results.json").read_bytes()
    assert raw == (by_api / "results.json").read_bytes()
    document = json.loads(raw)
    assert document["config"]["quick"] is True
    assert list(document["workloads"]) == sorted(["azure_tiny_conv", "synthetic-azure-conv"])
    section = document["workloads"]["synthetic-azure-conv"]
    assert section["workload"]["requests"] == 400
    assert set(section["table"]) == set(POLICIES)
    pd = section["table"]["pd-device"]
    assert pd["ttft_cut_vs_device_only"]["p50"] > 0.5
    assert pd["decode_capacity_x"]["value"] > 1.0
    assert section["under_load"]["rate_scale"] > 1.0
    assert {row["max_tpot_s"] for row in section["slo_sweep"]} == {0.03, 0.05, 0.1}
    assert len(section["rtt_sweep"]) == 3
    assert section["timeline"]["pd-device"]["handoff_s"] is not None
    assert document["config"]["explore"] == [7, 450]
    targets = document["targets"]
    assert targets["workload"] == "azure_tiny_conv"
    assert targets["stand_in"] is False
    assert isinstance(targets["ttft_cut_vs_device_only"]["met"], bool)
    assert document["optimizer"]["k_star"]["llama32-3b-w4a16-8elite-genie"]


def test_plots_are_written(runs: tuple[Path, Path, str, Reproduction]) -> None:
    out, _, _, again = runs
    names = sorted(path.name for path in out.glob("*.png"))
    assert names == sorted(path.name for path in again.plots)
    expected = {"k_star.png", "refinement.png", "sizing.png", "tradeoff.png", "conversations.png"}
    for stem in ("synthetic-azure-conv", "azure_tiny_conv"):
        expected |= {f"{stem}_{kind}.png" for kind in ("ttft_cdf", "timeline", "capacity_slo", "sensitivity")}
    assert set(names) == expected
    for name in names:
        data = (out / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE)
        assert len(data) > 10_000


def test_no_fleet_section_without_fleet(runs: tuple[Path, Path, str, Reproduction]) -> None:
    out, _, _, again = runs
    assert "## Fleet" not in again.report.read_text()
    assert "fleet" not in again.document
    assert "fleet" not in again.document["config"]
    assert not (out / "fleet_sweep.png").exists()
    assert "fig-fleet-sweep" not in again.html.read_text()


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli(), ["reproduce", "--out", str(tmp_path), "--executor", "threads"])
    assert result.exit_code == 2
    assert "--executor 'threads' is unknown" in result.output
    explore = CliRunner().invoke(cli(), ["reproduce", "--out", str(tmp_path), "--quick", "--explore", "5000"])
    assert explore.exit_code == 2
    assert "--explore 5000: no workload has that request" in explore.output
    missing = CliRunner().invoke(cli(), ["reproduce", "--out", str(tmp_path), "--trace", "nope.csv"])
    assert missing.exit_code == 2
    assert "nope.csv" in missing.output


def test_report_html_is_one_self_contained_file(runs: tuple[Path, Path, str, Reproduction]) -> None:
    out, _, output, again = runs
    assert again.html == again.report.parent / "report.html"
    text = (out / "report.html").read_text(encoding="utf-8")
    assert "report.html" in output
    assert text.startswith("<!DOCTYPE html>")
    # nothing is loaded from elsewhere: no external script, style sheet or image
    assert re.search(r"<(script|img|link|iframe)[^>]+(src|href)=\"(?!data:)", text) is None
    assert "Plotly" in text  # plotly.js is inlined
    for workload in ("synthetic-azure-conv", "azure_tiny_conv"):
        assert f'id="fig-{workload}-ttft"' in text
        assert f'id="explorer-{workload}"' in text
    assert 'id="fig-k-star"' in text
    assert 'id="fig-sizing"' in text  # the sizing curves are interactive too
    assert 'id="fig-tradeoff"' in text  # and the latency, cost and energy points
    assert "data:image/png;base64," in text  # the refinement figure has no interactive version: inlined
    assert "<table>" in text
    assert "<h2>Workload <code>azure_tiny_conv</code></h2>" in text
    assert (out / "report.html").stat().st_size < 8_000_000


def _figure_ids(page: Any) -> list[str]:
    return list(page.run("return Array.from(document.querySelectorAll('.figure')).map(e => e.id);"))


def test_report_html_loads_in_a_browser(
    runs: tuple[Path, Path, str, Reproduction], open_page: Callable[[Path], Any]
) -> None:
    out = runs[0]
    page = open_page(out / "report.html")
    assert page.console_errors() == []
    assert page.run("return performance.getEntriesByType('resource').length;") == 0
    ids = _figure_ids(page)
    assert len(ids) == 2 * 3 + 3  # TTFT, capacity and sensitivity per workload; k*; sizing; trade-off
    for element in ids:
        drawn = page.run(f"return document.querySelectorAll('#{element} .main-svg').length;")
        assert drawn > 0, element
    titles = page.run(
        "return Array.from(document.querySelectorAll('#fig-azure_tiny_conv-ttft .xtitle, "
        "#fig-azure_tiny_conv-ttft .ytitle')).map(e => e.textContent);"
    )
    assert "TTFT (s), arrival to first displayed token" in titles
    assert "share of requests" in titles
    # hover shows a point's numbers
    hover = page.run("return document.getElementById('fig-azure_tiny_conv-ttft').data[0].hovertemplate;")
    assert "of requests within" in hover
    # a policy check box hides that policy in every figure of the page
    page.driver.find_element(
        "css selector", ".policy-toggles[data-workload='azure_tiny_conv'] input[value='race']"
    ).click()
    hidden = page.wait(
        "const d = document.getElementById('fig-synthetic-azure-conv-ttft').data"
        ".filter(t => t.legendgroup === 'race'); return d.length && d.every(t => t.visible === 'legendonly');"
    )
    assert hidden
    assert page.console_errors() == []


def test_report_html_explorer_switches_requests(
    runs: tuple[Path, Path, str, Reproduction], open_page: Callable[[Path], Any]
) -> None:
    from selenium.webdriver.support.ui import Select

    out = runs[0]
    page = open_page(out / "report.html")
    section = page.driver.find_element("id", "explorer-azure_tiny_conv")
    first = page.wait("return document.getElementById('explorer-azure_tiny_conv').dataset.drawn;")
    filters = Select(section.find_element("css selector", ".ex-filter"))
    names = [option.text for option in filters.options]
    assert any(name.startswith("slowest TTFT (pd-device)") for name in names)
    filters.select_by_index(len(names) - 1)  # every embedded request
    picker = Select(section.find_element("css selector", ".ex-request"))
    values = [option.get_attribute("value") for option in picker.options]
    assert len(values) > 2
    other = next(value for value in values if value != first)
    picker.select_by_value(other)
    drawn = page.wait(
        f"const s = document.getElementById('explorer-azure_tiny_conv'); "
        f"return s.dataset.drawn === '{other}' && s.dataset.drawn;"
    )
    assert drawn == other
    note = section.find_element("css selector", ".ex-note").text
    assert f"request {other} of azure_tiny_conv" in note
    # a request given with --explore is picked by its id
    box = section.find_element("css selector", ".ex-id")
    box.clear()
    box.send_keys("450")
    section.find_element("css selector", ".ex-go").click()
    assert page.wait(
        "const s = document.getElementById('explorer-azure_tiny_conv'); return s.dataset.drawn === '450';"
    )
    assert "given by id (--explore)" in section.find_element("css selector", ".ex-note").text
    other = "450"
    # an id the page does not embed is refused with the reason, and the plot stays
    box.clear()
    box.send_keys("999999")
    section.find_element("css selector", ".ex-go").click()
    assert "is not in this page" in section.find_element("css selector", ".ex-note").text
    assert section.get_attribute("data-drawn") == other
    assert page.console_errors() == []


REPORT_TEXT = """# pdcore reproduce: P/D-Device against the baselines

## Targets

Checked on `synthetic-azure-conv`, phone profile, P/D-disaggregated cloud.

1. TTFT at least 60% lower than device-only (mean and p50): **met**: mean 81%, p50 79%, p99 83% lower.
2. Largest display gap p99 at most 50 ms: **met**: 50.0 ms (cloud-only: 56.5 ms).
3. Decode-pool capacity at least 10x cloud-only's: **missed**: 7.0x.

## Prompt refinement

Source `pdcore/refine/data/quality-smollm2-135m.toml`, copied here as
[`quality-smollm2-135m.toml`](quality-smollm2-135m.toml).

To measure it again (add `--out FILE` to write a curve this report reads):

```
pdcore refine-eval --items 128 --seed 0 --ratios 1,0.75,0.5,0.35
```

| policy | TTFT p50 |
|:--|--:|
| **pd-device** | 151 ms |
"""
"""The shapes of report.md's text that a hand-written converter got wrong: a numbered list, a fenced
command, a link to the copied quality curve."""


def _texts(page: Any, selector: str) -> list[str]:
    return list(
        page.run(f"return Array.from(document.querySelectorAll('{selector}')).map(e => e.textContent);")
    )


def test_report_html_shows_the_lists_code_and_links_of_the_markdown(
    open_page: Callable[[Path], Any], tmp_path: Path
) -> None:
    pytest.importorskip("plotly", reason="the page inlines plotly.js (plot extra)")
    from pdcore.report.html import markdown_to_html
    from pdcore.report.page import page as html_page

    path = tmp_path / "report.html"
    path.write_text(html_page("pdcore reproduce", markdown_to_html(REPORT_TEXT, {})), encoding="utf-8")
    page = open_page(path)
    assert page.console_errors() == []
    items = _texts(page, "ol > li")
    assert len(items) == 3
    assert items[0].startswith("TTFT at least 60% lower than device-only")
    assert items[1] == "Largest display gap p99 at most 50 ms: met: 50.0 ms (cloud-only: 56.5 ms)."
    assert items[2].startswith("Decode-pool capacity")
    assert page.run("return document.querySelector('ol').start;") == 1
    assert page.run("return document.querySelectorAll('ol > li strong').length;") == 3
    assert not any("2. Largest" in text for text in _texts(page, "p"))
    assert _texts(page, "pre > code") == [
        "pdcore refine-eval --items 128 --seed 0 --ratios 1,0.75,0.5,0.35\n"
    ]
    assert "`" not in page.run("return document.body.innerText;")
    links = page.run(
        "return Array.from(document.querySelectorAll('a[href]'))"
        ".map(a => [a.getAttribute('href'), a.textContent]);"
    )
    assert links == [["quality-smollm2-135m.toml", "quality-smollm2-135m.toml"]]
    assert _texts(page, "table td") == ["pd-device", "151 ms"]
    assert page.run("return getComputedStyle(document.querySelectorAll('table td')[1]).textAlign;") == "right"


def test_report_html_renders_the_reports_own_text(
    runs: tuple[Path, Path, str, Reproduction], open_page: Callable[[Path], Any]
) -> None:
    """The shipped report's Targets list, refine-eval command and quality-curve link, and the k* figure
    on its log axis, as the browser reads them."""
    out = runs[0]
    page = open_page(out / "report.html")
    targets = _texts(page, "h2 ~ ol > li")[:4]
    assert [text.split(" ")[0] for text in targets] == ["TTFT", "Largest", "Decode-pool", "Whole"]
    assert not any(re.search(r"\. [234]\. ", text) for text in _texts(page, "p"))
    commands = _texts(page, "pre > code")
    assert any(command.startswith("pdcore refine-eval --items") for command in commands)
    assert "`" not in "".join(commands)
    hrefs = page.run(
        "return Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href'));"
    )
    assert "quality-smollm2-135m.toml" in hrefs
    axes = page.run(
        "const l = document.getElementById('fig-k-star').layout; return [l.xaxis.type, l.yaxis.type];"
    )
    assert axes == ["log", "log"]
    assert page.console_errors() == []


def _colour_share(image: Any, rgb: tuple[int, int, int]) -> float:
    pixels = (image[..., :3] * 255).round()
    return float((abs(pixels - np.array(rgb)).max(axis=-1) <= 12).mean())


def test_report_html_timeline_screenshot(
    runs: tuple[Path, Path, str, Reproduction], open_page: Callable[[Path], Any], tmp_path: Path
) -> None:
    """The explorer's figure, checked by its structure (axes, titles, legend, both token colours in the
    screenshot), not pixel for pixel."""
    from matplotlib.image import imread

    out = runs[0]
    page = open_page(out / "report.html")
    page.wait("return document.getElementById('explorer-azure_tiny_conv').dataset.drawn;")
    plot = page.driver.find_element("css selector", "#explorer-azure_tiny_conv .ex-plot")
    page.run("arguments[0].scrollIntoView();", plot)
    shot = tmp_path / "timeline.png"
    shot.write_bytes(plot.screenshot_as_png)
    image = imread(shot)
    assert image.shape[0] >= 600
    assert image.shape[1] >= 800
    assert _colour_share(image, (31, 119, 180)) > 0.0005  # cloud tokens (blue)
    assert _colour_share(image, (214, 39, 40)) > 0.0005  # device tokens (red)
    selector = "#explorer-azure_tiny_conv .ex-plot"
    texts = page.run(
        f"return Array.from(document.querySelectorAll('{selector} text')).map(e => e.textContent);"
    )
    for expected in (
        "seconds since the request arrived",
        "token position",
        "display gap (ms)",
        "hand-off estimate (s)",
        "cloud token arrives",
        "displayed, from the cloud",
        "displayed, from the device",
        "gap objective (max TPOT)",
    ):
        assert expected in texts, expected
    for policy in ("pd-device", "naive-split", "cloud-only"):
        assert any(text.startswith(f"{policy}:") for text in texts), policy
    # the representative request is split: its P/D-Device column shows the estimate as revised
    assert "hand-off estimate, as revised" in texts
    assert any(text.startswith("hand-off ") and text.endswith(" s") for text in texts)
    ticks = page.run(f"return document.querySelectorAll('{selector} .xaxislayer-above text').length;")
    assert ticks > 20  # every time axis has numbered ticks


def test_the_tradeoff_section_prices_every_policy_and_each_weight(
    runs: tuple[Path, Path, str, Reproduction],
) -> None:
    section = runs[3].document["tradeoff"]
    assert section["prices"]["usd_per_gpu_hour"] > 0
    for key in ("synthetic-azure-conv", "azure_tiny_conv"):
        points = {p["label"]: p for p in section["points"][key]}
        assert set(POLICIES) <= set(points)
        assert len(points) == len(POLICIES) + len(section["cost_weights"]) + len(section["energy_weights"])
        own = points["pd-device"]
        cheapest = points[f"pd-device, cost weight {max(section['cost_weights']):g}"]
        frugal = points[f"pd-device, energy weight {max(section['energy_weights']):g}"]
        assert cheapest["usd_per_1k_requests"] <= own["usd_per_1k_requests"]
        assert frugal["device_mj_per_request"] < own["device_mj_per_request"]
        assert points["device-only"]["usd_per_1k_requests"] == 0

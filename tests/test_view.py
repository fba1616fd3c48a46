"""``pdcore view``: a chat or validate timeline as a page, read strictly, and opened in a real browser."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

pytest.importorskip("httpx", reason="the live runtime's fakes need httpx (test extra)")
pytest.importorskip("httpx_sse", reason="the live runtime's fakes need httpx-sse (test extra)")

from pdcore.cli import app
from pdcore.runtime import CloudClient, Device
from pdcore.runtime.testing import CloudScript, FakeCloud, FakeEngine, word_pieces
from pdcore.runtime.validate import ValidationReport, validate

ANSWER = " ".join(f"word{index}" for index in range(120)) + "."


@pytest.fixture(scope="module")
def validated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``validate --json`` and ``chat --json`` files from one run against a scripted cloud and device."""
    fake = FakeEngine(ANSWER, prefill_token_s=0.0005, call_s=0.001, decode_s=0.003)

    async def go(url: str) -> ValidationReport:
        cloud = CloudClient(url)
        device = Device(lambda: fake)
        try:
            return await validate(
                cloud=cloud,
                device=device,
                device_profile=fake.profile(),
                requests=2,
                prompt_tokens=(200, 400),
                max_tokens=60,
                calibration_tokens=8,
                pings=2,
            )
        finally:
            await cloud.aclose()
            device.close()

    with FakeCloud(CloudScript(word_pieces(ANSWER), first_delay_s=0.02, gap_s=0.004)) as cloud:
        report = asyncio.run(go(cloud.url))
    root = tmp_path_factory.mktemp("view")
    check = root / "validate.json"
    check.write_text(json.dumps(report.to_dict(), indent=2), encoding="utf-8")
    chat = root / "chat.json"
    report.runs[0].timeline.write_json(chat)
    return check, chat


def _view(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["view", *args, "--no-open"])
    return result.exit_code, result.output


def test_view_writes_a_page_beside_the_file(validated: tuple[Path, Path]) -> None:
    check, chat = validated
    for source in (check, chat):
        code, output = _view(str(source))
        assert code == 0, output
        page = source.with_suffix(".html")
        assert f"wrote {page}" in output.replace("\n", "")
        text = page.read_text(encoding="utf-8")
        assert text.startswith("<!DOCTYPE html>")
        assert 'id="explorer-view"' in text
    assert '"predicted"' in check.with_suffix(".html").read_text(encoding="utf-8")


def test_view_refuses_bad_files_by_name(tmp_path: Path, validated: tuple[Path, Path]) -> None:
    missing = tmp_path / "nope.json"
    code, output = _view(str(missing))
    assert code == 2
    assert "nope.json" in output
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json", encoding="utf-8")
    code, output = _view(str(garbage))
    assert code == 2
    assert "is not JSON" in output
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"policies": {}}), encoding="utf-8")
    code, output = _view(str(other))
    assert code == 2
    assert "neither 'tokens' (chat) nor 'runs' (validate)" in output
    broken = json.loads(validated[1].read_text(encoding="utf-8"))
    broken["tokens"][3]["shown_s"] = "soon"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(broken), encoding="utf-8")
    code, output = _view(str(bad))
    assert code == 2
    assert "tokens[3].shown_s" in output
    # the page never replaces its input
    code, output = _view(str(validated[1]), "--out", str(validated[1]))
    assert code == 2
    assert "would overwrite it" in output


def test_view_of_validate_shows_live_and_predicted_side_by_side(
    validated: tuple[Path, Path], open_page: Callable[[Path], Any]
) -> None:
    from selenium.webdriver.support.ui import Select

    check = validated[0]
    code, output = _view(str(check), "--out", str(check.parent / "check.html"))
    assert code == 0, output
    page = open_page(check.parent / "check.html")
    assert page.console_errors() == []
    assert page.run("return performance.getEntriesByType('resource').length;") == 0
    first = page.wait("return document.getElementById('explorer-view').dataset.drawn;")
    assert first == "0"
    texts = page.run(
        "return Array.from(document.querySelectorAll('#explorer-view text')).map(e => e.textContent);"
    )
    assert any(text.startswith("live:") for text in texts)
    assert any(text.startswith("predicted: simulated") for text in texts)
    assert "seconds since the request arrived" in texts
    assert "hand-off estimate (s)" in texts
    picker = Select(page.driver.find_element("css selector", "#explorer-view .ex-request"))
    picker.select_by_value("1")
    assert page.wait("const s = document.getElementById('explorer-view'); return s.dataset.drawn === '1';")
    assert "live request 2" in page.driver.find_element("css selector", "#explorer-view .ex-note").text
    assert page.console_errors() == []


def test_view_of_chat_loads(validated: tuple[Path, Path], open_page: Callable[[Path], Any]) -> None:
    chat = validated[1]
    code, output = _view(str(chat), "--out", str(chat.parent / "one.html"))
    assert code == 0, output
    page = open_page(chat.parent / "one.html")
    assert page.wait("return document.getElementById('explorer-view').dataset.drawn;") == "0"
    texts = page.run(
        "return Array.from(document.querySelectorAll('#explorer-view text')).map(e => e.textContent);"
    )
    assert any(text.startswith("live (pd-device):") for text in texts)
    assert "displayed, from the device" in texts
    assert page.console_errors() == []


def test_view_without_plotly_names_the_extra(
    validated: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "plotly", None)
    monkeypatch.setitem(sys.modules, "plotly.offline", None)
    code, output = _view(str(validated[1]), "--out", str(validated[1].parent / "none.html"))
    assert code == 2
    assert "pip install 'pdcore[plot]'" in output
    assert not (validated[1].parent / "none.html").exists()

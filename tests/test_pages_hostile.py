"""The pages pdcore writes against hostile input: user text escaped where it lands (HTML, JSON inside a
script, plotly's labels), checked in a real browser, and ``pdcore view`` refusing timelines it cannot draw
truthfully, by file, field and fix."""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from pdcore.cli import app
from pdcore.escaping import html_text, script_json
from pdcore.exceptions import InvalidInputError
from pdcore.inputs import input_at
from pdcore.outputs import write_text
from pdcore.report.timeline_file import MAX_NESTING
from pdcore.report.view import read_view, write_view

HOSTILE = (
    "x<!--<script>",
    "</script><img src=x onerror=alert(1)>",
    "\"'&",
    "a\u2028b\u2029c",
    "&lt;b&gt;100%{y}",
)
"""Names that broke the pages or could: an HTML comment opening inside the data script (the page's own
script is swallowed), a closing script tag with an injected element, quotes and an ampersand, the line
separators of older JavaScript, and character references with a plotly template placeholder."""


def chat_timeline(mode: str = "pd-device") -> dict[str, Any]:
    """A small ``pdcore chat --json`` document: three tokens, a hand-off at the third."""
    return {
        "mode": mode,
        "max_tpot": 0.05,
        "cloud_quota": 3,
        "prompt_tokens": 10,
        "summary": {"handoff_s": 0.2, "tokens": 3, "ttft_s": 0.1, "handoff_position": 2},
        "tokens": [
            {"shown_s": 0.1, "source": "cloud"},
            {"shown_s": 0.15, "source": "cloud"},
            {"shown_s": 0.2, "source": "device"},
        ],
        "cloud_events": [{"at_s": 0.1}, {"at_s": 0.14}],
        "handoff_estimates": [{"at_s": 0.05, "estimate_s": 0.2}, {"at_s": 0.12, "estimate_s": 0.2}],
    }


def validate_report() -> dict[str, Any]:
    """A small ``pdcore validate --json`` document: one run with its prediction."""
    return {
        "max_tpot_s": 0.05,
        "runs": [
            {
                "timeline": chat_timeline(),
                "predicted_timeline": {
                    "k": 1,
                    "displays_s": [0.1, 0.15, 0.21],
                    "from_cloud": [True, True, False],
                    "cloud_arrivals_s": [0.09, 0.13],
                    "handoff_s": 0.21,
                    "handoff_estimates": [[0.05, 0.21]],
                },
            }
        ],
    }


def _write(path: Path, document: Any) -> Path:
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------------------
# the two helpers


@pytest.mark.parametrize("text", HOSTILE)
def test_html_text_leaves_no_markup(text: str) -> None:
    escaped = html_text(text)
    assert not set("<>\"'%") & set(escaped)
    assert html.unescape(escaped) == text


@pytest.mark.parametrize("text", HOSTILE)
def test_script_json_is_the_same_value_with_nothing_a_script_element_reads(text: str) -> None:
    value = {"name": text, "nested": [text, {"k": text}], "number": 1.5}
    encoded = script_json(value)
    assert json.loads(encoded) == value
    assert not set("<>&\u2028\u2029") & set(encoded)


def test_script_json_refuses_what_json_cannot_hold() -> None:
    with pytest.raises(ValueError, match="Out of range float"):
        script_json({"x": float("nan")})


# ---------------------------------------------------------------------------------------------------------
# `pdcore view` reads its file strictly


def _refused(tmp_path: Path, document: Any, *, raw: str | None = None) -> str:
    """The message `read_view` refuses ``document`` (or the ``raw`` text) with."""
    path = tmp_path / "timeline.json"
    if raw is not None:
        path.write_text(raw, encoding="utf-8")
    else:
        _write(path, document)
    with pytest.raises(InvalidInputError) as caught:
        read_view(path)
    message = str(caught.value)
    assert message.startswith((f"{path}: ", f"FILE {str(path)!r}"))
    assert "fix: pass the JSON that `pdcore chat --json` or `pdcore validate --json` wrote" in message
    return message


def test_the_small_documents_are_read(tmp_path: Path) -> None:
    kind, explorer = read_view(_write(tmp_path / "chat.json", chat_timeline()))
    assert kind == "chat"
    assert list(explorer["requests"]["0"]["columns"]) == ["live (pd-device)"]
    kind, explorer = read_view(_write(tmp_path / "check.json", validate_report()))
    assert kind == "validate"
    assert list(explorer["requests"]["0"]["columns"]) == ["live", "predicted"]


def test_view_refuses_times_that_run_backwards(tmp_path: Path) -> None:
    document = chat_timeline()
    document["tokens"][2]["shown_s"] = 0.12
    message = _refused(tmp_path, document)
    assert (
        "the document.tokens[2].shown_s = 0.12 is earlier than the document.tokens[1].shown_s = 0.15"
        in message
    )
    assert "never run backwards" in message
    document = chat_timeline()
    document["handoff_estimates"][1]["at_s"] = 0.01
    assert "handoff_estimates[1].at_s = 0.01 is earlier" in _refused(tmp_path, document)
    predicted = validate_report()
    predicted["runs"][0]["predicted_timeline"]["cloud_arrivals_s"] = [0.2, 0.1]
    assert "runs[0].predicted_timeline.cloud_arrivals_s[1] = 0.1 is earlier" in _refused(tmp_path, predicted)


@pytest.mark.parametrize(
    ("value", "shown"),
    [(-1.0, "-1.0"), (-1000, "-1000"), (1e300, "1e+300"), (86_400.5, "86400.5"), (10**400, "1000000")],
    ids=["negative", "negative-int", "1e300", "past-a-day", "huge-int"],
)
def test_view_refuses_times_that_are_negative_or_beyond_a_day(tmp_path: Path, value: Any, shown: str) -> None:
    document = chat_timeline()
    document["cloud_events"][1]["at_s"] = value
    message = _refused(tmp_path, document)
    assert f"the document.cloud_events[1].at_s = {shown}" in message
    assert "is not a time from 0 to 86,400 s after the request's start" in message


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_view_refuses_times_that_are_not_finite(tmp_path: Path, constant: str) -> None:
    text = json.dumps(chat_timeline()).replace('"estimate_s": 0.2}]', f'"estimate_s": {constant}}}]')
    message = _refused(tmp_path, None, raw=text)
    assert "the document.handoff_estimates[1].estimate_s = " in message
    assert "(finite, not negative, at most a day)" in message


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        (
            ("tokens", 1, "shown_s"),
            "0.15",
            "the document.tokens[1].shown_s = '0.15' is not a number of seconds",
        ),
        (("tokens", 1, "shown_s"), None, "the document.tokens[1].shown_s = None is not a number of seconds"),
        (("tokens", 1, "shown_s"), True, "the document.tokens[1].shown_s = True is not a number of seconds"),
        (("tokens", 0, "source"), ["cloud"], "the document.tokens[0].source = ['cloud'] is not 'cloud'"),
        (("tokens", 2), None, "the document.tokens[2] is NoneType, not an object"),
        (("cloud_events",), None, "the document.cloud_events = None is missing or not a list"),
        (("summary", "handoff_s"), "soon", "the document.summary.handoff_s = 'soon' is not a number"),
        (("summary",), None, "the document.summary is NoneType, not an object"),
        (("mode",), None, "the document.mode = None is not a string"),
        (("max_tpot",), 0, "the document.max_tpot = 0.0 is not above 0"),
        (("cloud_quota",), "3", "the document.cloud_quota = '3' is not null or a whole number"),
        (("prompt_tokens",), 1.5, "the document.prompt_tokens = 1.5 is not null or a whole number"),
    ],
)
def test_view_refuses_strings_and_nulls_in_a_chat_timeline(
    tmp_path: Path, path: tuple[Any, ...], value: Any, named: str
) -> None:
    document = chat_timeline()
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    assert named in _refused(tmp_path, document)


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("displays_s", [0.1, None, 0.2], "runs[0].predicted_timeline.displays_s[1] = None is not a number"),
        (
            "displays_s",
            [0.1, "0.15", 0.2],
            "runs[0].predicted_timeline.displays_s[1] = '0.15' is not a number",
        ),
        (
            "from_cloud",
            [True, "yes", False],
            "runs[0].predicted_timeline.from_cloud[1] = 'yes' is not true or",
        ),
        (
            "handoff_estimates",
            [[0.05]],
            "runs[0].predicted_timeline.handoff_estimates[0] = [0.05] is not a pair",
        ),
        ("handoff_estimates", [[0.05, None]], "runs[0].predicted_timeline.handoff_estimates[0][1] = None"),
        ("handoff_s", "later", "runs[0].predicted_timeline.handoff_s = 'later' is not a number"),
        ("k", "1", "runs[0].predicted_timeline.k = '1' is not null or a whole number"),
        (
            "cloud_arrivals_s",
            None,
            "runs[0].predicted_timeline.cloud_arrivals_s = None is missing or not a list",
        ),
    ],
)
def test_view_refuses_strings_and_nulls_in_a_validate_report(
    tmp_path: Path, key: str, value: Any, named: str
) -> None:
    document = validate_report()
    document["runs"][0]["predicted_timeline"][key] = value
    assert named in _refused(tmp_path, document)


def test_view_refuses_a_null_run_or_timeline(tmp_path: Path) -> None:
    document = validate_report()
    document["runs"][0]["timeline"] = None
    assert "runs[0].timeline is NoneType, not an object" in _refused(tmp_path, document)
    document = validate_report()
    document["runs"] = [None]
    assert "runs[0] is NoneType, not an object" in _refused(tmp_path, document)
    document = validate_report()
    document["max_tpot_s"] = None
    assert "the document.max_tpot_s = None is not a number of seconds" in _refused(tmp_path, document)


@pytest.mark.parametrize("depth", [MAX_NESTING + 1, 100_000])
def test_view_refuses_deep_nesting_before_parsing(tmp_path: Path, depth: int) -> None:
    message = _refused(tmp_path, None, raw="[" * depth + "]" * depth)
    assert f"nests arrays or objects more than {MAX_NESTING} deep" in message
    inside = json.dumps(chat_timeline()).replace(
        '"mode": "pd-device"', '"mode": ' + "[" * depth + "]" * depth
    )
    assert "more than" in _refused(tmp_path, None, raw=inside)


def test_view_reads_brackets_inside_strings_as_text(tmp_path: Path) -> None:
    kind, explorer = read_view(_write(tmp_path / "chat.json", chat_timeline("[{" * 100)))
    assert kind == "chat"
    assert explorer["requests"]["0"]["columns"]


def test_view_refuses_an_integer_too_long_to_read(tmp_path: Path) -> None:
    text = json.dumps(chat_timeline()).replace('"prompt_tokens": 10', '"prompt_tokens": ' + "1" * 5000)
    assert "is not JSON" in _refused(tmp_path, None, raw=text)


def test_view_refusals_are_one_line_with_exit_code_2(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    backwards = chat_timeline()
    backwards["tokens"][1]["shown_s"] = -0.5
    for path in (deep, _write(tmp_path / "negative.json", backwards)):
        result = CliRunner().invoke(app, ["view", str(path), "--no-open"])
        assert result.exit_code == 2, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert result.output.startswith("error: ")
        assert "fix:" in result.output
        assert not path.with_suffix(".html").exists()


def test_the_file_view_reads_is_an_input_no_writer_replaces(tmp_path: Path) -> None:
    source = _write(tmp_path / "chat.json", chat_timeline())
    link = tmp_path / "link.json"
    link.symlink_to(source)
    read_view(link)
    assert input_at(source) == str(link)
    before = source.read_bytes()
    with pytest.raises(InvalidInputError, match="is the same file as the input"):
        write_text(source, "<html></html>")
    with pytest.raises(InvalidInputError, match=r"would overwrite it|same file as the input"):
        write_view(source, link)
    assert source.read_bytes() == before


# ---------------------------------------------------------------------------------------------------------
# hostile names in a real browser


def _texts(page: Any, selector: str) -> list[str]:
    return list(
        page.run(f"return Array.from(document.querySelectorAll('{selector}')).map(e => e.textContent);")
    )


def _nothing_injected(page: Any, scripts: int = 3) -> None:
    """The page has only its own scripts (plotly.js, the data, the page's script) and no injected
    element, and nothing it did failed."""
    assert page.run("return document.scripts.length;") == scripts
    assert page.run("return document.querySelectorAll('img, [onerror]').length;") == 0
    assert page.console_errors() == []


@pytest.mark.parametrize("name", HOSTILE)
def test_a_view_of_a_hostile_timeline_runs_its_script_and_shows_the_text(
    tmp_path: Path, open_page: Callable[[Path], Any], name: str
) -> None:
    pytest.importorskip("plotly", reason="the page inlines plotly.js (plot extra)")
    source = _write(tmp_path / f"{name.replace('/', '_')}.json", chat_timeline(name))
    out = tmp_path / "view.html"
    write_view(source, out)
    page = open_page(out)  # waits for the page's own script to finish
    assert page.wait("return document.getElementById('explorer-view').dataset.drawn;") == "0"
    _nothing_injected(page)
    assert _texts(page, "h1") == [f"pdcore chat: {source.name}"]
    assert page.run("return document.title;") == f"pdcore chat: {source.name}"
    assert f"mode {name}" in page.run("return document.querySelector('#explorer-view .ex-note').textContent;")
    titles = _texts(page, "#explorer-view .annotation-text")
    assert any(title.startswith(f"live ({name}): mode {name}, cloud quota 3") for title in titles), titles
    page.run(
        "Plotly.Fx.hover(document.querySelector('#explorer-view .ex-plot'), "
        "[{curveNumber: 1, pointNumber: 0}]);"
    )
    hover = page.wait(
        "const t = document.querySelectorAll('#explorer-view .hoverlayer text'); "
        "return t.length && Array.from(t).map(e => e.textContent);"
    )
    assert f"live ({name})" in hover, hover


def _report_page(name: str) -> str:
    """A small report page with ``name`` in every user-text slot: the markdown's heading, text and table,
    a figure's note, the explorer's heading, filter, request label, description, column and title, and
    the figures' panel titles, legends and hover labels."""
    from pdcore.report.figures import k_star_figure, sizing_figure
    from pdcore.report.html import _figure, markdown_to_html
    from pdcore.report.page import compact_timeline, explorer_html, page

    markdown = (
        f"# {name}\n\n## Workload `{name}`\n\n{name} *text*\n\n| trace | note |\n|---|---|\n| {name} | x |\n"
    )
    images = {"sizing.png": _figure("fig-sizing", f"note: {name}"), "k.png": _figure("fig-k-star")}
    body = markdown_to_html(markdown + "\n![sizing](sizing.png)\n\n![k](k.png)\n", images)
    body += explorer_html("explorer-x", f"Timeline explorer: {name}")
    timeline = compact_timeline(
        displays_s=[0.1, 0.15, 0.2],
        from_cloud=[True, True, False],
        cloud_arrivals_s=[0.09, 0.13],
        handoff_s=0.2,
        estimates=[(0.05, 0.2)],
        max_tpot_s=0.05,
        title=f"title {name}",
    )
    explorer = {
        "how": f"how {name}",
        "filters": {f"filter {name}": [3]},
        "requests": {
            "3": {"label": f"label {name}", "description": f"description {name}", "columns": {name: timeline}}
        },
    }
    figures = {
        "fig-sizing": sizing_figure({"curves": {name: {f"variant {name}": [{"rate_rps": 1.0, "gpus": 2}]}}}),
        "fig-k-star": k_star_figure(
            {
                "k_star": {
                    device: [{"prompt_tokens": 512, "k": 3, "mode": "pd", "converged": True}]
                    for device in (name, "phone")  # two, so that plotly draws a legend
                }
            }
        ),
    }
    return page(f"report {name}", body, figures=figures, explorers={"explorer-x": explorer})


@pytest.mark.parametrize("name", HOSTILE)
def test_a_report_page_with_hostile_names_runs_its_script_and_shows_the_text(
    tmp_path: Path, open_page: Callable[[Path], Any], name: str
) -> None:
    pytest.importorskip("plotly", reason="the page inlines plotly.js (plot extra)")
    path = tmp_path / "report.html"
    path.write_text(_report_page(name), encoding="utf-8")
    page = open_page(path)
    assert page.wait("return document.getElementById('explorer-x').dataset.drawn;") == "3"
    for element in ("fig-sizing", "fig-k-star"):
        assert page.run(f"return document.querySelectorAll('#{element} .main-svg').length;") > 0, element
    _nothing_injected(page)
    assert page.run("return document.title;") == f"report {name}"
    # CommonMark reads character references in text (not in code): the markdown's own rule
    assert _texts(page, "h1") == [html.unescape(name)]
    assert _texts(page, "h2 code") == [name]
    assert _texts(page, "td")[0] == html.unescape(name)
    assert _texts(page, ".note") == [f"note: {name}"]
    assert _texts(page, ".explorer h3") == [f"Timeline explorer: {name}"]
    assert _texts(page, ".ex-filter option") == [f"filter {name} (1)"]
    assert _texts(page, ".ex-request option") == [f"#3: label {name}"]
    assert _texts(page, ".ex-note") == [f"description {name}"]
    assert f"<b>{name}" not in json.dumps(_texts(page, ".annotation-text"))
    annotations = _texts(page, "#explorer-x .annotation-text")
    assert any(text == f"{name}: title {name}" for text in annotations), annotations
    assert name in _texts(page, "#fig-sizing .annotation-text")
    assert f"variant {name}" in _texts(page, "#fig-sizing .legendtext")
    assert name in _texts(page, "#fig-k-star .legendtext")
    page.run("Plotly.Fx.hover('fig-sizing', [{curveNumber: 0, pointNumber: 0}]);")
    hover = page.wait(
        "const t = document.querySelectorAll('#fig-sizing .hoverlayer text'); "
        "return t.length && Array.from(t).map(e => e.textContent);"
    )
    assert f"variant {name}: 2 GPUs at 1.00 req/s" in hover, hover
    assert name in hover, hover


def test_the_hostile_report_page_carries_its_data_as_escaped_json() -> None:
    pytest.importorskip("plotly", reason="the page inlines plotly.js (plot extra)")
    for name in HOSTILE:
        text = _report_page(name)
        data = text.split('<script type="application/json" id="pdcore-data">', 1)[1].split("</script>", 1)[0]
        assert not set("<>&\u2028\u2029") & set(data)
        assert json.loads(data)["explorers"]["explorer-x"]["how"] == f"how {name}"
        if set("<>\"'") & set(name):
            assert name not in text  # escaped wherever it stands

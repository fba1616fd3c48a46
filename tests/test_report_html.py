"""``report.html``'s pieces without a browser: the CDF sampling, the markdown conversion, the explorer's
pick."""

from __future__ import annotations

import numpy as np
import pytest

from pdcore.report.experiments import explored_requests
from pdcore.report.html import cdf_points, markdown_to_html, sizing_figure


def test_cdf_points_keep_the_extremes_and_at_most_the_budget() -> None:
    values = np.random.default_rng(3).lognormal(size=19_366)
    values[5] = np.nan
    xs, ys = cdf_points(values, points=400)
    assert len(xs) == len(ys) <= 400
    finite = np.sort(values[np.isfinite(values)])
    assert xs[0] == finite[0]
    assert xs[-1] == finite[-1]
    assert ys[-1] == 1.0
    assert np.all(np.diff(xs) >= 0)
    # each point is exact: the share of requests at or below it
    for x, y in zip(xs[::50], ys[::50], strict=True):
        assert y == pytest.approx(np.searchsorted(finite, x, side="right") / finite.size)
    small, shares = cdf_points(np.array([3.0, 1.0, 2.0]))
    assert small == [1.0, 2.0, 3.0]
    assert shares == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert cdf_points(np.array([np.nan])) == ([], [])


def test_markdown_renders_as_commonmark_with_tables() -> None:
    text = "\n".join(
        [
            "# Title with `code`",
            "",
            "A paragraph with **bold**, *italics* and <angle>",
            "that goes on.",
            "",
            "1. first target: **met**.",
            "2. second target, `code` in it.",
            "",
            "| policy | TTFT |",
            "|:--|--:|",
            "| **pd-device** | 0.1 s |",
            "",
            "- one item",
            "  continued",
            "- two",
            "",
            "copied here as [`curve.toml`](curve.toml).",
            "",
            "```",
            "pdcore refine-eval --items 128",
            "```",
            "",
            "![TTFT CDF](a.png)",
            "![other](b.png)",
        ]
    )
    html = markdown_to_html(text, {"a.png": "<div id=fig></div>"})
    assert "<h1>Title with <code>code</code></h1>" in html
    assert (
        "<p>A paragraph with <strong>bold</strong>, <em>italics</em> and &lt;angle&gt;\nthat goes on.</p>"
        in html
    )
    assert (
        "<ol>\n<li>first target: <strong>met</strong>.</li>\n<li>second target, <code>code</code> in it.</li>"
        "\n</ol>" in html
    )
    assert '<th style="text-align:left">policy</th>\n<th style="text-align:right">TTFT</th>' in html
    assert '<td style="text-align:left"><strong>pd-device</strong></td>' in html
    assert "<ul>\n<li>one item\ncontinued</li>\n<li>two</li>\n</ul>" in html
    assert '<a href="curve.toml"><code>curve.toml</code></a>' in html
    assert "<pre><code>pdcore refine-eval --items 128\n</code></pre>" in html
    assert "`" not in html
    # a replaced image stands alone (a figure's block is not put in a paragraph); another stays an image
    assert html.endswith('</code></pre>\n<div id=fig></div>\n<img src="b.png" alt="other" />')
    assert "<p><div" not in html
    assert markdown_to_html("![alone](c.png)", {}) == '<p><img src="c.png" alt="alone" /></p>\n'


def test_markdown_escapes_html_and_refuses_script_links() -> None:
    html = markdown_to_html(
        "Trace `</script>` from <script>alert(1)</script> [x](javascript:alert(1)) ![y](javascript:z)", {}
    )
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<code>&lt;/script&gt;</code>" in html
    # a javascript: link or image stays literal text: no <a>, no <img>
    assert "<a " not in html
    assert "<img" not in html


def test_explored_requests_pick_the_worst_and_the_given() -> None:
    columns = {
        "ttft_s": np.array([0.1, 0.9, 0.5, np.nan, 0.9, 0.2]),
        "max_gap_s": np.array([0.05, 0.04, 0.3, 0.01, 0.02, 0.2]),
        "handoff_gap_s": np.array([np.nan, 0.2, 0.04, np.nan, 0.08, 0.05]),
    }
    filters = explored_requests(columns, 0.05, 2, 2, given=(5, 99, 5), sample=3)
    assert filters["given by id (--explore)"] == [5]
    assert filters["representative (median lengths)"] == [2]
    assert filters["slowest TTFT (pd-device)"] == [1, 4]  # a tie: the lower index first
    assert filters["largest display gap (pd-device)"] == [2, 5]
    assert filters["hand-off stalls (pd-device)"] == [1, 4]  # 0.05 meets the objective: no stall
    assert filters["evenly spaced sample"] == [0, 2, 5]
    assert "given by id (--explore)" not in explored_requests(columns, 0.05, None, 1)


def test_the_sizing_figure_has_a_panel_per_workload_and_a_trace_per_variant() -> None:
    section = {
        "target": 0.9,
        "curves": {
            "azure": {
                "cloud-only": [{"rate_rps": 1.0, "gpus": 2}, {"rate_rps": 2.0, "gpus": 4}],
                "pd-device": [{"rate_rps": 1.0, "gpus": 2}, {"rate_rps": 2.0, "gpus": None}],
            },
            "long-answer": {
                "cloud-only": [{"rate_rps": 0.5, "gpus": 3}],
                "pd-device": [{"rate_rps": 0.5, "gpus": 2}],
            },
        },
    }
    figure = sizing_figure(section)
    assert [trace["name"] for trace in figure["data"]] == ["cloud-only", "pd-device"] * 2
    assert [trace["xaxis"] for trace in figure["data"]] == ["x", "x", "x2", "x2"]
    assert figure["data"][1]["y"] == [2, None], "a rate no cloud meets stays a gap in the curve"
    assert [trace["showlegend"] for trace in figure["data"]] == [True, True, False, False]
    assert figure["layout"]["yaxis2"]["title"]["text"] == "GPUs needed at the SLO"
    assert [a["text"] for a in figure["layout"]["annotations"]] == ["azure", "long-answer"]

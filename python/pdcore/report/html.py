"""``report.html``: the report as one interactive, self-contained page.

The page follows ``report.md`` section by section, its text converted by markdown-it-py (CommonMark with
tables; raw HTML in the text is escaped, not passed through), and puts an interactive plotly figure
(`pdcore.report.figures`, on the PNGs' axes) where the markdown shows a PNG: TTFT CDFs per policy (hover,
policy toggles), capacity over the TPOT objective, the sensitivity sweeps, the optimizer's ``k*``, the
sizing curves, the latency, cost and energy points and the fleet's capable-share sweep; the
display-timeline PNG becomes the timeline explorer (`pdcore.report.page`). A PNG with no interactive
counterpart is inlined as a data URI, so the file still needs nothing beside it.

Size: a TTFT CDF is drawn through at most `CDF_POINTS` of its order statistics; the explorer embeds the
token timelines of the chosen requests only (`pdcore.report.explorer`).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

from pdcore.escaping import html_text
from pdcore.report.experiments import POLICIES, WorkloadRun
from pdcore.report.figures import (
    CDF_POINTS,
    capacity_figure,
    cdf_points,
    k_star_figure,
    sensitivity_figure,
    sizing_figure,
    tradeoff_figure,
    ttft_figure,
)
from pdcore.report.figures.fleet import fleet_sweep_figure
from pdcore.report.page import explorer_html, page
from pdcore.report.style import COLOURS, file_stem

__all__ = [
    "CDF_POINTS",
    "capacity_figure",
    "cdf_points",
    "k_star_figure",
    "markdown_to_html",
    "render_html",
    "sensitivity_figure",
    "sizing_figure",
    "tradeoff_figure",
    "ttft_figure",
]


def _image(
    renderer: RendererHTML, tokens: Sequence[Token], index: int, options: OptionsDict, env: EnvType
) -> str:
    """An image: the HTML ``env["images"]`` gives for its file name, else an ``<img>`` as usual."""
    source = tokens[index].attrGet("src")
    replacement = env.get("images", {}).get(source)
    if replacement is not None:
        return str(replacement)
    return renderer.image(tokens, index, options, env)


_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")
_MARKDOWN.add_render_rule("image", _image)


def _unwrap_lone_images(tokens: Sequence[Token], images: Mapping[str, str]) -> None:
    """Hides the paragraph around images that stand on lines of their own when one of them is replaced,
    so a figure's ``<div>`` is not put inside a ``<p>``."""
    for index, token in enumerate(tokens):
        children = token.children or []
        if (
            token.type == "inline"
            and tokens[index - 1].type == "paragraph_open"
            and all(child.type in {"image", "softbreak"} for child in children)
            and any(child.type == "image" and child.attrGet("src") in images for child in children)
        ):
            tokens[index - 1].hidden = tokens[index + 1].hidden = True


def markdown_to_html(text: str, images: Mapping[str, str]) -> str:
    """HTML of ``report.md``'s text (CommonMark with pipe tables, raw HTML escaped); ``images`` maps an
    image's file name to the HTML that replaces it (a figure, an inlined PNG)."""
    env: dict[str, Any] = {"images": images}
    tokens = _MARKDOWN.parse(text, env)
    _unwrap_lone_images(tokens, images)
    return str(_MARKDOWN.renderer.render(tokens, _MARKDOWN.options, env))


def _toggles(key: str) -> str:
    boxes = "".join(
        f'<label><input type="checkbox" value="{html_text(policy)}" checked> '
        f'<span style="color:{html_text(COLOURS[policy])}">{html_text(policy)}</span></label>'
        for policy in POLICIES
    )
    return f'<div class="policy-toggles" data-workload="{html_text(key)}">policies shown: {boxes}</div>'


def _figure(element: str, note: str = "") -> str:
    extra = f'<p class="note">{html_text(note)}</p>' if note else ""
    return f'<div class="figure" id="{html_text(element)}"></div>{extra}'


def _workload_figures(
    run: WorkloadRun,
    files: Mapping[str, str],
    presets: Mapping[str, float],
    explorer: Mapping[str, Any] | None,
) -> tuple[dict[str, Any], dict[str, str], dict[str, Any]]:
    """One workload's figures by element id, the HTML that replaces each of its PNGs, and its explorer."""
    stem = file_stem(run.key)
    figures = {
        f"fig-{stem}-ttft": ttft_figure(run),
        f"fig-{stem}-capacity": capacity_figure(run),
        f"fig-{stem}-sensitivity": sensitivity_figure(run, presets),
    }
    images = {
        files["ttft_cdf"]: _toggles(run.key)
        + _figure(
            f"fig-{stem}-ttft",
            f"Each curve is drawn through at most {CDF_POINTS} of its requests, evenly spaced in rank; "
            "click a legend entry or a check box to hide a policy, drag to zoom, double-click to reset.",
        ),
        files["capacity_slo"]: _figure(f"fig-{stem}-capacity"),
        files["sensitivity"]: _figure(f"fig-{stem}-sensitivity"),
    }
    explorers: dict[str, Any] = {}
    if explorer is not None:
        element = f"explorer-{stem}"
        explorers[element] = explorer
        images[files["timeline"]] = explorer_html(element, f"Timeline explorer: {run.key}") + (
            f'<p class="note">{html_text(explorer["how"])}</p>'
        )
    return figures, images, explorers


def render_html(
    markdown: str,
    runs: Sequence[WorkloadRun],
    optimizer: Mapping[str, Any],
    plots: Mapping[str, Mapping[str, str]],
    out_dir: Path,
    *,
    presets: Mapping[str, float],
    explorers: Mapping[str, Mapping[str, Any]],
    sizing: Mapping[str, Any] | None = None,
    tradeoff: Mapping[str, Any] | None = None,
    fleet: Mapping[str, Any] | None = None,
) -> str:
    """The whole ``report.html``.

    Args:
        markdown: ``report.md``'s text.
        runs: The workloads measured.
        optimizer: The report's optimizer section.
        plots: The PNG file names by workload key and figure (`pdcore.report.plots.write_plots`).
        out_dir: Where the PNGs are (those without an interactive figure are inlined).
        presets: Round-trip time of each network preset (marked on the RTT sweep).
        explorers: The timeline explorer's data by workload key (`pdcore.report.explorer.explorer_data`).
        sizing: The report's sizing section, if it has one (GPUs needed over request rate).
        tradeoff: The report's latency, cost and energy section, if it has one.
        fleet: The report's fleet section, if it has one (GPUs against the capable share).

    Raises:
        InvalidInputError: plotly is not installed.
    """
    figures: dict[str, Any] = {}
    images: dict[str, str] = {}
    page_explorers: dict[str, Any] = {}
    for run in runs:
        found = _workload_figures(run, plots[run.key], presets, explorers.get(run.key))
        figures |= found[0]
        images |= found[1]
        page_explorers |= found[2]
    figures["fig-k-star"] = k_star_figure(optimizer)
    images[plots[""]["k_star"]] = _figure("fig-k-star")
    if sizing is not None and "sizing" in plots[""]:
        figures["fig-sizing"] = sizing_figure(sizing)
        images[plots[""]["sizing"]] = _figure(
            "fig-sizing", "Hover a point for its GPUs; a missing point is a rate no cloud tried meets."
        )
    if tradeoff is not None and "tradeoff" in plots[""]:
        figures["fig-tradeoff"] = tradeoff_figure(tradeoff)
        images[plots[""]["tradeoff"]] = _figure(
            "fig-tradeoff", "Hover a point for its energy, battery share and SLO attainment."
        )
    if fleet is not None and "fleet_sweep" in plots[""]:
        figures["fig-fleet-sweep"] = fleet_sweep_figure(fleet)
        images[plots[""]["fleet_sweep"]] = _figure(
            "fig-fleet-sweep", "Hover a point for its GPUs; a missing point is a share no cloud tried meets."
        )
    for name in (name for figures_of in plots.values() for name in figures_of.values()):
        if name not in images:
            encoded = base64.b64encode((out_dir / name).read_bytes()).decode("ascii")
            images[name] = f'<img alt="{html_text(name)}" src="data:image/png;base64,{encoded}">'
    body = markdown_to_html(markdown, images)
    return page("pdcore reproduce", body, figures=figures, explorers=page_explorers)

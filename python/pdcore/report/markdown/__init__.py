"""``report.md`` of ``pdcore reproduce``: tables and text rendered from the report's numbers.

Every figure in the text is read from the same document that is written to ``results.json``, so the
two never disagree; verdicts are computed, not written by hand.

`render` puts the sections in order; each section's text has its module: the number formats
(`pdcore.report.markdown.formats`), the targets (`~.targets`), one workload (`~.workload`), the optimizer
(`~.optimizer`), sizing, trade-off, conversations, refinement and the definitions (`~.sections`), and the
cost band (`~.cost_band`), and the fleet (`~.fleet`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pdcore.report.markdown.cost_band import cost_band_text
from pdcore.report.markdown.fleet import fleet_text
from pdcore.report.markdown.formats import arrival_rate, cut, gap_ms, seconds, times
from pdcore.report.markdown.optimizer import optimizer_text
from pdcore.report.markdown.sections import (
    conversations_text,
    definitions_text,
    refinement_text,
    sizing_text,
    tradeoff_text,
)
from pdcore.report.markdown.targets import targets_text
from pdcore.report.markdown.workload import main_table, workload_text

__all__ = ["arrival_rate", "cut", "gap_ms", "main_table", "render", "seconds", "times"]


def render(document: Mapping[str, Any], plots: Mapping[str, Mapping[str, str]]) -> str:
    """The whole ``report.md``."""
    config = document["config"]
    slo_s = float(config["slo"]["max_tpot_s"])
    workloads = document["workloads"]
    lines = [
        "# pdcore reproduce: P/D-Device against the baselines",
        "",
        f"Device `{config['device_profile']}`, cloud `{config['cloud_profile']}` "
        f"({config['deployment']}, 1 prefill + 1 decode replica), network `{config['network']}`; "
        f"SLO: TTFT {config['slo']['ttft_s']:g} s, TPOT {slo_s * 1e3:.0f} ms; seed {config['seed']}"
        + ("; **quick preset** (small windows and sweeps)" if config["quick"] else "")
        + f". pdcore {document['pdcore_version']}. Every number below is in `results.json`.",
        "",
    ]
    lines += targets_text(document, slo_s)
    for key, section in workloads.items():
        lines += workload_text(key, section, plots[key], slo_s)
    lines += optimizer_text(document["optimizer"], plots[""]["k_star"], slo_s)
    if "sizing" in document:
        lines += sizing_text(document["sizing"], plots[""]["sizing"])
    if "tradeoff" in document:
        lines += tradeoff_text(document["tradeoff"], plots[""]["tradeoff"])
    if "conversations" in document:
        lines += conversations_text(document["conversations"], plots[""]["conversations"])
    if "cost_band" in document:
        lines += cost_band_text(document["cost_band"])
    if "fleet" in document:
        lines += fleet_text(document["fleet"], plots[""]["fleet_sweep"])
    if "refinement" in document:
        lines += refinement_text(document["refinement"], plots[""]["refinement"])
    lines += definitions_text()
    return "\n".join(lines)

"""The "Fleet" section of ``report.md`` (``pdcore reproduce --fleet``): results by device class, as
``pdcore fleet-report`` tables them (`pdcore.report.fleet.class_table`), and GPUs needed at the SLO as the
share of capable devices goes from 0 to 100%, each with the command that computes it on its own."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pdcore.report.fleet import class_table
from pdcore.report.markdown.formats import table

__all__ = ["fleet_text"]


def _gpus(sized: Mapping[str, Any]) -> str:
    return "none meets" if sized["gpus"] is None else str(sized["gpus"])


def _usd(sized: Mapping[str, Any]) -> str:
    usd = sized.get("usd_per_month")
    return "-" if usd is None else f"${usd:,.0f}"


def sweep_rows(section: Mapping[str, Any]) -> list[str]:
    """One row per mix: its capable share, then per policy its GPUs and $/month, then the GPUs each
    policy saves against cloud-only."""
    mixes = section["fleet_sizing"]["mixes"]
    policies = list(mixes[0]["sizing"])
    savers = list(mixes[0]["gpus_saved"])
    header = ["mix", "capable"]
    header += [f"{name} {what}" for name in policies for what in ("GPUs", "$/month")]
    header += [f"{name} GPUs saved" for name in savers]
    rows = []
    for mix in mixes:
        row = [mix["label"], f"{mix['capable_share']:.1%}"]
        for name in policies:
            row += [_gpus(mix["sizing"][name]), _usd(mix["sizing"][name])]
        row += ["-" if mix["gpus_saved"][name] is None else str(mix["gpus_saved"][name]) for name in savers]
        rows.append(row)
    return table(header, rows, "ll" + "r" * (len(header) - 2))


def fleet_text(section: Mapping[str, Any], plot: str) -> list[str]:
    """The section (``plot``: the sweep figure's file name)."""
    fleet = section["fleet"]
    commands = section["commands"]
    return [
        "## Fleet",
        "",
        f"Fleet `{fleet['name']}` ({fleet['capable_share']:.1%} of requests on a capable device), on the "
        f"first {section['window']} requests of the embedded default workload: each request draws its class "
        "from the fleet's seeded mix and runs on its class's device and network, or on the cloud alone "
        'without a capable device (docs/sizing.md, "Runs over a fleet").',
        "",
        "Results by device class, on the report's fixed cloud; made by:",
        "",
        f"    {commands['compare']}",
        "",
        *class_table(section),
        "",
        f"GPUs needed at the SLO (attainment {section['target']:.0%}, each request judged by its class's "
        "objectives) as the share of capable devices goes from 0 to 100%: the capable classes keep their "
        'proportions and the rest goes to the classes with no capable device (docs/sizing.md, "Sizing over '
        'a fleet"); "as given" is the fleet itself. Made by:',
        "",
        f"    {commands['size']}",
        "",
        f"![GPUs against the capable share]({plot})",
        "",
        *sweep_rows(section),
        "",
    ]

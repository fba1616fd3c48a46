"""The fleet section of ``pdcore reproduce --fleet``: results by device class and the capable-share sweep,
computed on the study's embedded default workload with the study's scenario and the fleet given.

Rules (ours, so that the section costs little beside the rest of the report and is the same JSON that
``pdcore fleet-report`` reads):

- both halves run on the first ``window`` requests of the embedded default workload (1,000, or 300 with
  the quick preset), the window the report's sizing section sizes on;
- results by class: every policy of the main table, one run each over the fleet
  (`pdcore.sim.scenario.Scenario.run` with the fleet, `pdcore.sim.fleet_runs.by_class`) on the study's
  fixed cloud, kept as ``policies.<name>.by_class`` as ``pdcore compare --fleet --json`` writes them;
- the sweep: `pdcore.sim.fleet_sizing.size_fleet_sweep` for cloud-only and pd-device at the default capable
  shares and the study's attainment target, run serially (every executor gives the same sizings; the
  section already runs beside the experiments' pool), kept as ``fleet_sizing`` as ``pdcore size --fleet
  --json`` writes it, without its wall time (``results.json`` holds no wall-clock times);
- ``commands`` gives the ``compare`` and ``size`` commands that reproduce each half on their own.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from typing import Any

from pdcore.fleet import Fleet
from pdcore.report.study import Settings
from pdcore.sim.fleet_sizing import DEFAULT_CAPABLE_SHARES, parse_capable_shares, size_fleet_sweep
from pdcore.sim.scenario import Scenario
from pdcore.traces import Workload

__all__ = ["SWEPT_POLICIES", "fleet_study_section"]

SWEPT_POLICIES = ("cloud-only", "pd-device")
"""The policies sized at each capable share (those of ``pdcore size --fleet`` by default)."""

Progress = Callable[[str, int, int], None]


def _commands(fleet: str, settings: Settings, policies: Sequence[str]) -> dict[str, str]:
    """The commands that compute each half of the section on their own."""
    common = [
        "--fleet", fleet, "--requests", str(settings.synthetic_requests), "--limit", str(settings.window),
        "--seed", str(settings.seed), "--device", settings.device, "--cloud", settings.cloud,
        "--network", settings.network,
    ]  # fmt: skip
    compare = ["pdcore", "compare", *common, "--policies", ",".join(policies), "--json", "C.json"]
    size = ["pdcore", "size", *common, "--policies", ",".join(SWEPT_POLICIES)]
    size += ["--target", f"{settings.target:g}"]
    size += ["--capable-shares", DEFAULT_CAPABLE_SHARES, "--json", "S.json"]
    return {"compare": shlex.join(compare), "size": shlex.join(size)}


def fleet_study_section(
    workload: Workload,
    scenario: Scenario,
    fleet: Fleet,
    *,
    fleet_name: str,
    settings: Settings,
    policies: Sequence[str],
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The section (module docstring); ``workload`` is the whole embedded default, ``fleet_name`` the
    ``--fleet`` given."""
    seed, target = settings.seed, settings.target
    cut = workload.limit(settings.window)
    over = scenario.replace(fleet=fleet)
    total = len(policies) + 1
    by_class: dict[str, dict[str, Any]] = {}
    for done, policy in enumerate(policies):
        if progress is not None:
            progress("fleet", done, total)
        report = over.run(cut, policy, seed=seed).aggregate()
        by_class[policy] = {"by_class": report["by_class"]}
    shares = parse_capable_shares(DEFAULT_CAPABLE_SHARES)
    sweep = size_fleet_sweep(
        cut, scenario, fleet, SWEPT_POLICIES, shares, executor="serial", seed=seed, target=target
    )
    sizing = sweep.describe()
    del sizing["wall_s"]
    if progress is not None:
        progress("fleet", total, total)
    return {
        "fleet": fleet.describe(),
        "workload": cut.describe(),
        "window": len(cut),
        "target": target,
        "capable_shares": list(shares),
        "policies": by_class,
        "fleet_sizing": sizing,
        "commands": _commands(fleet_name, settings, policies),
    }

"""``pdcore size --fleet``: the GPUs and dollars per month each policy needs at the SLO over a fleet, and how
many GPUs a policy saves against cloud-only as the share of capable devices goes from 0 to 100%
(`pdcore.sim.fleet_sizing`: the mix at each share is its rule).

The table goes to standard output (one row per mix: the fleet as given, then each ``--capable-shares``
percent), progress and errors to standard error; ``--json`` writes the whole report atomically
(`pdcore.outputs`). Dollars are the cloud profile's ``[price]`` times the GPUs over the mean month
(`pdcore.sim.planner_search.usd_per_month`); "-" without a price.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from pdcore import __version__
from pdcore.cli.options import missing_extra, progress_bars, stderr, stdout
from pdcore.cli.size_planner import DEFAULT_DEPLOYMENTS
from pdcore.exceptions import InvalidInputError
from pdcore.outputs import write_text
from pdcore.policies import split_policy_specs
from pdcore.sim.fleet_sizing import (
    DEFAULT_CAPABLE_SHARES,
    FLEET_EXECUTORS,
    FleetSweep,
    MixSizing,
    parse_capable_shares,
    size_fleet_sweep,
)
from pdcore.sim.metrics import dumps
from pdcore.sim.planner_search import PlannedCloud
from pdcore.sim.scenario import Scenario
from pdcore.traces import Workload

__all__ = ["CapableSharesOption", "check_fleet_flags", "size_over_fleet", "sweep_table"]

CapableSharesOption = Annotated[
    str | None,
    typer.Option(
        "--capable-shares",
        help="With --fleet: the capable shares to size at, percent, comma-separated (default "
        f"{DEFAULT_CAPABLE_SHARES}); the capable classes are scaled to each share and the rest goes to "
        "the classes with no capable device.",
    ),
]


def check_fleet_flags(
    fleet: str | None,
    capable_shares: str | None,
    *,
    model_family: str | None,
    clouds: str | None,
    deployments: str,
    executor: str,
) -> tuple[float, ...] | None:
    """The capable shares to sweep with ``--fleet``; None without it.

    Raises:
        InvalidInputError: ``--capable-shares`` without ``--fleet``, ``--fleet`` with a search over clouds,
            an unknown executor (or Ray not installed), or a bad share (`parse_capable_shares`).
    """
    if fleet is None:
        if capable_shares is not None:
            raise InvalidInputError("--capable-shares sweeps a fleet; fix: add --fleet, or drop it")
        return None
    if model_family is not None or clouds is not None or deployments != DEFAULT_DEPLOYMENTS:
        raise InvalidInputError(
            "--fleet sizes one cloud profile and deployment; fix: drop --model-family, --clouds and "
            "--deployments, and pick them with --cloud and --deployment"
        )
    if executor not in FLEET_EXECUTORS:
        raise InvalidInputError(
            f"--executor {executor!r} is unknown; fix: use one of {', '.join(FLEET_EXECUTORS)}"
        )
    if executor == "ray" and importlib.util.find_spec("ray") is None:
        raise InvalidInputError(missing_extra("ray", "ray", "--executor ray") + ", or use --executor threads")
    return parse_capable_shares(DEFAULT_CAPABLE_SHARES if capable_shares is None else capable_shares)


def _gpus(planned: PlannedCloud) -> str:
    sized = planned.sizing
    if sized.gpus is None:
        return "unattainable"
    return f"{sized.gpus} ({sized.cloud})" if sized.bound == "found" else f"{sized.gpus} (no cloud)"


def _usd(planned: PlannedCloud) -> str:
    usd = planned.usd_per_month
    return "-" if usd is None else f"${usd:,.0f}"


def _saved(mix: MixSizing, name: str) -> str:
    saved = mix.gpus_saved().get(name)
    return "-" if saved is None else str(saved)


def sweep_table(sweep: FleetSweep, title: str) -> Table:
    """One row per mix: the capable share, then per policy its GPUs (and cloud) and $/month, and per
    policy other than cloud-only the GPUs it saves against cloud-only."""
    table = Table(title=escape(title), title_justify="left")
    policies = list(sweep.mixes[0].planned)
    savers = [name for name in policies if name != "cloud-only" and "cloud-only" in policies]
    table.add_column("mix")
    table.add_column("capable")
    for name in policies:
        table.add_column(f"{escape(name)} GPUs")
        table.add_column(f"{escape(name)} $/month")
    for name in savers:
        table.add_column(f"{escape(name)} GPUs saved")
    for mix in sweep.mixes:
        row = [escape(mix.label), f"{mix.capable_share:.1%}"]
        for name in policies:
            row += [_gpus(mix.planned[name]), _usd(mix.planned[name])]
        row += [_saved(mix, name) for name in savers]
        table.add_row(*row)
    return table


def size_over_fleet(
    workload: Workload,
    scenario: Scenario,
    policies: str,
    shares: tuple[float, ...],
    *,
    executor: str,
    settings: dict[str, Any],
    window: str,
    json_out: Path | None,
) -> None:
    """The sweep of ``pdcore size --fleet``: the table, the wall time and the JSON (module docstring)."""
    assert scenario.fleet is not None
    names = split_policy_specs(policies)
    tasks = (len(shares) + 1) * len(names)
    with progress_bars(stderr()) as progress:
        bar = progress.add_task("sizing", total=tasks)
        sweep = size_fleet_sweep(
            workload,
            scenario,
            scenario.fleet,
            names,
            shares,
            executor=executor,
            seed=settings["seed"],
            target=settings["target"],
            max_replicas=settings["max_replicas"],
            finished=lambda _task: progress.advance(bar),
        )
    fleet = scenario.fleet
    title = (
        f"{workload.name} over fleet {fleet.name} ({fleet.capable_share:.1%} capable) on "
        f"{scenario.cloud.name}, {scenario.deployment}: {window}"
    )
    console = stdout()
    console.print(sweep_table(sweep, title))
    document: dict[str, Any] = {
        "pdcore_version": __version__,
        "workload": workload.describe(),
        "config": scenario.describe() | settings | {"executor": executor},
        "capable_shares": list(shares),
        "fleet_sizing": sweep.describe(),
    }
    if json_out is not None:
        write_text(json_out, dumps(document))
    console.print(
        f"sized {tasks} searches ({sweep.runs} runs) in {sweep.wall_s:.1f} s on {executor}"
        + (f"; wrote {escape(str(json_out))}" if json_out is not None else ""),
        soft_wrap=True,
    )

"""``pdcore size --model-family NAME`` (or ``--clouds a,b``): the planner's sizing over clouds, splits and
policies (`pdcore.sim.planner_search`).

Without ``--model-family`` or ``--clouds``, ``pdcore size`` sizes the one ``--cloud`` as before, and its
output does not change; `planner_clouds` refuses this module's flags there, and ``--cloud`` and
``--deployment`` here (the search names its clouds and deployments itself). The table goes to standard
output with each policy's two Pareto fronts marked (``T``: goodput per GPU against TTFT p90; ``S``:
against per-user tokens/s); the JSON (``--json``) holds every candidate with ``on_ttft_front`` and
``on_speed_front``, the fronts by policy and the search's wall time, written atomically (`pdcore.outputs`).
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import Progress, TaskID
from rich.table import Table

from pdcore import __version__
from pdcore.cli.options import DEFAULT_CLOUD, missing_extra, progress_bars, stderr, stdout
from pdcore.exceptions import InvalidInputError
from pdcore.outputs import write_text
from pdcore.policies import split_policy_specs
from pdcore.sim.metrics import dumps
from pdcore.sim.planner_search import (
    EXECUTORS,
    PlannedCloud,
    PlannerSearch,
    SearchTask,
    model_family_clouds,
    search_candidates,
)
from pdcore.sim.scenario import Scenario
from pdcore.sim.spec import ScenarioSpec, named_input
from pdcore.traces import Workload

__all__ = [
    "DEFAULT_DEPLOYMENTS",
    "DEFAULT_EXECUTOR",
    "PlannerFlags",
    "clouds_inputs",
    "plan_sizes",
    "planner_clouds",
]

DEFAULT_DEPLOYMENTS = "disaggregated,colocated"
DEFAULT_EXECUTOR = "threads"
_DEPLOYMENTS = ("disaggregated", "colocated")

ModelFamilyOption = Annotated[
    str | None,
    typer.Option(
        "--model-family",
        help="Search every shipped cloud profile of this model (e.g. llama3-70b: each GPU and TP), each "
        "split and policy, and print the Pareto front.",
    ),
]
CloudsOption = Annotated[
    str | None,
    typer.Option(
        "--clouds", help="Like --model-family, over these cloud profiles (comma-separated names or paths)."
    ),
]
DeploymentsOption = Annotated[
    str,
    typer.Option(
        "--deployments", help="With --model-family/--clouds: the deployments searched, comma-separated."
    ),
]
SizeExecutorOption = Annotated[
    str,
    typer.Option(
        "--executor",
        help=f"With --model-family/--clouds or --fleet: where the searches run: {', '.join(EXECUTORS)} "
        "(ray needs pdcore[ray]).",
    ),
]


class PlannerFlags:
    """The planner's flags as given (`planner_clouds` checks them)."""

    def __init__(self, model_family: str | None, clouds: str | None, deployments: str, executor: str) -> None:
        self.model_family = model_family
        self.clouds = clouds
        self.deployments = deployments
        self.executor = executor


def _split(text: str, flag: str, example: str) -> list[str]:
    names = [name.strip() for name in text.split(",")]
    if not names or any(not name for name in names):
        raise InvalidInputError(
            f"{flag} {text!r} has an empty name; fix: pass names split by commas, e.g. {example}"
        )
    doubled = sorted({name for name in names if names.count(name) > 1})
    if doubled:
        raise InvalidInputError(f"{flag} names {', '.join(doubled)} twice; fix: name each once")
    return names


def _check_executor(executor: str) -> None:
    if executor not in EXECUTORS:
        raise InvalidInputError(f"--executor {executor!r} is unknown; fix: use one of {', '.join(EXECUTORS)}")
    if executor == "ray" and importlib.util.find_spec("ray") is None:
        raise InvalidInputError(missing_extra("ray", "ray", "--executor ray") + ", or use --executor threads")


def planner_clouds(flags: PlannerFlags, *, cloud: str, deployment: str) -> tuple[list[str], list[str]] | None:
    """The clouds and deployments to search; None when neither ``--model-family`` nor ``--clouds`` is given.

    Raises:
        InvalidInputError: Flags that do not go together, an unknown family, executor or deployment, or a
            name given twice.
    """
    if flags.model_family is None and flags.clouds is None:
        if flags.deployments != DEFAULT_DEPLOYMENTS or flags.executor != DEFAULT_EXECUTOR:
            raise InvalidInputError(
                "--deployments and --executor apply to a search over clouds; fix: add --model-family or "
                "--clouds, or drop them"
            )
        return None
    if flags.model_family is not None and flags.clouds is not None:
        raise InvalidInputError("--model-family and --clouds both name the clouds; fix: pass one of them")
    if cloud != DEFAULT_CLOUD:
        raise InvalidInputError(
            "--cloud sizes one profile and --model-family/--clouds several; fix: drop --cloud, or list it "
            "in --clouds"
        )
    if deployment != "disaggregated":
        raise InvalidInputError(
            "--deployment sizes one deployment; fix: use --deployments with --model-family/--clouds"
        )
    _check_executor(flags.executor)
    deployments = _split(flags.deployments, "--deployments", DEFAULT_DEPLOYMENTS)
    for name in deployments:
        if name not in _DEPLOYMENTS:
            raise InvalidInputError(f"--deployments names {name!r}; fix: use {' and/or '.join(_DEPLOYMENTS)}")
    if flags.clouds is not None:
        example = "llama3-70b-a100-tp4-vidur,llama3-70b-a100-tp8-vidur"
        return _split(flags.clouds, "--clouds", example), deployments
    return model_family_clouds(str(flags.model_family)), deployments


def clouds_inputs(clouds: list[str]) -> dict[str, str]:
    """The profile files ``--clouds`` reads, keyed so that each is named (`pdcore.outputs.check_outputs`)."""
    found: dict[str, str] = {}
    for index, name in enumerate(clouds):
        found |= {f"--clouds[{index}]": path for path in named_input("--clouds", name).values()}
    return found


def _scenarios(spec: ScenarioSpec, clouds: list[str], deployments: list[str]) -> list[Scenario]:
    scenarios = [
        spec.replace(cloud=cloud, deployment=deployment).build()
        for cloud in clouds
        for deployment in deployments
    ]
    names = [scenario.cloud.name for scenario in scenarios[:: len(deployments)]]
    doubled = sorted({name for name in names if names.count(name) > 1})
    if doubled:
        raise InvalidInputError(
            f"--clouds holds two profiles named {', '.join(doubled)}; fix: give each profile its own name"
        )
    return scenarios


def _money(value: float | None) -> str:
    return "no price" if value is None else f"{value:,.0f}"


def _figure(value: float | None, digits: int) -> str:
    if value is None or math.isnan(value):
        return "-"
    return "inf" if math.isinf(value) else f"{value:.{digits}f}"


def _split_text(candidate: PlannedCloud) -> str:
    sized = candidate.sizing
    if sized.bound == "found":
        return sized.cloud
    return "no cloud" if sized.bound == "no_cloud" else "unattainable"


def _table(workload: Workload, found: PlannerSearch, window: str) -> Table:
    rate = found.candidates[0].sizing.rate_rps if found.candidates else 0.0
    table = Table(title=f"{escape(workload.name)}: {window}, {rate:.2f} req/s", title_justify="left")
    columns = (
        "policy",
        "cloud",
        "TP",
        "split",
        "GPUs",
        "goodput/GPU",
        "$/hour",
        "$/month",
        "TTFT p90",
        "tok/s/user",
        "front",
    )
    for column in columns:
        table.add_column(column)
    for c in found.candidates:
        sized = c.sizing
        table.add_row(
            escape(c.policy),
            escape(c.cloud),
            str(c.tensor_parallel),
            _split_text(c),
            "-" if sized.gpus is None else str(sized.gpus),
            "-" if sized.gpus is None else _figure(sized.goodput_per_gpu_rps, 3),
            "-"
            if sized.gpus is None
            else (_money(c.usd_per_hour) if c.usd_per_hour is None else f"{c.usd_per_hour:,.2f}"),
            "-" if sized.gpus is None else _money(c.usd_per_month),
            _figure(c.ttft_p90_s, 2),
            _figure(c.user_tokens_per_s, 1),
            " ".join(mark for mark, on in (("T", c.on_ttft_front), ("S", c.on_speed_front)) if on),
        )
    return table


def _label(candidate: PlannedCloud) -> str:
    return f"{candidate.cloud} {_split_text(candidate)}"


def _document(
    workload: Workload, scenarios: list[Scenario], found: PlannerSearch, settings: dict[str, Any]
) -> dict[str, Any]:
    base = scenarios[0].describe()
    keep = ("device_profile", "network", "slo", "qoe_tokens_per_s", "k_sites")
    config = {key: base[key] for key in keep if key in base}
    config["cloud_profiles"] = [scenario.describe()["profiles"]["cloud"] for scenario in scenarios]
    return {
        "pdcore_version": __version__,
        "workload": workload.describe(),
        "config": config | settings,
        "candidates": [candidate.describe() for candidate in found.candidates],
        "fronts": {
            policy: {kind: [_label(c) for c in front] for kind, front in fronts.items()}
            for policy, fronts in found.fronts().items()
        },
        "search": {
            "candidates": len(found.candidates),
            "probes": found.runs,
            "wall_s": found.wall_s,
            "executor": found.executor,
        },
    }


class _Bar:
    """One progress task counting the candidates' searches."""

    def __init__(self, progress: Progress, total: int) -> None:
        self.progress = progress
        self.task: TaskID = progress.add_task("sizing candidates", total=total)

    def finished(self, _task: SearchTask) -> None:
        self.progress.update(self.task, advance=1)


def plan_sizes(
    workload: Workload,
    spec: ScenarioSpec,
    searched: tuple[list[str], list[str]],
    policies: str,
    *,
    executor: str,
    window: str,
    settings: dict[str, Any],
    json_out: Path | None,
) -> PlannerSearch:
    """Searches every (cloud, deployment, policy), prints the table, the fronts and the wall time, and
    writes the JSON. ``settings`` holds ``seed``, ``target`` and ``max_replicas``."""
    clouds, deployments = searched
    scenarios = _scenarios(spec, clouds, deployments)
    tasks = [
        SearchTask(workload, scenario, policy, settings["seed"], settings["target"], settings["max_replicas"])
        for policy in split_policy_specs(policies)
        for scenario in scenarios
    ]
    with progress_bars(stderr()) as progress:
        bar = _Bar(progress, len(tasks))
        found = search_candidates(tasks, executor=executor, finished=bar.finished)
    console = stdout()
    console.print(_table(workload, found, window))
    console.print(
        "front: T = goodput/GPU against TTFT p90, S = goodput/GPU against tok/s/user (each policy's own)",
        soft_wrap=True,
    )
    for policy, fronts in found.fronts().items():
        for kind, what in (("ttft", "TTFT"), ("speed", "speed")):
            text = ", ".join(_label(c) for c in fronts[kind]) or "none (no candidate meets the SLO with GPUs)"
            console.print(f"{what} front of {escape(policy)}: {escape(text)}", soft_wrap=True)
    for c in found.candidates:
        if c.sizing.bound == "unattainable" and c.sizing.reason:
            note = f"{c.policy} on {c.cloud} {c.sizing.deployment}: {c.sizing.reason}"
            stderr().print(f"[yellow]note:[/yellow] {escape(note)}", soft_wrap=True)
    document = _document(
        workload,
        scenarios,
        found,
        settings
        | {"deployments": deployments, "policies": split_policy_specs(policies), "executor": executor},
    )
    if json_out is not None:
        write_text(json_out, dumps(document))
    console.print(
        f"searched {len(tasks)} candidates ({found.runs} clouds probed) in {found.wall_s:.1f} s on {executor}"
        + (f"; wrote {escape(str(json_out))}" if json_out is not None else ""),
        soft_wrap=True,
    )
    return found

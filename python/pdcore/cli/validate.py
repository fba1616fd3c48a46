"""``pdcore validate``: live requests (or conversations, ``--turns``) against the simulator's prediction
(`pdcore.runtime.validate`), its tables and its verdict: exit code 1 when the simulator misses the agreement
goal. Registered with the other live commands (`pdcore.cli.runtime.register`).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from pdcore.cli.live_options import CloudUrlOption, MaxTpotOption, ModelOption
from pdcore.cli.live_options import cloud_params as _params
from pdcore.cli.live_options import device_profile as _profile
from pdcore.cli.live_options import device_threads as _threads
from pdcore.cli.live_options import k_flag as _k
from pdcore.cli.live_options import lengths_flag as _lengths
from pdcore.cli.live_options import ms as _ms
from pdcore.cli.options import check_outputs, default_model, profile_path, reported, stderr
from pdcore.cli.turn_table import turn_table
from pdcore.outputs import write_text
from pdcore.profiles import load_cloud_profile
from pdcore.slo import DEFAULT_MAX_TPOT_S

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pdcore.runtime.validate import Baseline, ValidationReport

__all__ = ["validate"]


def validate(
    *,
    profile: Annotated[str, typer.Option("--profile", help="Measured device profile (.toml or name).")],
    cloud_url: CloudUrlOption = None,
    model: ModelOption = None,
    threads: Annotated[int | None, typer.Option("--threads", help="Device threads, as profiled.")] = None,
    requests: Annotated[int, typer.Option("--requests", help="Live requests.")] = 3,
    prompt_tokens: Annotated[
        str, typer.Option("--prompt-tokens", help="Prompt lengths the requests cycle through.")
    ] = "256,512,1024",
    k: Annotated[str, typer.Option("--k", help="Cloud tokens after the first, or 'auto'.")] = "auto",
    k_margin: Annotated[
        float, typer.Option("--k-margin", help="Padding of k='auto' (0: the bare catch-up rule).")
    ] = 0.2,
    max_extensions: Annotated[
        int, typer.Option("--max-extensions", help="Continuation requests per answer (0: a fixed k).")
    ] = 4,
    max_tokens: Annotated[int, typer.Option("--max-tokens", help="Answer length per request.")] = 200,
    max_tpot: MaxTpotOption = DEFAULT_MAX_TPOT_S,
    warm: Annotated[
        bool, typer.Option("--warm/--no-warm", help="Cache each prompt on the cloud first (a chat turn).")
    ] = True,
    tolerance: Annotated[float, typer.Option("--tolerance", help="Agreement goal, relative.")] = 0.15,
    cloud_param: Annotated[
        list[str] | None, typer.Option("--cloud-param", help="Extra request field KEY=VALUE (repeatable).")
    ] = None,
    baselines: Annotated[
        bool, typer.Option("--baselines", help="Also time each prompt cloud-only and device-only.")
    ] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the report as JSON.")] = None,
    cloud_profile: Annotated[
        str | None,
        typer.Option("--cloud-profile", help="The endpoint's profile from pdcore profile-cloud (.toml)."),
    ] = None,
    api: Annotated[
        str, typer.Option("--api", help="The endpoint's API: completions, or chat for chat-only endpoints.")
    ] = "completions",
    turns: Annotated[int, typer.Option("--turns", help="Turns per conversation; 1: single requests.")] = 1,
) -> None:
    """Run live P/D-Device requests and compare TTFT and gaps with the simulator's prediction."""
    with reported(live=True):
        check_outputs({"--json": json_out}, {"--model": model, "--profile": profile_path(profile)})
        from pdcore.runtime import CloudClient, Device  # noqa: PLC0415  # reason: the optional runtime
        from pdcore.runtime import validate as live  # noqa: PLC0415  # reason: the optional runtime

        live.check_turns(turns, name="--turns")
        device_profile = _profile(profile, threads, model)
        assert device_profile is not None
        measured_cloud = load_cloud_profile(cloud_profile) if cloud_profile is not None else None
        console = stderr()

        async def run() -> live.ValidationReport:
            cloud = CloudClient(cloud_url, extra_body=_params(cloud_param), api=api)
            device = Device.llama(
                default_model(model), n_threads=_threads(threads), profile=device_profile,
                conversation_cache=turns > 1,
            )  # fmt: skip
            try:
                return await live.validate(
                    cloud=cloud, device=device, device_profile=device_profile, requests=requests,
                    prompt_tokens=_lengths(prompt_tokens, "--prompt-tokens"), k=_k(k), k_margin=k_margin,
                    max_extensions=max_extensions, max_tpot_s=max_tpot, max_tokens=max_tokens, warm=warm,
                    tolerance=tolerance, baselines=baselines, cloud_profile=measured_cloud,
                    progress=lambda line: console.print(escape(line)), turns=turns,
                )  # fmt: skip
            finally:
                await cloud.aclose()
                device.close()

        report = asyncio.run(run())
        _print_validation(report, tolerance)
        if json_out is not None:
            write_text(json_out, json.dumps(report.to_dict(), indent=2) + "\n")
        if not report.passed:
            raise typer.Exit(code=1)


def _print_validation(report: ValidationReport, tolerance: float) -> None:
    """The comparison, the stalls left out of it, the baselines and the verdict, on standard error."""
    console = stderr()
    console.print(_comparison_table(report))
    stalls = max(run.max_gap_all_s for run in report.runs)
    console.print(
        "max_gap_s leaves out the stalls of the cloud's stream and of the device's own decode after the "
        f"hand-off (a token over max_tpot late); with them the largest gap was {stalls * 1e3:.0f} ms.\n"
        "predicted: the profile scaled by the device's speed in each request's calibration; in situ: by "
        f"its speed in the live run (median {report.device_speed_ratio:.2f}x its profile's times)"
    )
    console.print(escape(report.spread_note))
    if report.per_turn:
        console.print(turn_table(report))
    if report.baselines:
        console.print(_baseline_table(report.baselines))
    verdict = "[green]PASS[/green]" if report.passed else "[red]FAIL[/red]"
    console.print(f"agreement within {tolerance * 100:g}%: {verdict}")


def _comparison_table(report: ValidationReport) -> Table:
    table = Table(title="live vs simulator (means over requests)", title_justify="left", header_style="bold")
    for column in ("metric", "live", "predicted", "error", "per-request errors", "in situ", "error "):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for comparison, in_situ in zip(report.comparisons, report.in_situ, strict=True):
        table.add_row(
            comparison.metric,
            f"{comparison.live_mean * 1e3:.1f} ms",
            f"{comparison.predicted_mean * 1e3:.1f} ms",
            f"{comparison.error * 100:.1f}%",
            ", ".join(f"{error * 100:.0f}%" for error in comparison.request_errors),
            f"{in_situ.predicted_mean * 1e3:.1f} ms",
            f"{in_situ.error * 100:.1f}%",
        )
    return table


def _baseline_table(baselines: Sequence[Baseline]) -> Table:
    table = Table(title="TTFT against one side alone", title_justify="left", header_style="bold")
    for column in (
        "prompt tokens",
        "P/D-Device",
        "its cloud token",
        "cloud-only",
        "device-only",
        "reduction",
    ):
        table.add_column(column, justify="right")
    for baseline in baselines:
        reduction = baseline.reduction_vs_device
        table.add_row(
            str(baseline.prompt_tokens),
            _ms(baseline.pd_ttft_s),
            _ms(baseline.pd_cloud_ttft_s),
            _ms(baseline.cloud_ttft_s),
            _ms(baseline.device_ttft_s),
            "-" if reduction is None else f"{reduction * 100:.1f}%",
        )
    return table

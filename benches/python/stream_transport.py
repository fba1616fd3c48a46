"""The cloud stream's transport: the first event of one cached request through a raw socket, through httpx
and through `pdcore.runtime.CloudClient` (aiohttp, `pdcore.runtime.cloud_http`), paired per round.

Each round takes a seeded prompt of 512, 1,024 or 2,048 tokens, has the cloud cache it (a one-token
request), and sends the same streamed request through each client in turn, the cloud caching it again
before each, so that every client meets the same cloud work (a one-token prefill and a decode step) and the
difference is the client's own. Reported: the median and p90 of the time from sending to the first event
with text, per client. Needs the `device` extra and a cloud (llama.cpp's server, say)::

    python benches/python/stream_transport.py --cloud-url http://127.0.0.1:8765 --rounds 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

import httpx

from pdcore.runtime import CloudClient
from pdcore.runtime.openai_api import GREEDY_SAMPLING
from serve_bench import TTFT_LENGTHS, story
from serve_harness import raw_sse, warm


async def _through_httpx(http: httpx.AsyncClient, url: str, body: dict[str, object]) -> float:
    started = time.perf_counter()
    async with http.stream("POST", url, json=body, headers={"Accept": "text/event-stream"}) as response:
        async for line in response.aiter_lines():
            if line.startswith("data: {") and json.loads(line[6:])["choices"][0].get("text"):
                return time.perf_counter() - started
    raise RuntimeError("the stream sent no text")


async def _through_pdcore(client: CloudClient, prompt: str) -> float:
    started = time.perf_counter()
    async for event in client.stream(prompt, max_tokens=4):
        if event.text:
            return time.perf_counter() - started
    raise RuntimeError("the stream sent no text")


async def run(cloud_url: str, rounds: int, seed: int) -> dict[str, list[float]]:
    """The first-event times per client, in seconds."""
    times: dict[str, list[float]] = {"raw socket": [], "httpx": [], "pdcore (aiohttp)": []}
    endpoint = cloud_url.rstrip("/") + "/v1/completions"
    async with CloudClient(cloud_url) as client, httpx.AsyncClient(timeout=30) as http:
        for index in range(rounds):
            prompt = story(TTFT_LENGTHS[index % len(TTFT_LENGTHS)], seed + index)
            body = {"prompt": prompt, "max_tokens": 4, "stream": True, **GREEDY_SAMPLING}
            await warm(cloud_url, prompt)
            raw = await raw_sse(cloud_url, "/v1/completions", body, to_end=False)
            times["raw socket"].append(raw["ttft_s"])
            await warm(cloud_url, prompt)
            times["httpx"].append(await _through_httpx(http, endpoint, body))
            await warm(cloud_url, prompt)
            times["pdcore (aiohttp)"].append(await _through_pdcore(client, prompt))
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cloud-url", required=True, help="the cloud's base URL")
    parser.add_argument("--rounds", type=int, default=30, help="paired rounds")
    parser.add_argument("--seed", type=int, default=100, help="seed of the prompts")
    args = parser.parse_args(argv)
    times = asyncio.run(run(args.cloud_url, args.rounds, args.seed))
    print("| client | median | p90 |\n|---|---:|---:|")
    for name, values in times.items():
        ordered = sorted(values)
        p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
        print(f"| {name} | {statistics.median(ordered) * 1e3:.2f} ms | {p90 * 1e3:.2f} ms |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What the ``pdcore serve`` benchmark (``serve_bench.py``) runs on: the command started on a free port, a
minimal raw SSE client, the spread of a measurement, the resident memory of a process and its children, and
busy loops that stand for the user's other work on the machine.

The raw client is the same for the server and for the cloud (a raw socket, one HTTP/1.1 request, the events
read line by line), so its own cost cancels in a paired difference, as in ``live_ttft.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np

from pdcore.runtime.openai_api import GREEDY_SAMPLING
from pdcore.runtime.testing import free_port

HUNG_S = 60.0
"""A stream with no answer within this long is counted as hung (ours: the answers measured take seconds)."""


@contextmanager
def serving(cloud_url: str, threads: int, *flags: str) -> Iterator[tuple[str, int]]:
    """``pdcore serve`` on a free port: yields its base URL and pid; stopped with SIGTERM."""
    port = free_port()
    command = [
        sys.executable,
        "-c",
        "from pdcore.cli import main; main()",
        "serve",
        "--cloud-url",
        cloud_url,
        "--threads",
        str(threads),
        "--port",
        str(port),
        *flags,
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise SystemExit(
                    f"pdcore serve exited: {process.stderr.read().decode() if process.stderr else ''}"
                )
            if time.monotonic() > deadline:
                raise SystemExit("pdcore serve did not answer /health within 120 s")
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield base, process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def busy_loops(count: int) -> Iterator[list[int]]:
    """``count`` processes that each spin on a core at the caller's priority (nice 0 for a bench run as is):
    the user's other CPU-bound work beside the server (a build, a video call). Yields their pids; killed
    after."""
    if count < 0:
        raise SystemExit(f"--busy {count}: fix: pass a count of busy loops from 0")
    loops = [
        subprocess.Popen(
            [sys.executable, "-c", "while True: pass"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]
    try:
        yield [loop.pid for loop in loops]
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()


async def raw_sse(url: str, path: str, body: dict[str, Any], *, to_end: bool) -> dict[str, Any]:
    """A minimal SSE client on a raw socket: ``ttft_s`` from connecting to the first event with text; with
    ``to_end``, also the answer's ``text`` and the ``pdcore`` field when the stream has one."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    payload = json.dumps(body | {"stream": True}).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Accept: text/event-stream\r\nContent-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
    ).encode()
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(head + payload)
    await writer.drain()
    found: dict[str, Any] = {"ttft_s": None, "text": "", "pdcore": None}
    try:
        while line := await reader.readline():
            if not line.startswith(b"data: {"):
                continue
            data = json.loads(line[6:])
            choice = (data.get("choices") or [{}])[0]
            text = choice.get("text") or (choice.get("delta") or {}).get("content") or ""
            if text and found["ttft_s"] is None:
                found["ttft_s"] = time.perf_counter() - started
                if not to_end:
                    break
            found["text"] += text
            found["pdcore"] = data.get("pdcore", found["pdcore"])
    finally:
        writer.close()
    if found["ttft_s"] is None:
        raise RuntimeError(f"{url}{path} sent no text")
    return found


async def warm(cloud_url: str, prompt: str) -> None:
    """A one-token request: the cloud caches ``prompt``."""
    await raw_sse(
        cloud_url, "/v1/completions", {"prompt": prompt, "max_tokens": 1, **GREEDY_SAMPLING}, to_end=True
    )


def spread(values: list[float], scale: float = 1e3) -> dict[str, float]:
    """Median, p90, p99 and max of ``values`` (in ms by default)."""
    array = np.asarray(values, dtype=float) * scale
    return {
        "n": int(array.size),
        "median": float(np.median(array)),
        "p90": float(np.quantile(array, 0.9)),
        "p99": float(np.quantile(array, 0.99)),
        "max": float(array.max()),
    }


def memory_kib(pid: int) -> dict[str, int]:
    """``VmRSS`` and ``VmHWM`` (the peak) of ``pid`` in KiB, from ``/proc`` (empty when it is gone)."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    return {line.split(":")[0]: int(line.split()[1]) for line in lines if line.startswith(("VmRSS", "VmHWM"))}


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(child) for child in (task / "children").read_text().split()]
    return found


class PeakRss:
    """Samples the RSS of a process and of its children every 50 ms on a thread; keeps the peak of each."""

    def __init__(self, pid: int) -> None:
        self.pids = {"server": pid} | {f"worker {child}": child for child in children(pid)}
        self.peak = dict.fromkeys(self.pids, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            for name, pid in self.pids.items():
                self.peak[name] = max(self.peak[name], memory_kib(pid).get("VmRSS", 0))

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

"""The live steps ``pdcore validate`` runs before each live request (`pdcore.runtime.validate`): the
prompt of real text, the cloud's warm-up and the calibration.

- `make_message` / `make_prompt`: an instruction and `pdcore.runtime.profiler.filler_text`, sized to about
  a given number of device tokens once rendered as a prompt (ChatML by default, or the model's chat
  template, `pdcore.runtime.validate_turns`).
- `warm_up`: a one-token cloud request that caches the prompt on the endpoint (the chat case: the cloud
  has seen the conversation so far).
- `calibrate`: a cloud-only request, timed per event, while the device prefills the same prompt, timed
  against its profile (`CalibrationSample`, its device speed ratio).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import numpy as np

from pdcore.exceptions import InvalidInputError
from pdcore.profiles.device import DeviceProfile
from pdcore.runtime.cloud import CloudClient
from pdcore.runtime.device import Device, chatml
from pdcore.runtime.profiler import filler_text
from pdcore.runtime.validation_report import CalibrationSample

__all__ = ["INSTRUCTION", "calibrate", "make_message", "make_prompt", "warm_up"]

INSTRUCTION = "Read the text below, then write a long story inspired by it.\n\n"
"""What every validate prompt asks: a long answer, so that gaps can be measured."""


async def make_message(
    device: Device, tokens: int, *, seed: int, render: Callable[[str], str] = chatml
) -> str:
    """A user message, `INSTRUCTION` and `filler_text`, whose prompt (``render`` of it) is about ``tokens``
    device tokens (within 2%, at least 4 tokens, after at most three resizes)."""
    words = max(8, tokens * 3 // 4)
    message = INSTRUCTION + filler_text(words, seed=seed)
    for _ in range(3):
        count = await device.count_tokens(render(message))
        if abs(count - tokens) <= max(4, tokens // 50):
            break
        words = max(8, round(words * tokens / count))
        message = INSTRUCTION + filler_text(words, seed=seed)
    return message


async def make_prompt(device: Device, tokens: int, *, seed: int) -> str:
    """A ChatML prompt of about ``tokens`` device tokens: an instruction and `filler_text`."""
    return chatml(await make_message(device, tokens, seed=seed))


async def warm_up(cloud: CloudClient, prompt: str) -> None:
    """A one-token request: caches ``prompt`` on the endpoint and leaves nothing after it in its cache."""
    async for _ in cloud.stream(prompt, max_tokens=1):
        pass


async def calibrate(
    cloud: CloudClient,
    device: Device,
    device_profile: DeviceProfile,
    prompt: str,
    prompt_tokens: int,
    *,
    min_events: int,
    max_events: int,
) -> CalibrationSample:
    """A cloud-only request, timed per event, while the device prefills the same prompt, timed; in the
    live session's order (the cloud request leaves first, then the device tokenizes and prefills). The
    cloud streams until the device is done (at least ``min_events`` events, at most ``max_events``): on a
    machine that hosts both, each side is timed under the load it meets in the live run.

    Raises:
        InvalidInputError: The cloud streamed no text.
    """
    stamps: list[float] = []
    device_done = asyncio.Event()

    async def stream_cloud() -> None:
        started = time.perf_counter()
        async with contextlib.aclosing(cloud.stream(prompt, max_tokens=max_events)) as events:
            async for event in events:
                if event.text:
                    stamps.append(event.at - started)
                if device_done.is_set() and len(stamps) >= min_events:
                    break

    calls: list[tuple[int, float]] = []
    streaming = asyncio.create_task(stream_cloud())
    try:
        await device.start(prompt)
        await device.prefill_prompt(on_progress=lambda done, took: calls.append((done, took)))
        device_done.set()
        await streaming
    finally:
        if not streaming.done():
            streaming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await streaming
    if not stamps:
        raise InvalidInputError("the cloud streamed no text during calibration; fix: check the endpoint")
    return CalibrationSample(
        prompt_tokens=prompt_tokens,
        ttft_s=stamps[0],
        gaps_s=tuple(float(g) for g in np.diff(stamps)),
        device_prefill_s=sum(took for _, took in calls),
        device_profile_s=float(device_profile.prefill_s(prompt_tokens)),
        device_calls=tuple(calls),
    )

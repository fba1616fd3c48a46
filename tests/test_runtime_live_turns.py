"""``validate(turns=3)`` with the real model: SmolLM2-135M through llama.cpp on the device, keeping
conversations, and a real ``python -m llama_cpp.server`` as the cloud (the live fixtures of conftest:
``$PDCORE_CLOUD_URL`` when set, else a server started on a free port; the device profile of
``test_runtime_live``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

pytest.importorskip("httpx", reason="LIVE RUNTIME TESTS SKIPPED: pip install 'pdcore[device]'")
pytest.importorskip("httpx_sse", reason="LIVE RUNTIME TESTS SKIPPED: pip install 'pdcore[device]'")

import test_runtime_live as live
from pdcore.profiles import DeviceProfile
from pdcore.runtime import CloudClient, Device
from pdcore.runtime.validate import ValidationReport, validate

pytestmark = pytest.mark.realtime

# test_runtime_live's module-scoped profile fixture, which pytest finds here by name
profile = live.profile


def test_follow_ups_reuse_the_device_cache_as_the_simulator_predicts(
    cloud_url: str, model: Path, profile: DeviceProfile
) -> None:
    async def go() -> ValidationReport:
        cloud = CloudClient(cloud_url, extra_body=live.SAMPLING)
        device = Device.llama(model, n_threads=1, profile=profile, conversation_cache=True)
        try:
            return await validate(
                cloud=cloud, device=device, device_profile=profile, requests=2, prompt_tokens=(160,),
                max_tokens=120, calibration_tokens=8, pings=3, turns=3,
            )  # fmt: skip
        finally:
            await cloud.aclose()
            device.close()

    report = asyncio.run(go())
    assert [turn.turn for turn in report.per_turn] == [1, 2, 3]
    assert report.per_turn[0].live_cached == (0, 0), "each conversation starts on an empty cache"
    conversations = (report.runs[0:3], report.runs[3:6])
    for index, turn in enumerate(report.per_turn[1:], start=1):
        for number, runs in enumerate(conversations):
            previous = runs[index - 1]
            held, predicted = turn.live_cached[number], turn.predicted_cached[number]
            # both sides reuse at least the previous turn's whole prompt; how much of its answer the device
            # had prefilled or decoded depends on when the cloud ended its part, a race the simulator times
            # from the calibration (exact when the device took over, as on the fakes)
            assert held >= previous.prompt_tokens, (turn, previous.prompt_tokens)
            assert predicted >= previous.prompt_tokens, (turn, previous.prompt_tokens)
            assert abs(held - predicted) <= previous.output_tokens + turn.cached_tolerance, turn

"""``validate``: the cloud fit, and a whole run against a scripted cloud and device."""

from __future__ import annotations

import asyncio
import json
import math

import pytest

pytest.importorskip("httpx", reason="the live runtime needs the `device` extra (httpx, httpx-sse)")
pytest.importorskip("httpx_sse", reason="the live runtime needs the `device` extra (httpx, httpx-sse)")

from pdcore import InvalidInputError
from pdcore.runtime import CloudClient, Device
from pdcore.runtime.testing import CloudScript, FakeCloud, FakeEngine, word_pieces
from pdcore.runtime.validate import CalibrationSample, ValidationReport, fit_cloud, validate

ANSWER = " ".join(f"word{index}" for index in range(120)) + "."


def test_fit_cloud_recovers_the_step_model_and_the_request_overhead() -> None:
    base, per_context, overhead, rtt = 0.010, 2e-5, 0.004, 0.002
    samples = [
        CalibrationSample(
            prompt_tokens=length,
            ttft_s=rtt + overhead + base,
            gaps_s=tuple(base + per_context * (length + i) for i in range(1, 9)),
        )
        for length in (100, 500, 1000)
    ]
    profile, one_way = fit_cloud(samples, rtt_s=rtt, warm=True)
    assert profile.base_s == pytest.approx(base, rel=1e-6)
    assert profile.decode_context_s == pytest.approx(per_context, rel=1e-6)
    assert profile.prefill_token_s == 0.0
    assert one_way == pytest.approx(rtt / 2 + overhead / 2, rel=1e-6)


def test_fit_cloud_first_token_cheaper_than_a_decode_step() -> None:
    samples = [CalibrationSample(prompt_tokens=300, ttft_s=0.001 + 0.005, gaps_s=(0.012, 0.012, 0.012))]
    profile, one_way = fit_cloud(samples, rtt_s=0.001, warm=True)
    assert profile.base_s == pytest.approx(0.005)
    assert profile.decode_seq_s == pytest.approx(0.007)
    assert one_way == pytest.approx(0.0005)


def test_fit_cloud_cold_prefill_slope() -> None:
    samples = [
        CalibrationSample(prompt_tokens=length, ttft_s=0.013 + 1e-3 * length, gaps_s=(0.01, 0.01))
        for length in (100, 400, 800)
    ]
    profile, _ = fit_cloud(samples, rtt_s=0.001, warm=False)
    assert profile.prefill_token_s == pytest.approx(1e-3, rel=1e-3)


def test_fit_cloud_needs_gaps() -> None:
    with pytest.raises(InvalidInputError, match="calibration_tokens"):
        fit_cloud([CalibrationSample(prompt_tokens=10, ttft_s=0.1, gaps_s=())], rtt_s=0.0, warm=True)


def test_validate_end_to_end_with_fakes() -> None:
    fake = FakeEngine(ANSWER, prefill_token_s=0.0005, call_s=0.001, decode_s=0.003)

    async def go() -> ValidationReport:
        cloud = CloudClient(cloud_url)
        device = Device(lambda: fake)
        try:
            return await validate(
                cloud=cloud,
                device=device,
                profile=fake.profile(),
                requests=2,
                prompt_tokens=(200, 400),
                max_tokens=60,
                calibration_tokens=8,
                pings=2,
                baselines=True,
            )
        finally:
            await cloud.aclose()
            device.close()

    with FakeCloud(CloudScript(word_pieces(ANSWER), first_delay_s=0.02, gap_s=0.004)) as cloud:
        cloud_url = cloud.url
        report = asyncio.run(go())
    assert len(report.runs) == 2
    assert [run.output_tokens for run in report.runs] == [60, 60]
    assert {comparison.metric for comparison in report.comparisons} == {"ttft_s", "max_gap_s", "mean_gap_s"}
    for comparison in report.comparisons:
        assert len(comparison.predicted) == 2
        assert all(math.isfinite(value) and value > 0 for value in comparison.predicted)
    ttft = next(comparison for comparison in report.comparisons if comparison.metric == "ttft_s")
    assert ttft.error < 0.5
    assert len(report.baselines) == 2
    for baseline in report.baselines:
        assert baseline.device_ttft_s is not None
        assert baseline.cloud_ttft_s is not None
        reduction = baseline.reduction_vs_device
        assert reduction is not None
        assert reduction > 0
    document = json.loads(json.dumps(report.to_dict()))
    assert document["runs"][0]["summary"]["mode"] == "pd"
    assert document["runs"][0]["timeline"]["tokens"], "each run carries its full timeline"
    assert document["cloud_profile"]["base_s"] > 0

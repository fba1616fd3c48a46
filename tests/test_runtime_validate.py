"""``validate``: the cloud fit, and a whole run against a scripted cloud and device."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import pytest

pytest.importorskip("httpx", reason="the live runtime needs the `device` extra (httpx, httpx-sse)")
pytest.importorskip("httpx_sse", reason="the live runtime needs the `device` extra (httpx, httpx-sse)")

from pdcore import InvalidInputError
from pdcore.runtime import CloudClient, Device
from pdcore.runtime.testing import CloudScript, FakeCloud, FakeEngine, word_pieces
from pdcore.runtime.timeline import Timeline, TokenRecord
from pdcore.runtime.validate import CalibrationSample, LiveRun, ValidationReport, fit_cloud, validate

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


def run_validate(fake: FakeEngine, script: CloudScript, **options: Any) -> ValidationReport:
    """`validate` against a scripted cloud and device, with ``fake.profile()`` as the device profile."""

    async def go(url: str) -> ValidationReport:
        cloud = CloudClient(url)
        device = Device(lambda: fake)
        try:
            return await validate(cloud=cloud, device=device, device_profile=fake.profile(), **options)
        finally:
            await cloud.aclose()
            device.close()

    with FakeCloud(script) as cloud:
        return asyncio.run(go(cloud.url))


def test_validate_end_to_end_with_fakes() -> None:
    fake = FakeEngine(ANSWER, prefill_token_s=0.0005, call_s=0.001, decode_s=0.003)
    report = run_validate(
        fake,
        CloudScript(word_pieces(ANSWER), first_delay_s=0.02, gap_s=0.004),
        requests=2,
        prompt_tokens=(200, 400),
        max_tokens=60,
        calibration_tokens=8,
        pings=2,
        baselines=True,
    )
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
    assert document["runs"][0]["summary"]["mode"] == "pd-device"
    assert document["runs"][0]["timeline"]["tokens"], "each run carries its full timeline"
    assert document["cloud_profile"]["base_s"] > 0
    # the simulator's timeline of each live request, as the comparisons predict it
    for run, entry in zip(report.runs, document["runs"], strict=True):
        predicted = entry["predicted_timeline"]
        assert len(predicted["displays_s"]) == run.output_tokens
        assert len(predicted["from_cloud"]) == run.output_tokens
        assert predicted["k"] == run.k
        assert predicted["displays_s"] == sorted(predicted["displays_s"])
        if predicted["handoff_s"] is not None:
            assert predicted["handoff_estimates"]
    ttft_predicted = [entry["predicted_timeline"]["displays_s"][0] for entry in document["runs"]]
    assert ttft_predicted == pytest.approx(list(ttft.predicted), abs=1e-9)


def test_live_run_max_gap_leaves_out_the_stalls_of_each_sides_own_stream() -> None:
    timeline = Timeline(mode="pd-device", prompt="p", started_at=0.0, max_tpot_s=0.05, min_tpot_s=0.0)
    timeline.prompt_tokens = 10
    timeline.handoff_position = 4
    # (source, available, shown)
    tokens = [
        ("cloud", 0.0, 0.0),
        ("cloud", 0.01, 0.04),  # paced: 40 ms
        ("cloud", 0.24, 0.24),  # the cloud stalled: 200 ms, left out
        ("cloud", 0.25, 0.31),  # the runtime was 70 ms late: counts
        ("device", 0.37, 0.37),  # the hand-off: the device was 60 ms late, counts
        ("device", 0.67, 0.67),  # the device's decode stalled after the hand-off: 300 ms, left out
        ("device", 0.69, 0.69),
    ]
    for position, (source, available, shown) in enumerate(tokens):
        timeline.tokens.append(
            TokenRecord(
                position=position, text="x", source=source, available_s=available, due_s=shown, shown_s=shown
            )
        )
    run = LiveRun.from_timeline(timeline)
    assert run.max_gap_all_s == pytest.approx(0.3)
    assert run.max_gap_s == pytest.approx(0.07), "the runtime's gap and the hand-off gap count, stalls do not"
    assert run.mean_gap_s == pytest.approx(0.69 / 6)


def test_validate_calibrates_the_device_speed_and_tells_the_session() -> None:
    # the device runs twice as slow as the profile it is given: the calibration must see it, the
    # session must start from it, and the prediction must use it
    fake = FakeEngine(ANSWER, prefill_token_s=0.001, call_s=0.002, decode_s=0.003, slowdown=2.0)
    report = run_validate(
        fake,
        # the first token well past a loopback round trip, which is the median of three pings: one ping
        # delayed on a busy machine must not hide every first token inside the round trip
        CloudScript(word_pieces(ANSWER), first_delay_s=0.04, gap_s=0.005),
        requests=2,
        prompt_tokens=(300,),
        max_tokens=40,
        calibration_tokens=4,
        pings=3,
    )
    for sample, run in zip(report.calibration, report.runs, strict=True):
        assert sample.device_prefill_s is not None
        assert sample.device_profile_s is not None
        assert 1.6 < sample.device_speed_ratio < 3.0, sample
        assert run.timeline.prior_speed_ratio == pytest.approx(sample.device_speed_ratio)
        # the device's prefill (~0.7 s) outlasts 40 cloud events at 5 ms: the cloud streamed them all
        assert len(sample.gaps_s) + 1 == 40
    document = report.to_dict()
    assert document["calibration"][0]["device_speed_ratio"] == pytest.approx(
        report.calibration[0].device_speed_ratio
    )
    assert document["runs"][0]["max_gap_all_s"] >= document["runs"][0]["max_gap_s"]
    # the prediction's device strays from its prices by the spread measured over the calibration's calls
    assert all(len(sample.device_calls) >= 2 for sample in report.calibration)
    assert report.step_spread_calls == sum(len(sample.device_calls) for sample in report.calibration)
    assert 0.0 <= report.step_spread <= 2.0
    assert document["step_spread"] == report.step_spread
    assert document["live_step_spread"] == report.live_step_spread
    assert f"{report.step_spread:.3f}" in report.spread_note


def test_cli_defaults_are_the_librarys() -> None:
    import inspect

    from pdcore.cli import runtime as cli_runtime
    from pdcore.cli import validate as cli_validate
    from pdcore.runtime import session

    chat = inspect.signature(cli_runtime.chat).parameters
    check = inspect.signature(cli_validate.validate).parameters
    assert check["max_extensions"].default == session.DEFAULT_MAX_EXTENSIONS
    assert check["k_margin"].default == session.DEFAULT_K_MARGIN
    for parameters in (chat, check):
        assert parameters["max_tpot"].default == session.DEFAULT_MAX_TPOT_S
    assert chat["max_tokens"].default == session.DEFAULT_MAX_TOKENS


@pytest.mark.parametrize(("measured", "profile"), [(None, 1.0), (1.0, None), (0.0, 1.0), (1.0, 0.0)])
def test_a_calibration_without_a_usable_device_time_assumes_the_profile(
    measured: float | None, profile: float | None
) -> None:
    sample = CalibrationSample(
        prompt_tokens=10, ttft_s=0.01, gaps_s=(0.02,), device_prefill_s=measured, device_profile_s=profile
    )
    assert sample.device_speed_ratio == 1.0


def test_small_values_are_judged_against_the_gap_objective() -> None:
    from pdcore.runtime.validate import Comparison

    ttft = Comparison(metric="ttft_s", live=(0.010,), predicted=(0.013,), floor_s=0.05)
    assert ttft.error == pytest.approx(0.06)  # 3 ms against a 50 ms display gap, not 30%
    gap = Comparison(metric="max_gap_s", live=(0.080,), predicted=(0.060,), floor_s=0.05)
    assert gap.error == pytest.approx(0.25)  # above the floor: plain relative error
    assert ttft.request_errors == (pytest.approx(0.06),)
    assert Comparison(metric="x", live=(0.0,), predicted=(0.0,)).error == 0.0


def test_a_measured_cloud_profile_drives_the_prediction() -> None:
    from dataclasses import replace

    from pdcore.profiles import load_cloud_profile
    from pdcore.runtime.validate import cloud_model

    measured = load_cloud_profile("llama3-8b-a100")
    fitted, one_way = fit_cloud(
        [CalibrationSample(prompt_tokens=500, ttft_s=0.030, gaps_s=(0.010, 0.011, 0.012))],
        rtt_s=0.004,
        warm=True,
    )
    assert cloud_model(None, fitted, one_way, rtt_s=0.004, warm=True) == (fitted, one_way)
    cold, cold_one_way = cloud_model(measured, fitted, one_way, rtt_s=0.004, warm=False)
    assert cold == measured
    assert cold_one_way == 0.002
    warm, warm_one_way = cloud_model(measured, fitted, one_way, rtt_s=0.004, warm=True)
    assert (warm.prefill_token_s, warm.prefill_attn_s) == (0.0, 0.0)
    # the calibration's first-token delay is kept, and a decode step is the measured cloud's
    assert warm.cost.lone_prefill_s(500) + 2 * warm_one_way == pytest.approx(0.030, abs=1e-9)
    assert warm.cost.lone_decode_s(700) == pytest.approx(measured.cost.lone_decode_s(700), rel=1e-12)
    # the same when the cached first token is faster than the measured iteration's fixed cost
    slow = replace(measured, base_s=0.050)
    warm, warm_one_way = cloud_model(slow, fitted, one_way, rtt_s=0.004, warm=True)
    assert warm.cost.lone_prefill_s(500) + 2 * warm_one_way == pytest.approx(0.030, abs=1e-9)
    assert warm.cost.lone_decode_s(700) == pytest.approx(slow.cost.lone_decode_s(700), rel=1e-12)

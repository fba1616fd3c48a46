"""``pdcore profile-cloud``: the fit recovers a known cloud; a scripted endpoint yields a loadable profile."""

from __future__ import annotations

import asyncio
import dataclasses
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest.importorskip("httpx", reason="the live runtime needs the `device` extra (httpx, httpx-sse)")
pytest.importorskip("httpx_sse", reason="the live runtime needs the `device` extra (httpx, httpx-sse)")

from pdcore import InvalidInputError
from pdcore._core import CloudCost
from pdcore.cli import app
from pdcore.exceptions import ProfileError
from pdcore.profiles import CloudProfile
from pdcore.profiles.cloud_tables import physics_floors
from pdcore.runtime import CloudClient
from pdcore.runtime.cloud_profiler import (
    CloudMeasurement,
    cloud_profile_toml,
    fit_cloud_profile,
    measure_cloud,
    physics_inputs,
)
from pdcore.runtime.testing import CloudScript, FakeCloud, word_pieces

TRUE = CloudCost(
    base_s=0.004,
    prefill_token_s=2e-4,
    prefill_attn_s=3e-8,
    decode_seq_s=5e-4,
    decode_context_s=1e-6,
    max_tokens_per_iteration=512,
)
RTT = 0.002


def synthetic(batching: bool) -> CloudMeasurement:
    """A measurement of a cloud that follows `TRUE` exactly."""
    lengths = (128, 256, 512, 1024, 2048) * 2
    batches = (1, 2, 4) if batching else (1,)
    rows = [(b, float(b * (128 + i)), 0.0) for b in batches for i in range(1, 30, 4)]
    rows += [(1, float(n + i), 0.0) for n in (128, 256, 512, 1024, 2048) for i in range(1, 6)]
    return CloudMeasurement(
        endpoint="http://cloud/v1/completions",
        rtt_s=RTT,
        prompt_tokens=lengths,
        first_token_s=tuple(RTT + TRUE.lone_prefill_s(n) for n in lengths),
        tokens_counted_by_server=True,
        gap_batch=tuple(b for b, _, _ in rows),
        gap_context=tuple(c for _, c, _ in rows),
        gap_s=tuple(TRUE.iteration_s([], [int(c / b)] * b) for b, c, _ in rows),
        concurrency=batches,
        max_overlap=max(batches),
        context_tokens=4096,
    )


def test_the_fit_recovers_a_known_cloud() -> None:
    fit = fit_cloud_profile(synthetic(batching=True), max_tokens_per_iteration=512)
    assert fit.base_s == pytest.approx(0.004, rel=0.02)
    assert fit.prefill_token_s == pytest.approx(2e-4, rel=0.02)
    assert fit.prefill_attn_s == pytest.approx(3e-8, rel=0.05)
    assert fit.decode_seq_s == pytest.approx(5e-4, rel=0.05)
    assert fit.decode_context_s == pytest.approx(1e-6, rel=0.05)
    assert fit.prefill_error < 0.01
    assert fit.decode_error < 0.01


def test_the_profile_loads_and_prices_the_measured_prompts() -> None:
    m = synthetic(batching=False)
    fit = fit_cloud_profile(m)
    text = cloud_profile_toml(m, fit, name="measured", model="m", gpu="cpu", kv_bytes_per_token=23040)
    profile = CloudProfile.from_toml_text(text)
    assert profile.max_batch_size == 1
    assert profile.kv_cache_tokens == 4096
    assert "one stream at a time" in profile.notes
    for n in (128, 1024, 2048):
        assert profile.cost.lone_prefill_s(n) == pytest.approx(TRUE.lone_prefill_s(n), rel=0.03)
    with pytest.raises(InvalidInputError, match="--kv-cache-tokens"):
        cloud_profile_toml(
            CloudMeasurement(**{**m.__dict__, "context_tokens": None}),
            fit,
            name="x",
            model="m",
            gpu="g",
            kv_bytes_per_token=1,
        )


def test_a_scripted_endpoint_is_measured_end_to_end() -> None:
    script = CloudScript(
        word_pieces(" ".join(["word"] * 40)),
        first_delay_s=0.02,
        gap_s=0.004,
        tokenize=True,
        model_fields={"max_model_len": 2048},
    )
    with FakeCloud(script) as cloud:

        async def run() -> CloudMeasurement:
            async with CloudClient(cloud.url) as client:
                return await measure_cloud(
                    client, lengths=(16, 64), concurrency=(1, 3), decode_tokens=6, repeats=1
                )

        measured = asyncio.run(run())
    assert measured.context_tokens == 2048
    assert measured.tokens_counted_by_server
    assert measured.max_overlap == 3, "the scripted server streams concurrently"
    assert all(t >= 0.02 for t in measured.first_token_s)
    assert len(measured.gap_s) == 2 * 5 + 5 + 3 * 5  # the prefill runs' gaps, then the concurrent ones
    fit = fit_cloud_profile(measured, max_tokens_per_iteration=512)
    profile = CloudProfile.from_toml_text(
        cloud_profile_toml(measured, fit, name="scripted", model="fake", gpu="none", kv_bytes_per_token=64)
    )
    assert profile.max_batch_size == 3
    assert math.isfinite(profile.cost.lone_decode_s(100))


def test_bad_settings_are_refused() -> None:
    async def run(**options: object) -> None:
        async with CloudClient("http://127.0.0.1:9") as client:
            await measure_cloud(client, **options)  # type: ignore[arg-type]

    for options, match in (
        ({"lengths": (64, 32)}, "lengths"),
        ({"concurrency": (0,)}, "concurrency"),
        ({"decode_tokens": 1}, "decode_tokens"),
        ({"repeats": 0}, "repeats"),
    ):
        with pytest.raises(InvalidInputError, match=match):
            asyncio.run(run(**options))
    with pytest.raises(InvalidInputError, match="max_tokens_per_iteration"):
        fit_cloud_profile(synthetic(batching=False), max_tokens_per_iteration=0)


SEVENTY_B = 70e9
"""A model far too large for `TRUE`'s speed on one A100: 2 x 70e9 / (312e12 x 0.85) = 528 us a prefill token
(`TRUE` says 200 us) and 140 GB / 2.039 TB/s = 68.7 ms to read the weights (`TRUE`'s base is 4 ms)."""


def test_a_fit_faster_than_the_hardware_is_held_at_the_physics_floors() -> None:
    m = synthetic(batching=True)
    hardware, size = physics_inputs("a100", parameters=SEVENTY_B)
    assert hardware is not None
    assert size is not None
    assert hardware.peak_dense_flops == 312e12
    token_floor, weights_s = physics_floors(hardware, size, 1)
    free = fit_cloud_profile(m, max_tokens_per_iteration=512)
    assert free.prefill_token_s < token_floor
    assert free.base_s < weights_s
    held = fit_cloud_profile(m, max_tokens_per_iteration=512, hardware=hardware, model_size=size)
    assert held.held == ("prefill_token_s", "base_s")
    assert held.prefill_token_s >= token_floor
    assert held.base_s >= weights_s
    text = cloud_profile_toml(
        m,
        held,
        name="guarded",
        model="m",
        gpu="a100",
        kv_bytes_per_token=1,
        hardware=hardware,
        model_size=size,
    )
    profile = CloudProfile.from_toml_text(text)  # the loader's physics guard accepts it
    assert profile.hardware == hardware
    assert profile.model_size == size
    assert "held at the floor the hardware allows: prefill_token_s, base_s" in profile.notes
    # the same profile priced by the unguarded fit is refused by the loader, naming the key
    with pytest.raises(ProfileError, match=r"\[iteration\] prefill_token_s.*fix: raise prefill_token_s"):
        dataclasses.replace(
            profile, base_s=free.base_s, prefill_token_s=free.prefill_token_s, source="<unguarded>"
        )


def test_a_fit_within_the_hardware_is_left_alone() -> None:
    m = synthetic(batching=True)
    hardware, size = physics_inputs("h100", parameters=1e8)
    free = fit_cloud_profile(m)
    guarded = fit_cloud_profile(m, hardware=hardware, model_size=size)
    assert guarded.held == ()
    assert guarded.prefill_token_s == pytest.approx(free.prefill_token_s)
    assert guarded.base_s == pytest.approx(free.base_s)


def test_the_physics_inputs_come_whole_or_not_at_all() -> None:
    assert physics_inputs("unknown") == (None, None)
    assert physics_inputs("a100") == (None, None)  # a GPU named for the record only
    hardware, size = physics_inputs("my-gpu", peak_dense_flops=1e15, hbm_bytes_per_s=3e12, parameters=8e9)
    assert hardware is not None
    assert hardware.hbm_bytes_per_s == 3e12
    assert size is not None
    assert size.bytes_per_parameter == 2.0
    with pytest.raises(InvalidInputError, match=r"--parameters is missing.*fix: pass --parameters"):
        physics_inputs("my-gpu", peak_dense_flops=1e15, hbm_bytes_per_s=3e12)
    with pytest.raises(InvalidInputError, match=r"--hbm-bandwidth is missing.*a100, a40, h100"):
        physics_inputs("my-gpu", peak_dense_flops=1e15, parameters=8e9)
    with pytest.raises(InvalidInputError, match=r"--parameters = -1\.0; fix: pass a positive number"):
        physics_inputs("a100", parameters=-1.0)


def test_the_command_refuses_half_a_physics_guard_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "cloud.toml"
    args = [
        "profile-cloud",
        "--cloud-url",
        "http://127.0.0.1:9",
        "--out",
        str(out),
        "--gpu-peak-flops",
        "1e15",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "--hbm-bandwidth is missing" in " ".join(result.output.split())
    assert not out.exists()

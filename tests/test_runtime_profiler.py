"""``profile-device``'s measurement and TOML output, on a scripted engine."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pdcore import InvalidInputError
from pdcore.profiles import DeviceProfile
from pdcore.runtime import profiler
from pdcore.runtime.device import DeviceEngine
from pdcore.runtime.profiler import filler_text, fit_prefill, measure, profile_toml, prompt_tokens_of
from pdcore.runtime.testing import FakeEngine


def engine() -> FakeEngine:
    return FakeEngine("abc " * 50, prefill_token_s=0.0002, call_s=0.0005, decode_s=0.001, n_ctx=4096)


def test_filler_text_is_deterministic_and_long_enough() -> None:
    assert filler_text(50, seed=4) == filler_text(50, seed=4)
    assert filler_text(50, seed=4) != filler_text(50, seed=5)
    assert len(filler_text(50).split()) >= 50
    assert len(prompt_tokens_of(engine(), 300)) == 300


def test_measure_and_write_a_profile_the_simulator_reads() -> None:
    fake = engine()
    lines: list[str] = []
    measured = measure(
        fake, lengths=(16, 64, 256), repeats=2, decode_tokens=3, chunk_tokens=64, progress=lines.append
    )
    assert measured.prompt_tokens == (16, 64, 256)
    assert list(measured.prefill_s) == sorted(measured.prefill_s)
    assert measured.prefill_s[-1] == pytest.approx(4 * 0.0005 + 256 * 0.0002, rel=0.5)
    assert all(tpot == pytest.approx(0.001, rel=0.8) for tpot in measured.decode_tpot_s)
    assert len(lines) == 2 + 3  # a line per round, then one per length
    text = profile_toml(
        measured, name="fake-cpu", model="fake", engine="FakeEngine", hardware="none", kv_bytes_per_token=64
    )
    profile = DeviceProfile.from_toml_text(text)
    assert profile.name == "fake-cpu"
    assert profile.prefill_tokens == (16.0, 64.0, 256.0)
    assert profile.prefill_s(256) == pytest.approx(measured.prefill_s[-1], rel=1e-3)
    assert "median of 2 runs" in profile.notes


def test_a_bumpy_curve_is_smoothed_and_the_medians_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    times = {16: 0.2, 32: 0.1, 64: 0.3}

    def fake_prefill(engine: DeviceEngine, tokens: Sequence[int], chunk: int) -> float:
        return times[len(tokens)]

    monkeypatch.setattr(profiler, "_prefill", fake_prefill)
    measured = measure(engine(), lengths=(16, 32, 64), repeats=1, decode_tokens=1)
    assert measured.measured_s == (0.2, 0.1, 0.3)
    assert list(measured.prefill_s) == sorted(measured.prefill_s), "the fitted curve never decreases"
    assert all(value > 0 for value in measured.prefill_s)
    text = profile_toml(measured, name="x", model="m", engine="e", hardware="h", kv_bytes_per_token=64)
    notes = DeviceProfile.from_toml_text(text).notes
    assert "[0.2, 0.1, 0.3]" in notes
    assert "fit_prefill" in notes


def test_rounds_cover_every_length_so_drift_hits_all_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    order: list[int] = []

    def fake_prefill(engine: DeviceEngine, tokens: Sequence[int], chunk: int) -> float:
        order.append(len(tokens))
        return 0.001 * len(tokens)

    monkeypatch.setattr(profiler, "_prefill", fake_prefill)
    measure(engine(), lengths=(16, 32, 64), repeats=2, decode_tokens=1)
    assert order[1:] == [16, 32, 64, 16, 32, 64], "after one warm-up, round after round"


def test_fit_prefill_recovers_a_quadratic_curve() -> None:
    lengths = (64, 128, 256, 512, 1024, 2048)
    c0, c1, c2 = 0.05, 0.004, 2e-6
    coefficients = fit_prefill(lengths, [c0 + c1 * n + c2 * n * n for n in lengths])
    assert coefficients == pytest.approx((c0, c1, c2), rel=1e-6)


def test_fit_prefill_keeps_coefficients_non_negative() -> None:
    # a concave set of points would want a negative n**2 term
    coefficients = fit_prefill((100, 200, 400), (1.0, 1.9, 3.0))
    assert all(value >= 0.0 for value in coefficients)
    assert fit_prefill((100,), (2.0,))[0] + fit_prefill((100,), (2.0,))[1] * 100 == pytest.approx(2.0)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(min_value=1e-4, max_value=100.0), min_size=1, max_size=8),
)
def test_fit_prefill_is_a_non_decreasing_curve(seconds: list[float]) -> None:
    lengths = [16 * 2**index for index in range(len(seconds))]
    coefficients = fit_prefill(lengths, seconds)
    assert all(value >= 0.0 and math.isfinite(value) for value in coefficients)
    curve = [coefficients[0] + coefficients[1] * n + coefficients[2] * n * n for n in lengths]
    assert all(b >= a for a, b in itertools.pairwise(curve))
    assert curve[-1] > 0


@pytest.mark.parametrize(
    ("lengths", "seconds", "message"),
    [
        ((), (), "one time per length"),
        ((16, 32), (0.1,), "one time per length"),
        ((16,), (math.nan,), "positive"),
        ((16,), (0.0,), "positive"),
    ],
)
def test_fit_prefill_rejects_bad_input(
    lengths: tuple[int, ...], seconds: tuple[float, ...], message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        fit_prefill(lengths, seconds)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"lengths": (64, 32)}, "increasing"),
        ({"lengths": ()}, "increasing"),
        ({"lengths": (4000,), "decode_tokens": 200}, "context window"),
        ({"repeats": 0}, "repeats"),
    ],
)
def test_bad_settings(options: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        measure(engine(), **options)  # type: ignore[arg-type]


def test_strings_are_escaped_in_toml() -> None:
    measured = measure(engine(), lengths=(16,), repeats=1, decode_tokens=1)
    text = profile_toml(
        measured,
        name='quote"d',
        model="back\\slash",
        engine="tab\there",
        hardware="new\nline",
        kv_bytes_per_token=64,
    )
    profile = DeviceProfile.from_toml_text(text)
    assert (profile.name, profile.model, profile.engine, profile.hardware) == (
        'quote"d',
        "back\\slash",
        "tab\there",
        "new\nline",
    )


def test_a_falling_decode_tail_is_fitted_flat_or_rising(monkeypatch: pytest.MonkeyPatch) -> None:
    # raw medians of a noisy run: 30 ms at the shortest context falling to 20 ms at the longest
    tpots = iter([0.030, 0.025, 0.020])

    def fake_decode(engine: DeviceEngine, steps: int) -> list[float]:
        return [next(tpots)] * steps

    monkeypatch.setattr(profiler, "_decode", fake_decode)
    measured = measure(engine(), lengths=(16, 32, 64), repeats=1, decode_tokens=1)
    assert measured.decode_tpot_s == (0.030, 0.025, 0.020)
    fitted = measured.fitted_tpot_s
    assert list(fitted) == sorted(fitted), "the stored TPOT never falls with the context"
    assert all(value > 0 for value in fitted)
    text = profile_toml(measured, name="x", model="m", engine="e", hardware="h", kv_bytes_per_token=64)
    profile = DeviceProfile.from_toml_text(text)
    assert "fit_decode" in profile.notes
    assert "[0.03, 0.025, 0.02]" in profile.notes
    assert profile.decode_tpot_s(10_000) >= profile.decode_tpot_s(64)


def test_fit_decode_keeps_a_rising_line_and_refuses_bad_times() -> None:
    d0, d1 = profiler.fit_decode([100, 1000, 2000], [0.011, 0.020, 0.030])
    assert d0 > 0
    assert d1 > 0
    assert d0 + d1 * 1000 == pytest.approx(0.020, rel=0.05)
    with pytest.raises(InvalidInputError, match="fit_decode"):
        profiler.fit_decode([100, 200], [0.01, 0.0])

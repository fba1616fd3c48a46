"""``profile-device``'s measurement and TOML output, on a scripted engine."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from pdcore import InvalidInputError
from pdcore.profiles import DeviceProfile
from pdcore.runtime import profiler
from pdcore.runtime.device import DeviceEngine
from pdcore.runtime.profiler import filler_text, measure, profile_toml, prompt_tokens_of
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
    assert len(lines) == 3
    text = profile_toml(measured, name="fake-cpu", model="fake", engine="FakeEngine", hardware="none")
    profile = DeviceProfile.from_toml_text(text)
    assert profile.name == "fake-cpu"
    assert profile.prefill_tokens == (16.0, 64.0, 256.0)
    assert profile.prefill_s(256) == pytest.approx(measured.prefill_s[-1], rel=1e-3)
    assert "median of 2 runs" in profile.notes


def test_a_lower_median_is_raised_and_noted(monkeypatch: pytest.MonkeyPatch) -> None:
    times = {16: 0.2, 32: 0.1, 64: 0.3}

    def fake_prefill(engine: DeviceEngine, tokens: Sequence[int], chunk: int) -> float:
        return times[len(tokens)]

    monkeypatch.setattr(profiler, "_prefill", fake_prefill)
    measured = measure(engine(), lengths=(16, 32, 64), repeats=1, decode_tokens=1)
    assert measured.prefill_s == (0.2, 0.2, 0.3)
    assert measured.raised == (32,)
    text = profile_toml(measured, name="x", model="m", engine="e", hardware="h")
    assert "raised" in DeviceProfile.from_toml_text(text).notes


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
        measured, name='quote"d', model="back\\slash", engine="tab\there", hardware="new\nline"
    )
    profile = DeviceProfile.from_toml_text(text)
    assert (profile.name, profile.model, profile.engine, profile.hardware) == (
        'quote"d',
        "back\\slash",
        "tab\there",
        "new\nline",
    )

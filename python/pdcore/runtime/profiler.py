"""``pdcore profile-device``: measure a local model's speed and write the device profile the simulator reads.

For each prompt length ``n`` (default 64 to 2048 tokens) the profiler evaluates ``n`` prompt tokens from
an empty context, in chunks of ``chunk_tokens`` exactly as the runtime's `Device.prefill_prompt` does, and
right after it decodes ``decode_tokens`` tokens greedily at that context (the decode TPOT at context
``n``). It does so in ``repeats`` rounds, each over every length, so that a machine whose speed drifts
(a shared host, a CPU that heats up) affects every length alike instead of one; the median of the rounds
is kept. One warm-up evaluation runs first (llama.cpp allocates its buffers on the first call).

The prompt is real text (`filler_text`) tokenized by the model, so the tokens are the kind a user sends.

The profile stores smooth curves, not the raw medians (rules of ours): prefill time
``c0 + c1 * n + c2 * n**2`` (`fit_prefill`: a fixed cost, the weights' cost per token, and attention over
the context) and decode TPOT ``d0 + d1 * n`` (`fit_decode`: the weights read per token, and the KV cache
read per context token), each with non-negative coefficients, fitted to the medians by least squares on
relative error (`pdcore.runtime.fit`). Raw medians on a busy machine are bumpy (measured on a shared
2-core host: 13.5 ms per prompt token at 64 tokens, 7.3 at 256, 10.9 at 2048), and a raw decode tail that
happens to fall would make a longer context look cheaper; the runtime's hand-off estimate prices each chunk
with the profile's slope, so a bump in the curve becomes a swing in the estimate and in the display pace.
Both fits are
non-decreasing and positive (the invariants `DeviceProfile` checks), and the TOML keeps the medians and
each fit's largest deviation from them in its notes.

The step spread (``[decode] step_spread``, `measured_spread`; rule of ours): the root mean square of the
relative deviations of the measured times from the profile's own prices (the stored curves, what the
simulator draws each call's time around), over every decode step timed (each against the TPOT at its
prompt's length) and every prefill run (each against the prefill price of its length). A prefill run is
``c = ceil(n / chunk_tokens)`` model calls; if each call strays by ``s`` on its own, the run strays by
``s / sqrt(c)``, so a run's squared deviation counts ``c`` times: every sample then estimates one call's
``s**2``. A measured spread above ``pdcore._core.MAX_STEP_SPREAD`` is written at that bound.

The KV-cache size per token (``kv_bytes_per_token``, what a kv-transfer ships) is read from the model's
GGUF metadata by the caller (`LlamaEngine.kv_bytes_per_token`).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import platform
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pdcore._core import MAX_STEP_SPREAD
from pdcore.exceptions import InvalidInputError
from pdcore.profiles.device import DeviceProfile
from pdcore.runtime.device import DEFAULT_CHUNK_TOKENS, DeviceEngine
from pdcore.runtime.fit import fit_decode, fit_prefill, fit_relative

__all__ = [
    "DEFAULT_LENGTHS",
    "Measurement",
    "cpu_name",
    "filler_text",
    "fit_decode",
    "fit_prefill",
    "fit_relative",
    "measure",
    "measured_spread",
    "profile_toml",
    "prompt_tokens_of",
]

DEFAULT_LENGTHS = (64, 128, 256, 512, 1024, 2048)
"""Prompt lengths measured by default: the short and the long prompts of the chat traces."""

# fmt: off
_WORDS = (
    "river", "mountain", "lantern", "harbor", "meadow", "copper", "violet", "engine", "garden", "whisper",
    "signal", "orchard", "canyon", "glacier", "pepper", "marble", "thunder", "compass", "feather",
    "island", "velvet", "saddle", "beacon", "tunnel", "prairie", "silver", "market", "ladder", "winter",
    "candle", "forest", "window", "basket", "planet", "rocket", "spider", "bridge", "castle", "dragon",
    "mirror", "shadow", "valley", "needle", "pocket", "kettle",
)
# fmt: on


def filler_text(words: int, *, seed: int = 0) -> str:
    """Deterministic English-like text of about ``words`` words (sentences of 6 to 14 words).

    Example:
        >>> filler_text(8, seed=1).split()[0]
        'Bridge'
    """
    rng = random.Random(seed)
    sentences: list[str] = []
    count = 0
    while count < words:
        chosen = [rng.choice(_WORDS) for _ in range(rng.randint(6, 14))]
        sentences.append(" ".join(chosen).capitalize() + ".")
        count += len(chosen)
    return " ".join(sentences)


def prompt_tokens_of(engine: DeviceEngine, length: int, *, seed: int = 0) -> list[int]:
    """``length`` prompt tokens of `filler_text`, tokenized by ``engine``."""
    words = max(8, length)
    while True:
        tokens = engine.tokenize(filler_text(words, seed=seed), prompt=True)
        if len(tokens) >= length:
            return tokens[:length]
        words *= 2


def cpu_name() -> str:
    """The CPU's model name (from ``/proc/cpuinfo`` on Linux), or the platform's description."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown CPU"


@dataclass(frozen=True)
class Measurement:
    """What `measure` found.

    Attributes:
        prompt_tokens: The prompt lengths, increasing.
        measured_s: The median prefill time at each length.
        coefficients: ``(c0, c1, c2)`` of the fit: seconds, seconds per token, seconds per token squared.
        decode_context: The contexts of the decode measurements.
        decode_tpot_s: Median time per decoded token at each context.
        decode_coefficients: ``(d0, d1)`` of the decode fit: seconds, seconds per context token.
        repeats: Prefill runs per length.
        decode_tokens: Tokens decoded per context.
        chunk_tokens: Prompt tokens per evaluation call.
        seconds: Wall time the measurement took.
        prefill_runs_s: Every prefill run's time, per length (the medians' samples).
        decode_steps_s: Every decode step's time, per context.
    """

    prompt_tokens: tuple[int, ...]
    measured_s: tuple[float, ...]
    coefficients: tuple[float, float, float]
    decode_context: tuple[int, ...]
    decode_tpot_s: tuple[float, ...]
    decode_coefficients: tuple[float, float]
    repeats: int
    decode_tokens: int
    chunk_tokens: int
    seconds: float
    prefill_runs_s: tuple[tuple[float, ...], ...] = ()
    decode_steps_s: tuple[tuple[float, ...], ...] = ()

    @property
    def prefill_s(self) -> tuple[float, ...]:
        """The fitted prefill time at each length (`fit_prefill`): what the profile stores."""
        return tuple(_curve(self.coefficients, length) for length in self.prompt_tokens)

    @property
    def fitted_tpot_s(self) -> tuple[float, ...]:
        """The fitted decode TPOT at each context (`fit_decode`): what the profile stores."""
        d0, d1 = self.decode_coefficients
        return tuple(d0 + d1 * context for context in self.decode_context)


def _prefill(engine: DeviceEngine, tokens: Sequence[int], chunk: int) -> float:
    engine.reset()
    started = time.perf_counter()
    for start in range(0, len(tokens), chunk):
        engine.eval(tokens[start : start + chunk])
    return time.perf_counter() - started


def _decode(engine: DeviceEngine, steps: int) -> list[float]:
    took: list[float] = []
    for _ in range(steps):
        token = engine.greedy()
        started = time.perf_counter()
        engine.eval([token])
        took.append(time.perf_counter() - started)
    return took


def measure(
    engine: DeviceEngine,
    *,
    lengths: Sequence[int] = DEFAULT_LENGTHS,
    repeats: int = 3,
    decode_tokens: int = 16,
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
    progress: Callable[[str], None] | None = None,
) -> Measurement:
    """Measures prefill time over ``lengths`` and decode TPOT at each (module docstring).

    Args:
        engine: The model, e.g. a `LlamaEngine` with the thread count to profile.
        lengths: Prompt lengths in tokens, increasing, each below the context window minus
            ``decode_tokens``.
        repeats: Prefill runs per length (the median is kept).
        decode_tokens: Tokens decoded after the prefill at each length.
        chunk_tokens: Prompt tokens per evaluation call (the runtime's `Device.chunk_tokens`).
        progress: Called with a line of text after each length.

    Raises:
        InvalidInputError: An argument is out of range.
    """
    if not lengths or any(b <= a for a, b in itertools.pairwise(lengths)) or lengths[0] < 1:
        raise InvalidInputError(
            f"lengths = {list(lengths)!r}; pass increasing prompt lengths, each at least 1"
        )
    if lengths[-1] + decode_tokens >= engine.n_ctx:
        raise InvalidInputError(
            f"the longest prompt ({lengths[-1]}) plus {decode_tokens} decoded tokens does not fit the "
            f"context window ({engine.n_ctx}); fix: raise n_ctx or measure shorter prompts"
        )
    for name, value in (
        ("repeats", repeats),
        ("decode_tokens", decode_tokens),
        ("chunk_tokens", chunk_tokens),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidInputError(f"{name} = {value!r}; pass a whole number, at least 1")
    started = time.perf_counter()
    longest = prompt_tokens_of(engine, lengths[-1])
    _prefill(engine, longest[: min(32, len(longest))], chunk_tokens)
    runs: dict[int, list[float]] = {length: [] for length in lengths}
    steps: dict[int, list[float]] = {length: [] for length in lengths}
    for round_ in range(repeats):
        for length in lengths:
            runs[length].append(_prefill(engine, longest[:length], chunk_tokens))
            steps[length].extend(_decode(engine, decode_tokens))
        if progress is not None:
            progress(
                f"round {round_ + 1}/{repeats}: prefill "
                + ", ".join(f"{length} {runs[length][-1]:.3f} s" for length in lengths)
            )
    medians = [statistics.median(runs[length]) for length in lengths]
    tpots = [statistics.median(steps[length]) for length in lengths]
    measurement = Measurement(
        prompt_tokens=tuple(lengths),
        measured_s=tuple(medians),
        coefficients=fit_prefill(lengths, medians),
        decode_context=tuple(lengths),
        decode_tpot_s=tuple(tpots),
        decode_coefficients=fit_decode(lengths, tpots),
        repeats=repeats,
        decode_tokens=decode_tokens,
        chunk_tokens=chunk_tokens,
        seconds=time.perf_counter() - started,
        prefill_runs_s=tuple(tuple(runs[length]) for length in lengths),
        decode_steps_s=tuple(tuple(steps[length]) for length in lengths),
    )
    if progress is not None:
        rows = zip(lengths, medians, measurement.prefill_s, tpots, measurement.fitted_tpot_s, strict=True)
        for length, median, fit, tpot, tpot_fit in rows:
            progress(
                f"{length:>6} tokens: prefill {median:.3f} s (median of {repeats}), fitted {fit:.3f} s, "
                f"decode {tpot * 1e3:.1f} ms/token, fitted {tpot_fit * 1e3:.1f}"
            )
    return measurement


def measured_spread(measurement: Measurement, profile: DeviceProfile) -> tuple[float, int]:
    """The step spread of a measurement against ``profile``'s prices (module docstring), at most
    ``MAX_STEP_SPREAD``, and the samples it covers; ``(0.0, 0)`` with none."""
    squares, samples = 0.0, 0
    for index, length in enumerate(measurement.prompt_tokens):
        price = float(profile.prefill_s(length))
        calls = math.ceil(length / measurement.chunk_tokens)
        runs = measurement.prefill_runs_s[index] if index < len(measurement.prefill_runs_s) else ()
        for took in runs:
            squares += calls * (took / price - 1.0) ** 2
            samples += 1
        tpot = float(profile.decode_tpot_s(measurement.decode_context[index]))
        steps = measurement.decode_steps_s[index] if index < len(measurement.decode_steps_s) else ()
        for took in steps:
            squares += (took / tpot - 1.0) ** 2
            samples += 1
    return (min(math.sqrt(squares / samples), MAX_STEP_SPREAD), samples) if samples else (0.0, 0)


def _curve(coefficients: Sequence[float], tokens: float) -> float:
    c0, c1, c2 = coefficients
    return c0 + c1 * tokens + c2 * tokens * tokens


def _listed(values: Sequence[float], digits: int) -> str:
    """Numbers as the notes show them: ``[a, b, c]`` to ``digits`` significant digits."""
    return "[" + ", ".join(f"{value:.{digits}g}" for value in values) + "]"


def _rounded(values: Sequence[float], digits: int) -> tuple[float, ...]:
    """The values to ``digits`` significant digits, as the profile stores them."""
    return tuple(float(f"{value:.{digits}g}") for value in values)


def profile_toml(
    measurement: Measurement,
    *,
    name: str,
    model: str,
    engine: str,
    kv_bytes_per_token: int,
    hardware: str | None = None,
    description: str | None = None,
) -> str:
    """The device profile TOML for a measurement (the format `DeviceProfile` reads); ``kv_bytes_per_token``
    is the model's KV-cache size per token (`LlamaEngine.kv_bytes_per_token`).

    Raises:
        ProfileError: The result does not validate as a device profile.
    """
    hardware = hardware or f"{cpu_name()} ({os.cpu_count()} logical CPUs)"
    description = description or f"{model.split(' (', maxsplit=1)[0]} measured on {hardware}"
    stamp = time.strftime("%Y-%m-%d", time.gmtime())
    c0, c1, c2 = measurement.coefficients
    deviation = max(
        abs(fit - median) / median
        for fit, median in zip(measurement.prefill_s, measurement.measured_s, strict=True)
    )
    d0, d1 = measurement.decode_coefficients
    decode_deviation = max(
        abs(fit - median) / median
        for fit, median in zip(measurement.fitted_tpot_s, measurement.decode_tpot_s, strict=True)
    )
    notes = (
        f"Measured by `pdcore profile-device` on {stamp}. Prefill: the median of {measurement.repeats} runs "
        f"per length (rounds over all lengths) from an empty context, evaluated in chunks of "
        f"{measurement.chunk_tokens} tokens as the live runtime does; the seconds are the fitted curve "
        f"{c0:.4g} + {c1:.4g} * n + {c2:.4g} * n^2 (pdcore.runtime.profiler.fit_prefill), which is within "
        f"{deviation * 100:.1f}% of the measured medians "
        + _listed(measurement.measured_s, 5)
        + f". Decode: the median time per token of {measurement.decode_tokens} greedy tokens decoded right "
        f"after each prefill; the tpot_s are the fitted line {d0:.4g} + {d1:.4g} * n "
        f"(pdcore.runtime.profiler.fit_decode), within {decode_deviation * 100:.1f}% of the measured medians "
        + _listed(measurement.decode_tpot_s, 4)
        + "."
    )
    profile = DeviceProfile(
        name=name,
        description=description,
        hardware=hardware,
        model=model,
        engine=engine,
        kv_bytes_per_token=int(kv_bytes_per_token),
        prefill_tokens=_rounded(measurement.prompt_tokens, 10),
        prefill_seconds=_rounded(measurement.prefill_s, 5),
        decode_context_tokens=_rounded(measurement.decode_context, 10),
        decode_tpot=_rounded(measurement.fitted_tpot_s, 4),
        citation=f"Measured with pdcore profile-device on this machine ({hardware}).",
        notes=notes,
        source=f"<profile {name}>",
    )
    spread, samples = measured_spread(measurement, profile)
    spread = float(f"{spread:.3g}")
    profile = dataclasses.replace(
        profile,
        step_spread=spread,
        notes=notes
        + f" Step spread: {spread:.3g}, the RMS relative deviation of {samples} timed calls (decode steps, "
        "and prefill runs counted per model call) from this profile's prices "
        "(pdcore.runtime.profiler.measured_spread).",
    )
    text = profile.to_toml()
    DeviceProfile.from_toml_text(text, source=profile.source)  # as `pdcore.profiles` will read it
    return text

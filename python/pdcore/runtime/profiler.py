"""``pdcore profile-device``: measure a local model's speed and write the device profile the simulator reads.

For each prompt length ``n`` (default 64 to 2048 tokens) the profiler evaluates ``n`` prompt tokens from
an empty context, in chunks of ``chunk_tokens`` exactly as the runtime's `Device.prefill_prompt` does, and
keeps the median of ``repeats`` runs. Right after the last run it decodes ``decode_tokens`` tokens greedily
at that context and keeps the median time per token: the decode TPOT at context ``n``. One warm-up
evaluation runs first (llama.cpp allocates its buffers on the first call).

The prompt is real text (`filler_text`) tokenized by the model, so the tokens are the kind a user sends.
The profile's prefill seconds must not decrease with length (`DeviceProfile`'s invariant); a measured
median that is lower than the one before it (timer noise on a busy machine) is raised to it, and the
notes say so.
"""

from __future__ import annotations

import itertools
import os
import platform
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pdcore.exceptions import InvalidInputError
from pdcore.profiles.device import DeviceProfile
from pdcore.runtime.device import DEFAULT_CHUNK_TOKENS, DeviceEngine

__all__ = [
    "DEFAULT_LENGTHS",
    "Measurement",
    "cpu_name",
    "filler_text",
    "measure",
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
        prefill_s: Median prefill time at each length (made non-decreasing).
        raised: The lengths whose median had to be raised to the previous one.
        decode_context: The contexts of the decode measurements.
        decode_tpot_s: Median time per decoded token at each context.
        repeats: Prefill runs per length.
        decode_tokens: Tokens decoded per context.
        chunk_tokens: Prompt tokens per evaluation call.
        seconds: Wall time the measurement took.
    """

    prompt_tokens: tuple[int, ...]
    prefill_s: tuple[float, ...]
    raised: tuple[int, ...]
    decode_context: tuple[int, ...]
    decode_tpot_s: tuple[float, ...]
    repeats: int
    decode_tokens: int
    chunk_tokens: int
    seconds: float


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
    medians: list[float] = []
    tpots: list[float] = []
    for length in lengths:
        runs = [_prefill(engine, longest[:length], chunk_tokens) for _ in range(repeats)]
        tpot = statistics.median(_decode(engine, decode_tokens))
        medians.append(statistics.median(runs))
        tpots.append(tpot)
        if progress is not None:
            progress(
                f"{length:>6} tokens: prefill {medians[-1]:.3f} s (median of {repeats}), "
                f"decode {tpot * 1e3:.1f} ms/token"
            )
    monotone: list[float] = []
    raised: list[int] = []
    for length, median in zip(lengths, medians, strict=True):
        if monotone and median < monotone[-1]:
            raised.append(length)
        monotone.append(max(median, monotone[-1]) if monotone else median)
    return Measurement(
        prompt_tokens=tuple(lengths),
        prefill_s=tuple(monotone),
        raised=tuple(raised),
        decode_context=tuple(lengths),
        decode_tpot_s=tuple(tpots),
        repeats=repeats,
        decode_tokens=decode_tokens,
        chunk_tokens=chunk_tokens,
        seconds=time.perf_counter() - started,
    )


def _string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{escaped}"'


def _numbers(values: Sequence[float], digits: int) -> str:
    return "[" + ", ".join(f"{value:.{digits}g}" for value in values) + "]"


def profile_toml(
    measurement: Measurement,
    *,
    name: str,
    model: str,
    engine: str,
    hardware: str | None = None,
    description: str | None = None,
) -> str:
    """The device profile TOML for a measurement (the format `DeviceProfile` reads).

    Raises:
        ProfileError: The result does not validate as a device profile.
    """
    hardware = hardware or f"{cpu_name()} ({os.cpu_count()} logical CPUs)"
    description = description or f"{model.split(' (', maxsplit=1)[0]} measured on {hardware}"
    stamp = time.strftime("%Y-%m-%d", time.gmtime())
    notes = (
        f"Measured by `pdcore profile-device` on {stamp}. Prefill: the median of {measurement.repeats} runs "
        f"per length from an empty context, evaluated in chunks of {measurement.chunk_tokens} tokens as the "
        f"live runtime does. Decode: the median time per token of {measurement.decode_tokens} greedy "
        "tokens decoded right after the prefill at each length."
    )
    if measurement.raised:
        notes += (
            " The measured median at "
            + ", ".join(str(length) for length in measurement.raised)
            + " tokens was below the previous length's and was raised to it (timer noise)."
        )
    lines = [
        f"name = {_string(name)}",
        f"description = {_string(description)}",
        f"hardware = {_string(hardware)}",
        f"model = {_string(model)}",
        f"engine = {_string(engine)}",
        "",
        "[prefill]",
        f"prompt_tokens = {_numbers(measurement.prompt_tokens, 10)}",
        f"seconds = {_numbers(measurement.prefill_s, 5)}",
        "",
        "[decode]",
        f"context_tokens = {_numbers(measurement.decode_context, 10)}",
        f"tpot_s = {_numbers(measurement.decode_tpot_s, 4)}",
        "",
        "[source]",
        f"citation = {_string('Measured with pdcore profile-device on this machine (' + hardware + ').')}",
        f"notes = {_string(notes)}",
        "",
    ]
    text = "\n".join(lines)
    DeviceProfile.from_toml_text(text, source=f"<profile {name}>")
    return text

"""``pdcore profile-cloud``: measure an OpenAI-compatible endpoint, fit the cloud profile the simulator reads.

What is measured, against the endpoint as a client sees it (`CloudClient`):

- the **round trip**: the median of a few ``GET /v1/models``;
- **time to first token over prompt length**: for each length (default 128 to 2,048 tokens) and round, a
  streamed request of a few tokens (`PREFILL_RUN_TOKENS`; their gaps measure decode at that context) with a
  fresh prompt (real text, `pdcore.runtime.profiler.filler_text`, seeded
  per round and length so that no prompt shares a prefix with an earlier one and a prefix cache cannot
  answer it); the prompt's length in the server's tokens is read from the server (its tokenize route,
  range-checked: a count no tokenizer could give is refused, never fitted) and estimated at four
  characters a token only when it says nothing (or its tokenize route did not answer in time: it is then
  not asked again, and a progress line says so);
- **inter-token time over concurrency**: for each concurrency ``B`` (default 1, 2, 4), ``B`` streams of
  ``decode_tokens`` tokens started together; every gap between two events of a stream is kept with the
  number of streams decoding at that moment and their contexts. A server that decodes one request at a time
  (llama.cpp's Python server) shows no overlap, and the profile says so (``max_batch_size = 1``).

The fit (ours, the method the shipped profiles were fitted with, `pdcore.runtime.fit.fit_iteration`, the
one cloud fit, also ``pdcore validate``'s): non-negative least squares on relative error of the cloud's
iteration model (`pdcore._core.CloudCost`) over both kinds of rows at once,

- prefill rows: ``TTFT - RTT = base * chunks + prefill_token * L + prefill_attn * L**2``, with
  ``chunks = ceil(L / max_tokens_per_iteration)`` (the first token comes after the last chunk; the
  server's request handling is folded into ``base``);
- decode rows, the median gap per (concurrency seen, context): ``gap = base + decode_seq * B +
  decode_context * sum(context)``.

Every request has a deadline (`CloudClient`): a stream is cut at the tokens asked for, at a stall with no
token, or at its whole deadline, so a server that streams for ever cannot hold the measurement.

The profile's limits: ``max_batch_size`` the most streams seen decoding at once, ``kv_cache_tokens`` the
server's context window (learned from the server where it says, else ``--kv-cache-tokens``),
``max_tokens_per_iteration`` the server's prompt batch (llama.cpp's ``n_batch``, 512 by default; a flag).

The physics guard (`pdcore.profiles.cloud_tables`): given the GPU (a name of `pdcore.profiles.vidur.GPUS`, or
its peak dense FLOPs and HBM bandwidth) and the model's parameter count (`physics_inputs`), the fit holds
``prefill_token_s`` and ``base_s`` at or above the floors those allow (`pdcore.runtime.fit.fit_iteration`),
and the profile carries ``[hardware]`` and ``[model_size]`` so that loading it checks them again.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pdcore.exceptions import InvalidInputError
from pdcore.profiles.cloud import CloudProfile
from pdcore.profiles.cloud_tables import Hardware, ModelSize, physics_floors
from pdcore.profiles.vidur import GPUS
from pdcore.runtime.cloud import CloudClient
from pdcore.runtime.fit import CloudFit, fit_iteration
from pdcore.runtime.profiler import filler_text

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_LENGTHS",
    "CloudFit",
    "CloudMeasurement",
    "cloud_profile_toml",
    "fit_cloud_profile",
    "measure_cloud",
    "physics_inputs",
]

DEFAULT_LENGTHS = (128, 256, 512, 1024, 2048)
"""Prompt lengths whose first-token time is measured by default."""

DEFAULT_CONCURRENCY = (1, 2, 4)
"""Numbers of concurrent streams whose inter-token time is measured by default."""

PREFILL_RUN_TOKENS = 6
"""Tokens asked for in each first-token measurement: the gaps after the first measure a lone decode step at
that prompt's context, which separates the decode cost per context token from the cost per sequence."""

CHARS_PER_TOKEN = 4.0
"""Characters per token of English text with a BPE vocabulary, when the server does not count them."""


@dataclass(frozen=True)
class CloudMeasurement:
    """What `measure_cloud` found.

    Attributes:
        endpoint: The completions endpoint measured.
        rtt_s: Median round trip of ``GET /v1/models``.
        prompt_tokens: The prompt of each first-token measurement, in the server's tokens.
        first_token_s: Its time to first token, seconds from sending the request.
        tokens_counted_by_server: Whether the server counted the prompts (else four characters a token).
        gap_batch: The streams decoding during each measured inter-token gap.
        gap_context: The sum of those streams' contexts, tokens.
        gap_s: Each gap, seconds.
        concurrency: The concurrencies asked for.
        max_overlap: The most streams seen decoding at once.
        context_tokens: The server's context window, if it says.
        seconds: Wall time the measurement took.
    """

    endpoint: str
    rtt_s: float
    prompt_tokens: tuple[int, ...]
    first_token_s: tuple[float, ...]
    tokens_counted_by_server: bool
    gap_batch: tuple[int, ...]
    gap_context: tuple[float, ...]
    gap_s: tuple[float, ...]
    concurrency: tuple[int, ...]
    max_overlap: int
    context_tokens: int | None
    seconds: float = 0.0


def _prompt(tokens: int, seed: int) -> str:
    # about four characters a token; every prompt starts differently, so no prefix cache can answer it
    return f"[{seed}] " + filler_text(max(8, math.ceil(tokens * 0.8)), seed=seed)


async def _first_token(client: CloudClient, prompt: str, tokens: int = 1) -> tuple[float, list[float]]:
    """The first token's time from sending, and the arrival times of the tokens with text."""
    started = time.perf_counter()
    times = [event.at async for event in client.stream(prompt, max_tokens=tokens) if event.text]
    if not times:
        raise InvalidInputError(
            f"{client.endpoint} sent no token; fix: check the endpoint serves completions"
        )
    return times[0] - started, times


async def _stream_times(client: CloudClient, prompt: str, tokens: int) -> list[float]:
    times: list[float] = []
    async for event in client.stream(prompt, max_tokens=tokens):
        if event.text:
            times.append(event.at)
    return times


def _gaps(
    streams: Sequence[tuple[int, Sequence[float]]],
) -> tuple[list[int], list[float], list[float], int]:
    """Every inter-token gap with the streams decoding at its midpoint and their contexts."""
    spans = [(times[0], times[-1]) for _, times in streams if len(times) >= 2]
    batch: list[int] = []
    context: list[float] = []
    gaps: list[float] = []
    overlap = 1 if spans else 0
    for prompt_tokens, times in streams:
        for index in range(1, len(times)):
            middle = 0.5 * (times[index - 1] + times[index])
            active = sum(1 for lo, hi in spans if lo <= middle <= hi)
            overlap = max(overlap, active)
            batch.append(max(active, 1))
            context.append(max(active, 1) * float(prompt_tokens + index))
            gaps.append(times[index] - times[index - 1])
    return batch, context, gaps, overlap


async def measure_cloud(
    client: CloudClient,
    *,
    lengths: Sequence[int] = DEFAULT_LENGTHS,
    concurrency: Sequence[int] = DEFAULT_CONCURRENCY,
    decode_tokens: int = 32,
    decode_prompt_tokens: int = 128,
    repeats: int = 3,
    progress: Callable[[str], None] | None = None,
) -> CloudMeasurement:
    """Measures the endpoint (module docstring).

    Raises:
        InvalidInputError: An argument is out of range.
        CloudError: The endpoint fails (`CloudUnavailableError`, `CloudStreamCutError`).
    """
    if not lengths or any(b <= a for a, b in itertools.pairwise(lengths)) or lengths[0] < 1:
        raise InvalidInputError(f"lengths = {list(lengths)!r}; pass increasing prompt lengths, each >= 1")
    if not concurrency or min(concurrency) < 1 or max(concurrency) > 64:
        raise InvalidInputError(f"concurrency = {list(concurrency)!r}; pass stream counts from 1 to 64")
    for name, value in (
        ("decode_tokens", decode_tokens),
        ("decode_prompt_tokens", decode_prompt_tokens),
        ("repeats", repeats),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidInputError(f"{name} = {value!r}; pass a whole number, at least 1")
    if decode_tokens < 2:
        raise InvalidInputError("decode_tokens = 1 has no gap to measure; pass 2 or more")
    started = time.perf_counter()
    rtts = [await client.ping() for _ in range(5)]
    rtt = statistics.median(rtts)
    context = await client.context_window()
    prompts: list[int] = []
    firsts: list[float] = []
    counted = True
    streams: list[tuple[int, Sequence[float]]] = []
    await _first_token(client, _prompt(16, seed=10**6))  # warm-up: connection, server buffers
    for round_ in range(repeats):
        for length in lengths:
            text = _prompt(length, seed=round_ * 100_003 + length)
            tokens = await client.count_tokens(text, notice=progress)
            if tokens is None:
                counted = False
                tokens = max(1, round(len(text) / CHARS_PER_TOKEN))
            prompts.append(tokens)
            first, times = await _first_token(client, text, PREFILL_RUN_TOKENS)
            firsts.append(first)
            streams.append((tokens, times))
        if progress is not None:
            done = zip(prompts[-len(lengths) :], firsts[-len(lengths) :], strict=True)
            progress(
                f"round {round_ + 1}/{repeats}: first token "
                + ", ".join(f"{n} tokens {t * 1e3:.0f} ms" for n, t in done)
            )
    for count in concurrency:
        texts = [_prompt(decode_prompt_tokens, seed=7_000_000 + 1000 * count + i) for i in range(count)]
        sizes = [await client.count_tokens(text, notice=progress) for text in texts]
        runs = await asyncio.gather(*(_stream_times(client, text, decode_tokens) for text in texts))
        for text, size, times in zip(texts, sizes, runs, strict=True):
            streams.append((size if size is not None else round(len(text) / CHARS_PER_TOKEN), times))
        if progress is not None:
            progress(f"{count} concurrent stream(s): {sum(len(times) for times in runs)} tokens")
    batch, ctx, gaps, overlap = _gaps(streams)
    return CloudMeasurement(
        endpoint=client.endpoint,
        rtt_s=rtt,
        prompt_tokens=tuple(prompts),
        first_token_s=tuple(firsts),
        tokens_counted_by_server=counted,
        gap_batch=tuple(batch),
        gap_context=tuple(ctx),
        gap_s=tuple(gaps),
        concurrency=tuple(concurrency),
        max_overlap=max(overlap, 1),
        context_tokens=context,
        seconds=time.perf_counter() - started,
    )


def physics_inputs(
    gpu: str,
    *,
    peak_dense_flops: float | None = None,
    hbm_bytes_per_s: float | None = None,
    parameters: float | None = None,
    bytes_per_parameter: float = 2.0,
) -> tuple[Hardware | None, ModelSize | None]:
    """The GPU's and model's figures the physics guard needs, from ``--gpu`` (a name in
    `pdcore.profiles.vidur.GPUS` gives its datasheet figures) and the explicit flags (which win); (None, None)
    when nothing is given.

    Raises:
        InvalidInputError: Some figures are given and others missing, or one is not a positive number.
    """
    known = GPUS.get(gpu.strip().lower())
    if known is not None:
        peak_dense_flops = peak_dense_flops or known.peak_dense_flops
        hbm_bytes_per_s = hbm_bytes_per_s or known.hbm_bytes_per_s
    given = {
        "--gpu-peak-flops": peak_dense_flops,
        "--hbm-bandwidth": hbm_bytes_per_s,
        "--parameters": parameters,
        "--bytes-per-parameter": bytes_per_parameter,
    }
    if parameters is None and (known is not None or (peak_dense_flops is None and hbm_bytes_per_s is None)):
        return None, None
    figures: list[float] = []
    for flag, value in given.items():
        if value is None:
            raise InvalidInputError(
                f"{flag} is missing, and the physics guard needs it with the others; fix: pass {flag} (or a "
                f"--gpu of {', '.join(sorted(GPUS))} for the GPU's figures), or none of them"
            )
        if isinstance(value, bool) or not (math.isfinite(value) and 0 < value <= 1e18):
            raise InvalidInputError(f"{flag} = {value!r}; fix: pass a positive number")
        figures.append(float(value))
    flops, hbm, count, width = figures
    return Hardware(flops, hbm), ModelSize(count, width)


def fit_cloud_profile(
    measurement: CloudMeasurement,
    *,
    max_tokens_per_iteration: int = 512,
    hardware: Hardware | None = None,
    model_size: ModelSize | None = None,
    tensor_parallel: int = 1,
) -> CloudFit:
    """Fits the iteration model to a measurement (module docstring; `pdcore.runtime.fit.fit_iteration`),
    within the physics guard's floors when ``hardware`` and ``model_size`` are given.

    Raises:
        InvalidInputError: Too few rows, or no first-token time above the round trip.
    """
    m = measurement
    return fit_iteration(
        list(zip(m.prompt_tokens, m.first_token_s, strict=True)),
        list(zip(m.gap_batch, m.gap_context, m.gap_s, strict=True)),
        rtt_s=m.rtt_s,
        max_tokens_per_iteration=max_tokens_per_iteration,
        source=m.endpoint,
        floors=(
            None
            if hardware is None or model_size is None
            else physics_floors(hardware, model_size, tensor_parallel)
        ),
    )


def cloud_profile_toml(
    measurement: CloudMeasurement,
    fit: CloudFit,
    *,
    name: str,
    model: str,
    gpu: str,
    kv_bytes_per_token: int,
    kv_cache_tokens: int | None = None,
    gpus_per_replica: int = 1,
    tensor_parallel: int = 1,
    hardware: Hardware | None = None,
    model_size: ModelSize | None = None,
) -> str:
    """The cloud profile TOML (the format `CloudProfile` reads) for a measurement and its fit.

    Raises:
        InvalidInputError: Neither the server nor ``kv_cache_tokens`` gives the KV-cache capacity.
        ProfileError: The result does not validate as a cloud profile.
    """
    m = measurement
    capacity = kv_cache_tokens if kv_cache_tokens is not None else m.context_tokens
    if capacity is None:
        raise InvalidInputError(
            f"{m.endpoint} does not say its context window; fix: pass --kv-cache-tokens (the server's "
            "KV-cache capacity in tokens, e.g. its n_ctx)"
        )
    stamp = time.strftime("%Y-%m-%d", time.gmtime())
    firsts = ", ".join(
        f"{n}: {t * 1e3:.1f} ms" for n, t in zip(m.prompt_tokens, m.first_token_s, strict=True)
    )
    decode = ", ".join(f"B={b}, sum(ctx)={c:.0f}: {g * 1e3:.2f} ms" for b, c, g in fit.decode_rows)
    counted = (
        "counted by the server" if m.tokens_counted_by_server else "estimated at four characters a token"
    )
    batching = (
        "The server decoded one stream at a time (no overlap between concurrent streams): max_batch_size = 1."
        if m.max_overlap == 1
        else f"At most {m.max_overlap} streams decoded at once."
    )
    notes = (
        f"Measured by `pdcore profile-cloud` on {stamp} against {m.endpoint} in {m.seconds:.0f} s: round "
        f"trip {m.rtt_s * 1e3:.2f} ms (median of 5 GET /v1/models); first token over prompt length (prompts "
        f"{counted}): {firsts}; inter-token medians at concurrency {list(m.concurrency)}: {decode}. "
        f"{batching} Fitted by non-negative least squares on relative error of the iteration model over both "
        f"kinds of rows (pdcore.runtime.cloud_profiler.fit_cloud_profile), prefill chunked by "
        f"{fit.max_tokens_per_iteration} tokens: largest error {fit.prefill_error * 100:.1f}% on the first "
        f"tokens, {fit.decode_error * 100:.1f}% on the gaps. The request handling before the first step is "
        "folded into base_s."
    )
    if hardware is not None and model_size is not None:
        held = ", ".join(fit.held) if fit.held else "none"
        notes += (
            f" Physics guard: {model_size.parameters:,.0f} parameters on a GPU of "
            f"{hardware.peak_dense_flops:.4g} FLOPs and {hardware.hbm_bytes_per_s:.4g} B/s at tensor "
            f"parallelism {tensor_parallel}; coefficients held at the floor the hardware allows: {held}."
        )
    profile = CloudProfile(
        name=name,
        description=f"{model} behind {m.endpoint}, measured by pdcore profile-cloud",
        model=model,
        gpu=gpu,
        tensor_parallel=tensor_parallel,
        base_s=_rounded(fit.base_s, up="base_s" in fit.held),
        prefill_token_s=_rounded(fit.prefill_token_s, up="prefill_token_s" in fit.held),
        prefill_attn_s=_rounded(fit.prefill_attn_s),
        decode_seq_s=_rounded(fit.decode_seq_s),
        decode_context_s=_rounded(fit.decode_context_s),
        max_batch_size=m.max_overlap,
        max_tokens_per_iteration=fit.max_tokens_per_iteration,
        kv_cache_tokens=capacity,
        gpus_per_replica=gpus_per_replica,
        kv_bytes_per_token=kv_bytes_per_token,
        citation=f"Measured with pdcore profile-cloud against {m.endpoint} on {stamp}.",
        notes=notes,
        source=f"<profile {name}>",
        hardware=hardware if model_size is not None else None,
        model_size=model_size if hardware is not None else None,
    )
    text = profile.to_toml()
    CloudProfile.from_toml_text(text, source=profile.source)  # as `pdcore.profiles` will read it
    return text


def _rounded(value: float, *, up: bool = False) -> float:
    """A coefficient to six significant digits, as the profile stores it; ``up``: never below ``value`` (a
    coefficient held at a physics floor stays at or above it)."""
    rounded = float(f"{value:.6g}")
    return float(f"{value * (1 + 1e-5):.6g}") if up and rounded < value else rounded

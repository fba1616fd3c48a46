"""Cloud profiles built from Vidur's measured operator tables (``pdcore profiles build``).

Steps of a grid of iterations (prefill alone, decode alone, mixed) are composed from the measured rows
(`pdcore.profiles.vidur.StepModel`), and the iteration model of `pdcore.profiles.cloud` is fitted to them by
non-negative least squares on relative error (Lawson and Hanson's algorithm), once for each knee in
`KNEES`; the knee with the least squared error wins (0 is the five-term form). The profile records the
fit's mean and max relative error per kind of iteration (``[fit]``), the rows' source (``[source]``) and the
arithmetic of its limits.

Limits from first principles (ours): ``kv_cache_tokens = (0.9 x tp x GPU memory - weights - tp x 2 GiB) /
KV bytes per token``, rounded down to 16-token blocks (vLLM's default ``gpu_memory_utilization`` 0.9 and
block size 16; 2 GiB a GPU for activations, as pdcore's llama2-70b profiles); weights are the shape's
parameters x 2 B. ``max_batch_size`` 256 and ``max_tokens_per_iteration`` 2048 are vLLM's defaults
(``max_num_seqs``, ``max_num_batched_tokens`` with chunked prefill).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pdcore.exceptions import InvalidInputError
from pdcore.profiles.build_text import ENGINE, price_comments, profile_notes
from pdcore.profiles.cloud import CloudProfile
from pdcore.profiles.cloud_tables import FIT_KINDS, FitErrors, Hardware, ModelSize
from pdcore.profiles.kv_transfer import kv_transfer_source
from pdcore.profiles.vidur import StepModel, VidurSource

__all__ = ["KNEES", "Row", "build_profile", "fit_rows", "grid", "profile_name"]

KNEES = (0, 32, 64, 96, 128, 160, 192, 256, 320, 384, 512)
"""The knees tried, in tokens."""
MAX_BATCH = 256
BUDGET = 2048
_GIB = 2**30
_SHORT = {
    "meta-llama/Meta-Llama-3-8B": "llama3-8b",
    "meta-llama/Meta-Llama-3-70B": "llama3-70b",
    "meta-llama/Llama-2-7b-hf": "llama2-7b",
    "meta-llama/Llama-2-70b-hf": "llama2-70b",
    "codellama/CodeLlama-34b-Instruct-hf": "codellama-34b",
    "internlm/internlm-20b": "internlm-20b",
    "Qwen/Qwen-72B": "qwen-72b",
    "microsoft/phi-2": "phi2",
}

Row = tuple[str, tuple[tuple[int, int], ...], tuple[int, ...]]
"""One iteration of the grid: its kind, its prefill chunks (tokens, offset) and its decode contexts."""


def profile_name(gpu: str, model: str, tensor_parallel: int) -> str:
    """The registry name of a built profile, e.g. ``llama3-70b-a100-tp4-vidur``."""
    return f"{_SHORT.get(model, model.rsplit('/', maxsplit=1)[-1].lower())}-{gpu}-tp{tensor_parallel}-vidur"


def grid(kv_cache_tokens: int, max_tokens: int) -> list[Row]:
    """The iterations the model is fitted to (ours): prompts of 16-2,048 tokens alone, several prompts
    together, 2,048-token chunks after 2,048 and 6,144 cached tokens; decode batches of 1-256 at contexts of
    256, 1,024 and 4,096 (those the KV cache holds); a 128/512/1,024-token chunk beside 8/32/128 decodes."""
    rows: list[Row] = []
    for n in (16, 32, 64, 128, 256, 384, 512, 768, 1024, 1536, 2048):
        rows.append(("prefill", ((n, 0),), ()))
    for count, n in ((2, 1024), (4, 256), (8, 128), (4, 512)):
        rows.append(("prefill", ((n, 0),) * count, ()))
    for offset in (2048, 6144):
        rows.append(("prefill", ((2048, offset),), ()))
    for batch in (1, 2, 4, 8, 16, 32, 64, 128, 256):
        for context in (256, 1024, 4096):
            if batch * context <= kv_cache_tokens:
                rows.append(("decode", (), (context,) * batch))
    for n in (128, 512, 1024):
        for batch in (8, 32, 128):
            if batch * 1024 + n <= kv_cache_tokens:
                rows.append(("mixed", ((n, 0),), (1024,) * batch))
    return [row for row in rows if sum(c for c, _ in row[1]) + len(row[2]) <= max_tokens]


def _features(row: Row, knee: int) -> list[float]:
    _, chunks, contexts = row
    prefill, batch = float(sum(c for c, _ in chunks)), len(contexts)
    below = min(prefill, float(max(0, knee - batch))) if knee else 0.0
    attention = float(sum((o + c) ** 2 - o * o for c, o in chunks))
    return [1.0, prefill - below, attention, float(batch), float(sum(contexts)), below]


def _nnls(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Non-negative least squares, ``min |a x - b|`` with ``x >= 0`` (Lawson and Hanson, 1974)."""
    n = a.shape[1]
    x, active = np.zeros(n), []
    for _ in range(10 * n):
        w = a.T @ (b - a @ x)
        free = [j for j in range(n) if j not in active and w[j] > 1e-12]
        if not free:
            break
        active.append(max(free, key=lambda j: w[j]))
        while True:
            z = np.zeros(n)
            z[active] = np.linalg.lstsq(a[:, active], b, rcond=None)[0]
            if all(z[j] > 0 for j in active):
                x = z
                break
            step = min(x[j] / (x[j] - z[j]) for j in active if z[j] <= 0)
            x = x + step * (z - x)
            active = [j for j in active if x[j] > 1e-18]
    return x


def fit_rows(rows: Sequence[Row], seconds: Sequence[float]) -> tuple[int, np.ndarray, FitErrors]:
    """The knee, coefficients (base, prefill token, attention, decode sequence, context, knee token) and
    errors of the best fit of the iteration model to ``rows`` measured at ``seconds``."""
    measured = np.asarray(seconds, dtype=float)
    best: tuple[float, int, np.ndarray, np.ndarray] | None = None
    for knee in KNEES:
        a = np.array([_features(row, knee) for row in rows])
        coef = _nnls(a / measured[:, None], np.ones(len(rows)))
        if knee == 0:
            coef[5] = 0.0
        errors = (a @ coef - measured) / measured
        score = float(errors @ errors)
        if coef[0] > 0 and (best is None or score < best[0] - 1e-12):
            best = (score, knee, coef, errors)
    if best is None:
        raise InvalidInputError("the measured rows admit no fit with a positive base_s; fix: check the rows")
    _, knee, coef, errors = best
    kinds = [row[0] for row in rows]
    by_kind = {k: np.abs(errors[[i for i, kind in enumerate(kinds) if kind == k]]) for k in FIT_KINDS}
    fit = FitErrors(
        {k: round(float(v.mean()), 4) if len(v) else 0.0 for k, v in by_kind.items()},
        {k: round(float(v.max()), 4) if len(v) else 0.0 for k, v in by_kind.items()},
        {k: float(len(v)) for k, v in by_kind.items()},
    )
    return knee, coef, fit


def _kv_cache_tokens(step: StepModel) -> tuple[int, str]:
    shape, gpu, tp = step.shape, step.gpu, step.tp
    weights = shape.parameters * 2
    per_token = shape.kv_bytes_per_token(tp) * tp
    free = 0.9 * tp * gpu.memory_bytes - weights - tp * 2 * _GIB
    if free < per_token * 16:
        raise InvalidInputError(
            f"{shape.name} ({weights / 1e9:.1f} GB of weights) leaves no KV cache on {tp} x {gpu.name}; "
            "fix: raise --tp"
        )
    tokens = int(free // per_token) // 16 * 16
    arithmetic = (
        f"kv_cache_tokens = (0.9 x {tp} x {gpu.memory_bytes / _GIB:.0f} GiB - {weights / 1e9:.2f} "
        "GB of weights "
        f"({shape.parameters:,} parameters x 2 B) - {tp} x 2 GiB activation reserve) / {per_token:,} B per "
        f"token = {free / per_token:,.0f}, rounded down to 16-token blocks: {tokens:,}. KV bytes "
        "per token: 2 x "
        f"{shape.layers} layers x {shape.kv_heads} KV heads x {shape.head_dim} x 2 B = {per_token:,}"
    )
    return tokens, arithmetic


def build_profile(
    source: VidurSource, gpu: str, model: str, tensor_parallel: int
) -> tuple[CloudProfile, str]:
    """The profile of ``model`` on ``gpu`` at ``tensor_parallel``, and its TOML text with comments.

    Raises:
        InvalidInputError: The GPU, model or degree is not profiled, the rows are missing, or the model
            does not fit in the GPUs' memory.
    """
    step = StepModel(source, gpu, model, tensor_parallel)
    kv_tokens, kv_note = _kv_cache_tokens(step)
    budget = min(BUDGET, step.max_measured_tokens)
    rows = grid(kv_tokens, budget)
    knee, coef, fit = fit_rows(rows, [step.step_s(chunks, contexts) for _, chunks, contexts in rows])
    per_gpu_kv = step.shape.kv_bytes_per_token(tensor_parallel)
    write_s = float(f"{2 * per_gpu_kv / step.gpu.hbm_bytes_per_s:.3g}")
    price = {"a100": 1.99, "h100": 3.24}.get(gpu)
    profile = CloudProfile(
        name=profile_name(gpu, model, tensor_parallel),
        description=(
            f"{model} in bf16 on {tensor_parallel} x {step.gpu.name}, fitted to Vidur's measured operators"
        ),
        model=f"{model} (bf16; {step.shape.layers} layers, hidden {step.shape.hidden}, "
        f"{step.shape.heads} heads, "
        f"{step.shape.kv_heads} KV heads, FFN {step.shape.ffn})",
        gpu=step.gpu.name,
        tensor_parallel=tensor_parallel,
        base_s=float(f"{coef[0]:.4g}"),
        prefill_token_s=float(f"{coef[1]:.4g}"),
        prefill_attn_s=float(f"{coef[2]:.4g}"),
        decode_seq_s=float(f"{coef[3]:.4g}"),
        decode_context_s=float(f"{coef[4]:.4g}"),
        prefill_knee_token_s=float(f"{coef[5]:.4g}"),
        prefill_knee_tokens=knee,
        max_batch_size=MAX_BATCH,
        max_tokens_per_iteration=budget,
        kv_cache_tokens=kv_tokens,
        gpus_per_replica=tensor_parallel,
        kv_bytes_per_token=per_gpu_kv * tensor_parallel,
        kv_write_token_s=write_s,
        kv_source=kv_transfer_source(
            kv_bytes_per_token=per_gpu_kv * tensor_parallel,
            layers=step.shape.layers,
            tensor_parallel=tensor_parallel,
            hbm_bytes_per_s=step.gpu.hbm_bytes_per_s,
            gpu=step.gpu.name,
        ),
        citation=f"Vidur: microsoft/vidur commit {source.commit}, files {', '.join(step.files)}",
        notes=profile_notes(step, len(rows), knee, fit, kv_note, write_s),
        usd_per_gpu_hour=price,
        prompt_bytes_per_token=4.0,
        stream_bytes_per_token=329.0,
        hardware=Hardware(step.gpu.peak_dense_flops, step.gpu.hbm_bytes_per_s),
        model_size=ModelSize(float(step.shape.parameters), 2.0),
        engine=ENGINE,
        fit=fit,
        source=f"<built {gpu} {model} tp{tensor_parallel}>",
    )
    return profile, price_comments(profile.to_toml(), gpu)

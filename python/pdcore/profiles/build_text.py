"""The words of a built cloud profile (`pdcore.profiles.build`): its engine overhead, its notes, and the
cited comments above its ``[price]`` and ``[wire]`` tables."""

from __future__ import annotations

from pdcore.profiles.cloud_tables import FIT_KINDS, Engine, FitErrors
from pdcore.profiles.vidur import DECODE_KV_EFFICIENCY, StepModel

__all__ = ["ENGINE", "price_comments", "profile_notes"]

ENGINE = Engine(
    name="vLLM 0.8.4",
    step_overhead_s=0.006715,
    citation=(
        "Vidur's snapshot has no CPU-overhead rows (its cpu_overhead files are absent and "
        "skip_cpu_overhead_modeling defaults to true), so the engine's per-step work is derived: BLIS "
        "(inference-sim/inference-sim coefficients.yaml, commit "
        "01cddc32110a945977d48022fdbed998af9a7ddd) fits "
        "a 16.44 ms per-step intercept for Llama-3.1-8B on one A100-80GB under vllm/vllm-openai:v0.8.4; the "
        "kernel-level intercept fitted here to Vidur's rows for Llama-3-8B on one A100 is 9.725 ms; the "
        "difference, 6.715 ms, is the engine's CPU work a step. Applied to every GPU and model (ours: the "
        "engine's host work does not scale with the model); BLIS's H100 intercept (5.75 ms) suggests far "
        "less there, so the engine model is the pessimistic end of the kernel|engine band."
    ),
)
"""The engine overhead every built profile carries (`pdcore.profiles.cloud.CloudProfile.with_cloud_model`)."""

_PRICES = {
    "a100": (
        "# What the cloud costs: dollars per GPU-hour. An estimate, not a quote: the midpoint of "
        "the typical on-demand\n"
        "# range for the A100 80GB SXM, $1.49-$2.49 per GPU-hour in early 2026 across Lambda, "
        "CoreWeave, Crusoe and\n"
        '# RunPod (pricegpu.pages.dev, "H100 vs A100 Cloud Pricing", 2026).\n'
    ),
    "h100": (
        "# What the cloud costs: dollars per GPU-hour. An estimate, not a quote: the midpoint of "
        "the typical on-demand\n"
        "# range for the H100 SXM 80GB, $2.49-$3.99 per GPU-hour in early 2026 across Lambda, "
        "CoreWeave, Crusoe and\n"
        '# RunPod (pricegpu.pages.dev, "H100 vs A100 Cloud Pricing", 2026).\n'
    ),
}
_NO_PRICE = (
    "# No [price]: no cited on-demand price of the A40 was at hand, so the run's dollars are unknown on\n"
    "# this GPU.\n"
)
_WIRE = (
    "# Bytes on the device's network per token, as in pdcore's llama3-8b-a100 profile: a prompt "
    "goes up as text at\n"
    "# about 4 bytes per token (OpenAI's tokenizer guide); a streamed token is a 246-byte vLLM "
    "chat.completion.chunk\n"
    "# plus TLS 1.3 (22), HTTP/2 (9) and TCP/IPv4 (52) framing: 329.\n"
)


def price_comments(text: str, gpu: str) -> str:
    """``text`` with the cited comments above ``[price]`` (or a note where there is none) and ``[wire]``."""
    if "\n[price]\n" in text:
        text = text.replace("\n[price]\n", "\n" + _PRICES[gpu] + "[price]\n")
    else:
        text = text.replace("\n[wire]\n", "\n" + _NO_PRICE + "\n[wire]\n")
    return text.replace("\n[wire]\n", "\n" + _WIRE + "[wire]\n")


def profile_notes(
    step: StepModel, iterations: int, knee: int, fit: FitErrors, kv_note: str, write_s: float
) -> str:
    """The ``[source] notes`` of a built profile: how the ``iterations`` rows were composed and fitted,
    the fit's errors, and the arithmetic of the limits and the KV write."""
    shape, gpu, tp = step.shape, step.gpu, step.tp
    errors = "; ".join(
        f"{kind} {fit.mean[kind]:.1%} mean, {fit.max[kind]:.1%} max over {int(fit.rows[kind])} rows"
        for kind in FIT_KINDS
    )
    knee_text = f"a knee at {knee} tokens" if knee else "no knee (the five-term form fitted best)"
    return (
        f"Built by pdcore profiles build: {iterations} iterations composed from Vidur's measured operator "
        f"rows as Vidur composes a step (vidur/execution_time_predictor/base_execution_time_predictor.py, "
        f"vidur/entities/execution_time.py: {shape.layers} layers x the linear operators' median "
        "times at the "
        "token count rounded up to 8, plus two all-reduces a layer at tensor parallelism > 1), "
        "with attention "
        f"from first principles (prefill at {gpu.attention_efficiency:.0%} of peak dense FLOPs, "
        "decode reading "
        f"the KV cache at {DECODE_KV_EFFICIENCY:.0%} of HBM bandwidth; Vidur's attention.csv is not in the "
        "snapshot). Embedding and LM head left out, as Vidur's model_time does. Fitted by non-negative least "
        f"squares on relative error, with {knee_text}. Fit errors: {errors}. GPU: {gpu.citation} "
        f"Model: {shape.parameters:,} parameters from the shape (layers x (Q, K, V, O + "
        f"{'3' if shape.gated else '2'} MLP matrices) + embedding + LM head, vocabulary "
        f"{shape.vocab:,} as in "
        f"Vidur's rows). {kv_note}. write_token_s: 2 x {shape.kv_bytes_per_token(tp):,} B a token "
        "a GPU (read "
        f"and write) at {gpu.hbm_bytes_per_s / 1e12:.3g} TB/s = {write_s:.3g} s. max_batch_size 256 and "
        "max_tokens_per_iteration 2048 are vLLM's defaults (max_num_seqs, max_num_batched_tokens). "
        "The [engine] overhead is added to base_s under the engine cloud model (the default)."
    )

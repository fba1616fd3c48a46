"""Step times composed from Vidur's measured operator tables (microsoft/vidur, ``data/profiling``).

Reads ``compute/<gpu>/<model>/mlp.csv`` (per-operator times in ms against ``num_tokens``, per tensor-parallel
degree; the median of each operator, as Vidur's predictor trains on ``time_stats.<op>.median``) and, for
tensor parallelism, ``network/<gpu>_dgx/all_reduce.csv`` (rows with ``num_workers = devices_per_node = tp``,
sizes in bytes = tokens x hidden x 2). A step is composed as Vidur composes it
(``vidur/execution_time_predictor/base_execution_time_predictor.py`` ``get_execution_time`` and
``vidur/entities/execution_time.py`` ``model_time``): layers x (the linear operators at the step's token count
rounded up to 8, ``vidur/entities/batch.py``; attention; KV-cache save; two all-reduces plus Vidur's 0.02 ms
NCCL launch overhead each, ``vidur/config/config.py``). Like Vidur's ``model_time`` it leaves out
the embedding
and the LM head. Between measured token counts the operator times are interpolated linearly (ours; Vidur fits
a random forest or polynomial).

Attention is not in the snapshot (its ``attention.csv`` blobs are absent), so it comes from first principles
(ours): prefill attention does ``4 x heads/tp x head_dim`` FLOPs per causal query-key pair at
`Gpu.attention_efficiency` of peak; decode attention reads each context token's K and V (``2 x kv_heads/tp x
head_dim x 2`` bytes a layer) at `DECODE_KV_EFFICIENCY` of HBM bandwidth; both get Vidur's 10% batching
overhead for more than one sequence (``attention_*_batching_overhead_fraction``). The KV-cache save writes
each new token's K and V at HBM bandwidth (read and write).

Rows are read from a checkout directory, or from a git directory at a commit (``git show``).
"""

from __future__ import annotations

import csv
import io
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pdcore.exceptions import InvalidInputError

__all__ = [
    "DECODE_KV_EFFICIENCY",
    "GPUS",
    "Gpu",
    "ModelShape",
    "StepModel",
    "VidurSource",
    "checked_commit",
]

DECODE_KV_EFFICIENCY = 0.64
"""Fraction of HBM bandwidth decode attention reads the KV cache at (ours): the rate at which Vidur's
measured A100 decode-attention rows for Llama-3-8B read it (131,072 B a token in 1.00e-7 s, 1.31 TB/s of
2.039), compared step by step when pdcore's llama3-8b-a100 profile was checked against Vidur."""
_OPS = (
    "attn_pre_proj",
    "attn_post_proj",
    "mlp_up_proj",
    "mlp_down_proj",
    "mlp_act",
    "input_layernorm",
    "post_attention_layernorm",
    "attn_rope",
    "add",
)
_NCCL_LAUNCH_MS = 0.02
_BATCHING_OVERHEAD = 0.1


@dataclass(frozen=True)
class Gpu:
    """A GPU's datasheet figures and the fraction of peak FLOPs prefill attention reaches on it."""

    name: str
    peak_dense_flops: float
    hbm_bytes_per_s: float
    memory_bytes: int
    attention_efficiency: float
    network: str | None
    citation: str


GPUS = {
    "a100": Gpu(
        "NVIDIA A100-SXM4-80GB",
        312e12,
        2.039e12,
        80 * 2**30,
        0.5,
        "a100_dgx",
        "NVIDIA A100 datasheet: 312 TFLOPS dense BF16 tensor, 2,039 GB/s HBM2e, 80 GB. Attention at 50% of "
        "peak: FlashAttention-2 (Dao, arXiv 2307.08691) reaches 50-73% of the A100's peak forward.",
    ),
    "h100": Gpu(
        "NVIDIA H100-SXM5-80GB",
        989e12,
        3.35e12,
        80 * 2**30,
        0.35,
        "h100_dgx",
        "NVIDIA H100 datasheet: 989 TFLOPS dense BF16 tensor (1,979 with sparsity), 3.35 TB/s HBM3, 80 GB. "
        "Attention at 35% of peak: FlashAttention-3 (Shah et al., arXiv 2407.08608) measures "
        "FlashAttention-2 at 35% of the H100's peak.",
    ),
    "a40": Gpu(
        "NVIDIA A40",
        149.7e12,
        696e9,
        48 * 2**30,
        0.5,
        None,
        "NVIDIA A40 datasheet: 149.7 TFLOPS dense BF16 tensor (299.4 with sparsity), 696 GB/s GDDR6, 48 GB. "
        "Attention at 50% of peak, as on the A100 (the same Ampere generation; an assumption).",
    ),
}
"""The GPUs Vidur profiles, by Vidur's device name."""

_LAYERS = {
    "meta-llama/Meta-Llama-3-8B": 32,
    "meta-llama/Meta-Llama-3-70B": 80,
    "meta-llama/Llama-2-7b-hf": 32,
    "meta-llama/Llama-2-70b-hf": 80,
    "codellama/CodeLlama-34b-Instruct-hf": 48,
    "internlm/internlm-20b": 60,
    "Qwen/Qwen-72B": 80,
    "microsoft/phi-2": 32,
}
"""Layers of each model Vidur profiles (``vidur/config/model_config.py``)."""


@dataclass(frozen=True)
class ModelShape:
    """A model's shape, from the config columns of its ``mlp.csv`` and Vidur's layer count."""

    name: str
    layers: int
    heads: int
    kv_heads: int
    hidden: int
    ffn: int
    vocab: int
    gated: bool

    @property
    def head_dim(self) -> int:
        """Width of one attention head."""
        return self.hidden // self.heads

    @property
    def parameters(self) -> int:
        """Weights: per layer Q, K, V, O and the MLP's two (three gated) matrices, plus the embedding and an
        untied LM head (norms and biases left out)."""
        attention = self.hidden * (self.hidden + 2 * self.kv_heads * self.head_dim) + self.hidden**2
        mlp = (3 if self.gated else 2) * self.hidden * self.ffn
        return self.layers * (attention + mlp) + 2 * self.vocab * self.hidden

    def kv_bytes_per_token(self, tensor_parallel: int = 1) -> int:
        """KV-cache bytes of one token on one GPU: K and V, every layer, bf16."""
        return 2 * self.layers * max(1, self.kv_heads // tensor_parallel) * self.head_dim * 2


@dataclass(frozen=True)
class VidurSource:
    """Where the measured rows come from: a checkout directory, or a git directory read at ``commit``."""

    root: Path
    commit: str

    def read(self, path: str) -> str:
        """The text of ``path`` (relative to the repository root).

        Raises:
            InvalidInputError: The file is missing from the checkout or the commit.
        """
        file = self.root / path
        if file.is_file():
            return file.read_text(encoding="utf-8")
        try:
            done = subprocess.run(
                ["git", "-C", str(self.root), "show", f"{self.commit}:{path}"],
                capture_output=True,
                text=True,
                check=False,
                timeout=120,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise InvalidInputError(f"--vidur {self.root}: cannot read {path} ({exc})") from None
        if done.returncode != 0:
            raise InvalidInputError(
                f"--vidur {self.root}: {path} is neither a file there nor in commit {self.commit}; fix: pass "
                "a Vidur checkout (github.com/microsoft/vidur) or its git directory and a commit that has it"
            )
        return done.stdout


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _curve(points: dict[int, list[float]]) -> tuple[list[float], list[float]]:
    xs = sorted(points)
    return [float(x) for x in xs], [_median(points[x]) for x in xs]


def _interp(curve: tuple[list[float], list[float]], x: float) -> float:
    xs, ys = curve
    if x <= xs[0]:
        return ys[0]
    if x >= xs[-1]:
        return ys[-1] * x / xs[-1]  # beyond the rows: proportional to tokens (ours)
    hi = next(i for i, v in enumerate(xs) if v >= x)
    lo = hi - 1
    return ys[lo] + (ys[hi] - ys[lo]) * (x - xs[lo]) / (xs[hi] - xs[lo])


class StepModel:
    """Kernel-level step times of one model on one GPU at one tensor-parallel degree (module docstring)."""

    def __init__(self, source: VidurSource, gpu: str, model: str, tensor_parallel: int) -> None:
        if gpu not in GPUS:
            raise InvalidInputError(
                f"--gpu {gpu!r} is not profiled by Vidur; fix: use one of {', '.join(GPUS)}"
            )
        if model not in _LAYERS:
            raise InvalidInputError(
                f"--model {model!r} is not profiled by Vidur; fix: use one of {', '.join(_LAYERS)}"
            )
        self.gpu, self.tp, self.files = (
            GPUS[gpu],
            tensor_parallel,
            [f"data/profiling/compute/{gpu}/{model}/mlp.csv"],
        )
        rows = [
            row
            for row in csv.DictReader(io.StringIO(source.read(self.files[0])))
            if row.get("num_tensor_parallel_workers") == str(tensor_parallel)
        ]
        if not rows:
            raise InvalidInputError(
                f"{self.files[0]} has no rows at --tp {tensor_parallel}; fix: use a degree Vidur "
                "profiled (1, 2, 4, 8)"
            )
        first = rows[0]
        self.shape = ModelShape(
            model,
            _LAYERS[model],
            int(first["n_head"]),
            int(first["n_kv_head"]),
            int(first["n_embd"]),
            int(first["n_expanded_embd"]),
            int(first["vocab_size"]),
            first["use_gated_mlp"] == "True",
        )
        self.ops = {}
        for op in _OPS:
            key = f"time_stats.{op}.median"
            if key in first:
                points: dict[int, list[float]] = {}
                for row in rows:
                    points.setdefault(int(row["num_tokens"]), []).append(float(row[key]))
                self.ops[op] = _curve(points)
        self.all_reduce = self._all_reduce(source, gpu) if tensor_parallel > 1 else None

    def _all_reduce(self, source: VidurSource, gpu: str) -> tuple[list[float], list[float]]:
        if self.gpu.network is None:
            raise InvalidInputError(
                f"Vidur has no all-reduce rows for --gpu {gpu}; fix: use --tp 1 on this GPU"
            )
        path = f"data/profiling/network/{self.gpu.network}/all_reduce.csv"
        self.files.append(path)
        points: dict[int, list[float]] = {}
        tp = str(self.tp)
        for row in csv.DictReader(io.StringIO(source.read(path))):
            if (
                row["num_workers"] == tp
                and row["devices_per_node"] == tp
                and row["collective"] == "all_reduce"
            ):
                points.setdefault(int(row["size"]), []).append(float(row["time_stats.all_reduce.median"]))
        if not points:
            raise InvalidInputError(f"{path} has no all-reduce rows for {tp} GPUs; fix: use --tp 2, 4 or 8")
        return _curve(points)

    @property
    def max_measured_tokens(self) -> int:
        """The largest token count the operator rows cover."""
        return int(next(iter(self.ops.values()))[0][-1])

    def step_s(self, chunks: Sequence[tuple[int, int]], contexts: Sequence[int]) -> float:
        """Seconds of one step with prefill ``chunks`` (tokens, offset) and decode ``contexts``."""
        shape, gpu, tp = self.shape, self.gpu, self.tp
        tokens = sum(c for c, _ in chunks) + len(contexts)
        rounded = (tokens + 7) // 8 * 8
        layer_ms = sum(_interp(curve, rounded) for curve in self.ops.values())
        kv_bytes = 2 * max(1, shape.kv_heads // tp) * shape.head_dim * 2
        layer_ms += tokens * kv_bytes * 2 / gpu.hbm_bytes_per_s * 1e3
        if chunks:
            pairs = sum(c * o + c * c / 2 for c, o in chunks)
            flops = 4 * shape.heads / tp * shape.head_dim * pairs
            batching = 1 + _BATCHING_OVERHEAD * (len(chunks) > 1)
            layer_ms += flops / (gpu.peak_dense_flops * gpu.attention_efficiency) * 1e3 * batching
        if contexts:
            batching = 1 + _BATCHING_OVERHEAD * (len(contexts) > 1)
            layer_ms += (
                sum(contexts) * kv_bytes / (gpu.hbm_bytes_per_s * DECODE_KV_EFFICIENCY) * 1e3 * batching
            )
        if self.all_reduce is not None:
            layer_ms += 2 * (_interp(self.all_reduce, rounded * shape.hidden * 2) + _NCCL_LAUNCH_MS)
        return layer_ms * shape.layers / 1e3


def checked_commit(commit: str) -> str:
    """A commit id as given (40 hex digits), or an error naming ``--vidur-commit``."""
    if len(commit) != 40 or not all(c in "0123456789abcdef" for c in commit.lower()):
        raise InvalidInputError(f"--vidur-commit {commit!r} is not a 40-hex commit id; fix: pass the full id")
    return commit

"""Cloud serving profiles: the iteration-time model of a continuous-batching GPU replica.

One iteration (one forward pass of a vLLM/Sarathi-style engine) runs some prefill chunks and some decode
steps together. Its duration is modelled as::

    t = base_s
      + prefill_token_s  * sum(prefill_len)
      + prefill_attn_s   * sum(prefill_len ** 2)
      + decode_seq_s     * decode_batch
      + decode_context_s * sum(decode_context)

the fitted form of DistServe's profiler (prefill ms = a + b * sum(tokens) + c * sum(len^2); decode
ms = a + b * sum(context) + c * batch) with one shared intercept, since a mixed batch reads the weights once.

The prefill knee (ours, `pdcore._core.CloudCost`): with ``prefill_knee_tokens = K > 0`` the first
``max(0, K - decode_batch)`` prefill tokens of an iteration cost ``prefill_knee_token_s`` each instead of
``prefill_token_s`` (below the knee the GEMMs are bound by reading the weights). Measured operator tables need
it (docs/cost.md); without it (both keys absent, the default) the form above is unchanged.

An ``[engine]`` table adds its ``step_overhead_s`` to every iteration (the ``engine`` cloud model, the
default); `CloudProfile.with_cloud_model` gives the ``kernel`` variant without it.

Chunked prefill: ``prefill_attn_s * n^2`` is the attention cost of a whole prompt of ``n`` tokens, i.e.
``2 * prefill_attn_s`` per causal query-key pair (n^2 / 2 pairs). A chunk of ``c`` tokens after ``o``
already-cached tokens covers ``c * o + c^2 / 2`` pairs, so it is charged
``prefill_attn_s * ((o + c)^2 - o^2)``; the charges of a prompt's chunks then add up to exactly
``prefill_attn_s * n^2`` however it is split. With every offset 0 (the default) this is the formula above.

TOML layout::

    name = "..."  description = "..."  model = "..."  gpu = "..."  tensor_parallel = 1
    [iteration]   base_s, prefill_token_s, prefill_attn_s, decode_seq_s, decode_context_s  (seconds),
                  prefill_knee_token_s, prefill_knee_tokens (optional, the knee; 0 when absent)
    [limits]      max_batch_size, max_tokens_per_iteration, kv_cache_tokens, gpus_per_replica,
                  prefix_cache_tokens (optional: the prefix cache, default kv_cache_tokens)
    [kv_transfer] bytes_per_token, write_token_s (optional, seconds; 0 when absent), source (optional: where
                  the KV write and transfer timing come from, `pdcore.profiles.kv_transfer`)
    [price]       usd_per_gpu_hour (optional table; without it the run's dollars are unknown)
    [wire]        prompt_bytes_per_token, stream_bytes_per_token (optional table; without it the run's bytes
                  are unknown)
    [source]      citation = "..."  notes = "..."
    [hardware], [model], [engine], [fit]  optional (`pdcore.profiles.cloud_tables`); built profiles carry all

A table that is present must carry all its keys.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from pdcore._core import CloudCost
from pdcore.exceptions import InvalidInputError
from pdcore.profiles._toml import (
    Table,
    check_keys,
    get_float,
    get_int,
    get_str,
    get_table,
    parse_toml,
    read_toml,
)
from pdcore.profiles.cloud_checks import MAX_PRICE, check_cloud_profile
from pdcore.profiles.cloud_tables import (
    Engine,
    FitErrors,
    Hardware,
    ModelSize,
    read_optional_tables,
)
from pdcore.profiles.cloud_toml import cloud_profile_toml

__all__ = ["CLOUD_MODELS", "CloudProfile"]

_TOP_KEYS = (
    "name",
    "description",
    "model",
    "gpu",
    "tensor_parallel",
    "iteration",
    "limits",
    "kv_transfer",
    "price",
    "wire",
    "source",
    "hardware",
    "model_size",
    "engine",
    "fit",
)
_ITERATION_KEYS = (
    "base_s",
    "prefill_token_s",
    "prefill_attn_s",
    "decode_seq_s",
    "decode_context_s",
    "prefill_knee_token_s",
    "prefill_knee_tokens",
)
CLOUD_MODELS = ("engine", "kernel")
"""The cloud models of `CloudProfile.with_cloud_model`: with the ``[engine]`` overhead (default), without."""
_LIMIT_KEYS = (
    "max_batch_size",
    "max_tokens_per_iteration",
    "kv_cache_tokens",
    "gpus_per_replica",
    "prefix_cache_tokens",
)
_KV_KEYS = ("bytes_per_token", "write_token_s", "source")
_SOURCE_KEYS = ("citation", "notes")
_PRICE_KEYS = ("usd_per_gpu_hour",)
_WIRE_KEYS = ("prompt_bytes_per_token", "stream_bytes_per_token")
_MAX_PRICE = MAX_PRICE


@dataclass(frozen=True)
class CloudProfile:
    """Iteration-time coefficients and capacity limits of one cloud serving replica.

    Attributes:
        name: Registry name, e.g. ``"llama3-8b-a100"``.
        description: One-line description.
        model: The served model and precision.
        gpu: The GPU type.
        tensor_parallel: Tensor-parallel degree of a replica.
        base_s: Fixed cost of any iteration (weight reads, launch and scheduler overhead), > 0.
        prefill_token_s: Cost per prefill token.
        prefill_attn_s: Cost per squared prefill length (attention).
        decode_seq_s: Cost per sequence in the decode batch.
        decode_context_s: Cost per token of decode context (KV-cache reads).
        max_batch_size: Most sequences in one iteration (the engine's ``max_num_seqs``).
        max_tokens_per_iteration: Token budget of one iteration, prefill chunks plus one per decode
            (chunked prefill, as in Sarathi-Serve; vLLM's ``max_num_batched_tokens``).
        kv_cache_tokens: KV-cache capacity of a replica in tokens.
        gpus_per_replica: GPUs one replica occupies (at least ``tensor_parallel``).
        kv_bytes_per_token: Bytes of KV cache per token, used for KV transfer sizes.
        kv_write_token_s: Seconds per token for a decode replica to write a received KV cache (the
            prefill side's write is inside ``prefill_token_s``; `pdcore._core.KvLink` in the cost model).
        kv_source: Where the KV write and transfer timing come from (``[kv_transfer] source``), or None.
        citation: Where the numbers come from.
        notes: How the coefficients were derived.
        source: The file the profile was read from (used in error messages).
        usd_per_gpu_hour: Dollars per GPU-hour of ``gpu`` (``[price]``), or None when not given.
        prompt_bytes_per_token: Bytes per prompt token sent as text (``[wire]``), or None.
        stream_bytes_per_token: Bytes per streamed token with its framing (``[wire]``), or None.
        prefill_knee_token_s: Cost per prefill token below the knee (0 without a knee).
        prefill_knee_tokens: Tokens of an iteration below the knee (0: no knee).
        hardware: The GPU's datasheet figures (``[hardware]``), or None.
        model_size: The model's parameter count and bytes per parameter (``[model_size]``), or None.
        engine: The engine's per-step overhead (``[engine]``), added to every iteration, or None.
        fit: The fit's errors on its source rows (``[fit]``), or None.
    """

    name: str
    description: str
    model: str
    gpu: str
    tensor_parallel: int
    base_s: float
    prefill_token_s: float
    prefill_attn_s: float
    decode_seq_s: float
    decode_context_s: float
    max_batch_size: int
    max_tokens_per_iteration: int
    kv_cache_tokens: int
    gpus_per_replica: int
    kv_bytes_per_token: int
    citation: str
    notes: str
    source: str = "<memory>"
    kv_write_token_s: float = 0.0
    usd_per_gpu_hour: float | None = None
    prompt_bytes_per_token: float | None = None
    stream_bytes_per_token: float | None = None
    prefix_cache_tokens: int | None = None
    prefill_knee_token_s: float = 0.0
    prefill_knee_tokens: int = 0
    hardware: Hardware | None = None
    model_size: ModelSize | None = None
    engine: Engine | None = None
    fit: FitErrors | None = None
    kv_source: str | None = None

    @property
    def prefix_cache_capacity(self) -> int:
        """Tokens the cloud's prefix cache holds, shared by its prefill replicas (`pdcore.sim`): the
        profile's ``[limits] prefix_cache_tokens``, else ``kv_cache_tokens`` (an assumption: a host-memory
        pool the size of one replica's KV cache, as Mooncake pools its cluster's DRAM; 0 disables it)."""
        return self.kv_cache_tokens if self.prefix_cache_tokens is None else self.prefix_cache_tokens

    def __post_init__(self) -> None:
        """Checks every value (`pdcore.profiles.cloud_checks.check_cloud_profile`).

        Raises:
            ProfileError: A value is out of range, or a kernel price is faster than ``[hardware]`` allows.
        """
        check_cloud_profile(self)

    @classmethod
    def from_mapping(cls, table: Table, *, source: str) -> CloudProfile:
        """Builds a profile from parsed TOML.

        Args:
            table: The parsed document.
            source: Name used in error messages (the file path).

        Returns:
            The validated profile.

        Raises:
            ProfileError: A key is missing, unknown, mistyped or out of range.
        """
        check_keys(table, "", _TOP_KEYS, source)
        iteration = get_table(table, "iteration", source)
        limits = get_table(table, "limits", source)
        kv = get_table(table, "kv_transfer", source)
        cited = get_table(table, "source", source)
        check_keys(iteration, "iteration", _ITERATION_KEYS, source)
        check_keys(limits, "limits", _LIMIT_KEYS, source)
        check_keys(kv, "kv_transfer", _KV_KEYS, source)
        check_keys(cited, "source", _SOURCE_KEYS, source)
        price = get_table(table, "price", source) if "price" in table else None
        wire = get_table(table, "wire", source) if "wire" in table else None
        if price is not None:
            check_keys(price, "price", _PRICE_KEYS, source)
        if wire is not None:
            check_keys(wire, "wire", _WIRE_KEYS, source)

        hardware, model_size, engine, fit = read_optional_tables(table, source)

        def number(section: Table | None, name: str, key: str) -> float | None:
            if section is None:
                return None
            return get_float(section, name, key, source, maximum=_MAX_PRICE)

        return cls(
            name=get_str(table, "", "name", source),
            description=get_str(table, "", "description", source),
            model=get_str(table, "", "model", source),
            gpu=get_str(table, "", "gpu", source),
            tensor_parallel=get_int(table, "", "tensor_parallel", source),
            base_s=get_float(iteration, "iteration", "base_s", source, positive=True),
            prefill_token_s=get_float(iteration, "iteration", "prefill_token_s", source),
            prefill_attn_s=get_float(iteration, "iteration", "prefill_attn_s", source),
            decode_seq_s=get_float(iteration, "iteration", "decode_seq_s", source),
            decode_context_s=get_float(iteration, "iteration", "decode_context_s", source),
            max_batch_size=get_int(limits, "limits", "max_batch_size", source),
            max_tokens_per_iteration=get_int(limits, "limits", "max_tokens_per_iteration", source),
            kv_cache_tokens=get_int(limits, "limits", "kv_cache_tokens", source),
            gpus_per_replica=get_int(limits, "limits", "gpus_per_replica", source),
            kv_bytes_per_token=get_int(kv, "kv_transfer", "bytes_per_token", source),
            citation=get_str(cited, "source", "citation", source),
            notes=get_str(cited, "source", "notes", source),
            source=source,
            kv_write_token_s=(
                get_float(kv, "kv_transfer", "write_token_s", source) if "write_token_s" in kv else 0.0
            ),
            kv_source=get_str(kv, "kv_transfer", "source", source) if "source" in kv else None,
            usd_per_gpu_hour=number(price, "price", "usd_per_gpu_hour"),
            prompt_bytes_per_token=number(wire, "wire", "prompt_bytes_per_token"),
            stream_bytes_per_token=number(wire, "wire", "stream_bytes_per_token"),
            prefix_cache_tokens=(
                get_int(limits, "limits", "prefix_cache_tokens", source, minimum=0)
                if "prefix_cache_tokens" in limits
                else None
            ),
            prefill_knee_token_s=(
                get_float(iteration, "iteration", "prefill_knee_token_s", source)
                if "prefill_knee_token_s" in iteration
                else 0.0
            ),
            prefill_knee_tokens=(
                get_int(iteration, "iteration", "prefill_knee_tokens", source, minimum=0)
                if "prefill_knee_tokens" in iteration
                else 0
            ),
            hardware=hardware,
            model_size=model_size,
            engine=engine,
            fit=fit,
        )

    @classmethod
    def from_toml_text(cls, text: str, *, source: str = "<string>") -> CloudProfile:
        """Parses a profile from TOML text (``source`` names it in errors)."""
        return cls.from_mapping(parse_toml(text, source), source=source)

    @classmethod
    def from_toml_file(cls, path: str | os.PathLike[str]) -> CloudProfile:
        """Reads a profile from a TOML file.

        Raises:
            ProfileError: The file is missing, is not valid TOML, or fails validation.
        """
        file = Path(path)
        return cls.from_mapping(read_toml(file), source=str(file))

    def to_toml(self) -> str:
        """The profile as TOML (the layout in the module docstring), which `from_toml_text` reads back as an
        equal profile (its ``source`` aside); comments of the file it was read from are not kept."""
        return cloud_profile_toml(self)

    def coefficients(self) -> dict[str, float]:
        """Returns the five terms of the iteration model, in seconds, keyed as in the TOML file (the knee's
        are `prefill_knee_token_s` and `prefill_knee_tokens`)."""
        return {
            "base_s": self.base_s,
            "prefill_token_s": self.prefill_token_s,
            "prefill_attn_s": self.prefill_attn_s,
            "decode_seq_s": self.decode_seq_s,
            "decode_context_s": self.decode_context_s,
        }

    def iteration_terms(self) -> dict[str, Any]:
        """The cost model's arguments (`pdcore._core.CloudCost`, `pdcore._core.CloudConfig`): the
        coefficients with the ``[engine]`` overhead inside ``base_s``, and the knee."""
        overhead = 0.0 if self.engine is None else self.engine.step_overhead_s
        return {
            **self.coefficients(),
            "base_s": self.base_s + overhead,
            "prefill_knee_token_s": self.prefill_knee_token_s,
            "prefill_knee_tokens": self.prefill_knee_tokens,
        }

    def with_cloud_model(self, model: str) -> CloudProfile:
        """The profile under a cloud model: ``"engine"`` (this profile, with its ``[engine]`` per-step
        overhead) or ``"kernel"`` (the same profile without ``[engine]``: GPU kernels only).

        Raises:
            InvalidInputError: ``model`` is not one of `CLOUD_MODELS`.
        """
        if model not in CLOUD_MODELS:
            raise InvalidInputError(
                f"--cloud-model {model!r} is not known; fix: use one of {', '.join(CLOUD_MODELS)}"
            )
        if model == "engine" or self.engine is None:
            return self
        return replace(
            self, engine=None, description=f"{self.description} (kernel model: no engine overhead)"
        )

    @cached_property
    def cost(self) -> CloudCost:
        """The cost model of one replica (`pdcore._core.CloudCost`): iteration time, lone-request prices."""
        return CloudCost(**self.iteration_terms(), max_tokens_per_iteration=self.max_tokens_per_iteration)

    def __getstate__(self) -> dict[str, Any]:
        """Pickles the fields only; the cost model is rebuilt on first use."""
        state = dict(self.__dict__)
        state.pop("cost", None)
        return state

    def iteration_s(
        self,
        prefill_lens: Sequence[int],
        decode_contexts: Sequence[int],
        *,
        prefill_offsets: Sequence[int] | None = None,
    ) -> float:
        """Duration of one iteration under the model in the module docstring (`cost`).

        Batch and token limits are not enforced here: the scheduler applies them.

        Args:
            prefill_lens: Token count of each prefill chunk in the iteration (each >= 1).
            decode_contexts: KV-cache length of each sequence decoding one token (each >= 0).
            prefill_offsets: For chunked prefill, the tokens of each chunk's prompt already in the KV cache
                (each >= 0, one per chunk); None means every chunk starts its prompt.

        Returns:
            Seconds; 0.0 for an empty iteration (nothing to run).

        Raises:
            InvalidInputError: A prefill length is below 1, a decode context or offset is negative, or
                ``prefill_offsets`` does not have one entry per chunk.
        """
        offsets = None if prefill_offsets is None else [int(o) for o in prefill_offsets]
        return float(
            self.cost.iteration_s(
                [int(n) for n in prefill_lens], [int(c) for c in decode_contexts], prefill_offsets=offsets
            )
        )

    def kv_bytes(self, tokens: int) -> int:
        """Bytes of KV cache for ``tokens`` tokens (the size of a KV transfer of that many tokens).

        Raises:
            InvalidInputError: ``tokens`` is negative.
        """
        if tokens < 0:
            raise InvalidInputError(f"tokens = {tokens}; a token count cannot be negative")
        return int(tokens) * self.kv_bytes_per_token

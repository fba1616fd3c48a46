"""A cloud profile written as TOML (`pdcore.profiles.cloud.CloudProfile.to_toml`), in the layout of
`pdcore.profiles.cloud`'s docstring, which `CloudProfile.from_toml_text` reads back as an equal profile."""

from __future__ import annotations

from pdcore.profiles._toml import toml_document
from pdcore.profiles.cloud_fields import CloudProfileFields

__all__ = ["cloud_profile_toml"]


def cloud_profile_toml(profile: CloudProfileFields) -> str:
    """The profile as TOML (`pdcore.profiles.cloud.CloudProfile.to_toml`): the optional tables written only
    where present, the knee only when the profile has one."""
    hardware, size, engine, fit = profile.hardware, profile.model_size, profile.engine, profile.fit
    knee = profile.prefill_knee_tokens
    optional: dict[str, dict[str, object] | None] = {
        "hardware": None if hardware is None else vars(hardware),
        "model_size": None if size is None else vars(size),
        "engine": None
        if engine is None
        else {"engine": engine.name, "step_overhead_s": engine.step_overhead_s, "citation": engine.citation},
        "fit": None if fit is None else dict(fit.as_table()),
    }
    prompt, stream = profile.prompt_bytes_per_token, profile.stream_bytes_per_token
    price = None if profile.usd_per_gpu_hour is None else {"usd_per_gpu_hour": profile.usd_per_gpu_hour}
    wire = None
    if prompt is not None and stream is not None:
        wire = {"prompt_bytes_per_token": prompt, "stream_bytes_per_token": stream}
    return toml_document(
        {
            "name": profile.name,
            "description": profile.description,
            "model": profile.model,
            "gpu": profile.gpu,
            "tensor_parallel": profile.tensor_parallel,
        },
        {
            "iteration": {
                **profile.coefficients(),
                "prefill_knee_token_s": profile.prefill_knee_token_s if knee else None,
                "prefill_knee_tokens": knee or None,
            },
            "limits": {
                "max_batch_size": profile.max_batch_size,
                "max_tokens_per_iteration": profile.max_tokens_per_iteration,
                "kv_cache_tokens": profile.kv_cache_tokens,
                "gpus_per_replica": profile.gpus_per_replica,
                "prefix_cache_tokens": profile.prefix_cache_tokens,
            },
            "kv_transfer": {
                "bytes_per_token": profile.kv_bytes_per_token,
                "write_token_s": profile.kv_write_token_s or None,
                "source": profile.kv_source,
            },
            "price": price,
            "wire": wire,
            "source": {"citation": profile.citation, "notes": profile.notes},
            **optional,
        },
    )

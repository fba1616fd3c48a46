"""Range checks of a cloud profile's values (`pdcore.profiles.cloud.CloudProfile` runs them on creation).

Every coefficient is a finite number of seconds within what hardware can take (`pdcore.limits`), every
limit an integer >= 1, every price and byte figure within 0 .. `MAX_PRICE`; with ``[hardware]`` and
``[model]`` the kernel prices also obey the physics guard (`pdcore.profiles.cloud_tables.check_physics`).
"""

from __future__ import annotations

from pdcore.exceptions import ProfileError
from pdcore.limits import LIMITS_DOC, time_bound
from pdcore.profiles.cloud_fields import CloudProfileFields
from pdcore.profiles.cloud_tables import check_physics

__all__ = ["MAX_PRICE", "check_cloud_profile"]

MAX_PRICE = 1e6
"""The largest dollar or byte figure a profile may give (catches a value off by orders of magnitude)."""


def _check_times(profile: CloudProfileFields) -> None:
    for key, value in {
        **profile.coefficients(),
        "prefill_knee_token_s": profile.prefill_knee_token_s,
    }.items():
        if not (value >= 0.0 and value != float("inf")) or (key == "base_s" and value == 0.0):
            bound = "greater than 0" if key == "base_s" else "0 or more"
            raise ProfileError(
                f"{profile.source}: key '[iteration] {key}' = {value!r}; fix: it must be a finite number "
                f"of seconds, {bound}"
            )
    times = {f"[iteration] {key}": value for key, value in profile.coefficients().items()}
    times["[kv_transfer] write_token_s"] = profile.kv_write_token_s
    times["[iteration] prefill_knee_token_s"] = profile.prefill_knee_token_s
    if profile.engine is not None:
        times["[engine] step_overhead_s"] = profile.engine.step_overhead_s
    for key, value in times.items():
        limit = time_bound(_bound_key(key))
        if value > limit:
            raise ProfileError(
                f"{profile.source}: key {key!r} = {value!r} is above {limit:g} s, more than any "
                f"hardware takes; fix: correct the value (times are in seconds; limits: {LIMITS_DOC})"
            )


def _bound_key(key: str) -> str:
    """The time bound a key shares: an engine step's is a base's (every other key has its own)."""
    return "[iteration] base_s" if key == "[engine] step_overhead_s" else key


def _check_limits(profile: CloudProfileFields) -> None:
    limits = {
        "tensor_parallel": profile.tensor_parallel,
        "[limits] max_batch_size": profile.max_batch_size,
        "[limits] max_tokens_per_iteration": profile.max_tokens_per_iteration,
        "[limits] kv_cache_tokens": profile.kv_cache_tokens,
        "[limits] gpus_per_replica": profile.gpus_per_replica,
        "[kv_transfer] bytes_per_token": profile.kv_bytes_per_token,
    }
    for key, number in limits.items():
        if isinstance(number, bool) or not isinstance(number, int) or number < 1:
            raise ProfileError(f"{profile.source}: key {key!r} = {number!r}; fix: it must be an integer >= 1")
    knee = profile.prefill_knee_tokens
    if isinstance(knee, bool) or not isinstance(knee, int) or knee < 0:
        raise ProfileError(
            f"{profile.source}: key '[iteration] prefill_knee_tokens' = {knee!r}; fix: it must be an integer "
            ">= 0 (0: no knee)"
        )
    if profile.gpus_per_replica < profile.tensor_parallel:
        raise ProfileError(
            f"{profile.source}: key '[limits] gpus_per_replica' = {profile.gpus_per_replica} is below "
            f"tensor_parallel = {profile.tensor_parallel}; fix: a replica needs at least tensor_parallel "
            "GPUs"
        )


def _check_prices(profile: CloudProfileFields) -> None:
    for key, given in (
        ("[price] usd_per_gpu_hour", profile.usd_per_gpu_hour),
        ("[wire] prompt_bytes_per_token", profile.prompt_bytes_per_token),
        ("[wire] stream_bytes_per_token", profile.stream_bytes_per_token),
    ):
        bad = given is not None and (
            isinstance(given, bool)
            or not isinstance(given, (int, float))
            or not 0.0 <= float(given) <= MAX_PRICE
        )
        if bad:
            raise ProfileError(
                f"{profile.source}: key {key!r} = {given!r}; fix: it must be a finite number from 0 to "
                f"{MAX_PRICE:g}"
            )
    if (profile.prompt_bytes_per_token is None) != (profile.stream_bytes_per_token is None):
        raise ProfileError(
            f"{profile.source}: [wire] gives one of prompt_bytes_per_token and stream_bytes_per_token; "
            "fix: give both, or drop [wire]"
        )


def check_cloud_profile(profile: CloudProfileFields) -> None:
    """Runs every check of the module docstring.

    Raises:
        ProfileError: A coefficient is negative or not finite, ``base_s`` is not positive, a time is
            above what hardware can take (`pdcore.limits.PROFILE_TIME_BOUNDS`), a limit is below 1,
            ``gpus_per_replica`` is below ``tensor_parallel``, a price is out of range, or a kernel price
            is faster than ``[hardware]`` allows for ``[model]``.
    """
    _check_times(profile)
    _check_limits(profile)
    _check_prices(profile)
    if profile.hardware is not None and profile.model_size is not None:
        kernel = profile.with_cloud_model("kernel")
        check_physics(
            profile.hardware,
            profile.model_size,
            profile.tensor_parallel,
            profile.max_tokens_per_iteration,
            kernel.iteration_s,
            profile.source,
        )

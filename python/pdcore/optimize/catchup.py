"""How many cloud tokens P/D-Device needs: the catch-up fixed point.

The rule is pdcore's own (the paper, arXiv 2508.09035, publishes no formula for ``k``) and lives, with its
derivation, in the Rust crate's ``cost::catchup`` (`pdcore._core.solve_catchup`), the one implementation the
optimizer, the simulator's built-in policies and the live runtime share. In short: the cloud sends
``n = k + 1`` tokens; ``T(n)`` is when the device, prefilling every arrived token in one step after its
prompt, is ready with its own first token; ``k`` is ``n - 1`` for the smallest ``n`` with
``T(n) <= F + (n - 1) * max(m, c) + m`` (``F`` the cloud's first token, ``c`` its pace, ``m`` the largest
display gap). Without refinement, a device whose prompt is done before ``F`` answers alone; without a fixed
point up to ``max_k`` the result is ``max_k`` with ``converged`` false.
"""

from __future__ import annotations

from pdcore._core import DEFAULT_MAX_K, CatchUp
from pdcore._core import refined_prompt_tokens as _refined_prompt_tokens
from pdcore._core import solve_catchup as _solve_catchup
from pdcore.deprecation import accepts_renamed_keywords
from pdcore.exceptions import InvalidInputError
from pdcore.optimize.arguments import check_gap, check_max_k, check_refine_ratio, check_seconds, check_tokens
from pdcore.profiles.device import DeviceProfile

__all__ = ["DEFAULT_MAX_K", "CatchUp", "catchup_k", "refined_prompt_tokens", "solve_catchup"]


@accepts_renamed_keywords
def solve_catchup(
    prompt_tokens: int,
    *,
    device: DeviceProfile,
    first_token_s: float,
    max_tpot_s: float,
    refine_ratio: float = 1.0,
    cloud_tpot_s: float = 0.0,
    max_k: int = DEFAULT_MAX_K,
) -> CatchUp:
    """Solves the catch-up fixed point (module docstring) for ``device`` and reports how.

    Args:
        prompt_tokens: Prompt length ``L``, at least 1.
        device: The device's speed profile.
        first_token_s: ``F``, the expected arrival of the cloud's first token at the device, seconds from
            the request's arrival.
        max_tpot_s: ``m``, the largest display gap, seconds (``max_tpot=``: its deprecated name).
        refine_ratio: ``r`` in (0, 1]; below 1 the device starts prefilling at ``F``.
        cloud_tpot_s: ``c``, the cloud's time between streamed tokens; 0 treats the stream as arriving at
            once.
        max_k: The cap on ``k``.

    Raises:
        InvalidInputError: An argument of the wrong type or out of range (`pdcore.optimize.arguments`).
    """
    if not isinstance(device, DeviceProfile):
        raise InvalidInputError(
            f"device = {device!r} is not a DeviceProfile; fix: pass one (pdcore.profiles.load_device_profile)"
        )
    return _solve_catchup(
        check_tokens(prompt_tokens, "prompt_tokens", minimum=1),
        device=device.cost,
        first_token_s=check_seconds(first_token_s, "first_token_s"),
        max_tpot_s=check_gap(max_tpot_s, "max_tpot_s"),
        refine_ratio=check_refine_ratio(refine_ratio),
        cloud_tpot_s=check_seconds(cloud_tpot_s, "cloud_tpot_s"),
        max_k=check_max_k(max_k),
    )


@accepts_renamed_keywords
def catchup_k(
    prompt_tokens: int,
    *,
    device: DeviceProfile,
    first_token_s: float,
    max_tpot_s: float,
    refine_ratio: float = 1.0,
    cloud_tpot_s: float = 0.0,
    max_k: int = DEFAULT_MAX_K,
) -> int:
    """The smallest ``k`` with which the device catches up within the display pace (module docstring).

    Returns 0 when the device alone is faster, and ``max_k`` when there is no fixed point up to it; use
    `solve_catchup` to tell these cases apart.

    Example:
        >>> from pdcore.profiles.device import DeviceProfile
        >>> phone = DeviceProfile(
        ...     name="toy", description="1 ms per prompt token", hardware="-", model="-", engine="-",
        ...     prefill_tokens=(1000.0,), prefill_seconds=(1.0,), decode_context_tokens=(0.0,),
        ...     decode_tpot=(0.02,), kv_bytes_per_token=1024, citation="-", notes="-")
        >>> # the smallest n with 1.0 + max(0.001 n, 0.02) <= 0.2 + 0.05 n is 17
        >>> catchup_k(1000, device=phone, first_token_s=0.2, max_tpot_s=0.05)
        16
    """
    return int(
        solve_catchup(
            prompt_tokens,
            device=device,
            first_token_s=first_token_s,
            max_tpot_s=max_tpot_s,
            refine_ratio=refine_ratio,
            cloud_tpot_s=cloud_tpot_s,
            max_k=max_k,
        ).k
    )


def refined_prompt_tokens(prompt_tokens: int, refine_ratio: float) -> int:
    """The prompt the device prefills at refinement ratio ``r``: ``max(1, ceil(r * L))``.

    Raises:
        InvalidInputError: A prompt that is not a whole number from 1 to `pdcore.limits.MAX_TOKENS`, or a
            ratio outside (0, 1].
    """
    return int(
        _refined_prompt_tokens(
            check_tokens(prompt_tokens, "prompt_tokens", minimum=1), check_refine_ratio(refine_ratio)
        )
    )

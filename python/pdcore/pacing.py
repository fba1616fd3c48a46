"""The speed controller's batch form for any array-like input.

The rule itself lives in the native core; see ``pdcore._core.pace`` for its definition and invariants.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from pdcore._core import pace as _native_pace
from pdcore.deprecation import accepts_renamed_keywords
from pdcore.exceptions import InvalidInputError

__all__ = ["pace"]


@accepts_renamed_keywords
def pace(
    arrivals: npt.ArrayLike,
    *,
    handoff_at: float,
    min_tpot_s: float,
    max_tpot_s: float,
) -> npt.NDArray[np.float64]:
    """Display times (seconds) for cloud tokens arriving at ``arrivals`` (seconds, non-decreasing).

    Accepts any one-dimensional array-like; float64 arrays pass through without a copy. See
    :func:`pdcore._core.pace` for the pacing rule, which is ours (the paper publishes none).
    ``min_tpot=`` and ``max_tpot=`` are the deprecated names of ``min_tpot_s=`` and ``max_tpot_s=``.

    Raises:
        InvalidInputError: for NaN, infinite, negative or decreasing arrivals, arrivals that are not a
            one-dimensional array of real numbers (complex, boolean, object, masked or 0-d input), a bad
            hand-off time or ``max_tpot_s <= min_tpot_s``; the message names the argument, the index and the
            fix.

    Example:
        >>> import pdcore
        >>> pdcore.pace([0.0, 0.0, 0.0], handoff_at=0.3, min_tpot_s=0.0, max_tpot_s=0.2).tolist()
        [0.0, 0.1, 0.2]
    """
    if isinstance(arrivals, np.ma.MaskedArray):
        raise InvalidInputError(
            "arrivals is a masked array, whose mask pace() would ignore; fix: pass arrivals.compressed() "
            "or fill the masked entries"
        )
    raw = np.asarray(arrivals)
    if raw.ndim != 1:
        raise InvalidInputError(
            f"arrivals has shape {raw.shape}; pass a one-dimensional sequence of arrival times in seconds"
        )
    if raw.dtype.kind not in "iuf":
        raise InvalidInputError(
            f"arrivals has dtype {raw.dtype}; fix: pass real arrival times in seconds (int or float)"
        )
    a = np.ascontiguousarray(raw, dtype=np.float64)
    return _native_pace(a, handoff_at=handoff_at, min_tpot_s=min_tpot_s, max_tpot_s=max_tpot_s)

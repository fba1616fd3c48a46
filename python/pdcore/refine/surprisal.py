"""The surprisal of a text's tokens (`TokenSurprisal`) and how it is computed from a prefill's logits.

The surprisal of a prompt token is ``-log p(token | the tokens before it)`` in nats (NaN for the first token
of a sequence, which nothing predicts); each token carries its character span in the scored text. The
sources that produce it are in `pdcore.refine.scoring` (llama.cpp in process) and
`pdcore.refine.endpoint_scoring` (an OpenAI-compatible endpoint); both score ``prefix + text + suffix`` and
keep only the tokens that start inside ``text``, a token that straddles its edge clipped to it
(`clip_to_text`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pdcore.exceptions import InvalidInputError

__all__ = ["TokenSurprisal", "clip_to_text", "surprisal_from_logits"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class TokenSurprisal:
    """The tokens of a text with their character spans and surprisal.

    Attributes:
        text: The scored text (without the prefix and suffix it was scored in).
        starts: Character offset in ``text`` where each token starts (non-decreasing).
        ends: Character offset where each token ends (``starts[i] <= ends[i] <= len(text)``).
        surprisal: ``-log p`` of each token given everything before it, nats; NaN where unknown (the
            very first token of a sequence has no prediction).
        source: Where the numbers come from (model file or endpoint).

    Raises:
        InvalidInputError: The arrays differ in length or the spans do not fit ``text``.
    """

    text: str
    starts: IntArray
    ends: IntArray
    surprisal: FloatArray
    source: str = ""

    def __post_init__(self) -> None:
        starts = np.asarray(self.starts, dtype=np.int64)
        ends = np.asarray(self.ends, dtype=np.int64)
        surprisal = np.asarray(self.surprisal, dtype=np.float64)
        if not (starts.ndim == ends.ndim == surprisal.ndim == 1) or not (
            len(starts) == len(ends) == len(surprisal)
        ):
            raise InvalidInputError(
                f"token scores: starts, ends and surprisal have lengths {starts.size}, {ends.size} and "
                f"{surprisal.size}; fix: pass one start, end and surprisal per token"
            )
        if len(starts) and (
            starts.min() < 0
            or ends.max() > len(self.text)
            or (ends < starts).any()
            or (np.diff(starts) < 0).any()
        ):
            raise InvalidInputError(
                f"token scores: token spans must be ordered and lie within the text of {len(self.text)} "
                "characters; fix: pass character offsets into the scored text"
            )
        if (surprisal[~np.isnan(surprisal)] < -1e-6).any():
            raise InvalidInputError(
                "token scores: a surprisal is negative; fix: pass -log p (nats >= 0), not log p"
            )
        for name, value in (("starts", starts), ("ends", ends), ("surprisal", surprisal)):
            value.setflags(write=False)
            object.__setattr__(self, name, value)

    def __len__(self) -> int:
        return len(self.starts)

    @classmethod
    def from_pieces(
        cls, pieces: Sequence[str], surprisal: Sequence[float | None], source: str = ""
    ) -> TokenSurprisal:
        """Token scores of the text made by joining ``pieces`` (one string per token).

        Example:
            >>> s = TokenSurprisal.from_pieces(["Hi", " there", "."], [None, 2.0, 0.5])
            >>> s.text, s.starts.tolist(), s.ends.tolist()
            ('Hi there.', [0, 2, 8], [2, 8, 9])
        """
        if len(pieces) != len(surprisal):
            raise InvalidInputError(
                f"token scores: {len(pieces)} pieces but {len(surprisal)} surprisals; fix: pass one each"
            )
        lengths = np.fromiter((len(p) for p in pieces), dtype=np.int64, count=len(pieces))
        ends = np.cumsum(lengths)
        starts = ends - lengths
        values = np.array([math.nan if v is None else float(v) for v in surprisal], dtype=np.float64)
        return cls("".join(pieces), starts, ends, values, source)


def surprisal_from_logits(logits: npt.ArrayLike, tokens: Sequence[int]) -> FloatArray:
    """Surprisal of ``tokens[1:]`` from the logits after each of ``tokens[:-1]``.

    Args:
        logits: ``(n, vocab)`` logits, row ``i`` computed after token ``i``; ``n >= len(tokens) - 1``.
        tokens: The token ids.

    Returns:
        ``len(tokens)`` values in nats; the first is NaN (nothing predicts the first token).

    Example:
        >>> import numpy as np
        >>> s = surprisal_from_logits(np.log([[0.5, 0.25, 0.25], [0.1, 0.1, 0.8]]), [0, 1, 2])
        >>> [round(x, 4) for x in s.tolist()]
        [nan, 1.3863, 0.2231]
    """
    ids = np.asarray(tokens, dtype=np.int64)
    out = np.full(len(ids), math.nan)
    if len(ids) < 2:
        return out
    rows = np.asarray(logits)[: len(ids) - 1].astype(np.float64, copy=False)
    if rows.ndim != 2 or rows.shape[0] < len(ids) - 1:
        raise InvalidInputError(
            f"logits of shape {np.shape(logits)} for {len(ids)} tokens; fix: pass one row per token but "
            "the last"
        )
    peak = rows.max(axis=1)
    lse = peak + np.log(np.exp(rows - peak[:, None]).sum(axis=1))
    out[1:] = lse - rows[np.arange(len(ids) - 1), ids[1:]]
    return out


def clip_to_text(
    starts: IntArray, ends: IntArray, values: FloatArray, offset: int, length: int
) -> tuple[IntArray, IntArray, FloatArray]:
    """The tokens that start inside ``[offset, offset + length)``, shifted and clipped to it."""
    local_starts = starts - offset
    local_ends = ends - offset
    inside = (local_starts >= 0) & (local_starts < length)
    # a token that begins in the prefix and runs into the text covers the text's first characters
    straddle = (local_starts < 0) & (local_ends > 0)
    if straddle.any() and not (inside & (local_starts == 0)).any():
        inside |= straddle
        local_starts = np.maximum(local_starts, 0)
    return (
        local_starts[inside],
        np.minimum(local_ends[inside], length),
        values[inside],
    )

"""pdcore's own figures of one answer: the ``pdcore`` extension field and what `/metrics` counts.

One answer's figures are read once from its timeline (`pdcore.runtime.timeline.Timeline`) when it ends, and
travel in one extension field, ``"pdcore"``, on the response object (non-streaming) or on the last chunk of
the stream (``docs/serve.md``). The standard fields keep OpenAI's shape and meaning; a client that does not
know the field ignores it (the ``openai`` client keeps it in ``model_extra``).

Fields (seconds from the answer's start, as in the timeline):

- ``plan``, ``plan_reason``: what the answer ran (``"pd-device"``, ``"device-only"``, ``"cloud-only"``) and
  why, in words (`pdcore.runtime.session`);
- ``k``: the cloud decode tokens asked for after the first, or null;
- ``ttft_s``: when the first token was shown; ``max_gap_s``: the largest display gap;
- ``handoff_position``, ``handoff_gap_s``: the output position the device took over at and the display gap
  before it, or null when there was no hand-off;
- ``tokens_by_source``: output positions shown from the cloud and from the device;
- ``prompt_tokens``: the prompt in device tokens, when the device counted it;
- ``cached_tokens``: prompt tokens the device found in its cache and did not prefill again;
- ``cloud_resumes``, ``device_failures``: how often the cloud's stream was resumed and the device failed;
- ``notices``: ``{"kind", "message"}`` for each fallback or warning (`pdcore.runtime.timeline.Notice`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from pdcore.runtime.timeline import Timeline

__all__ = ["CLOUD_FALLBACKS", "AnswerFigures"]

CLOUD_FALLBACKS = ("cloud-unavailable", "cloud-cut", "cloud-silent", "cloud-context")
"""The notice kinds that mean the cloud's stream failed and the runtime fell back (`docs/timeline.md`)."""


@dataclass(frozen=True, slots=True)
class AnswerFigures:
    """The figures of one answer (module docstring).

    Attributes:
        plan: What the answer ran.
        plan_reason: Why.
        k: Cloud decode tokens asked for after the first, or None.
        ttft_s: When the first token was shown, or None (no token).
        max_gap_s: The largest display gap, or None (fewer than two tokens).
        handoff_position: The output position the device took over at, or None.
        handoff_gap_s: The display gap before that position, or None.
        tokens_by_source: Output positions shown from the cloud and the device.
        prompt_tokens: The prompt in device tokens, if counted.
        cached_tokens: Prompt tokens reused from the device's cache.
        cloud_resumes: Requests that resumed a silent or cut cloud stream.
        device_failures: Failures of the device's engine.
        notices: ``(kind, message)`` of each notice.
    """

    plan: str
    plan_reason: str | None
    k: int | None
    ttft_s: float | None
    max_gap_s: float | None
    handoff_position: int | None
    handoff_gap_s: float | None
    tokens_by_source: dict[str, int]
    prompt_tokens: int | None
    cached_tokens: int
    cloud_resumes: int
    device_failures: int
    notices: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, timeline: Timeline, *, cached_tokens: int = 0, shown: int | None = None) -> AnswerFigures:
        """The figures of ``timeline``, counting only its first ``shown`` tokens when the answer was cut
        short (a request's ``max_tokens`` below the session's)."""
        tokens = timeline.tokens if shown is None else timeline.tokens[:shown]
        by_source = {"cloud": 0, "device": 0}
        for record in tokens:
            by_source[record.source] = by_source.get(record.source, 0) + 1
        gaps = [after.shown_s - before.shown_s for before, after in itertools.pairwise(tokens)]
        handoff = timeline.handoff_position
        handoff_gap = None
        if handoff is not None:
            handoff_gap = next(
                (gap for gap, after in zip(gaps, tokens[1:], strict=False) if after.position == handoff), None
            )
        return cls(
            plan=timeline.plan or timeline.mode,
            plan_reason=timeline.plan_reason,
            k=timeline.k,
            ttft_s=tokens[0].shown_s if tokens else None,
            max_gap_s=max(gaps) if gaps else None,
            handoff_position=handoff if handoff is not None and handoff < len(tokens) else None,
            handoff_gap_s=handoff_gap,
            tokens_by_source=by_source,
            prompt_tokens=timeline.prompt_tokens,
            cached_tokens=cached_tokens,
            cloud_resumes=len(timeline.cloud_resumes),
            device_failures=len(timeline.device_failures),
            notices=tuple((notice.kind, notice.message) for notice in timeline.notices),
        )

    @property
    def cloud_fallbacks(self) -> int:
        """Notices that say the cloud's stream failed (`CLOUD_FALLBACKS`)."""
        return sum(1 for kind, _ in self.notices if kind in CLOUD_FALLBACKS)

    def extension(self) -> dict[str, Any]:
        """The ``"pdcore"`` extension field (module docstring), JSON-ready, times to the microsecond."""
        return {
            "plan": self.plan,
            "plan_reason": self.plan_reason,
            "k": self.k,
            "ttft_s": _micro(self.ttft_s),
            "max_gap_s": _micro(self.max_gap_s),
            "handoff_position": self.handoff_position,
            "handoff_gap_s": _micro(self.handoff_gap_s),
            "tokens_by_source": dict(self.tokens_by_source),
            "prompt_tokens": self.prompt_tokens,
            "cached_tokens": self.cached_tokens,
            "cloud_resumes": self.cloud_resumes,
            "device_failures": self.device_failures,
            "notices": [{"kind": kind, "message": message} for kind, message in self.notices],
        }


def _micro(value: float | None) -> float | None:
    return None if value is None else round(value, 6)

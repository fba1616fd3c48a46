"""The per-token record of one live request, its summary and its JSON form.

All times in a `Timeline` are seconds from the request's start (the moment `Session.stream` began).
Each displayed token has one `TokenRecord`: when it became available (a cloud token's arrival at the
device, a device token's decode), when the runtime meant to show it and when it did. Every cloud event
that carried text has a `CloudRecord`, kept or not (tokens arriving after the hand-off are discarded).

A display gap larger than ``max_tpot_s`` is attributed (`GapRecord.cause`) to whoever made it:

- ``"cloud-late"``: the cloud token arrived more than ``max_tpot_s`` after the previous display (the network
  or the cloud stalled; the runtime showed it on arrival);
- ``"device-late"``: the device token was decoded more than ``max_tpot_s`` after the previous display (a
  hand-off the device was not ready for, or a slow decode step);
- ``"runtime"``: the token was there in time and the runtime showed it late.

A gap is a **stall** (`GapRecord.stall`) when one side's own stream stalled: ``"cloud-late"``, or
``"device-late"`` after the hand-off position (the device's own decode was slow). No pacing can hide a
stall; everything else (paced gaps, the hand-off gap, the runtime's lateness) is the runtime's doing, and
``max_gap_without_stalls_s`` in the summary is the largest of those (what `pdcore validate` compares).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from pdcore.deprecation import RenamedAttribute, accepts_renamed_keywords
from pdcore.outputs import write_text
from pdcore.slo import meets

__all__ = ["CloudRecord", "GapRecord", "Notice", "Timeline", "TokenRecord"]

SCHEMA_VERSION = 4
"""The version of the JSON form (``docs/timeline.md``); 2 added ``plan``, ``cloud_stalls`` and
``cloud_resumes``, 3 added ``device_failures``, 4 added ``device_cached_tokens`` and ``device_wait_s``."""


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """One displayed token (or piece of text).

    Attributes:
        position: Its output position, from 0.
        text: The text shown.
        source: ``"cloud"`` or ``"device"``.
        available_s: When it could first be shown: a cloud token's arrival, a device token's decode.
        due_s: When the runtime meant to show it (the speed controller's due time for cloud tokens).
        shown_s: When it was shown.
    """

    position: int
    text: str
    source: str
    available_s: float
    due_s: float
    shown_s: float


@dataclass(frozen=True, slots=True)
class CloudRecord:
    """One cloud event that carried text.

    Attributes:
        index: Its index among the stream's text events, from 0.
        text: The text.
        at_s: Its arrival.
        kept: False when it arrived after the hand-off (or after the stream was closed) and was dropped.
    """

    index: int
    text: str
    at_s: float
    kept: bool


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the user should know about a request, such as a fallback.

    Attributes:
        at_s: When it happened.
        kind: ``"cloud-unavailable"``, ``"cloud-cut"``, ``"cloud-silent"``, ``"cloud-context"``,
            ``"plan-device"``, ``"plan-cloud"``, ``"device-failed"``, ``"device-late"``, ``"device-error"``,
            ``"tokenization"`` or ``"context-full"`` (``docs/timeline.md``).
        message: What happened and what the runtime did about it.
    """

    at_s: float
    kind: str
    message: str


@dataclass(frozen=True, slots=True)
class GapRecord:
    """A display gap: the time between a token and the one before it.

    Attributes:
        position: The position of the later token.
        gap_s: The gap.
        source: The later token's source.
        cause: ``"ok"`` (within ``max_tpot_s``), ``"cloud-late"``, ``"device-late"`` or ``"runtime"``.
        stall: Whether one side's own stream stalled (module docstring).
    """

    position: int
    gap_s: float
    source: str
    cause: str
    stall: bool = False


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return None if not math.isfinite(value) else round(value, 6)
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rounded(item) for item in value]
    return value


@accepts_renamed_keywords
@dataclass
class Timeline:
    """The record of one request (see the module docstring).

    Attributes:
        mode: The session's mode: ``"pd-device"``, ``"device-only"`` or ``"cloud-only"``.
        prompt: The prompt text.
        started_at: The request's start on the session clock, seconds (the origin of every ``_s`` time).
        max_tpot_s: The largest display gap aimed for (``max_tpot``: its deprecated name, and its key in
            the JSON form).
        min_tpot_s: The smallest display gap (``min_tpot``: likewise).
        k: Cloud decode tokens asked for after the first (P/D-Device), else ``None``.
        cloud_quota: ``max_tokens`` sent to the cloud, or ``None`` when the cloud was not asked.
        prompt_tokens: The prompt's length in device tokens, when a device ran.
        tokens: The displayed tokens, in order.
        cloud_events: Every cloud event with text.
        handoff_estimates: ``(at_s, estimate_s)`` each time the hand-off estimate was set or revised.
        cloud_extensions: ``(at_s, tokens)`` for each continuation request sent because the device fell
            behind the buffer.
        notices: Fallbacks and warnings.
        cloud_sent_s: When the cloud request was started.
        cloud_first_s: Arrival of the cloud's first text (the cloud's own streaming TTFT).
        cloud_end: How the cloud stream ended: ``"stop"``, ``"length"``, ``"cut"``, ``"unavailable"``,
            ``"cancelled"`` (closed at the hand-off) or ``None`` (not used).
        cloud_end_s: When it ended.
        prompt_prefilled_s: When the device finished prefilling the prompt.
        handoff_s: When the device took over.
        handoff_position: The output position the device took over at.
        finished_s: When the last token was shown.
        prior_speed_ratio: The device's speed relative to its profile (time taken over time predicted)
            that the session assumed at the start, learned from earlier requests.
        device_speed_ratio: The same ratio measured in this request.
        plan: What the request ran: the mode, or, for a P/D-Device request with ``k="auto"``, the side
            it was reduced to (``"device-only"``: the device answers first; ``"cloud-only"``: the device
            cannot catch up within the answer, or had failed).
        plan_reason: Why, in words.
        cloud_stalls: ``(at_s, silent_s, kind)`` for each stall of the cloud's stream: the last event's
            time, how long it was silent, and ``"silent"`` (past the stall deadline) or ``"cut"`` (the
            connection broke).
        cloud_resumes: ``(at_s, kind, tokens)`` for each request that resumed a silent or cut stream.
        device_failures: ``(at_s, phase, cause, position)`` for each failure of the device's engine: when
            it was found, what the device was doing (``"starting"``, ``"idle"``, ``"prefilling"``,
            ``"appending"``, ``"decoding"``), what happened, and the output position the cloud continued
            the answer from (`pdcore.runtime.failover`).
        device_cached_tokens: Prompt tokens the device reused from its conversation cache instead of
            prefilling them (`pdcore.runtime.conversation_cache`); 0 when none (or no device ran).
        device_wait_s: How long the answer waited for the device while it served another answer
            (`pdcore.runtime.device_gate`), or ``None`` when it did not wait.
    """

    mode: str
    prompt: str
    started_at: float
    max_tpot_s: float
    min_tpot_s: float
    k: int | None = None
    cloud_quota: int | None = None
    prompt_tokens: int | None = None
    tokens: list[TokenRecord] = field(default_factory=list)
    cloud_events: list[CloudRecord] = field(default_factory=list)
    handoff_estimates: list[tuple[float, float]] = field(default_factory=list)
    cloud_extensions: list[tuple[float, int]] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    cloud_sent_s: float | None = None
    cloud_first_s: float | None = None
    cloud_end: str | None = None
    cloud_end_s: float | None = None
    prompt_prefilled_s: float | None = None
    handoff_s: float | None = None
    handoff_position: int | None = None
    finished_s: float | None = None
    prior_speed_ratio: float | None = None
    device_speed_ratio: float | None = None
    plan: str | None = None
    plan_reason: str | None = None
    cloud_stalls: list[tuple[float, float, str]] = field(default_factory=list)
    cloud_resumes: list[tuple[float, str, int]] = field(default_factory=list)
    device_failures: list[tuple[float, str, str, int]] = field(default_factory=list)
    device_cached_tokens: int = 0
    device_wait_s: float | None = None
    max_tpot = RenamedAttribute("max_tpot_s")
    min_tpot = RenamedAttribute("min_tpot_s")

    @property
    def text(self) -> str:
        """The displayed text."""
        return "".join(record.text for record in self.tokens)

    @property
    def cloud_text(self) -> str:
        """The text of the kept cloud events, in arrival order."""
        return "".join(record.text for record in self.cloud_events if record.kept)

    @property
    def ttft_s(self) -> float | None:
        """When the first token was shown."""
        return self.tokens[0].shown_s if self.tokens else None

    def gaps(self) -> list[GapRecord]:
        """Every display gap after the first token, with its cause."""
        out: list[GapRecord] = []
        for before, after in zip(self.tokens, self.tokens[1:], strict=False):
            gap = after.shown_s - before.shown_s
            cause = "ok"
            if not meets(gap, self.max_tpot_s):
                if after.available_s > before.shown_s + self.max_tpot_s:
                    cause = "cloud-late" if after.source == "cloud" else "device-late"
                else:
                    cause = "runtime"
            handed_over = self.handoff_position is not None and after.position > self.handoff_position
            stall = cause == "cloud-late" or (cause == "device-late" and handed_over)
            out.append(GapRecord(after.position, gap, after.source, cause, stall))
        return out

    def summary(self, largest: int = 5) -> dict[str, Any]:
        """The figures of the run: TTFT, largest gaps, hand-off, tokens per source (JSON-ready).

        Args:
            largest: How many of the largest gaps to list.
        """
        gaps = self.gaps()
        values = [gap.gap_s for gap in gaps]
        paced = [gap.gap_s for gap in gaps if not gap.stall]
        by_source = {"cloud": 0, "device": 0}
        for record in self.tokens:
            by_source[record.source] = by_source.get(record.source, 0) + 1
        lags = [record.shown_s - record.due_s for record in self.tokens]
        ttft = self.ttft_s
        overhead = None
        if ttft is not None and self.cloud_first_s is not None and self.tokens[0].source == "cloud":
            overhead = ttft - self.cloud_first_s
        estimates = [estimate for _, estimate in self.handoff_estimates]
        return {
            "mode": self.mode,
            "plan": self.plan or self.mode,
            "plan_reason": self.plan_reason,
            "k": self.k,
            "prompt_tokens": self.prompt_tokens,
            "device_cached_tokens": self.device_cached_tokens,
            "device_wait_s": self.device_wait_s,
            "ttft_s": ttft,
            "cloud_sent_s": self.cloud_sent_s,
            "cloud_ttft_s": self.cloud_first_s,
            "ttft_over_cloud_s": overhead,
            "e2e_s": self.finished_s,
            "tokens": len(self.tokens),
            "tokens_by_source": by_source,
            "cloud_events": len(self.cloud_events),
            "cloud_discarded": sum(1 for record in self.cloud_events if not record.kept),
            "cloud_end": self.cloud_end,
            "prompt_prefilled_s": self.prompt_prefilled_s,
            "handoff_s": self.handoff_s,
            "handoff_position": self.handoff_position,
            "handoff_estimate_first_s": estimates[0] if estimates else None,
            "handoff_estimate_last_s": estimates[-1] if estimates else None,
            "handoff_revisions": max(0, len(estimates) - 1),
            "cloud_extensions": len(self.cloud_extensions),
            "cloud_extension_tokens": sum(tokens for _, tokens in self.cloud_extensions),
            "cloud_stalls": len(self.cloud_stalls),
            "cloud_resumes": len(self.cloud_resumes),
            "device_failures": len(self.device_failures),
            "prior_speed_ratio": self.prior_speed_ratio,
            "device_speed_ratio": self.device_speed_ratio,
            "max_gap_s": max(values) if values else None,
            "max_gap_without_stalls_s": max(paced) if paced else None,
            "mean_gap_s": sum(values) / len(values) if values else None,
            "gaps_over_max_tpot": {
                cause: sum(1 for gap in gaps if gap.cause == cause)
                for cause in ("cloud-late", "device-late", "runtime")
            },
            "largest_gaps": [
                asdict(gap) for gap in sorted(gaps, key=lambda gap: gap.gap_s, reverse=True)[:largest]
            ],
            "max_lag_s": max(lags) if lags else None,
            "notices": [f"{notice.kind}: {notice.message}" for notice in self.notices],
        }

    def to_dict(self) -> dict[str, Any]:
        """The whole record plus its summary, JSON-ready (floats rounded to the microsecond)."""
        body = {
            "schema_version": SCHEMA_VERSION,
            "mode": self.mode,
            "prompt": self.prompt,
            "text": self.text,
            "max_tpot": self.max_tpot_s,
            "min_tpot": self.min_tpot_s,
            "k": self.k,
            "cloud_quota": self.cloud_quota,
            "prompt_tokens": self.prompt_tokens,
            "device_cached_tokens": self.device_cached_tokens,
            "device_wait_s": self.device_wait_s,
            "summary": self.summary(),
            "tokens": [asdict(record) for record in self.tokens],
            "cloud_events": [asdict(record) for record in self.cloud_events],
            "handoff_estimates": [{"at_s": at, "estimate_s": value} for at, value in self.handoff_estimates],
            "cloud_extensions": [{"at_s": at, "tokens": tokens} for at, tokens in self.cloud_extensions],
            "plan": self.plan or self.mode,
            "plan_reason": self.plan_reason,
            "cloud_stalls": [
                {"at_s": at, "silent_s": silent, "kind": kind} for at, silent, kind in self.cloud_stalls
            ],
            "cloud_resumes": [
                {"at_s": at, "kind": kind, "tokens": tokens} for at, kind, tokens in self.cloud_resumes
            ],
            "device_failures": [
                {"at_s": at, "phase": phase, "cause": cause, "position": position}
                for at, phase, cause, position in self.device_failures
            ],
            "notices": [asdict(notice) for notice in self.notices],
        }
        return dict(_rounded(body))

    def to_json(self, *, indent: int | None = 2) -> str:
        """`to_dict` as JSON text."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def write_json(self, path: str | os.PathLike[str]) -> None:
        """Writes `to_json` to ``path``, whole or not at all (`pdcore.outputs.write_text`)."""
        write_text(path, self.to_json() + "\n")

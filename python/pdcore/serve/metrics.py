"""``GET /metrics``: the server's figures in the Prometheus text format, through ``prometheus_client``.

Each app has its own `CollectorRegistry` (two servers in one process, as in the tests, never share a count).
Names follow Prometheus' conventions (base units: seconds; counters end in ``_total``); every figure comes
from one answer's `pdcore.serve.figures.AnswerFigures`, recorded when the answer ends (an answer the client
abandoned is counted too: its work was done up to then).

- ``pdcore_ttft_seconds`` (histogram): time to the first shown token, per answer;
- ``pdcore_max_gap_seconds`` (histogram): the largest display gap of each answer;
- ``pdcore_answers_total{plan}`` (counter): answers by plan (pd-device, device-only, cloud-only);
- ``pdcore_handoffs_total`` (counter): answers the device took over;
- ``pdcore_handoff_gap_seconds`` (histogram): the display gap at each hand-off;
- ``pdcore_cloud_tokens`` (histogram): output positions shown from the cloud, per answer;
- ``pdcore_device_tokens`` (histogram): output positions shown from the device, per answer;
- ``pdcore_cloud_fallbacks_total`` (counter): the cloud's stream failed and the runtime fell back;
- ``pdcore_cloud_resumes_total`` (counter): requests that resumed a silent or cut cloud stream;
- ``pdcore_device_failures_total`` (counter): failures of the device's engine;
- ``pdcore_device_cached_tokens_total`` (counter): prompt tokens the device reused from its cache;
- ``pdcore_answers_in_progress`` (gauge): answers being streamed now;
- ``pdcore_request_errors_total{code}`` (counter): requests answered with an error, by OpenAI ``code``.

The bucket bounds are ours: display gaps around the default ``max_tpot`` (50 ms) and first tokens from
10 ms to 10 s; token counts in powers of two up to 4096.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from pdcore.serve.figures import AnswerFigures

__all__ = ["CONTENT_TYPE", "ServeMetrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
"""The ``Content-Type`` of ``/metrics`` (the Prometheus text format, version 0.0.4)."""

TTFT_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0)
GAP_BUCKETS_S = (0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5)
TOKEN_BUCKETS = (0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)


class ServeMetrics:
    """The server's Prometheus metrics in a registry of their own (module docstring)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.ttft = Histogram(
            "pdcore_ttft_seconds", "Time to the first shown token.", buckets=TTFT_BUCKETS_S, registry=registry
        )
        self.max_gap = Histogram(
            "pdcore_max_gap_seconds", "The largest display gap of an answer.", buckets=GAP_BUCKETS_S,
            registry=registry,
        )  # fmt: skip
        self.answers = Counter("pdcore_answers", "Answers by plan.", ["plan"], registry=registry)
        self.handoffs = Counter("pdcore_handoffs", "Answers the device took over.", registry=registry)
        self.handoff_gap = Histogram(
            "pdcore_handoff_gap_seconds", "The display gap at a hand-off.", buckets=GAP_BUCKETS_S,
            registry=registry,
        )  # fmt: skip
        self.cloud_tokens = Histogram(
            "pdcore_cloud_tokens", "Output positions shown from the cloud per answer.", buckets=TOKEN_BUCKETS,
            registry=registry,
        )  # fmt: skip
        self.device_tokens = Histogram(
            "pdcore_device_tokens", "Output positions shown from the device per answer.",
            buckets=TOKEN_BUCKETS, registry=registry,
        )  # fmt: skip
        self.cloud_fallbacks = Counter(
            "pdcore_cloud_fallbacks", "Cloud streams that failed; the runtime fell back.", registry=registry
        )
        self.cloud_resumes = Counter(
            "pdcore_cloud_resumes", "Requests that resumed a silent or cut cloud stream.", registry=registry
        )
        self.device_failures = Counter(
            "pdcore_device_failures", "Failures of the device's engine.", registry=registry
        )
        self.cached_tokens = Counter(
            "pdcore_device_cached_tokens",
            "Prompt tokens the device reused from its cache.",
            registry=registry,
        )
        self.in_progress = Gauge("pdcore_answers_in_progress", "Answers being streamed.", registry=registry)
        self.errors = Counter(
            "pdcore_request_errors", "Requests answered with an error, by code.", ["code"], registry=registry
        )

    def observe(self, figures: AnswerFigures) -> None:
        """Records one ended answer."""
        self.answers.labels(plan=figures.plan).inc()
        if figures.ttft_s is not None:
            self.ttft.observe(figures.ttft_s)
        if figures.max_gap_s is not None:
            self.max_gap.observe(figures.max_gap_s)
        if figures.handoff_position is not None:
            self.handoffs.inc()
            if figures.handoff_gap_s is not None:
                self.handoff_gap.observe(figures.handoff_gap_s)
        self.cloud_tokens.observe(figures.tokens_by_source.get("cloud", 0))
        self.device_tokens.observe(figures.tokens_by_source.get("device", 0))
        self.cloud_fallbacks.inc(figures.cloud_fallbacks)
        self.cloud_resumes.inc(figures.cloud_resumes)
        self.device_failures.inc(figures.device_failures)
        self.cached_tokens.inc(figures.cached_tokens)

    def error(self, code: str | None) -> None:
        """Counts one request answered with an error."""
        self.errors.labels(code=code or "none").inc()

    def text(self) -> bytes:
        """The exposition in the Prometheus text format."""
        return generate_latest(self.registry)

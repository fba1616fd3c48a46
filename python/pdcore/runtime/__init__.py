"""The live runtime: P/D-Device with a real OpenAI-compatible cloud stream and a real local model.

Needs the ``device`` extra (``pip install 'pdcore[device]'``: httpx, httpx-sse, aiohttp, llama-cpp-python).

- `Session` streams one answer from the cloud and the device at once and hands over without a visible
  stall; ``async for piece in session.stream(prompt): ...``.
- `CloudClient` streams completions from an OpenAI-compatible endpoint.
- `Device` runs a local model (`LlamaEngine`: a GGUF file through llama-cpp-python) in a worker process
  (``pdcore.runtime.worker``), so that a crash, a kill or a hang of the model costs no answer: the cloud
  continues it from the text so far (``pdcore.runtime.failover``), and the next request gets a fresh worker.
- `RealtimeClock` is the wall-clock time base (SimPy's ``RealtimeEnvironment`` semantics).
- `HandoffEstimator` predicts when the device will be ready to take over.
- `Timeline` is the per-token record of a request, with its summary and JSON form.

A session's request is its parts side by side (``pdcore.runtime.request``): the cloud stream, the device's
progress and the display; it plans with the simulator's planner (``pdcore._core.plan_turn``).
``pdcore.runtime.profiler`` and ``pdcore.runtime.cloud_profiler`` measure a device and a cloud profile (both
fitted by ``pdcore.runtime.fit``), ``pdcore.runtime.validate`` compares live runs with the simulator and
``pdcore.runtime.testing`` has stand-ins (a scripted SSE cloud, a scripted device, a llama.cpp server
launcher) for tests. The cloud errors and `DeviceFailedError` live in ``pdcore.exceptions`` and are
re-exported here.
"""

from __future__ import annotations

from pdcore.runtime.clock import RealtimeClock
from pdcore.runtime.cloud import (
    CloudClient,
    CloudError,
    CloudEvent,
    CloudStreamCutError,
    CloudUnavailableError,
    completions_url,
)
from pdcore.runtime.device import Device, DeviceEngine, DeviceToken, LlamaEngine, chatml, smollm2_path
from pdcore.runtime.handoff import HandoffEstimator
from pdcore.runtime.session import (
    DEFAULT_MAX_TOKENS,
    DEFAULT_MAX_TPOT_S,
    MODES,
    OLD_MODES,
    Mode,
    Piece,
    Session,
)
from pdcore.runtime.timeline import CloudRecord, GapRecord, Notice, Timeline, TokenRecord
from pdcore.runtime.worker import DeviceFailedError

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_MAX_TPOT_S",
    "MODES",
    "OLD_MODES",
    "CloudClient",
    "CloudError",
    "CloudEvent",
    "CloudRecord",
    "CloudStreamCutError",
    "CloudUnavailableError",
    "Device",
    "DeviceEngine",
    "DeviceFailedError",
    "DeviceToken",
    "GapRecord",
    "HandoffEstimator",
    "LlamaEngine",
    "Mode",
    "Notice",
    "Piece",
    "RealtimeClock",
    "Session",
    "Timeline",
    "TokenRecord",
    "chatml",
    "completions_url",
    "smollm2_path",
]

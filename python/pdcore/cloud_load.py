"""The cloud's load when a request arrives, as the simulator reports it: what a policy and the optimizer
read to plan around the cloud's queue (`pdcore.policies`, `pdcore.optimize.Optimizer`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["CloudLoad"]


@dataclass(frozen=True, slots=True)
class CloudLoad:
    """The cloud's state when a request arrives (``Simulator.cloud_load()``).

    Attributes:
        waiting_requests: Requests queued for prefill, not yet admitted.
        waiting_prefill_tokens: Prompt tokens still to prefill across the queue and running prefills.
        running_decode: Sequences in the decode batches.
        decode_capacity: Sequences the decode side can hold at once (batch limits over replicas).
        kv_used_frac: Fraction of the KV cache in use, 0 to 1.
        prefill_backlog_s: Estimated seconds of prefill work queued ahead of a new request.
    """

    waiting_requests: float = 0.0
    waiting_prefill_tokens: float = 0.0
    running_decode: float = 0.0
    decode_capacity: float = 0.0
    kv_used_frac: float = 0.0
    prefill_backlog_s: float = 0.0

    @classmethod
    def from_mapping(cls, values: Mapping[str, float]) -> CloudLoad:
        """Builds the record from ``Simulator.cloud_load()``; keys it does not know are ignored."""
        return cls(
            waiting_requests=float(values.get("waiting_requests", 0.0)),
            waiting_prefill_tokens=float(values.get("waiting_prefill_tokens", 0.0)),
            running_decode=float(values.get("running_decode", 0.0)),
            decode_capacity=float(values.get("decode_capacity", 0.0)),
            kv_used_frac=float(values.get("kv_used_frac", 0.0)),
            prefill_backlog_s=float(values.get("prefill_backlog_s", 0.0)),
        )

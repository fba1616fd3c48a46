"""Request-level policies: given a request and the cloud's load, decide how it is served.

Write a policy by subclassing `Policy` and implementing `Policy.plan`; see ``docs/policies.md``.
"""

from __future__ import annotations

from pdcore.policies.base import CloudLoad, Policy, PolicyContext, RequestInfo
from pdcore.policies.builtin import (
    DEFAULT_MAX_TPOT_S,
    POLICIES,
    CloudOnly,
    DeviceOnly,
    KVTransfer,
    NaiveSplit,
    PDDevice,
    Race,
    make_policy,
    split_policy_specs,
)
from pdcore.policies.replay import Replay
from pdcore.policies.rivals import DiSCo, Router, SpecDecoding

__all__ = [
    "DEFAULT_MAX_TPOT_S",
    "POLICIES",
    "CloudLoad",
    "CloudOnly",
    "DeviceOnly",
    "DiSCo",
    "KVTransfer",
    "NaiveSplit",
    "PDDevice",
    "Policy",
    "PolicyContext",
    "Race",
    "Replay",
    "RequestInfo",
    "Router",
    "SpecDecoding",
    "make_policy",
    "split_policy_specs",
]

"""The built-in policies and the registry that names them.

=================  ===============  ==========================================================================
registry name      class            what each request does
=================  ===============  ==========================================================================
``cloud-only``     `CloudOnly`      the cloud prefills and decodes every token
``device-only``    `DeviceOnly`     the device prefills and decodes every token
``pd-device``      `PDDevice`       P/D-Device: the cloud sends the first token plus ``k``, shown through the
                                    speed controller while the device catches up, then the device decodes
``naive-split``    `NaiveSplit`     as P/D-Device, but cloud tokens are shown as they arrive (no controller)
``kv-transfer``    `KVTransfer`     the cloud prefills and ships the prompt's KV cache; the device decodes
``race``           `Race`           both start; whichever shows the first token serves the request
``disco``          `DiSCo`          DiSCo (arXiv 2502.11417): short prompts on the device; longer ones race
                                    both sides and the stream migrates from the cloud to the device
``router``         `Router`         RouteLLM-style: each request entirely on the device or the cloud, by a
                                    predictor of its answer length and its prompt against the SLO
``spec-decode``    `SpecDecoding`   speculative decoding across the network: the device drafts ``gamma``
                                    tokens, the cloud verifies them in one iteration, round after round
=================  ===============  ==========================================================================

The fixed-mode policies live in `pdcore.policies.fixed`, the split ones (``pd-device``, ``naive-split``)
in `pdcore.policies.split`, the registry and `make_policy` in `pdcore.policies.registry`; the rival
strategies (``disco``, ``router``, ``spec-decode``) in `pdcore.policies.rivals`, each citing its paper.
This module names them all.

Every policy carries ``max_tpot_s``, the display gap it aims for; hand-off stalls are measured above it.
Left unset, it is the run's TPOT SLO (`PolicyContext.max_tpot_s`), or `DEFAULT_MAX_TPOT_S` outside a run.

`make_policy` builds a policy from a registry name with optional settings, such as
``"pd-device:k=8:refine_ratio=0.5"`` or ``"pd-device:refine_ratio=auto,quality_budget=0.01"``, which
then labels the policy in reports; `split_policy_specs` splits a comma-separated list of such specs.
"""

from __future__ import annotations

from pdcore.policies.fixed import CloudOnly, DeviceOnly, KVTransfer, Race
from pdcore.policies.registry import POLICIES, make_policy, split_policy_specs
from pdcore.policies.split import K_SITE_SETTINGS, NaiveSplit, PDDevice
from pdcore.slo import DEFAULT_MAX_TPOT_S

__all__ = [
    "DEFAULT_MAX_TPOT_S",
    "K_SITE_SETTINGS",
    "POLICIES",
    "CloudOnly",
    "DeviceOnly",
    "KVTransfer",
    "NaiveSplit",
    "PDDevice",
    "Race",
    "make_policy",
    "split_policy_specs",
]

"""The JSON record of a run's environment (`scenario_record`): the ``config`` object of a report
(``docs/schema.md``), naming each profile by where it came from (a shipped name, or a user's path, never the
name a user's file may share with a shipped profile).
"""

from __future__ import annotations

from typing import Any

from pdcore.profiles.registry import profile_provenance
from pdcore.sim.scenario_fields import ScenarioFields

__all__ = ["scenario_record"]


def scenario_record(scenario: ScenarioFields) -> dict[str, Any]:
    """``scenario`` as a JSON-ready dict (module docstring)."""
    cloud, device = profile_provenance(scenario.cloud), profile_provenance(scenario.device)
    out: dict[str, Any] = {
        # a user's file is named by its path, never by the name it may share with a shipped profile
        "cloud_profile": cloud["name"] if cloud["shipped"] else cloud["path"] or cloud["name"],
        "device_profile": device["name"] if device["shipped"] else device["path"] or device["name"],
        "profiles": {"cloud": cloud, "device": device},
        "network": {
            "name": scenario.network.name,
            "rtt_s": scenario.network.rtt_s,
            "bandwidth_bps": scenario.network.bandwidth_bps,
            "jitter_s": scenario.network.jitter_s,
        },
        "deployment": scenario.deployment,
        "slo": {"ttft_s": scenario.slo.ttft_s, "max_tpot_s": scenario.slo.max_tpot_s},
        "qoe_tokens_per_s": scenario.qoe_tokens_per_s,
    }
    if scenario.deployment == "colocated":
        out["replicas"] = scenario.replicas
    else:
        out["prefill_replicas"] = scenario.prefill_replicas
        out["decode_replicas"] = scenario.decode_replicas
        out["kv_link_bytes_per_s"] = scenario.kv_link()
        out["k_sites"] = scenario.k_sites
    if scenario.cost_weight or scenario.energy_weight:
        out["weights"] = {"cost": scenario.cost_weight, "energy": scenario.energy_weight}
    if scenario.one_answer_per_device:
        out["one_answer_per_device"] = True
    if scenario.fleet is not None:
        out["fleet"] = scenario.fleet.describe()
    return out

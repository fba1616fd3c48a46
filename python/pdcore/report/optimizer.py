"""The report's optimizer section: ``k*`` over prompt length for every shipped device profile
(`Optimizer.table`), and the optimizer's choices against a simulator grid search (`grid_check`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pdcore.optimize import Optimizer
from pdcore.profiles import DeviceProfile, list_device_profiles
from pdcore.report.study import Settings
from pdcore.sim.grid import grid_check
from pdcore.sim.scenario import Scenario

__all__ = ["GRID_DEVICES", "GRID_PROMPTS", "optimizer_section"]


GRID_DEVICES = (
    "llama32-3b-w4a16-8elite-genie",
    "llama32-1b-w4a16-8elite-genie",
    "llama32-3b-w4a16-xelite-genie",
)
"""Device profiles of the analytic-against-grid check (the NPU profiles; the CPU ones need k in the
thousands, which makes the grid long)."""

GRID_PROMPTS = (128, 256, 512, 1024, 2048, 4096)
"""Prompt lengths of the grid check."""


def optimizer_section(
    settings: Settings, scenario: Scenario, devices: Mapping[str, DeviceProfile]
) -> dict[str, Any]:
    """``k*`` over prompt length per shipped device profile, and the analytic-against-grid check, in the
    ``scenario``'s cloud and network; ``devices`` holds every shipped device profile and the settings'."""
    cloud, network = scenario.cloud, scenario.network
    k_star: dict[str, list[dict[str, Any]]] = {}
    for name in list_device_profiles():
        optimizer = Optimizer(device=devices[name], cloud=cloud, slo=settings.slo)
        choices = optimizer.table(settings.prompt_lengths, one_way_s=network.rtt_s / 2.0)
        k_star[name] = [
            {
                "prompt_tokens": length,
                "mode": choice.mode,
                "k": choice.k,
                "converged": choice.converged,
                "first_token_s": choice.first_token_s,
                "device_ready_s": choice.device_ready_s,
            }
            for length, choice in zip(settings.prompt_lengths, choices, strict=True)
        ]
    checks: dict[str, dict[str, Any]] = {}
    grid_devices = dict.fromkeys((settings.device, *GRID_DEVICES[: 1 if settings.quick else None]))
    for name in grid_devices:
        device = devices[name]
        points = grid_check(
            GRID_PROMPTS[::2] if settings.quick else GRID_PROMPTS,
            device=device,
            cloud=cloud,
            network=network,
            slo=settings.slo,
            deployment=settings.deployment,
        )
        checks[name] = {
            "device_tpot_s": max(device.decode_tpot),
            "points": [
                {
                    "prompt_tokens": point.prompt_tokens,
                    "k_analytic": point.k_analytic,
                    "k_grid": point.k_grid,
                    "cost_analytic_gpu_s": point.cost_analytic_gpu_s,
                    "cost_grid_gpu_s": point.cost_grid_gpu_s,
                    "cost_ratio": point.cost_ratio if math.isfinite(point.cost_ratio) else None,
                    "analytic_max_gap_s": point.analytic_max_gap_s,
                }
                for point in points
            ],
        }
    return {
        "one_way_s": network.rtt_s / 2.0,
        "k_star": k_star,
        "grid_check": checks,
        "grid_check_output_tokens": 1024,
    }

"""The optimizer: analytic choice against the simulator's grid optimum, load adaptation, refinement."""

from __future__ import annotations

import math

import pytest

from pdcore.exceptions import InvalidInputError
from pdcore.optimize import Optimizer
from pdcore.policies import CloudLoad
from pdcore.profiles import load_cloud_profile, load_device_profile, network_preset
from pdcore.sim import grid_check
from pdcore.sim.metrics import SLO

CLOUD = load_cloud_profile("llama3-8b-a100")
WIFI = network_preset("wifi")
LENGTHS = [64, 256, 1024, 2048, 4096]


@pytest.mark.parametrize(
    "device_name", ["llama32-3b-w4a16-8elite-genie", "llama32-1b-q4-8elite-hexagon", "smollm2-135m-q4-cpu2"]
)
def test_analytic_choice_is_within_five_percent_of_the_grid_optimum(device_name: str) -> None:
    points = grid_check(
        LENGTHS, device=load_device_profile(device_name), cloud=CLOUD, network=WIFI, slo=SLO()
    )
    for p in points:
        assert p.analytic_max_gap_s <= SLO().max_tpot_s + 1e-9, p
        assert p.cost_ratio <= 1.05, p


def test_k_grows_with_the_prompt_and_shrinks_with_a_faster_device() -> None:
    slow = Optimizer(device=load_device_profile("llama32-1b-q4-8elite-hexagon"), cloud=CLOUD, slo=SLO())
    fast = Optimizer(device=load_device_profile("llama32-1b-w4a16-8elite-genie"), cloud=CLOUD, slo=SLO())
    ks = [c.k for c in slow.table(LENGTHS, one_way_s=0.01)]
    assert ks == sorted(ks)
    assert ks[-1] > ks[0]
    for a, b in zip(slow.table(LENGTHS, one_way_s=0.01), fast.table(LENGTHS, one_way_s=0.01), strict=True):
        assert b.k <= a.k


def test_a_queued_cloud_lowers_k_and_then_leaves_the_request_on_the_device() -> None:
    opt = Optimizer(device=load_device_profile("llama32-3b-w4a16-8elite-genie"), cloud=CLOUD, slo=SLO())
    idle = opt.choose(2048, one_way_s=0.01, load=CloudLoad())
    busy = opt.choose(2048, one_way_s=0.01, load=CloudLoad(waiting_prefill_tokens=8_000))
    swamped = opt.choose(2048, one_way_s=0.01, load=CloudLoad(waiting_prefill_tokens=60_000))
    assert idle.mode == "pd"
    assert busy.mode == "pd"
    assert busy.k < idle.k
    assert busy.first_token_s > idle.first_token_s
    assert swamped.mode == "device"
    fixed = Optimizer(
        device=load_device_profile("llama32-3b-w4a16-8elite-genie"),
        cloud=CLOUD,
        slo=SLO(),
        load_adaptive=False,
    )
    assert fixed.choose(2048, one_way_s=0.01, load=CloudLoad(waiting_prefill_tokens=60_000)) == idle


def test_refinement_is_used_only_within_the_quality_budget() -> None:
    device = load_device_profile("smollm2-135m-q4-cpu2")
    within = Optimizer(device=device, cloud=CLOUD, slo=SLO(), refine_ratios=(1.0, 0.5), quality={0.5: 0.01})
    beyond = Optimizer(device=device, cloud=CLOUD, slo=SLO(), refine_ratios=(1.0, 0.5), quality={0.5: 0.05})
    unmeasured = Optimizer(device=device, cloud=CLOUD, slo=SLO(), refine_ratios=(1.0, 0.5))
    assert within.allowed_ratios == (1.0, 0.5)
    assert beyond.allowed_ratios == (1.0,)
    assert unmeasured.allowed_ratios == (1.0,)
    full = beyond.choose(2048, one_way_s=0.01)
    refined = within.choose(2048, one_way_s=0.01)
    assert refined.refine_ratio == 0.5
    assert refined.k < full.k


def test_bad_settings_name_the_input() -> None:
    device = load_device_profile("smollm2-135m-q4-cpu2")
    with pytest.raises(InvalidInputError, match="quality_budget"):
        Optimizer(device=device, cloud=CLOUD, slo=SLO(), quality_budget=math.nan)
    with pytest.raises(InvalidInputError, match="refine ratio"):
        Optimizer(device=device, cloud=CLOUD, slo=SLO(), refine_ratios=(0.0,))
    with pytest.raises(InvalidInputError, match="one_way_s"):
        Optimizer(device=device, cloud=CLOUD, slo=SLO()).choose(100, one_way_s=-1.0)
    with pytest.raises(InvalidInputError, match="prompt_lengths"):
        grid_check([], device=device, cloud=CLOUD, network=WIFI, slo=SLO())


def test_grid_check_searches_every_allowed_ratio() -> None:
    device = load_device_profile("smollm2-135m-q4-cpu2")
    points = grid_check(
        [512, 2048],
        device=device,
        cloud=CLOUD,
        network=WIFI,
        slo=SLO(),
        refine_ratios=(1.0, 0.5, 0.25),
        quality={0.5: 0.01, 0.25: 0.05},
        quality_budget=0.02,
    )
    unrefined = grid_check([512, 2048], device=device, cloud=CLOUD, network=WIFI, slo=SLO())
    for p, full in zip(points, unrefined, strict=True):
        assert p.refine_analytic == p.refine_grid == 0.5, p  # 0.25 is over budget, though cheaper
        assert p.k_analytic < full.k_analytic
        assert p.analytic_max_gap_s <= SLO().max_tpot_s + 1e-9, p
        assert p.cost_ratio <= 1.05, p
        assert full.refine_analytic == full.refine_grid == 1.0


def test_choose_at_fixes_the_ratio_and_quality_is_checked() -> None:
    device = load_device_profile("smollm2-135m-q4-cpu2")
    opt = Optimizer(device=device, cloud=CLOUD, slo=SLO(), refine_ratios=(1.0, 0.5), quality={0.5: 0.01})
    assert opt.choose_at(2048, 0.25, one_way_s=0.01).refine_ratio == 0.25  # allowed or not
    assert opt.choose_at(2048, 0.5, one_way_s=0.01) == opt.choose(2048, one_way_s=0.01)
    with pytest.raises(InvalidInputError, match=r"drop at ratio 0\.5 is nan"):
        Optimizer(device=device, cloud=CLOUD, slo=SLO(), quality={0.5: math.nan})
    with pytest.raises(InvalidInputError, match=r"ratio 2 .*not in \(0, 1\]"):
        Optimizer(device=device, cloud=CLOUD, slo=SLO(), quality={2: 0.0})

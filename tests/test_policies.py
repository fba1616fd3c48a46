"""Policies (``pdcore.policies``) and the catch-up rule behind P/D-Device's automatic ``k``."""

from __future__ import annotations

import dataclasses
import doctest
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pdcore import InvalidInputError, InvalidStateError
from pdcore._core import Plan
from pdcore.optimize import (
    catchup_k,
    refined_prompt_tokens,
    solve_catchup,
)
from pdcore.policies import (
    POLICIES,
    CloudLoad,
    CloudOnly,
    DeviceOnly,
    KVTransfer,
    NaiveSplit,
    PDDevice,
    Policy,
    PolicyContext,
    Race,
    RequestInfo,
    make_policy,
    split_policy_specs,
)
from pdcore.profiles import DeviceProfile, load_cloud_profile, load_device_profile, network_preset

if TYPE_CHECKING:
    from conftest import CurveWriter

DOCS = Path(__file__).resolve().parents[1] / "docs"
CLOUD = load_cloud_profile("llama3-8b-a100")
PHONE = load_device_profile("llama32-3b-w4a16-8elite-genie")


def context(device: DeviceProfile = PHONE, max_tpot_s: float = 0.05) -> PolicyContext:
    return PolicyContext(
        device=device,
        cloud=CLOUD,
        network=network_preset("wifi"),
        deployment="colocated",
        ttft_slo_s=1.0,
        max_tpot_s=max_tpot_s,
    )


def toy_device(per_token_s: float = 0.001, tpot_s: float = 0.02) -> DeviceProfile:
    return DeviceProfile(
        name="toy",
        description="linear prefill",
        hardware="-",
        model="-",
        engine="-",
        prefill_tokens=(1000.0,),
        prefill_seconds=(1000.0 * per_token_s,),
        decode_context_tokens=(0.0,),
        decode_tpot=(tpot_s,),
        kv_bytes_per_token=1024,
        citation="-",
        notes="-",
    )


REQUEST = RequestInfo(index=0, arrival_s=0.0, prompt_tokens=1000, one_way_s=0.01)


def test_registry_names_the_builtins_and_the_rivals() -> None:
    assert set(POLICIES) == {
        "cloud-only",
        "device-only",
        "pd-device",
        "naive-split",
        "kv-transfer",
        "race",
        "disco",
        "router",
        "spec-decode",
    }
    for name, cls in POLICIES.items():
        assert cls.name == name
        assert make_policy(name).name == name


@pytest.mark.parametrize(
    ("policy", "mode"),
    [(CloudOnly(), "cloud"), (DeviceOnly(), "device"), (KVTransfer(), "kv-transfer"), (Race(), "race")],
)
def test_fixed_policies_plan_their_mode_with_the_slo_as_max_tpot(policy: Policy, mode: str) -> None:
    policy.prepare(context(max_tpot_s=0.04))
    plan = policy.plan(REQUEST, CloudLoad())
    assert plan.mode == mode
    assert plan.max_tpot_s == pytest.approx(0.04)


def test_explicit_max_tpot_wins_over_the_slo() -> None:
    policy = CloudOnly(max_tpot_s=0.03)
    policy.prepare(context(max_tpot_s=0.05))
    assert policy.plan(REQUEST, CloudLoad()).max_tpot_s == pytest.approx(0.03)


def test_fixed_k_is_passed_through() -> None:
    policy = PDDevice(k=7, refine_ratio=0.5, min_tpot_s=0.01, max_tpot_s=0.06)
    assert policy.plan(REQUEST, CloudLoad()) == Plan(
        "pd", k=7, refine_ratio=0.5, min_tpot_s=0.01, max_tpot_s=0.06
    )
    assert NaiveSplit(k=3).plan(REQUEST, CloudLoad()).mode == "naive"


def test_auto_k_needs_the_run_context() -> None:
    with pytest.raises(InvalidStateError, match="prepare"):
        PDDevice().plan(REQUEST, CloudLoad())


def test_auto_k_matches_the_catchup_rule() -> None:
    policy = PDDevice()
    policy.prepare(context())
    plan = policy.plan(REQUEST, CloudLoad())
    expected = catchup_k(
        1000,
        device=PHONE,
        first_token_s=2 * 0.01 + CLOUD.cost.lone_prefill_s(1000),
        max_tpot_s=0.05,
        cloud_tpot_s=CLOUD.cost.lone_decode_s(1000),
    )
    assert plan.mode == "pd"
    assert plan.k == expected > 0
    naive = NaiveSplit()
    naive.prepare(context())
    assert naive.plan(REQUEST, CloudLoad()) == Plan("naive", k=expected, max_tpot_s=0.05)


def test_auto_k_sends_requests_the_device_answers_first_to_the_device() -> None:
    fast = toy_device(per_token_s=1e-5)
    policy = PDDevice()
    policy.prepare(context(device=fast))
    assert policy.plan(REQUEST, CloudLoad()).mode == "device"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"k": -1}, "k = -1"),
        ({"k": "many"}, "'many'"),
        ({"refine_ratio": 0.0}, "refine_ratio"),
        ({"refine_ratio": 1.5}, "refine_ratio"),
        ({"min_tpot_s": -0.1}, "min_tpot_s"),
        ({"max_tpot_s": 0.0}, "max_tpot_s"),
        ({"min_tpot_s": 0.05, "max_tpot_s": 0.04}, "max_tpot_s"),
    ],
)
def test_bad_settings_name_the_setting(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        PDDevice(**kwargs)  # type: ignore[arg-type]


def test_make_policy_parses_settings_and_labels_the_variant() -> None:
    policy = make_policy("pd-device:k=8:refine_ratio=0.5")
    assert isinstance(policy, PDDevice)
    assert policy.k == 8
    assert policy.refine_ratio == 0.5
    assert policy.name == "pd-device:k=8:refine_ratio=0.5"
    assert make_policy("naive-split:k=auto").k == "auto"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("spec", "match"),
    [("nope", "unknown policy 'nope'"), ("pd-device:x=1", "bad setting 'x=1'"), ("race:k", "bad setting")],
)
def test_make_policy_rejects_bad_specs(spec: str, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        make_policy(spec)


def test_request_info_is_frozen_and_load_reads_the_simulator_dict() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        REQUEST.prompt_tokens = 5  # type: ignore[misc]
    load = CloudLoad.from_mapping({"waiting_requests": 3.0, "kv_used_frac": 0.5, "unknown": 1.0})
    assert load.waiting_requests == 3.0
    assert load.kv_used_frac == 0.5
    assert load.running_decode == 0.0


def test_docs_examples_run() -> None:
    failures, tests = doctest.testfile(str(DOCS / "policies.md"), module_relative=False)
    assert tests > 0
    assert failures == 0


# The catch-up rule, checked against a direct search written from its definition.


def brute_force_k(
    *,
    prompt: int,
    device: DeviceProfile,
    first: float,
    max_tpot_s: float,
    refine: float,
    cloud_tpot: float,
    cap: int,
) -> int:
    refined = max(1, math.ceil(prompt * refine))
    start = first if refine < 1.0 else 0.0
    prompt_done = start + float(device.prefill_s(refined))
    if refine >= 1.0 and prompt_done < first:
        return 0

    def append(context: int, new: int) -> float:
        return float(device.append_s(context, new))

    pace = max(max_tpot_s, cloud_tpot)
    for n in range(1, cap + 2):
        arrivals = first + cloud_tpot * np.arange(n)
        t, done = prompt_done, 0
        while True:
            arrived = int(np.sum(arrivals <= t + 1e-9))
            if arrived == done:
                break
            t += append(refined + done, arrived - done)
            done = arrived
        if t <= first + (n - 1) * pace + max_tpot_s + 1e-9:
            return n - 1
    return cap


@given(
    prompt=st.integers(1, 4000),
    per_token_ms=st.floats(0.05, 3.0),
    tpot_ms=st.floats(5.0, 45.0),
    first=st.floats(0.0, 1.0),
    refine=st.sampled_from([1.0, 0.5, 0.25]),
    cloud_tpot=st.sampled_from([0.0, 0.015, 0.03, 0.08]),
)
def test_catchup_finds_the_smallest_k(
    *, prompt: int, per_token_ms: float, tpot_ms: float, first: float, refine: float, cloud_tpot: float
) -> None:
    device = toy_device(per_token_ms / 1e3, tpot_ms / 1e3)
    solution = solve_catchup(
        prompt,
        device=device,
        first_token_s=first,
        max_tpot_s=0.05,
        refine_ratio=refine,
        cloud_tpot_s=cloud_tpot,
        max_k=300,
    )
    expected = brute_force_k(
        prompt=prompt,
        device=device,
        first=first,
        max_tpot_s=0.05,
        refine=refine,
        cloud_tpot=cloud_tpot,
        cap=300,
    )
    assert solution.k == expected
    if not solution.converged:
        assert solution.k == 300


def test_catchup_without_refinement_goes_device_alone_when_the_device_is_first() -> None:
    solution = solve_catchup(100, device=toy_device(0.001), first_token_s=0.2, max_tpot_s=0.05)
    assert solution.device_alone
    assert solution.k == 0
    refined = solve_catchup(
        100, device=toy_device(0.001), first_token_s=0.2, max_tpot_s=0.05, refine_ratio=0.5
    )
    assert not refined.device_alone


def test_catchup_without_a_fixed_point_caps_k() -> None:
    slow = toy_device(per_token_s=0.08)  # appending costs more per token than the display pace
    solution = solve_catchup(500, device=slow, first_token_s=0.1, max_tpot_s=0.05, max_k=64)
    assert not solution.converged
    assert solution.k == 64


def test_catchup_rejects_bad_arguments() -> None:
    with pytest.raises(InvalidInputError, match="max_tpot"):
        catchup_k(10, device=PHONE, first_token_s=0.1, max_tpot_s=0.0)
    with pytest.raises(InvalidInputError, match="prompt_tokens"):
        catchup_k(0, device=PHONE, first_token_s=0.1, max_tpot_s=0.05)
    with pytest.raises(InvalidInputError, match="refine_ratio"):
        catchup_k(10, device=PHONE, first_token_s=0.1, max_tpot_s=0.05, refine_ratio=0.0)


def test_refined_prompt_and_cloud_estimates() -> None:
    assert refined_prompt_tokens(1001, 0.5) == 501
    assert refined_prompt_tokens(1, 0.1) == 1
    chunk = CLOUD.max_tokens_per_iteration
    assert CLOUD.cost.lone_prefill_s(chunk) == pytest.approx(CLOUD.iteration_s([chunk], []))
    two = CLOUD.cost.lone_prefill_s(chunk + 10)
    assert two == pytest.approx(
        2 * CLOUD.base_s + CLOUD.prefill_token_s * (chunk + 10) + CLOUD.prefill_attn_s * (chunk + 10) ** 2
    )
    assert CLOUD.cost.lone_decode_s(100) == pytest.approx(CLOUD.iteration_s([], [100]))


# Refinement chosen per request within a quality budget (synthetic curves; the shipped one will change).

SLOW = toy_device(per_token_s=0.005)
LONG = RequestInfo(index=3, arrival_s=0.0, prompt_tokens=2000, one_way_s=0.01)


def auto_plan(request: RequestInfo = LONG, **kwargs: object) -> tuple[PDDevice, Plan]:
    policy = PDDevice(refine_ratio="auto", **kwargs)  # type: ignore[arg-type]
    policy.prepare(context(device=SLOW))
    return policy, policy.plan(request, CloudLoad())


def test_auto_refinement_picks_the_refined_ratio_the_budget_allows() -> None:
    full = PDDevice()
    full.prepare(context(device=SLOW))
    k_full = full.plan(LONG, CloudLoad()).k
    policy, plan = auto_plan(quality={0.5: 0.01, 0.25: 0.05}, quality_budget=0.02)
    assert policy.allowed_refine_ratios == (1.0, 0.5)
    assert plan.mode == "pd"
    assert plan.refine_ratio == 0.5
    assert plan.k < k_full
    # a budget that lets r = 0.25 in picks it: its k is smaller still
    _, looser = auto_plan(quality={0.5: 0.01, 0.25: 0.05}, quality_budget=0.05)
    assert looser.refine_ratio == 0.25
    assert looser.k < plan.k


@given(
    drops=st.dictionaries(st.sampled_from([0.25, 0.5, 0.75]), st.floats(-0.05, 0.1), min_size=1),
    budget=st.floats(0.0, 0.06),
    prompt=st.integers(1, 6000),
    waiting=st.sampled_from([0.0, 20_000.0]),
)
def test_auto_refinement_never_picks_a_ratio_over_budget(
    *, drops: dict[float, float], budget: float, prompt: int, waiting: float
) -> None:
    policy = PDDevice(refine_ratio="auto", quality=drops, quality_budget=budget)
    policy.prepare(context(device=SLOW))
    plan = policy.plan(RequestInfo(0, 0.0, prompt, 0.01), CloudLoad(waiting_prefill_tokens=waiting))
    assert plan.refine_ratio in policy.allowed_refine_ratios
    assert plan.refine_ratio == 1.0 or drops[plan.refine_ratio] <= budget


def test_quality_bound_checks_the_estimate_or_the_interval(write_curve: CurveWriter) -> None:
    curve = write_curve({0.75: (0.0, 0.01), 0.5: (0.01, 0.04)})
    conservative, plan = auto_plan(quality=curve)
    assert conservative.quality_bound == "ci95"
    assert conservative.allowed_refine_ratios == (1.0, 0.75)
    assert plan.refine_ratio == 0.75
    by_estimate, plan = auto_plan(quality=str(curve), quality_bound="mean")
    assert by_estimate.allowed_refine_ratios == (1.0, 0.75, 0.5)
    assert plan.refine_ratio == 0.5


def test_auto_refinement_with_nothing_within_budget_plans_the_full_prompt(write_curve: CurveWriter) -> None:
    curve = write_curve({0.5: (0.0, 0.08)})
    policy, plan = auto_plan(quality=curve, quality_budget=0.02)
    assert policy.allowed_refine_ratios == (1.0,)
    full = PDDevice()
    full.prepare(context(device=SLOW))
    assert plan == full.plan(LONG, CloudLoad())
    assert plan.refine_ratio == 1.0


def test_simulated_requests_carry_the_chosen_ratio() -> None:
    from pdcore.sim.metrics import SLO
    from pdcore.sim.runner import Scenario
    from pdcore.traces.workload import Workload

    prompts = np.array([2000, 3000])
    workload = Workload(
        name="refine",
        arrival_s=np.array([0.0, 1000.0]),
        prompt_tokens=prompts,
        output_tokens=np.array([1500, 1500]),
        source="test",
    )
    scenario = Scenario(
        cloud=CLOUD, device=SLOW, network=network_preset("wifi"), deployment="colocated", slo=SLO()
    )
    policy = PDDevice(refine_ratio="auto", quality={0.5: 0.01}, quality_budget=0.02)
    result = scenario.run(workload, policy, one_way_s=np.full(2, 0.01))
    assert result.results["refine_ratio"].tolist() == [0.5, 0.5]
    # the simulator prefilled the refined prompt, then the cloud tokens it caught up on
    device_prompt = np.asarray(result.results["device_prefill_tokens"]) - np.asarray(
        result.results["cloud_tokens_kept"]
    )
    assert device_prompt.tolist() == [refined_prompt_tokens(int(n), 0.5) for n in prompts]
    assert np.all(np.asarray(result.results["max_gap_s"]) <= 0.05 + 1e-9)


def test_fixed_ratio_is_checked_against_the_budget() -> None:
    with pytest.raises(InvalidInputError, match=r"refine_ratio = 0.5: .* 0.05 .*quality_budget = 0.02"):
        PDDevice(refine_ratio=0.5, quality={0.5: 0.05}, quality_budget=0.02)
    with pytest.raises(InvalidInputError, match=r"refine_ratio = 0\.6 has no measured quality drop"):
        PDDevice(refine_ratio=0.6, quality={0.5: 0.01})
    within = PDDevice(k=5, refine_ratio=0.5, quality={0.5: 0.01}, quality_budget=0.02)
    assert within.plan(REQUEST, CloudLoad()).refine_ratio == 0.5
    policy = PDDevice(refine_ratio=0.5, quality={0.5: 0.01, 0.25: 0.0})
    policy.prepare(context(device=SLOW))
    assert policy.allowed_refine_ratios == (1.0, 0.5)
    assert policy.plan(LONG, CloudLoad()).refine_ratio == 0.5
    # without a curve a fixed ratio keeps today's behaviour: taken as free of quality cost
    assert PDDevice(refine_ratio=0.35).allowed_refine_ratios == (1.0, 0.35)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"quality": {0.5: math.nan}}, r"drop at ratio 0.5 is nan"),
        ({"quality": {1.5: 0.01}}, r"ratio 1.5 \(drop 0.01\) is not in \(0, 1\]"),
        ({"quality": {0.0: 0.01}}, r"ratio 0.0 .* not in \(0, 1\]"),
        ({"quality": {0.5: "low"}}, r"drop at ratio 0.5 is 'low'"),
        ({"quality": "no-such-curve"}, "no-such-curve"),
        ({"quality": "/no/such/curve.toml"}, "/no/such/curve.toml"),
        ({"quality_budget": -0.01}, "quality_budget = -0.01"),
        ({"quality_budget": math.inf}, "quality_budget = inf"),
        ({"quality_bound": "p99"}, "quality_bound = 'p99'"),
        ({"k": 4}, "refine_ratio = 'auto' with k = 4"),
    ],
)
def test_bad_refinement_settings_name_the_input(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        PDDevice(**({"refine_ratio": "auto"} | kwargs))  # type: ignore[arg-type]


def test_make_policy_parses_automatic_refinement(write_curve: CurveWriter) -> None:
    curve = write_curve({0.5: (0.005, 0.015)})
    policy = make_policy("pd-device:refine_ratio=auto")
    assert isinstance(policy, PDDevice)
    assert policy.refine_ratio == "auto"
    assert policy.quality is not None
    assert policy.quality.source == "smollm2-135m"  # the default curve; its numbers are not tested
    spec = f"pd-device:refine_ratio=auto,quality={curve},quality_budget=0.01"
    policy = make_policy(spec)
    assert isinstance(policy, PDDevice)
    assert policy.name == spec
    assert policy.quality_budget == 0.01
    assert policy.allowed_refine_ratios == (1.0,)  # the upper bound 0.015 is over 0.01
    policy = make_policy(
        f"pd-device:refine_ratio=auto:quality={curve}:quality_bound=mean,quality_budget=0.01"
    )
    assert isinstance(policy, PDDevice)
    assert policy.allowed_refine_ratios == (1.0, 0.5)
    with pytest.raises(InvalidInputError, match="over quality_budget"):
        make_policy(f"pd-device:refine_ratio=0.5,quality={curve},quality_budget=0.01")
    with pytest.raises(InvalidInputError, match="bad setting 'budget=1'"):
        make_policy("pd-device:refine_ratio=auto,budget=1")


def test_split_policy_specs_keeps_comma_separated_settings_together() -> None:
    assert split_policy_specs("cloud-only, pd-device:refine_ratio=auto,quality_budget=0.01,race") == [
        "cloud-only",
        "pd-device:refine_ratio=auto,quality_budget=0.01",
        "race",
    ]
    assert split_policy_specs("pd-device:k=4,pd-device:k=8,") == ["pd-device:k=4", "pd-device:k=8"]

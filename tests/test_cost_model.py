"""One cost model: the simulator, the optimizer and the live runtime price the same work identically.

Every consumer asks the Rust cost model (`pdcore._core.DeviceCost`, `CloudCost`, `solve_catchup`,
`PlanOptimizer`, `HandoffEstimator`, `within_objective`); these properties check, for random valid profiles,
that what each consumer reports is exactly that model's price, and that a built-in policy planned inside the
simulator gives the same run as the same policy asked per request from Python.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pdcore import InvalidInputError, ProfileError
from pdcore._core import DEFAULT_MAX_K, GAP_SLACK_S, LIVE_GUARD_STEPS, Plan, within_objective
from pdcore._core import solve_catchup as native_solve_catchup
from pdcore.optimize import Optimizer, catchup_k, solve_catchup
from pdcore.policies import (
    POLICIES,
    CloudLoad,
    DiSCo,
    NaiveSplit,
    PDDevice,
    Policy,
    RequestInfo,
    Router,
    SpecDecoding,
)
from pdcore.profiles import DeviceProfile, load_cloud_profile, load_device_profile, network_preset
from pdcore.runtime.handoff import HandoffEstimator
from pdcore.sim import SLO, Scenario
from pdcore.traces import Workload, synthetic_default

CLOUD = load_cloud_profile("llama3-8b-a100")
WIFI = network_preset("wifi")


def profile(
    prefill: tuple[tuple[float, float], ...], decode: tuple[tuple[float, float], ...], name: str = "p"
) -> DeviceProfile:
    return DeviceProfile(
        name=name,
        description="-",
        hardware="-",
        model="-",
        engine="-",
        prefill_tokens=tuple(x for x, _ in prefill),
        prefill_seconds=tuple(y for _, y in prefill),
        decode_context_tokens=tuple(x for x, _ in decode),
        decode_tpot=tuple(y for _, y in decode),
        kv_bytes_per_token=65_536,
        citation="-",
        notes="-",
    )


FALLING_TAIL = profile(((1000.0, 2.0),), ((0.0, 0.030), (1000.0, 0.020)), name="falling-tail")
"""The regression: a valid profile whose TPOT falls from 30 ms to 20 ms between context 0 and 1,000."""


@st.composite
def profiles(draw: st.DrawFn) -> DeviceProfile:
    """Random valid device profiles: increasing points, positive times, non-decreasing prefill."""
    n_prefill = draw(st.integers(1, 5))
    xs = sorted(draw(st.sets(st.integers(1, 16_384), min_size=n_prefill, max_size=n_prefill)))
    per_token = draw(st.lists(st.floats(1e-5, 2e-2), min_size=n_prefill, max_size=n_prefill))
    ys: list[float] = []
    for x, rate in zip(xs, per_token, strict=True):
        ys.append(max(x * rate, ys[-1] if ys else 0.0))
    n_decode = draw(st.integers(1, 4))
    cs = sorted(draw(st.sets(st.integers(0, 16_384), min_size=n_decode, max_size=n_decode)))
    ts = draw(st.lists(st.floats(1e-3, 0.2), min_size=n_decode, max_size=n_decode))
    return profile(tuple(zip(map(float, xs), ys, strict=True)), tuple(zip(map(float, cs), ts, strict=True)))


def ns(seconds: float) -> int:
    """The simulator's clock: seconds rounded to the nearest nanosecond (half away from zero)."""
    return math.floor(seconds * 1e9 + 0.5)


def one_request(prompt: int, output: int) -> Workload:
    return Workload(
        name="one",
        arrival_s=np.zeros(1),
        prompt_tokens=np.array([prompt]),
        output_tokens=np.array([output]),
        source="test",
    )


def test_the_falling_tail_is_priced_alike_everywhere() -> None:
    device = FALLING_TAIL
    # inside the points: interpolated, the same for every consumer (the optimizer once held it at 30 ms)
    assert device.decode_tpot_s(500) == pytest.approx(0.025, abs=1e-15)
    assert device.cost.tpot_s(500) == device.decode_tpot_s(500)
    # beyond the last point: never below the last measured value (the simulator once fell to 1 ns)
    assert device.decode_tpot_s(3000) == 0.020
    assert device.decode_tpot_s(10**7) == 0.020
    # the simulator's own decode steps at context 3,000+
    result = Scenario(cloud=CLOUD, device=device, network=WIFI).run(
        one_request(3000, 5), Policy_fixed("device"), one_way_s=[0.01]
    )
    gaps_ns = round((result.results["e2e_s"][0] - result.results["ttft_s"][0]) * 1e9)
    assert gaps_ns == 4 * 20_000_000
    # the optimizer's k equals the one model's catch-up at the same inputs
    optimizer = Optimizer(device=device, cloud=CLOUD, slo=SLO(), load_adaptive=False)
    choice = optimizer.choose(3000, one_way_s=0.01)
    first = 0.02 + CLOUD.cost.lone_prefill_s(3000)
    direct = native_solve_catchup(
        3000,
        device=device.cost,
        first_token_s=first,
        max_tpot_s=SLO().max_tpot_s,
        cloud_tpot_s=CLOUD.cost.lone_decode_s(3000),
    )
    assert (choice.k, choice.device_ready_s) == (direct.k, direct.device_ready_s)
    # and the live estimator's guard is the same decode step
    handoff = HandoffEstimator(device, 3000, 12_000, prompt_chunk_tokens=128, append_chunk_tokens=32)
    assert handoff.guard(3000, 10) == LIVE_GUARD_STEPS * 0.020


class Policy_fixed(Policy):  # noqa: N801  # reason: reads as the plan it replays
    """A custom (Python) policy: the same plan for every request."""

    name = "fixed"

    def __init__(self, mode: str, **settings: float) -> None:
        self.plan_ = Plan(mode, **settings)  # type: ignore[arg-type]

    def plan(self, req: RequestInfo, load: CloudLoad) -> Plan:
        return self.plan_


@settings(max_examples=60, deadline=None)
@given(device=profiles(), prompt=st.integers(1, 12_000), output=st.integers(2, 50))
def test_simulated_device_steps_are_the_models_prices(
    device: DeviceProfile, prompt: int, output: int
) -> None:
    result = Scenario(cloud=CLOUD, device=device, network=WIFI).run(
        one_request(prompt, output), Policy_fixed("device", max_tpot_s=10.0), one_way_s=[0.01]
    )
    ttft_ns = round(result.results["ttft_s"][0] * 1e9)
    assert ttft_ns == ns(device.prefill_s(prompt))
    steps = sum(max(ns(device.decode_tpot_s(prompt + pos)), 1) for pos in range(1, output))
    assert round(result.results["e2e_s"][0] * 1e9) == ttft_ns + steps


@settings(max_examples=60, deadline=None)
@given(
    device=profiles(),
    prompt=st.integers(1, 12_000),
    one_way=st.floats(0.0, 0.2),
    max_tpot_s=st.floats(0.01, 0.2),
    ratio=st.sampled_from([1.0, 0.75, 0.5, 0.35]),
)
def test_the_optimizers_k_is_the_models_catchup(
    device: DeviceProfile, prompt: int, one_way: float, max_tpot_s: float, ratio: float
) -> None:
    optimizer = Optimizer(
        device=device,
        cloud=CLOUD,
        slo=SLO(max_tpot_s=max_tpot_s),
        refine_ratios=(ratio,),
        quality={ratio: 0.0},
        load_adaptive=False,
    )
    choice = optimizer.choose_at(prompt, ratio, one_way_s=one_way)
    first = 2.0 * one_way + CLOUD.cost.lone_prefill_s(prompt)
    direct = solve_catchup(
        prompt,
        device=device,
        first_token_s=first,
        max_tpot_s=max_tpot_s,
        refine_ratio=ratio,
        cloud_tpot_s=CLOUD.cost.lone_decode_s(prompt),
    )
    assert choice.first_token_s == first
    assert choice.device_ready_s == direct.device_ready_s
    assert choice.k == (0 if direct.device_alone else direct.k)
    assert (choice.mode == "device") == direct.device_alone


@settings(max_examples=60, deadline=None)
@given(
    device=profiles(), prompt=st.integers(1, 8000), context=st.integers(0, 20_000), left=st.integers(0, 500)
)
def test_the_runtime_estimate_is_the_models_price(
    device: DeviceProfile, prompt: int, context: int, left: int
) -> None:
    handoff = HandoffEstimator(device, prompt, 4 * prompt, prompt_chunk_tokens=128, append_chunk_tokens=32)
    assert handoff.ratio == 1.0  # nothing measured: the prior
    # before any work: the whole prompt and the appends ahead, at the model's prices
    want = device.prefill_s(prompt) + (device.append_s(context, left) if left else 0.0)
    assert handoff.estimate(0.0, 0, context, left) == pytest.approx(want, rel=1e-12, abs=1e-12)
    assert handoff.guard(context, left) == LIVE_GUARD_STEPS * device.decode_tpot_s(context + left)


def runs_alike(policy: Policy, workload: Workload, scenario: Scenario) -> None:
    """The built-in policy planned in Rust equals the same policy planned per request in Python."""
    policy.prepare(scenario.context(workload))
    assert policy.native() is not None, "a built-in policy plans inside the simulator"
    native = scenario.run(workload, policy, seed=3)

    class InPython(type(policy)):  # type: ignore[misc]
        def native(self) -> None:
            return None

    python_policy = InPython.__new__(InPython)
    python_policy.__dict__.update(policy.__dict__)
    in_python = scenario.run(workload, python_policy, seed=3)
    assert native.results.keys() == in_python.results.keys()
    for key, column in native.results.items():
        np.testing.assert_array_equal(column, in_python.results[key], err_msg=key)
    assert native.summary == in_python.summary


@pytest.mark.parametrize("name", sorted(POLICIES))
@pytest.mark.parametrize("deployment", ["colocated", "disaggregated"])
def test_native_planning_equals_python_planning(name: str, deployment: str) -> None:
    workload = synthetic_default(seed=5, n_requests=400, rate_rps=8.0)
    scenario = Scenario(cloud=CLOUD, device=load_device_profile("llama32-1b-q4-8elite-hexagon"), network=WIFI)
    runs_alike(POLICIES[name](), workload, scenario.replace(deployment=deployment))


@pytest.mark.parametrize(
    "policy",
    [
        PDDevice(refine_ratio="auto", quality_bound="mean"),
        PDDevice(k=7, refine_ratio=0.5),
        PDDevice(load_adaptive=False, max_k=40),
        NaiveSplit(k=3),
        DiSCo(budget=0.8, min_tpot_s=0.01),
        Router(quantile=0.9, min_bucket=8),
        SpecDecoding(gamma=6, alpha=0.9, min_tpot_s=0.005),
        PDDevice(cost_weight=5.0),
        PDDevice(energy_weight=0.01),
        PDDevice(refine_ratio="auto", quality_bound="mean", cost_weight=0.5, energy_weight=0.005),
    ],
    ids=[
        "refine-auto",
        "fixed-k-refined",
        "not-load-adaptive",
        "naive-fixed",
        "disco-budget",
        "router-q90",
        "spec-long-drafts",
        "cost-weighted",
        "energy-weighted",
        "refined-and-weighted",
    ],
)
def test_native_planning_equals_python_planning_with_settings(policy: Policy) -> None:
    workload = synthetic_default(seed=6, n_requests=300, rate_rps=12.0)
    scenario = Scenario(
        cloud=CLOUD, device=load_device_profile("llama32-3b-w4a16-8elite-genie"), network=WIFI
    )
    runs_alike(policy, workload, scenario)


@pytest.mark.parametrize("k_site", ["auto", "prefill", "pool"])
def test_native_planning_equals_python_planning_with_both_sites(k_site: str) -> None:
    # a 2 GB/s link makes the pool's first decode token late for long prompts: both sites get chosen
    workload = synthetic_default(seed=6, n_requests=300, rate_rps=12.0)
    scenario = Scenario(
        cloud=CLOUD,
        device=load_device_profile("llama32-3b-w4a16-8elite-genie"),
        network=WIFI,
        k_sites="both",
        kv_link_bytes_per_s=2e9,
    )
    runs_alike(PDDevice(k_site=k_site), workload, scenario)
    runs_alike(NaiveSplit(k=5, k_site="prefill" if k_site == "auto" else k_site), workload, scenario)


def test_a_subclass_that_plans_in_python_is_asked() -> None:
    asked: list[int] = []

    class Counting(PDDevice):
        def plan(self, req: RequestInfo, load: CloudLoad) -> Plan:
            asked.append(req.index)
            return super().plan(req, load)

    workload = synthetic_default(seed=1, n_requests=20)
    Scenario(cloud=CLOUD, device=FALLING_TAIL, network=WIFI).run(workload, Counting())
    assert asked == list(range(20))


def test_a_policy_returning_no_plan_is_named() -> None:
    class Broken(Policy):
        name = "broken"

        def plan(self, req: RequestInfo, load: CloudLoad) -> Plan:
            return None  # type: ignore[return-value]

    with pytest.raises(InvalidInputError, match=r"Broken\.plan\(\) returned None"):
        Scenario(cloud=CLOUD, device=FALLING_TAIL, network=WIFI).run(
            synthetic_default(n_requests=3), Broken()
        )


@pytest.mark.parametrize(
    ("field", "value", "key"),
    [
        ("decode_tpot", (0.02, 0.0), "[decode] tpot_s[1]"),
        ("decode_tpot", (0.02, -0.01), "[decode] tpot_s[1]"),
        ("prefill_seconds", (0.0,), "[prefill] seconds[0]"),
        ("prefill_seconds", (math.nan,), "[prefill] seconds[0]"),
        ("kv_bytes_per_token", 0, "kv_bytes_per_token"),
    ],
)
def test_a_profile_that_prices_a_step_at_zero_is_refused(field: str, value: object, key: str) -> None:
    base = replace(FALLING_TAIL, source="phone.toml")
    if field == "decode_tpot":
        changes: dict[str, object] = {"decode_tpot": value, "decode_context_tokens": (0.0, 100.0)}
    else:
        changes = {field: value}
    with pytest.raises(ProfileError) as info:
        replace(base, **changes)
    message = str(info.value)
    assert message.startswith("phone.toml: key")
    assert key in message
    assert "fix:" in message


def test_the_gap_rule_has_one_nanosecond_of_slack() -> None:
    assert GAP_SLACK_S == 1e-9
    assert within_objective(0.05, 0.05)
    assert within_objective(0.05 + 0.5e-9, 0.05)
    assert not within_objective(0.05 + 2e-9, 0.05)
    assert within_objective(math.nan, 0.05)
    np.testing.assert_array_equal(
        within_objective(np.array([0.01, 0.06, math.nan]), 0.05), np.array([True, False, True])
    )


def test_the_python_signatures_spell_the_default_cap() -> None:
    assert inspect.signature(native_solve_catchup).parameters["max_k"].default == DEFAULT_MAX_K
    assert inspect.signature(catchup_k).parameters["max_k"].default == DEFAULT_MAX_K


def test_profiles_pickle_without_their_cost_model() -> None:
    import pickle

    phone = load_device_profile("smollm2-135m-q4-cpu1")
    _ = phone.cost, CLOUD.cost
    assert pickle.loads(pickle.dumps(phone)).prefill_s(512) == phone.prefill_s(512)
    assert pickle.loads(pickle.dumps(CLOUD)).cost.lone_prefill_s(512) == CLOUD.cost.lone_prefill_s(512)

"""The rival strategies (`pdcore.policies.rivals`): each rule on seeded, hand-computed cases, and every
token displayed exactly once, in order, in their simulator modes."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pdcore import InvalidInputError
from pdcore._core import Plan, RouterRule
from pdcore.exceptions import InvalidStateError
from pdcore.policies import POLICIES, CloudLoad, DiSCo, RequestInfo, Router, SpecDecoding, make_policy
from pdcore.policies.rivals import disco_threshold, higher_quantile, length_table
from pdcore.profiles import DeviceProfile, load_cloud_profile, load_device_profile, network_preset
from pdcore.sim import MODES, Scenario
from pdcore.traces import Workload, synthetic_multi_turn
from test_cost_model import runs_alike

CLOUD = load_cloud_profile("llama3-8b-a100")
DEVICE_3B = load_device_profile("llama32-3b-w4a16-8elite-genie")
WIFI = network_preset("wifi")


def device(
    prefill: tuple[float, float] = (1000.0, 1.0), decode: tuple[tuple[float, float], ...] = ((0.0, 0.020),)
) -> DeviceProfile:
    return DeviceProfile(
        name="hand",
        description="-",
        hardware="-",
        model="-",
        engine="-",
        prefill_tokens=(prefill[0],),
        prefill_seconds=(prefill[1],),
        decode_context_tokens=tuple(x for x, _ in decode),
        decode_tpot=tuple(y for _, y in decode),
        kv_bytes_per_token=65_536,
        citation="-",
        notes="-",
    )


def workload(prompts: list[int], outputs: list[int], gap_s: float = 30.0) -> Workload:
    return Workload(
        name="hand",
        arrival_s=np.arange(len(prompts), dtype=np.float64) * gap_s,
        prompt_tokens=np.array(prompts, dtype=np.int64),
        output_tokens=np.array(outputs, dtype=np.int64),
        source="test",
    )


def scenario(dev: DeviceProfile, deployment: str = "colocated") -> Scenario:
    return Scenario(cloud=CLOUD, device=dev, network=WIFI, deployment=deployment)


def modes(result_modes: np.ndarray) -> list[str]:
    return [MODES[m] for m in result_modes]


def test_the_rivals_are_registered() -> None:
    assert {"disco", "router", "spec-decode"} <= set(POLICIES)
    assert make_policy("router:quantile=0.9").name == "router:quantile=0.9"
    assert make_policy("disco:budget=0.25").budget == 0.25


# --- the router -------------------------------------------------------------------------------------


def test_the_predictor_is_a_per_bucket_quantile() -> None:
    assert higher_quantile([5, 1, 3, 2], 0.5) == 2
    assert higher_quantile([5, 1, 3, 2], 1.0) == 5
    assert higher_quantile([5, 1, 3, 2], 0.01) == 1
    # prompts 1 (bucket 0), 2 and 3 (bucket 1), 4 (bucket 2)
    table = length_table([1, 2, 3, 4], [10, 20, 40, 80], 0.5, 1)
    assert table[:3] == [10, 20, 80]
    assert table[3:] == [20] * 29, "empty buckets: the whole trace's median"
    assert length_table([1, 2, 3, 4], [10, 20, 40, 80], 0.5, 2)[:3] == [20, 20, 20]


def test_the_router_sends_the_prompt_at_its_ttft_threshold_to_the_device() -> None:
    # 1 ms a prefill token, a 1 s TTFT objective: 1,000 tokens are the longest prompt the device serves
    sc = scenario(device())
    result = sc.run(workload([1000, 1001], [50, 50]), Router(min_bucket=1))
    assert modes(result.results["mode"]) == ["device", "cloud"]
    assert result.results["cloud_prefill_gpu_s"][0] == 0.0


@pytest.mark.parametrize(
    ("outputs", "expected"), [((2001, 1977), ["device", "device"]), ((2002, 1978), ["cloud", "cloud"])]
)
def test_the_router_sends_the_answer_at_its_gap_threshold_to_the_device(
    outputs: tuple[int, int], expected: list[str]
) -> None:
    # decode 20 ms at an empty cache, 60 ms at 4,000: the 50 ms objective holds up to context 3,000, so
    # a prompt of 1,000 may be followed by 2,001 tokens (last step at 1,000 + 2,000) and one of 1,024 by
    # 1,977; the predictor (one request per bucket) predicts each answer exactly
    dev = device((2000.0, 1.0), ((0.0, 0.020), (4000.0, 0.060)))
    rule = RouterRule(predicted_output=[outputs[0]] * 10 + [outputs[1]] * 22, ttft_slo_s=1.0, max_tpot_s=0.05)
    assert [rule.on_device(dev.cost, p) for p in (1000, 1024)] == [m == "device" for m in expected]
    result = scenario(dev).run(workload([1000, 1024], list(outputs)), Router(min_bucket=1))
    assert modes(result.results["mode"]) == expected


def test_the_router_needs_the_workload_and_checks_its_settings() -> None:
    with pytest.raises(InvalidStateError, match="prepare"):
        Router().plan(RequestInfo(0, 0.0, 10, 0.01), CloudLoad())
    for bad in ("router:quantile=0", "router:quantile=1.5", "router:min_bucket=0"):
        with pytest.raises(InvalidInputError, match=bad.split(":")[1].split("=")[0]):
            make_policy(bad)
    with pytest.raises(InvalidInputError, match="predicted_output"):
        RouterRule(predicted_output=[1, 0], ttft_slo_s=1.0, max_tpot_s=0.05)


# --- speculative decoding ------------------------------------------------------------------------------


def ns(seconds: float) -> int:
    return math.floor(seconds * 1e9 + 0.5)


@pytest.mark.parametrize(("gamma", "alpha"), [(4, 0.5), (3, 0.8), (2, 1.0), (5, 0.0)])
def test_spec_rounds_take_the_draft_the_trip_and_one_verification(gamma: int, alpha: float) -> None:
    dev = device((1000.0, 0.5), ((0.0, 0.020), (4000.0, 0.040)))
    sc = scenario(dev)
    prompt, out, one_way = 300, 60, 0.03
    w = workload([prompt], [out])
    [timeline] = sc.record_timelines(
        w, SpecDecoding(gamma=gamma, alpha=alpha), [0], one_way_s=[one_way]
    ).values()
    result = sc.run(w, SpecDecoding(gamma=gamma, alpha=alpha), one_way_s=[one_way]).results
    cost, d = CLOUD.cost, ns(one_way)
    # the first token: the cloud's prefill of a prompt within one iteration, a trip each way
    first = d + ns(cost.lone_prefill_s(prompt)) + d
    displays = np.round(timeline["displays_s"] * 1e9).astype(np.int64)
    assert abs(displays[0] - first) <= 1
    # then rounds: draft gamma steps once the device has the prompt (150 ms) and the first token
    expected = (1 - alpha ** (gamma + 1)) / (1 - alpha) if alpha < 1 else gamma + 1.0
    at, kept, r, t = max(first, ns(dev.prefill_s(prompt))), 1, 0, []
    while kept < out:
        r += 1
        draft = sum(ns(dev.decode_tpot_s(prompt + kept + j)) for j in range(gamma))
        context = prompt + kept
        verify = ns(cost.iteration_s([gamma], [context], prefill_offsets=[context]))
        at = at + draft + d + verify + d
        n = min(math.floor(r * expected) - math.floor((r - 1) * expected), out - kept)
        assert 1 <= n <= gamma + 1
        t += [at] * n
        kept += n
    assert np.abs(displays[1:] - np.array(t)).max() <= 2 * r, "each round on time, to the nanosecond"
    assert result["device_decode_tokens"][0] == gamma * r
    assert result["cloud_tokens_kept"][0] == out
    assert result["ttft_s"][0] == pytest.approx(first / 1e9, abs=2e-9)
    # the round's accepted drafts are the device's, its last token the cloud's
    assert timeline["from_cloud"][0]


def test_spec_waits_for_the_device_before_the_first_round() -> None:
    # a 2 s prompt prefill on the device: the first token comes long before, then nothing until 2 s
    sc = scenario(device((1000.0, 2.0)))
    result = sc.run(workload([1000], [10]), SpecDecoding(), one_way_s=[0.01]).results
    assert result["ttft_s"][0] < 0.5
    assert result["max_gap_s"][0] > 2.0 - result["ttft_s"][0]


def test_spec_plans_carry_their_draft_settings() -> None:
    plan = Plan("spec", gamma=4, alpha=0.7)
    assert (plan.gamma, plan.alpha) == (4, 0.7)
    assert Plan("cloud").gamma is None
    with pytest.raises(InvalidInputError, match="gamma"):
        Plan("spec")
    with pytest.raises(InvalidInputError, match="gamma"):
        Plan("cloud", gamma=4, alpha=0.5)
    with pytest.raises(InvalidInputError, match="alpha"):
        Plan("spec", gamma=4, alpha=1.5)
    with pytest.raises(InvalidInputError, match="gamma"):
        make_policy("spec-decode:gamma=0")
    assert make_policy("spec-decode:gamma=6:alpha=0.9").alpha == 0.9


# --- DiSCo ------------------------------------------------------------------------------------------


def test_the_disco_threshold_keeps_the_cloud_within_its_budget() -> None:
    assert disco_threshold([10, 20, 30, 40], 0.5) == 20
    assert disco_threshold([10, 20, 30, 40], 0.25) == 30
    assert disco_threshold([10, 20, 30, 40], 1.0) == 0
    assert disco_threshold([10, 20, 30, 40], 0.0) == 40
    # ties: at most the budget's share has a longer prompt
    assert disco_threshold([10, 20, 20, 40], 0.5) == 20


def test_disco_dispatches_by_prompt_length() -> None:
    sc = scenario(device())
    got = sc.run(workload([400, 600, 500], [20, 20, 20]), DiSCo(length_threshold=500))
    assert modes(got.results["mode"]) == ["device", "disco", "device"]
    auto = sc.run(workload([400, 600, 500, 700], [20, 20, 20, 20]), DiSCo(budget=0.5))
    assert modes(auto.results["mode"]) == ["device", "disco", "device", "disco"]
    with pytest.raises(InvalidInputError, match="budget"):
        DiSCo(budget=1.5)


def test_disco_migrates_where_the_cloud_stopped_and_loses_no_token() -> None:
    # the device prefills the 1,000-token prompt in 2 s; the cloud's first token comes long before, so
    # the cloud streams and the device cancels it at 2 s: the cloud stops one delay later
    dev = device((1000.0, 2.0), ((0.0, 0.030),))
    sc = scenario(dev)
    one_way = 0.02
    w = workload([1000], [400])
    policy = DiSCo(length_threshold=0)
    [timeline] = sc.record_timelines(w, policy, [0], one_way_s=[one_way]).values()
    result = sc.run(w, policy, one_way_s=[one_way]).results
    assert timeline["mode"] == "disco"
    emitted = timeline["cloud_arrivals_s"] - one_way
    cancel_heard = 2.0 + one_way
    assert (emitted < cancel_heard).all(), "nothing is emitted after the cloud hears of the migration"
    # the next token would have ended an iteration after the cancel was heard
    pos = len(emitted)
    assert emitted[-1] + CLOUD.cost.lone_decode_s(1000 + pos) >= cancel_heard - 1e-9
    assert result["handoff_pos"][0] == pos
    # every token once, in order: the cloud's first `pos`, then the device's
    assert result["displayed_tokens"][0] == 400
    assert result["cloud_tokens_kept"][0] + result["device_decode_tokens"][0] == 400
    assert timeline["from_cloud"].tolist() == [True] * pos + [False] * (400 - pos)
    assert (np.diff(timeline["displays_s"]) >= 0).all()
    assert result["device_prefill_tokens"][0] == 1000 + pos
    assert timeline["handoff_s"] >= timeline["cloud_arrivals_s"][-1]


def test_disco_lets_the_device_win_the_race() -> None:
    # a 10-token prompt is prefilled in 10 ms, before the cloud's first token can cross the network
    result = scenario(device()).run(workload([10], [30]), DiSCo(length_threshold=0)).results
    assert result["handoff_pos"][0] == 0
    assert result["cloud_tokens_kept"][0] == 0
    assert result["device_decode_tokens"][0] == 30


@settings(deadline=None)
@given(
    requests=st.lists(
        st.tuples(st.integers(1, 3000), st.integers(1, 300), st.floats(0.0, 0.2)), min_size=1, max_size=4
    ),
    gap_s=st.floats(0.0, 2.0),
    policy=st.sampled_from(["disco:length_threshold=0", "router:min_bucket=1", "spec-decode:gamma=3"]),
)
def test_every_token_is_displayed_once_in_order(
    requests: list[tuple[int, int, float]], gap_s: float, policy: str
) -> None:
    prompts, outputs, delays = (list(column) for column in zip(*requests, strict=True))
    w = workload(prompts, outputs, gap_s)
    sc = scenario(device((1000.0, 0.8), ((0.0, 0.025), (4000.0, 0.045))), "disaggregated")
    timelines = sc.record_timelines(w, policy, list(range(len(w))), one_way_s=delays)
    for i, timeline in timelines.items():
        displays, from_cloud = timeline["displays_s"], timeline["from_cloud"]
        assert len(displays) == outputs[i]
        assert (np.diff(displays) >= 0).all()
        if policy.startswith("spec"):
            # the first token and every round's last are the cloud's
            assert from_cloud[0]
            assert from_cloud[-1]
            continue
        # cloud tokens first, then the device's: a single switch at most, never back
        switches = np.flatnonzero(from_cloud[1:] != from_cloud[:-1])
        assert len(switches) <= 1
        assert len(switches) == 0 or from_cloud[0]
    result = sc.run(w, policy, one_way_s=delays).results
    np.testing.assert_array_equal(result["displayed_tokens"], outputs)
    shown = result["cloud_tokens_kept"]
    if not policy.startswith("spec"):
        shown = shown + result["device_decode_tokens"]
    np.testing.assert_array_equal(shown, outputs)
    assert not np.isnan(result["ttft_s"]).any()


# --- conversations: the rivals plan with what the device's session cache holds ----------------------------


def two_turns(prompts: tuple[int, int], outputs: tuple[int, int], shared: int) -> Workload:
    return Workload(
        name="hand",
        arrival_s=np.array([0.0, 60.0]),
        prompt_tokens=np.array(prompts, dtype=np.int64),
        output_tokens=np.array(outputs, dtype=np.int64),
        source="test",
        session=np.array([0, 0], dtype=np.int64),
        turn=np.array([1, 2], dtype=np.int64),
        parent=np.array([-1, 0], dtype=np.int64),
        shared_prefix_tokens=np.array([0, shared], dtype=np.int64),
    )


def test_a_follow_up_goes_where_its_uncached_prefill_fits() -> None:
    # turn 1 (1,000 tokens, 1 s on the device) is served by the device, which then holds its prompt and
    # answer (1,099 tokens); turn 2's 1,600-token prompt shares them, so the device prefills 501 tokens
    # (0.5 s) and takes it, where a cold 1,600-token prompt (1.6 s) goes to the cloud
    dev = dataclasses.replace(device(), session_cache_bytes=10**12)
    w = two_turns((1000, 1600), (100, 50), 1099)
    sc = scenario(dev)
    router = sc.run(w, Router(min_bucket=1)).results
    assert modes(router["mode"]) == ["device", "device"]
    assert router["device_cached_tokens"][1] == 1099
    assert router["device_prefill_tokens"][1] == 501
    single = sc.run(workload([1000, 1600], [100, 50], 60.0), Router(min_bucket=1)).results
    assert modes(single["mode"]) == ["device", "cloud"]
    # DiSCo compares the 501 uncached tokens with its threshold
    disco = sc.run(w, DiSCo(length_threshold=600)).results
    assert modes(disco["mode"]) == ["disco", "device"]


@pytest.mark.parametrize("policy", ["disco", "router", "spec-decode"])
def test_native_and_python_plans_agree_with_caches(policy: str) -> None:
    work = synthetic_multi_turn(seed=5, n_requests=300)
    runs_alike(make_policy(policy), work, Scenario(cloud=CLOUD, device=DEVICE_3B, network=WIFI))

"""The planner's sizing (`pdcore.sim.planner_search`, `pdcore.sim.front`, `pdcore.sim.sizing_probes`):
the Pareto front on hand-made candidates, the dollar arithmetic, the search over profiles on a tiny
workload (serial, threads and Ray give the same candidates), and the probes it keeps."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pdcore import InvalidInputError
from pdcore.sim.front import dominates, pareto_front
from pdcore.sim.planner_search import (
    HOURS_PER_MONTH,
    PlannedCloud,
    SearchTask,
    mark_fronts,
    model_families,
    model_family_clouds,
    search_candidates,
    size_task,
    usd_per_hour,
    usd_per_month,
)
from pdcore.sim.sizing import Sizing
from pdcore.sim.sizing_probes import ProbeCache, ttft_p90_s, user_tokens_per_s
from pdcore.sim.spec import ScenarioSpec
from pdcore.traces import synthetic_default

TINY = synthetic_default(seed=0, n_requests=60, rate_rps=8.0)
CLOUDS = ("llama3-8b-a100", "llama3-8b-h100")


def _sizing(policy: str, gpus: int | None, goodput: float | None, bound: str = "found") -> Sizing:
    return Sizing(
        policy=policy,
        deployment="disaggregated",
        replicas=0,
        prefill_replicas=1 if gpus else 0,
        decode_replicas=(gpus - 1) if gpus else 0,
        gpus=gpus,
        attainment=0.95,
        fewer={},
        target=0.9,
        rate_rps=4.0,
        goodput_per_gpu_rps=goodput,
        bound=bound,  # type: ignore[arg-type]
        probes=3,
    )


def _planned(
    name: str,
    gpus: int | None,
    goodput: float | None,
    ttft: float | None,
    speed: float | None,
    *,
    policy: str = "cloud-only",
    bound: str = "found",
    price: float | None = 2.0,
) -> PlannedCloud:
    return PlannedCloud(
        cloud=name,
        gpu="GPU",
        tensor_parallel=1,
        sizing=_sizing(policy, gpus, goodput, bound),
        usd_per_gpu_hour=price,
        ttft_p90_s=ttft,
        user_tokens_per_s=speed,
    )


def test_a_candidate_with_more_gpus_and_no_better_figure_is_not_on_the_front() -> None:
    small = _planned("small", 8, 0.50, 0.8, 23.0)
    larger = _planned("larger", 16, 0.25, 0.9, 23.0)  # more GPUs, no better goodput, TTFT or speed
    faster = _planned("faster", 24, 0.20, 0.3, 23.0)  # more GPUs, but a better TTFT p90
    speedier = _planned("speedier", 24, 0.20, 0.9, 40.0)  # more GPUs, but faster for each user
    marked = mark_fronts([small, larger, faster, speedier])
    assert [c.on_ttft_front for c in marked] == [True, False, True, False]
    assert [c.on_speed_front for c in marked] == [True, False, False, True]
    assert [c.on_front for c in marked] == [True, False, True, True]


def test_each_policy_has_its_own_front_and_no_goodput_is_never_on_it() -> None:
    cloud_only = _planned("a", 8, 0.5, 0.8, 23.0)
    device = _planned("a", 16, 0.25, 0.9, 20.0, policy="pd-device")  # alone in its policy: on its front
    unattainable = _planned("b", None, None, None, None, policy="pd-device", bound="unattainable")
    no_cloud = _planned("c", 0, None, 0.5, 30.0, policy="pd-device", bound="no_cloud")
    marked = mark_fronts([cloud_only, device, unattainable, no_cloud])
    assert [c.on_front for c in marked] == [True, True, False, False]


def test_dominance_is_strict_equal_points_both_stay_and_nan_is_worst() -> None:
    assert dominates((1.0, 1.0), (1.0, 0.5))
    assert not dominates((1.0, 1.0), (1.0, 1.0))
    assert pareto_front([(1.0, 1.0), (1.0, 1.0), None]) == [True, True, False]
    assert pareto_front([(1.0, math.nan), (1.0, 0.0)]) == [False, True]
    with pytest.raises(ValueError, match="objectives"):
        dominates((1.0,), (1.0, 2.0))


def test_dollars_per_hour_and_month_are_the_gpu_hour_price_times_gpus() -> None:
    assert usd_per_hour(1.99, 8) == pytest.approx(15.92)
    assert usd_per_month(1.99, 8) == pytest.approx(1.99 * 8 * 730)
    assert HOURS_PER_MONTH == 8760 / 12
    planned = _planned("x", 24, 0.2, 0.5, 20.0, price=2.5)
    assert planned.usd_per_month == pytest.approx(2.5 * 24 * 730)
    assert planned.describe()["usd_per_hour"] == pytest.approx(60.0)


def test_no_price_and_no_gpus_give_no_dollars() -> None:
    assert usd_per_hour(None, 8) is None
    assert usd_per_month(2.0, None) is None
    record = _planned("a40", 4, 0.3, 0.5, 20.0, price=None).describe()
    assert record["usd_per_gpu_hour"] is None
    assert record["usd_per_month"] is None
    assert usd_per_month(2.0, 0) == 0.0  # a policy that needs no GPU costs nothing on the cloud


def test_the_probe_figures() -> None:
    # NaN (no token) counts as an infinite TTFT
    assert ttft_p90_s(np.array([0.1] * 9 + [np.nan])) == math.inf
    assert ttft_p90_s(np.arange(1.0, 11.0)) == pytest.approx(9.1)
    # 1 / TPOT per request, one-token answers (NaN TPOT) left out
    assert user_tokens_per_s(np.array([0.05, 0.02, 0.04, np.nan])) == pytest.approx(25.0)
    assert math.isnan(user_tokens_per_s(np.array([np.nan])))


def test_model_families_group_the_shipped_profiles_by_name() -> None:
    families = model_families()
    assert families["llama3-70b"] == ["llama3-70b-a100-tp4-vidur", "llama3-70b-a100-tp8-vidur"]
    assert "llama2-70b-a100-tp2" in families["llama2-70b"]
    assert not any(name.startswith("llama2-7b-") for name in families["llama2-70b"])
    with pytest.raises(InvalidInputError, match="llama3-70b"):
        model_family_clouds("gpt-5")


def _tasks(policies: tuple[str, ...] = ("cloud-only", "pd-device")) -> list[SearchTask]:
    spec = ScenarioSpec()
    scenarios = [
        spec.replace(cloud=cloud, deployment=deployment).build()
        for cloud in CLOUDS
        for deployment in ("disaggregated", "colocated")
    ]
    return [
        SearchTask(TINY, scenario, policy, seed=0, target=0.9, max_replicas=8)
        for policy in policies
        for scenario in scenarios
    ]


def test_serial_and_threads_find_the_same_candidates() -> None:
    serial = search_candidates(_tasks(), executor="serial")
    threads = search_candidates(_tasks(), executor="threads", workers=2)
    assert [c.describe() for c in serial.candidates] == [c.describe() for c in threads.candidates]
    assert serial.runs == threads.runs > 0
    assert len(serial.candidates) == 2 * 2 * len(CLOUDS)
    assert any(c.on_front for c in serial.candidates)
    for candidate in serial.candidates:
        if candidate.sizing.bound == "found":
            assert candidate.ttft_p90_s is not None
            assert candidate.user_tokens_per_s is not None
            assert candidate.usd_per_month == pytest.approx(
                candidate.usd_per_gpu_hour * candidate.sizing.gpus * 730  # type: ignore[operator]
            )


def test_ray_finds_the_same_candidates_as_serial() -> None:
    pytest.importorskip("ray")
    tasks = _tasks(("cloud-only",))
    serial = search_candidates(tasks, executor="serial")
    on_ray = search_candidates(tasks, executor="ray", workers=2)
    assert [c.describe() for c in serial.candidates] == [c.describe() for c in on_ray.candidates]


def test_an_unknown_executor_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="--executor 'gpu'"):
        search_candidates(_tasks(), executor="gpu")


def test_the_cloud_found_is_read_from_the_probes_and_a_second_search_runs_nothing() -> None:
    task = _tasks(("cloud-only",))[0]
    cache = ProbeCache()
    first = size_task(task, cache)
    runs = cache.runs
    assert runs == first.sizing.probes == len(cache)
    again = size_task(task, cache)
    assert cache.runs == runs
    assert cache.hits >= again.sizing.probes
    assert again == first

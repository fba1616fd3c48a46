"""Misuse of the native classes is a clean, named error: huge or negative integers, one simulator driven
from two threads, a cloud of a billion replicas."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from pdcore import InvalidInputError, InvalidStateError
from pdcore._core import CloudConfig, DeviceCost, Plan, Simulator, SpeedController, TokenBuffer

CLOUD = {
    "deployment": "disaggregated",
    "base_s": 0.005,
    "prefill_token_s": 5e-5,
    "prefill_attn_s": 1e-9,
    "decode_seq_s": 1e-4,
    "decode_context_s": 2e-8,
    "max_batch_size": 16,
    "max_tokens_per_iteration": 512,
    "kv_cache_tokens": 20_000,
    "gpus_per_replica": 1,
    "kv_bytes_per_token": 1000.0,
    "kv_link_bytes_per_s": 25e9,
}


@pytest.mark.parametrize("k", [-1, 2**32, 2**70, 1.5, True, "3"])
def test_a_plan_names_a_bad_k(k: object) -> None:
    with pytest.raises(InvalidInputError, match=r"^k "):
        Plan("pd", k=k)  # type: ignore[arg-type]


def test_plans_take_numpy_integers() -> None:
    assert Plan("pd", k=np.int64(7)).k == 7
    assert Plan("pd").k == 0


@pytest.mark.parametrize("count", [-1, 2**70])
def test_counts_beyond_their_range_are_named(count: int) -> None:
    with pytest.raises(InvalidInputError, match="expected_tokens"):
        SpeedController(min_tpot_s=0.0, max_tpot_s=0.05, expected_tokens=count)
    controller = SpeedController(min_tpot_s=0.0, max_tpot_s=0.05)
    with pytest.raises(InvalidInputError, match=r"^n "):
        controller.set_expected(count)
    with pytest.raises(InvalidInputError, match="cloud_expected"):
        TokenBuffer(cloud_expected=count)


def test_a_billion_replicas_is_refused_not_allocated() -> None:
    with pytest.raises(InvalidInputError, match="decode_replicas = 1000000000 is more than 65536"):
        CloudConfig(**CLOUD, decode_replicas=1_000_000_000)  # type: ignore[arg-type]


def simulator(n: int) -> Simulator:
    return Simulator(
        arrival_s=np.arange(n, dtype=np.float64) * 0.01,
        prompt_tokens=np.full(n, 3000, dtype=np.int64),
        output_tokens=np.full(n, 400, dtype=np.int64),
        one_way_s=np.full(n, 0.01),
        cloud=CloudConfig(**CLOUD),  # type: ignore[arg-type]
        device=DeviceCost(
            prefill_tokens=[128.0, 1024.0],
            prefill_s=[0.5, 6.0],
            decode_context=[0.0, 2048.0],
            decode_tpot_s=[0.015, 0.025],
            kv_bytes_per_token=20_000.0,
        ),
        bandwidth_bps=1e8,
    )


def test_one_simulator_from_two_threads_is_a_clean_error() -> None:
    from pdcore._core import NativePolicy

    sim = simulator(20_000)
    errors: list[BaseException] = []
    started = threading.Event()

    def drive() -> None:
        started.set()
        sim.run_policy(NativePolicy.fixed(Plan("cloud")))

    worker = threading.Thread(target=drive)
    worker.start()
    started.wait()
    for _ in range(2000):  # the worker holds the simulator while it runs (GIL released)
        try:
            sim.cloud_load()
        except InvalidStateError as error:
            errors.append(error)
            break
    worker.join()
    assert errors, "the second thread must be refused while the first one runs"
    assert "another thread" in str(errors[0])
    assert len(sim) == 20_000  # and the simulator is whole afterwards


def test_a_time_past_the_clock_is_an_error_naming_the_request_not_a_saturated_figure() -> None:
    """On a slow device (a second a prompt token, ten seconds a decode step), a prompt of 2e9 tokens would
    end past the clock's 1e9 s: refused, naming the request and what was priced."""
    from pdcore._core import CLOCK_LIMIT_S

    sim = Simulator(
        arrival_s=np.zeros(1),
        prompt_tokens=np.array([2_000_000_000], dtype=np.int64),
        output_tokens=np.array([1], dtype=np.int64),
        one_way_s=np.full(1, 0.01),
        cloud=CloudConfig(**CLOUD),  # type: ignore[arg-type]
        device=DeviceCost(
            prefill_tokens=[1.0],
            prefill_s=[1.0],
            decode_context=[0.0],
            decode_tpot_s=[10.0],
            kv_bytes_per_token=1.0,
        ),
        bandwidth_bps=1e8,
    )
    assert CLOCK_LIMIT_S == 1e9
    i = sim.next_decision()
    with pytest.raises(
        InvalidInputError, match=r"^request\[0\] \(prompt 2000000000 tokens, output 1\): the device's "
    ):
        sim.decide(i, Plan("device"))


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("kv_write_token_s", 3600.0, r"kv_write_token_s = 3600 s per token is above 1 s per token"),
        ("base_s", 60.0, r"base_s = 60 s is above 10 s"),
        ("decode_context_s", 0.5, r"decode_context_s = 0.5 s is above 0.01 s"),
    ],
)
def test_cloud_times_beyond_what_hardware_takes_are_refused(key: str, value: float, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        CloudConfig(**{**CLOUD, key: value})  # type: ignore[arg-type]


def test_device_times_beyond_what_hardware_takes_are_refused() -> None:
    with pytest.raises(InvalidInputError, match=r"\[decode\] tpot_s\[0\] = 60 s is above 10 s"):
        DeviceCost(
            prefill_tokens=[1.0],
            prefill_s=[0.01],
            decode_context=[0.0],
            decode_tpot_s=[60.0],
            kv_bytes_per_token=1.0,
        )
    with pytest.raises(InvalidInputError, match=r"\[prefill\] seconds\[0\] = 3600 s per prompt token"):
        DeviceCost(
            prefill_tokens=[1.0],
            prefill_s=[3600.0],
            decode_context=[0.0],
            decode_tpot_s=[0.02],
            kv_bytes_per_token=1.0,
        )

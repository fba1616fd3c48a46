"""Bad input at the edge of the policies and the optimizer: every setting of the wrong type or out of range
is an `InvalidInputError` naming the setting and the fix, never a traceback; a quality curve named inside a
policy setting is an input no output may replace."""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pdcore.exceptions import InvalidInputError
from pdcore.inputs import forget_inputs
from pdcore.optimize import Optimizer, catchup_k, refined_prompt_tokens, solve_catchup
from pdcore.outputs import write_text
from pdcore.policies import POLICIES, Replay, make_policy, split_policy_specs
from pdcore.profiles import load_cloud_profile, load_device_profile
from pdcore.slo import SLO

ROOT = Path(__file__).resolve().parents[1]
QUALITY = ROOT / "python/pdcore/refine/data/quality-smollm2-135m.toml"

HUGE = 10**400
"""An integer no float can hold."""

WRONG = [True, "1", None, math.nan, math.inf, -math.inf, -1, HUGE, -HUGE, [1], b"1"]
"""Values of the wrong type or out of range for a numeric setting."""

# (setting, values that are right for it); anything in WRONG not listed here must be refused
ACCEPTED: dict[str, tuple[Any, ...]] = {
    "max_tpot_s": (None,),
    "cost_weight": (None,),
    "energy_weight": (None,),
    "load_adaptive": (True, "1"),  # booleans are read strictly: "1" is true
    "quality": (None,),
    "k": (),
    "length_threshold": (),
}
NOT_NUMERIC = {"quality_bound", "k_site", "quality"}


def _numeric_settings() -> list[tuple[str, str, object]]:
    cases = []
    for name, cls in sorted(POLICIES.items()):
        for setting in inspect.signature(cls).parameters:
            if setting in NOT_NUMERIC:
                continue
            for value in WRONG:
                if any(
                    value is ok or (type(value) is type(ok) and value == ok)
                    for ok in ACCEPTED.get(setting, ())
                ):
                    continue
                cases.append((name, setting, value))
    return cases


@pytest.fixture(autouse=True)
def _fresh_inputs() -> Iterator[None]:
    forget_inputs()
    yield
    forget_inputs()


@pytest.mark.parametrize(("policy", "setting", "value"), _numeric_settings())
def test_every_numeric_setting_refuses_the_wrong_value(policy: str, setting: str, value: object) -> None:
    with pytest.raises(InvalidInputError) as info:
        POLICIES[policy](**{setting: value})
    message = str(info.value)
    assert setting in message, message
    assert "pass" in message or "fix" in message, message


@pytest.mark.parametrize("setting", ["quality_bound", "k_site"])
@pytest.mark.parametrize("value", [None, 3, True, ["ci95"], b"ci95"])
def test_word_settings_refuse_what_is_not_one_of_their_words(setting: str, value: object) -> None:
    with pytest.raises(InvalidInputError, match=setting):
        POLICIES["pd-device"](**{setting: value})


@pytest.mark.parametrize(
    "quality",
    [3, True, b"q.toml", [0.5], {0.5: HUGE}, {HUGE: 0.01}, {0.5: "x"}, {True: 0.0}, {0.5: math.nan}],
)
def test_a_quality_setting_that_is_no_curve_is_refused(quality: object) -> None:
    with pytest.raises(InvalidInputError, match="quality"):
        POLICIES["pd-device"](refine_ratio="auto", k="auto", quality=quality)


@pytest.mark.parametrize("spec", [None, 123, True, 1.5, b"pd-device", ["pd-device"], {"pd-device": 1}])
def test_make_policy_refuses_a_spec_that_is_not_text(spec: object) -> None:
    with pytest.raises(InvalidInputError, match=r"policy spec = .* is not text; fix: pass .*pd-device"):
        make_policy(spec)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match=r"policy specs = .* is not text; fix: pass"):
        split_policy_specs(spec)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "spec",
    [
        "pd-device:min_tpot_s=" + "9" * 400,
        "pd-device:max_tpot_s=" + "9" * 400,
        "pd-device:cost_weight=" + "9" * 400,
        "pd-device:quality_budget=" + "9" * 400,
        "disco:budget=" + "9" * 400,
        "router:min_bucket=" + "9" * 400,
        "pd-device:min_tpot_s=" + "9" * 5000,
        "pd-device:k=1e400",
        "spec-decode:alpha=1e400",
    ],
)
def test_huge_numbers_in_a_spec_are_refused(spec: str) -> None:
    with pytest.raises(InvalidInputError, match=spec.split(":")[1].split("=", maxsplit=1)[0]):
        make_policy(spec)


@pytest.mark.parametrize("plans", [None, 3, "cloud", [None], [1, 2]])
def test_replay_refuses_what_is_not_plans(plans: object) -> None:
    with pytest.raises(InvalidInputError, match="plans"):
        Replay(plans)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", [None, 3, b"x"])
def test_replay_refuses_a_name_that_is_not_text(name: object) -> None:
    with pytest.raises(InvalidInputError, match="name"):
        Replay([], name=name)  # type: ignore[arg-type]


# --- the optimizer ---------------------------------------------------------------------------------------

OPTIMIZER_WRONG = [
    ("prefill_replicas", "2"),
    ("prefill_replicas", True),
    ("prefill_replicas", 0),
    ("prefill_replicas", HUGE),
    ("max_k", -1),
    ("max_k", "8"),
    ("max_k", HUGE),
    ("quality_budget", HUGE),
    ("quality_budget", "0.1"),
    ("refine_ratios", [HUGE]),
    ("refine_ratios", ["0.5"]),
    ("refine_ratios", 0.5),
    ("refine_ratios", [True]),
    ("quality", {0.5: HUGE}),
    ("quality", "smollm2-135m"),
    ("cost_weight", HUGE),
    ("cost_weight", "1"),
    ("energy_weight", -1.0),
    ("load_adaptive", "maybe"),
    ("k_sites", "everywhere"),
    ("k_sites", 3),
    ("kv_link_bytes_per_s", -1.0),
    ("kv_link_bytes_per_s", "fast"),
    ("expected_output_tokens", math.nan),
    ("expected_output_tokens", "many"),
    ("device", "phone"),
    ("cloud", None),
    ("slo", 0.05),
]


@pytest.mark.parametrize(("argument", "value"), OPTIMIZER_WRONG)
def test_the_optimizer_refuses_wrong_arguments(argument: str, value: object) -> None:
    kwargs: dict[str, Any] = {
        "device": load_device_profile("llama32-3b-w4a16-8elite-genie"),
        "cloud": load_cloud_profile("llama3-8b-a100"),
        "slo": SLO(ttft_s=1.0, max_tpot_s=0.05),
    }
    kwargs[argument] = value
    with pytest.raises(InvalidInputError, match=argument):
        Optimizer(**kwargs)


def _optimizer() -> Optimizer:
    device = load_device_profile("llama32-3b-w4a16-8elite-genie")
    return Optimizer(device=device, cloud=load_cloud_profile("llama3-8b-a100"), slo=SLO())


REQUEST_WRONG = [True, "5", None, math.nan, math.inf, -1, HUGE, 2**64, [1]]


@pytest.mark.parametrize("value", REQUEST_WRONG)
@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda o, v: o.choose(v, one_way_s=0.01), "prompt_tokens"),
        (lambda o, v: o.choose(1000, one_way_s=v), "one_way_s"),
        (lambda o, v: o.choose(1000, one_way_s=0.01, device_cached_tokens=v), "device_cached_tokens"),
        (lambda o, v: o.choose(1000, one_way_s=0.01, cloud_cached_tokens=v), "cloud_cached_tokens"),
        (lambda o, v: o.choose_at(1000, v, one_way_s=0.01), "refine_ratio"),
        (lambda o, v: o.first_token_s(v, one_way_s=0.01), "prompt_tokens"),
        (lambda o, v: o.table([v], one_way_s=0.01), "prompt_tokens"),
    ],
)
def test_the_optimizer_calls_refuse_wrong_arguments(call: Any, argument: str, value: object) -> None:
    with pytest.raises(InvalidInputError, match=argument):
        call(_optimizer(), value)


def test_the_optimizer_reads_numpy_numbers() -> None:
    optimizer = _optimizer()
    from_numpy = optimizer.choose(np.int64(1000), one_way_s=np.float64(0.01))
    assert from_numpy == optimizer.choose(1000, one_way_s=0.01)
    assert optimizer.first_token_s(np.int32(1000), one_way_s=np.float32(0.01)) > 0.0


@pytest.mark.parametrize("value", REQUEST_WRONG)
@pytest.mark.parametrize(
    "argument",
    ["prompt_tokens", "first_token_s", "max_tpot_s", "refine_ratio", "cloud_tpot_s", "max_k", "device"],
)
def test_the_catch_up_refuses_wrong_arguments(argument: str, value: object) -> None:
    kwargs: dict[str, Any] = {
        "prompt_tokens": 1000,
        "device": load_device_profile("llama32-3b-w4a16-8elite-genie"),
        "first_token_s": 0.2,
        "max_tpot_s": 0.05,
        argument: value,
    }
    with pytest.raises(InvalidInputError, match=argument):
        catchup_k(**kwargs)
    with pytest.raises(InvalidInputError, match=argument):
        solve_catchup(**kwargs)
    if argument in ("prompt_tokens", "refine_ratio"):
        with pytest.raises(InvalidInputError, match=argument):
            refined_prompt_tokens(**{"prompt_tokens": 100, "refine_ratio": 0.5, argument: value})


# --- a curve named inside a policy is an input -----------------------------------------------------------


@pytest.mark.parametrize("separator", [":", ","])
def test_a_curve_named_in_a_policy_setting_cannot_be_overwritten(tmp_path: Path, separator: str) -> None:
    curve = tmp_path / "q.toml"
    text = QUALITY.read_text(encoding="utf-8")
    curve.write_text(text, encoding="utf-8")
    make_policy(f"pd-device:refine_ratio=auto{separator}quality={curve}")
    with pytest.raises(InvalidInputError, match="input"):
        write_text(curve, "overwritten\n")
    assert curve.read_text(encoding="utf-8") == text

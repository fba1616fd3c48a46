"""The old names of renamed arguments and attributes still work for one release, each with a
`DeprecationWarning` that names the new one and points at the caller's line (``docs/names.md``)."""

# mypy: disable-error-code="call-arg"
# reason: the old spellings are what these tests call; the type stubs know only the new ones

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import pdcore
from pdcore import _core
from pdcore.optimize.catchup import catchup_k
from pdcore.policies import CloudOnly, PDDevice, make_policy
from pdcore.policies.base import DEFAULT_K_SITES, check_max_tpot
from pdcore.policies.rivals import DiSCo, Router, SpecDecoding
from pdcore.profiles import load_cloud_profile, load_device_profile
from pdcore.runtime.timeline import Timeline
from pdcore.sim import metrics, result, scenario
from pdcore.slo import DEFAULT_MAX_TPOT_S, GAP_SLACK_S, within_objective

PHONE = load_device_profile("llama32-1b-q4-8elite-hexagon")
CLOUD = load_cloud_profile("llama3-8b-a100")


def old(call: Any, new: str) -> Any:
    """``call()``'s value, checking it warns once that an old name is deprecated for ``new``, from here."""
    with pytest.warns(DeprecationWarning, match=rf"use {new}") as caught:
        value = call()
    assert len(caught) == 1
    assert caught[0].filename == __file__
    return value


def test_native_keywords_keep_their_old_names() -> None:
    assert old(lambda: _core.Plan("pd", k=2, max_tpot=0.04), "max_tpot_s=") == _core.Plan(
        "pd", k=2, max_tpot_s=0.04
    )
    controller = _core.SpeedController(min_tpot_s=0.0, max_tpot_s=0.05)
    assert old(lambda: controller.max_tpot, "max_tpot_s") == 0.05
    a = np.array([0.0, 0.0])
    paced = pdcore.pace(a, handoff_at=0.2, min_tpot_s=0.0, max_tpot_s=0.1).tolist()
    assert (
        old(lambda: _core.pace(a, handoff_at=0.2, min_tpot=0.0, max_tpot_s=0.1), "min_tpot_s=").tolist()
        == paced
    )
    assert old(lambda: CLOUD.cost.prefill_decode_budget(max_tpot=0.05), "max_tpot_s=") == (
        CLOUD.cost.prefill_decode_budget(0.05)
    )
    optimizer = old(
        lambda: _core.PlanOptimizer(device=PHONE.cost, cloud=CLOUD.cost, max_tpot=0.05), "max_tpot_s="
    )
    assert optimizer.k_sites == "pool"
    assert old(lambda: _core.gap_within(0.05, 0.05), "within_objective") is True


def test_both_spellings_or_an_unknown_keyword_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="max_tpot= and max_tpot_s="):
        _core.Plan("pd", max_tpot=0.04, max_tpot_s=0.04)
    with pytest.raises(TypeError, match="unexpected keyword argument 'pace'"):
        _core.Plan("pd", pace=0.04)
    with pytest.raises(TypeError, match="missing required argument: 'max_tpot_s'"):
        _core.pace(np.zeros(2), handoff_at=0.2, min_tpot_s=0.0)
    with pytest.raises(TypeError, match="max_tpot= and max_tpot_s="):
        CloudOnly(max_tpot=0.04, max_tpot_s=0.04)


def test_python_keywords_and_attributes_keep_their_old_names() -> None:
    policy = old(lambda: PDDevice(k=3, min_tpot_s=0.01, max_tpot=0.06), "max_tpot_s=")
    assert (policy.min_tpot_s, policy.max_tpot_s) == (0.01, 0.06)
    assert old(lambda: policy.max_tpot, "max_tpot_s") == 0.06
    for cls in (CloudOnly, Router):
        assert old(lambda cls=cls: cls(max_tpot=0.04), "max_tpot_s=").max_tpot_s == 0.04
    for rival in (DiSCo, SpecDecoding):
        assert old(lambda rival=rival: rival(min_tpot=0.01), "min_tpot_s=").min_tpot_s == 0.01
    assert old(lambda: check_max_tpot(0.05, min_tpot=0.01), "min_tpot_s=") == 0.05
    assert old(lambda: catchup_k(1000, device=PHONE, first_token_s=0.2, max_tpot=0.05), "max_tpot_s=") == (
        catchup_k(1000, device=PHONE, first_token_s=0.2, max_tpot_s=0.05)
    )
    record = old(
        lambda: Timeline(mode="pd-device", prompt="p", started_at=0.0, max_tpot=0.05, min_tpot_s=0.0),
        "max_tpot_s=",
    )
    assert record.to_dict()["max_tpot"] == 0.05  # the file format keeps its key
    assert old(lambda: record.min_tpot, "min_tpot_s") == 0.0


def test_a_policy_spec_with_an_old_setting_name_still_builds() -> None:
    with pytest.warns(DeprecationWarning, match="max_tpot_s="):
        policy = make_policy("pd-device:max_tpot=0.04")
    assert policy.name == "pd-device:max_tpot=0.04"
    with pytest.raises(pdcore.InvalidInputError, match="sets max_tpot_s twice"):
        make_policy("pd-device:max_tpot=0.04:max_tpot_s=0.04")


def test_module_attributes_keep_their_old_names() -> None:
    from pdcore import slo

    within = old(lambda: slo.within, "within_objective")
    assert within([0.05, 0.06, math.nan], 0.05).tolist() == [True, False, True]
    assert old(lambda: slo.SLACK_S, "GAP_SLACK_S") == GAP_SLACK_S
    with pytest.raises(AttributeError):
        _ = slo.no_such_name


def test_the_python_constants_and_tables_are_the_native_ones() -> None:
    assert DEFAULT_MAX_TPOT_S is _core.DEFAULT_MAX_TPOT_S
    assert DEFAULT_K_SITES is _core.DEFAULT_K_SITES
    assert result.MODES is _core.MODES
    assert result.SERVED_BY is _core.SERVED_BY
    assert metrics.DECODED_AT is _core.DECODED_AT
    assert scenario.K_SITES is _core.K_SITES
    assert scenario.DEPLOYMENTS is _core.DEPLOYMENTS
    assert within_objective is _core.within_objective


def test_the_optimizer_offers_both_sites_by_default_where_a_link_prices_the_pool() -> None:
    from pdcore.optimize import Optimizer
    from pdcore.slo import SLO

    assert Optimizer(device=PHONE, cloud=CLOUD, slo=SLO()).k_sites == "pool"
    linked = Optimizer(device=PHONE, cloud=CLOUD, slo=SLO(), kv_link_bytes_per_s=25e9)
    assert linked.k_sites == DEFAULT_K_SITES == "both"
    with pytest.raises(pdcore.InvalidInputError, match="kv_link_bytes_per_s"):
        Optimizer(device=PHONE, cloud=CLOUD, slo=SLO(), k_sites="both")

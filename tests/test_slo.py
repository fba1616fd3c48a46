"""The objectives and the within-objective rule (``pdcore.slo``), and the package's import order."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from pdcore.exceptions import InvalidInputError
from pdcore.slo import DEFAULT_MAX_TPOT_S, GAP_SLACK_S, SLO, meets, slo_met, within_objective


def test_the_default_objective_is_the_default_largest_gap() -> None:
    assert SLO().max_tpot_s == DEFAULT_MAX_TPOT_S == 0.05
    assert SLO().ttft_s == 1.0


def test_a_gap_one_grain_over_the_objective_still_meets_it() -> None:
    assert meets(0.05 + GAP_SLACK_S, 0.05)
    assert not meets(0.05 + 2 * GAP_SLACK_S, 0.05)
    assert not meets(math.nan, 0.05)


def test_within_counts_an_undefined_time_as_met() -> None:
    met = within_objective([0.04, 0.05 + GAP_SLACK_S, 0.06, math.nan], 0.05)
    assert met.tolist() == [True, True, False, True]


def test_slo_met_needs_both_objectives() -> None:
    results = {
        "ttft_s": np.array([0.5, 1.5, 0.5, 0.5]),
        "tpot_s": np.array([0.04, 0.04, 0.06, math.nan]),
    }
    assert slo_met(results, SLO(ttft_s=1.0, max_tpot_s=0.05)).tolist() == [True, False, False, True]


@pytest.mark.parametrize("value", [0.0, -1.0, math.inf, math.nan, True, "0.05"])
def test_a_bad_objective_names_the_flag(value: object) -> None:
    with pytest.raises(InvalidInputError, match="--max-tpot"):
        SLO(max_tpot_s=value)  # type: ignore[arg-type]


def test_every_module_imports_first_in_a_fresh_interpreter() -> None:
    """An import circle shows as a module that fails when it is the first one imported."""
    script = textwrap.dedent(
        """
        import importlib, pkgutil, sys
        import pdcore
        names = sorted(m.name for m in pkgutil.walk_packages(pdcore.__path__, "pdcore."))
        failed = []
        for name in names:
            for loaded in [m for m in sys.modules if m.startswith("pdcore") and m != "pdcore._core"]:
                del sys.modules[loaded]
            try:
                importlib.import_module(name)
            except ModuleNotFoundError as exc:  # an optional extra (httpx, llama-cpp-python)
                if (exc.name or "").startswith("pdcore"):
                    failed.append(f"{name}: {exc}")
            except ImportError as exc:
                failed.append(f"{name}: {exc}")
        print("\\n".join(failed))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""

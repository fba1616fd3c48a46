"""Shared test configuration.

Hypothesis profiles are picked by the ``HYPOTHESIS_PROFILE`` environment variable:

- ``dev`` (default): about 100 examples per property, random seeds; for the edit-test loop.
- ``ci``: more examples, derandomized so a CI run is reproducible and never flaky.
- ``thorough``: 2000 examples per property, for a long local run before a release.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

_COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}

settings.register_profile("dev", max_examples=100, **_COMMON)
settings.register_profile("ci", max_examples=500, derandomize=True, print_blob=True, **_COMMON)
settings.register_profile("thorough", max_examples=2000, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def _preload_failure_reporting() -> None:
    """Imports libcst, if installed, with its DeprecationWarning silenced.

    Hypothesis imports libcst when it reports a failing example, and libcst subclasses the deprecated
    ``mypy_extensions.TypedDict``; under ``filterwarnings = error`` that warning would turn every failing
    property into a pytest INTERNALERROR that hides the failing example.
    """
    with warnings.catch_warnings(), contextlib.suppress(ImportError):
        warnings.simplefilter("ignore", DeprecationWarning)
        import libcst  # noqa: F401


_preload_failure_reporting()


CurveWriter = Callable[[dict[float, tuple[float, float]]], Path]


@pytest.fixture
def write_curve(tmp_path: Path) -> CurveWriter:
    """Writes a quality curve file with synthetic drops, ``{ratio: (estimate, 95% upper bound)}`` (``r = 1``
    is added with no drop), and returns its path."""
    from pdcore.refine import QualityCurve, QualityPoint

    def point(ratio: float, drop: float, high: float) -> QualityPoint:
        return QualityPoint(
            ratio=ratio,
            question_weight=2.0,
            exact_match=0.5,
            f1=0.5 - drop,
            drop=drop,
            drop_ci95=(2 * drop - high, high),
            fact_kept=1.0,
            kept_ratio=ratio,
            device_token_ratio=ratio,
            prefill_s=ratio,
            prefill_tokens=round(1000 * ratio),
            prefill_speedup=1.0 / ratio,
            prefill_runs_s=(ratio,),
            f1_by_family={"passkey": 0.5 - drop},
        )

    def write(drops: dict[float, tuple[float, float]]) -> Path:
        entries = sorted(({1.0: (0.0, 0.0)} | drops).items(), reverse=True)
        curve = QualityCurve(name="synthetic", model="-", points=tuple(point(r, *d) for r, d in entries))
        path = tmp_path / "quality-synthetic.toml"
        path.write_text(curve.to_toml(), encoding="utf-8")
        return path

    return write

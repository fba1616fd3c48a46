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

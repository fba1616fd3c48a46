"""The report's sections after the experiments of each workload (`SECTIONS`), and the worker that runs the
independent ones beside those experiments (`Beside`).

Each section is a small function of the built study (`pdcore.report.study.Study`). The optimizer's
``k*``, sizing, the latency-cost-energy trade-off, the conversations, the cost band and the fleet read
only the study's settings, scenario, devices and workloads, not what the experiments measured
(`INDEPENDENT`); the targets read the experiments' results and the refinement section a data file, so they
run after.

Our rule, for the wall time of ``pdcore reproduce`` on a small machine: while the experiments' sweep runs on
its pool, the independent sections run in one more process (started with ``spawn``, as the sweep's), so
that their serial searches fill the cores the sweep leaves idle; their progress is relayed to the caller's
callback through a queue. Every section is a deterministic function of the pickled study, so the numbers are
those an in-process run gives; with the ``serial`` executor they run in turn, in this process.
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import replace
from typing import Any

from pdcore.report import refinement
from pdcore.report.conversations import conversations_section
from pdcore.report.cost_band import cost_band_section
from pdcore.report.fleet_study import fleet_study_section
from pdcore.report.optimizer import optimizer_section
from pdcore.report.sizing import sizing_section
from pdcore.report.study import FASTER_DEVICE, POLICIES, Study
from pdcore.report.targets import targets_section
from pdcore.report.tradeoff import tradeoff_section

__all__ = ["INDEPENDENT", "SECTIONS", "Beside", "Section"]

Section = Callable[[Study], dict[str, Any] | None]


def _optimizer(study: Study) -> dict[str, Any]:
    study.stage("optimizer", 0, 1)
    found = optimizer_section(study.settings, study.scenario, study.devices)
    study.stage("optimizer", 1, 1)
    return found


def _sizing(study: Study) -> dict[str, Any]:
    settings = study.settings
    devices = {settings.device: study.scenario.device, FASTER_DEVICE: study.devices[FASTER_DEVICE]}
    return sizing_section(
        study.workloads(),
        study.scenario,
        devices=devices,
        seed=settings.seed,
        window=settings.window,
        target=settings.target,
        quick=settings.quick,
        refine_ratio=settings.refine_ratio,
        progress=study.progress,
    )


def _tradeoff(study: Study) -> dict[str, Any]:
    settings = study.settings
    return tradeoff_section(
        study.workloads(), study.scenario, seed=settings.seed, quick=settings.quick, progress=study.progress
    )


def _conversations(study: Study) -> dict[str, Any]:
    settings = study.settings
    return conversations_section(
        study.workloads(), study.scenario, seed=settings.seed, quick=settings.quick, progress=study.progress
    )


def _cost_band(study: Study) -> dict[str, Any]:
    """The headline figures with each cost term moved, on the capacity window of the embedded default."""
    settings = study.settings
    return cost_band_section(
        study.runs[0].workload,
        study.scenario,
        seed=settings.seed,
        target=settings.target,
        requests=settings.window,
        progress=study.progress,
    )


def _fleet(study: Study) -> dict[str, Any] | None:
    """Results by device class and the capable-share sweep over ``--fleet`` (None without one)."""
    settings = study.settings
    if study.fleet is None or settings.fleet is None:
        return None
    return fleet_study_section(
        study.runs[0].workload,
        study.scenario,
        study.fleet,
        fleet_name=settings.fleet,
        settings=settings,
        policies=POLICIES,
        progress=study.progress,
    )


def _targets(study: Study) -> dict[str, Any]:
    """The targets, on the Azure conversation trace if given, else on its stand-in, the default."""
    primary, stand_in = study.runs[0], True
    for run in study.runs[1:]:
        name = run.workload.name.lower()
        if "azure" in name and "conv" in name:
            primary, stand_in = run, False
            break
    return targets_section(primary, study.settings, stand_in=stand_in)


def _refinement(study: Study) -> dict[str, Any] | None:
    if study.curve is None:
        return None
    return refinement.section(study.curve, ratio=study.settings.refine_ratio)


SECTIONS: tuple[tuple[str, Section], ...] = (
    ("optimizer", _optimizer),
    ("sizing", _sizing),
    ("tradeoff", _tradeoff),
    ("conversations", _conversations),
    ("cost_band", _cost_band),
    ("fleet", _fleet),
    ("targets", _targets),
    ("refinement", _refinement),
)
"""The report's sections after the experiments of each workload, in the order of ``results.json``: the key
of each and the function that computes it from the built study (None leaves it out)."""

INDEPENDENT = ("sizing", "tradeoff", "conversations", "cost_band", "fleet", "optimizer")
"""The sections that need nothing the experiments measure, longest first: they run beside the experiments."""

_RELAY: Any = None
"""The worker's end of the progress queue (set by `_start_worker`, in the worker process only)."""


def _start_worker(relay: Any) -> None:
    global _RELAY  # noqa: PLW0603  # the queue of this worker process, given once at its start
    _RELAY = relay


def _relay(stage: str, done: int, total: int) -> None:
    _RELAY.put((stage, done, total))


def _run_section(name: str, study: Study) -> dict[str, Any] | None:
    """One section, in the worker process, its progress relayed to the caller's."""
    return dict(SECTIONS)[name](replace(study, progress=_relay))


class Beside:
    """The independent sections of one study, run beside its experiments (module docstring).

    `Beside.start` submits them; `Beside.results` waits for them and returns every section of `SECTIONS`
    in order, computing the dependent ones in this process.
    """

    def __init__(self, study: Study, *, concurrent: bool) -> None:
        """``concurrent``: run the independent sections in a worker process (else in turn, here, later)."""
        self.study = study
        self.concurrent = concurrent
        self._pool: ProcessPoolExecutor | None = None
        self._futures: dict[str, Future[dict[str, Any] | None]] = {}
        self._queue: Any = None
        self._drain: threading.Thread | None = None

    def start(self) -> None:
        """Starts the independent sections in the worker (nothing to do when not concurrent)."""
        if not self.concurrent:
            return
        context = multiprocessing.get_context("spawn")
        self._queue = context.Queue()
        self._pool = ProcessPoolExecutor(
            max_workers=1, mp_context=context, initializer=_start_worker, initargs=(self._queue,)
        )
        shipped = replace(self.study, progress=None)
        self._futures = {name: self._pool.submit(_run_section, name, shipped) for name in INDEPENDENT}
        self._drain = threading.Thread(target=self._forward, name="section progress", daemon=True)
        self._drain.start()

    def _forward(self) -> None:
        """Hands the worker's progress to the study's callback until told to stop (a None)."""
        while True:
            try:
                item = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            if item is None:
                return
            self.study.stage(*item)

    def independent(self) -> dict[str, dict[str, Any] | None]:
        """The independent sections by key (waiting for the worker, or computing them here in turn)."""
        if not self.concurrent:
            sections = dict(SECTIONS)
            return {name: sections[name](self.study) for name in INDEPENDENT}
        try:
            return {name: future.result() for name, future in self._futures.items()}
        finally:
            self.close()

    def results(self) -> dict[str, dict[str, Any]]:
        """Every section by key, in the order of `SECTIONS` (sections that return None left out); call it
        once the experiments have filled the study's runs."""
        found = self.independent()
        out: dict[str, dict[str, Any]] = {}
        for key, section in SECTIONS:
            value = found[key] if key in found else section(self.study)
            if value is not None:
                out[key] = value
        return out

    def close(self) -> None:
        """Stops the worker and the progress relay (pending sections are cancelled)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._drain is not None:
            self._queue.put(None)
            self._drain.join()
            self._drain = None

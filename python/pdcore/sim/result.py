"""What a run yields: `SimResult` (the per-request results, the run's report, the per-request table as CSV
or Parquet) and the token timelines a run records (`timeline_records`).

The code-to-name tables read the simulator's integer columns: `MODES` (a plan's mode), `SERVED_BY` (who
displayed a request's tokens) and `pdcore.sim.metrics.DECODED_AT` (where its ``k`` tokens were decoded).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from pdcore import _core
from pdcore._core import Simulator
from pdcore.exceptions import InvalidInputError
from pdcore.fleet import Fleet
from pdcore.outputs import atomic_path, open_text
from pdcore.sim.accounting import BILL_COLUMNS
from pdcore.sim.conversations import DEVICE_BUSY
from pdcore.sim.fleet_runs import by_class, fleet_slo_met
from pdcore.sim.metrics import DECODED_AT, aggregate, per_turn
from pdcore.sim.overload import Overload, overload
from pdcore.slo import SLO, slo_met
from pdcore.traces.workload import Workload

__all__ = ["CSV_CHUNK_ROWS", "MODES", "SERVED_BY", "SimResult", "timeline_records"]

MODES: tuple[str, ...] = _core.MODES
"""Plan modes, indexed by the simulator's ``mode`` result (`pdcore._core.MODES`)."""

SERVED_BY: tuple[str, ...] = _core.SERVED_BY
"""Who displayed a request's tokens, indexed by the simulator's ``served_by`` result
(`pdcore._core.SERVED_BY`)."""

_RESULT_COLUMNS = (
    "ttft_s",
    "tpot_s",
    "max_gap_s",
    "e2e_s",
    "handoff_gap_s",
    "handoff_stall_s",
    "handoff_pos",
    "qoe",
    "cloud_ttft_s",
    "cloud_tpot_s",
    "cloud_prefill_gpu_s",
    "cloud_decode_gpu_s",
    "cloud_decode_tokens",
    "cloud_tokens_kept",
    "cloud_tokens_discarded",
    "device_prefill_tokens",
    "device_decode_tokens",
    "displayed_tokens",
    "finish_s",
    "refine_ratio",
    "bytes_up",
    "bytes_down",
    "radio_s",
    *BILL_COLUMNS,
)

FloatArray = npt.NDArray[np.float64]


CSV_CHUNK_ROWS = 65536
"""Rows `SimResult.to_csv` formats at a time."""


def _csv_cells(values: npt.NDArray[Any]) -> npt.NDArray[np.str_]:
    """One column's CSV cells: booleans as true/false, floats to 9 significant digits, NaN as empty."""
    if values.dtype == object:
        return values.astype(str)
    if values.dtype == np.bool_:
        return np.where(values, "true", "false")
    if np.issubdtype(values.dtype, np.integer):
        return values.astype(str)
    text = np.char.mod("%.9g", values)
    return np.where(np.isfinite(values), text, "")


@dataclass(frozen=True, eq=False)
class SimResult:
    """The outcome of one run.

    Attributes:
        policy: The policy's name.
        workload: The requests simulated.
        one_way_s: The per-request one-way delays used.
        results: ``Simulator.results()``: one array per metric, one entry per request, plus
            ``refine_ratio``, the kept fraction of the prompt each request's plan gave the device, and
            the bill (`pdcore.sim.accounting.BILL_COLUMNS`).
        summary: ``Simulator.summary()``: run counters and the inter-token latency distribution.
        slo: The objectives the attainment figures use (with a fleet, each class's own where it gives
            them: `pdcore.sim.fleet_runs.class_slo`).
        seed: The seed of the network delays.
        device_class: Each request's class in ``fleet``; None without a fleet.
        fleet: The fleet the requests came from, or None.
    """

    policy: str
    workload: Workload
    one_way_s: FloatArray
    results: Mapping[str, npt.NDArray[Any]]
    summary: Mapping[str, float]
    slo: SLO
    seed: int
    device_class: npt.NDArray[np.int64] | None = None
    fleet: Fleet | None = None

    @property
    def duration_s(self) -> float:
        """From the first arrival to the last displayed token, seconds."""
        finish = np.asarray(self.results["finish_s"], dtype=np.float64)
        return float(np.nanmax(finish)) if np.isfinite(finish).any() else 0.0

    def slo_met(self) -> npt.NDArray[np.bool_]:
        """Per request: whether both the TTFT and the TPOT objective (its class's, with a fleet) were met."""
        if self.fleet is not None and self.device_class is not None:
            return fleet_slo_met(self.results, self.fleet, self.device_class, self.slo)
        return slo_met(self.results, self.slo)

    def overload(self) -> Overload:
        """Whether the run's delays grew without bound over its arrivals (`pdcore.sim.overload`)."""
        return overload(self.workload.arrival_s, self.results, self.slo.ttft_s)

    def aggregate(self) -> dict[str, Any]:
        """The report of this run (``docs/schema.md``, one entry of ``policies``), with ``overloaded``,
        ``delay_growth`` and ``overload_site`` (`overload`); a multi-turn workload's adds ``per_turn``
        (`pdcore.sim.metrics.per_turn`); a fleet's adds ``by_class`` (`pdcore.sim.fleet_runs.by_class`)."""
        report = aggregate(
            self.results, self.summary, slo=self.slo, duration_s=self.duration_s, met=self.slo_met()
        )
        if self.fleet is not None and self.device_class is not None:
            report["by_class"] = by_class(self.results, self.fleet, self.device_class, self.slo)
        found = self.overload()
        report["overloaded"] = found.overloaded
        report["delay_growth"] = found.growth
        report["overload_site"] = found.site
        if self.workload.multi_turn:
            report["per_turn"] = per_turn(self.results, self.workload.turn)
        return report

    def columns(self) -> dict[str, npt.NDArray[Any]]:
        """Per-request table: the inputs, then every result; ``mode``, ``served_by`` and ``k_site`` as
        names; a run that serves one answer per device adds ``device_busy`` (as a name,
        `pdcore.sim.conversations.DEVICE_BUSY`) and ``device_wait_s``."""
        modes = np.asarray((*MODES, "none"), dtype=object)
        mode_index = np.minimum(np.asarray(self.results["mode"], dtype=np.int64), len(MODES))
        served = np.asarray(SERVED_BY, dtype=object)
        decoded_at = np.asarray(DECODED_AT, dtype=object)
        table: dict[str, npt.NDArray[Any]] = {
            "request": np.arange(len(self.workload), dtype=np.int64),
            "arrival_s": self.workload.arrival_s,
            "prompt_tokens": self.workload.prompt_tokens,
            "output_tokens": self.workload.output_tokens,
            "one_way_s": self.one_way_s,
            "mode": modes[mode_index],
            "served_by": served[np.asarray(self.results["served_by"], dtype=np.int64)],
            "k_site": decoded_at[np.asarray(self.results["k_site"], dtype=np.int64)],
        }
        for name in _RESULT_COLUMNS:
            table[name] = np.asarray(self.results[name])
        table["slo_met"] = self.slo_met()
        table["session"] = self.workload.session
        table["turn"] = self.workload.turn
        for name in ("device_cached_tokens", "cloud_cached_tokens"):
            table[name] = np.asarray(self.results[name])
        if "device_busy" in self.results:
            busy = np.asarray(DEVICE_BUSY, dtype=object)
            table["device_busy"] = busy[np.asarray(self.results["device_busy"], dtype=np.int64)]
            table["device_wait_s"] = np.asarray(self.results["device_wait_s"])
        return table

    def to_csv(self, path: str | Path) -> None:
        """Writes `columns` as CSV: a header, one row per request, empty cells for undefined values.

        Rows are formatted and written in chunks of `CSV_CHUNK_ROWS`, so memory beyond the result itself
        stays bounded, and the file appears whole or not at all (`pdcore.outputs.open_text`).
        """
        table = self.columns()
        with open_text(path) as handle:
            handle.write(",".join(table) + "\n")
            for start in range(0, len(self.workload), CSV_CHUNK_ROWS):
                cells = [_csv_cells(values[start : start + CSV_CHUNK_ROWS]) for values in table.values()]
                handle.write("\n".join(",".join(row) for row in zip(*cells, strict=True)))
                handle.write("\n")

    def to_parquet(self, path: str | Path) -> None:
        """Writes `columns` as Parquet (needs ``pyarrow``).

        Raises:
            InvalidInputError: ``pyarrow`` is not installed.
        """
        try:
            pa: Any = importlib.import_module("pyarrow")
            pq: Any = importlib.import_module("pyarrow.parquet")
        except ImportError:
            raise InvalidInputError(
                f"cannot write {str(path)!r}: Parquet output needs pyarrow; fix: `pip install pyarrow`, "
                "or write .csv instead"
            ) from None
        table = self.columns()
        arrays = {
            name: pa.array(values.tolist() if values.dtype == object else values)
            for name, values in table.items()
        }
        with atomic_path(path) as temporary:
            pq.write_table(pa.table(arrays), str(temporary))


def timeline_records(
    simulator: Simulator,
    workload: Workload,
    delays: FloatArray,
    requests: Sequence[int],
    plans: Mapping[int, tuple[str, int]],
) -> dict[int, dict[str, Any]]:
    """The recorded timelines of ``requests`` after a run (`pdcore.sim.Scenario.record_timelines`), each
    with its request's inputs and its plan's ``mode`` and ``k``, times in seconds from its arrival."""
    out: dict[int, dict[str, Any]] = {}
    for request in requests:
        recorded = simulator.timeline(request)
        if recorded is None:  # pragma: no cover - every request in range was recorded
            raise InvalidInputError(f"request {request} recorded no timeline; fix: pick a request in range")
        start = float(workload.arrival_s[request])
        handoff = recorded.get("handoff_s")
        mode, k = plans.get(request, ("", -1))
        out[request] = {
            "request": request,
            "arrival_s": start,
            "prompt_tokens": int(workload.prompt_tokens[request]),
            "output_tokens": int(workload.output_tokens[request]),
            "one_way_s": float(delays[request]),
            "mode": mode,
            "k": k,
            "cloud_arrivals_s": np.asarray(recorded["cloud_arrivals_s"], dtype=np.float64) - start,
            "displays_s": np.asarray(recorded["displays_s"], dtype=np.float64) - start,
            "from_cloud": np.asarray(recorded["from_cloud"], dtype=np.bool_),
            "handoff_s": None if handoff is None else float(handoff) - start,
            "handoff_estimates": np.column_stack(
                (recorded["handoff_estimates_at_s"] - start, recorded["handoff_estimates_s"] - start)
            ).reshape(-1, 2),
        }
    return out

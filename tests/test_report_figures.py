"""``report.html``'s figures on the axes of ``report.md``'s PNGs: for every figure that has both, the PNG
(matplotlib, drawn off-screen) and the page's plotly figure are built from the same numbers here, and
their axis scales, series colours and colour scales are compared from the figures' own data."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

pytest.importorskip("matplotlib", reason="the PNG figures need matplotlib (plot extra)")

from matplotlib.axes import Axes
from matplotlib.colors import LogNorm, to_hex
from matplotlib.figure import Figure

from pdcore.report.experiments import POLICIES
from pdcore.report.figures import (
    capacity_figure,
    k_star_figure,
    sensitivity_figure,
    sizing_figure,
    tradeoff_figure,
    ttft_figure,
)
from pdcore.report.plots.sections import draw_k_star, draw_sizing, draw_tradeoff
from pdcore.report.plots.workload import draw_capacity_over_slo, draw_sensitivity, draw_ttft_cdf

PLOTLY_TYPE = {"linear": "linear", "log": "log", "symlog": "log"}
"""The plotly axis type that stands for a matplotlib scale (plotly has no symmetric log: the page draws
``k* + 1`` on a log axis instead)."""


def _found(rps: float) -> dict[str, Any]:
    return {"bound": "found", "rps": rps, "max_rps_tried": 1000.0, "min_rps_tried": 0.01}


def _cuts(device: float, cloud: float) -> dict[str, Any]:
    return {"ttft_cut_vs_device_only": {"p50": device}, "ttft_cut_vs_cloud_only": {"p50": cloud}}


def fake_run() -> Any:
    """A workload run with just what the workload figures read."""
    rng = np.random.default_rng(5)
    ttft = {policy: rng.lognormal(-1.0, 0.6, size=50) for policy in POLICIES}
    slo_sweep = [
        {
            "max_tpot_s": tpot,
            "cloud-only": {"capacity": _found(9.0 * tpot / 0.05), "decode_capacity": _found(70.0)},
            "pd-device": {
                "capacity": _found(11.0 * tpot / 0.05),
                "decode_capacity": {"bound": "above_max", "max_rps_tried": 500.0},
            },
        }
        for tpot in (0.03, 0.05, 0.1)
    ]
    rtt_sweep = [
        {"rtt_s": rtt, "cloud_decode_tokens_per_request": 10 + 100 * rtt} | _cuts(0.8 - rtt, 0.1)
        for rtt in (0.001, 0.05, 0.2)
    ]
    device_sweep = [
        {"device": name, "prefill_1k_s": speed, "cloud_decode_tokens_per_request": 50 * speed}
        | _cuts(0.6, 0.1 * speed)
        for name, speed in (("phone", 0.3), ("laptop", 1.2), ("cpu", 9.0))
    ]
    return SimpleNamespace(
        key="w",
        sections={
            "workload": {"rate_rps": 4.8},
            "under_load": {"rate_rps": 9.4, "requests": 50},
            "slo_sweep": slo_sweep,
            "rtt_sweep": rtt_sweep,
            "device_sweep": device_sweep,
        },
        ttft_s={"trace_rate": ttft, "under_load": ttft},
        timelines={},
    )


OPTIMIZER = {
    "one_way_s": 0.01,
    "k_star": {
        # a phone's k* stays near 0, a CPU's runs into the thousands: a linear axis flattens the phone
        "phone": [
            {"prompt_tokens": 64, "k": 0, "mode": "device", "converged": True},
            {"prompt_tokens": 256, "k": 3, "mode": "pd", "converged": True},
            {"prompt_tokens": 1024, "k": 13, "mode": "pd", "converged": True},
            {"prompt_tokens": 4096, "k": 61, "mode": "pd", "converged": False},
        ],
        "cpu": [
            {"prompt_tokens": 64, "k": 11, "mode": "pd", "converged": True},
            {"prompt_tokens": 256, "k": 58, "mode": "pd", "converged": True},
            {"prompt_tokens": 1024, "k": 311, "mode": "pd", "converged": True},
            {"prompt_tokens": 4096, "k": 1397, "mode": "pd", "converged": True},
        ],
    },
}

SIZING = {
    "target": 0.9,
    "curves": {
        key: {
            variant: [{"rate_rps": rate, "gpus": gpus} for rate, gpus in ((1.2, 2), (4.7, 4), (9.4, None))]
            for variant in ("cloud-only", "pd-device", "pd-device, decode pool only")
        }
        for key in ("azure", "long-answer")
    },
}


def _point(label: str, usd: float, ttft: float, mj: float | None, weight: float = 0.0) -> dict[str, Any]:
    return {
        "label": label,
        "usd_per_1k_requests": usd,
        "ttft_p50_s": ttft,
        "device_mj_per_request": mj,
        "battery_pct_per_request": 0.01,
        "slo_attainment": 0.95,
        "cost_weight": weight,
        "energy_weight": 0.0,
    }


TRADEOFF = {
    "points": {
        # energies spanning two decades, different in each panel: one colour scale must span both
        "azure": [
            _point("cloud-only", 0.19, 0.15, 1746.0),
            _point("device-only", 0.0, 0.75, 15016.0),
            _point("pd-device", 0.14, 0.15, 13883.0),
            _point("pd-device, cost weight 10", 0.11, 0.33, 14109.0, weight=10.0),
        ],
        "long-answer": [
            _point("cloud-only", 0.5, 0.2, 3000.0),
            _point("kv-transfer", 0.05, 0.2, 188719.0),
        ],
    }
}


def _scale(ax: Axes, which: str) -> str:
    return PLOTLY_TYPE[ax.get_xscale() if which == "x" else ax.get_yscale()]


def _plotly_type(layout: dict[str, Any], name: str) -> str:
    return str(layout[name].get("type", "linear"))


def assert_same_axes(png: Figure, page: dict[str, Any], panels: list[str]) -> None:
    """Each PNG panel (in drawing order) has the scales of the page's axes of suffix ``panels[i]``."""
    for ax, suffix in zip(png.axes, panels, strict=False):
        for which in ("x", "y"):
            name = f"{which}axis{suffix}"
            assert _plotly_type(page["layout"], name) == _scale(ax, which), (name, ax.get_title())


def test_ttft_cdfs_share_the_log_time_axis() -> None:
    run = fake_run()
    page = ttft_figure(run)
    assert_same_axes(draw_ttft_cdf(run), page, ["", "2"])
    assert page["layout"]["xaxis"]["type"] == "log"


def test_capacity_is_on_a_log_axis_in_both() -> None:
    run = fake_run()
    page = capacity_figure(run)
    assert_same_axes(draw_capacity_over_slo(run), page, ["", "2"])
    assert page["layout"]["yaxis2"]["type"] == "log"


def test_sensitivity_panels_share_scales_and_colours() -> None:
    run = fake_run()
    png = draw_sensitivity(run, {"wifi": 0.02})
    page = sensitivity_figure(run, {"wifi": 0.02})
    assert_same_axes(png, page, ["", "2", "3", "4"])
    assert page["layout"]["xaxis3"]["type"] == "log"
    rtt_cut, _, dev_cut, _ = png.axes
    for ax, xaxis in ((rtt_cut, "x"), (dev_cut, "x3")):
        labelled = [line for line in ax.get_lines() if not line.get_label().startswith("_")]
        drawn = [to_hex(line.get_color()) for line in labelled]  # not the presets' lines
        shown = [trace["marker" if "marker" in trace else "line"]["color"] for trace in page["data"]]
        on_axis = [
            colour for colour, t in zip(shown, page["data"], strict=True) if t.get("xaxis", "x") == xaxis
        ]
        assert on_axis == drawn


def test_k_star_is_log_in_both_and_the_phone_is_not_flattened() -> None:
    png = draw_k_star(OPTIMIZER, 0.05)
    page = k_star_figure(OPTIMIZER)
    assert_same_axes(png, page, [""])
    layout = page["layout"]
    assert layout["xaxis"]["type"] == "log"
    assert layout["yaxis"]["type"] == "log"
    # k* + 1 on the log axis, labelled in k*: k* = 0 sits at the bottom tick, labelled 0
    phone = page["data"][0]
    assert phone["y"] == [1, 4, 14, 62]
    assert phone["customdata"] == [0, 3, 13, 61]
    assert layout["yaxis"]["ticktext"][:3] == ["0", "1", "10"]
    assert layout["yaxis"]["tickvals"][:3] == [1, 2, 11]
    # the phone's curve spans most of the height the CPU's does (on a linear axis: under 5%)
    spans = [math.log10(max(trace["y"])) - math.log10(min(trace["y"])) for trace in page["data"]]
    assert spans[0] > 0.5 * spans[1]
    # prompt ticks at the powers of two, as matplotlib's base-2 axis puts them
    assert layout["xaxis"]["tickvals"] == [64, 128, 256, 512, 1024, 2048, 4096]
    # the same colour per device profile, and the PNG's markers
    drawn = {text.get_text(): to_hex(line.get_color()) for line, text in _legend(png.axes[0])}
    assert {trace["name"]: trace["line"]["color"] for trace in page["data"]} == drawn
    assert phone["marker"]["symbol"] == ["circle-open", "circle", "circle", "x"]


def _legend(ax: Axes) -> list[Any]:
    legend = ax.get_legend()
    return list(zip(legend.get_lines(), legend.get_texts(), strict=True))


def test_sizing_rate_axis_is_log_with_the_pngs_colours() -> None:
    png = draw_sizing(SIZING)
    page = sizing_figure(SIZING)
    assert_same_axes(png, page, ["", "2"])
    assert page["layout"]["xaxis2"]["type"] == "log"
    drawn = [to_hex(line.get_color()) for line in png.axes[0].get_lines()]
    assert [trace["line"]["color"] for trace in page["data"] if trace["xaxis"] == "x"] == drawn


def test_tradeoff_colours_on_one_log_scale() -> None:
    png = draw_tradeoff(TRADEOFF)
    page = tradeoff_figure(TRADEOFF)
    panels = [ax for ax in png.axes if ax.get_label() != "<colorbar>"]
    for ax, suffix in zip(panels, ("", "2"), strict=True):
        for which in ("x", "y"):
            assert _scale(ax, which) == _plotly_type(page["layout"], f"{which}axis{suffix}") == "linear"
    norm = png.axes[0].collections[0].norm
    assert isinstance(norm, LogNorm)
    marker = page["data"][0]["marker"]
    assert marker["colorscale"] == "Viridis"
    assert png.axes[0].collections[0].get_cmap().name == "viridis"
    # one log range for both panels: the page colours log10(mJ) from log10(vmin) to log10(vmax)
    assert marker["cmin"] == pytest.approx(math.log10(norm.vmin))
    assert marker["cmax"] == pytest.approx(math.log10(norm.vmax))
    assert page["data"][1]["marker"]["cmin"] == marker["cmin"]
    assert page["data"][1]["marker"]["cmax"] == marker["cmax"]
    # so every point sits at the same place on the colour scale in both figures
    for trace, rows in zip(page["data"], TRADEOFF["points"].values(), strict=True):
        for value, row in zip(trace["marker"]["color"], rows, strict=True):
            share = (value - marker["cmin"]) / (marker["cmax"] - marker["cmin"])
            assert share == pytest.approx(float(norm(row["device_mj_per_request"])))
    # the colour bar is labelled in mJ, not in log10(mJ)
    ticks = marker["colorbar"]["ticktext"]
    assert ticks[0] == "2,000"
    assert "100,000" in ticks


def test_a_point_without_device_energy_has_no_colour_value() -> None:
    section = {"points": {"w": [_point("cloud-only", 0.2, 0.1, None), _point("pd-device", 0.1, 0.1, 500.0)]}}
    marker = tradeoff_figure(section)["data"][0]["marker"]
    assert marker["color"] == [None, pytest.approx(math.log10(500.0))]

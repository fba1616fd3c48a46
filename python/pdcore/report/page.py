"""One self-contained interactive HTML page: plotly.js inlined, the data as JSON, a small script.

`report.html` (`pdcore.report.html`) and ``pdcore view`` (`pdcore.report.view`) both go through `page`.
The page makes no network request: plotly.js comes from the ``plotly`` package (the ``plot`` extra) and
is written into the file, and every number the figures draw sits in one ``application/json`` script
element that the page's own script reads.

What the page's script does, from that JSON (``figures``, ``explorers``):

- every ``figures`` entry is a plotly figure (``data`` and ``layout``) drawn into the element of the same
  id; the policy check boxes of a ``.policy-toggles`` bar hide or show the traces whose ``legendgroup``
  is that policy in every figure of the page;
- every ``explorers`` entry drives the ``.explorer`` section of the same id: a filter (a named list of
  request ids), a request picker, an id box, and one column per policy (or per live/predicted side) of
  three zoomable rows sharing the time axis: token positions (cloud arrivals, displayed tokens by
  source, the hand-off), display gaps against the gap objective, and the hand-off estimate as it was
  revised.

A timeline, as the explorer reads it: ``displays_s`` (display times from the request's arrival, in
output order), ``from_cloud`` (0/1 per displayed token), ``cloud_arrivals_s``, ``handoff_s`` (or null),
``estimates`` (``[at_s, estimate_s]`` pairs), ``max_tpot_s`` and a ``title``.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from pdcore.escaping import html_text, script_json
from pdcore.exceptions import InvalidInputError

__all__ = ["compact_timeline", "escape", "explorer_html", "page", "plotly_script", "rounded"]

MISSING = (
    "the interactive HTML page embeds plotly.js from the plotly package, which is not installed; "
    "fix: `pip install 'pdcore[plot]'`"
)


def plotly_script() -> str:
    """The plotly.js bundle shipped with the ``plotly`` package.

    Raises:
        InvalidInputError: plotly is not installed.
    """
    try:
        offline = importlib.import_module("plotly.offline")
    except ImportError as exc:
        raise InvalidInputError(MISSING) from exc
    script = offline.get_plotlyjs()
    if not isinstance(script, str):  # pragma: no cover - the package's own contract
        raise InvalidInputError(MISSING)
    return script


escape = html_text
"""Text made safe for HTML (`pdcore.escaping.html_text`, kept under its old name)."""


def rounded(value: Any, digits: int = 6) -> Any:
    """A JSON-ready copy with floats rounded (non-finite floats become null)."""
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return round(number, digits) if math.isfinite(number) else None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, np.ndarray):
        return rounded(value.tolist(), digits)
    if isinstance(value, Mapping):
        return {str(key): rounded(item, digits) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(item, digits) for item in value]
    return value


def compact_timeline(
    *,
    displays_s: Sequence[float] | npt.NDArray[np.float64],
    from_cloud: Sequence[bool] | npt.NDArray[np.bool_],
    cloud_arrivals_s: Sequence[float] | npt.NDArray[np.float64],
    handoff_s: float | None,
    estimates: Sequence[tuple[float, float]] | npt.NDArray[np.float64],
    max_tpot_s: float,
    title: str,
) -> dict[str, Any]:
    """A timeline as the explorer reads it (module docstring), times rounded to the microsecond."""
    return {
        "title": title,
        "displays_s": rounded(np.asarray(displays_s, dtype=np.float64)),
        "from_cloud": [int(flag) for flag in np.asarray(from_cloud, dtype=np.bool_)],
        "cloud_arrivals_s": rounded(np.asarray(cloud_arrivals_s, dtype=np.float64)),
        "handoff_s": rounded(handoff_s),
        "estimates": rounded([[float(at), float(value)] for at, value in estimates]),
        "max_tpot_s": rounded(max_tpot_s),
    }


_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1240px;
       padding: 0 1.2em 3em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; } h3 { margin-top: 1.5em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.88em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.55em; }
th { background: #f4f4f4; }
code { background: #f4f4f4; padding: 0 0.2em; border-radius: 3px; }
pre { background: #f4f4f4; padding: 0.6em 0.8em; border-radius: 3px; overflow-x: auto; }
pre code { padding: 0; }
.figure { width: 100%; min-height: 420px; }
.policy-toggles, .controls { margin: 0.6em 0; font-size: 0.9em; }
.policy-toggles label { margin-right: 1em; white-space: nowrap; }
.controls label { margin-right: 1.2em; }
.explorer { border: 1px solid #ddd; border-radius: 6px; padding: 0.6em 1em; margin: 1em 0; }
.explorer .ex-plot { width: 100%; height: 760px; }
.explorer .ex-note { color: #555; font-size: 0.9em; }
.note { color: #555; font-size: 0.9em; }
img { max-width: 100%; }
"""

_SCRIPT = r"""
(function () {
  "use strict";
  var DATA = JSON.parse(document.getElementById("pdcore-data").textContent);
  var CONFIG = {responsive: true, displaylogo: false};
  var BLUE = "#1f77b4", RED = "#d62728", GREY = "#555555";

  function draw(id, figure) {
    var element = document.getElementById(id);
    if (element) { Plotly.newPlot(element, figure.data, figure.layout, CONFIG); }
  }
  Object.keys(DATA.figures || {}).forEach(function (id) { draw(id, DATA.figures[id]); });

  function togglePolicy(policy, shown) {
    Object.keys(DATA.figures || {}).forEach(function (id) {
      var element = document.getElementById(id);
      if (!element || !element.data) { return; }
      var indices = [];
      element.data.forEach(function (trace, index) {
        if (trace.legendgroup === policy) { indices.push(index); }
      });
      if (indices.length) { Plotly.restyle(element, {visible: shown ? true : "legendonly"}, indices); }
    });
  }
  document.querySelectorAll(".policy-toggles input").forEach(function (box) {
    box.addEventListener("change", function () { togglePolicy(box.value, box.checked); });
  });

  // plotly reads its labels as HTML-like markup: user text is escaped as pdcore.escaping.html_text does
  var PLAIN = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&#34;", "'": "&#39;", "%": "&#37;"};
  function plain(text) {
    return String(text).replace(/[&<>"'%]/g, function (c) { return PLAIN[c]; });
  }

  function diffs(values) {
    var out = [];
    for (var i = 1; i < values.length; i++) { out.push((values[i] - values[i - 1]) * 1000); }
    return out;
  }

  function zoomEnd(tl) {
    var d = tl.displays_s;
    if (!d.length) { return 1; }
    var end = tl.handoff_s !== null ? tl.handoff_s + Math.max(0.5, 0.6 * tl.handoff_s)
                                    : d[Math.min(d.length, 40) - 1] * 1.05;
    return Math.min(end, d[d.length - 1] * 1.02 + 0.01);
  }

  function timelineFigure(columns) {
    var names = Object.keys(columns), n = Math.max(names.length, 1), data = [], shapes = [];
    var layout = {height: 760, margin: {t: 70, l: 70, r: 20, b: 90}, hovermode: "closest",
                  legend: {orientation: "h", y: -0.09}, annotations: [], shapes: shapes};
    var rows = [[0.44, 1.0], [0.22, 0.38], [0.0, 0.16]];
    var rowTitles = ["token position", "display gap (ms)", "hand-off estimate (s)"];
    // one time axis for every column: the same request (or live and predicted) compared at a glance
    var end = 0.01;
    names.forEach(function (name) { end = Math.max(end, zoomEnd(columns[name])); });
    names.forEach(function (name, c) {
      var tl = columns[name], label = plain(name);
      var pad = 0.03, x0 = c / n + (c ? pad : 0), x1 = (c + 1) / n - pad;
      var first = c * 3 + 1;
      var fromCloud = tl.from_cloud, disp = tl.displays_s;
      var cloudX = [], cloudY = [], devX = [], devY = [];
      disp.forEach(function (t, i) {
        if (fromCloud[i]) { cloudX.push(t); cloudY.push(i); } else { devX.push(t); devY.push(i); }
      });
      rows.forEach(function (domain, r) {
        var k = first + r, xa = "xaxis" + (k === 1 ? "" : k), ya = "yaxis" + (k === 1 ? "" : k);
        layout[xa] = {domain: [x0, x1], anchor: "y" + (k === 1 ? "" : k), range: [0, end],
                      matches: k === 1 ? undefined : "x",
                      showticklabels: true, zeroline: false};
        if (r === 2) { layout[xa].title = {text: "seconds since the request arrived"}; }
        layout[ya] = {domain: domain, anchor: "x" + (k === 1 ? "" : k), zeroline: false,
                      rangemode: r === 0 ? "normal" : "tozero"};
        if (c === 0) { layout[ya].title = {text: rowTitles[r]}; }
      });
      var ax = function (r) { var k = first + r; return k === 1 ? "" : String(k); };
      var show = c === 0;
      data.push({type: "scatter", mode: "markers", name: "cloud token arrives", legendgroup: "arrive",
                 showlegend: show, x: tl.cloud_arrivals_s,
                 y: tl.cloud_arrivals_s.map(function (_, i) { return i; }),
                 marker: {symbol: "circle-open", size: 7, color: BLUE},
                 xaxis: "x" + ax(0), yaxis: "y" + ax(0),
                 hovertemplate: "cloud token %{y} arrives at %{x:.4f} s<extra>" + label + "</extra>"});
      data.push({type: "scatter", mode: "markers", name: "displayed, from the cloud", legendgroup: "cloud",
                 showlegend: show, x: cloudX, y: cloudY, marker: {size: 5, color: BLUE},
                 xaxis: "x" + ax(0), yaxis: "y" + ax(0),
                 hovertemplate: "token %{y} shown at %{x:.4f} s (cloud)<extra>" + label + "</extra>"});
      data.push({type: "scatter", mode: "markers", name: "displayed, from the device", legendgroup: "device",
                 showlegend: show, x: devX, y: devY, marker: {size: 5, color: RED},
                 xaxis: "x" + ax(0), yaxis: "y" + ax(0),
                 hovertemplate: "token %{y} shown at %{x:.4f} s (device)<extra>" + label + "</extra>"});
      var gaps = diffs(disp);
      data.push({type: "scatter", mode: "lines+markers", name: "display gap", legendgroup: "gap",
                 showlegend: show, x: disp.slice(1), y: gaps, line: {color: GREY, width: 1},
                 marker: {size: 4, color: fromCloud.slice(1).map(function (f) { return f ? BLUE : RED; })},
                 xaxis: "x" + ax(1), yaxis: "y" + ax(1),
                 hovertemplate: "gap %{y:.1f} ms before the token shown at %{x:.4f} s<extra>" + label +
                                "</extra>"});
      var last = disp.length ? disp[disp.length - 1] : 1;
      data.push({type: "scatter", mode: "lines", name: "gap objective (max TPOT)", legendgroup: "objective",
                 showlegend: show, x: [0, last], y: [tl.max_tpot_s * 1000, tl.max_tpot_s * 1000],
                 line: {color: "black", dash: "dash", width: 1}, xaxis: "x" + ax(1), yaxis: "y" + ax(1),
                 hovertemplate: "objective %{y:.0f} ms<extra>" + label + "</extra>"});
      if (tl.estimates.length) {
        var estX = tl.estimates.map(function (e) { return e[0]; });
        var estY = tl.estimates.map(function (e) { return e[1]; });
        if (tl.handoff_s !== null && tl.handoff_s > estX[estX.length - 1]) {
          estX.push(tl.handoff_s); estY.push(estY[estY.length - 1]);  // held until the hand-off
        }
        data.push({type: "scatter", mode: "lines+markers", line: {shape: "hv", color: "#9467bd"},
                   name: "hand-off estimate, as revised", legendgroup: "estimate", showlegend: show,
                   x: estX, y: estY, xaxis: "x" + ax(2), yaxis: "y" + ax(2),
                   hovertemplate: "at %{x:.4f} s: hand-off expected at %{y:.4f} s<extra>" + label +
                                  "</extra>"});
      } else {
        // an empty trace keeps the row's axes drawn
        data.push({type: "scatter", mode: "markers", x: [], y: [], showlegend: false, hoverinfo: "skip",
                   xaxis: "x" + ax(2), yaxis: "y" + ax(2)});
        layout.annotations.push({text: "no hand-off estimate", showarrow: false,
                                 xref: "x" + ax(2) + " domain", yref: "y" + ax(2) + " domain",
                                 x: 0.5, y: 0.5, font: {color: GREY}});
      }
      if (tl.handoff_s !== null) {
        [0, 1, 2].forEach(function (r) {
          shapes.push({type: "line", xref: "x" + ax(r), yref: "y" + ax(r) + " domain", x0: tl.handoff_s,
                       x1: tl.handoff_s, y0: 0, y1: 1, line: {color: "black", dash: "dot", width: 1}});
        });
        layout.annotations.push({text: "hand-off " + tl.handoff_s.toFixed(3) + " s", showarrow: false,
                                 xref: "x" + ax(0), yref: "y" + ax(0) + " domain", x: tl.handoff_s, y: 1,
                                 xanchor: "left", yanchor: "top", font: {size: 10}});
      }
      layout.annotations.push({text: "<b>" + label + "</b>: " + plain(tl.title), showarrow: false,
                               xref: "paper", yref: "paper", x: (x0 + x1) / 2, y: 1.06, xanchor: "center",
                               font: {size: 12}});
    });
    return {data: data, layout: layout};
  }

  function setupExplorer(section) {
    var spec = DATA.explorers[section.id];
    var filter = section.querySelector(".ex-filter"), picker = section.querySelector(".ex-request");
    var idBox = section.querySelector(".ex-id"), note = section.querySelector(".ex-note");
    var plot = section.querySelector(".ex-plot");
    Object.keys(spec.filters).forEach(function (name) {
      var option = document.createElement("option");
      option.value = name; option.textContent = name + " (" + spec.filters[name].length + ")";
      filter.appendChild(option);
    });
    function fillPicker() {
      picker.innerHTML = "";
      spec.filters[filter.value].forEach(function (id) {
        var request = spec.requests[String(id)], option = document.createElement("option");
        option.value = String(id); option.textContent = "#" + id + ": " + request.label;
        picker.appendChild(option);
      });
    }
    function show(id) {
      var request = spec.requests[String(id)];
      if (!request) {
        note.textContent = "request " + id + " is not in this page (" + Object.keys(spec.requests).length +
          " requests embedded; " + spec.how + ")";
        return false;
      }
      section.dataset.request = String(id);
      idBox.value = String(id);
      note.textContent = request.description;
      Plotly.react(plot, timelineFigure(request.columns).data, timelineFigure(request.columns).layout,
                   CONFIG).then(function () { section.dataset.drawn = String(id); });
      return true;
    }
    filter.addEventListener("change", function () { fillPicker(); show(picker.value); });
    picker.addEventListener("change", function () { show(picker.value); });
    section.querySelector(".ex-go").addEventListener("click", function () { show(idBox.value.trim()); });
    idBox.addEventListener("keydown", function (event) {
      if (event.key === "Enter") { show(idBox.value.trim()); }
    });
    fillPicker();
    show(picker.value);
  }
  document.querySelectorAll(".explorer").forEach(setupExplorer);
  document.body.dataset.ready = "1";
})();
"""


def explorer_html(key: str, heading: str) -> str:
    """The controls and plot element of the explorer ``key`` (its data goes in `page`'s explorers)."""
    return (
        f'<section class="explorer" id="{html_text(key)}">'
        f"<h3>{html_text(heading)}</h3>"
        '<div class="controls">'
        '<label>filter <select class="ex-filter"></select></label>'
        '<label>request <select class="ex-request"></select></label>'
        '<label>by id <input class="ex-id" type="text" size="7"></label>'
        '<button class="ex-go" type="button">show</button> '
        '<span class="ex-note"></span></div>'
        '<div class="ex-plot"></div></section>'
    )


def page(
    title: str,
    body: str,
    *,
    figures: Mapping[str, Any] | None = None,
    explorers: Mapping[str, Any] | None = None,
) -> str:
    """The whole HTML document: ``body`` plus plotly.js, the data and the page's script.

    Raises:
        InvalidInputError: plotly is not installed.
    """
    payload = script_json({"figures": rounded(figures or {}), "explorers": rounded(explorers or {})})
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html_text(title)}</title><style>{_STYLE}</style>"
        f"<script>{plotly_script()}</script></head>\n<body>\n{body}\n"
        f'<script type="application/json" id="pdcore-data">{payload}</script>\n'
        f"<script>{_SCRIPT}</script>\n</body></html>\n"
    )

"""User text made safe for where it lands in a page: HTML text and attributes, and JSON inside ``<script>``.

Every page pdcore writes (``report.html``, ``pdcore view``) places text that came from outside (a trace's
file name, a timeline's ``mode``, a profile's name) in two kinds of place, and each has one helper:

- `html_text`: element text and quoted attribute values. ``&``, ``<``, ``>``, ``"``, ``'`` and ``%``
  become character references, so the same escaped text also reads literally in plotly's labels (titles,
  legends, hover labels), which are HTML-like: plotly decodes numeric references but not ``&quot;`` (hence
  ``&#34;`` and ``&#39;``), and it fills ``%{...}`` in a hover template before decoding (hence ``&#37;``).
  The page's script escapes the text it hands plotly the same way.
- `script_json`: a value as JSON inside a ``<script>`` element. Besides ``</script>``, the HTML parser
  treats ``<!--`` followed by ``<script`` inside a script as the start of an escaped section that swallows
  the next ``</script>``, so the page's own script never runs; every ``<``, ``>`` and ``&`` is therefore
  written as a JSON ``\\u`` escape (as is U+2028 and U+2029, line terminators to older JavaScript), which
  leaves the parsed value unchanged.

Nothing here imports beyond the standard library, so every floor can use it.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["html_text", "script_json"]

_HTML = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&#34;", "'": "&#39;", "%": "&#37;"})
_SCRIPT = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def html_text(text: str) -> str:
    """``text`` escaped for HTML element content and quoted attribute values (and plotly's labels)."""
    return text.translate(_HTML)


def script_json(value: Any) -> str:
    """``value`` as compact JSON that can stand inside a ``<script>`` element unchanged.

    Raises:
        ValueError: ``value`` holds a NaN or an infinity (not JSON).
        TypeError: ``value`` holds something JSON cannot represent.
    """
    return json.dumps(value, separators=(",", ":"), allow_nan=False).translate(_SCRIPT)

"""``pdcore serve``: P/D-Device behind an OpenAI-compatible HTTP API.

Needs the ``serve`` extra (FastAPI, uvicorn, prometheus-client) and the ``device`` extra (the live runtime).
`create_app` builds the ASGI app over a live `pdcore.runtime.Session`; ``pdcore serve`` (`pdcore.cli.serve`)
builds the session from its flags and runs the app with uvicorn. The modules, from the ground up:
`errors` (OpenAI's error object), `schemas` (the request bodies), `figures` (the ``pdcore`` extension field),
`metrics` (``/metrics``), `streaming` (the response objects and chunks), `conversation` (the prompt),
`answers` (one answer per request), `app` (the routes). ``docs/serve.md`` documents the API.
"""

from __future__ import annotations

from pdcore.serve.app import create_app
from pdcore.serve.figures import AnswerFigures

__all__ = ["AnswerFigures", "create_app"]

"""``pdcore traces fetch`` against a local HTTP server: a good download, a corrupted one, an HTTP error, a
server that goes silent, a body cut short, a Git LFS pointer, no network; the check on first use and the
publisher's git blob.

The server (`Publisher`) runs in a thread on 127.0.0.1 and serves a small generated Azure trace; the
registry gets a test trace pinned to that file's digest (`published`). Timeouts are a fraction of a second,
so a silent server fails the fetch quickly; the other tests wait longer; nothing asserts on timing.
"""

from __future__ import annotations

import hashlib
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from generated_trace import BODY, NAME, SHA256, register
from pdcore.exceptions import InvalidInputError, TraceFetchError
from pdcore.traces.cache import recorded_sha256
from pdcore.traces.fetch import fetch_trace
from pdcore.traces.registry import TRACES, PublicTrace

QUICK_S = 0.3
"""The fetch timeout of the tests of a silent server, seconds: it fails the fetch this soon."""
PATIENT_S = 10.0
"""The fetch timeout of the other tests, seconds: long enough for a busy machine's server thread."""


class _Handler(BaseHTTPRequestHandler):
    server: Publisher

    def do_GET(self) -> None:
        route = self.server.routes.get(self.path)
        if route is None:
            self.send_error(404, "Not Found")
            return
        route(self)

    def body(self, data: bytes, *, length: int | None = None) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(data) if length is None else length))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:  # the base class's name
        pass


class Publisher(ThreadingHTTPServer):
    """A local server of scripted routes; `quiet` is the event a silent route waits for (set on close)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.quiet = threading.Event()
        self.routes: dict[str, Callable[[_Handler], None]] = {
            "/trace.csv": lambda h: h.body(BODY),
            "/corrupted.csv": lambda h: h.body(BODY.replace(b"18:", b"19:", 1)),
            "/short.csv": lambda h: h.body(BODY[:100], length=len(BODY)),
            "/lfs.csv": lambda h: h.body(
                b"version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 1\n"
            ),
            "/silent-body.csv": self._silent_body,
            "/silent.csv": lambda h: self.quiet.wait(10.0),
        }

    def _silent_body(self, handler: _Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(BODY)))
        handler.end_headers()
        handler.wfile.write(BODY[:64])
        handler.wfile.flush()
        self.quiet.wait(10.0)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


@pytest.fixture
def publisher(monkeypatch: pytest.MonkeyPatch) -> Iterator[Publisher]:
    monkeypatch.setenv("no_proxy", "*")
    server = Publisher()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.quiet.set()
        server.shutdown()
        server.server_close()
        thread.join(5.0)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("PDCORE_TRACES", str(folder))
    return folder


def published(monkeypatch: pytest.MonkeyPatch, url: str, **pins: Any) -> PublicTrace:
    """Registers the test trace, served at ``url``, pinned to the generated file unless told otherwise."""
    return register(monkeypatch, url, **pins)


def _files(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir()) if folder.is_dir() else []


def test_fetch_keeps_a_file_with_the_pinned_digest(publisher: Publisher, cache: Path, monkeypatch) -> None:
    published(monkeypatch, publisher.url("/trace.csv"))
    seen: list[tuple[int, int | None]] = []
    stored = fetch_trace(NAME, timeout_s=PATIENT_S, progress=lambda done, total: seen.append((done, total)))
    assert stored.path == cache / f"{NAME}.csv"
    assert stored.path.read_bytes() == BODY
    assert stored.digest.sha256 == SHA256
    assert stored.note is None
    assert seen[-1] == (len(BODY), len(BODY))
    assert _files(cache) == [f"{NAME}.csv"]  # no temporary left, no record for a pinned trace


def test_a_corrupted_download_is_refused_and_removed(publisher: Publisher, cache: Path, monkeypatch) -> None:
    published(monkeypatch, publisher.url("/corrupted.csv"))
    with pytest.raises(InvalidInputError, match=f"expected sha256 {SHA256} \\(pinned\\), got [0-9a-f]{{64}}"):
        fetch_trace(NAME, timeout_s=PATIENT_S)
    assert _files(cache) == []


def test_a_refused_download_leaves_the_cached_file_as_it_was(
    publisher: Publisher, cache: Path, monkeypatch
) -> None:
    published(monkeypatch, publisher.url("/trace.csv"))
    fetch_trace(NAME, timeout_s=PATIENT_S)
    with pytest.raises(InvalidInputError, match="not the test-azure trace"):
        fetch_trace(NAME, url=publisher.url("/corrupted.csv"), timeout_s=PATIENT_S)
    assert (cache / f"{NAME}.csv").read_bytes() == BODY
    assert _files(cache) == [f"{NAME}.csv"]


def test_an_http_error_names_the_url_and_the_fixes(publisher: Publisher, cache: Path, monkeypatch) -> None:
    url = publisher.url("/missing.csv")
    published(monkeypatch, url)
    with pytest.raises(TraceFetchError) as caught:
        fetch_trace(NAME, timeout_s=PATIENT_S)
    message = str(caught.value)
    assert f"{url} answered HTTP 404" in message
    assert "--url" in message
    assert f"pdcore traces add {NAME} PATH" in message
    assert _files(cache) == []


@pytest.mark.parametrize("path", ["/silent.csv", "/silent-body.csv"])
def test_a_silent_server_times_out(publisher: Publisher, cache: Path, monkeypatch, path: str) -> None:
    # before its headers, or after 64 bytes of the body (a busy machine may not have sent them yet)
    published(monkeypatch, publisher.url(path))
    with pytest.raises(TraceFetchError, match=rf"sent nothing for {QUICK_S:g} s \(after (0|64) bytes\)"):
        fetch_trace(NAME, timeout_s=QUICK_S)
    assert _files(cache) == []


def test_a_body_cut_short_is_refused(publisher: Publisher, cache: Path, monkeypatch) -> None:
    published(monkeypatch, publisher.url("/short.csv"))
    with pytest.raises(TraceFetchError, match=r"broke off after 100 bytes|sent 100 of the"):
        fetch_trace(NAME, timeout_s=PATIENT_S)
    assert _files(cache) == []


def test_a_git_lfs_pointer_is_not_the_file(publisher: Publisher, cache: Path, monkeypatch) -> None:
    published(monkeypatch, publisher.url("/lfs.csv"), sha256=None)
    with pytest.raises(TraceFetchError, match="served a Git LFS pointer"):
        fetch_trace(NAME, timeout_s=PATIENT_S)
    assert _files(cache) == []


def test_no_network_says_so_and_names_the_fixes(cache: Path, monkeypatch) -> None:
    with socket.socket() as probe:  # a port nothing listens on: the connection is refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("no_proxy", "*")
    url = f"http://127.0.0.1:{port}/trace.csv"
    published(monkeypatch, url)
    with pytest.raises(TraceFetchError) as caught:
        fetch_trace(NAME, timeout_s=PATIENT_S)
    message = str(caught.value)
    assert f"{url} cannot be reached" in message
    assert "no network" in message
    assert "--url" in message
    assert f"pdcore traces add {NAME} PATH" in message
    assert _files(cache) == []


def test_an_unpinned_trace_is_recorded_on_first_fetch_and_checked_after(
    publisher: Publisher, cache: Path, monkeypatch
) -> None:
    trace = published(monkeypatch, publisher.url("/trace.csv"), sha256=None, size_bytes=None)
    first = fetch_trace(NAME, timeout_s=PATIENT_S)
    assert first.note is not None
    assert "no pinned sha256" in first.note
    assert SHA256 in first.note
    assert recorded_sha256(trace) == SHA256
    assert (cache / f"{NAME}.csv.sha256").read_text() == f"{SHA256}  {NAME}.csv\n"
    again = fetch_trace(NAME, timeout_s=PATIENT_S)
    assert again.note is not None
    assert "matched the one recorded" in again.note
    with pytest.raises(
        InvalidInputError, match=f"expected sha256 {SHA256} \\(recorded in .*first fetched\\)"
    ):
        fetch_trace(NAME, url=publisher.url("/corrupted.csv"), timeout_s=PATIENT_S)
    assert (cache / f"{NAME}.csv").read_bytes() == BODY


def test_the_publishers_git_blob_is_checked_when_no_sha256_is_pinned(
    publisher: Publisher, cache: Path, monkeypatch
) -> None:
    blob = hashlib.sha1(b"blob %d\0" % len(BODY) + BODY, usedforsecurity=False).hexdigest()
    published(monkeypatch, publisher.url("/trace.csv"), sha256=None, git_blob=blob)
    assert fetch_trace(NAME, timeout_s=PATIENT_S).note is None
    with pytest.raises(
        InvalidInputError, match=f"expected the publisher's git blob {blob}, got [0-9a-f]{{40}}"
    ):
        fetch_trace(NAME, url=publisher.url("/corrupted.csv"), timeout_s=PATIENT_S)
    assert (cache / f"{NAME}.csv").read_bytes() == BODY
    assert recorded_sha256(TRACES[NAME]) is None  # a git blob is a pin: nothing recorded


def test_a_mirror_on_disk_is_a_file_url(tmp_path: Path, cache: Path, monkeypatch) -> None:
    mirror = tmp_path / "mirror.csv"
    mirror.write_bytes(BODY)
    published(monkeypatch, "https://example.invalid/trace.csv")
    assert fetch_trace(NAME, url=mirror.as_uri()).path.read_bytes() == BODY


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"url": "ftp://example.invalid/x.csv"}, "is not an http, https or file URL"),
        ({"timeout_s": 0.0}, "--timeout = 0.0 is out of range"),
        ({"timeout_s": float("nan")}, "--timeout = nan is out of range"),
    ],
)
def test_bad_fetch_settings_are_refused_before_any_download(
    cache: Path, monkeypatch, settings, match
) -> None:
    published(monkeypatch, "https://example.invalid/trace.csv")
    with pytest.raises(InvalidInputError, match=match):
        fetch_trace(NAME, **settings)
    assert _files(cache) == []


def test_the_fetch_options_are_checked_even_when_the_trace_is_cached(
    publisher: Publisher, cache: Path, monkeypatch
) -> None:
    from typer.testing import CliRunner

    from pdcore.cli import app

    published(monkeypatch, publisher.url("/trace.csv"))
    assert CliRunner().invoke(app, ["traces", "fetch", NAME, "--timeout", "5"]).exit_code == 0
    for option, value in (("--timeout", "-1"), ("--timeout", "nan"), ("--url", "ftp://mirror/trace.csv")):
        result = CliRunner().invoke(app, ["traces", "fetch", NAME, option, value])
        assert result.exit_code == 2, result.output
        assert option in result.output
        assert "fix:" in result.output

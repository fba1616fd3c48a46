"""Downloading a public trace from its publisher into the user's cache (`pdcore.traces.cache`).

The file is streamed (`CHUNK_BYTES` at a time, hashed as it arrives) into a temporary file in the cache
directory, checked against the trace's pin (`pdcore.traces.cache.check_digest`) and only then renamed into
place (`pdcore.outputs.atomic_path`): a download cut short, refused or interrupted leaves nothing behind,
and a file already cached is replaced only by a checked one.

Errors name the URL and the fix (`TraceFetchError`): no network or a refused connection, an HTTP error
status, a server silent for ``timeout_s`` (waiting for the answer or between two reads), a body shorter than
its ``Content-Length``, a Git LFS pointer served in place of the file. A file whose digest is not the
trace's raises `InvalidInputError` naming both digests.

Only the standard library's ``urllib`` is used (no new dependency); it honours the usual ``https_proxy``
and ``no_proxy`` variables. ``http``, ``https`` and ``file`` URLs are accepted, so a mirror may be a web
server or a directory.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO

from pdcore.exceptions import InvalidInputError, TraceFetchError
from pdcore.limits import check_float
from pdcore.outputs import atomic_path
from pdcore.traces.cache import (
    CHUNK_BYTES,
    Digest,
    Stored,
    cache_dir,
    check_digest,
    record_first_use,
)
from pdcore.traces.registry import PublicTrace, public_trace

__all__ = ["DEFAULT_TIMEOUT_S", "MAX_TIMEOUT_S", "Progress", "fetch_source", "fetch_trace"]

DEFAULT_TIMEOUT_S = 30.0
"""Seconds a server may stay silent (before answering, or between two reads) before a fetch gives up."""

MAX_TIMEOUT_S = 3600.0
"""The longest silence a fetch may be told to wait for."""

Progress = Callable[[int, int | None], None]
"""Called after each chunk with the bytes received so far and the total (None when not announced)."""

_SCHEMES = ("http", "https", "file")
_LFS_POINTER = b"version https://git-lfs.github.com/spec/"


def _fix(trace: PublicTrace, *extra: str) -> str:
    return "; fix: " + ", ".join(
        (
            *extra,
            "pass --url with a mirror of the file",
            f"or `pdcore traces add {trace.name} PATH` with a copy you have",
        )
    )


def _open(trace: PublicTrace, url: str, timeout_s: float) -> IO[bytes]:
    """The answer to a GET of ``url``, or the error that names what went wrong."""
    # the scheme is one of _SCHEMES (checked by fetch_trace)
    request = urllib.request.Request(url, headers={"User-Agent": "pdcore-traces"})
    try:
        response: IO[bytes] = urllib.request.urlopen(request, timeout=timeout_s)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise TraceFetchError(
            f"cannot download {trace.name}: {url} answered HTTP {exc.code} {exc.reason}"
            + _fix(trace, "check the URL")
        ) from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise _silent(trace, url, timeout_s, 0) from None
        raise TraceFetchError(
            f"cannot download {trace.name}: {url} cannot be reached ({exc.reason}): no network, or the "
            "host is down" + _fix(trace, "check the network connection")
        ) from None
    except TimeoutError:
        raise _silent(trace, url, timeout_s, 0) from None
    except (http.client.HTTPException, OSError) as exc:
        raise TraceFetchError(
            f"cannot download {trace.name}: {url} failed ({exc or type(exc).__name__})"
            + _fix(trace, "try again")
        ) from None
    return response


def _silent(trace: PublicTrace, url: str, timeout_s: float, received: int) -> TraceFetchError:
    return TraceFetchError(
        f"cannot download {trace.name}: {url} sent nothing for {timeout_s:g} s (after {received:,} bytes)"
        + _fix(trace, "try again later or with a longer --timeout")
    )


def _announced(response: IO[bytes]) -> int | None:
    length = getattr(response, "headers", {}).get("Content-Length")
    return int(length) if length is not None and str(length).isdigit() else None


def _stream(
    trace: PublicTrace, url: str, response: IO[bytes], into: Path, timeout_s: float, progress: Progress | None
) -> Digest:
    """Copies the body of ``response`` into ``into``, hashing it; refuses a body cut short or a pointer."""
    total = _announced(response)
    # read1 returns what has arrived (up to a chunk), so a silence is measured from the last byte received
    read = getattr(response, "read1", response.read)
    digest = hashlib.sha256()
    received = 0
    with into.open("wb") as handle:
        while True:
            try:
                chunk = read(CHUNK_BYTES)
            except TimeoutError:
                raise _silent(trace, url, timeout_s, received) from None
            except (http.client.HTTPException, ConnectionError) as exc:
                raise TraceFetchError(
                    f"cannot download {trace.name}: {url} broke off after {received:,} bytes "
                    f"({type(exc).__name__})" + _fix(trace, "try again")
                ) from None
            if not chunk:
                break
            if received == 0 and chunk.startswith(_LFS_POINTER):
                raise TraceFetchError(
                    f"cannot download {trace.name}: {url} served a Git LFS pointer, not the file"
                    + _fix(trace, "use the repository's media URL")
                )
            handle.write(chunk)
            digest.update(chunk)
            received += len(chunk)
            if progress is not None:
                progress(received, total)
    if total is not None and received != total:
        raise TraceFetchError(
            f"cannot download {trace.name}: {url} sent {received:,} of the {total:,} bytes it announced"
            + _fix(trace, "try again")
        )
    return Digest(digest.hexdigest(), received)


def fetch_source(trace: PublicTrace, url: str | None, timeout_s: float) -> str:
    """The URL a fetch of ``trace`` reads (``url``, a mirror, or the publisher's), once ``url`` and
    ``timeout_s`` are checked.

    Raises:
        InvalidInputError: A URL that is not http, https or file, or a timeout out of range.
    """
    check_float(timeout_s, "--timeout", minimum=0.0, maximum=MAX_TIMEOUT_S, above_minimum=True, unit="s")
    source = trace.url if url is None else url
    if urllib.parse.urlsplit(source).scheme.lower() not in _SCHEMES:
        raise InvalidInputError(
            f"--url {source!r} is not an http, https or file URL; fix: pass a URL such as {trace.url}"
        )
    return source


def fetch_trace(
    name: str,
    *,
    url: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    progress: Progress | None = None,
) -> Stored:
    """Downloads the registered trace ``name`` into the cache, checked before it is kept (module docstring).

    Args:
        name: A registered trace (`pdcore.traces.registry.TRACES`).
        url: A mirror to download from instead of the publisher's URL; the file must still match the pin.
        timeout_s: Seconds the server may stay silent before the fetch gives up.
        progress: Called with the bytes received and the total after each chunk.

    Returns:
        Where the trace now is, its digest, and the note of a check on first use.

    Raises:
        InvalidInputError: An unknown name, a URL that is not http, https or file, a timeout out of range,
            or a file whose digest is not the trace's (nothing is kept).
        TraceFetchError: The download failed (module docstring); nothing is kept.
        OSError: The cache directory cannot be created or written.
    """
    trace = public_trace(name)
    source = fetch_source(trace, url, timeout_s)
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / trace.file_name
    with atomic_path(target) as temporary:
        with _open(trace, source, timeout_s) as response:
            digest = _stream(trace, source, response, temporary, timeout_s, progress)
        note = check_digest(trace, temporary, digest, f"the download from {source}")
    record_first_use(trace, digest)
    return Stored(trace, Path(os.fspath(target)), digest, note)

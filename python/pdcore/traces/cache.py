"""The user's cache of public traces, and how a ``--trace`` value becomes a file.

Where: ``$PDCORE_TRACES`` if set, else ``$XDG_CACHE_HOME/pdcore/traces``, else ``~/.cache/pdcore/traces``
(the XDG base directory rule, which most Unix tools follow). A registered trace is cached as
``NAME.suffix`` (`PublicTrace.file_name`); a trace checked on first use (`pdcore.traces.registry`) has its
SHA-256 recorded beside it in ``NAME.suffix.sha256``, in ``sha256sum`` format, so ``sha256sum -c`` checks
it too.

Every file enters the cache whole and checked, or not at all: it is written to a temporary file in the
cache directory, its digest compared with the pin (`check_digest`), and only then renamed into place
(`pdcore.outputs.atomic_path`); a refused file is removed. A file in the cache is not checked again on each
use (a one-week trace is a gigabyte).

`trace_path` resolves a ``--trace`` value (ours):

1. a value that names an existing file system entry is that path, exactly as before names existed;
2. else a registered name is its cached file; a name not yet in the cache is an error that says how to
   fetch it. A run never downloads: a simulation's result should not depend on the network being up, and
   a download of a gigabyte should be asked for, not a side effect;
3. else a value with a path separator or a dot is a path, and the reader names it as missing;
4. else (a bare word) it is an unknown name, and the error lists the known ones.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from pdcore.exceptions import InvalidInputError
from pdcore.inputs import input_file
from pdcore.outputs import atomic_path, write_text
from pdcore.traces.registry import TRACES, PublicTrace, public_trace

__all__ = [
    "CHUNK_BYTES",
    "Digest",
    "Stored",
    "add_trace",
    "cache_dir",
    "cached_file",
    "check_digest",
    "file_digest",
    "format_size",
    "git_blob_id",
    "record_first_use",
    "recorded_sha256",
    "trace_path",
]

CHUNK_BYTES = 1 << 20
"""Bytes read or written at a time when a trace is copied, downloaded or hashed."""


def cache_dir() -> Path:
    """The directory of cached traces (module docstring); it may not exist yet."""
    explicit = os.environ.get("PDCORE_TRACES")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "pdcore" / "traces"


def cached_file(trace: PublicTrace) -> Path | None:
    """The cached file of ``trace``, or None when it is not in the cache."""
    path = cache_dir() / trace.file_name
    return path if path.is_file() else None


def _record_path(trace: PublicTrace) -> Path:
    return cache_dir() / f"{trace.file_name}.sha256"


def recorded_sha256(trace: PublicTrace) -> str | None:
    """The SHA-256 recorded when ``trace`` (checked on first use) first entered the cache, or None."""
    try:
        text = _record_path(trace).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    digest = text.split(maxsplit=1)[0].lower() if text.strip() else ""
    return digest if len(digest) == 64 and all(c in "0123456789abcdef" for c in digest) else None


def format_size(size: int | None) -> str:
    """``size`` bytes in B, KiB, MiB or GiB with three significant figures (whole units from 100 up);
    ``"?"`` when unknown."""
    if size is None:
        return "?"
    if size < 1024:
        return f"{size} B"
    value, unit = size / 1024, "KiB"
    for larger in ("MiB", "GiB"):
        if value < 1024:
            break
        value, unit = value / 1024, larger
    return f"{value:.3g} {unit}" if value < 100 else f"{value:.0f} {unit}"


def git_blob_id(path: Path) -> str:
    """The git blob id of the file at ``path``, as ``git hash-object`` computes it."""
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode(), usedforsecurity=False)
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class Digest:
    """A file's SHA-256 and size."""

    sha256: str
    size: int


def file_digest(path: Path) -> Digest:
    """The SHA-256 and size of the file at ``path``."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
            size += len(chunk)
    return Digest(digest.hexdigest(), size)


def check_digest(trace: PublicTrace, path: Path, digest: Digest, origin: str) -> str | None:
    """Checks the file at ``path`` (``digest``) against ``trace``'s pin (`pdcore.traces.registry`).

    Args:
        trace: The registered trace the file claims to be.
        path: The file (a temporary file, before it enters the cache).
        digest: Its SHA-256 and size.
        origin: Where it came from, for the error (a URL, or the path the user gave).

    Returns:
        A note when the trace is checked on first use: that the digest was recorded now, or that it matched
        the recorded one; None when a pin was checked.

    Raises:
        InvalidInputError: The digest is not the pinned or recorded one; the message names the expected and
            the received digest.
    """
    expected = trace.sha256 or recorded_sha256(trace)
    if expected is not None and digest.sha256 != expected:
        where = "pinned" if trace.sha256 else f"recorded in {_record_path(trace)} when it was first fetched"
        raise InvalidInputError(
            f"{origin} is not the {trace.name} trace: expected sha256 {expected} ({where}), got "
            f"{digest.sha256} ({format_size(digest.size)}); the file was not kept; fix: fetch it again, "
            "pass --url with a mirror of the publisher's file, or add a copy of the publisher's file"
        )
    if trace.sha256 is None and trace.git_blob is not None:
        blob = git_blob_id(path)
        if blob != trace.git_blob:
            raise InvalidInputError(
                f"{origin} is not the {trace.name} trace: expected the publisher's git blob "
                f"{trace.git_blob}, got {blob} (sha256 {digest.sha256}); the file was not kept; fix: fetch "
                "it again, pass --url with a mirror of the publisher's file, or add a copy of it"
            )
    if trace.pin != "first use":
        return None
    if expected is not None:
        return f"{trace.name} has no pinned sha256; it matched the one recorded when first fetched"
    return (
        f"{trace.name} has no pinned sha256 (its publisher gives none); recorded {digest.sha256} in "
        f"{_record_path(trace)}: later fetches must match it"
    )


@dataclass(frozen=True)
class Stored:
    """A trace that entered the cache: where, its digest, and the note of a check on first use."""

    trace: PublicTrace
    path: Path
    digest: Digest
    note: str | None


def record_first_use(trace: PublicTrace, digest: Digest) -> None:
    """Records the digest of a trace checked on first use once it is in the cache (module docstring);
    a digest already recorded is kept (the file matched it)."""
    if trace.pin == "first use" and recorded_sha256(trace) is None:
        write_text(_record_path(trace), f"{digest.sha256}  {trace.file_name}\n")


def add_trace(name: str, source: str | os.PathLike[str]) -> Stored:
    """Copies a trace file the user has into the cache as the registered trace ``name``, checked first.

    Raises:
        InvalidInputError: An unknown name, ``source`` is not a regular file, or its digest is not the
            trace's (`check_digest`); nothing is left in the cache then.
        OSError: The cache directory cannot be created or written.
    """
    trace = public_trace(name)
    path = input_file(source, "trace file", "pass the path of a copy of the publisher's file")
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / trace.file_name
    with atomic_path(target) as temporary:
        shutil.copyfile(path, temporary)
        digest = file_digest(temporary)
        note = check_digest(trace, temporary, digest, repr(os.fspath(source)))
    record_first_use(trace, digest)
    return Stored(trace, target, digest, note)


def _names_a_file(text: str) -> bool:
    separators = {"/", os.sep} | ({os.altsep} if os.altsep else set())
    return "." in text or any(sep in text for sep in separators)


def trace_path(value: str | os.PathLike[str]) -> str:
    """The file a ``--trace`` value names: a path as given, or a registered trace's cached file (module
    docstring).

    Raises:
        InvalidInputError: An empty value, a registered trace that is not in the cache (the message says
            how to fetch or add it), or a bare word that is neither a file nor a registered name (it lists
            the names).
    """
    text = os.fspath(value)
    if not text.strip():
        raise InvalidInputError(
            "--trace is empty; fix: pass the path of a trace file (.csv or .jsonl) or a trace's name "
            "(`pdcore traces list`)"
        )
    if os.path.lexists(text):
        return text
    trace = TRACES.get(text)
    if trace is not None:
        cached = cached_file(trace)
        if cached is None:
            raise InvalidInputError(
                f"--trace {text}: that public trace is not in the trace cache ({cache_dir()}) yet; fix: "
                f"`pdcore traces fetch {text}` downloads it ({format_size(trace.size_bytes)}, "
                f"{trace.licence}), or `pdcore traces add {text} PATH` imports a copy you have (runs never "
                "download on their own: a result should not depend on the network)"
            )
        return str(cached)
    if _names_a_file(text):
        return text
    raise InvalidInputError(
        f"--trace {text}: no such file and no registered trace by that name; fix: pass the path of a "
        f"trace file (.csv or .jsonl) or one of {', '.join(TRACES)} (`pdcore traces list`)"
    )

"""Outputs as transactions: every file pdcore writes appears whole or not at all.

Invariants:

- A file is written to a temporary file in the same directory, flushed, fsync'ed and renamed over the
  target (`atomic_path`, `write_text`, `open_text`). A failure part-way (a full disk, Ctrl-C, an exception
  from the caller) removes the temporary file and leaves any previous file at the target untouched.
- An output never replaces an input, and two outputs never share a file: `check_outputs` compares resolved
  paths, and hard links through `os.path.samefile` when both exist, before any work is done, and notes
  every input it is given (`pdcore.inputs.note_input`); the writers themselves refuse any file this
  process read as an input (`pdcore.inputs`), whatever flag named it.
- Only a regular file is replaced. A symlink to one is kept and the file it names is replaced. A
  character device or a FIFO (``/dev/null``, ``/dev/stdout``, a terminal, a named pipe) is written to as a
  stream, never replaced; a block device or a socket is refused with the fix.
- A directory of outputs (``pdcore reproduce --out``) is built in a sibling temporary directory and swapped
  in whole (`atomic_directory`): a non-empty target is refused unless ``force`` is given, a target holding
  an input of the run is refused, and so are the current directory, a directory above it, the home
  directory and the root (ours: replacing one of those whole is never what a report means), a symlinked
  target is kept and the directory it names is swapped, and an interrupted build leaves the old directory
  as it was. The command line turns SIGTERM and SIGHUP into the same clean exit as Ctrl-C, so no
  temporary is left behind by a signal either.
- An error while writing (a full disk, a failed fsync) names the file the caller asked for, never the
  temporary: inside a report directory, the file's place in the directory given.

The renamed file gets the permissions a plain ``open(path, "w")`` would give it (``0o666`` less the umask),
or the previous file's permissions when it replaces one.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import stat
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO

from pdcore.exceptions import InvalidInputError
from pdcore.inputs import file_kind, input_at, inputs_under, note_input

__all__ = [
    "atomic_directory",
    "atomic_path",
    "check_output_dir",
    "check_outputs",
    "open_text",
    "write_text",
]

PathLike = str | os.PathLike[str]


def _temporary_name(path: Path, suffix: str = "") -> Path:
    # a dot file beside the target: same file system (so the rename is atomic), hidden from globs
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp{suffix}")


def _fsync_directory(folder: Path) -> None:
    # the rename is durable only once the directory entry is on disk; not every platform allows it
    with contextlib.suppress(OSError):
        handle = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


def _named(exc: OSError, path: Path, temporary: Path) -> OSError:
    """The same error naming the output the user asked for, when it named the temporary file or nothing
    (a write or fsync that fails for a full disk names no file); else ``exc`` itself."""
    if isinstance(exc.filename, (str, os.PathLike)) and os.fspath(exc.filename) != str(temporary):
        return exc
    return OSError(exc.errno, exc.strerror or str(exc), str(path))


def _is_stream(path: Path) -> bool:
    """True for a character device or FIFO, False for a regular file or nothing yet; refuses the rest."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError:
        return False  # the write itself reports it, naming the path
    if stat.S_ISREG(mode):
        return False
    if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode):
        return True
    raise InvalidInputError(
        f"output {str(path)!r} is a {file_kind(mode)}; pdcore writes regular files and streams (a "
        "terminal, a pipe, /dev/null) only; fix: pass a file path"
    )


def _refuse_input(path: Path) -> None:
    source = input_at(path)
    if source is not None:
        raise InvalidInputError(
            f"output {str(path)!r} is the same file as the input {source!r} that this run reads, and would "
            "overwrite it; fix: write the output to another path"
        )


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yields a temporary path; on a clean exit, fsyncs it and renames it onto ``path``.

    The temporary file sits beside the file ``path`` names (the target of a symlink, which is kept) and
    keeps ``path``'s suffix (writers such as matplotlib choose the format from it). The caller writes the
    whole file to the yielded path. On any exception the temporary file is removed and ``path`` is left as
    it was. A character device or FIFO at ``path`` gets the bytes as a stream instead (module docstring).

    Raises:
        InvalidInputError: ``path`` is an input of this run, a directory, a block device or a socket.
        OSError: The directory is not writable or the disk is full; the error names ``path``.
    """
    target = Path(path)
    _refuse_input(target)
    if _is_stream(target):
        with _streamed(target) as temporary:
            yield temporary
        return
    final = Path(os.path.realpath(target)) if target.is_symlink() else target
    temporary = _temporary_name(final, target.suffix)
    try:
        os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        try:
            yield temporary
            _commit(temporary, final)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
    except OSError as exc:
        named = _named(exc, target, temporary)
        if named is exc:
            raise
        raise named from exc


@contextlib.contextmanager
def _streamed(target: Path) -> Iterator[Path]:
    # the whole output first (a writer may need to seek), then one pass into the stream
    handle, name = tempfile.mkstemp(prefix=".pdcore-", suffix=target.suffix)
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        with temporary.open("rb") as source, target.open("wb") as stream:
            shutil.copyfileobj(source, stream)
    except OSError as exc:
        named = _named(exc, target, temporary)
        if named is exc:
            raise
        raise named from exc
    finally:
        temporary.unlink(missing_ok=True)


def _commit(temporary: Path, target: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.chmod(temporary, os.stat(target).st_mode & 0o7777)
    handle = os.open(temporary, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)
    os.replace(temporary, target)
    _fsync_directory(target.parent)


@contextlib.contextmanager
def open_text(path: PathLike, *, newline: str | None = None) -> Iterator[IO[str]]:
    """Opens a UTF-8 text file for writing as a transaction (see `atomic_path`)."""
    with atomic_path(path) as temporary, temporary.open("w", encoding="utf-8", newline=newline) as handle:
        yield handle
        handle.flush()


def write_text(path: PathLike, text: str) -> None:
    """Writes ``text`` to ``path`` as UTF-8, whole or not at all."""
    with open_text(path) as handle:
        handle.write(text)


def _same_file(first: Path, second: Path) -> bool:
    if first.resolve() == second.resolve():
        return True
    try:
        return os.path.samefile(first, second)
    except OSError:  # one of them does not exist yet
        return False


def check_outputs(
    outputs: Mapping[str, PathLike | None], inputs: Mapping[str, PathLike | None] | None = None
) -> None:
    """Refuses, before any work, outputs that would replace an input or each other, or cannot be created.

    Args:
        outputs: Flag (or argument name) to output file; None entries are skipped.
        inputs: Flag to input file; None entries, and names that are not paths, are skipped by the caller.
            Each is noted as an input of the run (`pdcore.inputs.note_input`), so the writers refuse it
            too, whichever flag later names it.

    Raises:
        InvalidInputError: An output's directory does not exist, the output is a directory, it is the same
            file as an input (resolved path or hard link), or two outputs are the same file.
    """
    given = {flag: Path(path) for flag, path in outputs.items() if path is not None}
    sources = {flag: Path(path) for flag, path in (inputs or {}).items() if path is not None}
    for source in sources.values():
        note_input(source)
    for flag, path in given.items():
        folder = path.parent if str(path.parent) else Path()
        if not folder.is_dir():
            raise InvalidInputError(
                f"{flag} {str(path)!r}: directory {str(folder)!r} does not exist; "
                "fix: create it or pass another path"
            )
        if path.is_dir():
            raise InvalidInputError(f"{flag} {str(path)!r} is a directory; fix: pass a file name")
        try:
            _is_stream(path)
        except InvalidInputError as exc:
            raise InvalidInputError(f"{flag} {exc}") from None
        for source_flag, source in sources.items():
            if _same_file(path, source):
                raise InvalidInputError(
                    f"{flag} {str(path)!r} is the same file as the input {source_flag} {str(source)!r} "
                    "and would overwrite it; fix: write the output to another path"
                )
    flags = list(given)
    for index, flag in enumerate(flags):
        for other in flags[index + 1 :]:
            if _same_file(given[flag], given[other]):
                raise InvalidInputError(
                    f"{flag} and {other} both name {str(given[flag])!r}, so one would be lost; "
                    "fix: give each output its own path"
                )


def _home() -> Path | None:
    try:
        return Path.home().resolve()
    except (RuntimeError, KeyError, OSError):  # no home directory known
        return None


def _refuse_surroundings(out: Path, resolved: Path, flag: str) -> None:
    """Refuses the root, the home directory, and the current directory or one above it (module docstring)."""
    here = Path.cwd().resolve()
    if resolved == Path(resolved.anchor):
        what = "the root directory"
    elif resolved == _home():
        what = "the home directory"
    elif resolved == here:
        what = "the current directory"
    elif resolved in here.parents:
        what = f"a directory that holds the current directory ({str(here)!r})"
    else:
        return
    raise InvalidInputError(
        f"{flag} {str(out)!r} is {what}, which the report would replace whole; fix: pass a directory of "
        f"its own, e.g. {flag} report"
    )


def check_output_dir(
    path: PathLike, *, force: bool, flag: str = "--out", inputs: Mapping[str, PathLike | None] | None = None
) -> None:
    """Refuses an output directory that is a file, holds an input, is the current directory, one above it,
    the home directory or the root, or is non-empty without ``force``. Each input given is noted
    (`pdcore.inputs.note_input`), and every input noted so far counts.

    Raises:
        InvalidInputError: Naming ``flag`` and the fix.
    """
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise InvalidInputError(f"{flag} {str(out)!r} is a file; fix: pass a directory")
    parent = out.parent if str(out.parent) else Path()
    if not parent.is_dir():
        raise InvalidInputError(
            f"{flag} {str(out)!r}: directory {str(parent)!r} does not exist; fix: create it first"
        )
    resolved = out.resolve()
    _refuse_surroundings(out, resolved, flag)
    for source_flag, source in (inputs or {}).items():
        if source is None:
            continue
        note_input(source)
        source_path = Path(source).resolve()
        if source_path == resolved or resolved in source_path.parents:
            raise InvalidInputError(
                f"{flag} {str(out)!r} holds the input {source_flag} {str(source)!r}, which replacing the "
                "directory would delete; fix: write the report to another directory"
            )
    held = inputs_under(out) if out.is_dir() else []
    if held:
        raise InvalidInputError(
            f"{flag} {str(out)!r} holds the input {held[0]!r} that this run reads, which replacing the "
            "directory would delete; fix: write the report to another directory or move the input out"
        )
    if out.is_dir() and any(out.iterdir()) and not force:
        raise InvalidInputError(
            f"{flag} {str(out)!r} is not empty; fix: pass an empty or new directory, or add --force to "
            "replace its contents (force=True in the API)"
        )


@contextlib.contextmanager
def atomic_directory(path: PathLike, *, force: bool, flag: str = "--out") -> Iterator[Path]:
    """Yields a sibling temporary directory; on a clean exit, swaps it in whole for ``path``.

    A non-empty ``path`` is refused unless ``force``; with ``force`` its old contents are removed only
    after the new directory is in place. On any exception (Ctrl-C included) the temporary directory is
    removed and ``path`` is left as it was.

    Raises:
        InvalidInputError: ``path`` is a file, or non-empty without ``force`` (see `check_output_dir`).
        OSError: The parent directory is not writable.
    """
    given = Path(path)
    check_output_dir(given, force=force, flag=flag)
    # the directory itself, a symlink's target included: ``r/..`` or ``./r`` have no name of their own
    target = Path(os.path.realpath(given))
    building = _temporary_name(target)
    building.mkdir(mode=0o777)
    try:
        yield building
        _fsync_directory(building)
    except OSError as exc:
        shutil.rmtree(building, ignore_errors=True)
        raise _in_directory(exc, building, given) from exc
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    old = _temporary_name(target, ".old") if target.exists() else None
    if old is not None:
        with contextlib.suppress(OSError):
            os.chmod(building, os.stat(target).st_mode & 0o7777)
        os.replace(target, old)
    try:
        os.replace(building, target)
    except BaseException:
        if old is not None:
            os.replace(old, target)
        shutil.rmtree(building, ignore_errors=True)
        raise
    _fsync_directory(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _in_directory(exc: OSError, building: Path, given: Path) -> OSError:
    """``exc`` naming the file's place in the directory the caller gave rather than in the temporary one
    (the directory itself when the error names no file)."""
    if not isinstance(exc.filename, (str, os.PathLike)):
        return OSError(exc.errno, exc.strerror or str(exc), str(given))
    name = Path(os.fspath(exc.filename))
    if name != building and building not in name.parents:
        return exc
    return OSError(exc.errno, exc.strerror or str(exc), str(given / name.relative_to(building)))

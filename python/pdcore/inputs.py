"""The files a run reads, so that no output of the same run can replace one.

Every loader that reads a user's file (a trace, a profile, a quality curve, a timeline) calls `note_input`
with its path; the writers of `pdcore.outputs` refuse to replace, and a report directory refuses to
delete, any file noted here. The early check of a command (`pdcore.outputs.check_outputs`) compares the
flags it knows before any work is done; this record is the edge that catches the rest (a file named inside
a policy setting, a profile path without a ``.toml`` suffix) whatever the command, before a byte is lost.

Files are identified by device and inode, so a symlink, a relative path or a hard link to an input is
the same input.

`input_file` is the edge every reader of a user's file passes first: it refuses a path that is not a
path, names what the path is when it is not a regular file (missing, a directory, a FIFO, a device, a
socket: a FIFO would block the read, a device stream forever) and notes the file as an input.

`names_file` is the one rule that tells a file's path from a shipped name where a value may be either (a
profile flag, a curve named in a policy setting): such a path is an input whatever its suffix or case.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from pdcore.exceptions import InvalidInputError

__all__ = ["file_kind", "forget_inputs", "input_at", "input_file", "inputs_under", "names_file", "note_input"]

_NOTED: dict[tuple[int, int], str] = {}


def names_file(name_or_path: str | os.PathLike[str], suffix: str = ".toml") -> bool:
    """Whether a value that is a shipped name or a path is a path: an `os.PathLike`, or text that holds a
    path separator or ends in ``suffix`` in any case (``r/phone.profile``, ``phone.TOML``)."""
    if not isinstance(name_or_path, str):
        return True
    separators = {"/", os.sep} | ({os.altsep} if os.altsep else set())
    return any(sep in name_or_path for sep in separators) or name_or_path.lower().endswith(suffix.lower())


def note_input(path: str | os.PathLike[str]) -> None:
    """Records ``path`` as an input of this process (nothing happens for a path that is not a file)."""
    try:
        found = os.stat(path)
    except (OSError, ValueError):
        return
    if stat.S_ISREG(found.st_mode):
        _NOTED[(found.st_dev, found.st_ino)] = str(path)


_KINDS = (
    (stat.S_ISDIR, "directory"),
    (stat.S_ISFIFO, "FIFO (named pipe)"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
    (stat.S_ISSOCK, "socket"),
)


def file_kind(mode: int) -> str:
    """What a file that is not a regular one is (``os.stat(...).st_mode``), for a message: the readers
    here and the writers of `pdcore.outputs` name it alike."""
    return next((kind for test, kind in _KINDS if test(mode)), "special file")


def input_file(
    path: object, what: str, fix: str, *, error: type[InvalidInputError] = InvalidInputError
) -> Path:
    """The user's file at ``path``, checked to be a regular file and noted as an input (`note_input`).

    Args:
        path: The path as the user gave it (a str or an os.PathLike).
        what: What the file is, for the message (``"trace file"``).
        fix: What to pass instead (``"pass the path of a trace file"``).
        error: The exception raised (`InvalidInputError` or a subclass).

    Raises:
        InvalidInputError: As ``error``: ``path`` is not a str or os.PathLike, or it names nothing, a
            directory, a FIFO, a device or a socket; the message says which, and the fix.
    """
    if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
        raise error(f"{what} path = {path!r} is not a file path; fix: pass the path as a str or pathlib.Path")
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        problem = "does not exist"
    except (OSError, ValueError) as exc:
        problem = f"cannot be examined ({getattr(exc, 'strerror', None) or exc})"
    else:
        if stat.S_ISREG(mode):
            note_input(path)
            return Path(path)
        if stat.S_ISDIR(mode):
            problem = "is a directory"
        else:
            problem = f"is a {file_kind(mode)}, not a regular file"
            fix = f"{fix} (a regular file: save the stream to a file first)"
    raise error(f"{what} {os.fspath(path)!r} {problem}; fix: {fix}")


def input_at(path: str | os.PathLike[str]) -> str | None:
    """The input, as it was named when read, that ``path`` is the same file as; None if none."""
    try:
        found = os.stat(path)
    except (OSError, ValueError):
        return None
    key = (found.st_dev, found.st_ino)
    name = _NOTED.get(key)
    if name is not None and not _still(name, key):
        del _NOTED[key]  # the input was deleted and its inode reused: no longer an input
        return None
    return name


def _still(name: str, key: tuple[int, int]) -> bool:
    try:
        found = os.stat(name)
    except (OSError, ValueError):
        return False
    return (found.st_dev, found.st_ino) == key


def inputs_under(folder: str | os.PathLike[str]) -> list[str]:
    """The inputs read from inside ``folder`` (at any depth), as they were named."""
    root = Path(folder).resolve()
    held = []
    for key, name in list(_NOTED.items()):
        if not _still(name, key):
            continue
        resolved = Path(name).resolve()
        if resolved == root or root in resolved.parents:
            held.append(name)
    return sorted(held)


def forget_inputs() -> None:
    """Clears the record (a long-lived process that starts a new run; tests)."""
    _NOTED.clear()

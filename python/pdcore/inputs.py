"""The files a run reads, so that no output of the same run can replace one.

Every loader that reads a user's file (a trace, a profile, a quality curve, a timeline) calls `note_input`
with its path; the writers of `pdcore.outputs` refuse to replace, and a report directory refuses to
delete, any file noted here. The early check of a command (`pdcore.outputs.check_outputs`) compares the
flags it knows before any work is done; this record is the edge that catches the rest (a file named inside
a policy setting, a profile path without a ``.toml`` suffix) whatever the command, before a byte is lost.

Files are identified by device and inode, so a symlink, a relative path or a hard link to an input is
the same input.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["forget_inputs", "input_at", "inputs_under", "note_input"]

_NOTED: dict[tuple[int, int], str] = {}


def note_input(path: str | os.PathLike[str]) -> None:
    """Records ``path`` as an input of this process (nothing happens for a path that is not a file)."""
    try:
        found = os.stat(path)
    except (OSError, ValueError):
        return
    if stat.S_ISREG(found.st_mode):
        _NOTED[(found.st_dev, found.st_ino)] = str(path)


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

"""Tests for pdcore.inputs.input_file: the edge every reader of a user's file passes first."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from pdcore.exceptions import InvalidInputError, ProfileError
from pdcore.inputs import forget_inputs, input_at, input_file


@pytest.fixture(autouse=True)
def _fresh_inputs() -> Iterator[None]:
    forget_inputs()
    yield
    forget_inputs()


def test_a_regular_file_is_returned_and_noted(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("x", encoding="utf-8")
    link = tmp_path / "link.txt"
    link.symlink_to(path)
    assert input_file(str(link), "file", "fix it") == link
    assert input_at(path) == str(link)


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.mkdir(), "is a directory"),
        (os.mkfifo, "is a FIFO (named pipe), not a regular file"),
        (lambda p: p.symlink_to(p.with_name("gone")), "does not exist"),
    ],
    ids=["missing", "directory", "fifo", "broken-link"],
)
def test_what_is_not_a_regular_file_is_named(tmp_path: Path, make: object, kind: str) -> None:
    path = tmp_path / "in.txt"
    make(path)  # type: ignore[operator]
    with pytest.raises(InvalidInputError) as info:
        input_file(path, "the file", "pass a file")
    assert str(info.value).startswith(f"the file {str(path)!r} {kind}; fix: pass a file")
    assert input_at(path) is None


def test_a_socket_is_named(tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        try:
            server.bind(str(path))
        except OSError as exc:  # a socket path is limited to about 100 bytes
            pytest.skip(f"cannot bind a socket at {path}: {exc}")
        with pytest.raises(ProfileError, match=r"is a socket, not a regular file; fix: .*regular file"):
            input_file(path, "profile", "pass a profile", error=ProfileError)
    finally:
        server.close()


@pytest.mark.parametrize("path", [None, 3, 2.5, True, b"a.txt", ["a.txt"]])
def test_what_is_not_a_path_is_refused(path: object) -> None:
    with pytest.raises(
        InvalidInputError, match=r"^the file path = .* is not a file path; fix: pass the path"
    ):
        input_file(path, "the file", "pass a file")

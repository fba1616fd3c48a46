"""Outputs as transactions: whole or not at all, never over an input, report directories swapped whole."""

from __future__ import annotations

import errno
import os
import re
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from pdcore.exceptions import InvalidInputError
from pdcore.inputs import note_input
from pdcore.outputs import (
    atomic_directory,
    atomic_path,
    check_output_dir,
    check_outputs,
    open_text,
    write_text,
)


def _listing(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def test_write_text_replaces_whole_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "a.json"
    write_text(target, "first\n")
    write_text(target, "second\n")
    assert target.read_text(encoding="utf-8") == "second\n"
    assert _listing(tmp_path) == ["a.json"]


def test_new_file_gets_the_umask_permissions(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o640


def test_replacing_keeps_the_old_permissions(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_text("old", encoding="utf-8")
    target.chmod(0o600)
    write_text(target, "new")
    assert target.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_a_failure_part_way_keeps_the_old_file(tmp_path: Path, error: BaseException) -> None:
    target = tmp_path / "a.csv"
    target.write_text("precious\n", encoding="utf-8")

    def interrupted() -> None:
        with open_text(target) as handle:
            handle.write("half a row")
            raise error

    with pytest.raises(type(error)):
        interrupted()
    assert target.read_text(encoding="utf-8") == "precious\n"
    assert _listing(tmp_path) == ["a.csv"]


def test_atomic_path_keeps_the_suffix_and_names_the_target_on_error(tmp_path: Path) -> None:
    with atomic_path(tmp_path / "plot.png") as temporary:
        assert temporary.suffix == ".png"
        assert temporary.parent == tmp_path
        temporary.write_bytes(b"png")
    assert (tmp_path / "plot.png").read_bytes() == b"png"
    missing = tmp_path / "no-such-dir" / "x.json"
    with pytest.raises(OSError, match="no-such-dir") as caught, atomic_path(missing):
        pass
    assert caught.value.filename == str(missing)


def test_check_outputs_refuses_an_output_equal_to_an_input(tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text("x", encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"--csv .*same file as the input --trace"):
        check_outputs({"--csv": trace}, {"--trace": trace})
    # the same file reached another way: a relative path through a symlinked directory, a hard link
    (tmp_path / "link").symlink_to(tmp_path)
    with pytest.raises(InvalidInputError, match="same file"):
        check_outputs({"--json": tmp_path / "link" / "." / "t.csv"}, {"--trace": trace})
    os.link(trace, tmp_path / "hard.csv")
    with pytest.raises(InvalidInputError, match="same file"):
        check_outputs({"--out": tmp_path / "hard.csv"}, {"--trace": trace})
    check_outputs({"--out": tmp_path / "other.csv"}, {"--trace": trace, "--device": None})


def test_check_outputs_refuses_two_outputs_on_one_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"--json and --csv both name"):
        check_outputs({"--json": tmp_path / "a.out", "--csv": tmp_path / "a.out"})
    with pytest.raises(InvalidInputError, match="does not exist"):
        check_outputs({"--json": tmp_path / "missing" / "a.json"})
    with pytest.raises(InvalidInputError, match="is a directory"):
        check_outputs({"--json": tmp_path})


def test_directory_is_swapped_in_whole(tmp_path: Path) -> None:
    out = tmp_path / "report"
    with atomic_directory(out, force=False) as building:
        assert building.parent == tmp_path
        assert not out.exists()
        (building / "report.md").write_text("one", encoding="utf-8")
    assert _listing(out) == ["report.md"]
    with pytest.raises(InvalidInputError, match=r"--out .* is not empty; fix: .*--force"):
        atomic_directory(out, force=False).__enter__()
    with atomic_directory(out, force=True) as building:
        (building / "results.json").write_text("{}", encoding="utf-8")
    assert _listing(out) == ["results.json"]
    assert _listing(tmp_path) == ["report"]


def test_an_interrupted_directory_build_keeps_the_old_report(tmp_path: Path) -> None:
    out = tmp_path / "report"
    out.mkdir()
    (out / "report.md").write_text("old", encoding="utf-8")

    def interrupted() -> None:
        with atomic_directory(out, force=True) as building:
            (building / "report.md").write_text("new, half done", encoding="utf-8")
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted()
    assert (out / "report.md").read_text(encoding="utf-8") == "old"
    assert _listing(tmp_path) == ["report"]


def test_a_file_is_not_an_output_directory(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="is a file"):
        atomic_directory(tmp_path / "f", force=True).__enter__()


def test_an_input_read_by_the_run_is_never_replaced(tmp_path: Path) -> None:
    source = tmp_path / "q.toml"
    source.write_text("precious", encoding="utf-8")
    note_input(source)
    with pytest.raises(InvalidInputError, match=r"same file as the input .*q\.toml.*fix"):
        write_text(tmp_path / "." / "q.toml", "overwritten")
    (tmp_path / "alias").symlink_to(source)
    with pytest.raises(InvalidInputError, match="same file as the input"):
        write_text(tmp_path / "alias", "overwritten")
    assert source.read_text(encoding="utf-8") == "precious"
    # a report directory that holds it is never swapped away, even with force
    out = tmp_path / "r"
    out.mkdir()
    kept = out / "phone.PROFILE"
    kept.write_text("device", encoding="utf-8")
    note_input(kept)
    with pytest.raises(InvalidInputError, match=r"holds the input .*phone\.PROFILE"):
        atomic_directory(out, force=True).__enter__()
    assert kept.read_text(encoding="utf-8") == "device"


def test_a_deleted_input_frees_its_name(tmp_path: Path) -> None:
    source = tmp_path / "t.csv"
    source.write_text("x", encoding="utf-8")
    note_input(source)
    source.unlink()
    write_text(source, "new")
    assert source.read_text(encoding="utf-8") == "new"


def test_a_symlinked_output_keeps_its_link(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    real.write_text("old", encoding="utf-8")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    write_text(link, "new")
    assert link.is_symlink()
    assert real.read_text(encoding="utf-8") == "new"
    assert _listing(tmp_path) == ["link.json", "real.json"]


def test_a_symlinked_report_directory_keeps_its_link(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / "old.md").write_text("old", encoding="utf-8")
    link = tmp_path / "r"
    link.symlink_to(real)
    with atomic_directory(link, force=True) as building:
        (building / "report.md").write_text("new", encoding="utf-8")
    assert link.is_symlink()
    assert _listing(link) == ["report.md"]
    assert _listing(tmp_path) == ["r", "real"]


def test_a_fifo_is_written_as_a_stream_not_replaced(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    write_text(fifo, '{"a": 1}\n')
    reader.join(timeout=10)
    assert received == [b'{"a": 1}\n']
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert _listing(tmp_path) == ["pipe"]


def test_a_character_device_is_written_as_a_stream(tmp_path: Path) -> None:
    before = os.stat(os.devnull)
    write_text(os.devnull, "x" * 5000)
    after = os.stat(os.devnull)
    assert stat.S_ISCHR(after.st_mode)
    assert (before.st_ino, before.st_rdev) == (after.st_ino, after.st_rdev)
    with atomic_path(os.devnull) as temporary:
        assert temporary.parent != Path(os.devnull).parent  # the staging file is not created in /dev
        temporary.write_bytes(b"png")


def test_a_socket_is_refused(tmp_path: Path) -> None:
    import socket

    path = tmp_path / "s"
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(path))
        with pytest.raises(InvalidInputError, match=r"--json .* is a socket; .*fix"):
            check_outputs({"--json": path})
        with pytest.raises(InvalidInputError, match="is a socket"):
            write_text(path, "x")
    finally:
        server.close()


def test_sigterm_removes_the_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_text("old", encoding="utf-8")
    script = (
        "import sys, time\n"
        "from pdcore.cli import _terminated\n"
        "import signal\n"
        "signal.signal(signal.SIGTERM, _terminated)\n"
        "from pdcore.outputs import open_text\n"
        "with open_text(sys.argv[1]) as h:\n"
        "    h.write('half')\n"
        "    print('writing', flush=True)\n"
        "    time.sleep(60)\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", script, str(target)], stdout=subprocess.PIPE, text=True
    ) as child:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "writing"
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=30) == 128 + signal.SIGTERM
    assert target.read_text(encoding="utf-8") == "old"
    assert _listing(tmp_path) == ["out.json"]


@pytest.mark.parametrize(
    ("out", "words"),
    [
        (".", "is the current directory"),
        ("..", "is a directory that holds the current directory"),
        ("{here}", "is the current directory"),
        ("{home}", "is the home directory"),
        ("/", "is the root directory"),
    ],
)
def test_a_report_directory_is_never_where_the_run_stands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, out: str, words: str
) -> None:
    """Replacing the current directory, one above it, the home directory or the root whole is refused
    before any work, with or without force (``--out .`` once failed with a ValueError at the very end)."""
    here, home = tmp_path / "here", tmp_path / "home"
    here.mkdir()
    home.mkdir()
    monkeypatch.chdir(here)
    monkeypatch.setenv("HOME", str(home))
    target = out.format(here=here, home=home)
    for force in (False, True):
        with pytest.raises(
            InvalidInputError, match=rf"--out '{re.escape(target)}' {words}.*fix: .*--out report"
        ):
            check_output_dir(target, force=force)
        with pytest.raises(InvalidInputError, match=words):
            atomic_directory(target, force=force).__enter__()
    assert _listing(tmp_path) == ["here", "home"]


def test_a_report_directory_named_through_dot_dot_is_swapped_whole(tmp_path: Path) -> None:
    out = tmp_path / "report"
    out.mkdir()
    (out / "old.md").write_text("old", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    with atomic_directory(tmp_path / "sub" / ".." / "report", force=True) as building:
        (building / "report.md").write_text("new", encoding="utf-8")
    assert _listing(out) == ["report.md"]
    assert _listing(tmp_path) == ["report", "sub"]


def _disk_full(*_: object) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_names_the_file_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failed fsync or write names no file; the error names the output asked for, never a temporary."""
    target = tmp_path / "a.json"
    target.write_text("old", encoding="utf-8")
    monkeypatch.setattr(os, "fsync", _disk_full)
    with pytest.raises(OSError, match="No space left") as caught:
        write_text(target, "new")
    assert (caught.value.errno, caught.value.filename) == (errno.ENOSPC, str(target))
    assert target.read_text(encoding="utf-8") == "old"
    monkeypatch.undo()

    def write_fails() -> None:
        with atomic_path(target):
            _disk_full()

    with pytest.raises(OSError, match="No space left") as caught:
        write_fails()
    assert caught.value.filename == str(target)
    assert _listing(tmp_path) == ["a.json"]


def test_a_full_disk_inside_a_report_names_its_place_in_the_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "r"

    def report_on_a_full_disk() -> None:
        with atomic_directory(out, force=False) as building:
            monkeypatch.setattr(os, "fsync", _disk_full)
            write_text(building / "results.json", "{}")

    with pytest.raises(OSError, match="No space left") as caught:
        report_on_a_full_disk()
    assert caught.value.filename == str(out / "results.json")
    monkeypatch.undo()

    def directory_on_a_full_disk() -> None:
        with atomic_directory(out, force=False):
            _disk_full()

    with pytest.raises(OSError, match="No space left") as caught:
        directory_on_a_full_disk()
    assert caught.value.filename == str(out)
    assert _listing(tmp_path) == []


def test_the_early_check_notes_every_input_it_is_given(tmp_path: Path) -> None:
    """An input named only to the early check is still refused by the writers (whatever flag names it)."""
    curve = tmp_path / "q.toml"
    curve.write_text("curve", encoding="utf-8")
    check_outputs(
        {"--json": tmp_path / "out.json"}, {"quality in --policies pd-device:quality=q.toml": curve}
    )
    with pytest.raises(InvalidInputError, match="same file as the input"):
        write_text(tmp_path / "q.toml", "overwritten")
    assert curve.read_text(encoding="utf-8") == "curve"

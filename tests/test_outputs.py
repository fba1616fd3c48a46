"""Outputs as transactions: whole or not at all, never over an input, report directories swapped whole."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pdcore.exceptions import InvalidInputError
from pdcore.outputs import atomic_directory, atomic_path, check_outputs, open_text, write_text


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

"""Public traces by name: the registry, the cache's place, ``pdcore traces add``, ``--trace NAME`` in the
commands and the run specification, and ``pdcore traces list/fetch/add`` on the command line."""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from generated_trace import BODY, NAME, SHA256, register
from pdcore.cli import app
from pdcore.cli.traces import traces_table
from pdcore.exceptions import InvalidInputError
from pdcore.inputs import forget_inputs
from pdcore.sim.spec import WorkloadSpec
from pdcore.traces import TRACES, PublicTrace, add_trace, cache_dir, load_trace, trace_path
from pdcore.traces.cache import format_size, git_blob_id
from traces_at_hand import SHARED

runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "cache"
    monkeypatch.setenv("PDCORE_TRACES", str(folder))
    yield folder
    forget_inputs()  # the cached files tests read are inputs of this process until then


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> PublicTrace:
    return register(monkeypatch, "https://example.invalid/trace.csv")


def _copy(tmp_path: Path, data: bytes = BODY, name: str = "copy.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# --- the registry -------------------------------------------------------------------------------------------


def test_the_registry_names_the_public_traces_with_their_terms() -> None:
    assert {"azure-2023-conv", "azure-2023-code", "azure-2024-conv", "azure-2024-code"} <= set(TRACES)
    assert {"mooncake-conversation", "mooncake-toolagent", "qwen-bailian-a"} <= set(TRACES)
    for name, trace in TRACES.items():
        assert name == trace.name
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)+", name), name  # never mistaken for a file name
        assert trace.url.startswith("https://"), name
        assert trace.licence in {"CC-BY-4.0", "Apache-2.0"}, name
        assert trace.reader in {"azure", "mooncake", "bailian"}, name
        assert trace.suffix == (".csv" if trace.reader == "azure" else ".jsonl"), name
        assert trace.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", trace.sha256), name
        assert trace.git_blob is None or re.fullmatch(r"[0-9a-f]{40}", trace.git_blob), name
        assert trace.paper, name
    assert TRACES["azure-2023-conv"].pin == "sha256"
    assert TRACES["mooncake-toolagent"].pin == "git blob"
    assert TRACES["azure-2024-conv"].pin == "first use"


@pytest.mark.parametrize(
    ("name", "shared_name"),
    [
        ("azure-2023-conv", "azure_2023_conv.csv"),
        ("azure-2023-code", "azure_2023_code.csv"),
        ("mooncake-conversation", "mooncake_conversation.jsonl"),
    ],
)
def test_the_shared_copies_are_the_pinned_files(name: str, shared_name: str) -> None:
    path = SHARED / shared_name
    if not path.is_file():
        pytest.skip(f"{path} not present (the shared traces are beside the checkout, not in it)")
    trace = TRACES[name]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == trace.sha256
    assert git_blob_id(path) == trace.git_blob
    assert path.stat().st_size == trace.size_bytes
    assert len(load_trace(path)) == trace.requests


@pytest.mark.parametrize(
    ("size", "shown"),
    [
        (None, "?"),
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1 KiB"),
        (719_188, "702 KiB"),
        (1_048_000, "1023 KiB"),
        (3_029_533, "2.89 MiB"),
        (132_054_902, "126 MiB"),
        (5 * 1024**4, "5120 GiB"),
    ],
)
def test_sizes_read_in_binary_units(size: int | None, shown: str) -> None:
    assert format_size(size) == shown


def test_docs_traces_lists_every_trace_with_its_url_and_check() -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "traces.md").read_text(encoding="utf-8")
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    for name, trace in TRACES.items():
        assert f"`{name}`" in doc, name
        assert f"`{name}`" in readme, name
        assert trace.url in doc, name
        assert (trace.sha256 or trace.git_blob or "first use") in doc, name


def test_the_cache_directory_follows_pdcore_traces_then_xdg_then_home(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PDCORE_TRACES", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("PDCORE_TRACES")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "pdcore" / "traces"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative")  # the XDG rule ignores a relative path
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "pdcore" / "traces"


# --- traces add ---------------------------------------------------------------------------------------------


def test_add_imports_a_copy_with_the_pinned_digest(
    cache: Path, registered: PublicTrace, tmp_path: Path
) -> None:
    stored = add_trace(NAME, _copy(tmp_path))
    assert stored.path == cache / f"{NAME}.csv"
    assert stored.path.read_bytes() == BODY
    assert stored.note is None


def test_add_refuses_a_wrong_file_and_keeps_nothing(
    cache: Path, registered: PublicTrace, tmp_path: Path
) -> None:
    wrong = _copy(tmp_path, BODY + b"2023-11-16 19:00:00.0000000,1,1\n")
    with pytest.raises(
        InvalidInputError,
        match=f"'{re.escape(str(wrong))}' is not the {NAME} trace: expected sha256 {SHA256}",
    ):
        add_trace(NAME, wrong)
    assert not cache.exists() or list(cache.iterdir()) == []


def test_add_refuses_an_unknown_name_or_a_missing_file(
    cache: Path, registered: PublicTrace, tmp_path: Path
) -> None:
    with pytest.raises(
        InvalidInputError, match="no registered trace is called 'azure-2099'; fix: use one of azure-2023-conv"
    ):
        add_trace("azure-2099", _copy(tmp_path))
    with pytest.raises(InvalidInputError, match="does not exist"):
        add_trace(NAME, tmp_path / "nope.csv")


# --- --trace NAME -------------------------------------------------------------------------------------------


def test_a_cached_name_resolves_to_its_file(cache: Path, registered: PublicTrace, tmp_path: Path) -> None:
    add_trace(NAME, _copy(tmp_path))
    assert trace_path(NAME) == str(cache / f"{NAME}.csv")
    spec = WorkloadSpec(trace=NAME)
    assert spec.trace == str(cache / f"{NAME}.csv")
    assert spec.inputs() == {"--trace": str(cache / f"{NAME}.csv")}
    workload = spec.load()
    assert len(workload) == 120
    assert workload.name == NAME


def test_a_name_not_yet_fetched_says_how_to_fetch_it(cache: Path, registered: PublicTrace) -> None:
    with pytest.raises(InvalidInputError) as caught:
        WorkloadSpec(trace=NAME)
    message = str(caught.value)
    assert f"`pdcore traces fetch {NAME}`" in message
    assert f"`pdcore traces add {NAME} PATH`" in message
    assert "never download" in message
    assert not cache.exists()  # nothing was downloaded


def test_an_unknown_name_lists_the_known_ones(cache: Path) -> None:
    with pytest.raises(
        InvalidInputError, match="no such file and no registered trace by that name"
    ) as caught:
        trace_path("azure-2023-cnv")
    for name in TRACES:
        assert name in str(caught.value)


def test_a_path_keeps_working_exactly_as_before(
    cache: Path, registered: PublicTrace, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    beside = _copy(tmp_path, name=NAME)  # a file called like a registered trace: the file wins
    assert trace_path(NAME) == NAME
    assert trace_path(str(beside)) == str(beside)
    assert trace_path("missing/trace.csv") == "missing/trace.csv"  # the reader names it as missing
    assert trace_path("missing.jsonl") == "missing.jsonl"


# --- the command line ---------------------------------------------------------------------------------------


def test_compare_takes_a_trace_by_name(cache: Path, registered: PublicTrace, tmp_path: Path) -> None:
    code, output = run("traces", "add", NAME, str(_copy(tmp_path)))
    assert code == 0, output
    assert "CC-BY-4.0" in output  # the licence is shown
    code, output = run("compare", "--trace", NAME, "--limit", "40", "--policies", "cloud-only,pd-device")
    assert code == 0, output
    assert "pd-device" in output


@pytest.mark.parametrize(
    "command", [["compare"], ["simulate", "--policy", "cloud-only"], ["size"], ["optimize"]]
)
def test_commands_name_the_fetch_for_a_trace_not_in_the_cache(
    cache: Path, registered: PublicTrace, command: list[str]
) -> None:
    code, output = run(*command, "--trace", NAME)
    assert code == 2, output
    assert f"pdcore traces fetch {NAME}" in " ".join(output.split())
    assert "Traceback" not in output


def test_an_unknown_name_on_the_command_line_lists_the_names(cache: Path) -> None:
    code, output = run("compare", "--trace", "azure-2023-cnv")
    assert code == 2, output
    flat = " ".join(output.split())
    assert "no registered trace by that name" in flat
    assert "azure-2023-conv" in flat


def test_traces_list_says_what_is_present(cache: Path, registered: PublicTrace, tmp_path: Path) -> None:
    code, output = run("traces", "list")
    assert code == 0, output
    row = next(line for line in output.splitlines() if NAME in line)
    assert row.split()[1] == "no"
    assert "CC-BY-4.0" in row
    assert str(cache) in output
    assert run("traces", "add", NAME, str(_copy(tmp_path)))[0] == 0
    code, output = run("traces", "list")
    row = next(line for line in output.splitlines() if NAME in line)
    assert row.split()[1] == "yes"
    for name in TRACES:
        assert name in output


def test_traces_add_on_the_command_line_refuses_a_wrong_file(
    cache: Path, registered: PublicTrace, tmp_path: Path
) -> None:
    code, output = run("traces", "add", NAME, str(_copy(tmp_path, b"not a trace\n")))
    assert code == 2, output
    flat = " ".join(output.split())
    assert (
        f"expected sha256 {SHA256} (pinned), got {hashlib.sha256(b'not a trace' + bytes([10])).hexdigest()}"
        in flat
    )
    assert not cache.exists() or list(cache.iterdir()) == []


def test_traces_fetch_on_the_command_line(
    cache: Path, registered: PublicTrace, tmp_path: Path, monkeypatch
) -> None:
    mirror = _copy(tmp_path)
    code, output = run("traces", "fetch", NAME, "--url", mirror.as_uri())
    assert code == 0, output
    assert "CC-BY-4.0" in output
    assert f"sha256 {SHA256}" in output
    assert (cache / f"{NAME}.csv").read_bytes() == BODY
    code, output = run("traces", "fetch", NAME)
    assert code == 0, output
    assert "already in the cache" in output
    code, output = run(
        "traces", "fetch", NAME, "--force", "--url", "ftp://example.invalid/x", "--timeout", "5"
    )
    assert code == 2, output
    assert "is not an http, https or file URL" in output


def test_traces_fetch_of_an_unknown_name(cache: Path) -> None:
    code, output = run("traces", "fetch", "nope")
    assert code == 2, output
    assert "no registered trace is called 'nope'" in " ".join(output.split())


def test_reproduce_names_the_fetch_for_a_trace_not_in_the_cache(
    cache: Path, registered: PublicTrace, tmp_path: Path
) -> None:
    code, output = run("reproduce", "--quick", "--out", str(tmp_path / "report"), "--trace", NAME)
    assert code == 2, output
    assert f"pdcore traces fetch {NAME}" in " ".join(output.split())
    assert not (tmp_path / "report").exists()


def test_traces_list_fits_80_columns_with_no_cell_cut(cache: Path, registered: PublicTrace) -> None:
    console = Console(width=80, file=io.StringIO(), color_system=None)
    console.print(traces_table())
    text = console.file.getvalue()
    assert max(len(line) for line in text.splitlines()) <= 80
    for trace in TRACES.values():
        row = next(line for line in text.splitlines() if line.startswith(trace.name + " "))
        assert trace.licence in row
        assert trace.pin in row
    assert "…" not in text


def test_an_empty_trace_value_is_named(cache: Path) -> None:
    for value in ("", "  "):
        with pytest.raises(InvalidInputError, match="--trace is empty; fix:"):
            trace_path(value)

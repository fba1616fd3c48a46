"""Small things a user meets first: ``pdcore --version``, flags shown as flags in ``--help`` (no ``<bool>``
that reads as a value to pass), and ``pdcore size`` saying which requests it sized."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from pdcore import __version__
from pdcore.cli import app

COMMANDS = [
    [],
    ["compare"],
    ["simulate"],
    ["size"],
    ["optimize"],
    ["reproduce"],
    ["chat"],
    ["serve"],
    ["validate"],
    ["view"],
    ["refine"],
    ["refine-eval"],
    ["profiles", "list"],
]


def test_version_prints_the_package_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"pdcore {__version__}"


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "pdcore")
def test_help_shows_flags_without_a_type(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output
    assert "--help" in result.output


def test_size_says_which_requests_it_sized() -> None:
    whole = CliRunner().invoke(app, ["size", "--policies", "cloud-only"], terminal_width=200)
    assert whole.exit_code == 0, whole.output
    assert "sized on all 2000 requests" in whole.output
    first = CliRunner().invoke(
        app, ["size", "--policies", "cloud-only", "--limit", "300"], terminal_width=200
    )
    assert first.exit_code == 0, first.output
    assert "sized on the first 300 requests" in first.output

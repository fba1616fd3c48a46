"""``pdcore profiles build``: a cloud profile fitted to Vidur's measured operator tables.

Reads ``mlp.csv`` (and ``all_reduce.csv`` at tensor parallelism > 1) of one GPU and model from a Vidur
checkout (``--vidur DIR``) or its git directory at ``--vidur-commit``, fits the iteration model
(`pdcore.profiles.build`) and writes the profile TOML whole (`pdcore.outputs.write_text`). The commit is
recorded in ``[source]``: a checkout's own HEAD when ``--vidur-commit`` is not given.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Annotated

import typer

from pdcore.cli.options import reported, stdout
from pdcore.cli.profiles import profiles_app
from pdcore.exceptions import InvalidInputError
from pdcore.outputs import check_outputs, write_text
from pdcore.profiles.build import build_profile
from pdcore.profiles.cloud_tables import FIT_KINDS
from pdcore.profiles.vidur import VidurSource, checked_commit

__all__ = ["profiles_build", "register"]


def _head(root: Path) -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        done = None
    if done is None or done.returncode != 0:
        raise InvalidInputError(
            f"--vidur {root} is not a git checkout, so its commit is unknown; fix: pass --vidur-commit"
        )
    return done.stdout.strip()


def profiles_build(
    gpu: Annotated[str, typer.Option(help="Vidur's GPU name: a100, h100 or a40.")],
    model: Annotated[str, typer.Option(help="Vidur's model name, e.g. meta-llama/Meta-Llama-3-8B.")],
    out: Annotated[Path, typer.Option(help="The profile TOML to write.")],
    tp: Annotated[int, typer.Option(help="Tensor-parallel degree (1, 2, 4 or 8).", min=1, max=8)] = 1,
    vidur: Annotated[
        Path, typer.Option(help="A Vidur checkout, or its git directory (then give --vidur-commit).")
    ] = Path("vidur"),
    vidur_commit: Annotated[
        str | None, typer.Option(help="The Vidur commit to read and record (default: the checkout's HEAD).")
    ] = None,
) -> None:
    """Build a cloud profile from Vidur's measured operator tables and print its fit errors."""
    with reported():
        if not vidur.is_dir():
            raise InvalidInputError(
                f"--vidur {vidur} is not a directory; fix: clone github.com/microsoft/vidur and pass its path"
            )
        commit = checked_commit(vidur_commit) if vidur_commit is not None else _head(vidur)
        check_outputs({"--out": out})
        profile, text = build_profile(VidurSource(vidur, commit), gpu, model, tp)
        write_text(out, text)
        fit = profile.fit
        errors = ", ".join(
            f"{kind} {fit.mean[kind]:.1%} mean / {fit.max[kind]:.1%} max"
            for kind in FIT_KINDS
            if fit is not None
        )
        stdout().print(f"wrote {out} ({profile.name}): knee {profile.prefill_knee_tokens} tokens; {errors}")


def register(app: typer.Typer) -> None:
    """Adds ``build`` to the ``profiles`` group (`pdcore.cli.profiles`; ``app`` already holds the group)."""
    del app
    profiles_app.command("build")(profiles_build)

"""The live runtime's commands: ``pdcore chat``, ``pdcore profile-device``, ``pdcore profile-cloud`` (its own
module, `pdcore.cli.cloud_profiling`) and ``pdcore validate`` (its own module, `pdcore.cli.validate`).

`register` adds them to the ``pdcore`` Typer app. They need the ``device`` extra (httpx, httpx-sse,
llama-cpp-python), imported only when a command runs, so the simulator's commands work without it. The
cloud URL comes from ``--cloud-url`` or ``PDCORE_CLOUD_URL`` and the API key from
``PDCORE_CLOUD_API_KEY`` (never printed). The device's model runs in a worker process
(`pdcore.runtime.Device.llama`): a failure of it is a notice, and the cloud finishes the answer. Errors
pdcore raises on purpose print one red line with exit code 2; ``validate`` exits with 1 when the simulator
misses the agreement goal.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from pdcore.cli.chat_pieces import check_chat_pieces
from pdcore.cli.cloud_profiling import profile_cloud
from pdcore.cli.live_options import CloudUrlOption, MaxTpotOption, ModelOption, ProfileOption, ThreadsOption
from pdcore.cli.live_options import cloud_params as _params
from pdcore.cli.live_options import device_profile as _profile
from pdcore.cli.live_options import device_threads as _threads
from pdcore.cli.live_options import k_flag as _k
from pdcore.cli.live_options import lengths_flag as _lengths
from pdcore.cli.live_options import ms as _ms
from pdcore.cli.options import check_outputs, default_model, reported, stderr
from pdcore.cli.validate import validate as validate_command
from pdcore.exceptions import CloudUnavailableError
from pdcore.outputs import write_text
from pdcore.slo import DEFAULT_MAX_TPOT_S

if TYPE_CHECKING:
    from collections.abc import Callable

    from rich.console import Console

    from pdcore.runtime import CloudClient, Device, Session
    from pdcore.runtime.timeline import Notice, Timeline

__all__ = ["register"]


def _summary_table(timeline: Timeline) -> Table:
    summary = timeline.summary()
    table = Table(title="timing", title_justify="left", show_header=False)
    table.add_column("metric", style="bold", no_wrap=True)
    table.add_column("value")
    by_source = summary["tokens_by_source"]
    rows = [
        ("mode", f"{summary['mode']}" + (f", k = {summary['k']}" if summary["k"] is not None else "")),
        ("TTFT", _ms(summary["ttft_s"])),
        ("cloud's own TTFT", _ms(summary["cloud_ttft_s"])),
        ("tokens", f"{summary['tokens']} ({by_source['cloud']} from the cloud, "
            f"{by_source['device']} from the device)"),
        ("hand-off", "-" if summary["handoff_s"] is None else
            f"at {_ms(summary['handoff_s'])}, position {summary['handoff_position']}"),
        ("prompt prefilled on device", _ms(summary["prompt_prefilled_s"])),
        ("largest gap", _ms(summary["max_gap_s"]) + f" (max_tpot {timeline.max_tpot_s * 1e3:g} ms)"),
        ("largest gaps", ", ".join(
            f"{gap['gap_s'] * 1e3:.0f} ms @{gap['position']} ({gap['cause']})"
            for gap in summary["largest_gaps"][:3]
        ) or "-"),
        ("mean gap", _ms(summary["mean_gap_s"])),
        ("end to end", _ms(summary["e2e_s"])),
        ("cloud stream", str(summary["cloud_end"] or "-")),
    ]  # fmt: skip
    for key, value in rows:
        table.add_row(key, escape(value))
    return table


def chat(
    prompt: Annotated[str, typer.Argument(help="The user's message (wrapped in ChatML unless --raw).")],
    *,
    cloud_url: CloudUrlOption = None,
    k: Annotated[
        str, typer.Option("--k", help="Cloud tokens after the first, or 'auto' (needs a profile).")
    ] = "auto",
    model: ModelOption = None,
    profile: ProfileOption = None,
    threads: ThreadsOption = None,
    mode: Annotated[
        str, typer.Option("--mode", help="pd-device, device-only or cloud-only (as the policies).")
    ] = "pd-device",
    max_tokens: Annotated[int, typer.Option("--max-tokens", help="Longest answer, in tokens.")] = 256,
    max_tpot: MaxTpotOption = DEFAULT_MAX_TPOT_S,
    min_tpot: Annotated[float, typer.Option("--min-tpot", help="Smallest display gap, seconds.")] = 0.0,
    raw: Annotated[
        bool, typer.Option("--raw", help="Send PROMPT as is, without the ChatML wrapper.")
    ] = False,
    cloud_param: Annotated[
        list[str] | None, typer.Option("--cloud-param", help="Extra request field KEY=VALUE (repeatable).")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the per-token timeline as JSON.")
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Fail if the display falls behind real time.")
    ] = False,
    api: Annotated[
        str, typer.Option("--api", help="The endpoint's API: completions, or chat for chat-only endpoints.")
    ] = "completions",
) -> None:
    """Stream an answer with P/D-Device: the cloud's first tokens, then the local model's."""
    with reported(live=True):
        check_outputs({"--json": json_out}, {"--model": model})
        check_chat_pieces(mode, model)
        from pdcore.runtime import (  # noqa: PLC0415  # reason: the optional runtime
            CloudClient,
            Device,
            RealtimeClock,
            Session,
            chatml,
        )

        mode = _chat_mode(mode)
        console = stderr()
        notices = _Notices(console, hold=mode == "cloud-only")
        chosen_profile = _profile(profile, threads, model, needed=mode == "pd-device" and _k(k) == "auto")
        try:
            timeline = _answer(
                prompt if raw else chatml(prompt),
                mode=mode,
                cloud=lambda: CloudClient(cloud_url, extra_body=_params(cloud_param), api=api),
                device=lambda: Device.llama(default_model(model), n_threads=_threads(threads)),
                session=lambda cloud, device: Session(
                    cloud=cloud,
                    device=device,
                    device_profile=chosen_profile,
                    k=_k(k),
                    mode=mode,
                    max_tokens=max_tokens,
                    max_tpot_s=max_tpot,
                    min_tpot_s=min_tpot,
                    clock=RealtimeClock(strict=strict),
                    on_notice=notices,
                ),
                before_piece=notices.flush,
            )
        except CloudUnavailableError as exc:
            notices.drop(str(exc))  # the error says it: once
            raise
        finally:
            notices.flush()
        console.print(_summary_table(timeline))
        if json_out is not None:
            timeline.write_json(json_out)
            console.print(f"wrote {escape(str(json_out))}")


class _Notices:
    """The chat's notices, on standard error as they come; in cloud-only mode each is held until the
    answer's next piece, the next notice or the end, because a cloud that fails before any token ends the
    command with an error in the notice's own words, which is then said once (as the error)."""

    def __init__(self, console: Console, *, hold: bool) -> None:
        self.console = console
        self.hold = hold
        self.held: str | None = None

    def __call__(self, event: Notice) -> None:
        if not self.hold:
            self._print(event.message)
            return
        self.flush()
        self.held = event.message

    def flush(self) -> None:
        """Prints the held notice, if any."""
        if self.held is not None:
            self._print(self.held)
            self.held = None

    def drop(self, message: str) -> None:
        """Forgets the held notice if the error about to be printed says the same."""
        if self.held == message:
            self.held = None

    def _print(self, message: str) -> None:
        self.console.print(f"[yellow]notice:[/yellow] {escape(message)}", soft_wrap=True)


def _chat_mode(mode: str) -> str:
    """The mode ``--mode`` names (a name `check_chat_pieces` has checked); an old name gives its new one,
    with a note."""
    from pdcore.runtime import OLD_MODES  # noqa: PLC0415  # reason: the optional runtime

    if mode in OLD_MODES:
        stderr().print(
            f"[yellow]note:[/yellow] --mode {mode} is now called --mode {OLD_MODES[mode]}; the old name "
            "will be removed in the next release",
            soft_wrap=True,
        )
        mode = OLD_MODES[mode]
    return mode


def _answer(
    prompt: str,
    *,
    mode: str,
    cloud: Callable[[], CloudClient],
    device: Callable[[], Device],
    session: Callable[[CloudClient | None, Device | None], Session],
    before_piece: Callable[[], None],
) -> Timeline:
    """`_stream_answer`, run to its end."""
    return asyncio.run(
        _stream_answer(
            prompt, mode=mode, cloud=cloud, device=device, session=session, before_piece=before_piece
        )
    )


async def _stream_answer(
    prompt: str,
    *,
    mode: str,
    cloud: Callable[[], CloudClient],
    device: Callable[[], Device],
    session: Callable[[CloudClient | None, Device | None], Session],
    before_piece: Callable[[], None],
) -> Timeline:
    """Streams the answer to standard output with the session ``session`` builds over the cloud and the
    device ``mode`` needs (``before_piece`` called before each piece is written); returns its timeline."""
    client = cloud() if mode != "device-only" else None
    local = device() if mode != "cloud-only" else None
    answering = session(client, local)
    try:
        async for piece in answering.stream(prompt):
            before_piece()
            sys.stdout.write(piece.text)
            sys.stdout.flush()
    finally:
        if client is not None:
            await client.aclose()
        if local is not None:
            local.close()
    sys.stdout.write("\n")
    sys.stdout.flush()
    assert answering.timeline is not None
    return answering.timeline


def profile_device(
    *,
    out: Annotated[Path, typer.Option("--out", help="Where to write the profile TOML.")],
    model: Annotated[Path | None, typer.Option("--model", help="GGUF model; default SmolLM2-135M.")] = None,
    threads: Annotated[int | None, typer.Option("--threads", help="Threads (llama.cpp).")] = None,
    lengths: Annotated[
        str, typer.Option("--lengths", help="Prompt lengths to measure, comma-separated tokens.")
    ] = "64,128,256,512,1024,2048",
    repeats: Annotated[int, typer.Option("--repeats", help="Prefill runs per length (median kept).")] = 3,
    decode_tokens: Annotated[int, typer.Option("--decode-tokens", help="Tokens decoded per length.")] = 16,
    name: Annotated[
        str | None, typer.Option("--name", help="Profile name; default MODEL-cpuTHREADS.")
    ] = None,
    n_ctx: Annotated[int, typer.Option("--n-ctx", help="Context window.")] = 4096,
) -> None:
    """Measure prefill time and decode TPOT of a local model and write its device profile."""
    with reported(live=True):
        check_outputs({"--out": out}, {"--model": model})
        # reason (both ignores): llama_cpp is the optional `device` extra, imported lazily and
        # absent when the package is type-checked
        import llama_cpp  # type: ignore[import-not-found, unused-ignore]  # noqa: PLC0415

        from pdcore.runtime.device import LlamaEngine  # noqa: PLC0415  # reason: the optional runtime
        from pdcore.runtime.profiler import cpu_name, measure, profile_toml  # noqa: PLC0415  # reason: as above

        path = default_model(model)
        engine = LlamaEngine(path, n_threads=threads, n_ctx=n_ctx)
        console = stderr()
        measured = measure(
            engine,
            lengths=_lengths(lengths, "--lengths"),
            repeats=repeats,
            decode_tokens=decode_tokens,
            progress=lambda line: console.print(escape(line)),
        )
        used = engine.n_threads
        text = profile_toml(
            measured,
            name=name or f"{path.stem.lower()}-cpu{used}",
            model=engine.describe(),
            engine=f"llama.cpp via llama-cpp-python {llama_cpp.__version__}, n_threads = {used}",
            kv_bytes_per_token=engine.kv_bytes_per_token(),
            hardware=f"{cpu_name()}, {used} thread(s)",
        )
        write_text(out, text)
        console.print(f"wrote {escape(str(out))} in {measured.seconds:.0f} s")


def register(app: typer.Typer) -> None:
    """Adds ``chat``, ``profile-device`` and ``validate`` to ``app``."""
    app.command("chat")(chat)
    app.command("profile-device")(profile_device)
    app.command("profile-cloud")(profile_cloud)
    app.command("validate")(validate_command)

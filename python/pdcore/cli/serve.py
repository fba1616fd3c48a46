"""``pdcore serve``: P/D-Device behind an OpenAI-compatible HTTP server (`pdcore.serve`).

`register` adds the command to the ``pdcore`` Typer app. It builds the live session as ``pdcore chat``
does (the shared flags of `pdcore.cli.live_options`: the device's threads and profile, ``--k``), then runs
the app with uvicorn until Ctrl-C or SIGTERM, and closes the cloud's connections and the device's worker
on the way out. The device keeps conversations (`pdcore.runtime.conversation_cache`) unless
``--no-conversation-cache``: a client that resends a conversation's history gets its follow-up prefilled
from the tokens the device already holds. It needs the ``serve`` extra (FastAPI, uvicorn,
prometheus-client) and the ``device`` extra, imported only when the command runs.

Exposure (the rule is ours): the server listens on loopback unless ``--host`` says otherwise, and an
address other than loopback without an API key gets a warning, since anyone who reaches it spends the
cloud's tokens. The API key comes from ``--api-key`` or ``PDCORE_API_KEY`` and is never printed.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from pdcore.cli.live_options import (
    CloudUrlOption,
    MaxTpotOption,
    ModelOption,
    ProfileOption,
    ThreadsOption,
    cloud_params,
    device_profile,
    device_threads,
    k_flag,
)
from pdcore.cli.options import default_model, missing_extra, reported, stderr
from pdcore.exceptions import InvalidInputError
from pdcore.slo import DEFAULT_MAX_TPOT_S

if TYPE_CHECKING:
    from fastapi import FastAPI

    from pdcore.runtime import Notice

__all__ = ["DEFAULT_PORT", "register"]

DEFAULT_PORT = 8000
"""The port of ``pdcore serve`` (llama.cpp's and vLLM's default, the one OpenAI-compatible clients try)."""

API_KEY_ENV = "PDCORE_API_KEY"
"""The environment variable of ``--api-key``."""

DEFAULT_SERVE_MAX_TOKENS = 512
"""The longest answer the server gives (``--max-tokens``); a request's ``max_tokens`` may only lower it."""


def _check_serve_flags(host: str, port: int, max_tokens: int) -> None:
    if isinstance(port, bool) or not 1 <= port <= 65535:
        raise InvalidInputError(f"--port {port!r}; fix: pass a TCP port from 1 to 65535")
    if not host.strip():
        raise InvalidInputError("--host is empty; fix: pass an address, e.g. 127.0.0.1 or 0.0.0.0")
    if isinstance(max_tokens, bool) or not 1 <= max_tokens <= 1 << 20:
        raise InvalidInputError(f"--max-tokens {max_tokens!r}; fix: pass a whole number from 1 to 1048576")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    *,
    cloud_url: CloudUrlOption = None,
    cloud_api: Annotated[
        str, typer.Option("--cloud-api", help="The endpoint's API: completions, or chat for chat-only ones.")
    ] = "completions",
    model: ModelOption = None,
    profile: ProfileOption = None,
    threads: ThreadsOption = None,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on; loopback unless you expose it.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = DEFAULT_PORT,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar=API_KEY_ENV,
            show_default=False,
            help="Key clients must send as a Bearer token.",
        ),
    ] = None,
    k: Annotated[
        str, typer.Option("--k", help="Cloud tokens after the first, or 'auto' (needs a profile).")
    ] = "auto",
    max_tpot: MaxTpotOption = DEFAULT_MAX_TPOT_S,
    max_tokens: Annotated[
        int, typer.Option("--max-tokens", help="Longest answer, in tokens (a request may ask for fewer).")
    ] = DEFAULT_SERVE_MAX_TOKENS,
    cloud_param: Annotated[
        list[str] | None, typer.Option("--cloud-param", help="Extra request field KEY=VALUE (repeatable).")
    ] = None,
    conversation_cache: Annotated[
        bool,
        typer.Option(
            "--conversation-cache/--no-conversation-cache",
            help="Keep each conversation's KV on the device, so a follow-up prefills only its new tokens.",
        ),
    ] = True,
) -> None:
    """Serve P/D-Device behind an OpenAI-compatible API (chat, completions, models, health, metrics)."""
    with reported(live=True):
        _check_serve_flags(host, port, max_tokens)
        try:
            # reason (both): the optional serve extra, imported when the command runs
            import prometheus_client  # noqa: F401, PLC0415
            import uvicorn  # noqa: PLC0415
        except ModuleNotFoundError as error:
            raise InvalidInputError(
                missing_extra(error.name or str(error), "serve", "pdcore serve")
            ) from None
        app = _app(
            cloud_url=cloud_url, cloud_api=cloud_api, model=model, profile=profile,
            threads=threads, api_key=api_key or None, k=k, max_tpot=max_tpot, max_tokens=max_tokens,
            cloud_param=cloud_param, conversation_cache=conversation_cache,
        )  # fmt: skip
        console = stderr()
        if not _loopback(host) and not api_key:
            console.print(
                f"[yellow]warning:[/yellow] listening on {escape(host)} without an API key: anyone who "
                f"reaches it spends the cloud's tokens; fix: pass --api-key or set {API_KEY_ENV}",
                soft_wrap=True,
            )
        console.print(f"serving {escape(app.state.served.model_id)} on http://{escape(host)}:{port}/v1")
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


def _app(
    *,
    cloud_url: str | None,
    cloud_api: str,
    model: Path | None,
    profile: str | None,
    threads: int | None,
    api_key: str | None,
    k: str,
    max_tpot: float,
    max_tokens: int,
    cloud_param: list[str] | None,
    conversation_cache: bool,
) -> FastAPI:
    """The app over a session built from the flags (as ``pdcore chat`` builds its own)."""
    from pdcore.runtime import CloudClient, Device, Session  # noqa: PLC0415  # reason: the optional runtime
    from pdcore.serve import create_app  # noqa: PLC0415  # reason: needs the serve extra
    from pdcore.serve.conversation import (  # noqa: PLC0415  # reason: as above
        device_chat_template,
        device_context,
    )

    console = stderr()

    def notice(event: Notice) -> None:
        console.print(f"[yellow]notice:[/yellow] {escape(event.message)}", soft_wrap=True)

    planned_k = k_flag(k)
    chosen = device_profile(profile, threads, model, needed=planned_k == "auto")
    path = default_model(model)
    cloud = CloudClient(cloud_url, extra_body=cloud_params(cloud_param), api=cloud_api)
    device = Device.llama(
        path, n_threads=device_threads(threads), profile=chosen, conversation_cache=conversation_cache
    )
    try:
        session = Session(
            cloud=cloud, device=device, device_profile=chosen, k=planned_k, max_tokens=max_tokens,
            max_tpot_s=max_tpot, on_notice=notice,
        )  # fmt: skip
    except BaseException:
        device.close()
        raise

    async def close() -> None:
        await cloud.aclose()
        device.close()

    return create_app(
        session,
        model_id=path.stem,
        api_key=api_key,
        chat_template=device_chat_template(device),
        context_tokens=device_context(device),
        on_startup=cloud.warm,
        on_shutdown=close,
    )


def register(app: typer.Typer) -> None:
    """Adds ``serve`` to ``app``."""
    app.command("serve")(serve)

"""``pdcore profiles list`` and ``pdcore profiles show``: the shipped device, cloud and network profiles."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from pdcore.cli.options import reported, stdout
from pdcore.exceptions import ProfileError
from pdcore.profiles import (
    CloudProfile,
    DeviceProfile,
    NetworkProfile,
    list_cloud_profiles,
    list_device_profiles,
    list_network_presets,
    load_cloud_profile,
    load_device_profile,
    network_preset,
)

__all__ = ["register"]

profiles_app = typer.Typer(
    help="List and show the shipped device, cloud and network profiles.", no_args_is_help=True
)


@profiles_app.command("list")
def profiles_list() -> None:
    """List the shipped device and cloud profiles and the network presets."""
    with reported():
        console = stdout()
        devices = Table(title="device profiles", title_justify="left", header_style="bold")
        for column in ("name", "hardware", "prefill 1k tok (s)", "decode TPOT (ms)"):
            devices.add_column(column)
        for name in list_device_profiles():
            profile = load_device_profile(name)
            devices.add_row(
                name,
                profile.hardware,
                f"{profile.prefill_s(1024):.2f}",
                f"{profile.decode_tpot_s(1024) * 1e3:.1f}",
            )
        clouds = Table(title="cloud profiles", title_justify="left", header_style="bold")
        for column in ("name", "gpu", "TP", "prefill 1k tok alone (ms)"):
            clouds.add_column(column)
        for name in list_cloud_profiles():
            cloud = load_cloud_profile(name)
            clouds.add_row(
                name, cloud.gpu, str(cloud.tensor_parallel), f"{cloud.iteration_s([1024], []) * 1e3:.1f}"
            )
        networks = Table(title="network presets", title_justify="left", header_style="bold")
        for column in ("name", "RTT (ms)", "bandwidth (Mbit/s)", "jitter (ms)"):
            networks.add_column(column)
        for name in list_network_presets():
            preset = network_preset(name)
            networks.add_row(
                name,
                f"{preset.rtt_s * 1e3:g}",
                f"{preset.bandwidth_bps / 1e6:g}",
                f"{preset.jitter_s * 1e3:g}",
            )
        console.print(devices)
        console.print(clouds)
        console.print(networks)


def _find_profile(name: str) -> DeviceProfile | CloudProfile | NetworkProfile:
    if name in list_device_profiles():
        return load_device_profile(name)
    if name in list_cloud_profiles():
        return load_cloud_profile(name)
    if name in list_network_presets():
        return network_preset(name)
    if name.endswith(".toml"):
        try:
            return load_device_profile(name)
        except ProfileError as device_error:
            try:
                return load_cloud_profile(name)
            except ProfileError:
                raise device_error from None
    known = ", ".join([*list_device_profiles(), *list_cloud_profiles(), *list_network_presets()])
    raise ProfileError(
        f"unknown profile {name!r}; fix: pass one of {known} (see `pdcore profiles list`), or a .toml path"
    )


@profiles_app.command("show")
def profiles_show(
    name: Annotated[str, typer.Argument(help="Profile or preset name, or a .toml path.")],
) -> None:
    """Show one profile: its numbers and where they come from."""
    with reported():
        profile = _find_profile(name)
        table = Table(title=profile.name, title_justify="left", show_header=False)
        table.add_column("key", style="bold", no_wrap=True)
        table.add_column("value", overflow="fold")
        if isinstance(profile, DeviceProfile):
            rows: list[tuple[str, str]] = [
                ("kind", "device"),
                ("description", profile.description),
                ("hardware", profile.hardware),
                ("model", profile.model),
                ("engine", profile.engine),
                ("prefill tokens", ", ".join(f"{v:g}" for v in profile.prefill_tokens)),
                ("prefill seconds", ", ".join(f"{v:g}" for v in profile.prefill_seconds)),
                ("decode context", ", ".join(f"{v:g}" for v in profile.decode_context_tokens)),
                ("decode TPOT (s)", ", ".join(f"{v:g}" for v in profile.decode_tpot)),
                ("citation", profile.citation),
                ("notes", profile.notes),
                ("file", profile.source),
            ]
        elif isinstance(profile, CloudProfile):
            rows = [
                ("kind", "cloud"),
                ("description", profile.description),
                ("model", profile.model),
                ("gpu", f"{profile.gpu} (tensor parallel {profile.tensor_parallel})"),
                *((key, f"{value:g}") for key, value in profile.coefficients().items()),
                ("max_batch_size", str(profile.max_batch_size)),
                ("max_tokens_per_iteration", str(profile.max_tokens_per_iteration)),
                ("kv_cache_tokens", str(profile.kv_cache_tokens)),
                ("gpus_per_replica", str(profile.gpus_per_replica)),
                ("kv bytes per token", str(profile.kv_bytes_per_token)),
                ("citation", profile.citation),
                ("notes", profile.notes),
                ("file", profile.source),
            ]
        else:
            rows = [
                ("kind", "network"),
                ("rtt_s", f"{profile.rtt_s:g}"),
                ("bandwidth_bps", f"{profile.bandwidth_bps:g}"),
                ("jitter_s", f"{profile.jitter_s:g}"),
                ("description", profile.description),
            ]
        for key, value in rows:
            table.add_row(key, escape(value))
        stdout().print(table)


def register(app: typer.Typer) -> None:
    """Adds the ``profiles`` command group to ``app``."""
    app.add_typer(profiles_app, name="profiles")

"""Lookup of the profiles shipped with pdcore, by name or by path.

Shipped device and cloud profiles are the TOML files under ``pdcore/profiles/data/device`` and
``pdcore/profiles/data/cloud``, read with `importlib.resources` so they work from a wheel as well as a
source tree. A profile's registry name is its file stem. Anything that looks like a path (an
`os.PathLike`, or a string that holds a path separator or ends in ``.toml`` in any case: `is_profile_path`,
the one rule every command shares) is read as a file instead. Every profile file read, a user's or a
shipped one, is noted as an input of the run (`pdcore.inputs.note_input`), so no output of the run can
replace it and no report directory swapped in can delete it.

The default profiles (`DEFAULT_DEVICE`, `DEFAULT_CLOUD`, `DEFAULT_NETWORK`) are the setting of the headline
results, and what every command runs with when no profile is named.
"""

from __future__ import annotations

import hashlib
import os
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from pdcore.exceptions import ProfileError
from pdcore.inputs import names_file, note_input
from pdcore.profiles._toml import parse_toml
from pdcore.profiles.cloud import CloudProfile
from pdcore.profiles.device import DeviceProfile
from pdcore.profiles.network import NETWORK_PRESETS, NetworkProfile

if sys.version_info >= (3, 11):
    from importlib.resources.abc import Traversable
else:  # pragma: no cover - exercised on Python 3.10 only
    from importlib.abc import Traversable

__all__ = [
    "DEFAULT_CLOUD",
    "DEFAULT_DEVICE",
    "DEFAULT_NETWORK",
    "SHIPPED_PREFIX",
    "is_profile_path",
    "list_cloud_profiles",
    "list_device_profiles",
    "list_network_presets",
    "load_cloud_profile",
    "load_device_profile",
    "network_preset",
    "profile_provenance",
]

SHIPPED_PREFIX = "pdcore/profiles/data/"
"""How a shipped profile's ``source`` starts (a user file's ``source`` is its path)."""

DEFAULT_DEVICE = "llama32-3b-w4a16-8elite-genie"
"""The phone-class device of the headline results: Llama-3.2-3B on a Snapdragon 8 Elite NPU."""

DEFAULT_CLOUD = "llama3-8b-a100"
"""The cloud replica of the headline results: Llama-3-8B on one A100."""

DEFAULT_NETWORK = "wifi"
"""The network preset of the headline results."""


def _data_dir(kind: str) -> Traversable:
    return resources.files("pdcore.profiles").joinpath("data").joinpath(kind)


def _shipped(kind: str) -> dict[str, Traversable]:
    folder = _data_dir(kind)
    if not folder.is_dir():
        return {}
    return {
        entry.name.removesuffix(".toml"): entry
        for entry in folder.iterdir()
        if entry.is_file() and entry.name.endswith(".toml")
    }


def is_profile_path(name_or_path: str | os.PathLike[str]) -> bool:
    """Whether a profile flag's value names a file rather than a shipped profile (`pdcore.inputs.names_file`:
    an `os.PathLike`, or text with a path separator or a ``.toml`` suffix in any case)."""
    return names_file(name_or_path, ".toml")


def _read_shipped(kind: str, name: str, flag: str) -> tuple[str, str]:
    entries = _shipped(kind)
    entry = entries.get(name)
    if entry is None:
        known = ", ".join(sorted(entries)) or "(none)"
        hint = f" (to read the file {name!r}, pass ./{name})" if Path(name).is_file() else ""
        raise ProfileError(
            f"unknown {kind} profile {name!r}; fix: pass one of {known} to {flag}, or the path of a .toml "
            f"{kind} profile{hint}"
        )
    if isinstance(entry, os.PathLike):
        note_input(entry)  # the package's own file: no output may replace it either
    return entry.read_text(encoding="utf-8"), f"{SHIPPED_PREFIX}{kind}/{entry.name}"


def list_device_profiles() -> list[str]:
    """Returns the names of the shipped device profiles, sorted."""
    return sorted(_shipped("device"))


def list_cloud_profiles() -> list[str]:
    """Returns the names of the shipped cloud profiles, sorted."""
    return sorted(_shipped("cloud"))


def list_network_presets() -> list[str]:
    """Returns the names of the network presets, sorted."""
    return sorted(NETWORK_PRESETS)


def load_device_profile(name_or_path: str | os.PathLike[str]) -> DeviceProfile:
    """Loads a device profile by shipped name or from a TOML file.

    Args:
        name_or_path: A name from `list_device_profiles`, or a path to a profile file (`is_profile_path`);
            the file read is noted as an input of the run.

    Returns:
        The validated profile.

    Raises:
        ProfileError: The name is unknown (the message lists the known ones), the file is missing, or the
            profile is invalid.
    """
    if is_profile_path(name_or_path):
        note_input(name_or_path)
        return DeviceProfile.from_toml_file(Path(name_or_path))
    text, source = _read_shipped("device", str(name_or_path), "--device")
    return DeviceProfile.from_mapping(parse_toml(text, source), source=source)


def load_cloud_profile(name_or_path: str | os.PathLike[str]) -> CloudProfile:
    """Loads a cloud profile by shipped name or from a TOML file.

    Args:
        name_or_path: A name from `list_cloud_profiles`, or a path to a profile file (`is_profile_path`);
            the file read is noted as an input of the run.

    Returns:
        The validated profile.

    Raises:
        ProfileError: The name is unknown (the message lists the known ones), the file is missing, or the
            profile is invalid.
    """
    if is_profile_path(name_or_path):
        note_input(name_or_path)
        return CloudProfile.from_toml_file(Path(name_or_path))
    text, source = _read_shipped("cloud", str(name_or_path), "--cloud")
    return CloudProfile.from_mapping(parse_toml(text, source), source=source)


def network_preset(name: str) -> NetworkProfile:
    """Returns the network preset called ``name``.

    Raises:
        ProfileError: No preset has that name (the message lists the known ones).
    """
    preset = NETWORK_PRESETS.get(name)
    if preset is None:
        raise ProfileError(
            f"unknown network preset {name!r}; fix: pass one of {', '.join(list_network_presets())} "
            "to --network"
        )
    return preset


def profile_provenance(profile: DeviceProfile | CloudProfile) -> dict[str, Any]:
    """Where a profile came from, for a report's ``config``: its name, and the file and its sha256.

    A shipped profile is recorded by its registry name with ``shipped: true``. A profile read from a user's
    file is recorded with ``shipped: false``, the file's resolved path and the sha256 of its bytes, so an
    edited copy of a shipped profile is never mistaken for it (its ``name`` key may still say the shipped
    name). A profile built in memory has neither path nor digest.
    """
    source = profile.source
    if source.startswith(SHIPPED_PREFIX):
        kind, file_name = source.removeprefix(SHIPPED_PREFIX).split("/", 1)
        data = _data_dir(kind).joinpath(file_name).read_bytes()
        return {
            "name": file_name.removesuffix(".toml"),
            "shipped": True,
            "path": source,
            "sha256": hashlib.sha256(data).hexdigest(),
        }
    path = Path(source)
    if not path.is_file():
        return {"name": profile.name, "shipped": False, "path": None, "sha256": None}
    return {
        "name": profile.name,
        "shipped": False,
        "path": str(path.resolve()),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
    }

"""Fleet files: a small TOML file of device classes, read strictly (`load_fleet`).

The format::

    name = "phones-2025"                  # required
    description = "..."                   # required
    [source]                              # optional: where the shares come from, and the assumptions
    citation = "..."
    notes = "..."

    [[class]]                             # one or more
    name = "capable-wifi"                 # unique in the file
    share = 0.28                          # of the requests, 0..1; the shares sum to 1 (within 1e-9)
    device = "llama32-3b-w4a16-8elite-genie"  # a shipped device profile, a .toml path, or "none"
    network = "wifi"                      # a network preset (pdcore profiles list)
    [class.slo]                           # optional: this class's own objectives
    ttft_s = 1.0
    max_tpot_s = 0.05

``device = "none"`` is a class with no device able to run the model: its requests are served by the
cloud alone. A device path is read relative to the fleet file's folder (ours: a fleet and the profiles it
names travel together). Every failure is a `pdcore.exceptions.ProfileError` that names the file, the class
and the key, and says the fix: a missing or unknown key, a share that is not a number, NaN, negative,
above 1, shares that do not sum to 1, a duplicate class name, an unknown device profile or network preset,
an objective that is not a positive number of seconds.

Shipped fleets are the files under ``pdcore/fleets`` (`list_fleets`); a value that looks like a path
(`pdcore.profiles.registry.is_profile_path`) is read as a file, and every file read is noted as an input of
the run (`pdcore.inputs.note_input`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from pdcore.exceptions import InvalidInputError, ProfileError
from pdcore.fleet.fleet import SHARE_SUM_TOLERANCE, ClassSLO, DeviceClass, Fleet
from pdcore.inputs import note_input
from pdcore.limits import MAX_PROFILE_SECONDS
from pdcore.profiles._toml import check_keys, get_str, parse_toml, read_toml
from pdcore.profiles.registry import (
    is_profile_path,
    list_network_presets,
    load_device_profile,
    network_preset,
)

__all__ = ["NO_DEVICE", "SHIPPED_FLEETS", "fleet_from_mapping", "list_fleets", "load_fleet"]

NO_DEVICE = "none"
"""The ``device`` of a class with no capable device (cloud only)."""

SHIPPED_FLEETS = "pdcore/fleets/"
"""How a shipped fleet's ``source`` starts."""

_TOP_KEYS = ("name", "description", "source", "class")
_SOURCE_KEYS = ("citation", "notes")
_CLASS_KEYS = ("name", "share", "device", "network", "slo")
_SLO_KEYS = ("ttft_s", "max_tpot_s")


def _folder() -> Any:
    return resources.files("pdcore").joinpath("fleets")


def list_fleets() -> list[str]:
    """The names of the shipped fleets, sorted."""
    folder = _folder()
    if not folder.is_dir():
        return []
    return sorted(e.name.removesuffix(".toml") for e in folder.iterdir() if e.name.endswith(".toml"))


def _share(table: Mapping[str, Any], where: str) -> float:
    if "share" not in table:
        raise ProfileError(f"{where}: missing key 'share'; fix: add share = <a number from 0 to 1>")
    value = table["share"]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProfileError(f"{where}: share = {value!r} is not a number; fix: write a number from 0 to 1")
    share = float(value)
    if math.isnan(share) or math.isinf(share):
        raise ProfileError(f"{where}: share = {value!r} is not finite; fix: write a number from 0 to 1")
    if share < 0.0:
        raise ProfileError(f"{where}: share = {value!r} is negative; fix: write a number from 0 to 1")
    if share > 1.0:
        raise ProfileError(f"{where}: share = {value!r} is above 1; fix: write a number from 0 to 1")
    return share


def _seconds(table: Mapping[str, Any], key: str, where: str) -> float | None:
    if key not in table:
        return None
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProfileError(f"{where}: {key} = {value!r} is not a number; fix: write seconds above 0")
    seconds = float(value)
    if not (math.isfinite(seconds) and 0.0 < seconds <= MAX_PROFILE_SECONDS):
        raise ProfileError(
            f"{where}: {key} = {value!r}; fix: write a finite number of seconds above 0 and at most "
            f"{MAX_PROFILE_SECONDS:g}"
        )
    return seconds


def _slo(table: Mapping[str, Any], where: str) -> ClassSLO | None:
    if "slo" not in table:
        return None
    slo = table["slo"]
    if not isinstance(slo, Mapping):
        raise ProfileError(f"{where}: 'slo' must be a table; fix: write it as [class.slo]")
    check_keys(slo, "class.slo", _SLO_KEYS, where)
    return ClassSLO(ttft_s=_seconds(slo, "ttft_s", where), max_tpot_s=_seconds(slo, "max_tpot_s", where))


def _device(table: Mapping[str, Any], where: str, folder: Path | None) -> tuple[str, Any]:
    name = get_str(table, "class", "device", where)
    if name == NO_DEVICE:
        return name, None
    target: str | Path = name
    if is_profile_path(name) and folder is not None and not Path(name).is_absolute():
        target = folder / name
    try:
        return name, load_device_profile(target)
    except ProfileError as exc:
        raise ProfileError(
            f'{where}: device = {name!r}: {exc}; or write device = "{NO_DEVICE}" for a class with no '
            "capable device"
        ) from None


def _network(table: Mapping[str, Any], where: str) -> Any:
    name = get_str(table, "class", "network", where)
    try:
        return network_preset(name)
    except ProfileError:
        raise ProfileError(
            f"{where}: network = {name!r} is not a preset; fix: use one of "
            f"{', '.join(list_network_presets())}"
        ) from None


def _classes(document: Mapping[str, Any], source: str, folder: Path | None) -> tuple[DeviceClass, ...]:
    rows = document.get("class")
    if not isinstance(rows, list) or not rows or not all(isinstance(row, Mapping) for row in rows):
        raise ProfileError(
            f"{source}: a fleet needs one or more [[class]] tables; fix: add [[class]] with name, share, "
            "device and network"
        )
    classes: list[DeviceClass] = []
    for index, row in enumerate(rows):
        where = f"{source}: [[class]] #{index + 1}"
        check_keys(row, "class", _CLASS_KEYS, where)
        name = get_str(row, "class", "name", where)
        where = f"{source}: class {name!r}"
        if any(c.name == name for c in classes):
            raise ProfileError(f"{where} is named twice; fix: give each class its own name")
        device_name, device = _device(row, where, folder)
        classes.append(
            DeviceClass(
                name=name,
                share=_share(row, where),
                device=device,
                device_name=device_name,
                network=_network(row, where),
                slo=_slo(row, where),
            )
        )
    total = math.fsum(c.share for c in classes)
    if abs(total - 1.0) > SHARE_SUM_TOLERANCE:
        raise ProfileError(
            f"{source}: the class shares sum to {total:.12g}, not 1 (within {SHARE_SUM_TOLERANCE:g}); fix: "
            "make the [[class]] shares add up to 1, e.g. divide each by their sum"
        )
    return tuple(classes)


def fleet_from_mapping(document: Mapping[str, Any], source: str, folder: Path | None = None) -> Fleet:
    """The fleet of a parsed TOML document (module docstring); ``folder`` resolves relative device paths.

    Raises:
        ProfileError: A bad key or value (the message names ``source``, the class and the fix).
    """
    check_keys(document, "", _TOP_KEYS, source)
    name = get_str(document, "", "name", source)
    description = get_str(document, "", "description", source)
    cited: Mapping[str, Any] = {}
    if "source" in document:
        cited = document["source"]
        if not isinstance(cited, Mapping):
            raise ProfileError(f"{source}: 'source' must be a table; fix: write it as [source]")
        check_keys(cited, "source", _SOURCE_KEYS, source)
    classes = _classes(document, source, folder)
    try:
        return Fleet(
            name=name,
            description=description,
            classes=classes,
            source=source,
            citation=str(cited.get("citation", "")),
            notes=str(cited.get("notes", "")),
        )
    except InvalidInputError as exc:  # pragma: no cover - the checks above come first
        raise ProfileError(f"{source}: {exc}") from None


def load_fleet(name_or_path: str | os.PathLike[str]) -> Fleet:
    """A shipped fleet by name, or a fleet file.

    Raises:
        ProfileError: An unknown name (the message lists the shipped fleets), a missing file, or a bad
            fleet (module docstring).
    """
    if is_profile_path(name_or_path):
        path = Path(name_or_path)
        if not path.is_file():
            what = "is a directory" if path.is_dir() else "does not exist"
            raise ProfileError(f"fleet file {str(path)!r} {what}; fix: pass the path of a .toml fleet")
        note_input(path)
        document = read_toml(path)
        return fleet_from_mapping(document, str(path), folder=path.parent)
    name = str(name_or_path)
    entry = _folder().joinpath(f"{name}.toml")
    if not entry.is_file():
        known = ", ".join(list_fleets()) or "(none)"
        raise ProfileError(f"unknown fleet {name!r}; fix: pass one of {known}, or the path of a .toml fleet")
    if isinstance(entry, os.PathLike):
        note_input(entry)
    source = f"{SHIPPED_FLEETS}{name}.toml"
    return fleet_from_mapping(parse_toml(entry.read_text(encoding="utf-8"), source), source)

"""Fleets: the device classes a service's requests come from (`Fleet`), read from a TOML file
(`load_fleet`; the format in `pdcore.fleet.loader`), and the seeded draw of each request's class
(`Fleet.draw`). Shipped example fleets live in ``pdcore/fleets`` (`list_fleets`)."""

from __future__ import annotations

from pdcore.fleet.fleet import SHARE_SUM_TOLERANCE, ClassSLO, DeviceClass, Fleet
from pdcore.fleet.loader import NO_DEVICE, fleet_from_mapping, list_fleets, load_fleet

__all__ = [
    "NO_DEVICE",
    "SHARE_SUM_TOLERANCE",
    "ClassSLO",
    "DeviceClass",
    "Fleet",
    "fleet_from_mapping",
    "list_fleets",
    "load_fleet",
]

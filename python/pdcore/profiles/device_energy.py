"""A device profile's ``[energy]`` table (`pdcore.profiles.device`): what the device's work costs in energy.

Joules per prefilled and per decoded token, the SoC's power while a request waits on the network (W, radio
excluded: the network profile prices the radio) and the stated battery (Wh, > 0), each finite and >= 0 and
at most `MAX_ENERGY` (`pdcore._core.Prices` prices them). The table is optional; when present it has all
four keys.
"""

from __future__ import annotations

from dataclasses import dataclass

from pdcore.exceptions import ProfileError
from pdcore.profiles._toml import Table, check_keys, get_float, get_table

__all__ = ["ENERGY_KEYS", "MAX_ENERGY", "DeviceEnergy", "read_energy"]

ENERGY_KEYS = ("prefill_j_per_token", "decode_j_per_token", "wait_w", "battery_wh")
"""The keys of the ``[energy]`` table, in the order a profile writes them."""

MAX_ENERGY = 1e6
"""The largest joule, watt or watt-hour figure a profile may give."""


@dataclass(frozen=True)
class DeviceEnergy:
    """What the device's work costs in energy (a device profile's ``[energy]`` table).

    Attributes:
        prefill_j_per_token: Joules per prefilled token.
        decode_j_per_token: Joules per decoded token.
        wait_w: SoC power while a request waits on the network, radio excluded, W.
        battery_wh: The stated battery, Wh (> 0).
    """

    prefill_j_per_token: float
    decode_j_per_token: float
    wait_w: float
    battery_wh: float

    def check(self, source: str) -> None:
        """Refuses a value that is not a finite number in range, naming its key (``source``: the file).

        Raises:
            ProfileError: A value is not a number, is negative or above `MAX_ENERGY`, or the battery is 0.
        """
        for key in ENERGY_KEYS:
            value = getattr(self, key)
            bad = isinstance(value, bool) or not isinstance(value, (int, float))
            bad = bad or not 0.0 <= float(value) <= MAX_ENERGY
            if bad or (key == "battery_wh" and value == 0):
                bound = "greater than 0" if key == "battery_wh" else "0 or more"
                raise ProfileError(
                    f"{source}: key '[energy] {key}' = {value!r}; fix: it must be a finite number "
                    f"{bound}, at most {MAX_ENERGY:g}"
                )

    def as_table(self) -> dict[str, float]:
        """The ``[energy]`` table's keys and values."""
        return {key: getattr(self, key) for key in ENERGY_KEYS}


def read_energy(table: Table, source: str) -> DeviceEnergy | None:
    """The ``[energy]`` table of a parsed profile, or None when it has none.

    Raises:
        ProfileError: A key is missing, unknown, mistyped or out of range.
    """
    if "energy" not in table:
        return None
    spent = get_table(table, "energy", source)
    check_keys(spent, "energy", ENERGY_KEYS, source)
    values = {
        key: get_float(spent, "energy", key, source, positive=key == "battery_wh", maximum=MAX_ENERGY)
        for key in ENERGY_KEYS
    }
    return DeviceEnergy(**values)

"""A deployment's prices, assembled from its three profiles (`pdcore._core.Prices`).

The cloud profile gives the GPU-hour price (``[price]``) and the wire's bytes (``[wire]``), the device
profile its energy per token, waiting power and battery (``[energy]``), the network its radio model
(`pdcore.profiles.network.RadioEnergy`). A deployment missing any of them has no prices: its bill is
unknown, and the optimizer cannot weigh cost and energy.
"""

from __future__ import annotations

from pdcore._core import Prices
from pdcore.profiles.cloud import CloudProfile
from pdcore.profiles.device import DeviceProfile
from pdcore.profiles.network import NetworkProfile

__all__ = ["missing_prices", "prices"]


def missing_prices(cloud: CloudProfile, device: DeviceProfile, network: NetworkProfile) -> list[str]:
    """What the profiles lack for a bill, as the tables to add (empty when every figure is known)."""
    missing = []
    if cloud.usd_per_gpu_hour is None:
        missing.append(f"cloud profile {cloud.name!r}: [price]")
    if cloud.prompt_bytes_per_token is None:
        missing.append(f"cloud profile {cloud.name!r}: [wire]")
    if device.energy is None:
        missing.append(f"device profile {device.name!r}: [energy]")
    if network.radio is None:
        missing.append(f"network {network.name!r}: radio")
    return missing


def prices(cloud: CloudProfile, device: DeviceProfile, network: NetworkProfile) -> Prices | None:
    """The deployment's prices, or None when a profile lacks its figures (`missing_prices`)."""
    energy, radio, usd = device.energy, network.radio, cloud.usd_per_gpu_hour
    if energy is None or radio is None or usd is None or cloud.prompt_bytes_per_token is None:
        return None
    return Prices(
        usd_per_gpu_hour=usd,
        prefill_j_per_token=energy.prefill_j_per_token,
        decode_j_per_token=energy.decode_j_per_token,
        wait_w=energy.wait_w,
        radio_base_w=radio.base_w,
        radio_up_j_per_byte=radio.up_j_per_byte,
        radio_down_j_per_byte=radio.down_j_per_byte,
        radio_fixed_j=radio.fixed_j,
        battery_wh=energy.battery_wh,
    )

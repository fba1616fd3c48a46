"""Speed profiles: devices (prefill/decode curves), cloud replicas (iteration-time model), networks."""

from __future__ import annotations

from pdcore.profiles.cloud import CloudProfile
from pdcore.profiles.device import DeviceProfile
from pdcore.profiles.network import NETWORK_PRESETS, NetworkProfile
from pdcore.profiles.registry import (
    DEFAULT_CLOUD,
    DEFAULT_DEVICE,
    DEFAULT_NETWORK,
    list_cloud_profiles,
    list_device_profiles,
    list_network_presets,
    load_cloud_profile,
    load_device_profile,
    network_preset,
    profile_provenance,
)

__all__ = [
    "DEFAULT_CLOUD",
    "DEFAULT_DEVICE",
    "DEFAULT_NETWORK",
    "NETWORK_PRESETS",
    "CloudProfile",
    "DeviceProfile",
    "NetworkProfile",
    "list_cloud_profiles",
    "list_device_profiles",
    "list_network_presets",
    "load_cloud_profile",
    "load_device_profile",
    "network_preset",
    "profile_provenance",
]

"""Cloud-to-device network profiles: latency, jitter and downlink bandwidth.

Per-request one-way delay is ``rtt_s / 2`` plus a half-normal extra delay whose standard deviation is
``jitter_s``: the extra is ``|Z| * jitter_s / sqrt(1 - 2/pi)`` with ``Z`` standard normal, so it is never
negative (no packet arrives before the propagation floor), its standard deviation is exactly ``jitter_s``
and its mean is ``jitter_s * sqrt(2/pi) / sqrt(1 - 2/pi)`` (about 1.32 x ``jitter_s``). Transfers are
charged ``8 * nbytes / bandwidth_bps`` seconds of serialisation on top of the delay.

The presets are typical figures for each access technology, not measurements of a particular network:
use them as scenarios and pass measured values for a real deployment.

Radio energy (`RadioEnergy`, the linear power model of Huang et al., "A Close Examination of Performance
and Power Characteristics of 4G LTE Networks", MobiSys 2012): while a request's connection is open the
radio draws ``base_w`` (the model's beta); each byte sent or received costs the model's alpha, in
mW per Mbit/s = nJ per bit, times 8 (``up_j_per_byte``, ``down_j_per_byte``); and a request that used the
network pays ``fixed_j`` once: the promotion to the connected state and the tail the radio stays in after
the last byte (power x duration of each). The model's Table 3 gives, for LTE, beta 1288.04 mW, alpha_u
438.39 and alpha_d 51.97 mW/Mbps, promotion 1210.7 mW for 260.1 ms, tail 1060.0 mW for 11,576 ms; for
Wi-Fi, beta 132.86 mW, alpha_u 283.17 and alpha_d 137.01 mW/Mbps, promotion 124.4 mW for 79.1 ms, tail
119.3 mW for 238.1 ms. The 5G preset takes LTE's figures (an estimate: non-standalone 5G keeps an LTE
anchor and its tail, and no comparable 5G model is cited here); the LAN preset takes Wi-Fi's (an
estimate: the device reaches the building's network over Wi-Fi). The tail is charged to every request in
full, an upper bound when requests follow one another within it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from pdcore.exceptions import InvalidInputError, ProfileError

__all__ = ["NETWORK_PRESETS", "NetworkProfile", "RadioEnergy"]

_HALF_NORMAL_STD = math.sqrt(1.0 - 2.0 / math.pi)


@dataclass(frozen=True)
class RadioEnergy:
    """The device radio's energy model (module docstring).

    Attributes:
        base_w: Radio power while a request's connection is open, W.
        up_j_per_byte: Energy per byte sent, J.
        down_j_per_byte: Energy per byte received, J.
        fixed_j: Energy once per request that used the network (promotion and tail), J.
        citation: Where the numbers come from.
    """

    base_w: float
    up_j_per_byte: float
    down_j_per_byte: float
    fixed_j: float
    citation: str = ""

    def __post_init__(self) -> None:
        """Refuses a value that is negative or not finite, naming it.

        Raises:
            ProfileError: A value is not a finite number >= 0.
        """
        for key in ("base_w", "up_j_per_byte", "down_j_per_byte", "fixed_j"):
            value = getattr(self, key)
            bad = isinstance(value, bool) or not isinstance(value, (int, float))
            if bad or not (math.isfinite(float(value)) and float(value) >= 0.0):
                raise ProfileError(f"radio energy: {key} = {value!r}; fix: pass a finite number, 0 or more")


def _huang(
    beta_mw: float,
    alpha_u: float,
    alpha_d: float,
    promotion: tuple[float, float],
    tail: tuple[float, float],
    what: str,
) -> RadioEnergy:
    """A `RadioEnergy` from the figures of Huang et al.'s power model (mW, mW/Mbps, (mW, ms) pairs)."""
    fixed = (promotion[0] * promotion[1] + tail[0] * tail[1]) * 1e-6
    return RadioEnergy(
        base_w=beta_mw * 1e-3,
        up_j_per_byte=alpha_u * 8e-9,
        down_j_per_byte=alpha_d * 8e-9,
        fixed_j=fixed,
        citation=f"Huang et al., MobiSys 2012, Table 3 ({what})",
    )


_LTE_RADIO = _huang(1288.04, 438.39, 51.97, (1210.7, 260.1), (1060.0, 11576.0), "LTE")
_WIFI_RADIO = _huang(132.86, 283.17, 137.01, (124.4, 79.1), (119.3, 238.1), "Wi-Fi")


@dataclass(frozen=True)
class NetworkProfile:
    """The network between the cloud and the device.

    Attributes:
        name: Preset name or a label for custom values.
        rtt_s: Round-trip time in seconds (finite, >= 0); the one-way floor is half of it.
        bandwidth_bps: Downlink bandwidth in bits per second (finite, > 0), used for token and KV bytes.
        jitter_s: Standard deviation of the per-request extra one-way delay, in seconds (finite, >= 0).
        description: Where the numbers come from.
        radio: The device radio's energy model, or None when unknown (the run's energy is then unknown).
    """

    name: str
    rtt_s: float
    bandwidth_bps: float
    jitter_s: float
    description: str = ""
    radio: RadioEnergy | None = None

    def __post_init__(self) -> None:
        """Checks the ranges.

        Raises:
            ProfileError: A value is not finite or out of range.
        """
        checks = (
            ("rtt_s", self.rtt_s, False, "e.g. 0.02 for 20 ms"),
            ("bandwidth_bps", self.bandwidth_bps, True, "e.g. 100e6 for 100 Mbit/s"),
            ("jitter_s", self.jitter_s, False, "e.g. 0.005 for 5 ms, or 0 for none"),
        )
        for key, value, positive, example in checks:
            bad = isinstance(value, bool) or not isinstance(value, (int, float))
            if not bad:
                number = float(value)
                bad = not math.isfinite(number) or number < 0.0 or (positive and number == 0.0)
            if bad:
                bound = "greater than 0" if positive else "0 or more"
                raise ProfileError(
                    f"network profile {self.name!r}: {key} = {value!r}; fix: pass a finite number {bound}, "
                    f"{example}"
                )
        object.__setattr__(self, "rtt_s", float(self.rtt_s))
        object.__setattr__(self, "bandwidth_bps", float(self.bandwidth_bps))
        object.__setattr__(self, "jitter_s", float(self.jitter_s))

    @property
    def one_way_floor_s(self) -> float:
        """The minimum one-way delay, ``rtt_s / 2``."""
        return self.rtt_s / 2.0

    def sample_one_way_s(self, n: int, rng: np.random.Generator) -> npt.NDArray[np.float64]:
        """Draws ``n`` per-request one-way delays (distribution in the module docstring).

        Args:
            n: Number of delays, >= 0.
            rng: The random generator (the caller owns the seed).

        Returns:
            float64 array of ``n`` delays in seconds, each >= ``rtt_s / 2``.

        Raises:
            InvalidInputError: ``n`` is negative or not an integer.
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise InvalidInputError(f"n = {n!r}; pass a whole number of delays, 0 or more")
        floor = np.full(int(n), self.one_way_floor_s, dtype=np.float64)
        if self.jitter_s == 0.0:
            return floor
        extra = np.abs(rng.standard_normal(int(n))) * (self.jitter_s / _HALF_NORMAL_STD)
        return floor + extra

    @overload
    def transfer_s(self, nbytes: float) -> float: ...
    @overload
    def transfer_s(self, nbytes: npt.NDArray[Any]) -> npt.NDArray[np.float64]: ...
    def transfer_s(self, nbytes: float | npt.NDArray[Any]) -> float | npt.NDArray[np.float64]:
        """Serialisation time of ``nbytes`` bytes on the downlink (propagation delay not included).

        Args:
            nbytes: Bytes, scalar or array, finite and >= 0.

        Returns:
            ``8 * nbytes / bandwidth_bps`` seconds, as a float or a float64 array.

        Raises:
            InvalidInputError: A byte count is negative or not finite.
        """
        values = np.asarray(nbytes, dtype=np.float64)
        if (~np.isfinite(values) | (values < 0)).any():
            raise InvalidInputError(f"nbytes = {nbytes!r}; byte counts must be finite and 0 or more")
        seconds = values * 8.0 / self.bandwidth_bps
        return float(seconds) if seconds.ndim == 0 else seconds


NETWORK_PRESETS: dict[str, NetworkProfile] = {
    profile.name: profile
    for profile in (
        NetworkProfile(
            name="lan",
            rtt_s=0.001,
            bandwidth_bps=1e9,
            jitter_s=0.0002,
            description="Preset: wired gigabit LAN or an edge server in the same building (RTT 1 ms).",
            radio=_WIFI_RADIO,
        ),
        NetworkProfile(
            name="wifi",
            rtt_s=0.020,
            bandwidth_bps=100e6,
            jitter_s=0.005,
            description="Preset: home Wi-Fi on a fixed broadband line to a nearby cloud region "
            "(RTT 20 ms, 100 Mbit/s down, 5 ms jitter).",
            radio=_WIFI_RADIO,
        ),
        NetworkProfile(
            name="5g",
            rtt_s=0.040,
            bandwidth_bps=50e6,
            jitter_s=0.010,
            description="Preset: 5G non-standalone mobile (RTT 40 ms, 50 Mbit/s down, 10 ms jitter).",
            radio=_LTE_RADIO,
        ),
        NetworkProfile(
            name="lte",
            rtt_s=0.070,
            bandwidth_bps=20e6,
            jitter_s=0.020,
            description="Preset: 4G LTE mobile (RTT 70 ms, 20 Mbit/s down, 20 ms jitter).",
            radio=_LTE_RADIO,
        ),
    )
}
"""Named network scenarios. Typical figures for each technology, not measurements."""

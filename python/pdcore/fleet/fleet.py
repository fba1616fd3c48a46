"""A fleet: the mix of device classes that a service's requests come from, and the seeded draw of each
request's class.

A `DeviceClass` is a share of the requests, the device they run on (a `DeviceProfile`, or None: no
capable device, so the request is served by the cloud alone), the network they arrive over and,
optionally, objectives of their own (`ClassSLO`: each objective not given is the run's). The shares are
in [0, 1] and sum to 1 (`SHARE_SUM_TOLERANCE`); the file format and its checks are in
`pdcore.fleet.loader`.

`Fleet.draw` gives ``n`` requests their classes: ``n`` uniform numbers from NumPy's PCG64 generator seeded
with ``seed`` (`numpy.random.default_rng`), each mapped to the class whose interval of the cumulative
shares holds it (class ``i`` covers ``[s_0 + ... + s_{i-1}, s_0 + ... + s_i)``). So the draw is the same
for the same seed on every machine, a class of share 0 is never drawn, and a class of share 1 is drawn
for every request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from pdcore.exceptions import InvalidInputError
from pdcore.profiles.device import DeviceProfile
from pdcore.profiles.network import NetworkProfile

__all__ = ["SHARE_SUM_TOLERANCE", "ClassSLO", "DeviceClass", "Fleet"]

SHARE_SUM_TOLERANCE = 1e-9
"""How far the shares of a fleet may sum from 1 (rounding in decimal shares written by hand)."""


@dataclass(frozen=True)
class ClassSLO:
    """A class's own objectives; None keeps the run's.

    Attributes:
        ttft_s: TTFT objective, seconds.
        max_tpot_s: The largest display gap, seconds.
    """

    ttft_s: float | None = None
    max_tpot_s: float | None = None

    def describe(self) -> dict[str, float | None]:
        """A JSON-ready record."""
        return {"ttft_s": self.ttft_s, "max_tpot_s": self.max_tpot_s}


@dataclass(frozen=True)
class DeviceClass:
    """One class of the fleet (module docstring).

    Attributes:
        name: Its name, unique in the fleet.
        share: Share of the requests, in [0, 1].
        device: The device profile, or None: no capable device (cloud only).
        device_name: The device as the file names it (a shipped name, a path, or ``"none"``).
        network: The network preset.
        slo: Its own objectives, or None.
    """

    name: str
    share: float
    device: DeviceProfile | None
    device_name: str
    network: NetworkProfile
    slo: ClassSLO | None = None

    @property
    def capable(self) -> bool:
        """Whether the class has a device that can run the model."""
        return self.device is not None

    def describe(self) -> dict[str, Any]:
        """A JSON-ready record."""
        return {
            "name": self.name,
            "share": self.share,
            "device": self.device_name,
            "network": self.network.name,
            "slo": None if self.slo is None else self.slo.describe(),
        }


@dataclass(frozen=True)
class Fleet:
    """The device classes of a service's requests (module docstring).

    Attributes:
        name: The fleet's name.
        description: What it models.
        classes: Its classes, in the file's order.
        source: Where it was read from (a shipped fleet's ``pdcore/fleets/NAME.toml``, else its path).
        citation: Where its shares come from.
        notes: Its assumptions.
    """

    name: str
    description: str
    classes: tuple[DeviceClass, ...]
    source: str = ""
    citation: str = ""
    notes: str = ""
    _edges: npt.NDArray[np.float64] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Checks the shares (the loader has already named the file in its own errors).

        Raises:
            InvalidInputError: No class, a share outside [0, 1], or shares that do not sum to 1.
        """
        if not self.classes:
            raise InvalidInputError(f"fleet {self.name!r} has no class; fix: add at least one [[class]]")
        shares = np.array([c.share for c in self.classes], dtype=np.float64)
        if not (np.all(np.isfinite(shares)) and np.all(shares >= 0.0) and np.all(shares <= 1.0)):
            raise InvalidInputError(f"fleet {self.name!r}: a share is outside [0, 1]; fix: correct it")
        total = float(np.sum(shares))
        if abs(total - 1.0) > SHARE_SUM_TOLERANCE:
            raise InvalidInputError(
                f"fleet {self.name!r}: the shares sum to {total!r}; fix: make them add up to 1"
            )
        edges = np.cumsum(shares)
        edges[-1] = 1.0  # the last class takes what rounding left of [0, 1)
        object.__setattr__(self, "_edges", edges)

    @property
    def capable_share(self) -> float:
        """Share of the requests with a capable device."""
        return float(sum(c.share for c in self.classes if c.capable))

    def devices(self) -> list[DeviceProfile]:
        """The capable classes' devices, each once, in the file's order."""
        out: list[DeviceProfile] = []
        for c in self.classes:
            if c.device is not None and c.device not in out:
                out.append(c.device)
        return out

    def draw(self, n: int, seed: int) -> npt.NDArray[np.int64]:
        """The class index of each of ``n`` requests (module docstring).

        Raises:
            InvalidInputError: ``n`` or ``seed`` is not a whole number >= 0.
        """
        for flag, value in (("n", n), ("seed", seed)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise InvalidInputError(f"{flag} = {value!r}; fix: pass a whole number >= 0")
        uniform = np.random.default_rng(int(seed)).random(int(n))
        drawn = np.searchsorted(self._edges, uniform, side="right")
        return np.minimum(drawn, len(self.classes) - 1).astype(np.int64)

    def describe(self) -> dict[str, Any]:
        """A JSON-ready record."""
        return {
            "name": self.name,
            "description": self.description,
            "source": self.source,
            "capable_share": self.capable_share,
            "classes": [c.describe() for c in self.classes],
        }

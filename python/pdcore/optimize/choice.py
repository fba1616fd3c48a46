"""The optimizer's choice for one request: the mode, ``k``, the refinement ratio, the pace, where the ``k``
tokens are decoded and why (`pdcore.optimize.optimizer` makes it)."""

from __future__ import annotations

from dataclasses import dataclass

from pdcore._core import Choice as _NativeChoice
from pdcore._core import Plan
from pdcore.deprecation import RenamedAttribute, accepts_renamed_keywords

__all__ = ["Choice"]


@dataclass(frozen=True, slots=True)
class Choice:
    """The optimizer's settings for one request.

    Attributes:
        mode: ``"pd"`` (split between cloud and device), ``"device"`` (the device alone: it is faster, or
            the weights prefer it) or ``"cloud"`` (the cloud alone: the weights prefer it).
        k: Cloud decode tokens after the first (0 with ``"device"``).
        refine_ratio: Fraction of the prompt the device prefills.
        max_tpot_s: The display pace the buffer is planned at, seconds (``max_tpot``: its deprecated name).
        first_token_s: Expected arrival of the cloud's first token, seconds from the request's arrival.
        device_ready_s: Expected time of the device's own first token, seconds from arrival.
        converged: False when the catch-up has no fixed point up to ``max_k`` (``k`` is then the cap).
        k_site: Where the ``k`` tokens are decoded: ``"pool"`` or ``"prefill"``.
        k_site_reason: Why there (`pdcore._core.Choice.k_site_reason`).
    """

    mode: str
    k: int
    refine_ratio: float
    max_tpot_s: float
    first_token_s: float
    device_ready_s: float
    converged: bool
    k_site: str = "pool"
    k_site_reason: str = "only-site"
    max_tpot = RenamedAttribute("max_tpot_s")

    @classmethod
    def from_native(cls, c: _NativeChoice, pace: float) -> Choice:
        """The cost model's choice (`pdcore._core.Choice`) as the optimizer's, planned at ``pace``."""
        if c.cloud_alone:
            return cls("cloud", 0, 1.0, pace, c.first_token_s, c.device_ready_s, True, "pool", "no-decode")
        if c.device_alone:
            return cls("device", 0, 1.0, pace, c.first_token_s, c.device_ready_s, True, "pool", "no-decode")
        return cls(
            "pd",
            c.k,
            c.refine_ratio,
            pace,
            c.first_token_s,
            c.device_ready_s,
            c.converged,
            c.k_site,
            c.k_site_reason,
        )

    @accepts_renamed_keywords
    def plan(self, min_tpot_s: float = 0.0) -> Plan:
        """The simulator's plan for this choice, with the speed controller's smallest gap ``min_tpot_s``."""
        if self.mode in ("device", "cloud"):
            return Plan(self.mode, min_tpot_s=min_tpot_s, max_tpot_s=self.max_tpot_s)
        return Plan(
            "pd",
            k=self.k,
            refine_ratio=self.refine_ratio,
            min_tpot_s=min_tpot_s,
            max_tpot_s=self.max_tpot_s,
            k_site=self.k_site,
        )

"""The trace-driven simulator of ``rust/src/sim`` in pure Python, for measuring what the Rust core buys.

`Simulator` takes the inputs of ``pdcore._core.Simulator`` (the per-request arrays, the cloud as a mapping
with `pdcore._core.CloudConfig`'s keyword arguments, the device as a mapping with
`pdcore._core.DeviceCost`'s) and has the same decision loop: `Simulator.next_decision`,
`Simulator.decide`, `Simulator.cloud_load`, `Simulator.results`, `Simulator.summary`. It models every
mode (``cloud``, ``device``, ``pd``, ``naive``, ``kv-transfer``, ``race``) with the same rules, the same
event order and the same arithmetic, so its results equal the native ones bit for bit:

- the event queue is a ``heapq`` of ``(time, priority, seq, kind, request, arg)`` tuples, ordered by
  ``(time, priority, seq)`` with a per-instance ``seq``; every event the native simulator schedules is
  scheduled here in the same order, stale display events included, so ties break identically;
- times are integer nanoseconds; float seconds become nanoseconds as ``round(x * 1e9)`` with halves
  rounded away from zero (Rust's ``f64::round``), and go back as ``ns / 1e9``;
- the pacing rule divides with truncation toward zero (Rust's ``/`` on ``i64``);
- floating-point sums and products are evaluated in the native order (IEEE double in both), and sums of
  whole numbers (tokens, contexts) are exact in both;
- the cloud runs the same continuous batching: FCFS admission under the KV-cache and batch limits,
  decode tokens first, then prefill chunks within the token budget; disaggregated prefill and decode
  pools with the KV cache moved over the link to the least-loaded decode replica; GPU-seconds charged
  per iteration by the same shares;
- the device runs the same prompt prefill, chunked prefill of received cloud tokens, take-over and
  cancellation, with the hand-off estimate revised after every arrival and prefill step and the speed
  controller pacing the buffered cloud tokens;
- display metrics (TTFT, largest gap, TPOT, QoE, the gap histogram) are accumulated token by token as
  the native ``DisplayMetrics`` and ``GapHistogram`` do;
- conversations use the same caches (``sim::caches``): the device's per-session KV cache with its
  least-recently-used eviction, each entry's tokens usable only once they exist (its request's cached
  prefix from the start, its prompt once the device is ready, then one answer token per decode step),
  and the cloud's shared prefix cache of blocks (least recent, deepest first), looked up and filled at
  the same events.

The code is plain, idiomatic Python: classes with ``__slots__``, hot attributes bound to locals in the
per-token loops, no caching the native code does not do.
"""

from __future__ import annotations

import heapq
import itertools
import math
from bisect import bisect_right
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["MODES", "Simulator", "plan_key", "round_ns", "scenario_configs", "secs_to_ns"]

MODES = ("cloud", "device", "pd", "naive", "kv-transfer", "race", "disco", "spec")
K_SITE_NAMES = ("pool", "prefill")
K_SITES = ("pool", "prefill", "both")
MAX_SECS = 9.2e6

M_CLOUD, M_DEVICE, M_PD, M_NAIVE, M_KV, M_RACE, M_DISCO, M_SPEC = range(8)
STREAMED = (M_PD, M_NAIVE, M_DISCO)
"""Modes whose cloud tokens reach the device's token buffer."""

PRIO_CLOUD = 0
PRIO_TOKEN = 1
PRIO_DEVICE = 2
PRIO_DISPLAY = 3
PRIO_ARRIVE = 4

EV_ARRIVE, EV_SUBMIT, EV_ITER_END, EV_KV_ARRIVE, EV_CANCEL, EV_TOKEN, EV_PROMPT_DONE, EV_CHUNK_DONE = range(8)
EV_DISPLAY, EV_SPEC_DRAFTS, EV_SPEC_RESULT = 8, 9, 10

ROLE_MIXED, ROLE_PREFILL, ROLE_DECODE = range(3)

RACE_OPEN, RACE_CLOUD, RACE_DEVICE = range(3)

STREAM_OPEN, STREAM_FINISHED, STREAM_CANCELLED = range(3)

HIST_SUB_BITS = 6
HIST_SUB = 1 << HIST_SUB_BITS


def round_ns(x: float) -> int:
    """Rust's ``(x).round() as i64``: to the nearest integer, halves away from zero."""
    if x >= 0.0:
        r = math.floor(x)
        return r + 1 if x - r >= 0.5 else r
    return -round_ns(-x)


def secs_to_ns(secs: float, arg: str = "secs", index: int | None = None) -> int:
    """Checked float seconds to integer nanoseconds (``Nanos::from_secs``)."""
    if not 0.0 <= secs <= MAX_SECS:  # also catches NaN
        at = arg if index is None else f"{arg}[{index}]"
        raise ValueError(f"{at} = {secs!r} is not a time in [0, {MAX_SECS}] seconds")
    return round_ns(secs * 1e9)


class Curve:
    """A piecewise-linear function over strictly increasing ``x`` (``cost::curve::Curve``): prefill curves
    run from the origin and extend their last segment; TPOT curves are flat below the first point and
    extend their last segment only where it rises, else hold the last value."""

    __slots__ = ("extend", "from_origin", "n", "x", "y")

    def __init__(self, x: Sequence[float], y: Sequence[float], from_origin: bool) -> None:
        self.x = [float(v) for v in x]
        self.y = [float(v) for v in y]
        self.n = len(self.x)
        if self.n == 0 or self.n != len(self.y):
            raise ValueError("a curve needs at least one point and as many times as lengths")
        if any(b <= a for a, b in itertools.pairwise(self.x)):
            raise ValueError("curve points must be strictly increasing")
        self.from_origin = from_origin
        self.extend = from_origin or (self.n >= 2 and self.y[-1] > self.y[-2])

    def at(self, at: float) -> float:
        x, y, n = self.x, self.y, self.n
        i = bisect_right(x, at)
        if i == 0:
            if not self.from_origin:
                return y[0]
            x0, y0, x1, y1 = 0.0, 0.0, x[0], y[0]
        elif i == n:
            if not self.extend:
                return y[n - 1]
            if n == 1:
                return y[0] * at / x[0]
            x0, y0, x1, y1 = x[n - 2], y[n - 2], x[n - 1], y[n - 1]
        else:
            x0, y0, x1, y1 = x[i - 1], y[i - 1], x[i], y[i]
        v = y0 + (y1 - y0) * (at - x0) / (x1 - x0)
        return v if v > 0.0 else 0.0


class Device:
    """The device's prefill and decode speed (``cost::device::DeviceCost``), in nanoseconds."""

    __slots__ = ("kv_bytes_per_token", "prefill_curve", "tpot_curve")

    def __init__(self, cfg: Mapping[str, Any]) -> None:
        self.prefill_curve = Curve(cfg["prefill_tokens"], cfg["prefill_s"], True)
        self.tpot_curve = Curve(cfg["decode_context"], cfg["decode_tpot_s"], False)
        self.kv_bytes_per_token = float(cfg["kv_bytes_per_token"])

    def prefill(self, tokens: int) -> int:
        return round_ns(self.prefill_curve.at(float(tokens)) * 1e9)

    def append(self, ctx: int, n: int) -> int:
        if n <= 0:
            return 0
        at = self.prefill_curve.at
        marginal = at(float(ctx + n)) - at(float(ctx))
        step = self.tpot_curve.at(float(ctx))
        return round_ns((marginal if marginal >= step else step) * 1e9)

    def tpot(self, ctx: int) -> int:
        t = round_ns(self.tpot_curve.at(float(ctx)) * 1e9)
        return t if t > 1 else 1

    def prompt(self, prompt: int, cached: int) -> int:
        if cached == 0:
            return self.prefill(prompt)
        return self.append(cached, prompt - cached)


Held = tuple[int, int, int, list[int]]
"""What a request leaves in its device's cache (``sim::caches::Held``): the tokens it found cached, the
tokens that exist from a time on, that time, and when each later token exists."""


def existing_at(held: Held, t: int) -> int:
    """The leading tokens of ``held`` that exist at ``t`` (``Held::existing_at``)."""
    reused, ready, at, later = held
    if t < at:
        return min(reused, ready)
    return ready + bisect_right(later, t)


class DeviceCache:
    """The device's session KV caches (``sim::caches::DeviceCache``)."""

    __slots__ = ("budget", "clock", "devices")

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.devices: dict[int, list[list[Any]]] = {}  # device -> [session, req, held, used, growth]
        self.clock = 0

    @staticmethod
    def common(turns: list[tuple[int, int, int, int, int]], held: int, i: int) -> int:
        a, b = i, held
        m: int | None = None
        while a != b:
            ta, tb = turns[a], turns[b]
            step_a = ta[4] >= tb[4]
            t = ta if step_a else tb
            if t[2] < 0:
                return 0
            m = t[3] if m is None else min(m, t[3])
            if step_a:
                a = t[2]
            else:
                b = t[2]
        return 2**64 - 1 if m is None else m

    def peek(self, turns: list[tuple[int, int, int, int, int]], prompt: int, i: int, now: int) -> int:
        device, session, parent, _, _ = turns[i]
        if self.budget == 0 or parent < 0:
            return 0
        for e in self.devices.get(device, []):
            if e[0] == session:
                existing = min(e[2], existing_at(e[4], now))
                return min(existing, self.common(turns, e[1], i), prompt - 1)
        return 0

    def lookup(self, turns: list[tuple[int, int, int, int, int]], prompt: int, i: int, now: int) -> int:
        got = self.peek(turns, prompt, i, now)
        device, session = turns[i][0], turns[i][1]
        self.clock += 1
        for e in self.devices.get(device, []):
            if e[0] == session:
                e[3] = self.clock
        return got

    def record(self, turns: list[tuple[int, int, int, int, int]], i: int, held: Held) -> None:
        if self.budget == 0:
            return
        device, session = turns[i][0], turns[i][1]
        self.clock += 1
        entries = [e for e in self.devices.get(device, []) if e[0] != session]
        tokens = held[1] + len(held[3])
        if tokens > 0:
            entries.append([session, i, min(tokens, self.budget), self.clock, held])
        total = sum(e[2] for e in entries)
        while total > self.budget:
            oldest = min(entries, key=lambda e: e[3])
            entries.remove(oldest)
            total -= oldest[2]
        self.devices[device] = entries


class PrefixCache:
    """The cloud's shared prefix cache of blocks (``sim::caches::PrefixCache``)."""

    __slots__ = ("blocks", "capacity", "clock", "order")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.blocks: dict[int, tuple[int, int]] = {}  # id -> (last use, position)
        self.order: list[tuple[int, int, int]] = []  # heap of (last use, -position, id), lazily pruned
        self.clock = 0

    def peek(self, ids: Sequence[int]) -> int:
        run = 0
        for block in ids:
            if block not in self.blocks:
                break
            run += 1
        return run

    def touch(self, block: int) -> None:
        _, pos = self.blocks[block]
        self.blocks[block] = (self.clock, pos)
        heapq.heappush(self.order, (self.clock, -pos, block))

    def lookup(self, ids: Sequence[int]) -> int:
        run = self.peek(ids)
        if run > 0:
            self.clock += 1
            for block in ids[:run]:
                self.touch(block)
        return run

    def insert(self, ids: Sequence[int]) -> None:
        if self.capacity == 0 or not ids:
            return
        self.clock += 1
        for pos, block in enumerate(ids):
            if block in self.blocks:
                self.touch(block)
            else:
                self.blocks[block] = (self.clock, pos)
                heapq.heappush(self.order, (self.clock, -pos, block))
        while len(self.blocks) > self.capacity:
            used, neg, block = heapq.heappop(self.order)
            if self.blocks.get(block) == (used, -neg):
                del self.blocks[block]


class Spec:
    """Speculative decoding's settings and rules (``cost::spec::SpecDecode``)."""

    __slots__ = ("alpha", "expected", "gamma")

    def __init__(self, gamma: int, alpha: float) -> None:
        self.gamma = gamma
        self.alpha = alpha
        if alpha >= 1.0:
            self.expected = float(gamma + 1)
        else:
            power = 1.0
            for _ in range(gamma + 1):
                power *= alpha
            self.expected = (1.0 - power) / (1.0 - alpha)

    def round_tokens(self, r: int) -> int:
        e = self.expected
        return math.floor(float(r) * e) - math.floor(float(max(r - 1, 0)) * e)

    def draft(self, device: Device, ctx: int) -> int:
        return sum(device.tpot(ctx + j) for j in range(self.gamma))


class Histogram:
    """Log-bucketed gaps, 64 buckets per power of two (``sim::metrics::GapHistogram``)."""

    __slots__ = ("counts", "sum_ns", "total")

    def __init__(self) -> None:
        self.counts = [0] * (64 * HIST_SUB)
        self.total = 0
        self.sum_ns = 0.0

    @staticmethod
    def bucket(v: int) -> int:
        if v < HIST_SUB:
            return v
        e = v.bit_length() - 1
        return (e - HIST_SUB_BITS + 1) * HIST_SUB + ((v >> (e - HIST_SUB_BITS)) & (HIST_SUB - 1))

    @staticmethod
    def lower_bound(b: int) -> float:
        if b < HIST_SUB:
            return float(b)
        e = b // HIST_SUB + HIST_SUB_BITS - 1
        m = b % HIST_SUB
        return float((1 << e) + (m << (e - HIST_SUB_BITS)))

    def add(self, gap: int) -> None:
        v = gap if gap > 0 else 0
        self.counts[self.bucket(v)] += 1
        self.total += 1
        self.sum_ns += float(v)

    def mean_s(self) -> float:
        return math.nan if self.total == 0 else self.sum_ns / float(self.total) / 1e9

    def quantile_s(self, q: float) -> float:
        if self.total == 0:
            return math.nan
        rank = max(math.ceil(min(max(q, 0.0), 1.0) * float(self.total)), 1)
        seen = 0
        for b, c in enumerate(self.counts):
            seen += c
            if seen >= rank:
                return (self.lower_bound(b) + self.lower_bound(b + 1)) / 2.0 / 1e9
        return math.nan


class Controller:
    """The streaming speed controller (``pacing::SpeedController``) on integer nanoseconds."""

    __slots__ = ("expected", "handoff", "hi", "last_shown", "lo", "pending", "received", "shown")

    def __init__(self, lo: int, hi: int, expected: int | None) -> None:
        self.lo = lo
        self.hi = hi
        self.expected = expected
        self.handoff: int | None = None
        self.pending: deque[int] = deque()
        self.received = 0
        self.shown = 0
        self.last_shown: int | None = None

    def push(self, at: int) -> None:
        self.pending.append(at)
        self.received += 1

    def next_due(self) -> int | None:
        if not self.pending:
            return None
        arrival = self.pending[0]
        prev = self.last_shown
        if prev is None:
            return arrival
        h = self.handoff
        if h is None:
            gap = self.hi
        else:
            n = self.expected
            left = self.received - self.shown + 1 if n is None else max(n - self.shown, 0) + 1
            share = h - prev
            share = share // left if share >= 0 else -(-share // left)
            gap = self.lo if share < self.lo else self.hi if share > self.hi else share
        due = prev + gap
        return due if due > arrival else arrival

    def mark_shown(self, at: int) -> int:
        due = self.next_due()
        if due is None:
            raise RuntimeError("mark_shown: no token is buffered")
        if at < due:
            raise RuntimeError(f"mark_shown: {at} is before the token's due time {due}")
        self.pending.popleft()
        self.shown += 1
        self.last_shown = at
        return at


class CloudReq:
    """Cloud-side state of one request (``sim::cloud::CloudReq``)."""

    __slots__ = (
        "bridged",
        "cancelled",
        "decode_on_prefill",
        "drafts_ready",
        "gap_count",
        "gap_sum",
        "generated",
        "gpu_decode_s",
        "gpu_prefill_s",
        "handover",
        "last_emit",
        "may_bridge",
        "prefilled",
        "prompt",
        "quota",
        "replica",
        "reserved",
        "rounds",
        "spec",
    )

    def __init__(
        self,
        prompt: int = 0,
        quota: int = 0,
        decode_on_prefill: bool = False,
        spec: Spec | None = None,
        may_bridge: bool = False,
    ) -> None:
        self.spec = spec
        self.drafts_ready = False
        self.rounds = 0
        self.replica: int | None = None
        self.prompt = prompt
        self.quota = quota
        self.decode_on_prefill = decode_on_prefill
        self.may_bridge = may_bridge
        self.bridged = False
        self.handover: int | None = None
        self.generated = 0
        self.prefilled = 0
        self.cancelled = False
        self.reserved = 0
        self.gpu_prefill_s = 0.0
        self.gpu_decode_s = 0.0
        self.gap_sum = 0
        self.gap_count = 0
        self.last_emit = 0


class Replica:
    """One cloud replica's queues and current batch."""

    __slots__ = (
        "busy",
        "busy_until",
        "cur_decode",
        "cur_prefill",
        "inbound",
        "kv_used",
        "link_free",
        "prefilling",
        "role",
        "running",
        "to_write",
        "waiting",
    )

    def __init__(self, role: int) -> None:
        self.role = role
        self.busy = False
        self.busy_until = 0
        self.inbound = 0
        self.waiting: deque[int] = deque()
        self.prefilling: deque[int] = deque()
        self.running: list[int] = []
        self.kv_used = 0
        self.cur_decode: list[int] = []
        self.cur_prefill: list[tuple[int, int]] = []
        self.to_write = 0
        self.link_free = 0

    def load(self) -> int:
        return len(self.waiting) + len(self.prefilling) + len(self.running)


class Cloud:
    """Replicas with continuous batching and chunked prefill, colocated or disaggregated."""

    def __init__(self, cfg: Mapping[str, Any], n: int, sim: Simulator) -> None:
        self.sim = sim
        self.disaggregated = cfg["deployment"] == "disaggregated"
        if cfg["deployment"] not in ("colocated", "disaggregated"):
            raise ValueError(f"deployment {cfg['deployment']!r} is not colocated or disaggregated")
        self.base_s = float(cfg["base_s"])
        self.prefill_token_s = float(cfg["prefill_token_s"])
        self.prefill_attn_s = float(cfg["prefill_attn_s"])
        self.decode_seq_s = float(cfg["decode_seq_s"])
        self.decode_context_s = float(cfg["decode_context_s"])
        self.max_batch_size = int(cfg["max_batch_size"])
        self.max_tokens = int(cfg["max_tokens_per_iteration"])
        self.kv_cache_tokens = int(cfg["kv_cache_tokens"])
        self.gpus = float(int(cfg["gpus_per_replica"]))
        self.kv_bytes_per_token = float(cfg["kv_bytes_per_token"])
        self.kv_link = float(cfg["kv_link_bytes_per_s"])
        self.k_sites = str(cfg.get("k_sites", "pool"))
        self.prefill_decode_budget = int(cfg.get("prefill_decode_budget", 0))
        self.kv_write_token_s = float(cfg.get("kv_write_token_s", 0.0))
        self.prefill_decode_gap_s = float(cfg.get("prefill_decode_gap_s", 0.0))
        if self.k_sites not in K_SITES:
            raise ValueError(f"k_sites {self.k_sites!r} is not one of {K_SITES}")
        if self.disaggregated:
            roles = [ROLE_PREFILL] * int(cfg.get("prefill_replicas", 1))
            roles += [ROLE_DECODE] * int(cfg.get("decode_replicas", 1))
        else:
            roles = [ROLE_MIXED] * int(cfg.get("replicas", 1))
        self.replicas = [Replica(role) for role in roles]
        self.reqs = [CloudReq() for _ in range(n)]
        self.iterations = 0
        self.gpu_prefill_s = 0.0
        self.gpu_decode_s = 0.0

    def least_loaded(self, role: int) -> int:
        best = -1
        best_load = math.inf
        for i, r in enumerate(self.replicas):
            if r.role == role:
                load = r.load()
                if load < best_load:
                    best, best_load = i, load
        return best

    def submit(
        self,
        req: int,
        prompt: int,
        quota: int,
        decode_on_prefill: bool,
        spec: Spec | None,
        may_bridge: bool,
        cached: int = 0,
    ) -> None:
        self.reqs[req] = CloudReq(prompt, quota, decode_on_prefill, spec, may_bridge)
        self.reqs[req].prefilled = min(cached, max(prompt - 1, 0))
        r = self.least_loaded(ROLE_PREFILL if self.disaggregated else ROLE_MIXED)
        self.replicas[r].waiting.append(req)
        self.try_start(r)

    def cancel(self, req: int) -> None:
        self.reqs[req].cancelled = True

    def drafts_arrived(self, req: int) -> None:
        c = self.reqs[req]
        if c.cancelled or c.generated >= c.quota:
            return
        c.drafts_ready = True
        if c.replica is not None:
            self.try_start(c.replica)

    def kv_arrived(self, req: int, replica: int) -> None:
        self.replicas[replica].inbound -= 1
        c = self.reqs[req]
        if c.cancelled:
            return
        if c.bridged:
            if c.decode_on_prefill and c.generated < c.quota:
                c.handover = replica
            return
        self.replicas[replica].waiting.append(req)
        self.try_start(replica)

    def try_start(self, ri: int) -> None:
        rep = self.replicas[ri]
        if rep.busy:
            return
        reqs = self.reqs
        freed = 0
        kept_running = []
        handed: list[tuple[int, int]] = []
        for i in rep.running:
            c = reqs[i]
            if c.cancelled:
                freed += c.reserved
            elif c.handover is not None:
                freed += c.reserved
                c.reserved = 0
                c.decode_on_prefill = False
                handed.append((i, c.handover))
                c.handover = None
            else:
                kept_running.append(i)
        rep.running = kept_running
        if any(reqs[i].cancelled for i in rep.prefilling):
            kept: deque[int] = deque()
            for i in rep.prefilling:
                c = reqs[i]
                if c.cancelled:
                    freed += c.reserved
                else:
                    kept.append(i)
            rep.prefilling = kept
        if any(reqs[i].cancelled for i in rep.waiting):
            rep.waiting = deque(i for i in rep.waiting if not reqs[i].cancelled)
        rep.kv_used -= freed
        cap = self.kv_cache_tokens
        waiting = rep.waiting
        while waiting:
            i = waiting[0]
            c = reqs[i]
            need = c.prompt if rep.role == ROLE_PREFILL and not c.decode_on_prefill else c.prompt + c.quota
            need = min(need, cap)
            if rep.kv_used + need > cap or len(rep.running) + len(rep.prefilling) >= self.max_batch_size:
                break
            waiting.popleft()
            rep.kv_used += need
            c.reserved = need
            if rep.role == ROLE_DECODE:
                rep.to_write += c.prompt + 1
                c.replica = ri
                rep.running.append(i)
            else:
                rep.prefilling.append(i)
        cur_decode = []
        verify_tokens = 0
        verify_attn = 0
        for i in rep.running:
            c = reqs[i]
            if c.spec is None:
                cur_decode.append(i)
            elif c.drafts_ready:
                g = c.spec.gamma
                verify_tokens += g
                verify_attn += g * (2 * (c.prompt + c.generated) + g)
                cur_decode.append(i)
        rep.cur_decode = cur_decode
        cur_prefill: list[tuple[int, int]] = []
        rep.cur_prefill = cur_prefill
        cap = self.max_tokens
        if rep.role == ROLE_PREFILL and cur_decode and self.prefill_decode_budget > 0:
            cap = min(cap, self.prefill_decode_budget)
        budget = max(cap - len(cur_decode) - verify_tokens, 0)
        b = float(len(cur_decode))
        ctx = float(sum(reqs[i].prompt + reqs[i].generated for i in cur_decode))
        gap = self.prefill_decode_gap_s if rep.role == ROLE_PREFILL and cur_decode else 0.0
        prefill_tokens = 0
        attn = 0
        for i in rep.prefilling:
            if budget == 0:
                break
            c = reqs[i]
            chunk = min(c.prompt - c.prefilled, budget)
            if gap > 0.0:
                fits = self.chunk_within(gap, prefill_tokens, attn, c.prefilled, chunk, b, ctx)
                if fits < chunk:
                    budget = fits
                chunk = fits
                if chunk == 0:
                    break
            budget -= chunk
            cur_prefill.append((i, chunk))
            prefill_tokens += chunk
            attn += chunk * (2 * c.prefilled + chunk)
        if not cur_decode and not cur_prefill:
            self.hand_over(handed)
            return
        p_tokens = float(prefill_tokens)
        base = self.base_s
        prefill_part = self.prefill_token_s * p_tokens + self.prefill_attn_s * float(attn)
        decode_part = self.decode_seq_s * b + self.decode_context_s * ctx
        t = base + prefill_part + decode_part
        write = self.kv_write_token_s * float(rep.to_write)
        rep.to_write = 0
        v_tokens = float(verify_tokens)
        verify = self.prefill_token_s * v_tokens + self.prefill_attn_s * float(verify_attn)
        decode_part += write
        t += write
        decode_part += verify
        t += verify
        decode_tokens = b + v_tokens
        share_p = p_tokens / (p_tokens + decode_tokens)
        gpu_p = (prefill_part + base * share_p) * self.gpus
        gpu_d = (decode_part + base * (1.0 - share_p)) * self.gpus
        for i, chunk in cur_prefill:
            reqs[i].gpu_prefill_s += gpu_p * float(chunk) / p_tokens
        if verify_tokens:
            for i in cur_decode:
                spec = reqs[i].spec
                tokens = 1.0 + (0.0 if spec is None else float(spec.gamma))
                reqs[i].gpu_decode_s += gpu_d * tokens / decode_tokens
        else:
            for i in cur_decode:
                reqs[i].gpu_decode_s += gpu_d / b
        self.gpu_prefill_s += gpu_p
        self.gpu_decode_s += gpu_d
        self.iterations += 1
        rep.busy = True
        dur = round_ns(t * 1e9)
        rep.busy_until = self.sim.now_ns + (dur if dur > 1 else 1)
        self.sim.schedule_in(dur if dur > 1 else 1, PRIO_CLOUD, EV_ITER_END, ri, 0)
        self.hand_over(handed)

    def hand_over(self, handed: list[tuple[int, int]]) -> None:
        """Bridged requests leave their prefill instance for the decode replicas their caches reached."""
        for i, d in handed:
            self.replicas[d].waiting.append(i)
            self.try_start(d)

    def iteration_end(self, ri: int, now: int, out: list[tuple[int, bool, int]]) -> None:
        rep = self.replicas[ri]
        reqs = self.reqs
        rep.busy = False
        freed = 0
        for i in rep.cur_decode:
            c = reqs[i]
            if c.cancelled:
                continue
            tokens = 1
            if c.spec is not None:
                c.rounds += 1
                c.drafts_ready = False
                tokens = min(c.spec.round_tokens(c.rounds), c.quota - c.generated)
            c.generated += tokens
            c.gap_sum += now - c.last_emit
            c.gap_count += tokens
            c.last_emit = now
            out.append((i, False, tokens))
            if c.generated >= c.quota:
                freed += c.reserved
                c.reserved = 0
        rep.running = [i for i in rep.running if reqs[i].cancelled or reqs[i].generated < reqs[i].quota]
        for i, chunk in rep.cur_prefill:
            reqs[i].prefilled += chunk
        leaving: list[tuple[int, bool]] = []  # in the order of their first tokens
        prefilling = rep.prefilling
        while prefilling:
            c = reqs[prefilling[0]]
            if c.prefilled < c.prompt:
                break
            i = prefilling.popleft()
            if c.cancelled:
                freed += c.reserved
                c.reserved = 0
                continue
            c.generated = 1
            c.last_emit = now
            out.append((i, True, 1))
            if c.quota > 1 and rep.role == ROLE_PREFILL and not c.decode_on_prefill and c.may_bridge:
                leaving.append((i, True))
            elif c.quota <= 1 or (rep.role == ROLE_PREFILL and not c.decode_on_prefill):
                freed += c.reserved
                c.reserved = 0
                if c.quota > 1:
                    leaving.append((i, False))
            else:
                c.replica = ri
                rep.running.append(i)
        rep.kv_used -= freed
        for i, may_keep in leaving:
            if may_keep:
                c = reqs[i]
                if self.bridges_at_first_token(ri, i, now):
                    rep.kv_used += c.quota
                    c.reserved += c.quota
                    c.decode_on_prefill = True
                    c.bridged = True
                    rep.running.append(i)
                else:
                    rep.kv_used -= c.reserved
                    c.reserved = 0
            d = self.least_loaded(ROLE_DECODE)
            self.replicas[d].inbound += 1
            nbytes = float(reqs[i].prompt + 1) * self.kv_bytes_per_token
            rep.link_free = max(rep.link_free, now) + round_ns(nbytes / self.kv_link * 1e9)
            self.sim.schedule(rep.link_free, PRIO_CLOUD, EV_KV_ARRIVE, i, d)
        self.try_start(ri)

    def load(self) -> dict[str, float]:
        waiting_requests = waiting_tokens = running = capacity = 0
        kv_used = kv_cap = 0
        prefill_replicas = 0.0
        for r in self.replicas:
            kv_used += r.kv_used
            kv_cap += self.kv_cache_tokens
            if r.role != ROLE_DECODE:
                prefill_replicas += 1.0
                waiting_requests += len(r.waiting)
                for q in (r.waiting, r.prefilling):
                    for i in q:
                        c = self.reqs[i]
                        waiting_tokens += c.prompt - c.prefilled
            if r.role != ROLE_PREFILL:
                running += len(r.running)
                capacity += self.max_batch_size
        per_tok = self.prefill_token_s + self.base_s / float(self.max_tokens)
        return {
            "waiting_requests": float(waiting_requests),
            "waiting_prefill_tokens": float(waiting_tokens),
            "running_decode": float(running),
            "decode_capacity": float(capacity),
            "kv_used_frac": float(kv_used) / float(max(kv_cap, 1)),
            "prefill_backlog_s": float(waiting_tokens) * per_tok / max(prefill_replicas, 1.0),
        }

    def chunk_within(
        self, gap: float, tokens: int, attn: int, offset: int, max_chunk: int, b: float, ctx: float
    ) -> int:
        """``CloudCost::chunk_within``: the largest chunk that keeps the iteration within ``gap``."""

        def fits(c: int) -> bool:
            prefill = self.prefill_token_s * float(tokens + c) + self.prefill_attn_s * float(
                attn + c * (2 * offset + c)
            )
            decode = self.decode_seq_s * b + self.decode_context_s * ctx
            return self.base_s + prefill + decode <= gap

        if fits(max_chunk):
            return max_chunk
        if not fits(0):
            return 0
        lo, hi = 0, max_chunk
        while lo + 1 < hi:
            mid = lo + (hi - lo) // 2
            if fits(mid):
                lo = mid
            else:
                hi = mid
        return lo

    def bridges_at_first_token(self, ri: int, i: int, now: int) -> bool:
        """``Cloud::bridges_at_first_token``: whether a pool request is decoded on its prefill instance
        while its cache crosses."""
        objective = self.prefill_decode_gap_s
        rep = self.replicas[ri]
        c = self.reqs[i]
        if objective <= 0.0 or rep.kv_used + c.quota > self.kv_cache_tokens:
            return False
        link_wait = max(rep.link_free - now, 0)
        transfer_s = float(c.prompt + 1) * self.kv_bytes_per_token / self.kv_link
        lands = now + link_wait + round_ns(transfer_s * 1e9)
        d = self.replicas[self.least_loaded(ROLE_DECODE)]
        batch, context = 1.0, float(c.prompt) + 1.0
        for other in (*d.running, *d.waiting):
            o = self.reqs[other]
            batch += 1.0
            context += float(o.prompt + o.generated)
        iteration = self.base_s + (self.decode_seq_s * batch + self.decode_context_s * context)
        if not d.busy and d.inbound == 0:
            residual = 0.0
        elif d.busy and lands <= d.busy_until:
            residual = (d.busy_until - lands) / 1e9
        else:
            residual = iteration
        write = self.kv_write_token_s * float(c.prompt + 1)
        gap = link_wait / 1e9 + transfer_s + residual + write + iteration
        return not (math.isnan(gap) or gap <= objective + 1e-9)

    def lone_decode_s(self, context: int) -> float:
        return self.base_s + self.decode_seq_s + self.decode_context_s * float(context)

    def lone_prefill_s(self, prompt: int) -> float:
        done = 0
        t = 0.0
        while done < prompt:
            chunk = min(prompt - done, self.max_tokens)
            t += (
                self.base_s
                + self.prefill_token_s * float(chunk)
                + self.prefill_attn_s * float(chunk) * float(2 * done + chunk)
            )
            done += chunk
        return t


class Pd:
    """Device-side state of a split request: the token buffer, the controller, the prefill pipeline."""

    __slots__ = (
        "ctrl",
        "device_free_at",
        "device_stopped",
        "display_at",
        "display_gen",
        "displayed",
        "expected",
        "first_arrival",
        "handoff",
        "in_flight",
        "last_arrival",
        "prefilled",
        "prompt_len",
        "prompt_prefilled",
        "received",
        "stream",
    )

    def __init__(self, quota: int, prompt_len: int, ctrl: Controller | None) -> None:
        self.expected = quota
        self.received = 0
        self.prompt_prefilled = False
        self.prefilled = 0
        self.handoff: int | None = None
        self.displayed = 0
        self.stream = STREAM_FINISHED if quota == 0 else STREAM_OPEN
        self.ctrl = ctrl
        self.prompt_len = prompt_len
        self.display_gen = 0
        self.display_at: int | None = None
        self.device_stopped = False
        self.device_free_at: int | None = None
        self.in_flight = 0
        self.first_arrival: int | None = None
        self.last_arrival = 0

    def receive_cloud(self) -> int:
        """The kept position of an arriving cloud token, or -1 when it arrived after the hand-off."""
        if self.stream == STREAM_CANCELLED:
            return -1
        if self.stream != STREAM_OPEN:
            raise RuntimeError(f"receive_cloud: the cloud stream ended after {self.received} tokens")
        pos = self.received
        self.received += 1
        if self.received == self.expected:
            self.stream = STREAM_FINISHED
        return pos

    def take_over(self) -> int:
        if not (self.handoff is None and self.prompt_prefilled and self.prefilled == self.received):
            raise RuntimeError("take_over: the device has not caught up")
        self.handoff = self.received
        if self.stream == STREAM_OPEN:
            self.stream = STREAM_CANCELLED
        return self.received

    def display(self) -> None:
        available = self.received if self.handoff is None else self.handoff
        if self.displayed >= available:
            raise RuntimeError("display: nothing to display")
        self.displayed += 1


class Req:
    """Per-request state and its streamed display metrics (``sim::metrics::DisplayMetrics``)."""

    __slots__ = (
        "bytes_down",
        "bytes_up",
        "cloud_cached",
        "cloud_discarded",
        "cloud_first_arrival",
        "cloud_kept",
        "count",
        "device_cached",
        "device_decode_tokens",
        "device_prefill_tokens",
        "done",
        "first",
        "first_device_display",
        "handoff_pos",
        "last",
        "last_cloud_display",
        "last_down",
        "max_gap",
        "pd",
        "plan",
        "qoe_acc",
        "race",
        "spec_prompt_ready",
        "spec_received",
    )

    def __init__(self) -> None:
        self.device_cached = 0
        self.cloud_cached = 0
        self.plan: PlanKey | None = None
        self.spec_prompt_ready = False
        self.spec_received = 0
        self.first: int | None = None
        self.last = 0
        self.count = 0
        self.max_gap = 0
        self.qoe_acc = 0.0
        self.done = False
        self.race = RACE_OPEN
        self.pd: Pd | None = None
        self.cloud_first_arrival: int | None = None
        self.last_cloud_display: int | None = None
        self.first_device_display: int | None = None
        self.handoff_pos = -1
        self.device_prefill_tokens = 0
        self.device_decode_tokens = 0
        self.cloud_kept = 0
        self.cloud_discarded = 0
        self.bytes_up = 0.0
        self.bytes_down = 0.0
        self.last_down: int | None = None

    def tpot_s(self) -> float:
        if self.first is not None and self.count > 1:
            return (self.last - self.first) / 1e9 / float(self.count - 1)
        return math.nan

    def qoe(self, arrival: int, a: float, v: float) -> float:
        if self.count == 0:
            return 0.0
        o = float(self.count)
        t = max((self.last - arrival) / 1e9, a + o / v)
        expected = o * t - (o * a + o * o / (2.0 * v))
        if expected <= 0.0:
            return 1.0
        return min(max((o * t - self.qoe_acc) / expected, 0.0), 1.0)


PlanKey = tuple[int, int, float, int, int, int, Spec | None]
"""``(mode, k, refine_ratio, min_tpot_ns, max_tpot_ns, k_site, spec)`` of a plan."""


def plan_key(plan: Any) -> PlanKey:
    """``(mode, k, refine_ratio, min_tpot_ns, max_tpot_ns, k_site, spec)`` of a ``pdcore._core.Plan`` or
    such a tuple (``k_site`` an index of `K_SITE_NAMES`, the pool when a 5-tuple leaves it out; ``spec``
    a ``(gamma, alpha)`` pair for mode ``"spec"``)."""
    if isinstance(plan, tuple):
        mode, k, refine, lo, hi, *rest = plan
        mode = MODES.index(mode) if isinstance(mode, str) else int(mode)
        where = rest[0] if rest else 0
        where = K_SITE_NAMES.index(where) if isinstance(where, str) else int(where)
        spec = Spec(int(rest[1][0]), float(rest[1][1])) if len(rest) > 1 and rest[1] is not None else None
        return mode, int(k), float(refine), int(lo), int(hi), where, spec
    refine = float(plan.refine_ratio)
    if not (math.isfinite(refine) and 0.0 < refine <= 1.0):
        raise ValueError(f"refine_ratio = {refine!r} is not in (0, 1]")
    lo = secs_to_ns(plan.min_tpot_s, "min_tpot_s")
    hi = secs_to_ns(plan.max_tpot_s, "max_tpot_s")
    if hi <= lo:
        raise ValueError("max_tpot_s must be greater than min_tpot_s")
    spec = None if plan.gamma is None else Spec(int(plan.gamma), float(plan.alpha))
    return MODES.index(plan.mode), int(plan.k), refine, lo, hi, K_SITE_NAMES.index(plan.k_site), spec


class Simulator:
    """``pdcore._core.Simulator`` in pure Python: same inputs, same decision loop, same results."""

    def __init__(
        self,
        *,
        arrival_s: Sequence[float] | npt.NDArray[np.float64],
        prompt_tokens: Sequence[int] | npt.NDArray[np.int64],
        output_tokens: Sequence[int] | npt.NDArray[np.int64],
        one_way_s: Sequence[float] | npt.NDArray[np.float64],
        cloud: Mapping[str, Any],
        device: Mapping[str, Any],
        bandwidth_bps: float,
        qoe_ttft_s: float = 1.0,
        qoe_tokens_per_s: float = 10.0,
        prompt_bytes_per_token: float = 0.0,
        stream_bytes_per_token: float = 0.0,
        session: Sequence[int] | None = None,
        turn: Sequence[int] | None = None,
        parent: Sequence[int] | None = None,
        shared_prefix_tokens: Sequence[int] | None = None,
        block_offsets: Sequence[int] | None = None,
        block_ids: Sequence[int] | None = None,
        block_tokens: int = 512,
        device_cache_tokens: int = 0,
        cloud_cache_tokens: int = 0,
    ) -> None:
        arrival = [float(x) for x in arrival_s]
        n = len(arrival)
        self.arrival = [secs_to_ns(x, "arrival_s", i) for i, x in enumerate(arrival)]
        self.prompt = [int(x) for x in prompt_tokens]
        self.output = [int(x) for x in output_tokens]
        self.one_way = [secs_to_ns(float(x), "one_way_s", i) for i, x in enumerate(one_way_s)]
        if not len(self.prompt) == len(self.output) == len(self.one_way) == n:
            raise ValueError("pass one prompt, output and delay per arrival")
        for i in range(n):
            if i and self.arrival[i] < self.arrival[i - 1]:
                raise ValueError(f"arrival_s[{i}] is earlier than the previous request")
            if self.prompt[i] < 1 or self.output[i] < 1:
                raise ValueError(f"request {i} needs at least one prompt and one output token")
        self.bandwidth = float(bandwidth_bps) / 8.0
        self.prompt_bytes = float(prompt_bytes_per_token)
        self.stream_bytes = float(stream_bytes_per_token)
        self.qoe_a = float(qoe_ttft_s)
        self.qoe_v = float(qoe_tokens_per_s)
        self.device = Device(device)
        # (device, session, parent or -1, shared prefix, turn) per request
        if session is None or turn is None or parent is None or shared_prefix_tokens is None:
            self.turns = [(i, i, -1, 0, 1) for i in range(n)]
        else:
            self.turns = [
                (int(s), int(s), int(p), int(sh), int(t))
                for s, t, p, sh in zip(session, turn, parent, shared_prefix_tokens, strict=True)
            ]
        self.block_offsets = [0] * (n + 1) if block_offsets is None else [int(x) for x in block_offsets]
        self.block_ids = [] if block_ids is None else [int(x) for x in block_ids]
        self.block_tokens = int(block_tokens)
        self.device_cache = DeviceCache(int(device_cache_tokens))
        self.prefix_cache = PrefixCache(int(cloud_cache_tokens) // max(self.block_tokens, 1))
        self.cloud = Cloud(cloud, n, self)
        self.reqs = [Req() for _ in range(n)]
        self.hist = Histogram()
        self.heap: list[tuple[int, int, int, int, int, int]] = []
        self.now_ns = 0
        self.seq = 0
        self.processed = 0
        self.pending_decision: int | None = None
        self.finished = 0
        if n:
            self.schedule(self.arrival[0], PRIO_ARRIVE, EV_ARRIVE, 0, 0)

    def __len__(self) -> int:
        return len(self.reqs)

    @property
    def now(self) -> float:
        return self.now_ns / 1e9

    def schedule(self, at: int, prio: int, kind: int, i: int, x: int) -> None:
        if at < self.now_ns:
            raise RuntimeError(f"schedule: {at} is before now ({self.now_ns})")
        heapq.heappush(self.heap, (at, prio, self.seq, kind, i, x))
        self.seq += 1

    def schedule_in(self, delay: int, prio: int, kind: int, i: int, x: int) -> None:
        heapq.heappush(self.heap, (self.now_ns + delay, prio, self.seq, kind, i, x))
        self.seq += 1

    def cloud_load(self) -> dict[str, float]:
        return self.cloud.load()

    def blocks(self, i: int) -> list[int]:
        return self.block_ids[self.block_offsets[i] : self.block_offsets[i + 1]]

    def cloud_cache_hit(self, i: int, take: bool) -> int:
        ids = self.blocks(i)
        if not ids:
            return 0
        run = self.prefix_cache.lookup(ids) if take else self.prefix_cache.peek(ids)
        return min(run * self.block_tokens, self.prompt[i] - 1)

    def cached(self, request: int) -> tuple[int, int]:
        device = self.device_cache.peek(self.turns, self.prompt[request], request, self.arrival[request])
        return device, self.cloud_cache_hit(request, take=False)

    def cloud_lone_prefill_s(self, prompt_tokens: int) -> float:
        return self.cloud.lone_prefill_s(prompt_tokens)

    def next_decision(self) -> int | None:
        if self.pending_decision is not None:
            raise RuntimeError(f"next_decision: request {self.pending_decision} is waiting for a plan")
        heap = self.heap
        pop = heapq.heappop
        cloud = self.cloud
        while heap:
            now, _, _, kind, i, x = pop(heap)
            self.now_ns = now
            self.processed += 1
            if kind == EV_ITER_END:
                emitted: list[tuple[int, bool, int]] = []
                cloud.iteration_end(i, now, emitted)
                on_emission = self.on_emission
                for req, first, tokens in emitted:
                    on_emission(req, first, tokens, now)
            elif kind == EV_TOKEN:
                self.on_token_arrive(i, now)
            elif kind == EV_DISPLAY:
                self.on_display(i, x, now)
            elif kind == EV_CHUNK_DONE:
                self.on_chunk_done(i, x, now)
            elif kind == EV_PROMPT_DONE:
                self.on_prompt_done(i, now)
            elif kind == EV_SUBMIT:
                plan = self.reqs[i].plan
                split = plan is not None and plan[0] in STREAMED
                on_prefill = split and plan is not None and plan[5] == 1
                may_bridge = split and plan is not None and plan[5] == 0 and cloud.k_sites == "both"
                spec = None if plan is None else plan[6]
                cached = self.cloud_cache_hit(i, take=True)
                self.reqs[i].cloud_cached = cached
                cloud.submit(i, self.prompt[i], self.cloud_quota(i), on_prefill, spec, may_bridge, cached)
            elif kind == EV_KV_ARRIVE:
                cloud.kv_arrived(i, x)
            elif kind == EV_CANCEL:
                cloud.cancel(i)
            elif kind == EV_SPEC_DRAFTS:
                cloud.drafts_arrived(i)
            elif kind == EV_SPEC_RESULT:
                self.on_spec_result(i, x, now)
            else:
                nxt = i + 1
                if nxt < len(self.reqs):
                    self.schedule(self.arrival[nxt], PRIO_ARRIVE, EV_ARRIVE, nxt, 0)
                self.pending_decision = i
                return i
        if self.finished != len(self.reqs):
            raise RuntimeError(
                f"the simulation ran out of events with {len(self.reqs) - self.finished} requests unfinished"
            )
        return None

    def cloud_quota(self, i: int) -> int:
        out = self.output[i]
        plan = self.reqs[i].plan
        if plan is not None:
            mode = plan[0]
            if mode in (M_PD, M_NAIVE):
                return min(plan[1] + 1, out)
            if mode == M_KV:
                return 1
        return out

    def decide(self, i: int, plan: Any) -> None:
        if self.pending_decision != i:
            raise RuntimeError(f"decide: request {i} is not waiting for a plan")
        self.pending_decision = None
        key = plan_key(plan)
        mode, _, refine, lo, hi, site, spec = key
        if (mode == M_SPEC) != (spec is not None):
            raise ValueError(f"plan of request {i}: gamma and alpha go with mode 'spec', and only with it")
        if mode in STREAMED and self.cloud.disaggregated:
            offered = self.cloud.k_sites
            if offered != "both" and offered != K_SITE_NAMES[site]:
                raise ValueError(
                    f"k_site of request {i}'s plan is {K_SITE_NAMES[site]!r} but k_sites is {offered!r}"
                )
        t0 = self.arrival[i]
        req = self.reqs[i]
        req.plan = key
        uses_cache = mode != M_CLOUD and not (mode in STREAMED and refine < 1.0)
        cached = self.device_cache.lookup(self.turns, self.prompt[i], i, t0) if uses_cache else 0
        req.device_cached = cached
        if mode != M_DEVICE:
            self.schedule(t0 + self.one_way[i], PRIO_CLOUD, EV_SUBMIT, i, 0)
            req.bytes_up = float(self.prompt[i]) * self.prompt_bytes
        if mode == M_DEVICE:
            p = self.device.prompt(self.prompt[i], cached)
            req.device_prefill_tokens = self.prompt[i] - cached
            self.finish_on_device(i, t0 + p, 0, lo)
        elif mode == M_RACE:
            p = self.device.prompt(self.prompt[i], cached)
            self.schedule(t0 + p, PRIO_DEVICE, EV_PROMPT_DONE, i, 0)
        elif mode == M_SPEC:
            p = self.device.prompt(self.prompt[i], cached)
            req.device_prefill_tokens = self.prompt[i] - cached
            self.schedule(t0 + p, PRIO_DEVICE, EV_PROMPT_DONE, i, 0)
        elif mode in STREAMED:
            quota = self.cloud_quota(i)
            prompt_len = max(math.ceil(float(self.prompt[i]) * refine), 1)
            ctrl = Controller(lo, hi, quota) if mode != M_NAIVE else None
            pd = Pd(quota, prompt_len, ctrl)
            if refine >= 1.0:
                p = self.device.prompt(prompt_len, cached)
                pd.device_free_at = t0 + p
                self.schedule(t0 + p, PRIO_DEVICE, EV_PROMPT_DONE, i, 0)
            req.pd = pd
            self.revise_handoff(i)

    def on_emission(self, i: int, first: bool, tokens: int, now: int) -> None:
        arrive = now + self.one_way[i]
        req = self.reqs[i]
        if first:
            self.prefix_cache.insert(self.blocks(i))
        plan = req.plan
        assert plan is not None
        req.bytes_down += float(tokens) * self.stream_bytes
        req.last_down = arrive if req.last_down is None else max(req.last_down, arrive)
        if first:
            req.cloud_first_arrival = arrive
            if req.pd is not None and plan[2] < 1.0:
                req.bytes_down += float(req.pd.prompt_len) * self.prompt_bytes
        if req.done:
            return
        mode = plan[0]
        if mode in STREAMED:
            self.schedule(arrive, PRIO_TOKEN, EV_TOKEN, i, 0)
        elif mode == M_SPEC:
            self.schedule(arrive, PRIO_TOKEN, EV_SPEC_RESULT, i, tokens)
        elif mode == M_CLOUD:
            self.display_cloud_inline(i, arrive)
        elif mode == M_RACE:
            if req.race == RACE_OPEN:
                device_ready = self.arrival[i] + self.device.prompt(self.prompt[i], req.device_cached)
                if arrive <= device_ready:
                    req.race = RACE_CLOUD
            if req.race == RACE_CLOUD:
                self.display_cloud_inline(i, arrive)
        elif mode == M_KV:
            self.display_cloud_inline(i, arrive)
            if req.done:
                return
            prompt = self.prompt[i]
            nbytes = float(prompt - req.device_cached) * self.device.kv_bytes_per_token
            kv_at = arrive + round_ns(nbytes / self.bandwidth * 1e9)
            req.bytes_down += nbytes
            req.last_down = kv_at if req.last_down is None else max(req.last_down, kv_at)
            ready = kv_at + self.device.tpot(prompt)
            self.finish_on_device(i, ready, 1, plan[3])
        else:
            raise RuntimeError("device-only requests never reach the cloud")

    def record(self, req: Req, arrival: int, t: int) -> None:
        if req.first is not None:
            gap = t - req.last
            if gap > req.max_gap:  # noqa: PLR1730 - a branch costs less than a max() call in CPython
                req.max_gap = gap
            self.hist.add(gap)
        else:
            req.first = t
        req.last = t
        req.count += 1
        s = (t - arrival) / 1e9
        j = float(req.count)
        a, v = self.qoe_a, self.qoe_v
        y_star = (s - a) * v
        if y_star <= j - 1.0:
            req.qoe_acc += a + (2.0 * j - 1.0) / (2.0 * v)
        elif y_star >= j:
            req.qoe_acc += s
        else:
            req.qoe_acc += s * (y_star - j + 1.0) + a * (j - y_star) + (j * j - y_star * y_star) / (2.0 * v)

    def display_cloud_inline(self, i: int, at: int) -> None:
        req = self.reqs[i]
        self.record(req, self.arrival[i], at)
        req.cloud_kept += 1
        req.last_cloud_display = at
        if req.count == self.output[i]:
            self.finish(i)

    def finish_on_device(self, i: int, first_ready: int, start: int, min_tpot: int) -> None:
        req = self.reqs[i]
        out = self.output[i]
        arrival = self.arrival[i]
        ctx0 = self.prompt[i] if req.pd is None else req.pd.prompt_len
        refined = req.plan is not None and req.plan[2] < 1.0
        keeps = not refined and self.device_cache.budget > 0
        later: list[int] = []
        ready = first_ready
        prev = req.last if req.first is not None else None
        tpot = self.device.tpot
        record = self.record
        for pos in range(start, out):
            if prev is None:
                t = ready
            else:
                t = prev + min_tpot
                if ready > t:  # noqa: PLR1730 - a branch costs less than a max() call in CPython
                    t = ready
            if pos == start:
                req.first_device_display = t
            record(req, arrival, t)
            prev = t
            ready += tpot(ctx0 + pos + 1)
            if keeps and pos + 1 < out:
                later.append(ready)
        req.device_decode_tokens += out - start
        if req.handoff_pos < 0:
            req.handoff_pos = start
        held = (0, 0, 0, []) if refined else (req.device_cached, ctx0 + start, first_ready, later)
        self.device_cache.record(self.turns, i, held)
        self.finish(i)

    def finish(self, i: int) -> None:
        req = self.reqs[i]
        req.done = True
        req.pd = None
        self.finished += 1

    def on_token_arrive(self, i: int, now: int) -> None:
        req = self.reqs[i]
        out = self.output[i]
        plan = req.plan
        refined = plan is not None and plan[2] < 1.0
        pd = req.pd
        if pd is None:
            req.cloud_discarded += 1
            return
        pos = pd.receive_cloud()
        if pos < 0:
            req.cloud_discarded += 1
            return
        if pos == 0 and refined:
            p = self.device.prefill(pd.prompt_len)
            pd.device_free_at = now + p
            self.schedule(now + p, PRIO_DEVICE, EV_PROMPT_DONE, i, 0)
        if pd.first_arrival is None:
            pd.first_arrival = now
        pd.last_arrival = now
        complete = pd.received == out
        if complete:
            pd.device_stopped = True
            if refined:
                self.device_cache.record(self.turns, i, (0, 0, 0, []))
            elif req.device_prefill_tokens > 0:
                held = (req.device_cached, pd.prompt_len + pd.prefilled, now, [])
                self.device_cache.record(self.turns, i, held)
        ctrl = pd.ctrl
        if ctrl is not None:
            ctrl.push(now)
            if complete:
                ctrl.handoff = now
            else:
                self.revise_handoff(i)
            self.schedule_display(i, now)
        else:
            pd.display()
            req.cloud_kept += 1
            req.last_cloud_display = now
            self.record(req, self.arrival[i], now)
            if complete:
                self.finish(i)

    def revise_handoff(self, i: int) -> None:
        quota = self.cloud.reqs[i].quota
        prior = round_ns(self.cloud.lone_decode_s(self.prompt[i]) * 1e9)
        pd = self.reqs[i].pd
        if pd is None:
            return
        free_at = pd.device_free_at
        if free_at is None:
            return
        device = self.device
        started = pd.prefilled + pd.in_flight
        left = max(quota - started, 0)
        prompt = pd.prompt_len
        h = free_at
        if left > 0:
            h += device.append(prompt + started, left)
        received = pd.received
        first = pd.first_arrival
        if first is not None and received < quota:
            pace = (pd.last_arrival - first) // (received - 1) if received >= 2 else prior
            last = pd.last_arrival + pace * (quota - received)
            h = max(h, last + device.append(prompt + quota - 1, 1))
        h += device.tpot(prompt + quota)  # the hand-off guard
        if pd.ctrl is not None:
            pd.ctrl.handoff = h

    def schedule_display(self, i: int, now: int) -> None:
        pd = self.reqs[i].pd
        assert pd is not None
        ctrl = pd.ctrl
        if ctrl is None:
            return
        due = ctrl.next_due()
        if due is None:
            return
        at = due if due > now else now
        if pd.display_at == at:
            return
        pd.display_gen += 1
        pd.display_at = at
        self.schedule(at, PRIO_DISPLAY, EV_DISPLAY, i, pd.display_gen)

    def on_display(self, i: int, gen: int, now: int) -> None:
        req = self.reqs[i]
        pd = req.pd
        if pd is None or gen != pd.display_gen:
            return
        pd.display_at = None
        ctrl = pd.ctrl
        assert ctrl is not None
        t = ctrl.mark_shown(now)
        pd.display()
        req.cloud_kept += 1
        req.last_cloud_display = t
        self.record(req, self.arrival[i], t)
        if pd.displayed == self.output[i]:
            self.finish(i)
            return
        self.schedule_display(i, now)

    def on_prompt_done(self, i: int, now: int) -> None:
        req = self.reqs[i]
        plan = req.plan
        assert plan is not None
        if plan[0] == M_SPEC:
            if not req.done:
                req.spec_prompt_ready = True
                if req.spec_received > 0:
                    self.start_round(i, now)
            return
        if plan[0] == M_RACE:
            if req.race == RACE_OPEN:
                req.race = RACE_DEVICE
                req.device_prefill_tokens = self.prompt[i] - req.device_cached
                self.schedule(now + self.one_way[i], PRIO_CLOUD, EV_CANCEL, i, 0)
                self.finish_on_device(i, now, 0, plan[3])
            return
        pd = req.pd
        if pd is None or pd.device_stopped:
            return
        pd.prompt_prefilled = True
        req.device_prefill_tokens += pd.prompt_len - req.device_cached
        if plan[0] == M_DISCO and pd.received > 0:
            self.schedule(now + self.one_way[i], PRIO_CLOUD, EV_CANCEL, i, 0)
        self.device_step(i, now)

    def on_spec_result(self, i: int, n: int, now: int) -> None:
        req = self.reqs[i]
        if req.done:
            return
        plan = req.plan
        assert plan is not None
        min_tpot = plan[3]
        arrival = self.arrival[i]
        for _ in range(n):
            t = now if req.first is None else max(now, req.last + min_tpot)
            self.record(req, arrival, t)
        req.cloud_kept += n
        req.last_cloud_display = req.last
        req.spec_received += n
        if req.count >= self.output[i]:
            self.finish(i)
            return
        if req.spec_prompt_ready:
            self.start_round(i, now)

    def start_round(self, i: int, now: int) -> None:
        req = self.reqs[i]
        plan = req.plan
        assert plan is not None
        spec = plan[6]
        assert spec is not None
        drafted = spec.draft(self.device, self.prompt[i] + req.spec_received)
        req.device_decode_tokens += spec.gamma
        req.bytes_up += float(spec.gamma) * self.stream_bytes
        self.schedule(now + drafted + self.one_way[i], PRIO_CLOUD, EV_SPEC_DRAFTS, i, 0)

    def on_chunk_done(self, i: int, n: int, now: int) -> None:
        req = self.reqs[i]
        pd = req.pd
        if pd is None or pd.device_stopped:
            return
        if not pd.prompt_prefilled or pd.prefilled + n > pd.received:
            raise RuntimeError("prefill_received: out of order")
        pd.prefilled += n
        pd.in_flight = 0
        req.device_prefill_tokens += n
        self.device_step(i, now)

    def device_step(self, i: int, now: int) -> None:
        req = self.reqs[i]
        quota = self.cloud.reqs[i].quota
        pd = req.pd
        assert pd is not None
        todo = pd.received - pd.prefilled
        if todo > 0:
            done_at = now + self.device.append(pd.prompt_len + pd.prefilled, todo)
            pd.device_free_at = done_at
            pd.in_flight = todo
            self.schedule(done_at, PRIO_DEVICE, EV_CHUNK_DONE, i, todo)
            self.revise_handoff(i)
            self.schedule_display(i, now)
            return
        pos = pd.take_over()
        plan = req.plan
        assert plan is not None
        if pos < quota:
            self.schedule(now + self.one_way[i], PRIO_CLOUD, EV_CANCEL, i, 0)
        ctrl = pd.ctrl
        flushed = []
        if ctrl is not None:
            ctrl.handoff = now
            ctrl.expected = ctrl.received
            while (due := ctrl.next_due()) is not None:
                flushed.append(ctrl.mark_shown(due if due > now else now))
                pd.display()
            pd.display_gen += 1
        arrival = self.arrival[i]
        for t in flushed:
            self.record(req, arrival, t)
            req.cloud_kept += 1
            req.last_cloud_display = t
        req.handoff_pos = pos
        self.finish_on_device(i, now, pos, plan[3])

    def results(self) -> dict[str, npt.NDArray[Any]]:
        """Per-request results, the same columns and values as the native ``results()``."""
        nan = math.nan
        cols: dict[str, list[float]] = {
            name: []
            for name in (
                "ttft_s",
                "e2e_s",
                "tpot_s",
                "max_gap_s",
                "handoff_gap_s",
                "handoff_stall_s",
                "qoe",
                "cloud_prefill_gpu_s",
                "cloud_decode_gpu_s",
                "cloud_decode_tokens",
                "cloud_tokens_kept",
                "cloud_tokens_discarded",
                "device_prefill_tokens",
                "device_decode_tokens",
                "handoff_pos",
                "cloud_ttft_s",
                "cloud_tpot_s",
                "displayed_tokens",
                "finish_s",
                "refine_ratio",
                "bytes_up",
                "bytes_down",
                "radio_s",
                "device_cached_tokens",
                "cloud_cached_tokens",
            )
        }
        served_by: list[int] = []
        modes: list[int] = []
        k_sites: list[int] = []
        a, v = self.qoe_a, self.qoe_v
        for i, req in enumerate(self.reqs):
            arrival = self.arrival[i]
            c = self.cloud.reqs[i]
            first = req.first
            cols["ttft_s"].append(nan if first is None else (first - arrival) / 1e9)
            cols["e2e_s"].append(nan if first is None else (req.last - arrival) / 1e9)
            cols["tpot_s"].append(req.tpot_s())
            cols["max_gap_s"].append(req.max_gap / 1e9)
            lc, fd = req.last_cloud_display, req.first_device_display
            gap = (fd - lc) / 1e9 if lc is not None and fd is not None else nan
            cols["handoff_gap_s"].append(gap)
            max_tpot = 0.0 if req.plan is None else req.plan[4] / 1e9
            cols["handoff_stall_s"].append(0.0 if math.isnan(gap) else max(gap - max_tpot, 0.0))
            cols["qoe"].append(req.qoe(arrival, a, v))
            cols["cloud_prefill_gpu_s"].append(c.gpu_prefill_s)
            cols["cloud_decode_gpu_s"].append(c.gpu_decode_s)
            cols["cloud_decode_tokens"].append(float(max(c.generated - 1, 0)))
            cols["cloud_tokens_kept"].append(float(req.cloud_kept))
            cols["cloud_tokens_discarded"].append(float(max(c.generated - req.cloud_kept, 0)))
            cols["device_prefill_tokens"].append(float(req.device_prefill_tokens))
            cols["device_decode_tokens"].append(float(req.device_decode_tokens))
            cols["handoff_pos"].append(float(req.handoff_pos))
            cf = req.cloud_first_arrival
            cols["cloud_ttft_s"].append(nan if cf is None else (cf - arrival) / 1e9)
            cols["cloud_tpot_s"].append(c.gap_sum / 1e9 / float(c.gap_count) if c.gap_count > 0 else nan)
            cols["displayed_tokens"].append(float(req.count))
            cols["finish_s"].append(nan if first is None else req.last / 1e9)
            cols["refine_ratio"].append(1.0 if req.plan is None else req.plan[2])
            cols["bytes_up"].append(req.bytes_up)
            cols["bytes_down"].append(req.bytes_down)
            cols["radio_s"].append(0.0 if req.last_down is None else (req.last_down - arrival) / 1e9)
            cols["device_cached_tokens"].append(float(req.device_cached))
            cols["cloud_cached_tokens"].append(float(req.cloud_cached))
            kept, decoded = req.cloud_kept > 0, req.device_decode_tokens > 0
            served_by.append(0 if kept and not decoded else 1 if decoded and not kept else 2)
            modes.append(255 if req.plan is None else req.plan[0])
            if not (self.cloud.disaggregated and c.generated > 1):
                k_sites.append(2)
            else:
                k_sites.append(3 if c.bridged else int(c.decode_on_prefill))
        out: dict[str, npt.NDArray[Any]] = {k: np.asarray(col, dtype=np.float64) for k, col in cols.items()}
        out["served_by"] = np.asarray(served_by, dtype=np.uint8)
        out["mode"] = np.asarray(modes, dtype=np.uint8)
        out["k_site"] = np.asarray(k_sites, dtype=np.uint8)
        return out

    def summary(self) -> dict[str, float]:
        """Run counters, as the native ``summary()``."""
        h = self.hist
        return {
            "events": float(self.processed),
            "iterations": float(self.cloud.iterations),
            "makespan_s": self.now_ns / 1e9,
            "cloud_gpu_s_prefill": self.cloud.gpu_prefill_s,
            "cloud_gpu_s_decode": self.cloud.gpu_decode_s,
            "itl_p50_s": h.quantile_s(0.5),
            "itl_p90_s": h.quantile_s(0.9),
            "itl_p99_s": h.quantile_s(0.99),
            "itl_mean_s": h.mean_s(),
        }


def scenario_configs(scenario: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The cloud and device keyword arguments of a ``pdcore.sim.Scenario``, as plain mappings.

    ``pdcore._core.CloudConfig(**cloud)`` and ``pdcore._core.DeviceCost(**device)`` build the native
    records from them; `Simulator` takes them as they are.
    """
    c = scenario.cloud
    cloud = {
        "deployment": scenario.deployment,
        "replicas": scenario.replicas,
        "prefill_replicas": scenario.prefill_replicas,
        "decode_replicas": scenario.decode_replicas,
        "base_s": c.base_s,
        "prefill_token_s": c.prefill_token_s,
        "prefill_attn_s": c.prefill_attn_s,
        "decode_seq_s": c.decode_seq_s,
        "decode_context_s": c.decode_context_s,
        "max_batch_size": c.max_batch_size,
        "max_tokens_per_iteration": c.max_tokens_per_iteration,
        "kv_cache_tokens": c.kv_cache_tokens,
        "gpus_per_replica": c.gpus_per_replica,
        "kv_bytes_per_token": float(c.kv_bytes_per_token),
        "kv_link_bytes_per_s": scenario.kv_link(),
        "k_sites": scenario.k_sites,
        "prefill_decode_budget": scenario.prefill_decode_budget(),
        "kv_write_token_s": float(c.kv_write_token_s),
        "prefill_decode_gap_s": 0.0 if scenario.k_sites == "pool" else scenario.slo.max_tpot_s,
    }
    d = scenario.device
    device = {
        "prefill_tokens": list(d.prefill_tokens),
        "prefill_s": list(d.prefill_seconds),
        "decode_context": list(d.decode_context_tokens),
        "decode_tpot_s": list(d.decode_tpot),
        "kv_bytes_per_token": float(
            scenario.device_kv_bytes_per_token
            if scenario.device_kv_bytes_per_token is not None
            else d.kv_bytes_per_token
        ),
    }
    return cloud, device

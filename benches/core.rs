//! Criterion benchmarks of the pure-Rust core, each beside a naive baseline where one is meaningful.
//!
//! - `pace`: the batch speed controller on 1M tokens, as Python calls it (`pace_secs_into`: float
//!   seconds in and out, validation fused into the one pass) and in nanoseconds (`pace`), against the
//!   unfused three passes a plain binding would make (convert, pace, convert back).
//! - `controller`: the streaming `SpeedController`, one `push` + `next_due` + `mark_shown` per token,
//!   against re-running the rule from the first token on every display (what a stateless controller
//!   would do).
//! - `event_loop`: the classic hold model (pop the earliest event, schedule one later) with ~1k and ~100k
//!   events pending; one element is one pop plus one schedule. Baselines: a bare `BinaryHeap` of the
//!   same keys (the floor) and a sorted `Vec` with binary-search insertion (the naive queue).
//!
//! Inputs come from a fixed-seed generator, so every run measures the same work.
//! Run with `cargo bench --bench core` (add `-- --quick` for a fast pass).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use pdcore::pacing::{pace, pace_secs_into};
use pdcore::{EventLoop, Nanos, PaceConfig, SpeedController};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hint::black_box;
use std::time::Duration;

/// A small deterministic generator (`SplitMix64`), so the benches need no extra dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A cloud stream: gaps uniform in 0..40 ms (mean 20 ms, bursts and stalls both occur), 5..50 ms
/// display bounds and a hand-off at 30 ms a token, so the rule spreads, clamps and waits for late tokens.
fn stream(n: usize, seed: u64) -> (Vec<Nanos>, Nanos, PaceConfig) {
    let mut rng = Rng(seed);
    let mut t = 1_000_000_000_i64;
    let arrivals: Vec<Nanos> = (0..n)
        .map(|_| {
            t += rng.below(40_000_000) as i64;
            Nanos(t)
        })
        .collect();
    let handoff = Nanos(arrivals[0].0 + 30_000_000 * n as i64);
    let cfg = PaceConfig::new(Nanos::ms(5), Nanos::ms(50)).expect("valid bounds");
    (arrivals, handoff, cfg)
}

/// The unfused form: validate and convert to nanoseconds, pace, convert back, each pass allocating.
fn three_pass_pace_secs(arrivals: &[f64], handoff: Nanos, cfg: PaceConfig) -> Vec<f64> {
    let ns: Vec<Nanos> = arrivals
        .iter()
        .enumerate()
        .map(|(i, &a)| Nanos::from_secs(a, "arrivals", Some(i)))
        .collect::<Result<_, _>>()
        .expect("valid arrivals");
    let shown = pace(&ns, handoff, cfg).expect("valid stream");
    shown.into_iter().map(Nanos::as_secs).collect()
}

fn bench_pace(c: &mut Criterion) {
    const N: usize = 1_000_000;
    let (arrivals, handoff, cfg) = stream(N, 1);
    let secs: Vec<f64> = arrivals.iter().map(|a| a.as_secs()).collect();
    let mut out = vec![0.0_f64; N];
    pace_secs_into(&secs, handoff, cfg, &mut out).expect("valid stream");
    assert_eq!(out, three_pass_pace_secs(&secs, handoff, cfg), "the baseline computes the same schedule");

    let mut g = c.benchmark_group("pace");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(30);
    g.bench_function("pace_secs_into/1M", |b| {
        b.iter(|| pace_secs_into(black_box(&secs), handoff, cfg, black_box(&mut out)));
    });
    g.bench_function("pace_nanos/1M", |b| {
        b.iter(|| pace(black_box(&arrivals), handoff, cfg));
    });
    g.bench_function("baseline_three_pass/1M", |b| {
        b.iter(|| three_pass_pace_secs(black_box(&secs), handoff, cfg));
    });
    g.finish();
}

/// Display time of token `k` recomputed from the first token on: the rule without kept state.
fn stateless_due(arrivals: &[Nanos], k: usize, handoff: Nanos, n: u64, cfg: PaceConfig) -> Nanos {
    let mut prev = arrivals[0];
    for (i, &a) in arrivals.iter().enumerate().take(k + 1).skip(1) {
        prev = cfg.due(prev, a, handoff, n - i as u64 + 1);
    }
    prev
}

fn bench_controller(c: &mut Criterion) {
    const N: usize = 1_000;
    let (arrivals, handoff, cfg) = stream(N, 2);
    let batch = pace(&arrivals, handoff, cfg).expect("valid stream");
    let streamed = |arrivals: &[Nanos]| {
        let mut sc = SpeedController::new(cfg, Some(N as u64), Some(handoff));
        let mut last = Nanos::ZERO;
        for &a in arrivals {
            sc.push(a).expect("non-decreasing");
            let due = sc.next_due().expect("a token is buffered");
            last = sc.mark_shown(None).expect("shown at its due time");
            debug_assert_eq!(due, last);
        }
        last
    };
    assert_eq!(streamed(&arrivals), batch[N - 1]);
    let stateless = |arrivals: &[Nanos]| {
        (0..N).map(|k| stateless_due(arrivals, k, handoff, N as u64, cfg)).fold(Nanos::ZERO, Nanos::max)
    };
    assert_eq!(stateless(&arrivals), batch[N - 1]);

    let mut g = c.benchmark_group("controller");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("push_next_due_mark_shown/1k", |b| {
        b.iter(|| streamed(black_box(&arrivals)));
    });
    g.bench_function("push_all_then_show/1k", |b| {
        b.iter(|| {
            let mut sc = SpeedController::new(cfg, Some(N as u64), Some(handoff));
            for &a in black_box(&arrivals) {
                sc.push(a).expect("non-decreasing");
            }
            while let Some(due) = sc.next_due() {
                black_box(due);
                sc.mark_shown(None).expect("shown at its due time");
            }
        });
    });
    g.bench_function("baseline_stateless_replay/1k", |b| {
        b.iter(|| stateless(black_box(&arrivals)));
    });
    g.finish();
}

/// Hold-model increments: uniform in 0..2 ms, priorities in 0..4 so ties at equal times occur.
struct Hold {
    rng: Rng,
}

impl Hold {
    fn next(&mut self) -> (Nanos, i32) {
        let r = self.rng.next();
        (Nanos((r % 2_000_000) as i64), ((r >> 40) % 4) as i32)
    }
}

/// The naive queue: kept sorted latest-first so the earliest event pops off the end.
struct SortedVec {
    items: Vec<(Nanos, i32, u64, u32)>,
    seq: u64,
}

impl SortedVec {
    fn push(&mut self, at: Nanos, priority: i32, event: u32) {
        let key = (at, priority, self.seq, event);
        self.seq += 1;
        let pos = self.items.partition_point(|x| (x.0, x.1, x.2) > (key.0, key.1, key.2));
        self.items.insert(pos, key);
    }

    fn pop(&mut self) -> Option<(Nanos, i32, u64, u32)> {
        self.items.pop()
    }
}

fn bench_event_loop(c: &mut Criterion) {
    const OPS: u64 = 1_000;
    let mut g = c.benchmark_group("event_loop_hold");
    g.throughput(Throughput::Elements(OPS));
    g.measurement_time(Duration::from_secs(4));
    // the naive queue at 100k pending takes ~10 ms an iteration; 30 samples keep its run near 5 s
    g.sample_size(30);
    for pending in [1_000_usize, 100_000] {
        // the usual start of a hold model: `pending` events at times drawn from the increment law
        let initial: Vec<(Nanos, i32)> = {
            let mut h = Hold { rng: Rng(3) };
            (0..pending).map(|_| h.next()).collect()
        };

        let mut lp: EventLoop<u32> = EventLoop::with_capacity(pending + 1);
        for (i, &(at, p)) in initial.iter().enumerate() {
            lp.schedule(at, p, i as u32).expect("not in the past");
        }
        let mut hold = Hold { rng: Rng(4) };
        g.bench_with_input(BenchmarkId::new("pdcore_event_loop", pending), &pending, |b, _| {
            b.iter(|| {
                for _ in 0..OPS {
                    let ev = lp.pop().expect("the hold model keeps events pending");
                    let (delay, p) = hold.next();
                    lp.schedule(ev.at + delay, p, ev.event).expect("not in the past");
                }
            });
        });
        assert_eq!(lp.pending(), pending);

        let mut heap = BinaryHeap::with_capacity(pending + 1);
        let mut seq = 0_u64;
        for (i, &(at, p)) in initial.iter().enumerate() {
            heap.push(Reverse((at, p, seq, i as u32)));
            seq += 1;
        }
        let mut hold = Hold { rng: Rng(4) };
        g.bench_with_input(BenchmarkId::new("baseline_binary_heap", pending), &pending, |b, _| {
            b.iter(|| {
                for _ in 0..OPS {
                    let Reverse((at, _, _, ev)) = heap.pop().expect("pending");
                    let (delay, p) = hold.next();
                    heap.push(Reverse((at + delay, p, seq, ev)));
                    seq += 1;
                }
            });
        });

        let mut sorted = SortedVec { items: Vec::with_capacity(pending + 1), seq: 0 };
        for (i, &(at, p)) in initial.iter().enumerate() {
            sorted.push(at, p, i as u32);
        }
        let mut hold = Hold { rng: Rng(4) };
        g.bench_with_input(BenchmarkId::new("baseline_sorted_vec", pending), &pending, |b, _| {
            b.iter(|| {
                for _ in 0..OPS {
                    let (at, _, _, ev) = sorted.pop().expect("pending");
                    let (delay, p) = hold.next();
                    sorted.push(at + delay, p, ev);
                }
            });
        });
    }
    g.finish();
}

criterion_group!(benches, bench_pace, bench_controller, bench_event_loop);
criterion_main!(benches);

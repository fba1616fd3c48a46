//! The catch-up fixed point's tests.
#![allow(clippy::float_cmp)] // the prices compared are exact by construction

use super::*;
use crate::testing::toy_device as toy;
use proptest::prelude::*;

fn input(prompt: u32, f: f64, m: f64) -> CatchUpInput {
    CatchUpInput {
        prompt_tokens: prompt,
        first_token_s: f,
        max_tpot_s: m,
        refine_ratio: 1.0,
        cloud_tpot_s: 0.0,
        first_gap_s: None,
        max_k: DEFAULT_MAX_K,
        device_cached_tokens: 0,
    }
}

#[test]
fn a_cached_prefix_leaves_the_rest_to_prefill() {
    // 1000 tokens with 900 cached: the device's prompt is done after appending 100 (0.1 s), before
    // the cloud's first token at 0.2 s, so it answers alone; without the cache it needs k tokens
    let cold = solve_catchup(&toy(), &input(1000, 0.2, 0.05)).unwrap();
    assert!(!cold.device_alone && cold.k > 0);
    let warm =
        solve_catchup(&toy(), &CatchUpInput { device_cached_tokens: 900, ..input(1000, 0.2, 0.05) }).unwrap();
    assert!(warm.device_alone);
    assert!((warm.device_ready_s - toy().append_s(900.0, 100.0)).abs() < 1e-12);
    // a refined prompt reuses nothing
    let refined = CatchUpInput { refine_ratio: 0.5, ..input(1000, 0.2, 0.05) };
    let with_cache = CatchUpInput { device_cached_tokens: 900, ..refined };
    assert_eq!(solve_catchup(&toy(), &refined).unwrap(), solve_catchup(&toy(), &with_cache).unwrap());
}

#[test]
fn the_documented_example() {
    // the smallest n with 1.0 + max(0.001 n, 0.02) <= 0.2 + 0.05 n is 17
    let s = solve_catchup(&toy(), &input(1000, 0.2, 0.05)).unwrap();
    assert_eq!(s.k, 16);
    assert!(s.converged && !s.device_alone);
}

#[test]
fn device_alone_when_it_is_first() {
    let s = solve_catchup(&toy(), &input(100, 0.2, 0.05)).unwrap();
    assert!(s.device_alone);
    assert_eq!(s.k, 0);
    assert!((s.device_ready_s - 0.1).abs() < 1e-12);
}

#[test]
fn no_fixed_point_caps_k() {
    // appending costs 60 ms a token at least, the pace is 50 ms: never catches up
    let slow = DeviceCost::new(vec![1000.0], vec![60.0], vec![0.0], vec![0.06], 1.0).unwrap();
    let s = solve_catchup(&slow, &CatchUpInput { max_k: 300, ..input(1000, 0.2, 0.05) }).unwrap();
    assert!(!s.converged);
    assert_eq!(s.k, 300);
}

#[test]
fn rejects_bad_inputs() {
    for bad in [
        CatchUpInput { prompt_tokens: 0, ..input(1, 0.2, 0.05) },
        input(1, f64::NAN, 0.05),
        input(1, 0.2, 0.0),
        CatchUpInput { refine_ratio: 1.5, ..input(1, 0.2, 0.05) },
        CatchUpInput { cloud_tpot_s: -1.0, ..input(1, 0.2, 0.05) },
        CatchUpInput { first_gap_s: Some(f64::NAN), ..input(1, 0.2, 0.05) },
        CatchUpInput { first_gap_s: Some(-0.01), ..input(1, 0.2, 0.05) },
        CatchUpInput { first_gap_s: Some(f64::INFINITY), ..input(1, 0.2, 0.05) },
    ] {
        assert!(solve_catchup(&toy(), &bad).is_err(), "{bad:?}");
    }
}

#[test]
fn a_late_first_decode_token_needs_more_tokens() {
    // 20 ms appends; the cloud's tokens every 20 ms but its first decode token 120 ms after the first
    let base = CatchUpInput { cloud_tpot_s: 0.02, ..input(1000, 0.2, 0.05) };
    let late = CatchUpInput { first_gap_s: Some(0.12), ..base };
    let (a, b) = (solve_catchup(&toy(), &base).unwrap(), solve_catchup(&toy(), &late).unwrap());
    assert!(b.k >= a.k, "{a:?} {b:?}");
    // at k the last token shows by F + k d and the device is ready within m of it
    assert!(b.device_ready_s <= 0.2 + f64::from(b.k) * 0.05 + 0.05 + 1e-9);
    // and one token fewer would not do
    let fewer = CatchUpInput { max_k: b.k - 1, ..late };
    assert!(!solve_catchup(&toy(), &fewer).unwrap().converged);
}

#[test]
fn a_first_gap_equal_to_the_pace_changes_nothing() {
    let base = CatchUpInput { cloud_tpot_s: 0.03, ..input(2000, 0.3, 0.05) };
    let same = CatchUpInput { first_gap_s: Some(0.03), ..base };
    assert_eq!(solve_catchup(&toy(), &base).unwrap(), solve_catchup(&toy(), &same).unwrap());
}

proptest! {
    #[test]
    fn with_a_first_gap_the_hand_off_gap_condition_holds(
        prompt in 1_u32..4000, f in 0.0_f64..2.0, m in 0.01_f64..0.2, c in 0.0_f64..0.05,
        g in 0.0_f64..0.2, tpot in 0.005_f64..0.08,
    ) {
        let d = DeviceCost::new(vec![1000.0], vec![1.0], vec![0.0], vec![tpot], 1.0).unwrap();
        let inp = CatchUpInput { cloud_tpot_s: c, first_gap_s: Some(g), max_k: 2000, ..input(prompt, f, m) };
        let s = solve_catchup(&d, &inp).unwrap();
        if s.converged && !s.device_alone {
            prop_assert!(s.device_ready_s <= f + f64::from(s.k) * m.max(c) + m + 1e-6);
        }
    }

    #[test]
    fn k_is_the_smallest_that_catches_up(
        prompt in 1_u32..6000, f in 0.0_f64..3.0, m in 0.01_f64..0.2, c in 0.0_f64..0.05,
        per_tok in 1e-4_f64..5e-3, tpot in 0.005_f64..0.08,
    ) {
        let d = DeviceCost::new(vec![1000.0], vec![per_tok * 1000.0], vec![0.0], vec![tpot], 1.0).unwrap();
        let inp = CatchUpInput { cloud_tpot_s: c, max_k: 2000, ..input(prompt, f, m) };
        let s = solve_catchup(&d, &inp).unwrap();
        if s.converged && !s.device_alone {
            let pace = m.max(c);
            // the hand-off gap condition holds at k ...
            prop_assert!(s.device_ready_s <= f + f64::from(s.k) * pace + m + 1e-6);
        }
    }
}

/// The fixed point as first written: `T(n)` run afresh for every iterate (a step per token per iterate).
fn solve_afresh(device: &DeviceCost, inp: &CatchUpInput) -> CatchUp {
    let (f, m, c) = (inp.first_token_s, inp.max_tpot_s, inp.cloud_tpot_s);
    let refined = refined_prompt_tokens(inp.prompt_tokens, inp.refine_ratio);
    let prompt_done = if inp.refine_ratio >= 1.0 {
        device.prompt_s(refined, inp.device_cached_tokens.min(refined.saturating_sub(1)))
    } else {
        f + device.prefill_s(f64::from(refined))
    };
    if inp.refine_ratio >= 1.0 && prompt_done < f {
        return CatchUp {
            k: 0,
            device_alone: true,
            converged: true,
            device_ready_s: prompt_done,
            iterations: 0,
        };
    }
    let stream = Stream { f, g: inp.first_gap_s.unwrap_or(c), c };
    let ready = |n: u64| -> f64 {
        let (mut t, mut done) = (prompt_done, 0_u64);
        loop {
            let arrived = n.min(stream.arrived_by(t));
            if arrived <= done {
                return t;
            }
            t += device.append_s(f64::from(refined) + done as f64, (arrived - done) as f64);
            done = arrived;
        }
    };
    let (pace, cap) = (m.max(c), u64::from(inp.max_k) + 1);
    let (mut n, mut iterations) = (1_u64, 0_u32);
    loop {
        iterations += 1;
        let t = ready(n);
        let needed = (((t - f - m) / pace - EPS).ceil() + 1.0).max(1.0);
        if needed <= n as f64 {
            return CatchUp {
                k: (n - 1) as u32,
                device_alone: false,
                converged: true,
                device_ready_s: t,
                iterations,
            };
        }
        if needed > cap as f64 {
            let t = ready(cap);
            return CatchUp {
                k: inp.max_k,
                device_alone: false,
                converged: false,
                device_ready_s: t,
                iterations,
            };
        }
        n = needed as u64;
    }
}

#[test]
fn a_fixed_point_out_of_reach_is_proved_without_climbing_to_max_k() {
    // a 40 ms step against a 10 ms pace and the cloud's tokens 12 ms apart: no k catches up, and the
    // iterates would climb a few tokens at a time; run afresh per iterate this took about max_k² / 20
    // device steps (hours at this max_k), and now answers once the second token is in
    let slow = DeviceCost::new(vec![1000.0], vec![1.0], vec![0.0], vec![0.04], 1.0).unwrap();
    for first_gap in [None, Some(0.05)] {
        let inp = CatchUpInput {
            cloud_tpot_s: 0.012,
            first_gap_s: first_gap,
            max_k: 200_000,
            ..input(2000, 0.3, 0.01)
        };
        let started = std::time::Instant::now();
        let s = solve_catchup(&slow, &inp).unwrap();
        assert!(!s.converged && s.k == 200_000 && s.iterations < 5, "{s:?}");
        assert!(started.elapsed().as_secs_f64() < 5.0, "took {:?}", started.elapsed());
        let small = CatchUpInput { max_k: 600, ..inp };
        let (early, iterated) = (solve_catchup(&slow, &small).unwrap(), solve_afresh(&slow, &small));
        assert!(iterated.iterations > 50, "{iterated:?}");
        assert_eq!(CatchUp { iterations: early.iterations, ..iterated }, early);
    }
}

#[test]
fn a_slow_climb_costs_a_step_per_token() {
    // the cloud's tokens 9.99 ms apart against a 10 ms pace (no bound applies): the device, a 40 ms step
    // behind, catches up only after thousands of tokens, the iterates climbing a token or two at a time
    let slow = DeviceCost::new(vec![1000.0], vec![1.0], vec![0.0], vec![0.04], 1.0).unwrap();
    let inp = CatchUpInput { cloud_tpot_s: 0.00999, max_k: 200_000, ..input(2000, 0.3, 0.01) };
    let s = solve_catchup(&slow, &inp).unwrap();
    assert!(s.converged && s.k > 1000 && s.iterations > 500, "{s:?}");
    assert_eq!(s, solve_afresh(&slow, &inp));
}

proptest! {
    #[test]
    fn one_trajectory_gives_the_same_solution_bit_for_bit(
        prompt in 1_u32..6000, f in 0.0_f64..3.0, m in 0.005_f64..0.2, c in 0.0_f64..0.05,
        g in prop::option::of(0.0_f64..0.3), per_tok in 1e-4_f64..5e-3, tpot in 0.005_f64..0.08,
        r in prop::sample::select(vec![1.0, 0.7, 0.35]), cached in 0_u32..3000, max_k in 0_u32..1500,
    ) {
        let d = DeviceCost::new(
            vec![100.0, 2000.0], vec![per_tok * 150.0, per_tok * 2000.0], vec![0.0, 4000.0],
            vec![tpot, tpot * 1.3], 1.0,
        ).unwrap();
        let inp = CatchUpInput {
            cloud_tpot_s: c, first_gap_s: g, refine_ratio: r, max_k, device_cached_tokens: cached,
            ..input(prompt, f, m)
        };
        same_solution(&d, &inp)?;
    }

    #[test]
    fn a_step_slower_than_the_pace_is_answered_at_once_with_the_same_solution(
        prompt in 1_u32..6000, f in 0.0_f64..3.0, m in 0.002_f64..0.03, c in 0.0_f64..0.05,
        g in prop::option::of(0.0_f64..0.08), tpot in 0.005_f64..0.08, max_k in 0_u32..1500,
    ) {
        let d = DeviceCost::new(vec![1000.0], vec![0.5], vec![0.0, 4000.0], vec![tpot, tpot * 1.2], 1.0).unwrap();
        let inp = CatchUpInput { cloud_tpot_s: c, first_gap_s: g, max_k, ..input(prompt, f, m) };
        same_solution(&d, &inp)?;
    }
}

/// The solution of both solvers is the same bit for bit; the iterations too, but fewer when no fixed point
/// was proved early.
fn same_solution(d: &DeviceCost, inp: &CatchUpInput) -> Result<(), TestCaseError> {
    let (new, old) = (solve_catchup(d, inp).unwrap(), solve_afresh(d, inp));
    prop_assert_eq!(new.device_ready_s.to_bits(), old.device_ready_s.to_bits());
    prop_assert_eq!((new.k, new.device_alone, new.converged), (old.k, old.device_alone, old.converged));
    if old.converged {
        prop_assert_eq!(new.iterations, old.iterations);
    } else {
        prop_assert!(new.iterations <= old.iterations);
    }
    Ok(())
}

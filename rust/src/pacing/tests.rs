//! The pacing rule's invariants, live and in batch, by example and by property.

use super::*;
use proptest::prelude::*;

fn cfg(min_ms: i64, max_ms: i64) -> PaceConfig {
    PaceConfig::new(Nanos::ms(min_ms), Nanos::ms(max_ms)).unwrap()
}

fn streamed(a: &[Nanos], h: Nanos, c: PaceConfig) -> Vec<Nanos> {
    let mut sc = SpeedController::new(c, Some(a.len() as u64), Some(h));
    a.iter()
        .map(|&t| {
            sc.push(t).unwrap();
            sc.mark_shown(None).unwrap()
        })
        .collect()
}

#[test]
fn spreads_a_burst_evenly_until_the_handoff() {
    // 5 tokens arrive at once at t = 100 ms; the device takes over at 600 ms: 5 gaps of 100 ms.
    let a = vec![Nanos::ms(100); 5];
    let s = pace(&a, Nanos::ms(600), cfg(0, 150)).unwrap();
    assert_eq!(s, (1..=5).map(|i| Nanos::ms(i * 100)).collect::<Vec<_>>());
}

#[test]
fn late_token_is_shown_on_arrival() {
    let a = vec![Nanos::ms(0), Nanos::ms(500)];
    let s = pace(&a, Nanos::ms(600), cfg(0, 100)).unwrap();
    assert_eq!(s, vec![Nanos::ms(0), Nanos::ms(500)]);
}

#[test]
fn rejects_bad_bounds_and_decreasing_arrivals() {
    assert!(PaceConfig::new(Nanos::ms(5), Nanos::ms(5)).is_err());
    let e = pace(&[Nanos::ms(2), Nanos::ms(1)], Nanos::ms(9), cfg(0, 10)).unwrap_err();
    assert!(e.to_string().contains("arrivals[1]"), "{e}");
    let mut out = [0.0; 2];
    let e = pace_secs_into(&[0.0, f64::NAN], Nanos::ZERO, cfg(0, 10), &mut out).unwrap_err();
    assert!(e.to_string().contains("arrivals[1] is NaN"), "{e}");
}

#[test]
fn empty_buffer_has_nothing_due_and_refuses_to_show() {
    let mut sc = SpeedController::new(cfg(0, 10), None, None);
    assert_eq!(sc.next_due(), None);
    assert!(sc.mark_shown(None).is_err());
}

prop_compose! {
    fn stream()(gaps in prop::collection::vec(0_i64..200_000_000, 1..60),
                start in 0_i64..1_000_000_000,
                h_off in 0_i64..20_000_000_000,
                min in 0_i64..50_000_000, span in 1_i64..200_000_000)
                -> (Vec<Nanos>, Nanos, PaceConfig) {
        let mut t = start;
        let a = gaps.iter().map(|g| { t += g; Nanos(t) }).collect::<Vec<_>>();
        let c = PaceConfig::new(Nanos(min), Nanos(min + span)).unwrap();
        (a, Nanos(start + h_off), c)
    }
}

proptest! {
    #[test]
    fn invariants_i1_to_i3_and_i6((a, h, c) in stream()) {
        let s = pace(&a, h, c).unwrap();
        prop_assert_eq!(s.len(), a.len());
        prop_assert_eq!(s[0], a[0]);
        for i in 1..a.len() {
            prop_assert!(s[i] >= a[i]);
            prop_assert!(s[i] - s[i - 1] >= c.min_tpot());
            if a[i] <= s[i - 1] + c.max_tpot() {
                prop_assert!(s[i] - s[i - 1] <= c.max_tpot());
            } else {
                prop_assert_eq!(s[i], a[i]);
            }
        }
    }

    #[test]
    fn hinted_gap_equals_gap((a, h, c) in stream(), hints in prop::collection::vec(-5_i64..300_000_000, 60)) {
        for (i, &t) in a.iter().enumerate() {
            let mut hint = hints[i];
            let m = (a.len() - i) as u64 + 1;
            prop_assert_eq!(c.gap_hinted(t, h, m, &mut hint), c.gap(t, h, m));
            let mut hint2 = (h.0 - t.0) / m as i64; // the exact share as hint
            prop_assert_eq!(c.gap_hinted(t, h, m, &mut hint2), c.gap(t, h, m));
        }
    }

    #[test]
    fn streaming_equals_batch((a, h, c) in stream()) {
        prop_assert_eq!(streamed(&a, h, c), pace(&a, h, c).unwrap());
    }

    #[test]
    fn i4_causal((a, h, c) in stream(), cut in 0_usize..60, bump in 1_i64..1_000_000_000) {
        let s = pace(&a, h, c).unwrap();
        let cut = cut % a.len();
        let mut b = a.clone();
        for t in &mut b[cut..] { *t = Nanos(t.0 + bump); }
        let s2 = pace(&b, h, c).unwrap();
        // arrivals from `cut` on all come after s[i] (before and after the change): s[i] must not move
        for i in 0..a.len() {
            if a[cut] > s[i] {
                prop_assert_eq!(s[i], s2[i]);
            }
        }
    }

    #[test]
    fn i5_stretch(n in 1_usize..80, min in 0_i64..20_000_000, span in 1_i64..100_000_000,
                  frac in 0.0_f64..=1.0, lat in prop::collection::vec(0.0_f64..=1.0, 80)) {
        let c = PaceConfig::new(Nanos(min), Nanos(min + span)).unwrap();
        let a0 = 1_000_000_i64;
        let h = Nanos(a0 + (frac * (n as f64) * c.max_tpot().0 as f64) as i64);
        let p = ((h.0 - a0) / n as i64).clamp(c.min_tpot().0, c.max_tpot().0);
        // every token arrives somewhere between a0 and its ideal-pace display time
        let mut a: Vec<Nanos> = (0..n).map(|i| Nanos(a0 + (lat[i] * (i as f64) * p as f64) as i64)).collect();
        a.sort();
        a[0] = Nanos(a0);
        let s = pace(&a, h, c).unwrap();
        for i in 1..n { prop_assert!(s[i] - s[i - 1] <= c.max_tpot()); }
        prop_assert!(h - s[n - 1] <= c.max_tpot());
    }
}

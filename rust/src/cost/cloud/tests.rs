//! The cloud's prices, checked by hand: the lone request's, the prefill instance's and the sites'.

#![allow(clippy::float_cmp)] // the prices compared are exact by construction

use super::*;
use crate::cost::ksite::{choose_site, SiteReason};
use crate::testing::{a100, KV_LINK as LINK};

const ALL: u32 = u32::MAX;

#[test]
fn lone_prefill_charges_attention_once_however_chunked() {
    let c = a100();
    let one_chunk = CloudCost { max_tokens_per_iteration: 4096, ..c };
    let l = 1500_u32;
    let chunks = 3.0; // 512 + 512 + 476
    let want = c.base_s * chunks + c.prefill_token_s * f64::from(l) + c.prefill_attn_s * f64::from(l * l);
    assert!((c.lone_prefill_s(l) - want).abs() < 1e-12);
    let want_one = c.base_s + c.prefill_token_s * f64::from(l) + c.prefill_attn_s * f64::from(l * l);
    assert!((one_chunk.lone_prefill_s(l) - want_one).abs() < 1e-12);
    assert_eq!(c.lone_prefill_s(0), 0.0);
}

#[test]
fn iteration_matches_the_lone_prices() {
    let c = a100();
    let it = c.iteration(0.0, 0.0, 1.0, 700.0);
    assert!((it.total_s - c.lone_decode_s(700)).abs() < 1e-15);
    let it = c.iteration(300.0, CloudCost::chunk_attention(0, 300), 0.0, 0.0);
    assert!((it.total_s - c.lone_prefill_s(300)).abs() < 1e-15);
}

#[test]
fn queue_wait_bound_ignores_what_one_iteration_absorbs() {
    let c = a100();
    assert_eq!(c.queue_wait_lower_bound_s(400.0, 1), 0.0);
    assert!((c.queue_wait_lower_bound_s(1512.0, 1) - 1000.0 * 5e-5).abs() < 1e-15);
    assert!((c.queue_wait_lower_bound_s(2024.0, 2) - 1000.0 * 5e-5 / 2.0).abs() < 1e-15);
}

#[test]
fn validate_rejects_bad_coefficients() {
    assert!(CloudCost { base_s: f64::NAN, ..a100() }.validate().is_err());
    assert!(CloudCost { prefill_attn_s: -1.0, ..a100() }.validate().is_err());
    assert!(CloudCost { base_s: 0.0, decode_seq_s: 0.0, ..a100() }.validate().is_err());
    assert!(CloudCost { max_tokens_per_iteration: 0, ..a100() }.validate().is_err());
    assert!(a100().validate().is_ok());
}

#[test]
fn coefficients_beyond_what_hardware_takes_are_refused() {
    for (bad, key) in [
        (CloudCost { base_s: 11.0, ..a100() }, "base_s = 11 s is above 10 s"),
        (CloudCost { prefill_token_s: 3600.0, ..a100() }, "prefill_token_s = 3600 s is above 10 s"),
        (CloudCost { prefill_attn_s: 0.5, ..a100() }, "prefill_attn_s = 0.5 s"),
        (CloudCost { decode_seq_s: 60.0, ..a100() }, "decode_seq_s = 60 s"),
        (CloudCost { decode_context_s: 1.0, ..a100() }, "decode_context_s = 1 s"),
    ] {
        let e = bad.validate().unwrap_err().to_string();
        assert!(e.starts_with(key) && e.contains("more than any hardware takes ([iteration] "), "{e}");
    }
    let e = KvLink { write_token_s: 3600.0, ..LINK }.validate().unwrap_err().to_string();
    assert!(e.contains("([kv_transfer] write_token_s:"), "{e}");
}

#[test]
fn a_prefill_instance_step_is_a_lone_step_on_an_idle_instance() {
    let c = a100();
    assert_eq!(c.prefill_instance_decode_s(1000, 0.0, ALL), c.lone_decode_s(1000));
}

#[test]
fn a_prefill_instance_step_carries_the_rest_of_the_budget() {
    let c = a100();
    let full = c.prefill_instance_decode_s(1000, 1e9, ALL);
    let want =
        c.base_s + 511.0 * c.prefill_token_s + 511.0 * 511.0 * c.prefill_attn_s + c.lone_decode_s(1000)
            - c.base_s;
    assert!((full - want).abs() < 1e-15, "{full} {want}");
    let part = c.prefill_instance_decode_s(1000, 100.4, ALL);
    assert!((part - (c.lone_decode_s(1000) + 100.0 * 5e-5 + 1e4 * 1e-9)).abs() < 1e-15);
    assert_eq!(c.prefill_instance_decode_s(1000, f64::INFINITY, ALL), full);
}

#[test]
fn the_budget_rule_keeps_an_iteration_within_the_gap() {
    // the shipped A100 profile's coefficients: a full 2048-token iteration takes ~140 ms
    let c = CloudCost {
        base_s: 0.01644,
        prefill_token_s: 5.139e-5,
        prefill_attn_s: 4.144e-9,
        decode_seq_s: 2.136e-5,
        decode_context_s: 1.003e-7,
        prefill_knee_token_s: 0.0,
        prefill_knee_tokens: 0,
        max_tokens_per_iteration: 2048,
    };
    let b = c.prefill_decode_budget(0.05);
    let at = |b: u32| c.prefill_instance_decode_s(BUDGET_RULE_CONTEXT, 1e9, b);
    assert!(at(b) <= 0.05 && at(b + 1) > 0.05, "{b}: {} {}", at(b), at(b + 1));
    assert!((500..700).contains(&b), "{b}");
    assert_eq!(c.prefill_decode_budget(1.0), 2048, "a loose gap keeps the whole budget");
    assert_eq!(c.prefill_decode_budget(0.001), 2, "an impossible gap still decodes");
}

#[test]
fn the_chunk_rule_fills_an_iteration_up_to_the_gap() {
    let c = a100();
    let total = |chunk: u32| {
        c.iteration(f64::from(chunk), CloudCost::chunk_attention(3000, chunk), 2.0, 4000.0).total_s
    };
    let chunk = c.chunk_within(0.02, 0.0, 0.0, 3000, 512, 2.0, 4000.0);
    assert!(total(chunk) <= 0.02 && total(chunk + 1) > 0.02, "{chunk}");
    assert_eq!(c.chunk_within(1.0, 0.0, 0.0, 3000, 512, 2.0, 4000.0), 512);
    assert_eq!(c.chunk_within(0.001, 0.0, 0.0, 3000, 512, 2.0, 4000.0), 0, "the decodes alone miss it");
}

#[test]
fn the_pool_gap_holds_the_transfer() {
    let c = a100();
    let e = c.site_estimate(KSite::Pool, 999, 10, 0.0, &LINK, ALL);
    let step = c.lone_decode_s(999);
    assert_eq!(e.first_gap_s, pool_first_gap_s(&LINK, 999, 0.0, step, step));
    assert!((LINK.write_s(1000) - 1.29e-4).abs() < 1e-15);
    assert!(KvLink { write_token_s: -1.0, ..LINK }.validate().is_err());
    assert_eq!(e.hold_s, e.first_gap_s + 9.0 * c.lone_decode_s(999));
}

#[test]
fn few_tokens_stay_on_the_prefill_instance_when_the_pool_is_slower_to_start() {
    let c = a100();
    let slow = KvLink { bytes_per_s: 1e9, ..LINK }; // 131 ms for 1000 tokens
    let pool = c.site_estimate(KSite::Pool, 999, 10, 0.0, &slow, ALL);
    let prefill = c.site_estimate(KSite::Prefill, 999, 10, 0.0, &slow, ALL);
    assert!(prefill.hold_s <= pool.first_gap_s);
    assert_eq!(choose_site(&pool, &prefill, 0.05), (KSite::Prefill, SiteReason::Few));
    // a hundred tokens outlast the transfer: the pool
    let pool = c.site_estimate(KSite::Pool, 999, 100, 0.0, &slow, ALL);
    let prefill = c.site_estimate(KSite::Prefill, 999, 100, 0.0, &slow, ALL);
    assert_eq!(choose_site(&pool, &prefill, 0.05), (KSite::Pool, SiteReason::PoolFirst));
}

#[test]
fn a_slow_prefill_iteration_keeps_the_tokens_in_the_pool() {
    // a budget of 2048 tokens makes a loaded prefill iteration ~110 ms, above the gap
    let c = CloudCost { max_tokens_per_iteration: 2048, ..a100() };
    let slow = KvLink { bytes_per_s: 1e8, ..LINK };
    let pool = c.site_estimate(KSite::Pool, 999, 1, 1e6, &slow, ALL);
    let prefill = c.site_estimate(KSite::Prefill, 999, 1, 1e6, &slow, ALL);
    // (the simulator caps the budget by the gap; an uncapped instance is what this rule guards)
    assert!(prefill.first_gap_s > 0.05 && prefill.hold_s < pool.first_gap_s);
    assert_eq!(choose_site(&pool, &prefill, 0.05), (KSite::Pool, SiteReason::PoolFirst));
}

#[test]
fn with_both_or_neither_within_the_gap_the_pool_wins() {
    let c = a100();
    // idle, the prefill instance would be done sooner, but its steps would cap others' chunks
    let pool = c.site_estimate(KSite::Pool, 999, 10, 0.0, &LINK, ALL);
    let prefill = c.site_estimate(KSite::Prefill, 999, 10, 0.0, &LINK, ALL);
    assert!(prefill.hold_s < pool.hold_s && pool.first_gap_s < 0.05 && prefill.first_gap_s < 0.05);
    assert_eq!(choose_site(&pool, &prefill, 0.05), (KSite::Pool, SiteReason::PoolFirst));
    // neither within 10 ms
    assert_eq!(choose_site(&pool, &prefill, 0.01), (KSite::Pool, SiteReason::PoolFirst));
}

#[test]
fn the_knee_prices_the_weight_bound_tokens_at_its_own_rate() {
    let c = a100();
    let knee = CloudCost { prefill_knee_tokens: 200, prefill_knee_token_s: 1e-5, ..c };
    // 150 prefill tokens with 10 decodes: all 150 are below the knee (200 - 10 = 190).
    let got = knee.iteration(150.0, 0.0, 10.0, 0.0).total_s;
    let want = c.base_s + 1e-5 * 150.0 + c.decode_seq_s * 10.0;
    assert!((got - want).abs() < 1e-12, "{got} {want}");
    // 300 prefill tokens alone: 200 at the knee rate, 100 at the full rate.
    let got = knee.lone_prefill_s(300);
    let want = c.base_s + 1e-5 * 200.0 + c.prefill_token_s * 100.0 + c.prefill_attn_s * 90_000.0;
    assert!((got - want).abs() < 1e-12, "{got} {want}");
    // No knee: the five-term form, bit for bit.
    assert_eq!(
        c.iteration(150.0, 5.0, 10.0, 3.0),
        CloudCost { prefill_knee_token_s: 1e-5, ..c }.iteration(150.0, 5.0, 10.0, 3.0)
    );
}

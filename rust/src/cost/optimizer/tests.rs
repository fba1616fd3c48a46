//! The optimizer's plans: refinement, the load, the sites, the weights and the caches.

#![allow(clippy::float_cmp)] // the prices compared are exact by construction

use super::*;
use crate::cost::Weights;
use crate::testing::{a100, toy_device};

fn opt(ratios: &[f64]) -> PlanOptimizer {
    PlanOptimizer::new(toy_device(), a100(), 0.05, ratios, true, 1, 4096).unwrap()
}

#[test]
fn ratios_are_sorted_with_one() {
    assert_eq!(opt(&[0.5, 0.35, 0.5]).ratios, vec![1.0, 0.5, 0.35]);
}

#[test]
fn short_prompts_stay_on_the_device() {
    let c = opt(&[]).choose(10, 0.02, None).unwrap();
    assert!(c.device_alone);
    assert_eq!((c.k, c.refine_ratio), (0, 1.0));
}

#[test]
fn refinement_lowers_k_on_an_idle_cloud() {
    let full = opt(&[]).choose(4000, 0.02, None).unwrap();
    let refined = opt(&[0.5]).choose(4000, 0.02, None).unwrap();
    assert!(!full.device_alone && refined.k < full.k, "{full:?} {refined:?}");
    assert_eq!(refined.refine_ratio, 0.5);
}

#[test]
fn a_queue_moves_the_first_token_later() {
    let o = opt(&[]);
    let idle = o.first_token_s(1000, 0.02, Some(0.0));
    let busy = o.first_token_s(1000, 0.02, Some(10_512.0));
    assert!((busy - idle - 10_000.0 * 5e-5).abs() < 1e-12);
    let fixed = PlanOptimizer { load_adaptive: false, ..o };
    assert_eq!(fixed.first_token_s(1000, 0.02, Some(10_512.0)), idle);
}

#[test]
fn one_site_keeps_the_plans_of_the_pool() {
    let o = opt(&[]);
    let c = o.choose(4000, 0.02, Some(0.0)).unwrap();
    assert_eq!((c.k_site, c.k_site_reason), (KSite::Pool, SiteReason::Only));
    let link = KvLink { bytes_per_token: 131_072.0, bytes_per_s: 1e9, write_token_s: 0.0 };
    let both = o.clone().with_k_sites(KSites::Both, Some(link)).unwrap();
    let b = both.choose(4000, 0.02, Some(0.0)).unwrap();
    // a 4001-token cache over 1 GB/s takes 0.5 s: the prefill instance is done with the k tokens first
    assert_eq!((b.k_site, b.k_site_reason), (KSite::Prefill, SiteReason::Few));
    assert!(b.k > 0);
    let short = both.choose(10, 0.02, None).unwrap();
    assert_eq!(short.k_site_reason, SiteReason::NoDecode);
    assert!(o.with_k_sites(KSites::Both, None).is_err());
}

fn weighted(cost: f64, energy: f64) -> PlanOptimizer {
    let prices = crate::cost::Prices {
        usd_per_gpu_hour: 2.0,
        prefill_j_per_token: 0.002,
        decode_j_per_token: 0.05,
        wait_w: 0.25,
        radio_base_w: 0.13,
        radio_up_j_per_byte: 2e-6,
        radio_down_j_per_byte: 1e-6,
        radio_fixed_j: 0.04,
        battery_wh: 19.4,
    };
    let w = Weights {
        cost,
        energy,
        prices,
        gpus_per_replica: 1.0,
        expected_output_tokens: 200.0,
        ttft_slo_s: 1.0,
        prompt_bytes_per_token: 4.0,
        stream_bytes_per_token: 329.0,
    };
    opt(&[]).with_weights(w).unwrap()
}

#[test]
fn weights_move_work_to_the_cheaper_side() {
    // 200 tokens: the device answers in 0.2 s and decodes within the gap; so does the cloud, sooner
    let own = opt(&[]).choose(200, 0.02, Some(0.0)).unwrap();
    assert!(!own.device_alone && !own.cloud_alone && own.k > 0, "{own:?}");
    assert_eq!(weighted(0.0, 0.0).choose(200, 0.02, Some(0.0)).unwrap(), own);
    // latency alone among plans that meet the SLOs: the split and the cloud tie on TTFT, the split
    // (the optimizer's own) is kept
    assert_eq!(weighted(1e-12, 0.0).choose(200, 0.02, Some(0.0)).unwrap(), own);
    let cheap = weighted(100.0, 0.0).choose(200, 0.02, Some(0.0)).unwrap();
    assert!(cheap.device_alone, "{cheap:?}");
    let frugal = weighted(0.0, 100.0).choose(200, 0.02, Some(0.0)).unwrap();
    assert!(frugal.cloud_alone && !frugal.device_alone, "{frugal:?}");
    // a TTFT objective the device misses leaves it out, whatever the cost weight
    let tight = PlanOptimizer {
        weights: weighted(100.0, 0.0).weights.map(|w| Weights { ttft_slo_s: 0.1, ..w }),
        ..opt(&[])
    };
    assert!(!tight.choose(200, 0.02, Some(0.0)).unwrap().device_alone);
}

#[test]
fn cached_prefixes_move_both_first_tokens() {
    let o = opt(&[]);
    let cold = o.choose(4000, 0.02, None).unwrap();
    assert_eq!(o.choose_cached(4000, Cached::NONE, 0.02, None).unwrap(), cold);
    // the cloud's cache brings its first token forward: the device must catch up sooner, k grows
    let cloud = o.choose_cached(4000, Cached { device: 0, cloud: 3584 }, 0.02, None).unwrap();
    assert!(cloud.first_token_s < cold.first_token_s && cloud.k >= cold.k, "{cold:?} {cloud:?}");
    // the device's cache leaves it 100 tokens to prefill: it answers alone
    let device = o.choose_cached(4000, Cached { device: 3900, cloud: 0 }, 0.02, None).unwrap();
    assert!(device.device_alone, "{device:?}");
}

#[test]
fn rejects_bad_requests() {
    assert!(opt(&[]).choose(0, 0.02, None).is_err());
    assert!(opt(&[]).choose(10, -1.0, None).is_err());
    assert!(PlanOptimizer::new(toy_device(), a100(), 0.05, &[1.5], true, 1, 10).is_err());
}

#[test]
fn a_prompt_neither_side_can_hold_is_refused_not_priced() {
    // a 3B model's KV (114,688 bytes a token) and a replica holding 467,280 tokens
    let device = DeviceCost::new(vec![1.0], vec![0.001], vec![0.0], vec![0.02], 114_688.0).unwrap();
    let o = PlanOptimizer::new(device, a100(), 0.05, &[0.5], true, 1, 4096)
        .unwrap()
        .with_cloud_kv_cache_tokens(467_280)
        .unwrap();
    for refused in [o.choose(100_000_000, 0.02, None), o.choose_at(100_000_000, 0.5, 0.02, None)] {
        let e = refused.unwrap_err().to_string();
        assert!(e.starts_with("prompt_tokens = 100000000 fits neither the device"), "{e}");
    }
    assert!(o.choose(4000, 0.02, None).is_ok());
    // what one side holds is still planned; without the cloud's limit, as before
    assert!(o.choose(1_000_000, 0.02, None).is_ok());
    assert!(opt(&[]).choose(100_000_000, 0.02, None).is_ok());
}

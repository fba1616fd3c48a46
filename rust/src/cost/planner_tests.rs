#![allow(clippy::float_cmp)] // the plans compared are exact by construction

use super::*;
use crate::cost::catchup::{solve_catchup, CatchUpInput};

fn device(per_token_s: f64) -> DeviceCost {
    DeviceCost::new(vec![1000.0], vec![1000.0 * per_token_s], vec![0.0], vec![0.02], 1.0).unwrap()
}

fn optimizer() -> PlanOptimizer {
    let cloud = CloudCost {
        base_s: 0.005,
        prefill_token_s: 5e-5,
        prefill_attn_s: 1e-9,
        decode_seq_s: 1e-4,
        decode_context_s: 2e-8,
        prefill_knee_token_s: 0.0,
        prefill_knee_tokens: 0,
        max_tokens_per_iteration: 512,
    };
    PlanOptimizer::new(device(0.001), cloud, 0.05, &[0.5], true, 1, 4096).unwrap()
}

fn live(prompt: u32, first: f64) -> Turn {
    Turn {
        cloud_tpot_s: Some(0.01),
        max_tokens: Some(256),
        ..Turn::simulated(prompt, Cached::NONE, first, None)
    }
}

#[test]
fn a_simulated_turn_is_the_optimizers_choice() {
    let o = optimizer();
    for prompt in [10, 200, 1000, 4000] {
        for cached in [Cached::NONE, Cached { device: prompt / 2, cloud: prompt * 3 / 4 }] {
            let first = o.first_token_cached_s(prompt, cached.cloud, 0.02, Some(0.0));
            let p = plan_turn(&o, &Turn::simulated(prompt, cached, first, Some(0.0))).unwrap();
            let c = o.choose_cached(prompt, cached, 0.02, Some(0.0)).unwrap();
            let serve = if c.device_alone { Serve::Device } else { Serve::Split };
            assert_eq!(
                (p.serve, p.first_token_s, p.device_ready_s),
                (serve, c.first_token_s, c.device_ready_s)
            );
            if serve == Serve::Split {
                assert_eq!(
                    (p.k, p.refine_ratio, p.k_site, p.reason),
                    (c.k, c.refine_ratio, c.k_site, PlanReason::CatchUp)
                );
            } else {
                assert_eq!(p.reason, PlanReason::DeviceFirst);
            }
        }
    }
}

#[test]
fn a_told_pace_solves_the_catchup_at_it() {
    let o = live_optimizer(device(0.001), 0.045, 256).unwrap();
    let p = plan_turn(&o, &live(1000, 0.3)).unwrap();
    let direct = solve_catchup(
        &device(0.001),
        &CatchUpInput {
            prompt_tokens: 1000,
            first_token_s: 0.3,
            max_tpot_s: 0.045,
            refine_ratio: 1.0,
            cloud_tpot_s: 0.01,
            first_gap_s: None,
            max_k: 256,
            device_cached_tokens: 0,
        },
    )
    .unwrap();
    assert_eq!((p.serve, p.k, p.k_site, p.refine_ratio), (Serve::Split, direct.k, KSite::Pool, 1.0));
    assert_eq!(p.device_ready_s, direct.device_ready_s);
    let padded = plan_turn(&o, &Turn { k_margin: 0.2, ..live(1000, 0.3) }).unwrap();
    assert_eq!(padded.k, (f64::from(direct.k) * 1.2).ceil() as u32);
}

#[test]
fn an_answer_cap_sends_a_late_device_to_the_cloud() {
    let o = live_optimizer(device(0.001), 0.045, 256).unwrap();
    // the device's prompt is done at 10 ms, before the cloud's first token at 300 ms
    let alone = plan_turn(&o, &live(10, 0.3)).unwrap();
    assert_eq!((alone.serve, alone.k, alone.reason), (Serve::Device, 0, PlanReason::DeviceFirst));
    // 4000 tokens take the device 4 s: k + 1 reaches a 64-token answer
    let short = Turn { max_tokens: Some(64), ..live(4000, 0.3) };
    let long = plan_turn(&o, &short).unwrap();
    assert_eq!((long.serve, long.k, long.reason), (Serve::Cloud, 63, PlanReason::AnswerCap));
    assert!(long.wanted_k + 1 >= 64, "{long:?}");
    let roomy = plan_turn(&o, &Turn { context_room: Some(50), ..short }).unwrap();
    assert_eq!(roomy.k, 49);
    // appending slower than the pace: no fixed point
    let slow = live_optimizer(device(0.1), 0.045, 256).unwrap();
    let never = plan_turn(&slow, &live(500, 0.1)).unwrap();
    assert_eq!((never.serve, never.reason, never.converged), (Serve::Cloud, PlanReason::NoFixedPoint, false));
    // without a cap the simulator splits at max_k
    let uncapped = plan_turn(&slow, &Turn { max_tokens: None, ..live(500, 0.1) }).unwrap();
    assert_eq!((uncapped.serve, uncapped.k), (Serve::Split, 256));
}

#[test]
fn the_context_room_cuts_the_split() {
    let o = live_optimizer(device(0.001), 0.045, 256).unwrap();
    let free = plan_turn(&o, &live(1000, 0.3)).unwrap();
    assert!(free.serve == Serve::Split && free.k > 5, "{free:?}");
    let cut = plan_turn(&o, &Turn { context_room: Some(5), ..live(1000, 0.3) }).unwrap();
    assert_eq!((cut.serve, cut.k, cut.wanted_k), (Serve::Split, 4, free.k));
    let none = plan_turn(&o, &Turn { context_room: Some(-3), ..live(1000, 0.3) }).unwrap();
    assert_eq!(none.k, 0);
}

#[test]
fn an_unreduced_turn_always_splits() {
    let o = live_optimizer(device(0.001), 0.045, 256).unwrap();
    let alone = plan_turn(&o, &Turn { reduce: false, ..live(10, 0.3) }).unwrap();
    assert_eq!((alone.serve, alone.k, alone.reason), (Serve::Split, 0, PlanReason::CatchUp));
    let long = plan_turn(&o, &Turn { reduce: false, ..live(4000, 0.3) }).unwrap();
    assert_eq!((long.serve, long.k), (Serve::Split, long.wanted_k));
}

#[test]
fn rejects_bad_turns() {
    let o = live_optimizer(device(0.001), 0.045, 256).unwrap();
    assert!(plan_turn(&o, &live(0, 0.3)).is_err());
    assert!(plan_turn(&o, &live(10, f64::NAN)).is_err());
    assert!(plan_turn(&o, &Turn { k_margin: -1.0, ..live(10, 0.3) }).is_err());
    assert!(plan_turn(&o, &Turn { max_tokens: Some(0), ..live(10, 0.3) }).is_err());
    assert!(plan_turn(&o, &Turn { cloud_tpot_s: Some(-1.0), ..live(10, 0.3) }).is_err());
}

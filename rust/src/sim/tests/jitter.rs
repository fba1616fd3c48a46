//! The device's step spread: every token still shown once and in order, runs reproducible, the gaps of
//! plans with no token to spare widened by it, and the hand-off guard holding those with tokens to spare.
use super::*;
use crate::cost::PlanOptimizer;
use crate::sim::policy::NativePolicy;

fn inputs(reqs: &[(i64, u32, u32)]) -> Inputs {
    Inputs {
        arrival: reqs.iter().map(|r| Nanos::ms(r.0)).collect(),
        prompt: reqs.iter().map(|r| r.1).collect(),
        output: reqs.iter().map(|r| r.2).collect(),
        one_way_s: (0..reqs.len()).map(|i| 0.005 + 0.001 * (i % 7) as f64).collect(),
        bandwidth_bytes_per_s: 10e6,
        qoe: QoeParams { ttft_s: 1.0, tokens_per_s: 10.0 },
        wire: WIRE,
        conv: Conversations::default(),
    }
}

fn spread_device(spread: f64) -> DeviceCost {
    device().with_step_spread(spread).unwrap()
}

/// `n` requests of a seeded workload (a splitmix64 stream): 0.3 to 1.3 s apart, prompts of 64 to 1,024
/// tokens, answers of 50 to 400.
fn workload(n: usize, seed: u64) -> Vec<(i64, u32, u32)> {
    let mut state = seed;
    let mut next = |m: u64| {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % m
    };
    let mut t = 0;
    (0..n)
        .map(|_| {
            t += 300 + next(1000) as i64;
            (t, 64 + next(961) as u32, 50 + next(351) as u32)
        })
        .collect()
}

/// The seeded workload under P/D-Device on a device with `spread`, with the optimizer's `k` padded by
/// `k_margin` (the live runtime's allowance, `pdcore.runtime.settings.DEFAULT_K_MARGIN`).
fn auto_pd_padded(reqs: &[(i64, u32, u32)], spread: f64, k_margin: f64) -> Results {
    let pace = PaceConfig::new(Nanos::ZERO, Nanos::ms(50)).unwrap();
    let dev = spread_device(spread);
    let cost = cloud(Deployment::Disaggregated).cost;
    let optimizer = PlanOptimizer::new(dev.clone(), cost, 0.05, &[1.0], true, 1, 4096).unwrap();
    let mut sim = Simulator::new(inputs(reqs), cloud(Deployment::Disaggregated), dev).unwrap();
    while let Some(i) = sim.next_decision().unwrap() {
        let waiting = sim.cloud_load().waiting_prefill_tokens;
        let (prompt, one_way) = (sim.inp.prompt[i as usize], sim.inp.one_way_s[i as usize]);
        let c = optimizer.choose(prompt, one_way, Some(waiting)).unwrap();
        let plan = if c.device_alone {
            Plan::new(Mode::Device, 0, 1.0, pace).unwrap()
        } else {
            let k = (f64::from(c.k) * (1.0 + k_margin)).ceil() as u32;
            Plan::new(Mode::Pd, k, c.refine_ratio, pace).unwrap().at_site(c.k_site)
        };
        sim.decide(i, plan).unwrap();
    }
    sim.results()
}

/// The seeded workload under P/D-Device with the optimizer's `k`, on a device with `spread`.
fn auto_pd(reqs: &[(i64, u32, u32)], spread: f64) -> Results {
    let pace = PaceConfig::new(Nanos::ZERO, Nanos::ms(50)).unwrap();
    let dev = spread_device(spread);
    let cost = cloud(Deployment::Disaggregated).cost;
    let optimizer = PlanOptimizer::new(dev.clone(), cost, 0.05, &[1.0], true, 1, 4096).unwrap();
    let policy = NativePolicy::auto(Mode::Pd, pace, optimizer).unwrap();
    let mut sim = Simulator::new(inputs(reqs), cloud(Deployment::Disaggregated), dev).unwrap();
    sim.run_policy(&policy).unwrap();
    sim.results()
}

fn p99(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 * 0.99).ceil() as usize).clamp(1, v.len()) - 1]
}

#[test]
fn no_spread_runs_exactly_as_the_device_without_one() {
    let reqs = workload(40, 7);
    let (a, b) = (auto_pd(&reqs, 0.0), {
        let pace = PaceConfig::new(Nanos::ZERO, Nanos::ms(50)).unwrap();
        let cost = cloud(Deployment::Disaggregated).cost;
        let optimizer = PlanOptimizer::new(device(), cost, 0.05, &[1.0], true, 1, 4096).unwrap();
        let policy = NativePolicy::auto(Mode::Pd, pace, optimizer).unwrap();
        let mut sim = Simulator::new(inputs(&reqs), cloud(Deployment::Disaggregated), device()).unwrap();
        sim.run_policy(&policy).unwrap();
        sim.results()
    });
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
}

#[test]
fn a_spread_run_is_reproducible_and_differs_from_none() {
    let reqs = workload(40, 11);
    let (a, b) = (auto_pd(&reqs, 0.3), auto_pd(&reqs, 0.3));
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
    assert_ne!(format!("{a:?}"), format!("{:?}", auto_pd(&reqs, 0.0)));
}

#[test]
fn the_spread_widens_the_gaps_of_tight_plans_and_the_guard_holds_padded_ones() {
    let reqs = workload(400, 2024);
    // the optimizer's bare k leaves no token to spare: a prompt prefill slower than its price shows as
    // a gap at the hand-off, wider with the spread
    let bare: Vec<f64> = [0.0, 0.1, 0.3].iter().map(|&s| p99(&auto_pd(&reqs, s).max_gap_s)).collect();
    assert!(bare[0] <= 0.050 + 1e-9 && bare[0] < bare[1] && bare[1] < bare[2], "{bare:?}");
    // with cloud tokens to spare (k padded by half), the guard holds the hand-off within the objective
    for spread in [0.0, 0.1, 0.2] {
        let r = auto_pd_padded(&reqs, spread, 0.5);
        let handed = (0..reqs.len()).filter(|&i| r.handoff_pos[i] > 0.0 && r.cloud_tokens_kept[i] > 0.0);
        assert!(handed.count() > 300, "{spread}");
        let largest = p99(&r.max_gap_s);
        assert!(largest <= 0.050 + 1e-9, "{spread}: largest gap p99 {largest}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn with_a_spread_every_token_is_shown_once_and_in_order(
        reqs in prop::collection::vec((0_i64..300, 1_u32..3000, 1_u32..300), 1..12),
        mode in 0_u8..8, k in 0_u32..200, spread in 0.0_f64..=2.0,
    ) {
        let mut reqs = reqs;
        let mut t = 0;
        for r in &mut reqs { t += r.0; r.0 = t; }
        let mode = Mode::parse(Mode::NAMES[mode as usize]).unwrap();
        prop_assume!(mode != Mode::Spec);
        let mut sim = Simulator::new(inputs(&reqs), cloud(Deployment::Disaggregated), spread_device(spread))
            .unwrap();
        for i in 0..reqs.len() as u32 {
            sim.record_timeline(i).unwrap();
        }
        while let Some(i) = sim.next_decision().unwrap() {
            sim.decide(i, plan(mode, k)).unwrap();
        }
        let r = sim.results();
        for (i, req) in reqs.iter().enumerate() {
            prop_assert!((r.displayed_tokens[i] - f64::from(req.2)).abs() < 0.5);
            let tl = sim.timeline_for(i as u32).unwrap();
            prop_assert_eq!(tl.displays.len(), req.2 as usize);
            prop_assert!(tl.displays.windows(2).all(|w| w[0] <= w[1]));
            // the cloud's tokens first, then the device's: one hand-off at most
            let cloud = tl.from_cloud.iter().take_while(|&&c| c).count();
            prop_assert!(tl.from_cloud[cloud..].iter().all(|&c| !c));
        }
    }
}

//! Simulator tests across modes and deployments; conversations' caches and the clock's range apart.
use super::*;
use crate::pacing::PaceConfig;
use crate::testing::a100;
use cloud::Deployment;
use metrics::QoeParams;
use proptest::prelude::*;

mod busy;
mod clock;
mod conversations;
mod fleet;
mod jitter;

fn cloud(deployment: Deployment) -> CloudConfig {
    CloudConfig {
        deployment,
        replicas: 1,
        prefill_replicas: 1,
        decode_replicas: 1,
        cost: a100(),
        max_batch_size: 16,
        kv_cache_tokens: 20_000,
        gpus_per_replica: 1,
        kv_bytes_per_token: 131_072.0,
        kv_link_bytes_per_s: 25e9,
        k_sites: crate::cost::KSites::Both,
        prefill_decode_budget: 0,
        kv_write_token_s: 1e-7,
        prefill_decode_gap_s: 0.05,
    }
}

const WIRE: Wire = Wire { prompt_bytes_per_token: 4.0, stream_bytes_per_token: 100.0 };

fn device() -> DeviceCost {
    DeviceCost::new(vec![128.0, 1024.0], vec![0.5, 6.0], vec![0.0, 2048.0], vec![0.015, 0.025], 20_000.0)
        .unwrap()
}

fn run(reqs: &[(i64, u32, u32)], plan: Plan, dep: Deployment) -> (Results, Simulator) {
    let inp = Inputs {
        arrival: reqs.iter().map(|r| Nanos::ms(r.0)).collect(),
        prompt: reqs.iter().map(|r| r.1).collect(),
        output: reqs.iter().map(|r| r.2).collect(),
        one_way_s: vec![0.010; reqs.len()],
        bandwidth_bytes_per_s: 10e6,
        qoe: QoeParams { ttft_s: 1.0, tokens_per_s: 10.0 },
        wire: WIRE,
        conv: Conversations::default(),
    };
    let mut sim = Simulator::new(inp, cloud(dep), device()).unwrap();
    while let Some(i) = sim.next_decision().unwrap() {
        sim.decide(i, plan).unwrap();
    }
    (sim.results(), sim)
}

fn plan(mode: Mode, k: u32) -> Plan {
    Plan::new(mode, k, 1.0, PaceConfig::new(Nanos::ZERO, Nanos::ms(50)).unwrap()).unwrap()
}

#[test]
fn device_only_ttft_is_the_prefill_time() {
    let (r, _) = run(&[(0, 1024, 5)], plan(Mode::Device, 0), Deployment::Colocated);
    assert!((r.ttft_s[0] - 6.0).abs() < 1e-9, "{}", r.ttft_s[0]);
}

#[test]
fn cloud_only_light_load_ttft_is_rtt_plus_prefill() {
    let (r, sim) = run(&[(0, 1000, 3)], plan(Mode::Cloud, 0), Deployment::Colocated);
    let want = 0.020 + sim.cloud_lone_prefill_s(1000);
    assert!((r.ttft_s[0] - want).abs() < 1e-6, "{} vs {want}", r.ttft_s[0]);
}

#[test]
fn pd_device_with_enough_tokens_is_smooth_and_hands_off() {
    let (r, _) = run(&[(0, 1024, 400)], plan(Mode::Pd, 200), Deployment::Disaggregated);
    assert!(r.ttft_s[0] < 0.2, "ttft {}", r.ttft_s[0]);
    assert!(r.max_gap_s[0] <= 0.050 + 1e-9, "max gap {}", r.max_gap_s[0]);
    assert!(r.handoff_pos[0] > 0.0);
    assert!((r.displayed_tokens[0] - 400.0).abs() < 0.5);
}

#[test]
fn timeline_records_cloud_prefix_then_device() {
    let inp = Inputs {
        arrival: vec![Nanos::ZERO],
        prompt: vec![1024],
        output: vec![300],
        one_way_s: vec![0.010],
        bandwidth_bytes_per_s: 10e6,
        qoe: QoeParams { ttft_s: 1.0, tokens_per_s: 10.0 },
        wire: WIRE,
        conv: Conversations::default(),
    };
    let mut sim = Simulator::new(inp, cloud(Deployment::Disaggregated), device()).unwrap();
    sim.record_timeline(0).unwrap();
    while let Some(i) = sim.next_decision().unwrap() {
        sim.decide(i, plan(Mode::Pd, 200)).unwrap();
    }
    let tl = sim.timeline().unwrap();
    assert_eq!(tl.displays.len(), 300);
    assert!(tl.displays.windows(2).all(|w| w[0] <= w[1]));
    let cloud = tl.from_cloud.iter().take_while(|&&c| c).count();
    assert!(cloud > 0 && cloud < 300);
    assert!(tl.from_cloud[cloud..].iter().all(|&c| !c));
    assert!(tl.handoff.is_some());
    assert!(tl.cloud_arrivals.len() >= cloud);
}

#[test]
fn timelines_of_several_requests_with_handoff_estimates() {
    let inp = Inputs {
        arrival: vec![Nanos::ZERO, Nanos::ms(50), Nanos::ms(100)],
        prompt: vec![1024, 512, 2048],
        output: vec![300, 200, 250],
        one_way_s: vec![0.010; 3],
        bandwidth_bytes_per_s: 10e6,
        qoe: QoeParams { ttft_s: 1.0, tokens_per_s: 10.0 },
        wire: WIRE,
        conv: Conversations::default(),
    };
    let mut sim = Simulator::new(inp, cloud(Deployment::Disaggregated), device()).unwrap();
    sim.record_timeline(2).unwrap();
    sim.record_timeline(0).unwrap();
    assert!(sim.record_timeline(3).is_err());
    while let Some(i) = sim.next_decision().unwrap() {
        sim.decide(i, plan(Mode::Pd, 200)).unwrap();
    }
    assert!(sim.timeline_for(1).is_none());
    assert_eq!(sim.timeline().unwrap().displays.len(), 300, "the lowest recorded request");
    for (i, out) in [(0, 300), (2, 250)] {
        let tl = sim.timeline_for(i).unwrap();
        assert_eq!(tl.displays.len(), out);
        let handoff = tl.handoff.expect("split");
        assert!(!tl.handoff_estimates.is_empty());
        // revisions in time order, each a change, none after the hand-off
        assert!(tl.handoff_estimates.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 != w[1].1));
        assert!(tl.handoff_estimates.iter().all(|&(at, _)| at <= handoff));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn every_token_displayed_once(
        reqs in prop::collection::vec((0_i64..300, 1_u32..3000, 1_u32..300), 1..25),
        mode in 0_u8..8, k in 0_u32..200, disagg in any::<bool>(), on_prefill in any::<bool>(),
        gamma in 1_u32..8, alpha in 0.0_f64..=1.0,
    ) {
        let mut reqs = reqs;
        let mut t = 0;
        for r in &mut reqs { t += r.0; r.0 = t; }
        let mode = Mode::parse(Mode::NAMES[mode as usize]).unwrap();
        let dep = if disagg { Deployment::Disaggregated } else { Deployment::Colocated };
        let site = if on_prefill { KSite::Prefill } else { KSite::Pool };
        let chosen = if mode == Mode::Spec {
            Plan::spec(crate::cost::SpecDecode::new(gamma, alpha).unwrap(), plan(mode, k).pace).unwrap()
        } else {
            plan(mode, k).at_site(site)
        };
        let (r, _) = run(&reqs, chosen, dep);
        for (i, req) in reqs.iter().enumerate() {
            prop_assert!((r.displayed_tokens[i] - f64::from(req.2)).abs() < 0.5);
            prop_assert!(r.ttft_s[i] > 0.0);
        }
    }
}

#[test]
fn k_tokens_on_the_prefill_instance_skip_the_transfer() {
    // a slow link: the pool's first decode token waits for 1025 x 131 kB at 1 GB/s (134 ms)
    let slow =
        |sites| CloudConfig { kv_link_bytes_per_s: 1e9, k_sites: sites, ..cloud(Deployment::Disaggregated) };
    let go = |site: KSite, sites| {
        let inp = Inputs {
            arrival: vec![Nanos::ZERO],
            prompt: vec![1024],
            output: vec![400],
            one_way_s: vec![0.010],
            bandwidth_bytes_per_s: 10e6,
            qoe: QoeParams { ttft_s: 1.0, tokens_per_s: 10.0 },
            wire: WIRE,
            conv: Conversations::default(),
        };
        let mut sim = Simulator::new(inp, slow(sites), device()).unwrap();
        while let Some(i) = sim.next_decision().unwrap() {
            sim.decide(i, plan(Mode::Pd, 200).at_site(site)).unwrap();
        }
        sim.results()
    };
    let pool_only = go(KSite::Pool, crate::cost::KSites::Pool);
    let (pool, prefill) =
        (go(KSite::Pool, crate::cost::KSites::Both), go(KSite::Prefill, crate::cost::KSites::Both));
    assert!(pool_only.max_gap_s[0] > 0.1, "the transfer shows: {}", pool_only.max_gap_s[0]);
    assert_eq!(pool_only.k_site[0], 0);
    // offered both sites, the cloud bridges the pool plan while its cache crosses
    assert!(pool.max_gap_s[0] <= 0.050 + 1e-9, "{}", pool.max_gap_s[0]);
    assert_eq!(pool.k_site[0], 3);
    assert!(prefill.max_gap_s[0] <= 0.050 + 1e-9, "{}", prefill.max_gap_s[0]);
    assert_eq!(prefill.k_site[0], 1);
    assert_eq!(pool.ttft_s[0].to_bits(), prefill.ttft_s[0].to_bits());
    assert!((prefill.displayed_tokens[0] - 400.0).abs() < 0.5);
    assert!((pool.displayed_tokens[0] - 400.0).abs() < 0.5);
    // a cloud offering the pool only rejects the plan, naming the setting
    let inp = Inputs {
        arrival: vec![Nanos::ZERO],
        prompt: vec![10],
        output: vec![4],
        one_way_s: vec![0.0],
        bandwidth_bytes_per_s: 10e6,
        qoe: QoeParams { ttft_s: 1.0, tokens_per_s: 10.0 },
        wire: WIRE,
        conv: Conversations::default(),
    };
    let mut sim = Simulator::new(inp, slow(crate::cost::KSites::Pool), device()).unwrap();
    let i = sim.next_decision().unwrap().unwrap();
    let err = sim.decide(i, plan(Mode::Pd, 2).at_site(KSite::Prefill)).unwrap_err();
    assert!(err.to_string().starts_with("k_site"), "{err}");
    sim.decide(i, plan(Mode::Pd, 2)).unwrap();
}

#[test]
fn native_policy_plans_as_the_decision_loop() {
    use crate::cost::PlanOptimizer;
    use crate::sim::policy::NativePolicy;
    let reqs: Vec<(i64, u32, u32)> = (0..60)
        .map(|i| {
            (i * 150, if i % 5 == 0 { 2 } else { 200 + (i as u32 * 397) % 3000 }, 20 + (i as u32 * 31) % 200)
        })
        .collect();
    let inputs = || Inputs {
        arrival: reqs.iter().map(|r| Nanos::ms(r.0)).collect(),
        prompt: reqs.iter().map(|r| r.1).collect(),
        output: reqs.iter().map(|r| r.2).collect(),
        one_way_s: (0..reqs.len()).map(|i| 0.005 + 0.001 * (i % 7) as f64).collect(),
        bandwidth_bytes_per_s: 10e6,
        qoe: QoeParams { ttft_s: 1.0, tokens_per_s: 10.0 },
        wire: WIRE,
        conv: Conversations::default(),
    };
    let pace = PaceConfig::new(Nanos::ZERO, Nanos::ms(50)).unwrap();
    let optimizer =
        PlanOptimizer::new(device(), cloud(Deployment::Disaggregated).cost, 0.05, &[0.5], true, 1, 4096)
            .unwrap()
            .with_k_sites(
                crate::cost::KSites::Both,
                Some(crate::cost::KvLink {
                    bytes_per_token: 131_072.0,
                    bytes_per_s: 2e8,
                    write_token_s: 1e-7,
                }),
            )
            .unwrap();
    let policy = NativePolicy::auto(Mode::Pd, pace, optimizer.clone()).unwrap();
    let mut native = Simulator::new(inputs(), cloud(Deployment::Disaggregated), device()).unwrap();
    native.run_policy(&policy).unwrap();
    let mut looped = Simulator::new(inputs(), cloud(Deployment::Disaggregated), device()).unwrap();
    let mut modes = Vec::new();
    let mut sites = Vec::new();
    while let Some(i) = looped.next_decision().unwrap() {
        let waiting = looped.cloud_load().waiting_prefill_tokens;
        let c = optimizer
            .choose(looped.inp.prompt[i as usize], looped.inp.one_way_s[i as usize], Some(waiting))
            .unwrap();
        let plan = if c.device_alone {
            Plan::new(Mode::Device, 0, 1.0, pace).unwrap()
        } else {
            Plan::new(Mode::Pd, c.k, c.refine_ratio, pace).unwrap().at_site(c.k_site)
        };
        modes.push(plan.mode);
        sites.push(plan.k_site);
        looped.decide(i, plan).unwrap();
    }
    assert!(modes.contains(&Mode::Pd) && modes.contains(&Mode::Device), "{modes:?}");
    assert!(sites.contains(&KSite::Prefill), "{sites:?}");
    let (a, b) = (native.results(), looped.results());
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
    assert!(NativePolicy::auto(Mode::Cloud, pace, optimizer).is_err());
}

#[test]
#[allow(clippy::float_cmp)] // whole byte counts, exact in f64
fn bytes_and_radio_time_by_hand() {
    // one request: prompt 100, output 5, one-way 10 ms
    let reqs = [(0, 100, 5)];
    let (r, _) = run(&reqs, plan(Mode::Device, 0), Deployment::Colocated);
    assert_eq!((r.bytes_up[0], r.bytes_down[0], r.radio_s[0]), (0.0, 0.0, 0.0));
    let (r, _) = run(&reqs, plan(Mode::Cloud, 0), Deployment::Colocated);
    assert_eq!(r.bytes_up[0], 400.0);
    assert_eq!(r.bytes_down[0], 500.0);
    // the connection stays open until the last token arrives, which is when it is displayed
    assert!((r.radio_s[0] - r.e2e_s[0]).abs() < 1e-9, "{} {}", r.radio_s[0], r.e2e_s[0]);
    let (r, _) = run(&reqs, plan(Mode::KvTransfer, 0), Deployment::Colocated);
    assert_eq!(r.bytes_down[0], 100.0 + 100.0 * 20_000.0);
    // the first token, then the cache over the 10 MB/s downlink
    assert!((r.radio_s[0] - (r.ttft_s[0] + 2e6 / 10e6)).abs() < 1e-6, "{}", r.radio_s[0]);
    let (r, _) = run(&reqs, plan(Mode::Pd, 2), Deployment::Colocated);
    // k + 1 = 3 tokens are streamed, however many are displayed
    assert_eq!((r.bytes_up[0], r.bytes_down[0]), (400.0, 300.0));
    let refined = Plan::new(Mode::Pd, 2, 0.5, PaceConfig::new(Nanos::ZERO, Nanos::ms(50)).unwrap()).unwrap();
    let (r, _) = run(&reqs, refined, Deployment::Colocated);
    // the refined prompt (50 tokens) comes back as text with the first token
    assert_eq!(r.bytes_down[0], 300.0 + 50.0 * 4.0);
}

#[test]
fn a_spec_plan_needs_its_draft_settings_and_only_it_has_them() {
    let inp = Inputs {
        arrival: vec![Nanos::ZERO],
        prompt: vec![100],
        output: vec![10],
        one_way_s: vec![0.01],
        bandwidth_bytes_per_s: 10e6,
        qoe: QoeParams { ttft_s: 1.0, tokens_per_s: 10.0 },
        wire: WIRE,
        conv: Conversations::default(),
    };
    let mut sim = Simulator::new(inp, cloud(Deployment::Colocated), device()).unwrap();
    let i = sim.next_decision().unwrap().unwrap();
    assert!(sim.decide(i, plan(Mode::Spec, 0)).unwrap_err().to_string().starts_with("plan"));
    let spec = crate::cost::SpecDecode::new(4, 0.5).unwrap();
    let wrong = Plan { spec: Some(spec), ..plan(Mode::Cloud, 0) };
    assert!(sim.decide(i, wrong).is_err());
    sim.decide(i, Plan::spec(spec, plan(Mode::Cloud, 0).pace).unwrap()).unwrap();
    assert!(sim.next_decision().unwrap().is_none());
    let r = sim.results();
    assert!((r.displayed_tokens[0] - 10.0).abs() < 0.5);
    // after the first token, rounds of floor(r * 1.9375) - floor((r - 1) * 1.9375) tokens: 1, 2, 2, 2, 2
    // make the other nine; five rounds of four drafts
    assert!((r.device_decode_tokens[0] - 20.0).abs() < 0.5, "{}", r.device_decode_tokens[0]);
    // the prompt and five rounds of four drafts up, ten tokens down
    let up = 100.0 * WIRE.prompt_bytes_per_token + 20.0 * WIRE.stream_bytes_per_token;
    assert!((r.bytes_up[0] - up).abs() < 1e-9, "{}", r.bytes_up[0]);
    assert!((r.bytes_down[0] - 10.0 * WIRE.stream_bytes_per_token).abs() < 1e-9, "{}", r.bytes_down[0]);
}

#[test]
fn a_draft_round_from_the_kept_steps_is_the_priced_round_within_them_and_past_them() {
    let inp = Inputs {
        arrival: vec![Nanos::ZERO],
        prompt: vec![100],
        output: vec![10],
        one_way_s: vec![0.01],
        bandwidth_bytes_per_s: 10e6,
        qoe: QoeParams { ttft_s: 1.0, tokens_per_s: 10.0 },
        wire: WIRE,
        conv: Conversations::default(),
    };
    let mut sim = Simulator::new(inp, cloud(Deployment::Colocated), device()).unwrap();
    let spec = crate::cost::SpecDecode::new(4, 0.5).unwrap();
    let kept = crate::sim::fleet::STEPS_KEPT as u64;
    for context in [0, 100, 2046, 2047, 5000, kept - 4, kept - 3, kept + 10] {
        assert_eq!(sim.draft_time(0, spec, context), spec.draft(&device(), context), "{context}");
    }
}

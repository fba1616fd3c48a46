//! One answer at a time per device ([`crate::sim::busy`]): a request that finds its device busy goes to
//! the cloud, or waits for it under a device-only plan; with the rule off nothing changes.
#![allow(clippy::float_cmp)] // results copied or computed by the same steps, compared exactly
use super::*;

/// One session on one device: its turns arrive at `arrivals_ms`, each with a 1024-token prompt (6 s of
/// device prefill) that shares its parent's first 1000 tokens, and a 20-token answer.
fn session_inputs(arrivals_ms: &[i64]) -> Inputs {
    let n = arrivals_ms.len();
    let turns = (0..n)
        .map(|i| caches::Turn {
            device: 0,
            session: 0,
            parent: i.checked_sub(1).map(|p| p as u32),
            shared: if i == 0 { 0 } else { 1000 },
            turn: i as u32 + 1,
            prompt: 0,
        })
        .collect();
    Inputs {
        arrival: arrivals_ms.iter().map(|&t| Nanos::ms(t)).collect(),
        prompt: vec![1024; n],
        output: vec![20; n],
        one_way_s: vec![0.010; n],
        bandwidth_bytes_per_s: 10e6,
        qoe: QoeParams { ttft_s: 1.0, tokens_per_s: 10.0 },
        wire: WIRE,
        conv: Conversations { turns, device_cache_tokens: 100_000, ..Conversations::default() },
    }
}

/// Runs `inp` with request `i` planned `plans[i]`, the rule on or off (`None`: never set).
fn run_plans(inp: Inputs, plans: &[Plan], rule: Option<bool>) -> Results {
    let mut sim = Simulator::new(inp, cloud(Deployment::Disaggregated), device()).unwrap();
    if let Some(on) = rule {
        sim.set_one_answer_per_device(on).unwrap();
    }
    while let Some(i) = sim.next_decision().unwrap() {
        sim.decide(i, plans[i as usize]).unwrap();
    }
    sim.results()
}

const CLOUD: u8 = DeviceBusy::Cloud as u8;
const WAITED: u8 = DeviceBusy::Waited as u8;
const FREE: u8 = DeviceBusy::Free as u8;

#[test]
fn a_split_that_finds_its_device_busy_is_served_by_the_cloud() {
    let pd = plan(Mode::Pd, 10);
    let on = run_plans(session_inputs(&[0, 100]), &[pd, pd], Some(true));
    assert_eq!(on.device_busy, vec![FREE, CLOUD]);
    assert_eq!(on.mode, vec![Mode::Pd as u8, Mode::Cloud as u8]);
    assert_eq!(on.served_by[1], ServedBy::Cloud as u8);
    assert_eq!((on.device_prefill_tokens[1], on.device_decode_tokens[1]), (0.0, 0.0));
    assert_eq!(on.cloud_tokens_kept[1], 20.0);
    assert_eq!(on.device_wait_s, vec![0.0, 0.0]);
    // off: the second turn splits on the same device beside the first
    let off = run_plans(session_inputs(&[0, 100]), &[pd, pd], Some(false));
    assert_eq!(off.mode, vec![Mode::Pd as u8, Mode::Pd as u8]);
    assert_eq!(off.device_busy, vec![FREE, FREE]);
    // the first turn is the same either way
    assert_eq!(on.ttft_s[0], off.ttft_s[0]);
    assert_eq!(on.finish_s[0], off.finish_s[0]);
}

#[test]
fn a_device_only_answer_waits_for_the_device_and_its_ttft_counts_the_wait() {
    let device_only = plan(Mode::Device, 0);
    let on = run_plans(session_inputs(&[0, 100]), &[device_only; 2], Some(true));
    assert_eq!(on.device_busy, vec![FREE, WAITED]);
    // the first answer's last decode step ends at its last display (no smallest gap): the second starts then
    let wait = on.finish_s[0] - 0.1;
    assert!((on.device_wait_s[1] - wait).abs() < 1e-9, "{} vs {wait}", on.device_wait_s[1]);
    assert!(on.ttft_s[1] > on.device_wait_s[1]);
    // it starts with its parent's whole context cached: only its last prompt token is new to the device
    assert_eq!(on.device_cached_tokens[1], 1000.0);
    let off = run_plans(session_inputs(&[0, 100]), &[device_only; 2], Some(false));
    assert_eq!(off.device_cached_tokens[1], 0.0, "off: it started while its parent was prefilling");
    assert!((off.ttft_s[1] - off.ttft_s[0]).abs() < 0.1, "off: both prefill at once");
    assert_eq!(off.device_wait_s, vec![0.0, 0.0]);
}

#[test]
fn device_only_answers_queue_in_order_behind_a_split() {
    let (pd, device_only) = (plan(Mode::Pd, 10), plan(Mode::Device, 0));
    let r = run_plans(session_inputs(&[0, 100, 200]), &[pd, device_only, device_only], Some(true));
    assert_eq!(r.device_busy, vec![FREE, WAITED, WAITED]);
    assert!(r.device_wait_s[1] > 0.0);
    // first come, first served: the third starts when the second's last step ends
    assert!((0.2 + r.device_wait_s[2] - r.finish_s[1]).abs() < 1e-9);
    assert!(r.ttft_s.iter().all(|t| t.is_finite()));
}

#[test]
fn a_request_after_the_device_is_free_and_other_devices_are_untouched() {
    let pd = plan(Mode::Pd, 10);
    let single = |on| {
        // single-turn requests: each its own device, so none is ever busy
        let reqs: Vec<(i64, u32, u32)> = (0..6).map(|i| (i * 50, 1024, 40)).collect();
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
        run_plans(inp, &[pd; 6], on)
    };
    let (on, unset) = (single(Some(true)), single(None));
    assert_eq!(on.device_busy, vec![FREE; 6]);
    assert_eq!(format!("{:?}", on.ttft_s), format!("{:?}", unset.ttft_s));
    // a turn that arrives after its device is free splits as planned
    let later = run_plans(session_inputs(&[0, 60_000]), &[pd, pd], Some(true));
    assert_eq!(later.device_busy, vec![FREE, FREE]);
    assert_eq!(later.mode, vec![Mode::Pd as u8; 2]);
}

#[test]
fn off_changes_nothing_for_any_mode() {
    let arrivals = [0, 100, 3000, 9000];
    for mode in [Mode::Cloud, Mode::Device, Mode::Pd, Mode::Naive, Mode::Race, Mode::KvTransfer, Mode::Disco]
    {
        let k = if matches!(mode, Mode::Pd | Mode::Naive) { 10 } else { 0 };
        let plans = [plan(mode, k); 4];
        let unset = run_plans(session_inputs(&arrivals), &plans, None);
        let off = run_plans(session_inputs(&arrivals), &plans, Some(false));
        assert_eq!(format!("{unset:?}"), format!("{off:?}"), "{mode:?}");
        // on: every request finishes, each either free, served by the cloud, or waited
        let on = run_plans(session_inputs(&arrivals), &plans, Some(true));
        assert!(on.ttft_s.iter().all(|t| t.is_finite()), "{mode:?}: {:?}", on.ttft_s);
        let busy = on.device_busy.iter().filter(|&&b| b != FREE).count();
        match mode {
            Mode::Cloud => assert_eq!(busy, 0),
            // the third arrives while the first still prefills; the fourth after the queue has drained
            Mode::Device => assert_eq!(on.device_busy, vec![FREE, WAITED, WAITED, FREE]),
            _ => assert!(on.device_busy[1] == CLOUD, "{mode:?}: {:?}", on.device_busy),
        }
    }
}

#[test]
fn the_rule_is_set_before_the_run() {
    let mut sim = Simulator::new(session_inputs(&[0, 100]), cloud(Deployment::Disaggregated), device()).unwrap();
    assert!(!sim.one_answer_per_device());
    sim.set_one_answer_per_device(true).unwrap();
    assert!(sim.one_answer_per_device());
    let i = sim.next_decision().unwrap().unwrap();
    let e = sim.set_one_answer_per_device(false).unwrap_err();
    assert!(e.to_string().contains("before its first decision"), "{e}");
    sim.decide(i, plan(Mode::Device, 0)).unwrap();
}

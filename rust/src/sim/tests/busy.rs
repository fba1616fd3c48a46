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

/// How a test run sets the rule.
#[derive(Clone, Copy)]
enum Set {
    /// Never set.
    Unset,
    /// Set to this.
    To(Option<WhenBusy>),
}

/// Runs `inp` with request `i` planned `plans[i]`, the rule set as `rule` says.
fn run_plans(inp: Inputs, plans: &[Plan], rule: Set) -> Results {
    let mut sim = Simulator::new(inp, cloud(Deployment::Disaggregated), device()).unwrap();
    if let Set::To(rule) = rule {
        sim.set_one_answer_per_device(rule).unwrap();
    }
    while let Some(i) = sim.next_decision().unwrap() {
        sim.decide(i, plans[i as usize]).unwrap();
    }
    sim.results()
}

const ON: Set = Set::To(Some(WhenBusy::Cloud));
const WAIT: Set = Set::To(Some(WhenBusy::Wait));
const OFF: Set = Set::To(None);
const CLOUD: u8 = DeviceBusy::Cloud as u8;
const WAITED: u8 = DeviceBusy::Waited as u8;
const FREE: u8 = DeviceBusy::Free as u8;

#[test]
fn a_split_that_finds_its_device_busy_is_served_by_the_cloud() {
    let pd = plan(Mode::Pd, 10);
    let on = run_plans(session_inputs(&[0, 100]), &[pd, pd], ON);
    assert_eq!(on.device_busy, vec![FREE, CLOUD]);
    assert_eq!(on.mode, vec![Mode::Pd as u8, Mode::Cloud as u8]);
    assert_eq!(on.served_by[1], ServedBy::Cloud as u8);
    assert_eq!((on.device_prefill_tokens[1], on.device_decode_tokens[1]), (0.0, 0.0));
    assert_eq!(on.cloud_tokens_kept[1], 20.0);
    assert_eq!(on.device_wait_s, vec![0.0, 0.0]);
    // a run without a cloud to turn to waits only with device-only plans: a split still goes to the cloud
    let wait = run_plans(session_inputs(&[0, 100]), &[pd, pd], WAIT);
    assert_eq!(format!("{on:?}"), format!("{wait:?}"));
    // off: the second turn splits on the same device beside the first
    let off = run_plans(session_inputs(&[0, 100]), &[pd, pd], OFF);
    assert_eq!(off.mode, vec![Mode::Pd as u8, Mode::Pd as u8]);
    assert_eq!(off.device_busy, vec![FREE, FREE]);
    // the first turn is the same either way
    assert_eq!(on.ttft_s[0], off.ttft_s[0]);
    assert_eq!(on.finish_s[0], off.finish_s[0]);
}

#[test]
fn a_device_only_answer_waits_for_the_device_and_its_ttft_counts_the_wait() {
    let device_only = plan(Mode::Device, 0);
    let wait = run_plans(session_inputs(&[0, 100]), &[device_only; 2], WAIT);
    assert_eq!(wait.device_busy, vec![FREE, WAITED]);
    assert_eq!(wait.mode, vec![Mode::Device as u8; 2]);
    // the first answer's last decode step ends at its last display (no smallest gap): the second starts then
    let waited = wait.finish_s[0] - 0.1;
    assert!((wait.device_wait_s[1] - waited).abs() < 1e-9, "{} vs {waited}", wait.device_wait_s[1]);
    assert!(wait.ttft_s[1] > wait.device_wait_s[1]);
    // it starts with its parent's whole context cached: only its last prompt token is new to the device
    assert_eq!(wait.device_cached_tokens[1], 1000.0);
    let off = run_plans(session_inputs(&[0, 100]), &[device_only; 2], OFF);
    assert_eq!(off.device_cached_tokens[1], 0.0, "off: it started while its parent was prefilling");
    assert!((off.ttft_s[1] - off.ttft_s[0]).abs() < 0.1, "off: both prefill at once");
    assert_eq!(off.device_wait_s, vec![0.0, 0.0]);
    // a run with a cloud sends a device-alone plan on a busy device to the cloud
    let on = run_plans(session_inputs(&[0, 100]), &[device_only; 2], ON);
    assert_eq!(on.device_busy, vec![FREE, CLOUD]);
    assert_eq!(on.mode, vec![Mode::Device as u8, Mode::Cloud as u8]);
    assert!(on.ttft_s[1] < 1.0, "the cloud's first token, not the device's 6 s prefill");
}

#[test]
fn device_only_answers_queue_in_order_behind_a_split() {
    let (pd, device_only) = (plan(Mode::Pd, 10), plan(Mode::Device, 0));
    let r = run_plans(session_inputs(&[0, 100, 200]), &[pd, device_only, device_only], WAIT);
    assert_eq!(r.device_busy, vec![FREE, WAITED, WAITED]);
    assert!(r.device_wait_s[1] > 0.0);
    // first come, first served: the third starts when the second's last step ends
    assert!((0.2 + r.device_wait_s[2] - r.finish_s[1]).abs() < 1e-9);
    assert!(r.ttft_s.iter().all(|t| t.is_finite()));
}

#[test]
fn a_request_after_the_device_is_free_and_other_devices_are_untouched() {
    let pd = plan(Mode::Pd, 10);
    let single = |rule| {
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
        run_plans(inp, &[pd; 6], rule)
    };
    let (on, unset) = (single(ON), single(Set::Unset));
    assert_eq!(on.device_busy, vec![FREE; 6]);
    assert_eq!(format!("{:?}", on.ttft_s), format!("{:?}", unset.ttft_s));
    // a turn that arrives after its device is free splits as planned
    let later = run_plans(session_inputs(&[0, 60_000]), &[pd, pd], ON);
    assert_eq!(later.device_busy, vec![FREE, FREE]);
    assert_eq!(later.mode, vec![Mode::Pd as u8; 2]);
}

#[test]
fn off_changes_nothing_for_any_mode() {
    let arrivals = [0, 100, 3000, 9000];
    let spec = Plan::spec(crate::cost::SpecDecode::new(4, 0.5).unwrap(), plan(Mode::Cloud, 0).pace).unwrap();
    let modes = [Mode::Cloud, Mode::Device, Mode::Pd, Mode::Naive, Mode::Race, Mode::KvTransfer, Mode::Disco];
    let plans = modes
        .iter()
        .map(|&m| plan(m, if matches!(m, Mode::Pd | Mode::Naive) { 10 } else { 0 }))
        .chain([spec]);
    for p in plans {
        let mode = p.mode;
        let unset = run_plans(session_inputs(&arrivals), &[p; 4], Set::Unset);
        let off = run_plans(session_inputs(&arrivals), &[p; 4], OFF);
        assert_eq!(format!("{unset:?}"), format!("{off:?}"), "{mode:?}");
        // on: every request finishes, each either free, served by the cloud, or waited
        for (rule, name) in [(ON, "cloud"), (WAIT, "wait")] {
            let on = run_plans(session_inputs(&arrivals), &[p; 4], rule);
            assert!(on.ttft_s.iter().all(|t| t.is_finite()), "{mode:?} {name}: {:?}", on.ttft_s);
            let want = match (mode, name) {
                (Mode::Cloud, _) => vec![FREE; 4],
                // the third arrives while the first still prefills; the fourth after the queue has drained
                (Mode::Device, "wait") => vec![FREE, WAITED, WAITED, FREE],
                // a kv-transfer's device decodes from the shipped cache, free again after about 2.4 s; DiSCo's
                // cloud streams the whole 20-token answer long before the prompt is done and the device stops
                (Mode::KvTransfer | Mode::Disco, _) => vec![FREE, CLOUD, FREE, FREE],
                _ => vec![FREE, CLOUD, CLOUD, FREE],
            };
            assert_eq!(on.device_busy, want, "{mode:?} {name}");
        }
    }
}

#[test]
fn the_rule_is_set_before_the_run() {
    let mut sim =
        Simulator::new(session_inputs(&[0, 100]), cloud(Deployment::Disaggregated), device()).unwrap();
    assert_eq!(sim.one_answer_per_device(), None);
    sim.set_one_answer_per_device(Some(WhenBusy::Wait)).unwrap();
    assert_eq!(sim.one_answer_per_device(), Some(WhenBusy::Wait));
    let i = sim.next_decision().unwrap().unwrap();
    let e = sim.set_one_answer_per_device(None).unwrap_err();
    assert!(e.to_string().contains("before its first decision"), "{e}");
    sim.decide(i, plan(Mode::Device, 0)).unwrap();
    assert_eq!(WhenBusy::parse("wait").unwrap(), WhenBusy::Wait);
    let e = WhenBusy::parse("queue").unwrap_err().to_string();
    assert!(e.contains("when_device_busy") && e.contains("\"wait\""), "{e}");
}

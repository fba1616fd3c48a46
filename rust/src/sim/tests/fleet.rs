//! Fleets: a one-class fleet of the run's device is the plain run, a fleet with no capable device is
//! the cloud-only run, and each request uses its own class's device and downlink.
use super::*;

fn workload() -> Vec<(i64, u32, u32)> {
    (0..40).map(|i| (i * 200, 100 + (i as u32 * 397) % 2500, 10 + (i as u32 * 31) % 150)).collect()
}

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

/// A device `factor` times slower than [`device`] at every step.
fn slower(factor: f64) -> DeviceCost {
    DeviceCost::new(
        vec![128.0, 1024.0],
        vec![0.5 * factor, 6.0 * factor],
        vec![0.0, 2048.0],
        vec![0.015 * factor, 0.025 * factor],
        20_000.0,
    )
    .unwrap()
}

fn run_fleet(plan: Plan, fleet: Option<(Vec<FleetClass>, Vec<u32>)>) -> Results {
    let reqs = workload();
    let mut sim = Simulator::new(inputs(&reqs), cloud(Deployment::Disaggregated), device()).unwrap();
    if let Some((classes, class_of)) = fleet {
        sim.set_fleet(classes, &class_of).unwrap();
    }
    sim.run_policy(&policy::NativePolicy::Fixed(plan)).unwrap();
    sim.results()
}

const ALL_MODES: [Mode; 6] = [Mode::Cloud, Mode::Device, Mode::Pd, Mode::Naive, Mode::KvTransfer, Mode::Race];

#[test]
fn one_class_of_the_run_device_is_the_plain_run() {
    let n = workload().len();
    for mode in ALL_MODES {
        let p = plan(mode, 8);
        let class = FleetClass { device: Some(device()), bandwidth_bytes_per_s: 10e6 };
        let fleet = run_fleet(p, Some((vec![class], vec![0; n])));
        assert_eq!(format!("{fleet:?}"), format!("{:?}", run_fleet(p, None)), "{mode:?}");
    }
}

#[test]
fn no_capable_device_is_the_cloud_only_run() {
    let n = workload().len();
    let cloud_only = run_fleet(plan(Mode::Cloud, 0), None);
    for mode in ALL_MODES {
        let class = FleetClass { device: None, bandwidth_bytes_per_s: 10e6 };
        let fleet = run_fleet(plan(mode, 8), Some((vec![class], vec![0; n])));
        assert_eq!(format!("{fleet:?}"), format!("{cloud_only:?}"), "{mode:?}");
    }
}

#[test]
fn each_request_uses_its_own_class() {
    let n = workload().len();
    let classes = || {
        vec![
            FleetClass { device: Some(device()), bandwidth_bytes_per_s: 10e6 },
            FleetClass { device: Some(slower(2.0)), bandwidth_bytes_per_s: 1e6 },
            FleetClass { device: None, bandwidth_bytes_per_s: 10e6 },
        ]
    };
    let class_of: Vec<u32> = (0..n as u32).map(|i| i % 3).collect();
    let plain = run_fleet(plan(Mode::Device, 0), None);
    let mixed = run_fleet(plan(Mode::Device, 0), Some((classes(), class_of.clone())));
    for (i, &class) in class_of.iter().enumerate() {
        match class {
            0 => assert_eq!(mixed.ttft_s[i].to_bits(), plain.ttft_s[i].to_bits(), "{i}"),
            // twice as slow at every step: twice the prompt's time
            1 => assert!((mixed.ttft_s[i] - 2.0 * plain.ttft_s[i]).abs() < 1e-6, "{i}"),
            _ => {
                assert_eq!(mixed.mode[i], Mode::Cloud as u8);
                assert!(mixed.device_prefill_tokens[i] + mixed.device_decode_tokens[i] < 0.5, "{i}");
                assert!(mixed.cloud_prefill_gpu_s[i] > 0.0);
            }
        }
    }
    // a kv-transfer's cache comes down each class's own downlink: ten times slower in class 1
    let kv = run_fleet(plan(Mode::KvTransfer, 0), Some((classes(), class_of.clone())));
    let kv_plain = run_fleet(plan(Mode::KvTransfer, 0), None);
    let i = (0..n).find(|&i| class_of[i] == 1 && kv_plain.displayed_tokens[i] > 1.0).unwrap();
    assert!(kv.radio_s[i] > kv_plain.radio_s[i], "{} {}", kv.radio_s[i], kv_plain.radio_s[i]);
}

#[test]
fn bad_fleets_are_refused_naming_the_argument() {
    let reqs = workload();
    let new = || Simulator::new(inputs(&reqs), cloud(Deployment::Colocated), device()).unwrap();
    let one = || vec![FleetClass { device: None, bandwidth_bytes_per_s: 10e6 }];
    let err = new().set_fleet(one(), &[0; 3]).unwrap_err().to_string();
    assert!(err.contains("device_class") && err.contains("one class index per request"), "{err}");
    let err = new().set_fleet(one(), &vec![1; reqs.len()]).unwrap_err().to_string();
    assert!(err.contains("device_class") && err.contains("the fleet has 1 classes"), "{err}");
    let err = new().set_fleet(Vec::new(), &[]).unwrap_err().to_string();
    assert!(err.contains("fleet"), "{err}");
    let bad = vec![FleetClass { device: None, bandwidth_bytes_per_s: f64::NAN }];
    let err = new().set_fleet(bad, &vec![0; reqs.len()]).unwrap_err().to_string();
    assert!(err.contains("fleet_bandwidth_bps"), "{err}");
    let mut started = new();
    started.next_decision().unwrap();
    let err = started.set_fleet(one(), &vec![0; reqs.len()]).unwrap_err().to_string();
    assert!(err.contains("has started"), "{err}");
    let mut sim = new();
    sim.set_fleet(one(), &vec![0; reqs.len()]).unwrap();
    let two = [
        policy::NativePolicy::Fixed(plan(Mode::Cloud, 0)),
        policy::NativePolicy::Fixed(plan(Mode::Cloud, 0)),
    ];
    let err = sim.run_policies(&two).unwrap_err().to_string();
    assert!(err.contains("one per device class"), "{err}");
}

#[test]
fn kept_decode_steps_are_the_priced_steps_and_stop_at_their_cap() {
    use crate::sim::fleet::{Devices, STEPS_KEPT};
    let (fast, slow) = (device(), slower(2.0));
    let mut devices = Devices::single(fast.clone(), 10e6);
    let (_, kept) = devices.steps_to(0, 3000);
    assert_eq!(kept.len(), 3000);
    assert!(kept.iter().enumerate().all(|(ctx, &s)| s == fast.tpot(ctx as u64)));
    // a shorter need keeps what is there; a need past the cap keeps only the cap
    assert_eq!(devices.steps_to(0, 10).1.len(), 3000);
    assert_eq!(devices.steps_to(0, u64::MAX).1.len(), STEPS_KEPT);
    // each class keeps its own device's steps
    let mut sim = Simulator::new(inputs(&workload()), cloud(Deployment::Disaggregated), fast).unwrap();
    let classes = vec![FleetClass { device: Some(slow.clone()), bandwidth_bytes_per_s: 10e6 }; 2];
    sim.set_fleet(classes, &[1; 40]).unwrap();
    let (_, kept) = sim.devices.steps_to(7, 500);
    assert!(kept.iter().enumerate().all(|(ctx, &s)| s == slow.tpot(ctx as u64)));
}

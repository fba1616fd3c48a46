//! Conversations: a follow-up reuses only the caches that exist when it starts.
use super::*;

/// One session of three turns on one device: the second `second_ms` after the first, the third after the
/// first two have finished everywhere.
fn a_session(mode: Mode, second_ms: i64) -> Results {
    let turns = [(None, 0), (Some(0), 1029), (Some(1), 1200)]
        .iter()
        .enumerate()
        .map(|(i, &(parent, shared))| caches::Turn {
            device: 0,
            session: 0,
            parent,
            shared,
            turn: i as u32 + 1,
            prompt: 0,
        })
        .collect();
    let inp = Inputs {
        arrival: vec![Nanos::ZERO, Nanos::ms(second_ms), Nanos::ms(60_000)],
        prompt: vec![1024, 1100, 1300],
        output: vec![5, 5, 5],
        one_way_s: vec![0.010; 3],
        bandwidth_bytes_per_s: 10e6,
        qoe: QoeParams { ttft_s: 1.0, tokens_per_s: 10.0 },
        wire: WIRE,
        conv: Conversations {
            turns,
            block_offsets: vec![0, 8, 16, 26],
            block_ids: (0..8).chain(0..8).chain((0..8).chain(8..10)).collect(),
            block_tokens: 128,
            device_cache_tokens: 100_000,
            cloud_cache_tokens: 100_000,
        },
    };
    let mut sim = Simulator::new(inp, cloud(Deployment::Colocated), device()).unwrap();
    while let Some(i) = sim.next_decision().unwrap() {
        sim.decide(i, plan(mode, 0)).unwrap();
    }
    sim.results()
}

#[test]
fn a_follow_up_reuses_only_the_cache_its_parent_has_computed() {
    // the device: the first turn's 1024-token prompt exists from 6 s on; the second arrives at 0.1 s
    let device = a_session(Mode::Device, 100);
    assert_eq!(device.device_cached_tokens, vec![0.0, 0.0, 1104.0]);
    assert!((device.ttft_s[1] - device.ttft_s[0]).abs() < 0.7, "both prefill their whole prompt");
    // the cloud: the second turn reaches it while the first is still prefilling, or once it is done
    let cloud = a_session(Mode::Cloud, 5);
    assert!(cloud.ttft_s[0] > 0.025, "the first turn's prefill ends after the second reaches the cloud");
    assert_eq!(cloud.cloud_cached_tokens, vec![0.0, 0.0, 1024.0]);
    assert_eq!(a_session(Mode::Cloud, 100).cloud_cached_tokens, vec![0.0, 1024.0, 1024.0]);
}

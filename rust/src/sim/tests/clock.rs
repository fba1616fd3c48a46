//! The clock's range: a time past [`Nanos::LIMIT`] is an error naming the request or the replica and what
//! was priced, never a saturated result.
use super::*;

/// One request of `prompt` and `output` tokens with `mode`, on `device` and a colocated cloud `cost` that
/// holds it; the run's outcome.
fn one(
    prompt: u32,
    output: u32,
    mode: Mode,
    device: DeviceCost,
    cost: crate::cost::CloudCost,
) -> Result<Results> {
    let inp = Inputs {
        arrival: vec![Nanos::ZERO],
        prompt: vec![prompt],
        output: vec![output],
        one_way_s: vec![0.010],
        bandwidth_bytes_per_s: 10e6,
        qoe: QoeParams { ttft_s: 1.0, tokens_per_s: 10.0 },
        wire: WIRE,
        conv: Conversations::default(),
    };
    let cfg = CloudConfig { cost, kv_cache_tokens: 4_000_000_000, ..cloud(Deployment::Colocated) };
    let mut sim = Simulator::new(inp, cfg, device)?;
    while let Some(i) = sim.next_decision()? {
        sim.decide(i, plan(mode, 0))?;
    }
    Ok(sim.results())
}

/// A slow device: a second a prompt token, ten seconds a decode step (the slowest a profile may give).
fn slow_device() -> DeviceCost {
    DeviceCost::new(vec![1.0], vec![1.0], vec![0.0], vec![10.0], 1.0).unwrap()
}

#[test]
fn a_device_time_past_the_clock_is_refused_naming_the_request() {
    // a prompt of 1.5e9 tokens at a second a token: 1.5e9 s of prefill
    let e = one(1_500_000_000, 1, Mode::Device, slow_device(), a100()).unwrap_err().to_string();
    assert!(e.starts_with("request[0] (prompt 1500000000 tokens, output 1): the device's prefill"), "{e}");
    assert!(e.contains("would end at 1.5e9 s, beyond the simulated clock's limit of 1e9 s"), "{e}");
    // a prefill of 999,999,000 s, then decode steps of 10 s each: the 101st passes the clock
    let e = one(999_999_000, 200, Mode::Device, slow_device(), a100()).unwrap_err().to_string();
    assert!(
        e.contains("the device's decode of its answer") && e.contains("would end at 1.00000001e9 s"),
        "{e}"
    );
    // within the clock, the same device serves
    let r = one(10, 100, Mode::Device, slow_device(), a100()).unwrap();
    assert!((r.ttft_s[0] - 10.0).abs() < 1e-9);
}

#[test]
fn a_cloud_iteration_past_the_clock_is_refused_naming_its_batch() {
    // one iteration of a 400,000-token prompt at the largest attention price: 0.01 s x 1.6e11 = 1.6e9 s
    let cost = crate::cost::CloudCost { prefill_attn_s: 0.01, max_tokens_per_iteration: 1_000_000, ..a100() };
    let e = one(400_000, 1, Mode::Cloud, device(), cost).unwrap_err().to_string();
    assert!(e.starts_with("replica[0] an iteration of 400000 prefill tokens, 0 decoding sequences"), "{e}");
    assert!(e.contains("would end at 1.6"), "{e}");
    // more than the clock can count at all: refused the same way, never wrapped or saturated into a result
    let e = one(2_000_000, 1, Mode::Cloud, device(), cost).unwrap_err().to_string();
    assert!(e.contains("would end at more than 9.2e9 s"), "{e}");
    assert!(e.contains("check the cloud profile's [iteration]"), "{e}");
}

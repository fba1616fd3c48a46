//! The cloud alone, driven event by event: admission, prices and GPU-seconds, the KV link, the prefill
//! instance that decodes, and the bridge at the first token.

#![allow(clippy::float_cmp)] // GPU-seconds and prices compared are exact by construction

use super::*;
use crate::sim::Ev;
use crate::testing::a100;

fn config(deployment: Deployment, kv_cache_tokens: u64) -> CloudConfig {
    CloudConfig {
        deployment,
        replicas: 1,
        prefill_replicas: 1,
        decode_replicas: 1,
        cost: a100(),
        max_batch_size: 16,
        kv_cache_tokens,
        gpus_per_replica: 2,
        kv_bytes_per_token: 1000.0,
        kv_link_bytes_per_s: 1e6,
        k_sites: KSites::Both,
        prefill_decode_budget: 0,
        kv_write_token_s: 0.0,
        prefill_decode_gap_s: 0.0,
    }
}

/// Runs the cloud alone until nothing is left, returning each emission with its time.
fn drain(cloud: &mut Cloud, lp: &mut EventQueue<Ev>) -> Vec<(Nanos, u32, bool)> {
    let mut out = Vec::new();
    let mut emitted = Vec::new();
    while let Some(ev) = lp.pop() {
        match ev.event {
            Ev::IterEnd(r) => {
                emitted.clear();
                cloud.iteration_end(r, ev.at, lp, &mut emitted).unwrap();
                out.extend(emitted.iter().map(|e| (ev.at, e.req, e.first)));
            }
            Ev::KvArrive(i, r) => cloud.kv_arrived(i, r, lp).unwrap(),
            other => panic!("unexpected event {other:?}"),
        }
    }
    out
}

#[test]
fn a_late_pool_request_is_bridged_until_its_cache_lands() {
    // 1000 tokens x 1000 bytes over 1 MB/s: one second on the link, far above a 50 ms gap
    let cfg = CloudConfig { prefill_decode_gap_s: 0.05, ..config(Deployment::Disaggregated, 100_000) };
    let (cost, link) = (cfg.cost, cfg.kv_link());
    let mut cloud = Cloud::new(cfg, 1).unwrap();
    let mut lp = EventQueue::with_capacity(8);
    cloud.submit(0, 999, 200, (false, true), None, &mut lp).unwrap();
    let out = drain(&mut cloud, &mut lp);
    assert_eq!(out.len(), 200);
    let first = out[0].0;
    let landed = first + Nanos((link.transfer_s(1000) * 1e9).round() as i64);
    // every gap within the objective: lone steps on the prefill instance, then on the decode replica
    let gaps: Vec<f64> = out.windows(2).map(|w| (w[1].0 - w[0].0).as_secs()).collect();
    assert!(gaps.iter().all(|&g| g <= 0.05), "{gaps:?}");
    // tokens before the landing came from the prefill instance at its lone pace ...
    let before = out.iter().filter(|e| e.0 <= landed).count();
    assert!(before > 50, "{before}");
    assert!((gaps[0] - cost.lone_decode_s(1000)).abs() < 2e-9);
    // ... then the request moved: the prefill replica holds nothing, the decode replica decoded the rest
    let c = &cloud.reqs.record(0).expect("a record");
    assert!(c.bridged && !c.decode_on_prefill && c.generated == 200);
    assert_eq!(cloud.replicas[0].kv_used, 0);
    assert!(cloud.replicas[1].running.is_empty() && cloud.replicas[1].kv_used == 0);
    assert!(out.last().unwrap().0 > landed);
    // planned for the pool without the bridge: the first decode token waits for the whole transfer
    let cfg = config(Deployment::Disaggregated, 100_000);
    let mut cloud = Cloud::new(cfg, 1).unwrap();
    let mut lp = EventQueue::with_capacity(8);
    cloud.submit(0, 999, 200, (false, false), None, &mut lp).unwrap();
    let out = drain(&mut cloud, &mut lp);
    assert!((out[1].0 - out[0].0).as_secs() > 1.0);
    assert!(!cloud.reqs.record(0).expect("a record").bridged);
}

#[test]
fn a_pool_request_within_the_gap_is_not_bridged() {
    // a fast link: the pool's first decode token comes within 50 ms
    let cfg = CloudConfig {
        prefill_decode_gap_s: 0.05,
        kv_link_bytes_per_s: 1e12,
        ..config(Deployment::Disaggregated, 100_000)
    };
    let mut cloud = Cloud::new(cfg, 1).unwrap();
    let mut lp = EventQueue::with_capacity(8);
    cloud.submit(0, 999, 20, (false, true), None, &mut lp).unwrap();
    let out = drain(&mut cloud, &mut lp);
    assert_eq!(out.len(), 20);
    assert!(!cloud.reqs.record(0).expect("a record").bridged);
    assert!(out.windows(2).all(|w| (w[1].0 - w[0].0).as_secs() <= 0.05));
}

#[test]
fn a_lone_request_costs_the_lone_prices() {
    let cfg = config(Deployment::Colocated, 100_000);
    let cost = cfg.cost;
    let mut cloud = Cloud::new(cfg, 1).unwrap();
    let mut lp = EventQueue::with_capacity(8);
    cloud.submit(0, 1000, 3, (false, false), None, &mut lp).unwrap();
    let out = drain(&mut cloud, &mut lp);
    assert_eq!(out.len(), 3);
    assert!(out[0].2 && !out[1].2 && !out[2].2);
    let first = out[0].0.as_secs();
    assert!((first - cost.lone_prefill_s(1000)).abs() < 2e-9, "{first}");
    let step = (out[1].0 - out[0].0).as_secs();
    assert!((step - cost.lone_decode_s(1001)).abs() < 2e-9, "{step}");
    assert_eq!(cloud.reqs.record(0).expect("a record").generated, 3);
    // every GPU-second is charged to the one request, prefill and decode apart
    assert_eq!(cloud.gpu_prefill_s, cloud.reqs.record(0).expect("a record").gpu_prefill_s);
    assert_eq!(cloud.gpu_decode_s, cloud.reqs.record(0).expect("a record").gpu_decode_s);
    let total = cloud.gpu_prefill_s + cloud.gpu_decode_s;
    assert!((total - 2.0 * out[2].0.as_secs()).abs() < 1e-8, "{total}");
    assert_eq!(cloud.load().kv_used_frac, 0.0, "the cache is freed at the end");
    // done, it left the cloud: its record waits only to be written to the results
    assert!(cloud.reqs.get(0).is_none());
    let mut written = Vec::new();
    cloud.reqs.drain_left(|i, c| written.push((i, c.generated)));
    assert_eq!(written, [(0, 3)]);
    assert!(cloud.reqs.record(0).is_none() && !cloud.reqs.any_left());
}

#[test]
fn admission_waits_for_kv_cache_room() {
    // room for one request's prompt plus answer at a time
    let mut cloud = Cloud::new(config(Deployment::Colocated, 1200), 2).unwrap();
    let mut lp = EventQueue::with_capacity(8);
    cloud.submit(0, 1000, 50, (false, false), None, &mut lp).unwrap();
    cloud.submit(1, 1000, 50, (false, false), None, &mut lp).unwrap();
    let load = cloud.load();
    assert_eq!(load.waiting_requests, 1.0);
    assert_eq!(load.waiting_prefill_tokens, 2000.0);
    let out = drain(&mut cloud, &mut lp);
    let last_of_0 = out.iter().filter(|e| e.1 == 0).map(|e| e.0).max().unwrap();
    let first_of_1 = out.iter().find(|e| e.1 == 1 && e.2).unwrap().0;
    assert!(first_of_1 > last_of_0, "request 1 starts prefilling only after request 0 left");
}

#[test]
fn disaggregated_decode_waits_for_the_kv_transfer() {
    let cfg = config(Deployment::Disaggregated, 100_000);
    let mut cloud = Cloud::new(cfg, 1).unwrap();
    let mut lp = EventQueue::with_capacity(8);
    cloud.submit(0, 999, 2, (false, false), None, &mut lp).unwrap();
    let out = drain(&mut cloud, &mut lp);
    assert_eq!(out.len(), 2);
    // 1000 tokens x 1000 bytes over 1 MB/s: one second on the link, then one decode step
    let gap = (out[1].0 - out[0].0).as_secs();
    let step = cloud.cost().lone_decode_s(1000);
    assert!((gap - (1.0 + step)).abs() < 2e-9, "{gap}");
}

#[test]
fn decoding_on_the_prefill_instance_skips_the_transfer_and_the_pool() {
    let cfg = config(Deployment::Disaggregated, 100_000);
    let mut cloud = Cloud::new(cfg, 2).unwrap();
    let mut lp = EventQueue::with_capacity(8);
    cloud.submit(0, 999, 4, (true, false), None, &mut lp).unwrap();
    let out = drain(&mut cloud, &mut lp);
    assert_eq!(out.len(), 4);
    // no second on the link: each decode step is a lone step on the prefill replica
    for (w, ctx) in out.windows(2).zip(1000_u32..) {
        let gap = (w[1].0 - w[0].0).as_secs();
        assert!((gap - cloud.cost().lone_decode_s(ctx)).abs() < 2e-9, "{gap}");
    }
    assert_eq!(cloud.load().kv_used_frac, 0.0, "the prefill replica frees the cache at the end");
}

#[test]
fn a_decoding_prefill_instance_keeps_its_iterations_within_the_gap() {
    let cfg = CloudConfig { prefill_decode_gap_s: 0.012, ..config(Deployment::Disaggregated, 100_000) };
    let mut cloud = Cloud::new(cfg, 2).unwrap();
    let mut lp = EventQueue::with_capacity(8);
    cloud.submit(0, 10, 6, (true, false), None, &mut lp).unwrap();
    cloud.submit(1, 3000, 1, (false, false), None, &mut lp).unwrap();
    let out = drain(&mut cloud, &mut lp);
    let steps: Vec<Nanos> = out.iter().filter(|e| e.1 == 0).map(|e| e.0).collect();
    assert_eq!(steps.len(), 6);
    for w in steps.windows(2) {
        assert!((w[1] - w[0]).as_secs() <= 0.012 + 1e-9, "{:?}", w[1] - w[0]);
    }
    // without decodes the prompt takes whole-budget chunks again, and is done
    assert_eq!(out.iter().filter(|e| e.1 == 1).count(), 1);
}

#[test]
fn a_decoding_prefill_instance_caps_its_chunks() {
    let cfg = CloudConfig { prefill_decode_budget: 100, ..config(Deployment::Disaggregated, 100_000) };
    let cost = cfg.cost;
    let mut cloud = Cloud::new(cfg, 2).unwrap();
    let mut lp = EventQueue::with_capacity(8);
    cloud.submit(0, 10, 3, (true, false), None, &mut lp).unwrap();
    cloud.submit(1, 2000, 1, (false, false), None, &mut lp).unwrap();
    let out = drain(&mut cloud, &mut lp);
    // request 0 prefills alone (request 1 comes during that iteration); its decode steps then ride
    // with 99-token chunks of request 1's prompt
    let steps: Vec<Nanos> = out.iter().filter(|e| e.1 == 0).map(|e| e.0).collect();
    let it = cost.iteration(99.0, CloudCost::chunk_attention(99, 99), 1.0, 12.0).total_s;
    assert!(((steps[2] - steps[1]).as_secs() - it).abs() < 2e-9, "{steps:?}");
    // once nothing decodes there, the whole budget is back
    assert_eq!(out.iter().filter(|e| e.1 == 1).count(), 1);
}

#[test]
fn caches_share_the_link_and_are_written_on_arrival() {
    let cfg = CloudConfig { kv_write_token_s: 1e-4, ..config(Deployment::Disaggregated, 100_000) };
    let cost = cfg.cost;
    let mut cloud = Cloud::new(cfg, 2).unwrap();
    let mut lp = EventQueue::with_capacity(8);
    // request 1 joins request 0's second chunk: both are prefilled by the same iteration
    cloud.submit(0, 999, 2, (false, false), None, &mut lp).unwrap();
    cloud.submit(1, 9, 2, (false, false), None, &mut lp).unwrap();
    let out = drain(&mut cloud, &mut lp);
    let at = |req: u32, first: bool| out.iter().find(|e| e.1 == req && e.2 == first).unwrap().0;
    let sent = at(0, true);
    assert_eq!(sent, at(1, true), "prefilled together");
    // 1000 tokens x 1000 bytes at 1 MB/s: request 0's cache takes 1 s; its first decode step also
    // writes the 1000 tokens received
    let first = (at(0, false) - sent).as_secs();
    assert!((first - (1.0 + cost.lone_decode_s(1000) + 1e-4 * 1000.0)).abs() < 2e-9, "{first}");
    // request 1's 10-token cache (10 ms alone) waits for request 0's on the link
    assert!((at(1, false) - sent).as_secs() > 1.01, "{:?}", at(1, false) - sent);
}

#[test]
fn a_request_needing_no_decode_never_reaches_the_decode_pool() {
    let mut cloud = Cloud::new(config(Deployment::Disaggregated, 100_000), 1).unwrap();
    let mut lp = EventQueue::with_capacity(8);
    cloud.submit(0, 300, 1, (false, false), None, &mut lp).unwrap();
    let out = drain(&mut cloud, &mut lp);
    assert_eq!(out.len(), 1);
    assert_eq!(cloud.gpu_decode_s, 0.0);
}

#[test]
fn a_cancelled_stream_stops_and_frees_its_cache() {
    let mut cloud = Cloud::new(config(Deployment::Colocated, 100_000), 1).unwrap();
    let mut lp = EventQueue::with_capacity(8);
    cloud.submit(0, 100, 1000, (false, false), None, &mut lp).unwrap();
    let mut emitted = Vec::new();
    let mut tokens = 0;
    while let Some(ev) = lp.pop() {
        if let Ev::IterEnd(r) = ev.event {
            emitted.clear();
            cloud.iteration_end(r, ev.at, &mut lp, &mut emitted).unwrap();
            tokens += emitted.len();
            if tokens == 5 {
                cloud.cancel(0);
            }
        }
    }
    assert_eq!(tokens, 5, "nothing is emitted after the cancel");
    assert_eq!(cloud.load().kv_used_frac, 0.0);
}

#[test]
fn config_validation_names_the_field() {
    let mut cfg = config(Deployment::Colocated, 100);
    cfg.decode_replicas = 0;
    assert!(cfg.validate().unwrap_err().to_string().starts_with("decode_replicas"));
    let mut cfg = config(Deployment::Colocated, 100);
    cfg.kv_link_bytes_per_s = f64::NAN;
    assert!(cfg.validate().unwrap_err().to_string().starts_with("kv_link_bytes_per_s"));
    let mut cfg = config(Deployment::Disaggregated, 100);
    cfg.decode_replicas = 1_000_000_000;
    assert!(cfg.validate().unwrap_err().to_string().starts_with("decode_replicas = 1000000000 is more"));
    let mut cfg = config(Deployment::Colocated, 100);
    cfg.cost.base_s = -1.0;
    assert!(cfg.validate().unwrap_err().to_string().starts_with("base_s"));
}

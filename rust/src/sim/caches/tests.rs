//! The caches' tests.
use super::*;

/// `n` tokens that exist from the start.
fn held(n: u64) -> Held {
    Held::from(n, Nanos::ZERO)
}

fn turn(device: u32, session: u32, parent: Option<u32>, shared: u32, turn: u32, prompt: u32) -> Turn {
    Turn { device, session, parent, shared, turn, prompt }
}

#[test]
fn a_follow_up_reuses_the_common_prefix_of_what_the_device_holds() {
    let turns =
        [turn(0, 0, None, 0, 1, 100), turn(0, 0, Some(0), 150, 2, 170), turn(0, 0, Some(1), 200, 3, 230)];
    let mut c = DeviceCache::new(10_000);
    assert_eq!(c.lookup(&turns, 0, Nanos::ZERO), 0);
    c.record(&turns, 0, held(149)); // prompt 100 + answer 50 − 1
    assert_eq!(c.peek(&turns, 1, Nanos::ZERO), 149);
    // turn 2 answered by the cloud: the entry of turn 1 stays, valid up to the shared 150
    assert_eq!(c.peek(&turns, 2, Nanos::ZERO), 149);
    c.record(&turns, 1, held(199));
    assert_eq!(c.peek(&turns, 2, Nanos::ZERO), 199);
    // a refined turn drops the entry
    c.record(&turns, 1, held(0));
    assert_eq!(c.peek(&turns, 2, Nanos::ZERO), 0);
}

#[test]
fn at_least_one_token_is_prefilled() {
    let turns = [turn(0, 0, None, 0, 1, 100), turn(0, 0, Some(0), 100, 2, 100)];
    let mut c = DeviceCache::new(10_000);
    c.record(&turns, 0, held(500));
    assert_eq!(c.peek(&turns, 1, Nanos::ZERO), 99);
}

#[test]
fn sessions_are_evicted_least_recently_used_first() {
    // two sessions on device 0, one on device 1; 300 tokens per device
    let turns = [
        turn(0, 0, None, 0, 1, 100),
        turn(0, 1, None, 0, 1, 100),
        turn(1, 2, None, 0, 1, 100),
        turn(0, 0, Some(0), 150, 2, 160),
        turn(0, 3, None, 0, 1, 100),
        turn(0, 1, Some(1), 150, 2, 160),
    ];
    let mut c = DeviceCache::new(300);
    c.record(&turns, 0, held(150));
    c.record(&turns, 1, held(120));
    c.record(&turns, 2, held(290));
    assert_eq!(c.sessions(0), vec![(0, 150), (1, 120)]);
    assert_eq!(c.lookup(&turns, 3, Nanos::ZERO), 150); // session 0 is now the most recent
    c.record(&turns, 4, held(100)); // 370 > 300: session 1, least recently used, goes
    assert_eq!(c.sessions(0), vec![(0, 150), (3, 100)]);
    assert_eq!(c.peek(&turns, 5, Nanos::ZERO), 0);
    assert_eq!(c.sessions(1), vec![(2, 290)], "another device's budget is its own");
    // an entry longer than the budget keeps its leading tokens
    c.record(&turns, 3, held(1000));
    assert_eq!(c.sessions(0), vec![(0, 300)]);
}

#[test]
fn a_zero_budget_keeps_nothing() {
    let turns = [turn(0, 0, None, 0, 1, 100), turn(0, 0, Some(0), 150, 2, 160)];
    let mut c = DeviceCache::new(0);
    c.record(&turns, 0, held(150));
    assert_eq!(c.lookup(&turns, 1, Nanos::ZERO), 0);
}

#[test]
fn siblings_share_their_parents_prefix() {
    let turns =
        [turn(0, 0, None, 0, 1, 100), turn(0, 0, Some(0), 120, 2, 130), turn(0, 0, Some(0), 110, 2, 140)];
    let mut c = DeviceCache::new(1000);
    c.record(&turns, 1, held(150));
    assert_eq!(c.peek(&turns, 2, Nanos::ZERO), 110);
}

#[test]
fn the_prefix_cache_evicts_the_least_recent_and_deepest_blocks_first() {
    let mut c = PrefixCache::new(4);
    c.insert(&[1, 2, 3]);
    assert_eq!(c.peek(&[1, 2, 9]), 2);
    c.insert(&[7, 8]); // 5 blocks: block 3, deepest of the older prefix, goes
    assert_eq!(c.peek(&[1, 2, 3]), 2);
    assert_eq!(c.lookup(&[1, 2]), 2); // 1 and 2 are now the most recent
    c.insert(&[5]); // 8 goes (older than 1, 2, deeper than 7), then nothing else
    assert_eq!(c.peek(&[7, 8]), 1);
    assert_eq!(c.len(), 4);
    let mut none = PrefixCache::new(0);
    none.insert(&[1, 2]);
    assert!(none.is_empty());
}

#[test]
fn a_follow_up_finds_only_the_tokens_that_exist_when_it_starts() {
    let turns =
        [turn(0, 0, None, 0, 1, 100), turn(0, 0, Some(0), 150, 2, 170), turn(0, 0, Some(1), 200, 3, 230)];
    let mut c = DeviceCache::new(10_000);
    // turn 1: its prompt of 100 prefilled by 1 s, then answer tokens 0, 1, 2 run through at 2, 3, 4 s
    let secs = |s: i64| Nanos::ms(1000 * s);
    c.record(&turns, 0, Held { reused: 0, ready: 100, at: secs(1), later: vec![secs(2), secs(3), secs(4)] });
    assert_eq!(c.peek(&turns, 1, Nanos::ZERO), 0, "the parent is still prefilling");
    assert_eq!(c.peek(&turns, 1, secs(1)), 100);
    assert_eq!(c.peek(&turns, 1, Nanos::ms(2500)), 101);
    assert_eq!(c.peek(&turns, 1, secs(9)), 103);
    // turn 2 reused 103 tokens, then prefills its prompt by 12 s: until then only those 103 exist
    c.record(&turns, 1, Held { reused: 103, ready: 170, at: secs(12), later: vec![] });
    assert_eq!(c.peek(&turns, 2, secs(10)), 103);
    assert_eq!(c.peek(&turns, 2, secs(12)), 170);
    // an entry cut to the budget keeps its leading tokens as they come
    let mut small = DeviceCache::new(101);
    small.record(&turns, 0, Held { reused: 0, ready: 100, at: secs(1), later: vec![secs(2), secs(3)] });
    assert_eq!(small.peek(&turns, 1, secs(1)), 100);
    assert_eq!(small.peek(&turns, 1, secs(3)), 101);
}

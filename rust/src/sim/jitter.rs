//! The device's step spread inside the simulator: each device model call takes its price times a factor
//! drawn for that call (the spread itself is the device's, [`crate::cost::device`]).
//!
//! The factor (ours): uniform on `[1 - √3 s, 1 + √3 s]` for a spread `s` (mean 1, root-mean-square
//! deviation `s`), floored at [`FLOOR`] so a call always takes time. The floor binds only above
//! `s = (1 - FLOOR) / √3` (about 0.55): there the mean lies above 1 and the deviation below `s`. A uniform
//! is the widest-tailed shape with a bounded support that stays positive for moderate spreads, and needs
//! no transcendental function.
//!
//! A call is the live device's: it prefills a prompt in calls of [`PROMPT_CHUNK_TOKENS`] tokens and
//! appends received tokens in calls of [`APPEND_CHUNK_TOKENS`] (`pdcore.runtime.device`'s defaults), and
//! decodes one token a call. The simulator prices a prompt's prefill or an append as one piece of work:
//! it takes its price times the mean of its calls' factors (ours: each call's share of the work taken as
//! equal), so a long prefill strays from its price by about `s / √calls`, as a chunked one does.
//!
//! The draw is counter-based: a splitmix64 hash (Steele, Lea and Flood, "Fast splittable pseudorandom
//! number generators", OOPSLA 2014) of a fixed seed, the request's index, the kind of call and the
//! position of its first token in the request, so a call's factor does not depend on the order events
//! run in, and a run is reproducible bit for bit on any platform (integer arithmetic and basic float
//! operations only). A spread of 0 leaves every price untouched (no hash is computed).
//!
//! Which calls (every device call on the simulator's shared paths): the prompt's prefill (every mode
//! that prefills on the device), each append of received cloud tokens (the splits: P/D-Device, the naive
//! split, DiSCo), and each decode step of an answer the device finishes (every mode that hands the rest
//! to the device, kv-transfer's first step included). Speculative decoding's drafts are priced per round
//! by `crate::cost::spec` and keep their price.

use crate::cost::DeviceCost;
use crate::time::{round_non_negative, Nanos};

/// The fixed seed of every run's draws (module doc).
const SEED: u64 = 0x6A09_E667_F3BC_C908; // the first 64 bits of √2's fraction (SHA-512's first word)

/// The smallest factor: a call takes at least this share of its price.
pub const FLOOR: f64 = 0.05;

/// √3: a uniform on `[-√3, √3]` has variance 1.
const SQRT_3: f64 = 1.732_050_807_568_877_2;

/// Prompt tokens the live device prefills in one model call.
pub const PROMPT_CHUNK_TOKENS: u64 = 128;

/// Received tokens the live device appends in one model call.
pub const APPEND_CHUNK_TOKENS: u64 = 32;

/// What kind of device work a factor is drawn for; with its first token's position it names the work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// The prompt's prefill (position: the first prompt token prefilled, after what is cached).
    Prompt = 1,
    /// An append of received tokens (position: the received tokens prefilled before it).
    Append = 2,
    /// A decode step (position: the answer position of the token it produces).
    Decode = 3,
}

impl Call {
    /// Tokens in one model call of this kind (module doc).
    #[must_use]
    pub fn chunk_tokens(self) -> u64 {
        match self {
            Self::Prompt => PROMPT_CHUNK_TOKENS,
            Self::Append => APPEND_CHUNK_TOKENS,
            Self::Decode => 1,
        }
    }
}

/// splitmix64's output function of `x` (module doc).
#[inline]
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The factor of request `request`'s model call `call` whose first token is at `position`, for a spread
/// `spread` (module doc).
#[must_use]
pub fn factor(spread: f64, request: u32, call: Call, position: u64) -> f64 {
    if spread <= 0.0 {
        return 1.0;
    }
    let h = mix(mix(mix(SEED ^ u64::from(request)) ^ call as u64) ^ position);
    // the top 53 bits: a uniform on [0, 1) with every value a double holds exactly
    let u = (h >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
    (1.0 + SQRT_3 * spread * (2.0 * u - 1.0)).max(FLOOR)
}

/// The factor of `tokens` tokens of work from `position` on: the mean of its model calls' (module doc).
#[must_use]
pub fn work_factor(spread: f64, request: u32, call: Call, position: u64, tokens: u64) -> f64 {
    let chunk = call.chunk_tokens();
    let calls = tokens.div_ceil(chunk).max(1);
    if calls == 1 {
        return factor(spread, request, call, position); // a decode step's, per token: no mean to take
    }
    let sum: f64 = (0..calls).map(|j| factor(spread, request, call, position + j * chunk)).sum();
    sum / calls as f64
}

/// `price` of `tokens` tokens of work from `position` on, times its factor, rounded to the nanosecond;
/// `price` itself for a spread of 0.
#[must_use]
pub fn jittered(price: Nanos, spread: f64, request: u32, call: Call, position: u64, tokens: u64) -> Nanos {
    if spread <= 0.0 {
        return price;
    }
    let y = price.0 as f64 * work_factor(spread, request, call, position, tokens);
    if y < 4.5e15 {
        Nanos(round_non_negative(y.max(0.0)))
    } else {
        Nanos(y as i64) // far past the clock's limit: saturates, and the caller's clock check refuses it
    }
}

/// The time request `request`'s device takes to prefill its prompt of `prompt` tokens, `cached` of them
/// held: the price of [`DeviceCost::prompt`] times its factor.
#[must_use]
pub fn prompt_time(device: &DeviceCost, request: u32, prompt: u32, cached: u32) -> Nanos {
    let tokens = u64::from(prompt.saturating_sub(cached));
    let price = device.prompt(prompt, cached);
    jittered(price, device.step_spread(), request, Call::Prompt, u64::from(cached), tokens)
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // factors compared are the same computation
mod tests {
    use super::*;

    fn moments(spread: f64) -> (f64, f64) {
        let n = 200_000u64;
        let (mut sum, mut sq) = (0.0, 0.0);
        for i in 0..n {
            let f = factor(spread, (i % 997) as u32, Call::Append, i / 997);
            sum += f;
            sq += (f - 1.0) * (f - 1.0);
        }
        (sum / n as f64, (sq / n as f64).sqrt())
    }

    #[test]
    fn the_factor_has_mean_one_and_the_spread_as_its_rms_deviation() {
        for spread in [0.05, 0.1, 0.3, 0.5] {
            let (mean, rms) = moments(spread);
            assert!((mean - 1.0).abs() < 0.01 * spread, "{spread}: mean {mean}");
            assert!((rms / spread - 1.0).abs() < 0.01, "{spread}: rms {rms}");
        }
        // beyond the floor's reach the factor stays positive
        for i in 0..10_000 {
            assert!(factor(2.0, i, Call::Decode, 7) >= FLOOR);
        }
    }

    #[test]
    fn work_of_several_calls_strays_by_the_spread_over_their_root() {
        // 4 prompt calls (512 tokens) and 4 append calls (97 to 128 tokens): half the spread
        for (call, tokens) in [(Call::Prompt, 512), (Call::Append, 97)] {
            let n = 50_000u64;
            let sq: f64 =
                (0..n).map(|i| work_factor(0.3, i as u32, call, 7, tokens) - 1.0).map(|d| d * d).sum();
            let rms = (sq / n as f64).sqrt();
            assert!((rms / 0.15 - 1.0).abs() < 0.02, "{call:?}: {rms}");
        }
        // one call's work is that call's factor
        assert_eq!(work_factor(0.3, 1, Call::Append, 64, 32), factor(0.3, 1, Call::Append, 64));
        assert_eq!(work_factor(0.3, 1, Call::Decode, 9, 1), factor(0.3, 1, Call::Decode, 9));
    }

    #[test]
    fn draws_are_deterministic_and_differ_between_calls() {
        let a = factor(0.3, 5, Call::Decode, 12);
        assert_eq!(a, factor(0.3, 5, Call::Decode, 12));
        assert_ne!(a, factor(0.3, 5, Call::Decode, 13));
        assert_ne!(a, factor(0.3, 6, Call::Decode, 12));
        assert_ne!(a, factor(0.3, 5, Call::Append, 12));
        // the same draw scaled: a wider spread moves the same call further from its price
        let (narrow, wide) = (factor(0.1, 5, Call::Decode, 12), factor(0.3, 5, Call::Decode, 12));
        assert!(((wide - 1.0) - 3.0 * (narrow - 1.0)).abs() < 1e-12);
    }

    #[test]
    fn no_spread_leaves_every_price_untouched() {
        for ns in [0, 1, 20_000_000, i64::MAX / 4] {
            assert_eq!(jittered(Nanos(ns), 0.0, 3, Call::Prompt, 0, 1000), Nanos(ns));
        }
        assert_eq!(factor(0.0, 3, Call::Prompt, 0), 1.0);
        let j = jittered(Nanos::ms(100), 0.2, 3, Call::Prompt, 0, 100);
        let want = 100e6 * factor(0.2, 3, Call::Prompt, 0);
        assert!((j.0 as f64 - want).abs() <= 0.5, "{j:?} {want}");
    }
}

//! Per-request token accounting across the cloud-to-device hand-off.
//!
//! Output positions `0..` are filled from two sources: the cloud's stream fills `0..handoff`, the
//! device's own decode fills `handoff..`. Invariants, checked on every call:
//!
//! - `prefilled <= received`: the device can only prefill tokens it has received;
//! - the device takes over only once caught up: prompt prefilled and `prefilled == received`; the
//!   hand-off position is then `received`, and cloud tokens still in flight are discarded (counted in
//!   `discarded`, never displayed);
//! - `displayed <= available()`: positions are displayed once each, in order, from the source that owns
//!   them;
//! - a cut cloud stream keeps every token received before the cut; the device continues from there.

use crate::error::{CoreError, Result};

/// Which engine produced a displayed token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// Streamed by the cloud.
    Cloud,
    /// Decoded by the device.
    Device,
}

/// The state of the cloud's stream as the device sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloudStream {
    /// Tokens may still arrive.
    Open,
    /// The cloud sent everything it was asked for.
    Finished,
    /// The stream ended before that (network cut, cloud error).
    Cut,
    /// The device took over; later cloud tokens are discarded.
    Cancelled,
}

/// What happened to a token that arrived from the cloud.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receipt {
    /// Kept at this output position.
    Kept(u32),
    /// Arrived after the hand-off; discarded.
    Discarded,
}

/// Token counts of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBuffer {
    cloud_expected: Option<u32>,
    received: u32,
    prompt_prefilled: bool,
    prefilled: u32,
    handoff: Option<u32>,
    generated: u32,
    displayed: u32,
    discarded: u32,
    stream: CloudStream,
}

impl TokenBuffer {
    /// An empty request; `cloud_expected` is how many tokens the cloud was asked for (`k + 1`), if any.
    #[must_use]
    pub fn new(cloud_expected: Option<u32>) -> Self {
        let stream = if cloud_expected == Some(0) { CloudStream::Finished } else { CloudStream::Open };
        Self {
            cloud_expected,
            received: 0,
            prompt_prefilled: false,
            prefilled: 0,
            handoff: None,
            generated: 0,
            displayed: 0,
            discarded: 0,
            stream,
        }
    }

    /// A cloud token arrived.
    pub fn receive_cloud(&mut self) -> Result<Receipt> {
        match self.stream {
            CloudStream::Cancelled => {
                self.discarded += 1;
                Ok(Receipt::Discarded)
            }
            CloudStream::Finished | CloudStream::Cut => Err(CoreError::state(
                format!(
                    "receive_cloud: the cloud stream is {:?} after {} tokens",
                    self.stream, self.received
                ),
                "stop reading the stream once it has finished or been cut",
            )),
            CloudStream::Open => {
                let pos = self.received;
                self.received += 1;
                if Some(self.received) == self.cloud_expected {
                    self.stream = CloudStream::Finished;
                }
                Ok(Receipt::Kept(pos))
            }
        }
    }

    /// The cloud stream ended early; the tokens received so far stay.
    pub fn cut_cloud(&mut self) {
        if self.stream == CloudStream::Open {
            self.stream = CloudStream::Cut;
        }
    }

    /// The device finished prefilling the prompt.
    pub fn prefill_prompt(&mut self) {
        self.prompt_prefilled = true;
    }

    /// The device prefilled `n` more received tokens (the amortized prefill).
    pub fn prefill_received(&mut self, n: u32) -> Result<()> {
        if !self.prompt_prefilled {
            return Err(CoreError::state(
                "prefill_received: the prompt is not prefilled yet",
                "prefill the prompt first, then the received tokens",
            ));
        }
        if self.prefilled + n > self.received {
            return Err(CoreError::invalid(
                "n",
                format!(
                    "= {n} would prefill past the {} received tokens ({} done)",
                    self.received, self.prefilled
                ),
                "prefill at most received - prefilled tokens",
            ));
        }
        self.prefilled += n;
        Ok(())
    }

    /// True when the device has prefilled the prompt and every received token and has not taken over.
    #[must_use]
    pub fn caught_up(&self) -> bool {
        self.handoff.is_none() && self.prompt_prefilled && self.prefilled == self.received
    }

    /// The device takes over at position `received`; returns that position. The rest of the cloud
    /// stream, if still open, is cancelled.
    pub fn take_over(&mut self) -> Result<u32> {
        if !self.caught_up() {
            return Err(CoreError::state(
                format!(
                    "take_over: the device has not caught up (prompt prefilled: {}, prefilled {} of {} received, handoff {:?})",
                    self.prompt_prefilled, self.prefilled, self.received, self.handoff
                ),
                "take over only when caught_up() is true",
            ));
        }
        self.handoff = Some(self.received);
        if self.stream == CloudStream::Open {
            self.stream = CloudStream::Cancelled;
        }
        Ok(self.received)
    }

    /// The device decoded its next token; returns its position.
    pub fn generate(&mut self) -> Result<u32> {
        let Some(h) = self.handoff else {
            return Err(CoreError::state(
                "generate: the device has not taken over",
                "call take_over() first",
            ));
        };
        let pos = h + self.generated;
        self.generated += 1;
        Ok(pos)
    }

    /// Positions that can be displayed: received cloud tokens before the hand-off, then device tokens.
    #[must_use]
    pub fn available(&self) -> u32 {
        self.handoff.map_or(self.received, |h| h + self.generated)
    }

    /// Displays the next position; returns it and its source.
    pub fn display(&mut self) -> Result<(u32, Source)> {
        if self.displayed >= self.available() {
            return Err(CoreError::state(
                format!(
                    "display: nothing to display ({} displayed, {} available)",
                    self.displayed,
                    self.available()
                ),
                "display only while displayed < available()",
            ));
        }
        let pos = self.displayed;
        self.displayed += 1;
        let source = if self.handoff.is_none_or(|h| pos < h) { Source::Cloud } else { Source::Device };
        Ok((pos, source))
    }

    /// Cloud tokens received (kept).
    #[must_use]
    pub fn received(&self) -> u32 {
        self.received
    }
    /// Received cloud tokens the device has prefilled.
    #[must_use]
    pub fn prefilled(&self) -> u32 {
        self.prefilled
    }
    /// Whether the prompt is prefilled on the device.
    #[must_use]
    pub fn prompt_prefilled(&self) -> bool {
        self.prompt_prefilled
    }
    /// Tokens decoded by the device.
    #[must_use]
    pub fn generated(&self) -> u32 {
        self.generated
    }
    /// Tokens displayed.
    #[must_use]
    pub fn displayed(&self) -> u32 {
        self.displayed
    }
    /// Cloud tokens that arrived after the hand-off and were dropped.
    #[must_use]
    pub fn discarded(&self) -> u32 {
        self.discarded
    }
    /// The hand-off position, once the device took over.
    #[must_use]
    pub fn handoff(&self) -> Option<u32> {
        self.handoff
    }
    /// The cloud stream's state.
    #[must_use]
    pub fn stream(&self) -> CloudStream {
        self.stream
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cloud_then_device_positions_are_contiguous() {
        let mut b = TokenBuffer::new(Some(3));
        assert_eq!(b.receive_cloud().unwrap(), Receipt::Kept(0));
        assert_eq!(b.receive_cloud().unwrap(), Receipt::Kept(1));
        b.prefill_prompt();
        b.prefill_received(2).unwrap();
        assert_eq!(b.take_over().unwrap(), 2);
        assert_eq!(b.receive_cloud().unwrap(), Receipt::Discarded);
        assert_eq!(b.generate().unwrap(), 2);
        let shown: Vec<_> = (0..3).map(|_| b.display().unwrap()).collect();
        assert_eq!(shown, vec![(0, Source::Cloud), (1, Source::Cloud), (2, Source::Device)]);
        assert!(b.display().is_err());
    }

    #[test]
    fn cut_stream_keeps_received_and_refuses_more() {
        let mut b = TokenBuffer::new(Some(10));
        b.receive_cloud().unwrap();
        b.cut_cloud();
        assert_eq!(b.stream(), CloudStream::Cut);
        assert!(b.receive_cloud().is_err());
        b.prefill_prompt();
        assert!(!b.caught_up());
        b.prefill_received(1).unwrap();
        assert_eq!(b.take_over().unwrap(), 1);
    }

    #[test]
    fn guards_against_protocol_errors() {
        let mut b = TokenBuffer::new(Some(2));
        assert!(b.prefill_received(0).is_err());
        b.prefill_prompt();
        assert!(b.prefill_received(1).is_err());
        assert!(b.generate().is_err());
        b.receive_cloud().unwrap();
        assert!(b.take_over().is_err());
    }

    #[derive(Debug, Clone, Copy)]
    enum Op {
        Receive,
        Cut,
        PrefillPrompt,
        Prefill,
        TakeOver,
        Generate,
        Display,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => Just(Op::Receive), 1 => Just(Op::Cut), 1 => Just(Op::PrefillPrompt),
            3 => Just(Op::Prefill), 2 => Just(Op::TakeOver), 3 => Just(Op::Generate), 4 => Just(Op::Display),
        ]
    }

    proptest! {
        #[test]
        fn no_token_lost_or_duplicated(ops in prop::collection::vec(op(), 0..200), k in 0_u32..20) {
            let mut b = TokenBuffer::new(Some(k + 1));
            let mut kept = Vec::new();
            let mut generated = Vec::new();
            let mut shown = Vec::new();
            for o in ops {
                match o {
                    Op::Receive => if let Ok(Receipt::Kept(p)) = b.receive_cloud() { kept.push(p) },
                    Op::Cut => b.cut_cloud(),
                    Op::PrefillPrompt => b.prefill_prompt(),
                    Op::Prefill => { let _ = b.prefill_received(b.received() - b.prefilled()); }
                    Op::TakeOver => { let _ = b.take_over(); }
                    Op::Generate => if let Ok(p) = b.generate() { generated.push(p) },
                    Op::Display => if let Ok(x) = b.display() { shown.push(x) },
                }
                prop_assert!(b.prefilled() <= b.received());
                prop_assert!(b.displayed() <= b.available());
            }
            // displayed positions are exactly 0..displayed, each once, cloud before device
            for (i, &(p, src)) in shown.iter().enumerate() {
                prop_assert_eq!(p as usize, i);
                let from_cloud = b.handoff().is_none_or(|h| p < h);
                prop_assert_eq!(src == Source::Cloud, from_cloud);
            }
            // every kept cloud position and every device position is distinct and contiguous
            let mut all: Vec<u32> = kept.iter().chain(generated.iter()).copied().collect();
            all.sort_unstable();
            prop_assert!(all.iter().enumerate().all(|(i, &p)| p as usize == i));
            prop_assert!(b.received() <= k + 1);
        }
    }
}

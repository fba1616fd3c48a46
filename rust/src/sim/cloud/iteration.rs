//! A replica's iteration: its start (release what left, admit, build and price the batch, charge its
//! GPU-seconds) and its end (emit the tokens, free finished requests, send prefilled caches on).

use super::replica::{Replica, Role};
use super::{Cloud, CloudReqs, Emission};
use crate::error::Result;
use crate::sim::queue::EventQueue;
use crate::sim::{Ev, PRIO_CLOUD};
use crate::time::{check_clock, Nanos};

impl Cloud {
    /// Starts replica `ri`'s next iteration unless one is under way or it has nothing to run; an iteration
    /// that would end past the clock's limit is an error naming its batch ([`crate::time`]).
    pub(super) fn try_start(&mut self, ri: usize, lp: &mut EventQueue<Ev>) -> Result<()> {
        if self.replicas[ri].busy {
            return Ok(());
        }
        let handed = self.release(ri);
        let cfg = &self.cfg;
        let rep = &mut self.replicas[ri];
        rep.admit(ri, &mut self.reqs, cfg);
        if let Some(batch) = rep.batch(&self.reqs, cfg) {
            // the caches admitted since the last iteration are written in this one
            let (prefill_part, decode_part, t) = batch.time(cfg, rep.to_write);
            let dur = Nanos(((t * 1e9).round() as i64).max(1));
            check_clock(
                lp.now() + dur,
                "replica",
                Some(ri),
                || format!("an iteration of {}", batch.describe(rep.to_write)),
                "check the cloud profile's [iteration] and [kv_transfer] times and the requests' lengths",
            )?;
            rep.to_write = 0;
            // charge GPU-seconds now; the iteration is committed
            let (gpu_p, gpu_d) = batch.charge(rep, &mut self.reqs, cfg, (prefill_part, decode_part));
            self.gpu_prefill_s += gpu_p;
            self.gpu_decode_s += gpu_d;
            self.iterations += 1;
            rep.busy = true;
            rep.busy_until = lp.now() + dur;
            lp.schedule_in(dur, PRIO_CLOUD, Ev::IterEnd(ri as u32))?;
        }
        self.hand_over(handed, lp)
    }

    /// Drops replica `ri`'s cancelled requests, freeing their cache, and lets go of the bridged ones whose
    /// cache has landed; returns those with the decode replica that takes each. Without a cancellation or
    /// a hand-over since its last release there is nothing to drop, and its queues are not scanned.
    fn release(&mut self, ri: usize) -> Vec<(u32, u32)> {
        let reqs = &mut self.reqs;
        let rep = &mut self.replicas[ri];
        if rep.released_at == self.changes {
            return Vec::new();
        }
        rep.released_at = self.changes;
        let mut freed = 0;
        let mut handed: Vec<(u32, u32)> = Vec::new();
        let mut gone: Vec<u32> = Vec::new();
        let mut keep = |id: &u32| {
            let c = &mut reqs[*id as usize];
            if c.cancelled {
                freed += c.reserved;
                gone.push(*id);
            } else if let Some(d) = c.handover.take() {
                freed += c.reserved;
                c.reserved = 0;
                c.decode_on_prefill = false;
                handed.push((*id, d));
                return false;
            }
            !c.cancelled
        };
        rep.running.retain(&mut keep);
        rep.prefilling.retain(&mut keep);
        rep.waiting.retain(|id| {
            let cancelled = reqs[*id as usize].cancelled;
            if cancelled {
                gone.push(*id);
            }
            !cancelled
        });
        rep.kv_used -= freed;
        for id in gone {
            reqs.leave(id);
        }
        handed
    }

    /// An iteration of replica `ri` ended at `now`: emits tokens into `out` and starts the next one.
    pub fn iteration_end(
        &mut self,
        ri: u32,
        now: Nanos,
        lp: &mut EventQueue<Ev>,
        out: &mut Vec<Emission>,
    ) -> Result<()> {
        let ri = ri as usize;
        let rep = &mut self.replicas[ri];
        rep.busy = false;
        let freed = rep.emit_decodes(&mut self.reqs, now, out);
        // caches leaving over the link, in the order of their first tokens; `true`: the instance may keep it
        let (first_freed, leaving) = rep.emit_first_tokens(ri, &mut self.reqs, now, out);
        rep.kv_used -= freed + first_freed;
        self.send_caches(ri, leaving, now, lp)?;
        self.try_start(ri, lp)
    }
}

impl Replica {
    /// Emits the decode tokens of the iteration that ended at `now` (a verification round's at once) and
    /// drops the sequences that are done; returns the cache they free.
    fn emit_decodes(&mut self, reqs: &mut CloudReqs, now: Nanos, out: &mut Vec<Emission>) -> u64 {
        let mut freed = 0;
        let mut done = false;
        for &id in &self.cur_decode {
            let c = &mut reqs[id as usize];
            if c.cancelled {
                continue;
            }
            // a verification round yields its tokens at once (what the answer still needs)
            let tokens = c.spec.map_or(1, |s| {
                c.rounds += 1;
                s.round_tokens(c.rounds).min(c.quota - c.generated)
            });
            c.generated += tokens;
            c.gap_sum += now - c.last_emit;
            c.gap_count += tokens;
            c.last_emit = now;
            out.push(Emission { req: id, first: false, tokens });
            if c.generated >= c.quota {
                freed += c.reserved;
                c.reserved = 0;
                done = true;
            }
            if c.spec.is_some() {
                reqs.set_awaits_drafts(id, true);
            }
        }
        // only this iteration's sequences can have finished: without one, nothing to drop
        if done {
            self.running.retain(|&id| {
                let c = &reqs[id as usize];
                c.cancelled || c.generated < c.quota
            });
            // the finished sequences leave the cloud (after the scan above, which reads them)
            for &id in &self.cur_decode {
                if reqs.get(id).is_some_and(|c| !c.cancelled && c.generated >= c.quota) {
                    reqs.leave(id);
                }
            }
        }
        freed
    }

    /// Advances the prefill chunks of the iteration that ended at `now` and emits the first token of each
    /// prompt now prefilled, in order; a request that decodes here (replica `ri`) joins the running ones,
    /// the others free their cache (or, planned for the pool with the bridge allowed, may keep it).
    /// Returns the cache freed and the requests whose caches leave, each with whether it may be bridged.
    fn emit_first_tokens(
        &mut self,
        ri: usize,
        reqs: &mut CloudReqs,
        now: Nanos,
        out: &mut Vec<Emission>,
    ) -> (u64, Vec<(u32, bool)>) {
        let mut freed = 0;
        let mut leaving: Vec<(u32, bool)> = Vec::new();
        for &(id, chunk) in &self.cur_prefill {
            let c = &mut reqs[id as usize];
            c.prefilled += chunk;
        }
        while let Some(&id) = self.prefilling.front() {
            let c = &mut reqs[id as usize];
            if c.prefilled < c.prompt {
                break;
            }
            self.prefilling.pop_front();
            if c.cancelled {
                freed += c.reserved;
                c.reserved = 0;
                reqs.leave(id);
                continue;
            }
            c.generated = 1;
            c.last_emit = now;
            out.push(Emission { req: id, first: true, tokens: 1 });
            let is_prefill = self.role == Role::Prefill;
            if c.quota > 1 && is_prefill && !c.decode_on_prefill && c.may_bridge {
                leaving.push((id, true));
            } else if c.quota <= 1 || (is_prefill && !c.decode_on_prefill) {
                freed += c.reserved;
                c.reserved = 0;
                if c.quota > 1 {
                    leaving.push((id, false));
                } else {
                    reqs.leave(id); // a one-token answer: done
                }
            } else {
                c.replica = Some(ri as u32);
                self.running.push(id);
            }
        }
        (freed, leaving)
    }
}

//! KV caches between the pools of a disaggregated cloud: sent one at a time over each prefill replica's
//! link, written where they land, and the bridge at the first token (a prefill instance decodes a pool
//! request while its cache crosses, then hands it over; [`crate::cost::ksite`] states the rule).

use super::replica::Role;
use super::Cloud;
use crate::cost::{pool_first_gap_s, within_objective};
use crate::error::Result;
use crate::sim::queue::EventQueue;
use crate::sim::{Ev, PRIO_CLOUD};
use crate::time::{check_clock, Nanos};

impl Cloud {
    /// A KV cache arrived at decode replica `replica`.
    pub fn kv_arrived(&mut self, req: u32, replica: u32, lp: &mut EventQueue<Ev>) -> Result<()> {
        self.replicas[replica as usize].inbound -= 1;
        // one its prefill instance finished (bridged) or dropped (cancelled) has left
        let Some(c) = self.reqs.get_mut(req) else { return Ok(()) };
        if c.cancelled {
            if !c.bridged {
                self.reqs.leave(req); // cancelled on its way: in no queue
            }
            return Ok(());
        }
        if c.bridged {
            // still decoding on its prefill instance: it moves at that replica's next iteration
            if c.decode_on_prefill && c.generated < c.quota {
                c.handover = Some(replica);
                self.changes += 1;
            }
            return Ok(());
        }
        self.replicas[replica as usize].waiting.push_back(req);
        self.try_start(replica as usize, lp)
    }

    /// Sends the caches `leaving` prefill replica `ri` at `now` to the least-loaded decode replicas, one at
    /// a time on its link; a request that `may_keep` its cache there is bridged when the pool's first
    /// decode gap would be too long ([`Self::bridges_at_first_token`]).
    pub(super) fn send_caches(
        &mut self,
        ri: usize,
        leaving: Vec<(u32, bool)>,
        now: Nanos,
        lp: &mut EventQueue<Ev>,
    ) -> Result<()> {
        for (id, may_keep) in leaving {
            if may_keep {
                let bridge = self.bridges_at_first_token(ri, id, now);
                let rep = &mut self.replicas[ri];
                let c = &mut self.reqs[id as usize];
                if bridge {
                    // decode here while the cache crosses; `kv_arrived` hands it over
                    rep.kv_used += u64::from(c.quota);
                    c.reserved += u64::from(c.quota);
                    c.decode_on_prefill = true;
                    c.bridged = true;
                    rep.running.push(id);
                } else {
                    rep.kv_used -= c.reserved;
                    c.reserved = 0;
                }
            }
            let d = self.least_loaded(Role::Decode);
            self.replicas[d].inbound += 1;
            let dur = self.transfer_time(id);
            // one cache at a time on the replica's link
            let rep = &mut self.replicas[ri];
            rep.link_free = rep.link_free.max(now) + dur;
            let prompt = self.reqs[id as usize].prompt;
            let at = check_clock(
                rep.link_free,
                "request",
                Some(id as usize),
                || {
                    format!(
                        "the transfer of its KV cache ({} tokens) between the pools",
                        u64::from(prompt) + 1
                    )
                },
                "check the cloud profile's [kv_transfer] bytes_per_token and the KV link's bandwidth",
            )?;
            lp.schedule(at, PRIO_CLOUD, Ev::KvArrive(id, d as u32))?;
        }
        Ok(())
    }

    /// Bridged requests leave their prefill instance for the decode replicas their caches reached.
    pub(super) fn hand_over(&mut self, handed: Vec<(u32, u32)>, lp: &mut EventQueue<Ev>) -> Result<()> {
        for (id, d) in handed {
            self.replicas[d as usize].waiting.push_back(id);
            self.try_start(d as usize, lp)?;
        }
        Ok(())
    }

    /// How long request `id`'s KV cache (its prompt and first token) takes on a prefill replica's link.
    fn transfer_time(&self, id: u32) -> Nanos {
        let seconds = self.cfg.kv_link().transfer_s(self.reqs[id as usize].prompt + 1);
        Nanos((seconds * 1e9).round() as i64)
    }

    /// Whether prefill replica `ri` bridges request `id`, planned for the pool: decodes it while its cache
    /// crosses (the bridge at the first token, [`crate::cost::ksite`]), because the pool's first decode
    /// gap would exceed the gap the instance's own iterations are cut to; it needs KV room for them.
    fn bridges_at_first_token(&self, ri: usize, id: u32, now: Nanos) -> bool {
        let objective = self.cfg.prefill_decode_gap_s;
        let rep = &self.replicas[ri];
        let c = &self.reqs[id as usize];
        if objective <= 0.0 || rep.kv_used + u64::from(c.quota) > self.cfg.kv_cache_tokens {
            return false;
        }
        let link = self.cfg.kv_link();
        let link_wait = (rep.link_free - now).max(Nanos::ZERO);
        let lands = now + link_wait + self.transfer_time(id);
        let d = &self.replicas[self.least_loaded(Role::Decode)];
        let (mut batch, mut context) = (1.0, f64::from(c.prompt) + 1.0);
        for &other in d.running.iter().chain(d.waiting.iter()) {
            let o = &self.reqs[other as usize];
            batch += 1.0;
            context += f64::from(o.prompt + o.generated);
        }
        let iteration = self.cfg.cost.iteration(0.0, 0.0, batch, context).total_s;
        // an idle replica with nothing on its way starts at once; a busy one ends its iteration first;
        // otherwise an iteration may be under way when the cache lands (one started by a cache ahead)
        let residual = if !d.busy && d.inbound == 0 {
            0.0
        } else if d.busy && lands <= d.busy_until {
            (d.busy_until - lands).as_secs()
        } else {
            iteration
        };
        let gap = pool_first_gap_s(&link, c.prompt, link_wait.as_secs(), residual, iteration);
        !within_objective(gap, objective)
    }
}

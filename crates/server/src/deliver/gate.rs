//! How many deliveries may be under way at once (DESIGN §5), the rule
//! both senders follow when `rules` says "send":
//! - per output: at most its `concurrency` across the sender (a group's
//!   pump, or the public sender), one when it is `ordered`. The due queue
//!   is read oldest first and an output's rows are skipped while it is
//!   full, so an ordered output's first attempts go out in event order; a
//!   retry waiting out its backoff is not due, so it holds nothing back.
//! - per agent (and the public sender's own slots): each output with work
//!   ready gets at least ⌊slots / outputs with work ready⌋ (at least one),
//!   so a dead destination, whose attempts hold their slots until they
//!   time out, never takes the slots of another. An output may use more
//!   than its share only while the slots left still cover every other
//!   ready output's share.

use std::collections::HashMap;
use std::time::Duration;

use model::{BucketId, Output, OutputId};
use tokio::time::Instant;

/// An output counts as having work ready for this long after it last had
/// a due delivery or one under way: long enough that a healthy output
/// idle between bursts keeps its share from a dead one (whose attempts
/// take up to the output timeout, 10 s by default, each).
const READY_FOR: Duration = Duration::from_secs(60);

/// What a sender has under way per output, and which outputs have work.
#[derive(Default)]
pub(crate) struct Gate {
    under_way: HashMap<OutputId, usize>,
    ready: HashMap<OutputId, (BucketId, Instant)>,
}

impl Gate {
    /// Notes that `output` has work ready now.
    pub(crate) fn note_ready(&mut self, output: &Output) {
        let now = Instant::now();
        self.ready
            .insert(output.id.clone(), (output.bucket.clone(), now));
        let under_way = &self.under_way;
        self.ready.retain(|id, (_, at)| {
            now.duration_since(*at) < READY_FOR || under_way.contains_key(id)
        });
    }

    /// Whether the output may have one more delivery under way.
    pub(crate) fn output_has_room(&self, output: &Output) -> bool {
        self.under_way.get(&output.id).copied().unwrap_or(0) < output.in_flight_limit()
    }

    /// How many of the output's deliveries are under way.
    pub(crate) fn under_way(&self, output: &OutputId) -> usize {
        self.under_way.get(output).copied().unwrap_or(0)
    }

    pub(crate) fn started(&mut self, output: &OutputId) {
        *self.under_way.entry(output.clone()).or_default() += 1;
    }

    pub(crate) fn finished(&mut self, output: &OutputId) {
        if let Some(n) = self.under_way.get_mut(output) {
            *n -= 1;
            if *n == 0 {
                self.under_way.remove(output);
            }
        }
    }

    /// Whether `slots` may take one more delivery of `output`: within its
    /// share, or leaving enough for every other ready output it serves
    /// (`serves` says which buckets the slots' owner takes).
    pub(crate) fn slots_admit(
        &self,
        slots: &Slots,
        output: &OutputId,
        serves: impl Fn(&BucketId) -> bool,
    ) -> bool {
        if slots.free() == 0 {
            return false;
        }
        let ready: Vec<&OutputId> = self
            .ready
            .iter()
            .filter(|(id, (bucket, _))| *id == output || serves(bucket))
            .map(|(id, _)| id)
            .collect();
        let share = (slots.max / ready.len().max(1)).max(1);
        if slots.of(output) < share {
            return true;
        }
        let owed: usize = ready
            .iter()
            .filter(|id| **id != output)
            .map(|id| share.saturating_sub(slots.of(id)))
            .sum();
        slots.free() > owed
    }
}

/// One agent's (or the public sender's) slots: its `max_in_flight` and
/// what each output holds of them.
pub(crate) struct Slots {
    max: usize,
    used: HashMap<OutputId, usize>,
    total: usize,
}

impl Slots {
    pub(crate) fn new(max: usize) -> Self {
        Slots {
            max,
            used: HashMap::new(),
            total: 0,
        }
    }

    pub(crate) fn free(&self) -> usize {
        self.max.saturating_sub(self.total)
    }

    fn of(&self, output: &OutputId) -> usize {
        self.used.get(output).copied().unwrap_or(0)
    }

    pub(crate) fn take(&mut self, output: &OutputId) {
        *self.used.entry(output.clone()).or_default() += 1;
        self.total += 1;
    }

    pub(crate) fn give_back(&mut self, output: &OutputId) {
        if let Some(n) = self.used.get_mut(output) {
            *n -= 1;
            self.total -= 1;
            if *n == 0 {
                self.used.remove(output);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::TenantId;

    fn output(bucket: &BucketId, concurrency: u32, ordered: bool) -> Output {
        Output {
            id: OutputId::generate(),
            tenant: TenantId::default_tenant(),
            bucket: bucket.clone(),
            url: "http://127.0.0.1:9/".into(),
            internal: true,
            timeout_ms: 1_000,
            headers: Default::default(),
            retry: Default::default(),
            concurrency,
            ordered,
            function_id: None,
            created_at: 0,
        }
    }

    #[test]
    fn an_output_never_exceeds_its_concurrency_and_ordered_means_one() {
        let bucket = BucketId::generate();
        let mut gate = Gate::default();
        let wide = output(&bucket, 3, false);
        let ordered = output(&bucket, 64, true);
        for _ in 0..3 {
            assert!(gate.output_has_room(&wide));
            gate.started(&wide.id);
        }
        assert!(!gate.output_has_room(&wide));
        gate.finished(&wide.id);
        assert!(gate.output_has_room(&wide));
        gate.started(&ordered.id);
        assert!(!gate.output_has_room(&ordered));
    }

    #[test]
    fn a_dead_output_keeps_only_its_share() {
        let bucket = BucketId::generate();
        let mut gate = Gate::default();
        let dead = output(&bucket, 16, false);
        let healthy = output(&bucket, 16, false);
        gate.note_ready(&dead);
        gate.note_ready(&healthy);
        let mut slots = Slots::new(16);
        let serves = |_: &BucketId| true;
        while gate.slots_admit(&slots, &dead.id, serves) {
            slots.take(&dead.id);
        }
        assert_eq!(slots.of(&dead.id), 8, "half of 16 with two outputs ready");
        for _ in 0..8 {
            assert!(gate.slots_admit(&slots, &healthy.id, serves));
            slots.take(&healthy.id);
        }
        assert_eq!(slots.free(), 0);
        // Alone, an output may take every slot.
        let mut alone = Gate::default();
        alone.note_ready(&dead);
        let mut slots = Slots::new(16);
        while alone.slots_admit(&slots, &dead.id, serves) {
            slots.take(&dead.id);
        }
        assert_eq!(slots.of(&dead.id), 16);
    }
}

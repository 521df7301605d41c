//! The remote writer's spool: events waiting for the server, oldest first,
//! each already serialized. Bounded: when full, the oldest goes (counted),
//! so a long outage costs its earliest events, never the process's memory.

use std::collections::VecDeque;

use crate::telemetry;

#[derive(Debug)]
pub(super) struct Spool {
    events: VecDeque<Vec<u8>>,
    capacity: usize,
}

impl Spool {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            events: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.events.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Appends `event`, dropping the oldest if the spool is full.
    pub(super) fn push(&mut self, event: Vec<u8>) {
        self.events.push_back(event);
        self.trim();
    }

    /// Takes the oldest events, at most `max_events` of them and (past the
    /// first) at most `max_bytes` of JSON together.
    pub(super) fn take(&mut self, max_events: usize, max_bytes: usize) -> Vec<Vec<u8>> {
        let mut batch = Vec::new();
        let mut bytes = 0;
        while batch.len() < max_events {
            let Some(next) = self.events.front() else {
                break;
            };
            if !batch.is_empty() && bytes + next.len() + 1 > max_bytes {
                break;
            }
            bytes += next.len() + 1;
            batch.extend(self.events.pop_front());
        }
        self.report();
        batch
    }

    /// Puts a batch that could not be delivered back in front, in order;
    /// if the spool filled meanwhile, the oldest events go.
    pub(super) fn put_back(&mut self, batch: Vec<Vec<u8>>) {
        for event in batch.into_iter().rev() {
            self.events.push_front(event);
        }
        self.trim();
    }

    fn trim(&mut self) {
        let over = self.events.len().saturating_sub(self.capacity);
        if over > 0 {
            self.events.drain(..over);
            telemetry::audit_dropped(telemetry::DROPPED_SPOOL_FULL, over as u64);
        }
        self.report();
    }

    fn report(&self) {
        telemetry::audit_spool_depth(self.events.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: u8) -> Vec<u8> {
        vec![n; 10]
    }

    #[test]
    fn a_full_spool_drops_its_oldest() {
        let mut spool = Spool::new(3);
        for n in 0..5 {
            spool.push(event(n));
        }
        assert_eq!(spool.take(10, 1000), [event(2), event(3), event(4)]);
    }

    #[test]
    fn batches_are_bounded_by_count_and_size_and_go_back_in_order() {
        let mut spool = Spool::new(10);
        for n in 0..6 {
            spool.push(event(n));
        }
        let first = spool.take(4, 1000);
        assert_eq!(first, [event(0), event(1), event(2), event(3)]);
        // Two events of 10 bytes and their separators: 22 bytes.
        assert_eq!(spool.take(10, 25), [event(4), event(5)]);
        assert!(spool.is_empty());
        spool.push(event(6));
        spool.put_back(first);
        assert_eq!(
            spool.take(10, 1000),
            [event(0), event(1), event(2), event(3), event(6)]
        );
        // A single event larger than the byte bound still goes alone.
        spool.push(vec![9; 100]);
        assert_eq!(spool.take(10, 25).len(), 1);
    }

    #[test]
    fn a_failed_batch_put_back_into_a_full_spool_loses_the_oldest() {
        let mut spool = Spool::new(3);
        spool.push(event(0));
        spool.push(event(1));
        let batch = spool.take(2, 1000);
        for n in 2..5 {
            spool.push(event(n));
        }
        spool.put_back(batch);
        assert_eq!(spool.len(), 3);
        assert_eq!(spool.take(10, 1000), [event(2), event(3), event(4)]);
    }
}

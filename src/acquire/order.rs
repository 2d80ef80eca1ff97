//! Puts records from many rings into one timestamp order.
//!
//! Each ring is drained in rounds. A record can be emitted once no ring can still deliver an older one.
//! perf's rule (its `FINISHED_ROUND`): after round N, everything stamped at or before the newest
//! timestamp seen in round N-1 is safe, because any record stamped that early was written before round N
//! began reading, so round N saw it.

use super::record::Record;

#[derive(Debug, Default)]
pub(crate) struct Reorder {
    pending: Vec<Record>,
    round_max: u64,
    previous_round_max: u64,
}

impl Reorder {
    pub(crate) fn push(&mut self, record: Record) {
        self.round_max = self.round_max.max(record.time());
        self.pending.push(record);
    }

    /// Ends a drain round: moves every record that is now safe to `out`, in time order. Returns the time up
    /// to which every record has been moved out. `read_to`: a time before which every record has been read
    /// (the round read every ring to its end, and began after that time), which makes records up to it safe
    /// at once rather than a round later.
    pub(crate) fn end_round(&mut self, out: &mut Vec<Record>, read_to: Option<u64>) -> u64 {
        let limit = self.previous_round_max.max(read_to.unwrap_or(0));
        self.previous_round_max = self.round_max;
        self.flush(Some(limit), out);
        limit
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Moves every record to `out`, in time order (the end of a session).
    pub(crate) fn flush_all(&mut self, out: &mut Vec<Record>) {
        self.flush(None, out);
    }

    fn flush(&mut self, limit: Option<u64>, out: &mut Vec<Record>) {
        // Stable: records of one ring with equal stamps keep their ring order (an exec's comm before its
        // mmaps).
        self.pending.sort_by_key(Record::time);
        let n = match limit {
            Some(limit) => self.pending.partition_point(|r| r.time() <= limit),
            None => self.pending.len(),
        };
        out.extend(self.pending.drain(..n));
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn lost(time: u64) -> Record {
        Record::Lost {
            time,
            count: 1,
            off_cpu: false,
        }
    }

    fn times(records: &[Record]) -> Vec<u64> {
        records.iter().map(Record::time).collect()
    }

    #[test]
    fn holds_records_until_every_ring_passed_them() {
        let mut r = Reorder::default();
        let mut out = vec![];
        // Round 1: ring A got to 10, ring B to 5.
        for t in [1, 10, 0, 5] {
            r.push(lost(t));
        }
        r.end_round(&mut out, None);
        assert_eq!(times(&out), vec![0]);
        // Round 2: ring B delivers a late 7.
        r.push(lost(7));
        r.push(lost(20));
        r.end_round(&mut out, None);
        assert_eq!(times(&out), vec![0, 1, 5, 7, 10]);
        r.flush_all(&mut out);
        assert_eq!(times(&out), vec![0, 1, 5, 7, 10, 20]);
        assert_eq!(r.len(), 0);
    }

    #[test]
    fn a_round_read_to_the_end_releases_what_was_stamped_before_it_began() {
        let mut r = Reorder::default();
        let mut out = vec![];
        // Every ring read to its end in a round that began after 6: nothing stamped up to 6 is to come.
        for t in [1, 10, 0, 5, 7] {
            r.push(lost(t));
        }
        assert_eq!(r.end_round(&mut out, Some(6)), 6);
        assert_eq!(times(&out), vec![0, 1, 5]);
        // The next round, not read to its end, still releases what the round before saw (up to 10).
        r.push(lost(8));
        r.end_round(&mut out, None);
        assert_eq!(times(&out), vec![0, 1, 5, 7, 8, 10]);
    }

    #[test]
    fn equal_stamps_keep_arrival_order() {
        let mut r = Reorder::default();
        r.push(Record::Throttle {
            time: 3,
            throttled: true,
        });
        r.push(lost(3));
        let mut out = vec![];
        r.flush_all(&mut out);
        assert!(matches!(out[0], Record::Throttle { .. }));
    }
}

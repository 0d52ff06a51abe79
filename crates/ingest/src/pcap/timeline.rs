//! Per-connection packet timelines: which TCP packets carried new payload, when.
//!
//! Independent of Zeek's bookkeeping on purpose: a timeline needs "new bytes per
//! packet" even where Zeek's sequence state gives up (resets, partial captures). Each
//! direction keeps the next expected sequence number; a packet's new payload is the
//! part beyond it. Pure ACKs carry none, retransmissions only old bytes, so neither
//! appears.

use relaytrace_model::{Direction, TimelinePacket};

/// Packets kept per timeline. A multi-gigabyte transfer has millions of segments;
/// past this bound the timeline stops growing (the count of dropped packets is
/// reported in `pcap-stats`) so one connection cannot exhaust memory.
pub(crate) const MAX_TIMELINE_PACKETS: usize = 1 << 20;

/// Timeline under construction. Directions are kept relative to the connection's
/// *first sender*, because Zeek may flip originator and responder later on; the
/// caller says at the end which side became the originator.
#[derive(Debug, Default)]
pub(crate) struct TimelineBuilder {
    /// (sent by the first sender, capture time, new payload bytes).
    packets: Vec<(bool, i64, u32)>,
    /// Next expected sequence number, per direction (first sender, other side).
    next_seq: [Option<u32>; 2],
    /// Packets not kept because of [`MAX_TIMELINE_PACKETS`].
    pub dropped: u64,
}

impl TimelineBuilder {
    /// Records one TCP segment sent by the first sender (`from_first`) or the other
    /// side, with sequence number `seq`, SYN flag and `payload_len` bytes.
    pub(crate) fn segment(
        &mut self,
        from_first: bool,
        ts_ns: i64,
        seq: u32,
        syn: bool,
        payload_len: usize,
    ) {
        let side = usize::from(!from_first);
        // SYN occupies one sequence number before the data (RFC 9293 §3.4).
        let data_seq = if syn { seq.wrapping_add(1) } else { seq };
        let len = u32::try_from(payload_len).unwrap_or(u32::MAX);
        let end = data_seq.wrapping_add(len);
        let next = *self.next_seq[side].get_or_insert(data_seq);
        if len == 0 {
            return;
        }
        // Serial-number arithmetic (RFC 1982): how far the segment's end lies beyond
        // what we have already seen.
        let advance = end.wrapping_sub(next) as i32;
        if advance <= 0 {
            return; // retransmission (or stale segment): nothing new
        }
        let new_bytes = (advance as u32).min(len);
        self.next_seq[side] = Some(end);
        if self.packets.len() < MAX_TIMELINE_PACKETS {
            self.packets.push((from_first, ts_ns, new_bytes));
        } else {
            self.dropped += 1;
        }
    }

    /// The packets with directions resolved; `first_is_orig` says whether the first
    /// sender ended up as the originator.
    pub(crate) fn finish(self, first_is_orig: bool) -> Vec<TimelinePacket> {
        self.packets
            .into_iter()
            .map(|(from_first, ts_ns, payload_bytes)| TimelinePacket {
                dir: if from_first == first_is_orig {
                    Direction::Orig
                } else {
                    Direction::Resp
                },
                ts_ns,
                payload_bytes,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_acks_and_retransmissions() {
        let mut t = TimelineBuilder::default();
        t.segment(true, 1, 1000, true, 0); // SYN, seq 1000: data starts at 1001
        t.segment(false, 2, 5000, true, 0); // SYN-ACK
        t.segment(true, 3, 1001, false, 0); // pure ACK
        t.segment(true, 4, 1001, false, 100); // 100 new bytes
        t.segment(true, 5, 1001, false, 100); // retransmission
        t.segment(true, 6, 1051, false, 100); // overlaps: 50 new bytes
        t.segment(false, 7, 5001, false, 10); // reply
        let got = t.finish(false); // the first sender was flipped to responder
        let want = vec![
            TimelinePacket {
                dir: Direction::Resp,
                ts_ns: 4,
                payload_bytes: 100,
            },
            TimelinePacket {
                dir: Direction::Resp,
                ts_ns: 6,
                payload_bytes: 50,
            },
            TimelinePacket {
                dir: Direction::Orig,
                ts_ns: 7,
                payload_bytes: 10,
            },
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn handles_sequence_wrap() {
        let mut t = TimelineBuilder::default();
        t.segment(true, 1, u32::MAX - 4, false, 10); // wraps past zero
        t.segment(true, 2, 5, false, 10);
        let got = t.finish(true);
        assert_eq!(
            got.iter().map(|p| p.payload_bytes).collect::<Vec<_>>(),
            vec![10, 10]
        );
    }
}

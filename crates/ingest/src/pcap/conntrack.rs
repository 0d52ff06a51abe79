//! The connection table, with Zeek's connection semantics.
//!
//! Everything here follows Zeek 9.x (`zeek/zeek`, read for this module; no code
//! copied): the session key and ICMP "ports" (`ICMP.cc` `ICMP4_counterpart`,
//! `ICMP6_counterpart`), originator choice and flips (`IPBasedAnalyzer::NewConn`,
//! `TCPAnalyzer::WantConnection`, `UDPAnalyzer::WantConnection`, the SYN/SYN-ACK
//! reversal in `TCPSessionAdapter::UpdateInactiveState`, and PR #2191's flip of
//! connections that start with a SYN-ACK followed by an ACK or data), the TCP
//! endpoint state machine and history letters (`TCPSessionAdapter::Process`,
//! `update_history`, `TCP_Endpoint::Size`), content gaps and `missed_bytes`
//! (`TCP_Reassembler::Undelivered`/`AckReceived`, reported only while both sides are
//! established or cleanly closing), connection reuse (`TCPSessionAdapter::IsReuse`),
//! the timers that end a connection (attempt, expire, close-delay, inactivity) with
//! their `init-bare.zeek` defaults, and `conn_state` (`base/protocols/conn/main.zeek`).
//!
//! Timers only ever affect their own connection, so they are evaluated lazily: before
//! a packet is applied to a connection, that connection's due timers fire (Zeek fires
//! timers due at or before a packet's time before processing it). A periodic sweep
//! fires everyone's timers so idle connections leave the table.

use std::collections::{BTreeMap, BTreeSet};

use rustc_hash::FxHashMap as HashMap;
use std::net::{IpAddr, Ipv4Addr};

use relaytrace_model::{Conn, PacketTimeline, Proto, TimelinePacket};

use super::ip::IpPacket;
use super::timeline::TimelineBuilder;
use super::transport::{IcmpSeg, Segment, TcpSeg, UdpSeg, ACK, FIN, RST, SYN};
use crate::{IngestError, Sink};

const SEC: i64 = 1_000_000_000;
/// Zeek `tcp_inactivity_timeout` default: an established TCP connection idle this
/// long is over.
const TCP_INACTIVITY_NS: i64 = 300 * SEC;
/// Zeek `udp_inactivity_timeout` default; Zeek also uses it for TCP connections
/// until their handshake state is left.
const UDP_INACTIVITY_NS: i64 = 60 * SEC;
/// Zeek `icmp_inactivity_timeout` default.
const ICMP_INACTIVITY_NS: i64 = 60 * SEC;
/// Zeek `unknown_ip_inactivity_timeout` default (other IP protocols).
const OTHER_INACTIVITY_NS: i64 = 60 * SEC;
/// Zeek `tcp_SYN_timeout`: first check of the expire timer.
const TCP_SYN_TIMEOUT_NS: i64 = 5 * SEC;
/// Zeek `tcp_session_timer`: period of the expire timer.
const TCP_SESSION_TIMER_NS: i64 = 6 * SEC;
/// Zeek `tcp_connection_linger`: quiet time before a closing connection expires.
const TCP_CONNECTION_LINGER_NS: i64 = 5 * SEC;
/// Zeek `tcp_attempt_delay`: an unanswered SYN ends the connection after this.
const TCP_ATTEMPT_DELAY_NS: i64 = 5 * SEC;
/// Zeek `tcp_close_delay`: a fully closed connection is removed this long after
/// its last productive packet.
const TCP_CLOSE_DELAY_NS: i64 = 5 * SEC;
/// Zeek `tcp_max_initial_window` and `tcp_max_above_hole_without_any_acks`.
const TCP_MAX_UNACKED_BYTES: u64 = 16_384;
/// Zeek `tcp_excessive_data_without_further_acks`.
const TCP_EXCESSIVE_DATA_BYTES: u64 = 10 * 1024 * 1024;
/// Zeek's `TOO_LARGE_SEQ_DELTA`: SYN/RST sequence jumps beyond this are not trusted.
const TOO_LARGE_SEQ_DELTA: i32 = 1_048_576;

/// Hard cap on live connections. Timeouts alone do not bound the table: a scan or
/// a flood of spoofed sources creates connections faster than a minute of
/// inactivity removes them. At the cap the least recently active eighth is ended
/// early (and counted as `evicted_connections`); about 1 KiB each, this is ~0.5 GiB.
const MAX_CONNECTIONS: usize = 500_000;
/// Finished connections are held back so output comes out in start-time order; a
/// connection open for the whole capture would otherwise hold back everything, so
/// beyond this many the oldest are released anyway.
const MAX_HELD_CONNECTIONS: usize = 100_000;
/// Trace time between sweeps of the whole table for due timers.
const SWEEP_INTERVAL_NS: i64 = 10 * SEC;
/// History strings stop growing here. Zeek's letters only repeat on new sequence
/// numbers or in logarithmic steps, so real histories stay short; a hostile stream
/// of FINs with ever new sequence numbers would not.
const MAX_HISTORY_LETTERS: usize = 256;

/// Ports Zeek considers "likely server ports" (`likely_server_ports`: the ports the
/// analyzers of Zeek's default `base/protocols` scripts register). Used only to choose
/// the originator when the first packet does not say (no SYN, or UDP).
const LIKELY_TCP_PORTS: &[u16] = &[
    21, 22, 25, 53, 80, 81, 88, 110, 135, 139, 143, 389, 443, 445, 502, 563, 585, 587, 614, 631,
    636, 750, 989, 990, 992, 993, 995, 1080, 1434, 1883, 2811, 3128, 3268, 3306, 3389, 5222, 5223,
    5269, 5432, 6666, 6667, 6668, 6669, 8000, 8080, 8888, 20000,
];
/// UDP counterpart of [`LIKELY_TCP_PORTS`].
const LIKELY_UDP_PORTS: &[u16] = &[
    53, 67, 88, 123, 137, 161, 162, 443, 514, 750, 1812, 2123, 2152, 3389, 3544, 4789, 5060, 5072,
    5353, 5355, 6081, 20000,
];

/// Connection key: protocol and the two endpoints in a fixed order, so both
/// directions find the same connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    proto: u8,
    lo: (IpAddr, u16),
    hi: (IpAddr, u16),
}

impl Key {
    fn new(proto: u8, a: (IpAddr, u16), b: (IpAddr, u16)) -> Self {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        Key { proto, lo, hi }
    }
}

/// The connection history string with Zeek's "record once" bookkeeping.
#[derive(Debug, Default)]
struct History {
    letters: String,
    seen: u32,
}

impl History {
    fn add(&mut self, code: char) {
        if self.letters.len() < MAX_HISTORY_LETTERS {
            self.letters.push(code);
        }
    }

    /// Records `code` the first time `mask` is seen; returns whether it had been
    /// seen before (`Session::CheckHistory`), which is when repeatable letters
    /// (`S`, `H`, `F`, `R`) are added again for a new sequence number.
    fn check(&mut self, mask: u32, code: char) -> bool {
        if self.seen & mask == 0 {
            self.seen |= mask;
            self.add(code);
            false
        } else {
            true
        }
    }
}

/// Zeek's logarithmic letters (`Connection::ScaledHistoryEntry`): recorded at the
/// 1st, 10th, 100th... occurrence.
#[derive(Debug, Clone, Copy)]
struct Scaled {
    count: u32,
    threshold: u32,
}

impl Default for Scaled {
    fn default() -> Self {
        Scaled {
            count: 0,
            threshold: 1,
        }
    }
}

impl Scaled {
    fn hit(&mut self, hist: &mut History, code: char) {
        self.count = self.count.saturating_add(1);
        if self.count == self.threshold {
            hist.add(code);
            match self.threshold.checked_mul(10) {
                Some(t) => self.threshold = t,
                None => self.count = 0,
            }
        }
    }
}

/// Zeek's TCP endpoint states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    Inactive,
    SynSent,
    SynAckSent,
    Partial,
    Established,
    Closed,
    Reset,
}

fn is_handshake(s: St) -> bool {
    matches!(s, St::Inactive | St::SynSent | St::SynAckSent)
}

/// History bits per endpoint (responder's are shifted left by 16).
const HIST_SYN: u32 = 0x1;
const HIST_FIN: u32 = 0x2;
const HIST_RST: u32 = 0x4;
const HIST_FIN_RST: u32 = 0x8;
const HIST_DATA: u32 = 0x10;
const HIST_ACK: u32 = 0x20;
const HIST_MULTI_FLAG: u32 = 0x40;

fn seq_delta(a: u32, b: u32) -> i32 {
    a.wrapping_sub(b) as i32
}

fn full_seq(seq: u32, wraps: u32) -> u64 {
    (u64::from(wraps) << 32) | u64::from(seq)
}

/// What the stream reassembler would know, without the bytes: which relative
/// sequence ranges arrived, how far delivery got, where acks trimmed.
#[derive(Debug)]
struct Reassembly {
    last_reassem: u64,
    trim: u64,
    /// Received, not yet trimmed ranges: start -> end (exclusive), non-overlapping.
    blocks: BTreeMap<u64, u64>,
    skip: bool,
    did_eof: bool,
}

impl Default for Reassembly {
    fn default() -> Self {
        Reassembly {
            last_reassem: 1,
            trim: 1,
            blocks: BTreeMap::new(),
            skip: false,
            did_eof: false,
        }
    }
}

impl Reassembly {
    fn insert(&mut self, mut start: u64, mut end: u64) {
        // Merge with every overlapping or adjacent range.
        let touching: Vec<(u64, u64)> = self
            .blocks
            .range(..=end)
            .rev()
            .take_while(|(_, &e)| e >= start)
            .map(|(&s, &e)| (s, e))
            .collect();
        for (s, e) in touching {
            self.blocks.remove(&s);
            start = start.min(s);
            end = end.max(e);
        }
        self.blocks.insert(start, end);
    }

    fn data_size(&self) -> u64 {
        self.blocks.iter().map(|(s, e)| e - s).sum()
    }

    fn has_undelivered(&self) -> bool {
        self.blocks
            .iter()
            .next_back()
            .is_some_and(|(_, &e)| e > self.last_reassem)
    }

    /// Drops everything below `seq`.
    fn trim_below(&mut self, seq: u64) {
        let keep = self.blocks.split_off(&seq);
        let straddling = self
            .blocks
            .iter()
            .next_back()
            .filter(|(_, &e)| e > seq)
            .map(|(_, &e)| e);
        self.blocks = keep;
        if let Some(e) = straddling {
            self.insert(seq, e);
        }
        self.trim = self.trim.max(seq);
    }
}

#[derive(Debug)]
struct Endpoint {
    state: St,
    prev_state: St,
    start_seq: u32,
    last_seq: u32,
    ack_seq: u32,
    seq_wraps: u32,
    ack_wraps: u32,
    fin_cnt: u32,
    fin_seq: u64,
    did_close: bool,
    hist_last_syn: u64,
    hist_last_fin: u64,
    hist_last_rst: u64,
    rxmt: Scaled,
    win0: Scaled,
    gap: Scaled,
    chk: Scaled,
    reasm: Reassembly,
}

impl Default for Endpoint {
    fn default() -> Self {
        Endpoint {
            state: St::Inactive,
            prev_state: St::Inactive,
            start_seq: 0,
            last_seq: 0,
            ack_seq: 0,
            seq_wraps: 0,
            ack_wraps: 0,
            fin_cnt: 0,
            fin_seq: 0,
            did_close: false,
            hist_last_syn: 0,
            hist_last_fin: 0,
            hist_last_rst: 0,
            rxmt: Scaled::default(),
            win0: Scaled::default(),
            gap: Scaled::default(),
            chk: Scaled::default(),
            reasm: Reassembly::default(),
        }
    }
}

impl Endpoint {
    fn to_relative(&self, seq: u32, wraps: u32) -> u64 {
        full_seq(seq, wraps).wrapping_sub(u64::from(self.start_seq))
    }

    fn update_last_seq(&mut self, seq: u32) {
        if seq < self.last_seq {
            self.seq_wraps += 1;
        }
        self.last_seq = seq;
    }

    fn update_ack_seq(&mut self, seq: u32) {
        if seq < self.ack_seq {
            self.ack_wraps += 1;
        }
        self.ack_seq = seq;
    }

    fn init_seqs(&mut self, start: u32, last: u32) {
        self.start_seq = start;
        self.ack_seq = start;
        self.last_seq = last;
    }

    fn no_data_acked(&self) -> bool {
        let ack = full_seq(self.ack_seq, self.ack_wraps);
        let start = u64::from(self.start_seq);
        ack == start || ack == start + 1
    }

    fn is_clean(&self) -> bool {
        self.state == St::Established
            || (self.state == St::Closed && self.prev_state == St::Established)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    Expire,
    Attempt,
    ConnDelete,
}

#[derive(Debug)]
struct Tcp {
    /// Index 0 is always the current originator.
    ep: [Endpoint; 2],
    is_active: bool,
    close_deferred: bool,
    deferred_gen_event: bool,
    first_packet_seen: [bool; 2],
    is_partial: bool,
    timers: Vec<(i64, Timer)>,
}

/// Per-connection values the TCP logic updates besides its endpoints.
struct Shared<'a> {
    hist: &'a mut History,
    last_ns: &'a mut i64,
    inactivity_ns: &'a mut i64,
    missed_bytes: &'a mut u64,
}

impl Tcp {
    fn new(start_ns: i64) -> Self {
        Tcp {
            ep: [Endpoint::default(), Endpoint::default()],
            is_active: true,
            close_deferred: false,
            deferred_gen_event: false,
            first_packet_seen: [false; 2],
            is_partial: false,
            timers: vec![(start_ns + TCP_SYN_TIMEOUT_NS, Timer::Expire)],
        }
    }

    fn set_state(&mut self, e: usize, new: St, sh: &mut Shared<'_>) {
        let old = self.ep[e].state;
        if new == old {
            return;
        }
        // Leaving the handshake switches to the (longer) TCP inactivity timeout.
        if !is_handshake(new) && is_handshake(old) && is_handshake(self.ep[1 - e].state) {
            *sh.inactivity_ns = TCP_INACTIVITY_NS;
        }
        self.ep[e].prev_state = old;
        self.ep[e].state = new;
    }

    /// Swaps originator and responder. Zeek marks the history with `^`; the letters
    /// already recorded change case so that they keep naming the same host.
    fn flip(&mut self, hist: &mut History) {
        self.ep.swap(0, 1);
        self.first_packet_seen.swap(0, 1);
        self.is_partial = false;
        flip_history(hist, true);
    }

    /// `TCP_Endpoint::Size`: payload bytes from the sequence span.
    fn size(&self, e: usize) -> u64 {
        let ep = &self.ep[e];
        if ep.prev_state == St::SynSent
            && ep.state == St::Reset
            && self.ep[1 - e].state == St::Inactive
            && !ep.no_data_acked()
        {
            return 0;
        }
        let last = full_seq(ep.last_seq, ep.seq_wraps);
        let ack = full_seq(ep.ack_seq, ep.ack_wraps);
        let start = u64::from(ep.start_seq);
        let mut size = if last > ack {
            last.wrapping_sub(start)
        } else {
            ack.wrapping_sub(start)
        };
        // Neither the SYN's nor the FIN's sequence number is payload.
        size = size.saturating_sub(1);
        if ep.fin_cnt > 0 {
            size = size.saturating_sub(1);
        }
        size
    }

    fn check_history(&self, hist: &mut History, e: usize, mask: u32, code: char) -> bool {
        if e == 0 {
            hist.check(mask, code)
        } else {
            hist.check(mask << 16, code.to_ascii_lowercase())
        }
    }

    fn add_history(hist: &mut History, e: usize, code: char) {
        hist.add(if e == 0 {
            code
        } else {
            code.to_ascii_lowercase()
        });
    }

    /// One TCP segment (`TCPSessionAdapter::Process`). Returns true when the segment
    /// flipped the connection's roles (a SYN seen after its SYN-ACK).
    fn process(&mut self, sh: &mut Shared<'_>, t: i64, is_orig: bool, seg: &TcpSeg) -> bool {
        let (mut e, mut p) = if is_orig { (0, 1) } else { (1, 0) };
        let flags = seg.flags;
        let (syn, fin, rst, ack) = (
            flags & SYN != 0,
            flags & FIN != 0,
            flags & RST != 0,
            flags & ACK != 0,
        );
        let len = seg.payload_len;
        let mut flipped = false;

        // SetPartialStatus.
        if e == 0 {
            if !self.first_packet_seen[0] {
                self.is_partial = !syn || ack;
            }
        } else if !self.first_packet_seen[1] && !self.is_partial {
            self.is_partial = !syn;
        }

        let mut seg_len = len as i64;
        if syn {
            seg_len += 1;
        }
        if fin {
            seg_len += 1;
        }
        if rst {
            seg_len -= len as i64;
        }
        let base_seq = seg.seq;
        let seq_one_past = base_seq.wrapping_add(seg_len as u32);
        self.init_endpoint(e, syn, base_seq, seq_one_past);

        let (rel_seq, seq_underflow) = {
            let ep = &self.ep[e];
            relative_seq(ep, base_seq, ep.last_seq, ep.seq_wraps)
        };
        self.update_history(sh.hist, e, flags, rel_seq, len as u64);

        // update_window: only the zero-window letter matters for conn.log.
        if seg.window == 0
            && !rst
            && self.ep[p].state != St::Closed
            && self.ep[e].state != St::Reset
        {
            let code = if e == 0 { 'W' } else { 'w' };
            self.ep[e].win0.hit(sh.hist, code);
        }

        if !(self.ep[0].did_close && self.ep[1].did_close) {
            *sh.last_ns = t;
        }
        if fin {
            self.ep[e].fin_cnt += 1;
            self.ep[e].fin_seq = rel_seq.wrapping_add(seg_len as u64);
        }

        let mut rel_ack = 0u64;
        if ack {
            if self.ep[p].state == St::Inactive {
                rel_ack = 1;
                let start = seg.ack.wrapping_sub(1);
                self.ep[p].init_seqs(start, start);
            } else {
                let peer = &self.ep[p];
                let (r, underflow) = relative_seq(peer, seg.ack, peer.ack_seq, peer.ack_wraps);
                if underflow {
                    rel_ack = 0;
                } else {
                    rel_ack = r;
                    if !rst {
                        let delta = seq_delta(seg.ack, self.ep[p].ack_seq);
                        if !(seg.ack == 0 && delta > TOO_LARGE_SEQ_DELTA) && delta > 0 {
                            self.ep[p].update_ack_seq(seg.ack);
                        }
                    }
                }
            }
        }

        // update_last_seq.
        {
            let ep = &mut self.ep[e];
            let delta_last = seq_delta(seq_one_past, ep.last_seq);
            if (syn || rst) && !(-TOO_LARGE_SEQ_DELTA..=TOO_LARGE_SEQ_DELTA).contains(&delta_last) {
                // Not trusted.
            } else if fin && ep.last_seq == ep.start_seq.wrapping_add(1) {
                ep.update_last_seq(seq_one_past);
            } else if ep.state == St::Reset {
                // Sequence numbers after a reset are not trusted.
            } else if delta_last > 0 {
                ep.update_last_seq(seq_one_past);
            } else if len > 0 {
                let code = if e == 0 { 'T' } else { 't' };
                ep.rxmt.hit(sh.hist, code);
            }
        }

        let (do_close, gen_event, flip_now) =
            self.update_state_machine(sh, t, e, base_seq, len, flags);
        if flip_now {
            self.flip(sh.hist);
            std::mem::swap(&mut e, &mut p);
            flipped = true;
        }

        if ack {
            self.ack_received(sh, p, rel_ack);
        }

        // CheckPIA_FirstPacket.
        self.first_packet_seen[e] = true;

        let rel_data_seq = if syn {
            rel_seq.wrapping_add(1)
        } else {
            rel_seq
        };
        // Zeek hands the payload to its reassembler only when it was captured whole.
        if len > 0 && !rst && !seq_underflow && seg.captured_len >= len {
            self.data_sent(sh, e, rel_data_seq, len as u64);
        }
        self.check_eof(sh, e);
        if do_close {
            self.connection_closed(sh, e, gen_event);
        }
        flipped
    }

    fn init_endpoint(&mut self, e: usize, syn: bool, first: u32, last: u32) {
        let ep = &mut self.ep[e];
        match ep.state {
            St::Inactive => {
                if syn {
                    ep.init_seqs(first, last);
                } else {
                    // Partial connection: number as though a SYN had been seen.
                    ep.init_seqs(first.wrapping_sub(1), first);
                }
            }
            St::SynSent | St::SynAckSent => {
                if syn && first != ep.start_seq {
                    ep.init_seqs(first, last);
                }
            }
            St::Established | St::Partial => {
                if syn {
                    ep.init_seqs(first, last);
                }
            }
            St::Reset => {
                if syn && ep.prev_state == St::Inactive {
                    ep.init_seqs(first, last);
                }
            }
            St::Closed => {}
        }
    }

    fn update_history(&mut self, hist: &mut History, e: usize, flags: u8, rel_seq: u64, len: u64) {
        let (syn, fin, rst, ack) = (
            flags & SYN != 0,
            flags & FIN != 0,
            flags & RST != 0,
            flags & ACK != 0,
        );
        let bits = u8::from(syn) + u8::from(fin) + u8::from(rst);
        if bits > 1 {
            if fin && rst {
                self.check_history(hist, e, HIST_FIN_RST, 'I');
            } else {
                self.check_history(hist, e, HIST_MULTI_FLAG, 'Q');
            }
        } else if bits == 1 {
            if syn {
                let code = if ack { 'H' } else { 'S' };
                if self.check_history(hist, e, HIST_SYN, code)
                    && rel_seq != self.ep[e].hist_last_syn
                {
                    Self::add_history(hist, e, code);
                }
                self.ep[e].hist_last_syn = rel_seq;
            }
            if fin {
                let at = rel_seq.wrapping_add(len);
                if self.check_history(hist, e, HIST_FIN, 'F') && at != self.ep[e].hist_last_fin {
                    Self::add_history(hist, e, 'F');
                }
                self.ep[e].hist_last_fin = at;
            }
            if rst {
                if self.check_history(hist, e, HIST_RST, 'R') && rel_seq != self.ep[e].hist_last_rst
                {
                    Self::add_history(hist, e, 'R');
                }
                self.ep[e].hist_last_rst = rel_seq;
            }
        } else if len > 0 {
            self.check_history(hist, e, HIST_DATA, 'D');
        } else if ack {
            self.check_history(hist, e, HIST_ACK, 'A');
        }
    }

    /// `UpdateStateMachine`; returns (do_close, gen_event, flip roles now).
    fn update_state_machine(
        &mut self,
        sh: &mut Shared<'_>,
        t: i64,
        e: usize,
        base_seq: u32,
        len: usize,
        flags: u8,
    ) -> (bool, bool, bool) {
        let p = 1 - e;
        let is_orig = e == 0;
        let (syn, fin, rst, ack) = (
            flags & SYN != 0,
            flags & FIN != 0,
            flags & RST != 0,
            flags & ACK != 0,
        );
        let mut do_close = false;
        let mut gen_event = false;
        let mut flip = false;
        match self.ep[e].state {
            St::Inactive => {
                if syn {
                    if is_orig {
                        let new = if ack { St::SynAckSent } else { St::SynSent };
                        self.set_state(e, new, sh);
                        self.timers.push((t + TCP_ATTEMPT_DELAY_NS, Timer::Attempt));
                    } else {
                        if !ack
                            && self.ep[p].state == St::SynAckSent
                            && base_seq == self.ep[e].start_seq
                        {
                            // SYN/SYN-ACK reversal: the SYN-ACK was seen first.
                            // After the flip `e` is the originator; the peer (the
                            // SYN-ACK sender) is established.
                            flip = true;
                            self.set_state(p, St::Established, sh);
                        }
                        if self.ep[p].state == St::SynSent {
                            self.set_state(p, St::Established, sh);
                        }
                        self.set_state(e, St::Established, sh);
                    }
                }
                if fin {
                    self.set_state(e, St::Closed, sh);
                    do_close = true;
                    gen_event = true;
                }
                if rst {
                    self.set_state(e, St::Reset, sh);
                    let is_reject = if is_orig {
                        self.ep[p].state == St::Established
                    } else {
                        matches!(self.ep[p].state, St::SynSent | St::SynAckSent)
                    };
                    do_close = true;
                    gen_event = !is_reject;
                }
                if self.ep[e].state == St::Inactive {
                    if !is_orig && len == 0 && self.ep[0].state == St::SynSent {
                        // An ACK of the SYN before the SYN-ACK: not a partial connection.
                    } else if ack && self.ep[p].state == St::Established {
                        self.set_state(e, St::Established, sh);
                        self.is_partial = false;
                    } else {
                        self.set_state(e, St::Partial, sh);
                    }
                }
            }
            St::SynSent | St::SynAckSent => {
                if fin {
                    self.set_state(e, St::Closed, sh);
                    do_close = true;
                    gen_event = true;
                }
                if rst {
                    self.set_state(e, St::Reset, sh);
                    self.is_active = false; // ConnectionReset
                    do_close = true;
                }
            }
            St::Established | St::Partial => {
                if syn
                    && self.ep[e].state == St::Partial
                    && self.ep[p].state == St::Inactive
                    && !ack
                {
                    self.set_state(e, St::SynSent, sh);
                }
                if fin && !rst {
                    self.set_state(e, St::Closed, sh);
                    if self.ep[p].state == St::Reset && self.ep[p].prev_state == St::Closed {
                        self.set_state(p, St::Closed, sh);
                    }
                    do_close = true;
                    gen_event = true;
                }
                if rst {
                    self.set_state(e, St::Reset, sh);
                    do_close = true;
                    if self.ep[p].state != St::Reset || self.ep[p].prev_state != St::Established {
                        self.is_active = false; // ConnectionReset
                    }
                }
            }
            St::Closed => {
                if rst && self.ep[p].state != St::Closed {
                    self.set_state(e, St::Reset, sh);
                    if !self.ep[e].did_close {
                        do_close = true;
                    }
                }
            }
            St::Reset => {}
        }
        (do_close, gen_event, flip)
    }

    fn ack_received(&mut self, sh: &mut Shared<'_>, e: usize, seq: u64) {
        let ep = &self.ep[e];
        let mut seq = seq;
        if ep.fin_cnt > 0 && seq >= ep.fin_seq {
            seq = ep.fin_seq.saturating_sub(1);
        }
        if seq <= ep.reasm.trim {
            return;
        }
        self.trim_to_seq(sh, e, seq);
        self.check_eof(sh, e);
    }

    fn trim_to_seq(&mut self, sh: &mut Shared<'_>, e: usize, seq: u64) {
        if seq > self.ep[e].reasm.last_reassem {
            self.undelivered(sh, e, seq);
        }
        self.ep[e].reasm.trim_below(seq);
    }

    /// `TCP_Reassembler::Undelivered`: the peer acknowledged data up to `up_to` that
    /// we never saw; report the holes as content gaps.
    fn undelivered(&mut self, sh: &mut Shared<'_>, e: usize, up_to: u64) {
        if up_to <= 2 && self.is_partial {
            // The faked-up initial sequence number of a partial connection.
            return;
        }
        if up_to <= self.ep[e].reasm.last_reassem {
            return;
        }
        if !self.ep[e].reasm.skip {
            // A block may end past `up_to`; stop there (an empty or reversed range
            // would panic, as fuzzing found).
            while self.ep[e].reasm.last_reassem < up_to {
                let r = &self.ep[e].reasm;
                let next = r
                    .blocks
                    .range(r.last_reassem..up_to)
                    .next()
                    .map(|(&s, &end)| (s, end));
                let Some((start, end)) = next else { break };
                let gap_at = self.ep[e].reasm.last_reassem;
                self.gap(sh, e, start - gap_at);
                self.ep[e].reasm.last_reassem = end;
            }
            let last = self.ep[e].reasm.last_reassem;
            if up_to > last {
                self.gap(sh, e, up_to - last);
            }
        }
        let r = &mut self.ep[e].reasm;
        if up_to > r.last_reassem {
            r.last_reassem = up_to;
        }
    }

    fn gap(&mut self, sh: &mut Shared<'_>, e: usize, len: u64) {
        if len == 0 {
            return;
        }
        if self.ep[e].is_clean() && self.ep[1 - e].is_clean() {
            let code = if e == 0 { 'G' } else { 'g' };
            self.ep[e].gap.hit(sh.hist, code);
            *sh.missed_bytes = sh.missed_bytes.saturating_add(len);
        }
    }

    /// `TCP_Reassembler::DataSent`.
    fn data_sent(&mut self, sh: &mut Shared<'_>, e: usize, seq: u64, len: u64) {
        if self.ep[e].reasm.skip {
            return;
        }
        let ack = {
            let ep = &self.ep[e];
            ep.to_relative(ep.ack_seq, ep.ack_wraps)
        };
        let mut seq = seq;
        let upper = seq.saturating_add(len);
        if seq < ack {
            if upper <= ack {
                return;
            }
            seq = ack;
        }
        // NewBlock.
        let r = &mut self.ep[e].reasm;
        if upper > r.trim {
            let start = seq.max(r.trim);
            r.insert(start, upper);
            // BlockInserted: deliver if the new data reaches the delivery point.
            let reach = r
                .blocks
                .range(..=r.last_reassem)
                .next_back()
                .filter(|(_, &end)| end > r.last_reassem)
                .map(|(_, &end)| end);
            if let Some(end) = reach {
                if start <= r.last_reassem {
                    r.last_reassem = end;
                    if self.ep[e].no_data_acked() && self.size(e) > TCP_MAX_UNACKED_BYTES {
                        let to = self.ep[e].reasm.last_reassem;
                        self.trim_to_seq(sh, e, to);
                    }
                }
            }
        }
        let ep = &mut self.ep[e];
        let undelivered = ep
            .reasm
            .blocks
            .iter()
            .next_back()
            .map_or(0, |(_, &end)| end.saturating_sub(ep.reasm.last_reassem));
        if ep.no_data_acked() && undelivered > TCP_MAX_UNACKED_BYTES {
            ep.reasm.blocks.clear();
            ep.reasm.skip = true;
        }
        if ep.reasm.data_size() > TCP_EXCESSIVE_DATA_BYTES {
            ep.reasm.blocks.clear();
            ep.reasm.skip = true;
        }
    }

    fn data_pending(&self, e: usize) -> bool {
        let ep = &self.ep[e];
        if ep.reasm.skip {
            return false;
        }
        let delivered = u64::from(ep.start_seq).wrapping_add(ep.reasm.last_reassem);
        let last = full_seq(ep.last_seq, ep.seq_wraps);
        if last < delivered {
            return false;
        }
        if delivered != last.wrapping_sub(1) && delivered != last {
            return true;
        }
        ep.state != St::Reset && self.ep[1 - e].reasm.has_undelivered()
    }

    fn check_eof(&mut self, sh: &mut Shared<'_>, e: usize) {
        let ep = &self.ep[e];
        if !ep.reasm.did_eof
            && (ep.fin_cnt > 0 || matches!(ep.state, St::Closed | St::Reset))
            && !self.data_pending(e)
        {
            self.ep[e].reasm.did_eof = true;
            if self.close_deferred {
                let gen = self.deferred_gen_event;
                self.connection_closed(sh, e, gen);
                self.close_deferred = false;
            }
        }
    }

    fn connection_closed(&mut self, sh: &mut Shared<'_>, e: usize, gen_event: bool) {
        let p = 1 - e;
        if self.data_pending(e) {
            self.close_deferred = true;
            if !self.deferred_gen_event {
                self.deferred_gen_event = gen_event;
            }
            return;
        }
        self.close_deferred = false;
        if self.ep[e].did_close {
            return;
        }
        self.ep[e].did_close = true;
        let complete = self.ep[e].state == St::Reset
            || self.ep[p].did_close
            || self.ep[p].state == St::Inactive;
        if complete {
            if self.ep[e].prev_state != St::Inactive || self.ep[p].state != St::Inactive {
                let mut gen = gen_event;
                if self.deferred_gen_event {
                    gen = true;
                    self.deferred_gen_event = false;
                }
                if gen {
                    self.is_active = false; // ConnectionFinished
                }
            }
            self.timers.clear();
            self.timers
                .push((*sh.last_ns + TCP_CLOSE_DELAY_NS, Timer::ConnDelete));
        } else if self.ep[e].prev_state != St::Inactive {
            self.timers
                .push((*sh.last_ns + TCP_SESSION_TIMER_NS, Timer::Expire));
        }
    }

    /// `TCPSessionAdapter::IsReuse`: does this SYN start a new connection on the
    /// same five-tuple?
    fn is_reuse(&self, seg: &TcpSeg) -> bool {
        if seg.flags & SYN == 0 {
            return false;
        }
        let mut conn_orig = 0;
        if seg.flags & ACK != 0 {
            if self.ep[0].state != St::Inactive {
                return false;
            }
            conn_orig = 1;
        }
        let closed = self.ep[0].did_close || self.ep[1].did_close;
        if !closed {
            if seg.seq == self.ep[conn_orig].start_seq {
                return false;
            }
            if seg.flags & ACK == 0
                && self.ep[conn_orig].state == St::SynAckSent
                && self.ep[1].state == St::Inactive
                && seg.seq == self.ep[1].start_seq
            {
                return false;
            }
        }
        true
    }
}

/// `get_relative_seq`: sequence number relative to the endpoint's start, and whether
/// it fell before the start.
fn relative_seq(ep: &Endpoint, cur: u32, last: u32, wraps: u32) -> (u64, bool) {
    let delta = seq_delta(cur, last);
    let mut wraps = wraps;
    if delta < 0 {
        if wraps > 0 && cur > last {
            wraps -= 1;
        }
    } else if delta > 0 && cur < last {
        wraps += 1;
    }
    if wraps == 0 {
        let d = seq_delta(cur, ep.start_seq);
        return (i64::from(d) as u64, d < 0);
    }
    (ep.to_relative(cur, wraps), false)
}

/// Swaps the case of recorded letters and marks the flip (`^`), as Zeek's history
/// reads after a flip. `bits16` says the "seen" bits are TCP-style (responder's in
/// the upper half) rather than UDP-style (bit 0 orig, bit 1 resp).
fn flip_history(hist: &mut History, bits16: bool) {
    let swapped: String = hist
        .letters
        .chars()
        .filter(|c| *c != '^')
        .map(|c| {
            if c.is_ascii_uppercase() {
                c.to_ascii_lowercase()
            } else {
                c.to_ascii_uppercase()
            }
        })
        .collect();
    hist.letters = format!("^{swapped}");
    hist.seen = if bits16 {
        hist.seen.rotate_left(16)
    } else {
        (hist.seen & !0x3) | ((hist.seen & 1) << 1) | ((hist.seen >> 1) & 1)
    };
}

#[derive(Debug)]
enum Kind {
    Tcp(Box<Tcp>),
    Udp {
        size: [Option<u64>; 2],
        chk: [Scaled; 2],
    },
    Icmp {
        size: [Option<u64>; 2],
    },
    Other,
}

/// One tracked connection.
#[derive(Debug)]
struct Flow {
    id: u64,
    ip_proto: u8,
    orig: (IpAddr, u16),
    resp: (IpAddr, u16),
    first_sender: (IpAddr, u16),
    start_ns: i64,
    last_ns: i64,
    hist: History,
    pkts: [u64; 2],
    ip_bytes: [u64; 2],
    inactivity_ns: i64,
    missed_bytes: u64,
    kind: Kind,
    timeline: Option<TimelineBuilder>,
}

fn likely_server(proto: u8, port: u16) -> bool {
    match proto {
        6 => LIKELY_TCP_PORTS.contains(&port),
        17 => LIKELY_UDP_PORTS.contains(&port),
        _ => false,
    }
}

/// Zeek's ICMP "responder port": the counterpart message type for request/reply
/// pairs, so that both land in one connection, else the code.
fn icmp_counterpart(seg: &IcmpSeg) -> u16 {
    let t = seg.icmp_type;
    let pair = if seg.v6 {
        match t {
            128 => Some(129),
            129 => Some(128),
            133 => Some(134),
            134 => Some(133),
            135 => Some(136),
            136 => Some(135),
            130 => Some(131),
            131 => Some(130),
            139 => Some(140),
            140 => Some(139),
            144 => Some(145),
            145 => Some(144),
            _ => None,
        }
    } else {
        match t {
            8 => Some(0),
            0 => Some(8),
            13 => Some(14),
            14 => Some(13),
            15 => Some(16),
            16 => Some(15),
            10 => Some(9),
            9 => Some(10),
            17 => Some(18),
            18 => Some(17),
            _ => None,
        }
    };
    u16::from(pair.unwrap_or(seg.code))
}

impl Flow {
    fn new(
        id: u64,
        ts: i64,
        ip: &IpPacket<'_>,
        seg: &Segment,
        src: (IpAddr, u16),
        dst: (IpAddr, u16),
    ) -> Self {
        let (kind, inactivity_ns, flip) = match seg {
            Segment::Tcp(t) => {
                let syn = t.flags & SYN != 0;
                let ack = t.flags & ACK != 0;
                let mut flip = false;
                // Started without a SYN, or with a SYN-ACK: guess the server by port.
                if (!syn || ack) && likely_server(6, t.sport) {
                    flip = if likely_server(6, t.dport) {
                        !syn && t.sport < t.dport
                    } else {
                        true
                    };
                }
                (Kind::Tcp(Box::new(Tcp::new(ts))), UDP_INACTIVITY_NS, flip)
            }
            Segment::Udp(u) => (
                Kind::Udp {
                    size: [None; 2],
                    chk: [Scaled::default(); 2],
                },
                UDP_INACTIVITY_NS,
                likely_server(17, u.sport) && !likely_server(17, u.dport),
            ),
            Segment::Icmp(_) => (Kind::Icmp { size: [None; 2] }, ICMP_INACTIVITY_NS, false),
            Segment::Other => (Kind::Other, OTHER_INACTIVITY_NS, false),
        };
        let timeline = matches!(seg, Segment::Tcp(_)).then(TimelineBuilder::default);
        let mut flow = Flow {
            id,
            ip_proto: ip.proto,
            orig: src,
            resp: dst,
            first_sender: src,
            start_ns: ts,
            last_ns: ts,
            hist: History::default(),
            pkts: [0; 2],
            ip_bytes: [0; 2],
            inactivity_ns,
            missed_bytes: 0,
            kind,
            timeline,
        };
        if flip && dst.0 != IpAddr::V4(Ipv4Addr::BROADCAST) {
            std::mem::swap(&mut flow.orig, &mut flow.resp);
            flow.hist.add('^');
        }
        flow
    }

    /// Swaps originator and responder fields outside the TCP endpoint state.
    fn flip_roles(&mut self) {
        std::mem::swap(&mut self.orig, &mut self.resp);
        self.pkts.swap(0, 1);
        self.ip_bytes.swap(0, 1);
    }

    /// Fires this connection's timers due at or before `now`; true when one of them
    /// ended the connection.
    fn fire_timers(&mut self, now: i64) -> bool {
        loop {
            let inactivity_at = self.last_ns.saturating_add(self.inactivity_ns);
            let next_tcp = match &self.kind {
                Kind::Tcp(tcp) => tcp
                    .timers
                    .iter()
                    .enumerate()
                    .filter(|(_, (at, _))| *at <= now)
                    .min_by_key(|(_, (at, _))| *at)
                    .map(|(i, &(at, kind))| (i, at, kind)),
                _ => None,
            };
            let inactive_due = self.inactivity_ns > 0 && inactivity_at <= now;
            match next_tcp {
                Some((_, at, _)) if inactive_due && inactivity_at <= at => return true,
                None if inactive_due => return true,
                None => return false,
                Some((i, at, kind)) => {
                    let last_ns = self.last_ns;
                    let Kind::Tcp(tcp) = &mut self.kind else {
                        return false;
                    };
                    tcp.timers.swap_remove(i);
                    match kind {
                        Timer::ConnDelete => return true,
                        Timer::Attempt => {
                            if tcp.is_active
                                && matches!(tcp.ep[0].state, St::SynSent | St::SynAckSent)
                                && tcp.ep[1].state == St::Inactive
                            {
                                return true;
                            }
                        }
                        Timer::Expire => {
                            if !tcp.is_active {
                                continue;
                            }
                            if expire_removes(tcp, last_ns, at) {
                                return true;
                            }
                            // Zeek re-checks every tcp_session_timer. The state cannot
                            // change without a packet, so jump straight to the first
                            // check that would succeed, or else past `now`.
                            let next = if expire_condition(tcp) {
                                let quiet_end = last_ns + TCP_CONNECTION_LINGER_NS;
                                at + ((quiet_end - at) / TCP_SESSION_TIMER_NS + 1)
                                    * TCP_SESSION_TIMER_NS
                            } else {
                                at + ((now - at) / TCP_SESSION_TIMER_NS + 1) * TCP_SESSION_TIMER_NS
                            };
                            if next <= now {
                                return true;
                            }
                            tcp.timers.push((next, Timer::Expire));
                        }
                    }
                }
            }
        }
    }

    fn process(&mut self, ts: i64, ip: &IpPacket<'_>, seg: &Segment, src: (IpAddr, u16)) {
        let from_first = src == self.first_sender;
        match seg {
            Segment::Tcp(t) => self.process_tcp(ts, ip, t, src, from_first),
            Segment::Udp(u) => self.process_udp(ts, ip, u, src),
            Segment::Icmp(i) => {
                if !i.checksum_ok {
                    return;
                }
                self.last_ns = ts;
                let e = usize::from(src != self.orig);
                if let Kind::Icmp { size } = &mut self.kind {
                    let len = (i.len as u64).saturating_sub(8);
                    size[e] = Some(size[e].unwrap_or(0) + len);
                }
                self.count(e, ip);
            }
            Segment::Other => {
                self.last_ns = ts;
                let e = usize::from(src != self.orig);
                self.count(e, ip);
            }
        }
    }

    fn count(&mut self, e: usize, ip: &IpPacket<'_>) {
        self.pkts[e] += 1;
        self.ip_bytes[e] += ip.total_len;
    }

    fn process_udp(&mut self, ts: i64, ip: &IpPacket<'_>, u: &UdpSeg, src: (IpAddr, u16)) {
        let e = usize::from(src != self.orig);
        // Zeek counts the packet (ConnSize) before checking the checksum.
        self.count(e, ip);
        let Kind::Udp { size, chk } = &mut self.kind else {
            return;
        };
        if !u.checksum_ok {
            chk[e].hit(&mut self.hist, if e == 0 { 'C' } else { 'c' });
            return;
        }
        self.last_ns = ts;
        if e == 0 {
            self.hist.check(0x1, 'D');
        } else {
            self.hist.check(0x2, 'd');
        }
        let len = u64::from(u.ulen).saturating_sub(8);
        size[e] = Some(size[e].unwrap_or(0) + len);
    }

    fn process_tcp(
        &mut self,
        ts: i64,
        ip: &IpPacket<'_>,
        t: &TcpSeg,
        src: (IpAddr, u16),
        from_first: bool,
    ) {
        let Kind::Tcp(tcp) = &mut self.kind else {
            return;
        };
        let mut is_orig = src == self.orig;
        if !t.checksum_ok {
            let e = usize::from(!is_orig);
            tcp.ep[e]
                .chk
                .hit(&mut self.hist, if e == 0 { 'C' } else { 'c' });
            return;
        }
        // PR #2191: a connection that began with a SYN-ACK, followed by an ACK or
        // data in either direction, is a real one whose SYN we missed; flip it so the
        // SYN-ACK's sender is the responder.
        let (syn, rst) = (t.flags & SYN != 0, t.flags & RST != 0);
        if tcp.ep[0].state == St::SynAckSent
            && tcp.ep[1].state == St::Inactive
            && !syn
            && !rst
            && (t.flags & ACK != 0 || t.payload_len > 0)
        {
            tcp.flip(&mut self.hist);
            std::mem::swap(&mut self.orig, &mut self.resp);
            self.pkts.swap(0, 1);
            self.ip_bytes.swap(0, 1);
            is_orig = !is_orig;
        }
        let mut shared = Shared {
            hist: &mut self.hist,
            last_ns: &mut self.last_ns,
            inactivity_ns: &mut self.inactivity_ns,
            missed_bytes: &mut self.missed_bytes,
        };
        if tcp.process(&mut shared, ts, is_orig, t) {
            self.flip_roles();
        }
        let e = usize::from(src != self.orig);
        self.count(e, ip);
        if let Some(tl) = &mut self.timeline {
            tl.segment(
                from_first,
                ts,
                t.seq,
                syn,
                if rst { 0 } else { t.payload_len },
            );
        }
    }

    fn conn_state(&self) -> &'static str {
        match &self.kind {
            Kind::Tcp(tcp) => tcp_conn_state(tcp, &self.hist.letters),
            Kind::Udp { size, .. } => match (size[0].is_some(), size[1].is_some()) {
                (true, true) => "SF",
                (true, false) => "S0",
                (false, true) => "SHR",
                (false, false) => "OTH",
            },
            _ => "OTH",
        }
    }

    fn into_conn(self) -> (Conn, Option<Vec<TimelinePacket>>) {
        let proto = Proto::from_ip_proto(self.ip_proto);
        let mut conn = Conn::new(
            proto,
            self.orig.0,
            self.orig.1,
            self.resp.0,
            self.resp.1,
            self.start_ns,
        );
        conn.uid = Some(format!("P{}", self.id));
        conn.ip_proto = Some(self.ip_proto);
        let sizes = match &self.kind {
            Kind::Tcp(tcp) => [tcp.size(0), tcp.size(1)],
            Kind::Udp { size, .. } | Kind::Icmp { size } => {
                [size[0].unwrap_or(0), size[1].unwrap_or(0)]
            }
            Kind::Other => [0, 0],
        };
        let duration = self.last_ns - self.start_ns;
        // Zeek leaves duration and byte counts unset for zero-length connections.
        if duration > 0 {
            conn.duration_ns = Some(duration);
            conn.orig_bytes = Some(sizes[0]);
            conn.resp_bytes = Some(sizes[1]);
        }
        conn.orig_pkts = Some(self.pkts[0]);
        conn.resp_pkts = Some(self.pkts[1]);
        conn.orig_ip_bytes = Some(self.ip_bytes[0]);
        conn.resp_ip_bytes = Some(self.ip_bytes[1]);
        conn.missed_bytes = Some(self.missed_bytes);
        conn.conn_state = Some(self.conn_state().to_string());
        if !self.hist.letters.is_empty() {
            conn.history = Some(self.hist.letters.clone());
        }
        let first_is_orig = self.first_sender == self.orig;
        let timeline = self.timeline.map(|t| t.finish(first_is_orig));
        (conn, timeline)
    }
}

/// The state test of Zeek's `ExpireTimer` (its quiet-time test aside).
fn expire_condition(tcp: &Tcp) -> bool {
    let (o, r) = (&tcp.ep[0], &tcp.ep[1]);
    if o.did_close || r.did_close {
        let finished = (o.did_close && r.did_close)
            || o.state == St::Reset
            || r.state == St::Reset
            || o.state == St::Inactive
            || r.state == St::Inactive;
        if finished {
            return true;
        }
    }
    r.state == St::Inactive && o.state == St::Inactive
}

fn expire_removes(tcp: &Tcp, last_ns: i64, at: i64) -> bool {
    last_ns + TCP_CONNECTION_LINGER_NS < at && expire_condition(tcp)
}

/// `conn_state()` of `base/protocols/conn/main.zeek` for TCP.
fn tcp_conn_state(tcp: &Tcp, history: &str) -> &'static str {
    let (os, rs) = (tcp.ep[0].state, tcp.ep[1].state);
    let o_inactive = matches!(os, St::Inactive | St::Partial);
    let r_inactive = matches!(rs, St::Inactive | St::Partial);
    if rs == St::Reset {
        if matches!(os, St::SynSent | St::SynAckSent)
            || (os == St::Reset && tcp.size(0) == 0 && tcp.size(1) == 0)
        {
            "REJ"
        } else if o_inactive {
            "RSTRH"
        } else {
            "RSTR"
        }
    } else if os == St::Reset {
        if r_inactive {
            if history_is_rstos0(history) {
                "RSTOS0"
            } else {
                "OTH"
            }
        } else {
            "RSTO"
        }
    } else if rs == St::Closed && os == St::Closed {
        "SF"
    } else if os == St::Closed {
        if r_inactive {
            "SH"
        } else {
            "S2"
        }
    } else if rs == St::Closed {
        if o_inactive {
            "SHR"
        } else {
            "S3"
        }
    } else if os == St::SynSent && rs == St::Inactive {
        "S0"
    } else if os == St::Established && rs == St::Established {
        "S1"
    } else {
        "OTH"
    }
}

/// Zeek's pattern `/\^?S[^HAFGIQ]*R.*/` (anchored, as `==` on patterns is).
fn history_is_rstos0(history: &str) -> bool {
    let h = history.strip_prefix('^').unwrap_or(history);
    let Some(rest) = h.strip_prefix('S') else {
        return false;
    };
    for c in rest.chars() {
        if c == 'R' {
            return true;
        }
        if "HAFGIQ".contains(c) {
            return false;
        }
    }
    false
}

/// A finished connection waiting for its turn in the output.
struct Finished {
    conn: Conn,
    timeline: Option<Vec<TimelinePacket>>,
}

/// The connection table and the ordered output of finished connections.
pub(crate) struct Tracker {
    table: HashMap<Key, Flow>,
    /// (start, id) of every live connection, to know which finished ones may go out.
    live: BTreeSet<(i64, u64)>,
    held: BTreeMap<(i64, u64), Finished>,
    next_id: u64,
    records: u64,
    network_ns: i64,
    last_sweep_ns: i64,
    evicted: u64,
    bad_checksum_packets: u64,
    timeline_packets_dropped: u64,
}

impl Tracker {
    pub(crate) fn new() -> Self {
        Tracker {
            table: HashMap::default(),
            live: BTreeSet::new(),
            held: BTreeMap::new(),
            next_id: 1,
            records: 0,
            network_ns: i64::MIN,
            last_sweep_ns: i64::MIN,
            evicted: 0,
            bad_checksum_packets: 0,
            timeline_packets_dropped: 0,
        }
    }

    /// Counters for the `pcap-stats` event.
    pub(crate) fn stats(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("connections", self.records),
            ("evicted_connections", self.evicted),
            ("bad_checksum_packets", self.bad_checksum_packets),
            ("timeline_packets_dropped", self.timeline_packets_dropped),
        ]
    }

    /// Applies one packet.
    pub(crate) fn packet(
        &mut self,
        ts: i64,
        ip: &IpPacket<'_>,
        seg: &Segment,
        sink: &mut dyn Sink,
    ) -> Result<(), IngestError> {
        // Zeek's network time never goes backwards; timers run on it.
        self.network_ns = self.network_ns.max(ts);
        let now = self.network_ns;
        if self.last_sweep_ns == i64::MIN {
            self.last_sweep_ns = now;
        } else if now - self.last_sweep_ns >= SWEEP_INTERVAL_NS {
            self.sweep(now);
            self.last_sweep_ns = now;
        }
        let (sport, dport, checksum_ok) = match seg {
            Segment::Tcp(t) => (t.sport, t.dport, t.checksum_ok),
            Segment::Udp(u) => (u.sport, u.dport, u.checksum_ok),
            Segment::Icmp(i) => (u16::from(i.icmp_type), icmp_counterpart(i), i.checksum_ok),
            Segment::Other => (0, 0, true),
        };
        if !checksum_ok {
            self.bad_checksum_packets += 1;
        }
        let src = (ip.src, sport);
        let dst = (ip.dst, dport);
        let key = Key::new(ip.proto, src, dst);

        let ended = match self.table.get_mut(&key) {
            Some(flow) => {
                flow.fire_timers(now)
                    || match (&flow.kind, seg) {
                        (Kind::Tcp(tcp), Segment::Tcp(t)) => tcp.is_reuse(t),
                        _ => false,
                    }
            }
            None => false,
        };
        if ended {
            self.end(&key);
        }
        if !self.table.contains_key(&key) {
            if self.table.len() >= MAX_CONNECTIONS {
                self.make_room(now);
            }
            let id = self.next_id;
            self.next_id += 1;
            let flow = Flow::new(id, ts, ip, seg, src, dst);
            self.live.insert((flow.start_ns, id));
            self.table.insert(key, flow);
        }
        if let Some(flow) = self.table.get_mut(&key) {
            flow.process(ts, ip, seg, src);
        }
        self.flush(sink, false)
    }

    /// Ends every connection whose timers are due.
    fn sweep(&mut self, now: i64) {
        let due: Vec<Key> = self
            .table
            .iter_mut()
            .filter_map(|(k, f)| f.fire_timers(now).then_some(*k))
            .collect();
        for k in due {
            self.end(&k);
        }
    }

    /// At the table cap: sweep, then end the least recently active eighth.
    fn make_room(&mut self, now: i64) {
        self.sweep(now);
        if self.table.len() < MAX_CONNECTIONS {
            return;
        }
        let mut by_age: Vec<(i64, Key)> = self.table.iter().map(|(k, f)| (f.last_ns, *k)).collect();
        let n = (by_age.len() / 8).max(1);
        by_age.select_nth_unstable_by_key(n - 1, |(t, _)| *t);
        for (_, k) in by_age.into_iter().take(n) {
            self.end(&k);
            self.evicted += 1;
        }
    }

    fn end(&mut self, key: &Key) {
        if let Some(flow) = self.table.remove(key) {
            self.live.remove(&(flow.start_ns, flow.id));
            if let Some(tl) = &flow.timeline {
                self.timeline_packets_dropped += tl.dropped;
            }
            let order = (flow.start_ns, flow.id);
            let (conn, timeline) = flow.into_conn();
            self.held.insert(order, Finished { conn, timeline });
        }
    }

    /// Emits finished connections that no live connection precedes in start order.
    fn flush(&mut self, sink: &mut dyn Sink, all: bool) -> Result<(), IngestError> {
        loop {
            let over = self.held.len() > MAX_HELD_CONNECTIONS;
            let Some(entry) = self.held.first_entry() else {
                break;
            };
            let ready = all || over || self.live.first().is_none_or(|live| entry.key() < live);
            if !ready {
                break;
            }
            let Finished { mut conn, timeline } = entry.remove();
            conn.record = self.records;
            sink.conn(conn)?;
            if let Some(packets) = timeline {
                sink.timeline(PacketTimeline {
                    conn_record: self.records,
                    packets,
                })?;
            }
            self.records += 1;
        }
        Ok(())
    }

    /// Ends every connection (end of input) and emits everything.
    pub(crate) fn finish(&mut self, sink: &mut dyn Sink) -> Result<(), IngestError> {
        let keys: Vec<Key> = self.table.keys().copied().collect();
        for k in keys {
            self.end(&k);
        }
        self.flush(sink, true)
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::net::Ipv4Addr;

    use super::*;
    use crate::VecSink;

    const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    const SERVER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

    /// Feeds one TCP segment: (time ms, from client?, flags, seq, ack, payload length).
    fn tcp(tracker: &mut Tracker, sink: &mut VecSink, pkt: (i64, bool, u8, u32, u32, usize)) {
        let (ms, from_client, flags, seq, ack, len) = pkt;
        let (src, dst, sport, dport) = if from_client {
            (CLIENT, SERVER, 40000, 80)
        } else {
            (SERVER, CLIENT, 80, 40000)
        };
        let ip = IpPacket {
            src,
            dst,
            proto: 6,
            total_len: 40 + len as u64,
            payload: Cow::Owned(vec![0; 20 + len]),
            payload_len: 20 + len,
        };
        let seg = Segment::Tcp(TcpSeg {
            sport,
            dport,
            seq,
            ack,
            flags,
            window: 1000,
            payload_len: len,
            captured_len: len,
            checksum_ok: true,
        });
        tracker.packet(ms * 1_000_000, &ip, &seg, sink).unwrap();
    }

    #[test]
    fn full_handshake_and_close_is_sf() {
        let mut t = Tracker::new();
        let mut sink = VecSink::default();
        for p in [
            (0, true, SYN, 100, 0, 0),
            (10, false, SYN | ACK, 500, 101, 0),
            (20, true, ACK, 101, 501, 0),
            (30, true, ACK, 101, 501, 5),  // "hello"
            (40, false, ACK, 501, 106, 3), // "hi!"
            (50, true, FIN | ACK, 106, 504, 0),
            (60, false, FIN | ACK, 504, 107, 0),
            (70, true, ACK, 107, 505, 0),
        ] {
            tcp(&mut t, &mut sink, p);
        }
        t.finish(&mut sink).unwrap();
        let c = &sink.conns[0];
        assert_eq!(c.conn_state.as_deref(), Some("SF"));
        // The responder never sends a pure ACK here, so no `a`.
        assert_eq!(c.history.as_deref(), Some("ShADdFf"));
        assert_eq!((c.orig_bytes, c.resp_bytes), (Some(5), Some(3)));
        assert_eq!((c.orig_pkts, c.resp_pkts), (Some(5), Some(3)));
        // Duration stops at the last packet before both sides closed (the FIN).
        assert_eq!(c.duration_ns, Some(60_000_000));
        assert_eq!(sink.timelines[0].packets.len(), 2);
    }

    #[test]
    fn rejected_syn_is_rej_and_retry_is_a_new_connection() {
        let mut t = Tracker::new();
        let mut sink = VecSink::default();
        tcp(&mut t, &mut sink, (0, true, SYN, 100, 0, 0));
        tcp(&mut t, &mut sink, (1, false, RST | ACK, 0, 101, 0));
        tcp(&mut t, &mut sink, (3000, true, SYN, 100, 0, 0));
        tcp(&mut t, &mut sink, (3001, false, RST | ACK, 0, 101, 0));
        t.finish(&mut sink).unwrap();
        assert_eq!(sink.conns.len(), 2);
        for c in &sink.conns {
            assert_eq!(c.conn_state.as_deref(), Some("REJ"));
            assert_eq!(c.history.as_deref(), Some("Sr"));
        }
    }

    #[test]
    fn syn_ack_first_from_server_port_is_flipped() {
        let mut t = Tracker::new();
        let mut sink = VecSink::default();
        tcp(&mut t, &mut sink, (0, false, SYN | ACK, 500, 101, 0));
        t.finish(&mut sink).unwrap();
        let c = &sink.conns[0];
        assert_eq!((c.orig_h, c.orig_p, c.resp_p), (CLIENT, 40000, 80));
        assert_eq!(c.history.as_deref(), Some("^h"));
        assert_eq!((c.orig_pkts, c.resp_pkts), (Some(0), Some(1)));
    }

    #[test]
    fn rstos0_pattern() {
        assert!(history_is_rstos0("SR"));
        assert!(history_is_rstos0("^StR"));
        assert!(!history_is_rstos0("SAR"));
        assert!(!history_is_rstos0("R"));
    }
}

//! IPv4 (RFC 791, with fragment reassembly) and IPv6 (RFC 8200, with extension
//! headers and fragment reassembly).
//!
//! Zeek reassembles IP fragments before connection tracking and then sees one packet
//! whose total length is the whole datagram's, so we do the same: a connection's
//! `ip_bytes` and packet counts only match Zeek that way.

use std::borrow::Cow;
use std::collections::BTreeMap;

use rustc_hash::FxHashMap as HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A decoded IP packet (or reassembled datagram).
#[derive(Debug)]
pub(crate) struct IpPacket<'a> {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Transport protocol number (after IPv6 extension headers).
    pub proto: u8,
    /// Zeek's `TotalLen()`: IPv4 total length, IPv6 payload length plus 40. This is
    /// what Zeek adds to `orig_ip_bytes`/`resp_ip_bytes`.
    pub total_len: u64,
    /// Transport bytes that were captured (never beyond the declared length).
    pub payload: Cow<'a, [u8]>,
    /// Transport length declared by the IP header; larger than `payload.len()` when
    /// the capture's snap length cut the packet.
    pub payload_len: usize,
}

/// Result of IP decoding.
#[derive(Debug)]
pub(crate) enum IpOutcome<'a> {
    /// A packet ready for transport decoding.
    Packet(IpPacket<'a>),
    /// A fragment was stored; its datagram is not complete yet.
    FragmentHeld,
    /// Not a decodable IP packet; names the layer and the fault.
    Bad(&'static str),
}

/// In-flight datagrams kept for reassembly. A flood of never-completed fragments must
/// not grow memory without bound, so the table is capped; beyond it the oldest
/// datagram is dropped (counted in `discarded`).
const MAX_DATAGRAMS: usize = 4096;
/// Fragments of one datagram beyond this count are dropped with it: 64 KiB datagrams
/// need at most 8192 fragments of the minimum 8 bytes, real ones a handful.
const MAX_FRAGMENTS_PER_DATAGRAM: usize = 1024;
/// Datagram payload cannot exceed 65,535 - 20 bytes (IPv4); IPv6 likewise without
/// jumbograms.
const MAX_DATAGRAM_BYTES: usize = 65_535;
/// Incomplete datagrams older than this (capture time) are dropped. Linux's
/// `ipfrag_time` default is 30 s; Zeek keeps fragments until the datagram completes,
/// which only matters for datagrams that never complete.
const FRAGMENT_TIMEOUT_NS: i64 = 60_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct FragKey {
    src: IpAddr,
    dst: IpAddr,
    id: u32,
    proto: u8,
}

#[derive(Debug)]
struct Datagram {
    first_ts_ns: i64,
    /// Header bytes counted into `total_len` (IPv4 header or IPv6 unfragmentable part).
    header_len: usize,
    /// Payload length, known once the last fragment (MF clear) arrived.
    end: Option<usize>,
    /// Fragment payloads by offset.
    pieces: BTreeMap<usize, Vec<u8>>,
}

/// Fragments waiting for the rest of their datagram.
#[derive(Debug, Default)]
pub(crate) struct FragmentTable {
    datagrams: HashMap<FragKey, Datagram>,
    /// Datagrams completed.
    pub reassembled: u64,
    /// Datagrams given up (table full, timeout, oversize, truncated fragment).
    pub discarded: u64,
}

impl FragmentTable {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Datagrams still incomplete (reported as discarded at the end of input).
    pub(crate) fn pending_fragments(&self) -> u64 {
        self.datagrams.len() as u64
    }

    /// Adds one fragment; returns the whole payload once the datagram is complete.
    fn add(
        &mut self,
        key: FragKey,
        ts_ns: i64,
        header_len: usize,
        offset: usize,
        more: bool,
        data: &[u8],
    ) -> Option<(usize, Vec<u8>)> {
        if offset + data.len() > MAX_DATAGRAM_BYTES {
            self.drop_datagram(&key);
            return None;
        }
        if !self.datagrams.contains_key(&key) {
            self.expire(ts_ns);
            if self.datagrams.len() >= MAX_DATAGRAMS {
                let oldest = self
                    .datagrams
                    .iter()
                    .min_by_key(|(_, d)| d.first_ts_ns)
                    .map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    self.drop_datagram(&k);
                }
            }
        }
        let datagram = self.datagrams.entry(key.clone()).or_insert(Datagram {
            first_ts_ns: ts_ns,
            header_len,
            end: None,
            pieces: BTreeMap::new(),
        });
        if offset == 0 {
            datagram.header_len = header_len;
        }
        if !more {
            datagram.end = Some(offset + data.len());
        }
        datagram
            .pieces
            .entry(offset)
            .or_insert_with(|| data.to_vec());
        if datagram.pieces.len() > MAX_FRAGMENTS_PER_DATAGRAM {
            self.drop_datagram(&key);
            return None;
        }
        let end = datagram.end?;
        // Complete when the pieces cover [0, end) without a hole.
        let mut covered = 0usize;
        for (&off, piece) in &datagram.pieces {
            if off > covered {
                return None;
            }
            covered = covered.max(off + piece.len());
        }
        if covered < end {
            return None;
        }
        let datagram = self.datagrams.remove(&key)?;
        let mut payload = vec![0u8; end];
        for (off, piece) in datagram.pieces {
            let stop = (off + piece.len()).min(end);
            if off < stop {
                payload[off..stop].copy_from_slice(&piece[..stop - off]);
            }
        }
        self.reassembled += 1;
        Some((datagram.header_len, payload))
    }

    fn drop_datagram(&mut self, key: &FragKey) {
        if self.datagrams.remove(key).is_some() {
            self.discarded += 1;
        }
    }

    fn expire(&mut self, now_ns: i64) {
        let before = self.datagrams.len();
        self.datagrams
            .retain(|_, d| now_ns.saturating_sub(d.first_ts_ns) < FRAGMENT_TIMEOUT_NS);
        self.discarded += (before - self.datagrams.len()) as u64;
    }
}

/// Decodes the IP packet in `bytes`. `wire_len` is the packet's length on the wire
/// (the frame's original length minus link framing), used to tell snap-length
/// truncation (accepted, as Zeek does) from a header claiming more than was sent.
pub(crate) fn decode<'a>(
    bytes: &'a [u8],
    wire_len: usize,
    ts_ns: i64,
    verify_checksum: bool,
    fragments: &mut FragmentTable,
) -> IpOutcome<'a> {
    match bytes.first().map(|b| b >> 4) {
        Some(4) => ipv4(bytes, wire_len, ts_ns, verify_checksum, fragments),
        Some(6) => ipv6(bytes, wire_len, ts_ns, fragments),
        Some(_) => IpOutcome::Bad("ip: version is neither 4 nor 6"),
        None => IpOutcome::Bad("ip: empty packet"),
    }
}

fn ipv4<'a>(
    bytes: &'a [u8],
    wire_len: usize,
    ts_ns: i64,
    verify_checksum: bool,
    fragments: &mut FragmentTable,
) -> IpOutcome<'a> {
    if bytes.len() < 20 {
        return IpOutcome::Bad("ipv4: header truncated");
    }
    let header_len = usize::from(bytes[0] & 0x0f) * 4;
    if header_len < 20 {
        return IpOutcome::Bad("ipv4: header length below 20 bytes");
    }
    if bytes.len() < header_len {
        return IpOutcome::Bad("ipv4: options truncated");
    }
    let total_len = usize::from(u16::from_be_bytes([bytes[2], bytes[3]]));
    if total_len < header_len {
        return IpOutcome::Bad("ipv4: total length shorter than the header");
    }
    if total_len > wire_len {
        return IpOutcome::Bad("ipv4: total length exceeds the frame on the wire");
    }
    if verify_checksum && internet_checksum(&bytes[..header_len], 0) != 0xffff {
        // Zeek drops these ("bad_IP_checksum") unless told to ignore checksums.
        return IpOutcome::Bad("ipv4: bad header checksum");
    }
    let id = u16::from_be_bytes([bytes[4], bytes[5]]);
    let flags_offset = u16::from_be_bytes([bytes[6], bytes[7]]);
    let more = flags_offset & 0x2000 != 0;
    let frag_offset = usize::from(flags_offset & 0x1fff) * 8;
    let proto = bytes[9];
    let src = IpAddr::V4(Ipv4Addr::new(bytes[12], bytes[13], bytes[14], bytes[15]));
    let dst = IpAddr::V4(Ipv4Addr::new(bytes[16], bytes[17], bytes[18], bytes[19]));
    let captured_end = bytes.len().min(total_len);
    let payload = &bytes[header_len..captured_end];
    let payload_len = total_len - header_len;
    if more || frag_offset != 0 {
        if payload.len() < payload_len {
            // A fragment cut by the snap length cannot be reassembled.
            return IpOutcome::Bad("ipv4: fragment truncated by the capture");
        }
        let key = FragKey {
            src,
            dst,
            id: u32::from(id),
            proto,
        };
        return match fragments.add(key, ts_ns, header_len, frag_offset, more, payload) {
            Some((header_len, whole)) => {
                let len = whole.len();
                IpOutcome::Packet(IpPacket {
                    src,
                    dst,
                    proto,
                    total_len: (header_len + len) as u64,
                    payload: Cow::Owned(whole),
                    payload_len: len,
                })
            }
            None => IpOutcome::FragmentHeld,
        };
    }
    IpOutcome::Packet(IpPacket {
        src,
        dst,
        proto,
        total_len: total_len as u64,
        payload: Cow::Borrowed(payload),
        payload_len,
    })
}

/// IPv6 extension headers walked before giving up. RFC 8200 recommends each appear
/// at most once (twice for destination options), so eight is generous; the bound
/// stops a chain of thousands of empty headers from costing a loop each.
const MAX_EXTENSION_HEADERS: usize = 8;

fn ipv6<'a>(
    bytes: &'a [u8],
    wire_len: usize,
    ts_ns: i64,
    fragments: &mut FragmentTable,
) -> IpOutcome<'a> {
    if bytes.len() < 40 {
        return IpOutcome::Bad("ipv6: header truncated");
    }
    let declared = usize::from(u16::from_be_bytes([bytes[4], bytes[5]]));
    // A zero payload length means a jumbogram (RFC 2675); take what the wire says.
    let payload_len_total = if declared == 0 {
        wire_len.saturating_sub(40)
    } else {
        declared
    };
    if 40 + payload_len_total > wire_len {
        return IpOutcome::Bad("ipv6: payload length exceeds the frame on the wire");
    }
    let addr = |at: usize| {
        let mut a = [0u8; 16];
        a.copy_from_slice(&bytes[at..at + 16]);
        IpAddr::V6(Ipv6Addr::from(a))
    };
    let src = addr(8);
    let dst = addr(24);
    let end = bytes.len().min(40 + payload_len_total);
    let mut next = bytes[6];
    let mut at = 40usize;
    let mut fragment: Option<(usize, bool, u32)> = None;
    for _ in 0..=MAX_EXTENSION_HEADERS {
        match next {
            // Hop-by-hop, routing, destination options, mobility, HIP, shim6:
            // next header, length in 8-byte units not counting the first 8.
            0 | 43 | 60 | 135 | 139 | 140 => {
                let Some(h) = bytes.get(at..at + 2).filter(|_| at + 2 <= end) else {
                    return IpOutcome::Bad("ipv6: extension header truncated");
                };
                next = h[0];
                at += (usize::from(h[1]) + 1) * 8;
            }
            // Authentication header: length in 4-byte units minus 2.
            51 => {
                let Some(h) = bytes.get(at..at + 2).filter(|_| at + 2 <= end) else {
                    return IpOutcome::Bad("ipv6: authentication header truncated");
                };
                next = h[0];
                at += (usize::from(h[1]) + 2) * 4;
            }
            // Fragment header: next, reserved, offset (13 bits) + M flag, id.
            44 => {
                let Some(h) = bytes.get(at..at + 8).filter(|_| at + 8 <= end) else {
                    return IpOutcome::Bad("ipv6: fragment header truncated");
                };
                next = h[0];
                let off_flags = u16::from_be_bytes([h[2], h[3]]);
                let id = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
                let offset = usize::from(off_flags >> 3) * 8;
                let more = off_flags & 1 != 0;
                // An atomic fragment (offset 0, no more) is a whole packet.
                if offset != 0 || more {
                    fragment = Some((offset, more, id));
                }
                at += 8;
            }
            _ => break,
        }
        if at > end {
            return IpOutcome::Bad("ipv6: extension headers run past the packet");
        }
    }
    if matches!(next, 0 | 43 | 60 | 135 | 139 | 140 | 51 | 44) {
        return IpOutcome::Bad("ipv6: too many extension headers");
    }
    let payload = &bytes[at..end];
    let payload_len = 40 + payload_len_total - at;
    if let Some((offset, more, id)) = fragment {
        if payload.len() < payload_len {
            return IpOutcome::Bad("ipv6: fragment truncated by the capture");
        }
        let key = FragKey {
            src,
            dst,
            id,
            proto: next,
        };
        return match fragments.add(key, ts_ns, at - 8, offset, more, payload) {
            Some((header_len, whole)) => {
                let len = whole.len();
                IpOutcome::Packet(IpPacket {
                    src,
                    dst,
                    proto: next,
                    total_len: (header_len + len) as u64,
                    payload: Cow::Owned(whole),
                    payload_len: len,
                })
            }
            None => IpOutcome::FragmentHeld,
        };
    }
    IpOutcome::Packet(IpPacket {
        src,
        dst,
        proto: next,
        total_len: (40 + payload_len_total) as u64,
        payload: Cow::Borrowed(payload),
        payload_len,
    })
}

/// RFC 1071 one's-complement sum of `data` added to `initial`, folded to 16 bits.
/// A packet whose checksum field is included verifies when the result is 0xffff.
pub(crate) fn internet_checksum(data: &[u8], initial: u32) -> u16 {
    // Summing 32-bit big-endian words and folding gives the same ones' complement sum
    // as 16-bit words (RFC 1071 §2(B)), with half the additions: the checksum was
    // about a tenth of pcap reading time.
    let mut sum = u64::from(initial);
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        sum += u64::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
    }
    let mut pairs = words.remainder().chunks_exact(2);
    for c in &mut pairs {
        sum += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = pairs.remainder() {
        sum += u64::from(*last) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 20-byte IPv4 header with a correct checksum, followed by 4 payload bytes.
    fn ipv4_packet(flags_offset: u16, payload: &[u8]) -> Vec<u8> {
        let total = 20 + payload.len() as u16;
        let mut p = vec![
            0x45,
            0x00, // version 4, IHL 5 (20 bytes); DSCP/ECN 0
            (total >> 8) as u8,
            total as u8, // total length
            0x12,
            0x34, // identification 0x1234
            (flags_offset >> 8) as u8,
            flags_offset as u8, // flags + fragment offset
            64,
            17, // TTL 64, protocol 17 (UDP)
            0x00,
            0x00, // header checksum, filled below
            10,
            0,
            0,
            1, // source 10.0.0.1
            10,
            0,
            0,
            2, // destination 10.0.0.2
        ];
        let sum = !internet_checksum(&p, 0);
        p[10..12].copy_from_slice(&sum.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn ipv4_plain_and_snapped() {
        let p = ipv4_packet(0, &[1, 2, 3, 4]);
        let mut frags = FragmentTable::new();
        let IpOutcome::Packet(ip) = decode(&p, p.len(), 0, true, &mut frags) else {
            panic!("not decoded")
        };
        assert_eq!(ip.proto, 17);
        assert_eq!(ip.total_len, 24);
        assert_eq!(&ip.payload[..], &[1, 2, 3, 4]);
        // Snap length cut the last two bytes: still a packet, declared length kept.
        let IpOutcome::Packet(ip) = decode(&p[..22], p.len(), 0, true, &mut frags) else {
            panic!("not decoded")
        };
        assert_eq!((ip.payload.len(), ip.payload_len), (2, 4));
        // Header claims more than the wire carried.
        assert!(matches!(
            decode(&p, 22, 0, true, &mut frags),
            IpOutcome::Bad(_)
        ));
        // Corrupt checksum.
        let mut bad = p.clone();
        bad[8] = 1;
        assert!(matches!(
            decode(&bad, bad.len(), 0, true, &mut frags),
            IpOutcome::Bad(_)
        ));
    }

    #[test]
    fn ipv4_fragments_reassemble_in_any_order() {
        let first = ipv4_packet(0x2000, &[1, 2, 3, 4, 5, 6, 7, 8]); // MF, offset 0
        let last = ipv4_packet(0x0001, &[9, 10]); // offset 1 (8 bytes), last
        let mut frags = FragmentTable::new();
        assert!(matches!(
            decode(&last, last.len(), 0, true, &mut frags),
            IpOutcome::FragmentHeld
        ));
        let IpOutcome::Packet(ip) = decode(&first, first.len(), 1, true, &mut frags) else {
            panic!("not reassembled")
        };
        assert_eq!(&ip.payload[..], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(ip.total_len, 30);
        assert_eq!(frags.reassembled, 1);
    }

    #[test]
    fn ipv6_extension_headers() {
        let mut p = vec![
            0x60, 0, 0, 0, // version 6, traffic class, flow label
            0, 12, // payload length 12
            0, 64, // next header 0 (hop-by-hop), hop limit 64
        ];
        p.extend_from_slice(&[0u8; 15]);
        p.push(1); // source ::1
        p.extend_from_slice(&[0u8; 15]);
        p.push(2); // destination ::2
        p.extend_from_slice(&[
            17, 0, 0, 0, 0, 0, 0, 0, // hop-by-hop: next 17 (UDP), length 0 (8 bytes)
            9, 9, 9, 9, // 4 bytes of UDP (header fragment, enough here)
        ]);
        let mut frags = FragmentTable::new();
        let IpOutcome::Packet(ip) = decode(&p, p.len(), 0, true, &mut frags) else {
            panic!("not decoded")
        };
        assert_eq!((ip.proto, ip.total_len, ip.payload_len), (17, 52, 4));
        // A truncated extension chain is a rejection, not a panic.
        assert!(matches!(
            decode(&p[..44], p.len(), 0, true, &mut frags),
            IpOutcome::Bad(_)
        ));
    }
}

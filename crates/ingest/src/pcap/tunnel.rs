//! Tunnel decapsulation: GRE (RFC 2784, RFC 2890 key and sequence; version 1 as used
//! by PPTP, RFC 2637) and IP-in-IP (IPv4 protocol 4, IPv6 protocol 41).
//!
//! Zeek logs the connections inside such tunnels and no connection for the tunnel
//! itself (its `conn.log` for GRE shows only the inner flows), so the pipeline hands
//! the inner IP packet on in place of the outer one.

use super::link::{self, LinkOutcome};

/// IP protocol numbers that carry a tunnel we open.
pub(crate) const GRE: u8 = 47;
/// IPv4 encapsulated in IP (RFC 2003).
pub(crate) const IPIP: u8 = 4;
/// IPv6 encapsulated in IP (RFC 2473 / 4213).
pub(crate) const IPV6_IN_IP: u8 = 41;

/// Tunnels opened inside one another at most; bounds work on hostile nesting.
pub(crate) const MAX_DEPTH: usize = 4;

/// What a tunnel payload holds.
pub(crate) enum Inner<'a> {
    /// An IP packet to decode.
    Ip(&'a [u8]),
    /// Not IP (e.g. GRE carrying another protocol); counted by kind.
    NotIp(String),
    /// Malformed.
    Bad(&'static str),
}

/// Opens the payload of an IP packet whose protocol is `proto`.
pub(crate) fn open(proto: u8, payload: &[u8]) -> Inner<'_> {
    match proto {
        IPIP | IPV6_IN_IP => Inner::Ip(payload),
        GRE => gre(payload),
        _ => Inner::NotIp(format!("ip protocol {proto}")),
    }
}

/// GTPv1-U port (3GPP TS 29.281).
pub(crate) const GTP_U_PORT: u16 = 2152;
/// Teredo port (RFC 4380).
pub(crate) const TEREDO_PORT: u16 = 3544;

/// Opens a UDP tunnel payload: GTPv1-U G-PDU (3GPP TS 29.281 §5) or Teredo (RFC 4380
/// §5.1.1, with optional authentication and origin-indication headers). `None` when
/// the datagram is not such a tunnel packet (it is then an ordinary UDP payload);
/// the outer UDP connection is tracked either way, as Zeek logs it too.
pub(crate) fn open_udp(sport: u16, dport: u16, p: &[u8]) -> Option<&[u8]> {
    if sport == GTP_U_PORT || dport == GTP_U_PORT {
        return gtp_u(p);
    }
    if sport == TEREDO_PORT || dport == TEREDO_PORT {
        return teredo(p);
    }
    None
}

fn gtp_u(p: &[u8]) -> Option<&[u8]> {
    let h = p.get(..8)?;
    let flags = h[0];
    // Version 1, protocol type GTP (not GTP').
    if flags >> 5 != 1 || flags & 0x10 == 0 || h[1] != 0xff {
        return None; // only G-PDUs (type 255) carry user packets
    }
    let mut len = 8;
    if flags & 0x07 != 0 {
        // Sequence number, N-PDU number and next extension header type.
        let next = *p.get(11)?;
        len = 12;
        let mut next_type = next;
        let mut hops = 0;
        while next_type != 0 {
            // Extension header: length in 4-byte units, last byte is the next type.
            let units = usize::from(*p.get(len)?);
            if units == 0 || hops >= 16 {
                return None;
            }
            len += units * 4;
            next_type = *p.get(len - 1)?;
            hops += 1;
        }
    }
    let inner = p.get(len..)?;
    matches!(inner.first().map(|b| b >> 4), Some(4 | 6)).then_some(inner)
}

fn teredo(mut p: &[u8]) -> Option<&[u8]> {
    // Authentication header: 0x0001, id-len, auth-len, id, auth, nonce (8), confirmation (1).
    if p.get(..2)? == [0x00, 0x01] {
        let id_len = usize::from(*p.get(2)?);
        let auth_len = usize::from(*p.get(3)?);
        p = p.get(4 + id_len + auth_len + 9..)?;
    }
    // Origin indication: 0x0000, port (2), address (4).
    if p.get(..2)? == [0x00, 0x00] {
        p = p.get(8..)?;
    }
    // An IPv6 header whose payload length fits the datagram.
    let h = p.get(..40)?;
    let payload_len = usize::from(u16::from_be_bytes([h[4], h[5]]));
    (h[0] >> 4 == 6 && 40 + payload_len <= p.len()).then_some(p)
}

fn gre(p: &[u8]) -> Inner<'_> {
    let Some(h) = p.get(..4) else {
        return Inner::Bad("gre: header truncated");
    };
    let flags = u16::from_be_bytes([h[0], h[1]]);
    let version = flags & 0x7;
    let protocol = u16::from_be_bytes([h[2], h[3]]);
    let mut len = 4;
    match version {
        0 => {
            if flags & 0x8000 != 0 {
                len += 4; // checksum + reserved1
            }
            if flags & 0x2000 != 0 {
                len += 4; // key
            }
            if flags & 0x1000 != 0 {
                len += 4; // sequence number
            }
        }
        1 => {
            // Enhanced GRE (PPTP): key field always present, optional sequence and
            // acknowledgement numbers.
            len += 4;
            if flags & 0x1000 != 0 {
                len += 4;
            }
            if flags & 0x0080 != 0 {
                len += 4;
            }
        }
        _ => return Inner::Bad("gre: unknown version"),
    }
    let Some(rest) = p.get(len..) else {
        return Inner::Bad("gre: header truncated");
    };
    match protocol {
        0x0800 | 0x86dd => Inner::Ip(rest),
        // Transparent Ethernet bridging: a whole Ethernet frame.
        0x6558 => match link::decode(1, rest) {
            LinkOutcome::Ip(ip) => Inner::Ip(ip),
            LinkOutcome::NotIp(kind) => Inner::NotIp(kind),
            LinkOutcome::Bad(reason) => Inner::Bad(reason),
        },
        // PPP (PPTP): link type 9 without HDLC framing is handled by the link layer.
        0x880b => match link::decode(9, rest) {
            LinkOutcome::Ip(ip) => Inner::Ip(ip),
            LinkOutcome::NotIp(kind) => Inner::NotIp(kind),
            LinkOutcome::Bad(reason) => Inner::Bad(reason),
        },
        other => Inner::NotIp(format!("gre protocol 0x{other:04x}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gre_with_key_and_sequence_reaches_ip() {
        let p = [
            0x30, 0x00, // flags: key (0x2000) and sequence (0x1000) present, version 0
            0x08, 0x00, // protocol type: IPv4
            0, 0, 0, 7, // key
            0, 0, 0, 1, // sequence number
            0x45, 0, 0, 20, // inner IPv4 header starts here
        ];
        match open(GRE, &p) {
            Inner::Ip(ip) => assert_eq!(ip[0], 0x45),
            _ => panic!("expected an IP payload"),
        }
        assert!(matches!(open(GRE, &p[..6]), Inner::Bad(_)));
        assert!(matches!(open(GRE, &[0, 7, 8, 0]), Inner::Bad(_)));
        assert!(matches!(open(GRE, &[0, 0, 0x88, 0x47]), Inner::NotIp(_)));
    }

    #[test]
    fn gtp_u_gpdu_only() {
        let gpdu = [
            0x30, 0xff, // version 1, protocol type GTP, no options; type 255 (G-PDU)
            0x00, 0x04, // length
            0, 0, 0, 1, // TEID
            0x45, 0, 0, 20, // inner IPv4 header starts here
        ];
        assert_eq!(open_udp(40000, GTP_U_PORT, &gpdu).map(|p| p[0]), Some(0x45));
        let mut echo = gpdu;
        echo[1] = 1; // echo request: no user packet inside
        assert!(open_udp(40000, GTP_U_PORT, &echo).is_none());
        assert!(open_udp(40000, GTP_U_PORT, &gpdu[..5]).is_none());
        // Not a tunnel port: an ordinary UDP payload.
        assert!(open_udp(40000, 53, &gpdu).is_none());
        // Teredo needs a whole IPv6 header.
        assert!(open_udp(TEREDO_PORT, 40000, &[0x60, 0, 0, 0]).is_none());
    }
}

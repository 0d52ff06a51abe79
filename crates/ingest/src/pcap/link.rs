//! Link layers down to the IP packet: Ethernet (with 802.1Q/802.1ad/QinQ tags, MPLS
//! label stacks and PPPoE sessions), raw IP, BSD null/loopback, Linux "cooked"
//! captures (SLL and SLL2) and PPP.
//!
//! Link type numbers are the tcpdump.org `LINKTYPE_` registry's; ethertypes IEEE's.

/// What a frame's link layer carries.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum LinkOutcome<'a> {
    /// An IP packet (version not yet checked), from the first IP header byte on.
    Ip(&'a [u8]),
    /// A well-formed frame that carries no IP (ARP, LLDP, PPP control...): counted,
    /// not an error. The string names the kind, e.g. `ethertype 0x0806`.
    NotIp(String),
    /// The frame is too short or malformed for its link type; names the layer.
    Bad(&'static str),
}

/// Ethernet (`LINKTYPE_ETHERNET`).
const LT_ETHERNET: i32 = 1;
/// BSD loopback, protocol family in host byte order (`LINKTYPE_NULL`).
const LT_NULL: i32 = 0;
/// OpenBSD loopback, protocol family in network byte order (`LINKTYPE_LOOP`).
const LT_LOOP: i32 = 108;
/// PPP, RFC 1661, with or without RFC 1662 HDLC-like framing (`LINKTYPE_PPP`).
const LT_PPP: i32 = 9;
/// PPP in HDLC-like framing (`LINKTYPE_PPP_HDLC`).
const LT_PPP_HDLC: i32 = 50;
/// PPPoE session header then PPP (`LINKTYPE_PPP_ETHER`).
const LT_PPP_ETHER: i32 = 51;
/// Raw IP (`LINKTYPE_RAW`), and the two historical `DLT_RAW` values it replaces.
const LT_RAW: [i32; 3] = [101, 12, 14];
/// Raw IPv4 only (`LINKTYPE_IPV4`).
const LT_IPV4: i32 = 228;
/// Raw IPv6 only (`LINKTYPE_IPV6`).
const LT_IPV6: i32 = 229;
/// Linux cooked capture v1 (`LINKTYPE_LINUX_SLL`).
const LT_SLL: i32 = 113;
/// Linux cooked capture v2 (`LINKTYPE_LINUX_SLL2`).
const LT_SLL2: i32 = 276;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;
const ETHERTYPE_MPLS: u16 = 0x8847;
const ETHERTYPE_MPLS_MULTICAST: u16 = 0x8848;
const ETHERTYPE_PPPOE_SESSION: u16 = 0x8864;

/// PPP protocol numbers (RFC 1661, IANA "PPP DLL Protocol Numbers").
const PPP_IPV4: u16 = 0x0021;
const PPP_IPV6: u16 = 0x0057;

/// At most this many stacked VLAN tags or MPLS labels are peeled. Real networks use
/// two or three; the bound keeps a hostile frame of repeated tags from costing more
/// than a few comparisons.
const MAX_STACKED_HEADERS: usize = 16;

/// Strips the link layer of `frame` according to `linktype`.
pub(crate) fn decode(linktype: i32, frame: &[u8]) -> LinkOutcome<'_> {
    match linktype {
        LT_ETHERNET => ethernet(frame),
        LT_NULL => null_loopback(frame, false),
        LT_LOOP => null_loopback(frame, true),
        LT_PPP | LT_PPP_HDLC => ppp(frame),
        LT_PPP_ETHER => pppoe_session(frame),
        LT_IPV4 | LT_IPV6 => raw_ip(frame),
        LT_SLL => match frame.get(14..16) {
            Some(p) => by_ethertype(u16::from_be_bytes([p[0], p[1]]), &frame[16..]),
            None => LinkOutcome::Bad("linux-sll: frame shorter than its 16-byte header"),
        },
        LT_SLL2 => match frame.get(..20) {
            Some(h) => by_ethertype(u16::from_be_bytes([h[0], h[1]]), &frame[20..]),
            None => LinkOutcome::Bad("linux-sll2: frame shorter than its 20-byte header"),
        },
        lt if LT_RAW.contains(&lt) => raw_ip(frame),
        _ => LinkOutcome::Bad("link: unsupported link type"),
    }
}

fn ethernet(frame: &[u8]) -> LinkOutcome<'_> {
    let Some(header) = frame.get(..14) else {
        return LinkOutcome::Bad("ethernet: frame shorter than its 14-byte header");
    };
    let ethertype = u16::from_be_bytes([header[12], header[13]]);
    if ethertype <= 1500 {
        // IEEE 802.3 length field: an LLC frame (STP, CDP...), never IP in practice.
        return LinkOutcome::NotIp("802.3 llc".into());
    }
    by_ethertype(ethertype, &frame[14..])
}

/// Dispatches on an ethertype, peeling VLAN tags, MPLS labels and PPPoE sessions.
fn by_ethertype(mut ethertype: u16, mut rest: &[u8]) -> LinkOutcome<'_> {
    for _ in 0..MAX_STACKED_HEADERS {
        match ethertype {
            ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => return LinkOutcome::Ip(rest),
            ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD => {
                // 802.1Q tag: 2 bytes TCI (priority, DEI, VLAN id), 2 bytes ethertype.
                let Some(tag) = rest.get(..4) else {
                    return LinkOutcome::Bad("vlan: tag truncated");
                };
                ethertype = u16::from_be_bytes([tag[2], tag[3]]);
                rest = &rest[4..];
            }
            ETHERTYPE_MPLS | ETHERTYPE_MPLS_MULTICAST => return mpls(rest),
            ETHERTYPE_PPPOE_SESSION => return pppoe_session(rest),
            other => return LinkOutcome::NotIp(format!("ethertype 0x{other:04x}")),
        }
    }
    LinkOutcome::Bad("vlan: more stacked tags than the 16 allowed")
}

/// MPLS label stack (RFC 3032): 4-byte entries until the bottom-of-stack bit, then a
/// payload whose type MPLS does not say; like Zeek we guess from the IP version nibble.
fn mpls(mut rest: &[u8]) -> LinkOutcome<'_> {
    for _ in 0..MAX_STACKED_HEADERS {
        let Some(entry) = rest.get(..4) else {
            return LinkOutcome::Bad("mpls: label stack truncated");
        };
        let bottom = entry[2] & 0x01 != 0;
        rest = &rest[4..];
        if bottom {
            return match rest.first().map(|b| b >> 4) {
                Some(4) | Some(6) => LinkOutcome::Ip(rest),
                Some(_) => LinkOutcome::NotIp("mpls non-ip payload".into()),
                None => LinkOutcome::Bad("mpls: no payload after the label stack"),
            };
        }
    }
    LinkOutcome::Bad("mpls: more labels than the 16 allowed")
}

/// PPPoE session stage (RFC 2516 §4): version/type, code, session id, length, then
/// the PPP protocol field.
fn pppoe_session(rest: &[u8]) -> LinkOutcome<'_> {
    let Some(header) = rest.get(..8) else {
        return LinkOutcome::Bad("pppoe: session header truncated");
    };
    let payload_len = usize::from(u16::from_be_bytes([header[4], header[5]]));
    let protocol = u16::from_be_bytes([header[6], header[7]]);
    // The PPPoE length covers the PPP protocol field and payload; Ethernet padding
    // beyond it is dropped.
    let end = (6 + payload_len).clamp(8, rest.len());
    ppp_protocol(protocol, &rest[8..end])
}

/// PPP frame: optional HDLC address/control bytes (0xff 0x03), then a one- or
/// two-byte protocol field (RFC 1661 §6.5 protocol-field compression).
fn ppp(frame: &[u8]) -> LinkOutcome<'_> {
    let rest = match frame {
        [0xff, 0x03, rest @ ..] => rest,
        _ => frame,
    };
    match rest {
        [p, tail @ ..] if p & 0x01 == 1 => ppp_protocol(u16::from(*p), tail),
        [hi, lo, tail @ ..] => ppp_protocol(u16::from_be_bytes([*hi, *lo]), tail),
        _ => LinkOutcome::Bad("ppp: frame shorter than its protocol field"),
    }
}

fn ppp_protocol(protocol: u16, payload: &[u8]) -> LinkOutcome<'_> {
    match protocol {
        PPP_IPV4 | PPP_IPV6 => LinkOutcome::Ip(payload),
        other => LinkOutcome::NotIp(format!("ppp protocol 0x{other:04x}")),
    }
}

/// BSD loopback: a 4-byte address family, host byte order for `LINKTYPE_NULL`
/// (so either order is accepted), network order for `LINKTYPE_LOOP`. AF_INET is 2
/// everywhere; AF_INET6 is 24 (NetBSD/OpenBSD), 28 (FreeBSD), 30 (macOS), 10 (Linux).
fn null_loopback(frame: &[u8], network_order: bool) -> LinkOutcome<'_> {
    let Some(header) = frame.get(..4) else {
        return LinkOutcome::Bad("loopback: frame shorter than its 4-byte header");
    };
    let bytes = [header[0], header[1], header[2], header[3]];
    let family = if network_order {
        u32::from_be_bytes(bytes)
    } else {
        let le = u32::from_le_bytes(bytes);
        if le <= 0xffff {
            le
        } else {
            u32::from_be_bytes(bytes)
        }
    };
    match family {
        2 | 10 | 24 | 28 | 30 => LinkOutcome::Ip(&frame[4..]),
        other => LinkOutcome::NotIp(format!("loopback family {other}")),
    }
}

fn raw_ip(frame: &[u8]) -> LinkOutcome<'_> {
    match frame.first().map(|b| b >> 4) {
        Some(4) | Some(6) => LinkOutcome::Ip(frame),
        Some(_) => LinkOutcome::Bad("raw-ip: version nibble is neither 4 nor 6"),
        None => LinkOutcome::Bad("raw-ip: empty frame"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: [u8; 2] = [0x45, 0x00]; // start of an IPv4 header, enough for dispatch

    #[test]
    fn ethernet_vlan_qinq_mpls_pppoe() {
        let mut plain = vec![
            0, 1, 2, 3, 4, 5, // destination MAC
            6, 7, 8, 9, 10, 11, // source MAC
            0x08, 0x00, // ethertype IPv4
        ];
        plain.extend_from_slice(&IP);
        assert_eq!(decode(1, &plain), LinkOutcome::Ip(&IP[..]));

        let mut qinq = vec![0u8; 12]; // MACs
        qinq.extend_from_slice(&[
            0x88, 0xa8, // ethertype 802.1ad (outer tag)
            0x00, 0x64, // TCI: VLAN 100
            0x81, 0x00, // inner ethertype 802.1Q
            0x00, 0xc8, // TCI: VLAN 200
            0x86, 0xdd, // ethertype IPv6
            0x60, 0x00, // start of an IPv6 header
        ]);
        assert_eq!(decode(1, &qinq), LinkOutcome::Ip(&[0x60, 0x00][..]));

        let mut mpls_frame = vec![0u8; 12];
        mpls_frame.extend_from_slice(&[
            0x88, 0x47, // ethertype MPLS unicast
            0x00, 0x01, 0x20, 0xff, // label 18, S=0, TTL 255
            0x00, 0x01, 0x41, 0xff, // label 20, S=1 (bottom of stack), TTL 255
        ]);
        mpls_frame.extend_from_slice(&IP);
        assert_eq!(decode(1, &mpls_frame), LinkOutcome::Ip(&IP[..]));

        let mut pppoe = vec![0u8; 12];
        pppoe.extend_from_slice(&[
            0x88, 0x64, // ethertype PPPoE session
            0x11, 0x00, // version 1, type 1, code 0 (session data)
            0x00, 0x01, // session id 1
            0x00, 0x04, // length 4: PPP protocol (2) + 2 bytes of payload
            0x00, 0x21, // PPP protocol IPv4
        ]);
        pppoe.extend_from_slice(&IP);
        pppoe.extend_from_slice(&[0, 0, 0]); // Ethernet padding, must be dropped
        assert_eq!(decode(1, &pppoe), LinkOutcome::Ip(&IP[..]));
    }

    #[test]
    fn other_link_types() {
        // PPP without HDLC framing, protocol 0x0057 (IPv6), as in Zeek's core.ppp trace.
        assert_eq!(decode(9, &[0x00, 0x57, 0x60]), LinkOutcome::Ip(&[0x60][..]));
        // PPP with HDLC address/control and compressed protocol field 0x21.
        assert_eq!(
            decode(9, &[0xff, 0x03, 0x21, 0x45]),
            LinkOutcome::Ip(&[0x45][..])
        );
        // Null loopback, AF_INET6 = 30 (macOS) little-endian.
        assert_eq!(
            decode(0, &[30, 0, 0, 0, 0x60]),
            LinkOutcome::Ip(&[0x60][..])
        );
        // Linux SLL: 16-byte header with protocol 0x0800 at offset 14.
        let mut sll = vec![0u8; 14];
        sll.extend_from_slice(&[0x08, 0x00, 0x45]);
        assert_eq!(decode(113, &sll), LinkOutcome::Ip(&[0x45][..]));
        // Raw IP.
        assert_eq!(decode(101, &[0x45]), LinkOutcome::Ip(&[0x45][..]));
    }

    #[test]
    fn non_ip_and_broken_frames() {
        let mut arp = vec![0u8; 12];
        arp.extend_from_slice(&[0x08, 0x06, 0, 1]);
        assert_eq!(
            decode(1, &arp),
            LinkOutcome::NotIp("ethertype 0x0806".into())
        );
        assert!(matches!(decode(1, &[0u8; 10]), LinkOutcome::Bad(_)));
        assert!(matches!(decode(4242, &[0u8; 10]), LinkOutcome::Bad(_)));
        // A frame of nothing but VLAN tags hits the bound instead of looping.
        let mut tags = vec![0u8; 12];
        for _ in 0..40 {
            tags.extend_from_slice(&[0x81, 0x00, 0x00, 0x01]);
        }
        assert!(matches!(decode(1, &tags), LinkOutcome::Bad(_)));
        assert!(matches!(decode(101, &[0x15]), LinkOutcome::Bad(_)));
    }
}

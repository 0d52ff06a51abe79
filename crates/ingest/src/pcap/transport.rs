//! Transport headers: TCP (RFC 9293), UDP (RFC 768), ICMP (RFC 792), ICMPv6
//! (RFC 4443), with checksum verification; anything else is carried as "other".

use std::net::IpAddr;

use super::ip::{internet_checksum, IpPacket};

/// TCP flag bits (RFC 9293 §3.1).
pub(crate) const FIN: u8 = 0x01;
pub(crate) const SYN: u8 = 0x02;
pub(crate) const RST: u8 = 0x04;
pub(crate) const ACK: u8 = 0x10;

/// A decoded TCP header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TcpSeg {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    /// Payload length declared by the IP header minus the TCP header.
    pub payload_len: usize,
    /// Payload bytes actually captured.
    pub captured_len: usize,
    /// False when the checksum was verifiable and wrong.
    pub checksum_ok: bool,
}

/// A decoded UDP header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UdpSeg {
    pub sport: u16,
    pub dport: u16,
    /// The UDP length field (header included), which Zeek uses for payload sizes.
    pub ulen: u16,
    pub checksum_ok: bool,
}

/// A decoded ICMP or ICMPv6 header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IcmpSeg {
    pub icmp_type: u8,
    pub code: u8,
    /// ICMPv6 (IP protocol 58) rather than ICMP (1).
    pub v6: bool,
    /// Declared ICMP message length (8-byte header included).
    pub len: usize,
    pub checksum_ok: bool,
}

/// The transport part of a packet.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Segment {
    Tcp(TcpSeg),
    Udp(UdpSeg),
    Icmp(IcmpSeg),
    /// Any other IP protocol; Zeek logs these as `unknown_transport` with ports 0.
    Other,
}

/// Decodes the transport header of `ip`, or names what is wrong with it.
/// Checksums are verified only when `verify_checksums` is set and the whole segment
/// was captured (as Zeek does: a snapped packet cannot be checked).
pub(crate) fn decode(ip: &IpPacket<'_>, verify_checksums: bool) -> Result<Segment, &'static str> {
    let data = &ip.payload[..];
    let complete = verify_checksums && data.len() >= ip.payload_len;
    match ip.proto {
        6 => {
            if data.len() < 20 || ip.payload_len < 20 {
                return Err("tcp: header truncated");
            }
            let header_len = usize::from(data[12] >> 4) * 4;
            if header_len < 20 {
                return Err("tcp: data offset below 20 bytes");
            }
            if header_len > data.len() || header_len > ip.payload_len {
                return Err("tcp: options truncated");
            }
            let checksum_ok =
                !complete || transport_checksum(ip, 6, &data[..ip.payload_len]) == 0xffff;
            Ok(Segment::Tcp(TcpSeg {
                sport: u16::from_be_bytes([data[0], data[1]]),
                dport: u16::from_be_bytes([data[2], data[3]]),
                seq: u32::from_be_bytes([data[4], data[5], data[6], data[7]]),
                ack: u32::from_be_bytes([data[8], data[9], data[10], data[11]]),
                flags: data[13],
                window: u16::from_be_bytes([data[14], data[15]]),
                payload_len: ip.payload_len - header_len,
                captured_len: data.len().min(ip.payload_len) - header_len,
                checksum_ok,
            }))
        }
        17 => {
            if data.len() < 8 || ip.payload_len < 8 {
                return Err("udp: header truncated");
            }
            let sum = u16::from_be_bytes([data[6], data[7]]);
            let v4 = ip.src.is_ipv4();
            // A zero UDP checksum over IPv4 means "not computed" (RFC 768); over IPv6
            // it is mandatory (RFC 8200 §8.1).
            let checksum_ok = !complete
                || (v4 && sum == 0)
                || transport_checksum(ip, 17, &data[..ip.payload_len]) == 0xffff;
            Ok(Segment::Udp(UdpSeg {
                sport: u16::from_be_bytes([data[0], data[1]]),
                dport: u16::from_be_bytes([data[2], data[3]]),
                ulen: u16::from_be_bytes([data[4], data[5]]),
                checksum_ok,
            }))
        }
        1 | 58 => {
            if data.len() < 8 || ip.payload_len < 8 {
                return Err("icmp: header truncated");
            }
            let v6 = ip.proto == 58;
            let checksum_ok = !complete
                || if v6 {
                    transport_checksum(ip, 58, &data[..ip.payload_len]) == 0xffff
                } else {
                    internet_checksum(&data[..ip.payload_len], 0) == 0xffff
                };
            Ok(Segment::Icmp(IcmpSeg {
                icmp_type: data[0],
                code: data[1],
                v6,
                len: ip.payload_len,
                checksum_ok,
            }))
        }
        _ => Ok(Segment::Other),
    }
}

/// Checksum over the RFC 768 / RFC 8200 §8.1 pseudo-header plus `segment`.
fn transport_checksum(ip: &IpPacket<'_>, proto: u8, segment: &[u8]) -> u16 {
    let mut pseudo: u32 = 0;
    let mut add = |bytes: &[u8]| {
        for c in bytes.chunks(2) {
            pseudo += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
        }
    };
    match (ip.src, ip.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            add(&s.octets());
            add(&d.octets());
        }
        (s, d) => {
            add(&ip_octets16(s));
            add(&ip_octets16(d));
        }
    }
    let len = segment.len() as u32;
    pseudo += (len >> 16) + (len & 0xffff) + u32::from(proto);
    internet_checksum(segment, pseudo)
}

fn ip_octets16(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::net::Ipv4Addr;

    use super::*;

    fn packet(proto: u8, payload: Vec<u8>) -> IpPacket<'static> {
        let len = payload.len();
        IpPacket {
            src: IpAddr::V4(Ipv4Addr::new(192, 168, 0, 1)),
            dst: IpAddr::V4(Ipv4Addr::new(192, 168, 0, 2)),
            proto,
            total_len: 20 + len as u64,
            payload: Cow::Owned(payload),
            payload_len: len,
        }
    }

    #[test]
    fn tcp_header_fields_and_checksum() {
        let mut seg = vec![
            0x04, 0xd2, // source port 1234
            0x00, 0x50, // destination port 80
            0x00, 0x00, 0x00, 0x64, // sequence number 100
            0x00, 0x00, 0x00, 0x00, // acknowledgment number 0
            0x50, 0x02, // data offset 5 (20 bytes), flags SYN
            0xff, 0xff, // window 65535
            0x00, 0x00, // checksum, filled below
            0x00, 0x00, // urgent pointer
            b'h', b'i', // 2 bytes payload
        ];
        let ip = packet(6, seg.clone());
        let sum = !transport_checksum(&ip, 6, &seg);
        seg[16..18].copy_from_slice(&sum.to_be_bytes());
        let Ok(Segment::Tcp(t)) = decode(&packet(6, seg.clone()), true) else {
            panic!("not tcp")
        };
        assert_eq!((t.sport, t.dport, t.seq, t.flags), (1234, 80, 100, SYN));
        assert_eq!((t.payload_len, t.captured_len, t.checksum_ok), (2, 2, true));
        seg[20] = b'H';
        let Ok(Segment::Tcp(t)) = decode(&packet(6, seg), true) else {
            panic!("not tcp")
        };
        assert!(!t.checksum_ok);
    }

    #[test]
    fn truncated_headers_are_errors() {
        assert!(decode(&packet(6, vec![0; 12]), true).is_err());
        assert!(decode(&packet(17, vec![0; 7]), true).is_err());
        assert!(decode(&packet(1, vec![8]), true).is_err());
        // TCP data offset 15 (60 bytes) with only 20 bytes present.
        let mut t = vec![0u8; 20];
        t[12] = 0xf0;
        assert!(decode(&packet(6, t), true).is_err());
        assert!(matches!(
            decode(&packet(132, vec![]), true),
            Ok(Segment::Other)
        ));
    }

    #[test]
    fn udp_zero_checksum_is_accepted_over_ipv4() {
        let seg = vec![
            0x00, 0x35, // source port 53
            0x30, 0x39, // destination port 12345
            0x00, 0x09, // length 9
            0x00, 0x00, // checksum 0: not computed
            0x01, // payload
        ];
        let Ok(Segment::Udp(u)) = decode(&packet(17, seg), true) else {
            panic!("not udp")
        };
        assert_eq!(
            (u.sport, u.dport, u.ulen, u.checksum_ok),
            (53, 12345, 9, true)
        );
    }
}

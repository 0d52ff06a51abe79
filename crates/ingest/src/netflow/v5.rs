//! NetFlow v5 datagrams (Cisco, no RFC): a 24-byte header then `count` fixed
//! 48-byte records.
//!
//! v5 is handled as a built-in template so that its records go through the same
//! field mapping as v9/IPFIX ([`super::flow`]); its fields are exactly the IANA
//! IEs v9 later numbered.

use super::cursor::Cursor;
use super::flow::Export;
use super::record::decode_set;
use super::template::{FieldSpec, Template, TemplateCache};
use super::{reject, Output};

/// Header bytes.
const HEADER_LEN: usize = 24;
/// Bytes per flow record.
const RECORD_LEN: usize = 48;
/// paddingOctets (IANA IE 210), for v5's two pad fields.
const PADDING_OCTETS: u16 = 210;

/// The v5 record layout as (IE, length): srcaddr, dstaddr, nexthop, input, output,
/// dPkts, dOctets, First, Last, srcport, dstport, pad1, tcp_flags, prot, tos,
/// src_as, dst_as, src_mask, dst_mask, pad2.
const LAYOUT: [(u16, u16); 20] = [
    (8, 4),
    (12, 4),
    (15, 4),
    (10, 2),
    (14, 2),
    (2, 4),
    (1, 4),
    (22, 4),
    (21, 4),
    (7, 2),
    (11, 2),
    (PADDING_OCTETS, 1),
    (6, 1),
    (4, 1),
    (5, 1),
    (16, 2),
    (17, 2),
    (9, 1),
    (13, 1),
    (PADDING_OCTETS, 2),
];

fn template() -> Template {
    Template {
        fields: LAYOUT
            .iter()
            .map(|&(ie, len)| FieldSpec {
                ie,
                pen: None,
                len,
                scope: false,
            })
            .collect(),
        options: false,
    }
}

/// Parses the v5 datagram at `at`; returns where the next datagram starts.
///
/// A count that does not fit the bytes left is rejected with the rest of the input:
/// v5 has no other length, so the next datagram's start cannot be found.
pub(super) fn parse_datagram(
    input: &[u8],
    at: usize,
    templates: &mut TemplateCache,
    out: &mut Vec<Output>,
) -> usize {
    let mut c = Cursor::new(input, at, input.len());
    let left = c.remaining();
    let header = (|| {
        let _version = c.u16()?;
        let count = c.u16()?;
        let sys_uptime = c.u32()?;
        let unix_secs = c.u32()?;
        let unix_nsecs = c.u32()?;
        let _flow_sequence = c.u32()?;
        let _engine_and_sampling = c.u32()?;
        Some((count, sys_uptime, unix_secs, unix_nsecs))
    })();
    let Some((count, sys_uptime, unix_secs, unix_nsecs)) = header else {
        out.push(reject(
            at,
            None,
            format!("truncated NetFlow v5 header: {left} of {HEADER_LEN} bytes"),
        ));
        return input.len();
    };
    let body_len = usize::from(count) * RECORD_LEN;
    let Some(body) = c.sub(body_len) else {
        out.push(reject(
            at,
            Some("count"),
            format!(
                "NetFlow v5 count {count} needs {} bytes, only {left} left; rest of input skipped",
                HEADER_LEN + body_len
            ),
        ));
        return input.len();
    };
    let export = Export {
        version: 5,
        domain: 0,
        template_id: 0,
        export_ns: i64::from(unix_secs) * 1_000_000_000 + i64::from(unix_nsecs),
        sys_uptime_ms: Some(sys_uptime),
        system_init_ms: None,
    };
    decode_set(body, &template(), &export, templates, out);
    c.pos()
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use relaytrace_model::{Location, Proto};

    use super::*;

    #[test]
    fn layout_is_48_bytes() {
        assert_eq!(template().min_record_len(), RECORD_LEN);
    }

    /// Header and first record of netflow5.dat (softflowd), field by field.
    const ONE_RECORD: [u8; 72] = [
        0x00, 0x05, // version = 5
        0x00, 0x01, // count = 1
        0x00, 0x00, 0x0d, 0x35, // sysUptime = 3381 ms
        0x55, 0x45, 0x19, 0x90, // unix_secs = 1430591888
        0x10, 0xb5, 0x77, 0x40, // unix_nsecs = 280328000
        0x00, 0x00, 0x00, 0x00, // flow_sequence = 0
        0x00, 0x00, 0x00, 0x00, // engine type/id, sampling = 0
        0x0a, 0x00, 0x02, 0x02, // srcaddr = 10.0.2.2
        0x0a, 0x00, 0x02, 0x0f, // dstaddr = 10.0.2.15
        0x00, 0x00, 0x00, 0x00, // nexthop = 0.0.0.0
        0x00, 0x00, // input = 0
        0x00, 0x00, // output = 0
        0x00, 0x00, 0x00, 0x05, // dPkts = 5
        0x00, 0x00, 0x00, 0xe6, // dOctets = 230
        0xff, 0xff, 0xff, 0xff, // First = uptime -1 ms (wrapped)
        0x00, 0x00, 0x0a, 0x11, // Last = 2577 ms
        0xd4, 0xa3, // srcport = 54435
        0x00, 0x16, // dstport = 22
        0x00, // pad1
        0x10, // tcp_flags = ACK
        0x06, // prot = TCP
        0x00, // tos
        0x00, 0x00, // src_as
        0x00, 0x00, // dst_as
        0x00, // src_mask
        0x00, // dst_mask
        0x00, 0x00, // pad2
    ];

    #[test]
    fn decodes_one_record() {
        let mut out = Vec::new();
        let next = parse_datagram(&ONE_RECORD, 0, &mut TemplateCache::default(), &mut out);
        assert_eq!(next, 72);
        let [Output::Conn(c)] = out.as_slice() else {
            panic!("expected one Conn, got {out:?}");
        };
        assert_eq!(c.orig_h, IpAddr::V4(Ipv4Addr::new(10, 0, 2, 2)));
        assert_eq!(c.resp_h, IpAddr::V4(Ipv4Addr::new(10, 0, 2, 15)));
        assert_eq!((c.proto, c.ip_proto), (Proto::Tcp, Some(6)));
        assert_eq!((c.orig_p, c.resp_p), (54435, 22));
        assert_eq!((c.orig_pkts, c.orig_ip_bytes), (Some(5), Some(230)));
        assert_eq!((c.resp_pkts, c.resp_ip_bytes), (None, None));
        // export 1430591888.280328 s; First is 3382 ms before export.
        assert_eq!(c.start_ns, 1_430_591_888_280_328_000 - 3_382_000_000);
        // Last - First = 2577 - (-1) = 2578 ms.
        assert_eq!(c.duration_ns, Some(2_578_000_000));
        assert_eq!(c.record, 24);
    }

    #[test]
    fn count_beyond_bytes_is_rejected_whole() {
        let mut bytes = ONE_RECORD;
        bytes[3] = 2; // count = 2, but only one record present
        let mut out = Vec::new();
        let next = parse_datagram(&bytes, 0, &mut TemplateCache::default(), &mut out);
        assert_eq!(next, bytes.len());
        let [Output::Reject(r)] = out.as_slice() else {
            panic!("expected one rejection, got {out:?}");
        };
        assert_eq!(r.location, Location::Offset(0));
        assert_eq!(r.field.as_deref(), Some("count"));
    }

    #[test]
    fn every_truncation_is_handled() {
        for n in 0..ONE_RECORD.len() {
            let mut out = Vec::new();
            let next = parse_datagram(&ONE_RECORD[..n], 0, &mut TemplateCache::default(), &mut out);
            assert_eq!(next, n);
            assert!(
                matches!(out.as_slice(), [Output::Reject(_)]),
                "{n}: {out:?}"
            );
        }
    }
}

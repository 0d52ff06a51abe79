//! One decoded data record to a [`Conn`] (flow records with addresses) or an
//! [`Event`] (options records, and records without IP addresses such as L2-only
//! flows).
//!
//! NetFlow/IPFIX flows are unidirectional: counters go to the `orig_*` side and
//! `resp_*` stays unset, except for RFC 5103 biflows whose reverse IEs
//! (enterprise 29305) fill `resp_*`. Byte counters are IP-level (octetDeltaCount
//! counts IP headers), so they fill `orig_ip_bytes`, never `orig_bytes`.

use std::net::IpAddr;

use serde_json::{Map, Value};

use relaytrace_model::{Conn, Event, Location, Proto, Rejection, MAX_COUNT};

use super::cursor::be_uint;
use super::fields::{self, *};
use super::template::FieldSpec;
use super::Output;

/// Seconds from the NTP epoch (1900) to the Unix epoch (1970), RFC 5905.
const NTP_UNIX_OFFSET_SECS: i64 = 2_208_988_800;

/// One field of a decoded record: its specifier and its bytes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Field<'a> {
    /// Which IE, from the template.
    pub(super) spec: FieldSpec,
    /// The value bytes (length from the template, or the variable-length prefix).
    pub(super) bytes: &'a [u8],
}

/// What the message header says, needed to place a record in time and to name
/// its exporter.
#[derive(Debug, Clone, Copy)]
pub(super) struct Export {
    /// 5, 9 or 10.
    pub(super) version: u16,
    /// v9 Source ID or IPFIX Observation Domain ID (0 for v5).
    pub(super) domain: u32,
    /// Template (set) ID of the record; 0 for v5.
    pub(super) template_id: u16,
    /// Export time of the message, ns since the Unix epoch.
    pub(super) export_ns: i64,
    /// v5/v9 header sysUptime (ms): base of sysUptime-relative flow times.
    pub(super) sys_uptime_ms: Option<u32>,
    /// IPFIX systemInitTimeMilliseconds learned from an options record.
    pub(super) system_init_ms: Option<i64>,
}

/// Converts one record. `options` is true for records of an options template;
/// `record_offset` is the record's byte offset in the input (its provenance).
pub(super) fn to_output(
    export: &Export,
    options: bool,
    fields: &[Field<'_>],
    record_offset: u64,
) -> Output {
    let (start, end) = flow_times(export, fields);
    if !options {
        if let Some(conn) = to_conn(export, fields, start, end, record_offset) {
            return match oversized_counter(&conn) {
                Some(rejection) => Output::Reject(rejection),
                None => Output::Conn(conn),
            };
        }
    }
    let kind = if options {
        "netflow-options"
    } else {
        "netflow-record"
    };
    Output::Event(Event {
        kind: kind.to_string(),
        ts_ns: Some(start.unwrap_or(export.export_ns)),
        uid: None,
        community_id: None,
        json: event_json(export, fields),
        record: record_offset,
    })
}

fn to_conn(
    export: &Export,
    fields: &[Field<'_>],
    start: Option<i64>,
    end: Option<i64>,
    record_offset: u64,
) -> Option<Conn> {
    let found = ConnFields::scan(fields);
    let orig_h = found.addrs[0]?.1;
    let resp_h = found.addrs[1]?.1;
    let uint = |slot: Slot| found.uints[slot as usize].map(|(_, v)| v);
    // The slots of the protocol and the ports only take values that fit (see `Slot`).
    let ip_proto = uint(Slot::Proto).map(|v| v as u8);
    let proto = ip_proto.map_or(Proto::Unknown, Proto::from_ip_proto);
    let mut orig_p = uint(Slot::OrigPort).map_or(0, |v| v as u16);
    let mut resp_p = uint(Slot::RespPort).map_or(0, |v| v as u16);
    if proto == Proto::Icmp {
        // Zeek puts ICMP type and code where the ports go; take them only from
        // explicit ICMP IEs, never from port fields some exporters overload.
        if let Some((t, c)) = icmp_type_code(fields) {
            orig_p = t;
            resp_p = c;
        }
    }
    let mut conn = Conn::new(
        proto,
        orig_h,
        orig_p,
        resp_h,
        resp_p,
        start.unwrap_or(export.export_ns),
    );
    conn.ip_proto = ip_proto;
    conn.duration_ns = match (start, end) {
        (Some(s), Some(e)) => e.checked_sub(s).filter(|d| *d >= 0),
        // IPFIX sysUpTime without a known system init time: the offsets are still
        // comparable with each other, so the duration is known though the start is not.
        _ => relative_duration(export, fields),
    };
    conn.orig_ip_bytes = uint(Slot::OrigBytes);
    conn.orig_pkts = uint(Slot::OrigPkts);
    conn.resp_ip_bytes = uint(Slot::RespBytes);
    conn.resp_pkts = uint(Slot::RespPkts);
    conn.record = record_offset;
    Some(conn)
}

/// A rejection for a connection with a byte or packet count the store cannot keep
/// (over [`MAX_COUNT`]: the tables' integer columns are signed 64-bit, and such a
/// value was clamped to the largest one without a word). Eight-byte counters allow
/// it; no real flow comes near it, so the record is corrupt or forged, and rejected
/// at its offset like a record of any other format with an impossible count.
fn oversized_counter(conn: &Conn) -> Option<Rejection> {
    let counters = [
        ("orig_ip_bytes", conn.orig_ip_bytes),
        ("orig_pkts", conn.orig_pkts),
        ("resp_ip_bytes", conn.resp_ip_bytes),
        ("resp_pkts", conn.resp_pkts),
    ];
    let (field, n) = counters
        .into_iter()
        .find_map(|(field, v)| v.filter(|&n| n > MAX_COUNT).map(|n| (field, n)))?;
    Some(Rejection {
        location: Location::Offset(conn.record),
        field: Some(field.to_string()),
        reason: format!(
            "flow counter {n} is larger than {MAX_COUNT}, the largest count the store keeps (a 64-bit signed column)"
        ),
    })
}

/// The integer fields of a connection that a flow record's IEs fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// protocolIdentifier; only values that fit a `u8`.
    Proto,
    /// sourceTransportPort; only values that fit a `u16`.
    OrigPort,
    /// destinationTransportPort; only values that fit a `u16`.
    RespPort,
    /// octetDeltaCount, else octetTotalCount.
    OrigBytes,
    /// packetDeltaCount, else packetTotalCount.
    OrigPkts,
    /// The reverse (RFC 5103) octet counters.
    RespBytes,
    /// The reverse (RFC 5103) packet counters.
    RespPkts,
}

impl Slot {
    /// Largest value the slot takes; a larger field is not decodable for it.
    fn max(self) -> u64 {
        match self {
            Slot::Proto => u64::from(u8::MAX),
            Slot::OrigPort | Slot::RespPort => u64::from(u16::MAX),
            _ => u64::MAX,
        }
    }
}

/// Which connection field a forward (IANA, non-scope) IE fills, and its precedence
/// among the IEs that fill it (0 first): `Ok` an address (0 originator, 1 responder),
/// `Err` an integer slot.
fn forward_target(ie: u16) -> Option<(Result<usize, Slot>, u8)> {
    Some(match ie {
        SOURCE_IPV4_ADDRESS => (Ok(0), 0),
        SOURCE_IPV6_ADDRESS => (Ok(0), 1),
        DESTINATION_IPV4_ADDRESS => (Ok(1), 0),
        DESTINATION_IPV6_ADDRESS => (Ok(1), 1),
        PROTOCOL_IDENTIFIER => (Err(Slot::Proto), 0),
        SOURCE_TRANSPORT_PORT => (Err(Slot::OrigPort), 0),
        DESTINATION_TRANSPORT_PORT => (Err(Slot::RespPort), 0),
        OCTET_DELTA_COUNT => (Err(Slot::OrigBytes), 0),
        OCTET_TOTAL_COUNT => (Err(Slot::OrigBytes), 1),
        PACKET_DELTA_COUNT => (Err(Slot::OrigPkts), 0),
        PACKET_TOTAL_COUNT => (Err(Slot::OrigPkts), 1),
        _ => return None,
    })
}

/// Like [`forward_target`] for RFC 5103 reverse IEs (enterprise 29305).
fn reverse_target(ie: u16) -> Option<(Slot, u8)> {
    Some(match ie {
        OCTET_DELTA_COUNT => (Slot::RespBytes, 0),
        OCTET_TOTAL_COUNT => (Slot::RespBytes, 1),
        PACKET_DELTA_COUNT => (Slot::RespPkts, 0),
        PACKET_TOTAL_COUNT => (Slot::RespPkts, 1),
        _ => return None,
    })
}

/// A record's connection fields, found in one pass over its fields. Each slot keeps
/// the first decodable value of its most preferred IE present, exactly as looking up
/// each IE in turn ([`find`]) would. With a scan of the record per IE, `to_output`
/// (times, fields and the `Conn`) was 10 % of a NetFlow v9 ingest's samples; with one
/// pass, 6–7 % (perf, 6 M generated records, 2026-11-30).
struct ConnFields {
    addrs: [Option<(u8, IpAddr)>; 2],
    uints: [Option<(u8, u64)>; 7],
}

impl ConnFields {
    fn scan(fields: &[Field<'_>]) -> ConnFields {
        let mut found = ConnFields {
            addrs: [None; 2],
            uints: [None; 7],
        };
        for f in fields {
            let target = match f.spec.pen {
                None if !f.spec.scope => forward_target(f.spec.ie),
                Some(REVERSE_PEN) => reverse_target(f.spec.ie).map(|(s, r)| (Err(s), r)),
                _ => None,
            };
            match target {
                Some((Ok(side), rank)) => {
                    let slot = &mut found.addrs[side];
                    if slot.is_some_and(|(r, _)| r <= rank) {
                        continue;
                    }
                    if let Some(a) = fields::address(f.bytes) {
                        *slot = Some((rank, a));
                    }
                }
                Some((Err(which), rank)) => {
                    let slot = &mut found.uints[which as usize];
                    if slot.is_some_and(|(r, _)| r <= rank) {
                        continue;
                    }
                    if let Some(v) = be_uint(f.bytes).filter(|&v| v <= which.max()) {
                        *slot = Some((rank, v));
                    }
                }
                None => {}
            }
        }
        found
    }
}

/// First decodable value among the forward (IANA, non-scope) fields with these
/// IEs, tried in the order given.
fn find<T>(fields: &[Field<'_>], ies: &[u16], decode: impl Fn(&[u8]) -> Option<T>) -> Option<T> {
    ies.iter().find_map(|ie| {
        fields
            .iter()
            .filter(|f| f.spec.ie == *ie && f.spec.pen.is_none() && !f.spec.scope)
            .find_map(|f| decode(f.bytes))
    })
}

fn uint_u8(b: &[u8]) -> Option<u8> {
    be_uint(b).and_then(|v| u8::try_from(v).ok())
}

fn uint_u16(b: &[u8]) -> Option<u16> {
    be_uint(b).and_then(|v| u16::try_from(v).ok())
}

fn icmp_type_code(fields: &[Field<'_>]) -> Option<(u16, u16)> {
    for (t, c) in [
        (ICMP_TYPE_IPV4, ICMP_CODE_IPV4),
        (ICMP_TYPE_IPV6, ICMP_CODE_IPV6),
    ] {
        if let (Some(t), Some(c)) = (find(fields, &[t], uint_u8), find(fields, &[c], uint_u8)) {
            return Some((u16::from(t), u16::from(c)));
        }
    }
    find(
        fields,
        &[ICMP_TYPE_CODE_IPV4, ICMP_TYPE_CODE_IPV6],
        uint_u16,
    )
    .map(|v| (v >> 8, v & 0xff))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Edge {
    Start,
    End,
}

/// The flow's start and end in ns since the Unix epoch, each from the most precise
/// time IE present: absolute times first, then deltas from export time, then
/// sysUpTime (the order of [`time_rank`]). Among fields of the same IE the first
/// decodable one counts.
///
/// One pass over the fields for both edges: looking each IE up in turn (six IEs per
/// edge, a scan of the record's fields each) was 9% of a NetFlow v9 ingest (perf, 2 M
/// generated records, 2026-11-30).
fn flow_times(export: &Export, fields: &[Field<'_>]) -> (Option<i64>, Option<i64>) {
    // (rank, value) of the best time found so far, per edge.
    let mut best: [Option<(u8, i64)>; 2] = [None, None];
    for f in fields {
        if f.spec.pen.is_some() || f.spec.scope {
            continue;
        }
        let Some((edge, rank)) = time_rank(f.spec.ie) else {
            continue;
        };
        let slot = &mut best[edge as usize];
        if slot.is_some_and(|(r, _)| r <= rank) {
            continue;
        }
        if let Some(v) = time_ns(export, f.spec.ie, f.bytes) {
            *slot = Some((rank, v));
        }
    }
    (best[0].map(|b| b.1), best[1].map(|b| b.1))
}

/// Which edge a time IE gives and its precedence (0 = most precise).
fn time_rank(ie: u16) -> Option<(Edge, u8)> {
    Some(match ie {
        FLOW_START_NANOSECONDS => (Edge::Start, 0),
        FLOW_START_MICROSECONDS => (Edge::Start, 1),
        FLOW_START_MILLISECONDS => (Edge::Start, 2),
        FLOW_START_SECONDS => (Edge::Start, 3),
        FLOW_START_DELTA_MICROSECONDS => (Edge::Start, 4),
        FLOW_START_SYS_UP_TIME => (Edge::Start, 5),
        FLOW_END_NANOSECONDS => (Edge::End, 0),
        FLOW_END_MICROSECONDS => (Edge::End, 1),
        FLOW_END_MILLISECONDS => (Edge::End, 2),
        FLOW_END_SECONDS => (Edge::End, 3),
        FLOW_END_DELTA_MICROSECONDS => (Edge::End, 4),
        FLOW_END_SYS_UP_TIME => (Edge::End, 5),
        _ => return None,
    })
}

/// Decodes one time IE to ns since the Unix epoch, with checked arithmetic (a
/// hostile counter must not overflow).
fn time_ns(export: &Export, ie: u16, bytes: &[u8]) -> Option<i64> {
    match ie {
        FLOW_START_SECONDS | FLOW_END_SECONDS => i64::try_from(be_uint(bytes)?)
            .ok()?
            .checked_mul(1_000_000_000),
        FLOW_START_MILLISECONDS | FLOW_END_MILLISECONDS => {
            i64::try_from(be_uint(bytes)?).ok()?.checked_mul(1_000_000)
        }
        FLOW_START_MICROSECONDS | FLOW_END_MICROSECONDS => {
            // dateTimeMicroseconds: NTP format whose low 11 fraction bits are
            // meaningless (RFC 7011 §6.1.9).
            ntp_ns(bytes, 0xffff_f800)
        }
        FLOW_START_NANOSECONDS | FLOW_END_NANOSECONDS => ntp_ns(bytes, 0xffff_ffff),
        FLOW_START_DELTA_MICROSECONDS | FLOW_END_DELTA_MICROSECONDS => {
            let delta = i64::try_from(be_uint(bytes)?).ok()?.checked_mul(1_000)?;
            export.export_ns.checked_sub(delta)
        }
        FLOW_START_SYS_UP_TIME | FLOW_END_SYS_UP_TIME => {
            let at = u32::try_from(be_uint(bytes)?).ok()?;
            if let Some(uptime) = export.sys_uptime_ms {
                // v5/v9: ms of router uptime; the header gives uptime at export.
                // Wrapping difference read as i32 survives the 49.7-day uptime
                // wrap and a flow stamped a little after the header.
                let age_ms = i64::from(uptime.wrapping_sub(at) as i32);
                export.export_ns.checked_sub(age_ms.checked_mul(1_000_000)?)
            } else {
                let init = export.system_init_ms?;
                init.checked_add(i64::from(at))?.checked_mul(1_000_000)
            }
        }
        _ => None,
    }
}

/// NTP 64-bit timestamp (RFC 5905: seconds since 1900, 2^-32 s fraction) to ns
/// since the Unix epoch.
fn ntp_ns(bytes: &[u8], fraction_mask: u32) -> Option<i64> {
    let b: [u8; 8] = bytes.try_into().ok()?;
    let secs = i64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    let frac = u32::from_be_bytes([b[4], b[5], b[6], b[7]]) & fraction_mask;
    let frac_ns = i64::try_from((u64::from(frac) * 1_000_000_000) >> 32).ok()?;
    (secs - NTP_UNIX_OFFSET_SECS)
        .checked_mul(1_000_000_000)?
        .checked_add(frac_ns)
}

/// Duration from sysUpTime start/end alone (IPFIX without system init time).
fn relative_duration(export: &Export, fields: &[Field<'_>]) -> Option<i64> {
    if export.sys_uptime_ms.is_some() || export.system_init_ms.is_some() {
        return None;
    }
    let ms = |ie| find(fields, &[ie], be_uint);
    let (s, e) = (ms(FLOW_START_SYS_UP_TIME)?, ms(FLOW_END_SYS_UP_TIME)?);
    let d = i64::try_from(e.checked_sub(s)?).ok()?;
    d.checked_mul(1_000_000)
}

/// `{"version":..,"domain":..,"template_id":..,"fields":{name: value}}`; repeated
/// IEs get `#2`, `#3`... suffixes so none is lost.
fn event_json(export: &Export, fields: &[Field<'_>]) -> String {
    let mut decoded = Map::new();
    for f in fields {
        let base = fields::name(export.version, &f.spec);
        let mut key = base.clone();
        let mut n = 1;
        while decoded.contains_key(&key) {
            n += 1;
            key = format!("{base}#{n}");
        }
        decoded.insert(key, fields::value(export.version, &f.spec, f.bytes));
    }
    let mut obj = Map::new();
    obj.insert("version".into(), Value::from(export.version));
    obj.insert("domain".into(), Value::from(export.domain));
    obj.insert("template_id".into(), Value::from(export.template_id));
    obj.insert("fields".into(), Value::Object(decoded));
    Value::Object(obj).to_string()
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;

    fn f(ie: u16, bytes: &[u8]) -> Field<'_> {
        Field {
            spec: FieldSpec {
                ie,
                pen: None,
                len: bytes.len() as u16,
                scope: false,
            },
            bytes,
        }
    }

    const IPFIX: Export = Export {
        version: 10,
        domain: 0,
        template_id: 256,
        export_ns: 1_431_516_026_000_000_000,
        sys_uptime_ms: None,
        system_init_ms: None,
    };

    #[test]
    fn biflow_fills_both_directions() {
        let reverse = |ie, bytes| Field {
            spec: FieldSpec {
                ie,
                pen: Some(REVERSE_PEN),
                len: 8,
                scope: false,
            },
            bytes,
        };
        let fields = [
            f(8, &[10, 0, 0, 1]),                        // sourceIPv4Address = 10.0.0.1
            f(12, &[10, 0, 0, 2]),                       // destinationIPv4Address = 10.0.0.2
            f(4, &[6]),                                  // protocolIdentifier = TCP
            f(7, &[0x04, 0xd2]),                         // sourceTransportPort = 1234
            f(11, &[0x00, 0x50]),                        // destinationTransportPort = 80
            f(1, &[0x00, 0x00, 0x01, 0x00]),             // octetDeltaCount = 256
            f(2, &[0x03]),                               // packetDeltaCount = 3 (reduced size)
            reverse(1, &[0, 0, 0, 0, 0, 0, 0x10, 0x00]), // reverseOctetDeltaCount = 4096
            reverse(2, &[0, 0, 0, 0, 0, 0, 0, 0x05]),    // reversePacketDeltaCount = 5
            f(150, &[0x55, 0x53, 0x33, 0x70]),           // flowStartSeconds = 1431516016
            f(151, &[0x55, 0x53, 0x33, 0x7a]),           // flowEndSeconds = 1431516026
        ];
        let Output::Conn(c) = to_output(&IPFIX, false, &fields, 42) else {
            panic!("expected a Conn");
        };
        assert_eq!(c.orig_h, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!((c.proto, c.orig_p, c.resp_p), (Proto::Tcp, 1234, 80));
        assert_eq!((c.orig_ip_bytes, c.orig_pkts), (Some(256), Some(3)));
        assert_eq!((c.resp_ip_bytes, c.resp_pkts), (Some(4096), Some(5)));
        assert_eq!(c.orig_bytes, None, "payload bytes unknown");
        assert_eq!(c.start_ns, 1_431_516_016_000_000_000);
        assert_eq!(c.duration_ns, Some(10_000_000_000));
        assert_eq!(c.record, 42);
    }

    /// An eight-byte counter beyond what the tables keep rejects the record at its
    /// offset, naming the field (it was clamped silently); the largest value kept is
    /// still a connection.
    #[test]
    fn a_counter_beyond_the_store_s_range_rejects_the_record() {
        let record = |packets: u64| {
            let bytes = packets.to_be_bytes();
            let fields = [
                f(8, &[10, 0, 0, 1]),  // sourceIPv4Address
                f(12, &[10, 0, 0, 2]), // destinationIPv4Address
                f(4, &[17]),           // protocolIdentifier: UDP
                f(2, &bytes),          // packetDeltaCount, 8 bytes
            ];
            to_output(&IPFIX, false, &fields, 77)
        };
        let Output::Conn(c) = record(MAX_COUNT) else {
            panic!("the largest count kept is a connection");
        };
        assert_eq!(c.orig_pkts, Some(MAX_COUNT));
        let Output::Reject(r) = record(MAX_COUNT + 1) else {
            panic!("a count over the store's range must be rejected");
        };
        assert_eq!(r.location, Location::Offset(77));
        assert_eq!(r.field.as_deref(), Some("orig_pkts"));
        assert!(r.reason.contains("9223372036854775808"), "{}", r.reason);
    }

    /// Each connection field comes from its most preferred IE present, the first
    /// decodable field of it, whatever the field order: what looking each IE up in turn
    /// gave before the one-pass scan.
    #[test]
    fn the_preferred_decodable_field_wins_whatever_the_field_order() {
        let scoped = |ie, bytes| Field {
            spec: FieldSpec {
                ie,
                pen: None,
                len: 4,
                scope: true,
            },
            bytes,
        };
        let v6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9];
        let fields = [
            f(27, &v6),                         // sourceIPv6Address: less preferred than v4
            f(8, &[10, 0, 0, 44]),              // sourceIPv4Address 10.0.0.44
            scoped(12, &[192, 0, 2, 7]),        // a scope field never fills a connection field
            f(12, &[10, 0, 0, 2]),              // destinationIPv4Address
            f(85, &[0, 0, 0, 0, 0, 0, 0, 100]), // octetTotalCount: less preferred
            f(1, &[0; 9]),                      // octetDeltaCount too long: not decodable
            f(1, &[0, 0, 0, 50]),               // octetDeltaCount 50: the one
            f(1, &[0, 0, 0, 60]),               // a second one: the first decodable counts
            f(4, &[0x01, 0x2c]),                // protocolIdentifier 300: does not fit a u8
            f(4, &[17]),                        // protocolIdentifier UDP
            f(7, &[0x01, 0x00, 0x00]),          // sourceTransportPort 65536: does not fit
            f(7, &[0x04, 0xd2]),                // sourceTransportPort 1234
            f(86, &[7]),                        // packetTotalCount 7: the only packet count
        ];
        let Output::Conn(c) = to_output(&IPFIX, false, &fields, 1) else {
            panic!("expected a Conn");
        };
        assert_eq!(c.orig_h, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 44)));
        assert_eq!(c.resp_h, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)));
        assert_eq!((c.proto, c.ip_proto), (Proto::Udp, Some(17)));
        assert_eq!((c.orig_p, c.resp_p), (1234, 0));
        assert_eq!((c.orig_ip_bytes, c.orig_pkts), (Some(50), Some(7)));
        assert_eq!((c.resp_ip_bytes, c.resp_pkts), (None, None));
    }

    #[test]
    fn the_most_precise_decodable_time_wins_whatever_the_field_order() {
        let fields = [
            f(150, &[0x55, 0x53, 0x33, 0x70]), // flowStartSeconds 1431516016
            f(152, &[]),                       // flowStartMilliseconds, undecodable (empty)
            f(152, &[0, 0, 0x01, 0x4d, 0x4d, 0x00, 0xfb, 0xe8]), // 1431516019688 ms
            f(152, &[0, 0, 0x01, 0x4d, 0x4d, 0x00, 0xfb, 0xe9]), // same IE again: ignored
            f(151, &[0x55, 0x53, 0x33, 0x7a]), // flowEndSeconds 1431516026
        ];
        assert_eq!(
            flow_times(&IPFIX, &fields),
            (
                Some(1_431_516_019_688_000_000),
                Some(1_431_516_026_000_000_000)
            )
        );
    }

    #[test]
    fn ntp_and_delta_times() {
        // 2015-05-13T11:20:16.5Z as NTP: secs 1431516016 + 2208988800 = 3640504816 =
        // 0xd8fdb1f0, fraction 0x80000000 = 0.5 s.
        let start = [0xd8, 0xfd, 0xb1, 0xf0, 0x80, 0x00, 0x00, 0x00];
        let fields = [
            f(156, &start),                    // flowStartNanoseconds
            f(159, &[0x00, 0x0f, 0x42, 0x40]), // flowEndDeltaMicroseconds = 1 s before export
        ];
        assert_eq!(
            flow_times(&IPFIX, &fields),
            (
                Some(1_431_516_016_500_000_000),
                Some(1_431_516_025_000_000_000)
            )
        );
    }

    #[test]
    fn v9_uptime_relative_times_and_wrap() {
        let v9 = Export {
            version: 9,
            sys_uptime_ms: Some(3381),
            ..IPFIX
        };
        // FIRST_SWITCHED = 0xffffffff: one ms before uptime wrapped to 0.
        let fields = [f(22, &[0xff; 4]), f(21, &[0x00, 0x00, 0x0a, 0x11])];
        assert_eq!(
            flow_times(&v9, &fields),
            (
                Some(IPFIX.export_ns - 3_382_000_000),
                Some(IPFIX.export_ns - 804_000_000)
            )
        );
    }

    #[test]
    fn ipfix_uptime_without_init_keeps_duration_only() {
        let fields = [
            f(8, &[10, 0, 0, 1]),
            f(12, &[10, 0, 0, 2]),
            f(22, &[0, 0, 0, 0]),       // flowStartSysUpTime = 0
            f(21, &[0, 0, 0x31, 0xb6]), // flowEndSysUpTime = 12726
        ];
        let Output::Conn(c) = to_output(&IPFIX, false, &fields, 0) else {
            panic!("expected a Conn");
        };
        assert_eq!(c.start_ns, IPFIX.export_ns);
        assert_eq!(c.duration_ns, Some(12_726_000_000));
        assert_eq!(c.proto, Proto::Unknown);
        assert_eq!(c.ip_proto, None);
    }

    #[test]
    fn no_addresses_becomes_event() {
        let fields = [
            f(56, &[0, 0x50, 0x56, 0xc0, 0, 1]), // sourceMacAddress
            f(2, &[0, 0, 0, 9]),                 // packetDeltaCount = 9
            f(2, &[0, 0, 0, 7]),                 // repeated IE
        ];
        let Output::Event(e) = to_output(&IPFIX, false, &fields, 7) else {
            panic!("expected an Event");
        };
        assert_eq!(e.kind, "netflow-record");
        assert_eq!(e.ts_ns, Some(IPFIX.export_ns));
        let v: Value = serde_json::from_str(&e.json).unwrap();
        assert_eq!(v["fields"]["sourceMacAddress"], "00:50:56:c0:00:01");
        assert_eq!(v["fields"]["packetDeltaCount"], 9);
        assert_eq!(v["fields"]["packetDeltaCount#2"], 7);
        assert_eq!(v["template_id"], 256);
    }

    #[test]
    fn icmp_type_code_go_to_ports() {
        let fields = [
            f(8, &[10, 0, 0, 1]),
            f(12, &[10, 0, 0, 2]),
            f(4, &[1]),   // ICMP
            f(176, &[8]), // icmpTypeIPv4 = echo request
            f(177, &[0]), // icmpCodeIPv4 = 0
        ];
        let Output::Conn(c) = to_output(&IPFIX, false, &fields, 0) else {
            panic!("expected a Conn");
        };
        assert_eq!((c.proto, c.orig_p, c.resp_p), (Proto::Icmp, 8, 0));
    }
}

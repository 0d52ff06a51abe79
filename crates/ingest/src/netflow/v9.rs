//! NetFlow v9 export packets (RFC 3954): a 20-byte header, then FlowSets —
//! ID 0 templates (§5.2), ID 1 options templates (§6.1), ID ≥ 256 data (§5.3).
//!
//! The header carries a record count but no length, and exporters get the count
//! wrong, so a packet ends where its FlowSets end: at the end of input, at bytes
//! that cannot be a FlowSet header (IDs 2–255 are reserved, which also catches the
//! next packet's version 5/9/10), or at zero padding.

use super::cursor::{all_zero, Cursor};
use super::flow::Export;
use super::record::{decode_set, exporter};
use super::template::{read_field_specs, Template, TemplateCache};
use super::{reject, Output};

/// Version 9 in the header.
const VERSION: u16 = 9;
/// Header bytes (RFC 3954 §5.1).
const HEADER_LEN: usize = 20;
/// FlowSet ID of template FlowSets.
const TEMPLATE_FLOWSET: u16 = 0;
/// FlowSet ID of options template FlowSets.
const OPTIONS_TEMPLATE_FLOWSET: u16 = 1;
/// Lowest data FlowSet (= template) ID.
const MIN_DATA_FLOWSET: u16 = 256;

/// Parses the v9 packet at `at`; returns where the next packet (or padding) starts.
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
        let _count = c.u16()?;
        let sys_uptime = c.u32()?;
        let unix_secs = c.u32()?;
        let _sequence = c.u32()?;
        let source_id = c.u32()?;
        Some((sys_uptime, unix_secs, source_id))
    })();
    let Some((sys_uptime, unix_secs, source_id)) = header else {
        out.push(reject(
            at,
            None,
            format!("truncated NetFlow v9 header: {left} of {HEADER_LEN} bytes"),
        ));
        return input.len();
    };
    let mut export = Export {
        version: VERSION,
        domain: source_id,
        template_id: 0,
        export_ns: i64::from(unix_secs) * 1_000_000_000,
        sys_uptime_ms: Some(sys_uptime),
        system_init_ms: None,
    };
    loop {
        let (Some(id), Some(len)) = (c.peek_u16(0), c.peek_u16(2)) else {
            // Fewer than 4 bytes: end of input, or something the caller judges.
            return c.pos();
        };
        if (2..MIN_DATA_FLOWSET).contains(&id) || (id == 0 && len == 0) {
            // Not a FlowSet: the next packet's header, or zero padding.
            return c.pos();
        }
        let set_at = c.pos();
        let len = usize::from(len);
        if len < 4 || len > c.remaining() {
            out.push(reject(
                set_at,
                Some("flowset_length"),
                format!(
                    "FlowSet {id} length {len} is not within 4..={} bytes left; rest of input skipped",
                    c.remaining()
                ),
            ));
            return input.len();
        }
        let Some(mut set) = c.sub(len) else {
            return input.len();
        };
        let _header = set.take(4);
        match id {
            TEMPLATE_FLOWSET => template_flowset(set, source_id, templates, out),
            OPTIONS_TEMPLATE_FLOWSET => options_template_flowset(set, source_id, templates, out),
            _ => match templates.get(VERSION, source_id, id).cloned() {
                Some(template) => {
                    export.template_id = id;
                    decode_set(set, &template, &export, templates, out);
                }
                None => out.push(reject(
                    set_at,
                    None,
                    format!(
                        "no template {id} known for {}; data FlowSet of {len} bytes skipped",
                        exporter(VERSION, source_id)
                    ),
                )),
            },
        }
    }
}

/// Template FlowSet (RFC 3954 §5.2): records of template ID, field count, then
/// (type, length) pairs.
fn template_flowset(
    mut set: Cursor<'_>,
    source_id: u32,
    templates: &mut TemplateCache,
    out: &mut Vec<Output>,
) {
    while set.remaining() >= 4 && !all_zero(set.rest()) {
        let at = set.pos();
        let (Some(id), Some(count)) = (set.u16(), set.u16()) else {
            return;
        };
        let Some(fields) = read_field_specs(&mut set, usize::from(count), 0, false) else {
            out.push(reject(
                at,
                None,
                format!("template {id} declares {count} fields but its FlowSet ends first"),
            ));
            return;
        };
        store(at, id, fields, false, source_id, templates, out);
    }
}

/// Options Template FlowSet (RFC 3954 §6.1): template ID, scope length and option
/// length in bytes, then scope and option (type, length) pairs.
fn options_template_flowset(
    mut set: Cursor<'_>,
    source_id: u32,
    templates: &mut TemplateCache,
    out: &mut Vec<Output>,
) {
    while set.remaining() >= 6 && !all_zero(set.rest()) {
        let at = set.pos();
        let (Some(id), Some(scope_len), Some(option_len)) = (set.u16(), set.u16(), set.u16())
        else {
            return;
        };
        let (scope_len, option_len) = (usize::from(scope_len), usize::from(option_len));
        if scope_len % 4 != 0 || option_len % 4 != 0 {
            out.push(reject(
                at,
                None,
                format!(
                    "options template {id}: scope length {scope_len} and option length {option_len} must be multiples of 4"
                ),
            ));
            return;
        }
        let (scopes, count) = (scope_len / 4, scope_len / 4 + option_len / 4);
        let Some(fields) = read_field_specs(&mut set, count, scopes, false) else {
            out.push(reject(
                at,
                None,
                format!("options template {id} declares {count} fields but its FlowSet ends first"),
            ));
            return;
        };
        store(at, id, fields, true, source_id, templates, out);
    }
}

fn store(
    at: usize,
    id: u16,
    fields: Vec<super::template::FieldSpec>,
    options: bool,
    source_id: u32,
    templates: &mut TemplateCache,
    out: &mut Vec<Output>,
) {
    if id < MIN_DATA_FLOWSET {
        out.push(reject(at, None, format!("template ID {id} is below 256")));
        return;
    }
    if fields.is_empty() {
        out.push(reject(at, None, format!("template {id} has no fields")));
        return;
    }
    if let Err(full) = templates.insert(VERSION, source_id, id, Template { fields, options }) {
        out.push(reject(
            at,
            None,
            format!("template {id} not stored: {}", full.reason()),
        ));
    }
}

#[cfg(test)]
mod tests {
    use relaytrace_model::Location;

    use super::*;

    const HEADER: [u8; 20] = [
        0x00, 0x09, // version = 9
        0x00, 0x03, // count = 3 records
        0x00, 0x00, 0x10, 0x00, // sysUptime = 4096 ms
        0x55, 0x16, 0x9c, 0x40, // unix_secs = 1427545152
        0x00, 0x00, 0x00, 0x01, // sequence = 1
        0x00, 0x00, 0x00, 0x07, // source id = 7
    ];

    const TEMPLATE_SET: [u8; 28] = [
        0x00, 0x00, // FlowSet ID = 0 (templates)
        0x00, 0x1c, // length = 28
        0x01, 0x00, // template ID = 256
        0x00, 0x05, // field count = 5
        0x00, 0x08, 0x00, 0x04, // IPV4_SRC_ADDR (8), 4 bytes
        0x00, 0x0c, 0x00, 0x04, // IPV4_DST_ADDR (12), 4 bytes
        0x00, 0x04, 0x00, 0x01, // PROTOCOL (4), 1 byte
        0x00, 0x16, 0x00, 0x04, // FIRST_SWITCHED (22), 4 bytes
        0x00, 0x50, 0x00, 0x00, // IN_DST_MAC (80), 0 bytes (v9 allows zero length)
    ];

    const DATA_SET: [u8; 20] = [
        0x01, 0x00, // FlowSet ID = 256
        0x00, 0x14, // length = 20
        0xc0, 0xa8, 0x00, 0x01, // src = 192.168.0.1
        0xc0, 0xa8, 0x00, 0x02, // dst = 192.168.0.2
        0x11, // protocol = 17 (UDP)
        0x00, 0x00, 0x0c, 0x00, // FIRST_SWITCHED = 3072 ms, 1024 ms before export
        0x00, 0x00, 0x00, // padding to 4 bytes
    ];

    const OPTIONS_SET: [u8; 24] = [
        0x00, 0x01, // FlowSet ID = 1 (options templates)
        0x00, 0x18, // length = 24
        0x01, 0x01, // template ID = 257
        0x00, 0x04, // scope length = 4 (one scope field)
        0x00, 0x08, // option length = 8 (two option fields)
        0x00, 0x01, 0x00, 0x04, // scope System (1), 4 bytes
        0x00, 0x22, 0x00, 0x04, // SAMPLING_INTERVAL (34), 4 bytes
        0x00, 0x23, 0x00, 0x01, // SAMPLING_ALGORITHM (35), 1 byte
        0x00, 0x00, // padding
    ];

    const OPTIONS_DATA: [u8; 16] = [
        0x01, 0x01, // FlowSet ID = 257
        0x00, 0x10, // length = 16
        0x0a, 0x00, 0x00, 0x01, // scope System = 167772161
        0x00, 0x00, 0x00, 0x64, // sampling interval = 100
        0x02, // sampling algorithm = 2 (random)
        0x00, 0x00, 0x00, // padding
    ];

    fn packet(sets: &[&[u8]]) -> Vec<u8> {
        let mut v = HEADER.to_vec();
        for s in sets {
            v.extend_from_slice(s);
        }
        v
    }

    #[test]
    fn template_then_data_in_one_packet() {
        let bytes = packet(&[&TEMPLATE_SET, &DATA_SET]);
        let mut cache = TemplateCache::default();
        let mut out = Vec::new();
        assert_eq!(parse_datagram(&bytes, 0, &mut cache, &mut out), bytes.len());
        let [Output::Conn(c)] = out.as_slice() else {
            panic!("expected one Conn, got {out:?}");
        };
        assert_eq!(c.orig_h.to_string(), "192.168.0.1");
        assert_eq!(c.resp_h.to_string(), "192.168.0.2");
        assert_eq!(c.ip_proto, Some(17));
        assert_eq!(c.start_ns, 1_427_545_152_000_000_000 - 1_024_000_000);
        assert_eq!(c.duration_ns, None, "no LAST_SWITCHED");
        assert_eq!(c.record, 52, "20 header + 28 template set + 4 set header");
    }

    #[test]
    fn options_records_become_events() {
        let bytes = packet(&[&OPTIONS_SET, &OPTIONS_DATA]);
        let mut out = Vec::new();
        parse_datagram(&bytes, 0, &mut TemplateCache::default(), &mut out);
        let [Output::Event(e)] = out.as_slice() else {
            panic!("expected one Event, got {out:?}");
        };
        assert_eq!(e.kind, "netflow-options");
        let v: serde_json::Value = serde_json::from_str(&e.json).unwrap();
        assert_eq!(v["fields"]["scopeSystem"], 167_772_161);
        assert_eq!(v["fields"]["samplingInterval"], 100);
        assert_eq!(v["fields"]["samplingAlgorithm"], 2);
        assert_eq!(v["domain"], 7);
    }

    #[test]
    fn data_before_template_is_rejected_with_offset() {
        let bytes = packet(&[&DATA_SET]);
        let mut out = Vec::new();
        parse_datagram(&bytes, 0, &mut TemplateCache::default(), &mut out);
        let [Output::Reject(r)] = out.as_slice() else {
            panic!("expected one rejection, got {out:?}");
        };
        assert_eq!(r.location, Location::Offset(20));
        assert!(r.reason.contains("template 256"), "{}", r.reason);
        assert!(r.reason.contains("source id 7"), "{}", r.reason);
    }

    #[test]
    fn packet_ends_at_next_header_or_padding() {
        let mut bytes = packet(&[&TEMPLATE_SET]);
        let end = bytes.len();
        bytes.extend_from_slice(&HEADER); // next packet
        let mut out = Vec::new();
        assert_eq!(
            parse_datagram(&bytes, 0, &mut TemplateCache::default(), &mut out),
            end
        );
        let mut padded = packet(&[&TEMPLATE_SET]);
        padded.extend_from_slice(&[0; 64]);
        assert_eq!(
            parse_datagram(&padded, 0, &mut TemplateCache::default(), &mut out),
            end
        );
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn bad_flowset_length_is_rejected() {
        let mut set = DATA_SET;
        set[3] = 0xff; // length 255, beyond the packet
        let bytes = packet(&[&TEMPLATE_SET, &set]);
        let mut out = Vec::new();
        assert_eq!(
            parse_datagram(&bytes, 0, &mut TemplateCache::default(), &mut out),
            bytes.len()
        );
        let [Output::Reject(r)] = out.as_slice() else {
            panic!("expected one rejection, got {out:?}");
        };
        assert_eq!(r.location, Location::Offset(48));
    }

    #[test]
    fn every_truncation_is_handled() {
        let bytes = packet(&[&TEMPLATE_SET, &DATA_SET, &OPTIONS_SET, &OPTIONS_DATA]);
        for n in 0..bytes.len() {
            let mut out = Vec::new();
            let next = parse_datagram(&bytes[..n], 0, &mut TemplateCache::default(), &mut out);
            assert!(next <= n, "{n}");
        }
    }
}

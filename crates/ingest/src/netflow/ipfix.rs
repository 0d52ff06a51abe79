//! IPFIX messages (RFC 7011): a 16-byte header with the message length, then Sets —
//! ID 2 templates (§3.4.1), ID 3 options templates (§3.4.2), ID ≥ 256 data.
//!
//! Field specifiers may be enterprise-specific (top bit, then a 4-byte PEN) and
//! variable-length (length 65535); template records with no fields withdraw
//! templates (§8.1).

use super::cursor::{all_zero, Cursor};
use super::flow::Export;
use super::record::{decode_set, exporter};
use super::template::{read_field_specs, Template, TemplateCache};
use super::{reject, Output};

/// Version 10 in the header.
const VERSION: u16 = 10;
/// Header bytes (RFC 7011 §3.1).
const HEADER_LEN: usize = 16;
/// Set ID of template sets.
const TEMPLATE_SET: u16 = 2;
/// Set ID of options template sets.
const OPTIONS_TEMPLATE_SET: u16 = 3;
/// Lowest data set (= template) ID.
const MIN_DATA_SET: u16 = 256;

/// Parses the IPFIX message at `at`; returns where the next message starts.
///
/// A message length that is impossible (below the header, or beyond the input)
/// rejects the rest of the input: it is the only way to find the next message.
pub(super) fn parse_message(
    input: &[u8],
    at: usize,
    templates: &mut TemplateCache,
    out: &mut Vec<Output>,
) -> usize {
    let mut c = Cursor::new(input, at, input.len());
    let left = c.remaining();
    let header = (|| {
        let _version = c.u16()?;
        let length = c.u16()?;
        let export_time = c.u32()?;
        let _sequence = c.u32()?;
        let domain = c.u32()?;
        Some((usize::from(length), export_time, domain))
    })();
    let Some((length, export_time, domain)) = header else {
        out.push(reject(
            at,
            None,
            format!("truncated IPFIX header: {left} of {HEADER_LEN} bytes"),
        ));
        return input.len();
    };
    if length < HEADER_LEN || length > left {
        out.push(reject(
            at,
            Some("length"),
            format!(
                "IPFIX message length {length} is not within {HEADER_LEN}..={left} bytes left; rest of input skipped"
            ),
        ));
        return input.len();
    }
    let mut msg = Cursor::new(input, c.pos(), at.saturating_add(length));
    let mut export = Export {
        version: VERSION,
        domain,
        template_id: 0,
        export_ns: i64::from(export_time) * 1_000_000_000,
        sys_uptime_ms: None,
        system_init_ms: None,
    };
    while msg.remaining() >= 4 {
        let set_at = msg.pos();
        let (Some(id), Some(len)) = (msg.peek_u16(0), msg.peek_u16(2)) else {
            break;
        };
        let len = usize::from(len);
        if len < 4 || len > msg.remaining() {
            out.push(reject(
                set_at,
                Some("set_length"),
                format!(
                    "set {id} length {len} is not within 4..={} bytes left in the message; rest of message skipped",
                    msg.remaining()
                ),
            ));
            return msg.end();
        }
        let Some(mut set) = msg.sub(len) else {
            return msg.end();
        };
        let _header = set.take(4);
        match id {
            TEMPLATE_SET => template_set(set, domain, false, templates, out),
            OPTIONS_TEMPLATE_SET => template_set(set, domain, true, templates, out),
            MIN_DATA_SET.. => match templates.get(VERSION, domain, id).cloned() {
                Some(template) => {
                    export.template_id = id;
                    export.system_init_ms = templates.system_init_ms(VERSION, domain);
                    decode_set(set, &template, &export, templates, out);
                }
                None => out.push(reject(
                    set_at,
                    None,
                    format!(
                        "no template {id} known for {}; data set of {len} bytes skipped",
                        exporter(VERSION, domain)
                    ),
                )),
            },
            _ => out.push(reject(
                set_at,
                Some("set_id"),
                format!("reserved set ID {id}; set of {len} bytes skipped"),
            )),
        }
    }
    if !all_zero(msg.rest()) {
        out.push(reject(
            msg.pos(),
            None,
            format!("{} bytes after the last set are not a set", msg.remaining()),
        ));
    }
    msg.end()
}

/// Template or options template set: records of template ID, field count,
/// (options only) scope field count, then field specifiers.
fn template_set(
    mut set: Cursor<'_>,
    domain: u32,
    options: bool,
    templates: &mut TemplateCache,
    out: &mut Vec<Output>,
) {
    while set.remaining() >= 4 && !all_zero(set.rest()) {
        let at = set.pos();
        let (Some(id), Some(count)) = (set.u16(), set.u16()) else {
            return;
        };
        if count == 0 {
            // Withdrawal (RFC 7011 §8.1); the set ID itself means "all templates".
            if id == TEMPLATE_SET || id == OPTIONS_TEMPLATE_SET {
                templates.withdraw_all(VERSION, domain);
            } else {
                templates.withdraw(VERSION, domain, id);
            }
            continue;
        }
        let scope_count = if options {
            match set.u16() {
                Some(n) if n >= 1 && n <= count => usize::from(n),
                n => {
                    out.push(reject(
                        at,
                        Some("scope_field_count"),
                        format!(
                            "options template {id}: scope field count {n:?} not within 1..={count}"
                        ),
                    ));
                    return;
                }
            }
        } else {
            0
        };
        let Some(fields) = read_field_specs(&mut set, usize::from(count), scope_count, true) else {
            out.push(reject(
                at,
                None,
                format!("template {id} declares {count} fields but its set ends first"),
            ));
            return;
        };
        if id < MIN_DATA_SET {
            out.push(reject(at, None, format!("template ID {id} is below 256")));
            continue;
        }
        if let Err(full) = templates.insert(VERSION, domain, id, Template { fields, options }) {
            out.push(reject(
                at,
                None,
                format!("template {id} not stored: {}", full.reason()),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use relaytrace_model::{Location, Proto};

    use super::*;

    fn message(sets: &[&[u8]]) -> Vec<u8> {
        let len: usize = HEADER_LEN + sets.iter().map(|s| s.len()).sum::<usize>();
        let mut v = vec![
            0x00, 0x0a, // version = 10 (IPFIX)
        ];
        v.extend_from_slice(&(len as u16).to_be_bytes()); // message length
        v.extend_from_slice(&[
            0x55, 0x53, 0x33, 0x7a, // export time = 1431516026
            0x00, 0x00, 0x00, 0x01, // sequence = 1
            0x00, 0x00, 0x00, 0x02, // observation domain = 2
        ]);
        for s in sets {
            v.extend_from_slice(s);
        }
        v
    }

    const TEMPLATES: [u8; 40] = [
        0x00, 0x02, // set ID = 2 (templates)
        0x00, 0x28, // length = 40
        0x01, 0x00, // template ID = 256
        0x00, 0x06, // field count = 6
        0x00, 0x1b, 0x00, 0x10, // sourceIPv6Address (27), 16 bytes
        0x00, 0x1c, 0x00, 0x10, // destinationIPv6Address (28), 16 bytes
        0x00, 0x04, 0x00, 0x01, // protocolIdentifier (4), 1 byte
        0x00, 0x52, 0xff, 0xff, // interfaceName (82), variable length
        0x80, 0x02, 0x00, 0x04, // enterprise IE 2 (packetDeltaCount), 4 bytes,
        0x00, 0x00, 0x72, 0x79, //   PEN = 29305 (reverse direction, RFC 5103)
        0x00, 0x98, 0x00, 0x08, // flowStartMilliseconds (152), 8 bytes
        0x00, 0x00, 0x00, 0x00, // padding
    ];

    const DATA: [u8; 50] = [
        0x01, 0x00, // set ID = 256
        0x00, 0x32, // length = 50
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // src = 2001:db8::1
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, // dst = 2001:db8::2
        0x3a, // protocolIdentifier = 58 (ICMPv6)
        0x00, // interfaceName: 0 bytes
        0x00, 0x00, 0x00, 0x09, // reversePacketDeltaCount = 9
        0x00, 0x00, 0x01, 0x4d, 0x4d, 0x00, 0xe3,
        0xc2, // flowStartMilliseconds = 1431516013506
    ];

    #[test]
    fn enterprise_and_variable_length_fields() {
        let bytes = message(&[&TEMPLATES, &DATA]);
        let mut cache = TemplateCache::default();
        let mut out = Vec::new();
        assert_eq!(parse_message(&bytes, 0, &mut cache, &mut out), bytes.len());
        let [Output::Conn(c)] = out.as_slice() else {
            panic!("expected one Conn, got {out:?}");
        };
        assert_eq!(c.orig_h.to_string(), "2001:db8::1");
        assert_eq!(c.resp_h.to_string(), "2001:db8::2");
        assert_eq!(c.proto, Proto::Icmp);
        assert_eq!(c.resp_pkts, Some(9));
        assert_eq!(c.orig_pkts, None);
        assert_eq!(c.start_ns, 1_431_516_013_506_000_000);
        assert_eq!(c.record, 16 + 40 + 4);
    }

    #[test]
    fn withdrawal_forgets_template() {
        let withdraw = [
            0x00, 0x02, // set ID = 2
            0x00, 0x08, // length = 8
            0x01, 0x00, // template ID = 256
            0x00, 0x00, // field count = 0: withdrawal
        ];
        let bytes = message(&[&TEMPLATES, &withdraw, &DATA]);
        let mut out = Vec::new();
        parse_message(&bytes, 0, &mut TemplateCache::default(), &mut out);
        let [Output::Reject(r)] = out.as_slice() else {
            panic!("expected one rejection, got {out:?}");
        };
        assert!(r.reason.contains("observation domain 2"), "{}", r.reason);
        assert_eq!(r.location, Location::Offset(16 + 40 + 8));
    }

    #[test]
    fn options_template_needs_a_scope() {
        let options = [
            0x00, 0x03, // set ID = 3 (options templates)
            0x00, 0x0e, // length = 14
            0x01, 0x01, // template ID = 257
            0x00, 0x01, // field count = 1
            0x00, 0x00, // scope field count = 0: invalid (RFC 7011 §3.4.2.2)
            0x00, 0x8f, 0x00, 0x04, // meteringProcessId (143), 4 bytes
        ];
        let bytes = message(&[&options]);
        let mut out = Vec::new();
        parse_message(&bytes, 0, &mut TemplateCache::default(), &mut out);
        assert!(
            matches!(out.as_slice(), [Output::Reject(r)] if r.field.as_deref() == Some("scope_field_count")),
            "{out:?}"
        );
    }

    #[test]
    fn bad_lengths_are_rejected() {
        let mut short = message(&[&TEMPLATES]);
        short[3] = 8; // message length 8 < header
        let mut long = message(&[&TEMPLATES]);
        long[2] = 0x10; // message length 4096+ > input
        let mut bad_set = message(&[&TEMPLATES]);
        bad_set[19] = 0x02; // set length 2 < 4
        for bytes in [short, long, bad_set] {
            let mut out = Vec::new();
            let next = parse_message(&bytes, 0, &mut TemplateCache::default(), &mut out);
            assert!(next <= bytes.len());
            assert!(matches!(out.as_slice(), [Output::Reject(_)]), "{out:?}");
        }
    }

    #[test]
    fn every_truncation_is_handled() {
        let bytes = message(&[&TEMPLATES, &DATA]);
        for n in 0..bytes.len() {
            let mut out = Vec::new();
            let next = parse_message(&bytes[..n], 0, &mut TemplateCache::default(), &mut out);
            assert!(next <= n, "{n}");
            assert!(!out.is_empty(), "truncation at {n} must be reported");
        }
    }
}

//! Data Records: splitting a data set into records by its template (RFC 3954 §5.3,
//! RFC 7011 §3.4.3), including variable-length fields (RFC 7011 §7).

use super::cursor::{all_zero, be_uint, Cursor};
use super::fields::SYSTEM_INIT_TIME_MILLISECONDS;
use super::flow::{self, Export, Field};
use super::template::{Template, TemplateCache, VARIABLE_LENGTH};
use super::{reject, Output};

/// Longest tail that can be 4-byte alignment padding, plus one.
const MAX_ALIGNMENT_PADDING: usize = 4;

/// Decodes every record of one data set body and pushes a [`Conn`], [`Event`] or
/// rejection per record. Stops at the first record that does not fit: without a
/// length per record, nothing after a bad one can be trusted.
///
/// Options records carrying systemInitTimeMilliseconds (IPFIX) are also remembered
/// in `templates`, so later sysUpTime-relative records can be placed in time.
///
/// [`Conn`]: relaytrace_model::Conn
/// [`Event`]: relaytrace_model::Event
pub(super) fn decode_set(
    mut body: Cursor<'_>,
    template: &Template,
    export: &Export,
    templates: &mut TemplateCache,
    out: &mut Vec<Output>,
) {
    let min_len = template.min_record_len();
    if min_len == 0 {
        // Safeguard against an endless loop: records of only zero-length fields
        // take no bytes, so the set would hold infinitely many of them.
        out.push(reject(
            body.pos(),
            None,
            format!(
                "template {} of {} has only zero-length fields; data set of {} bytes skipped",
                export.template_id,
                exporter(export.version, export.domain),
                body.remaining()
            ),
        ));
        return;
    }
    while body.remaining() > 0 {
        let at = body.pos();
        if body.remaining() < min_len || all_zero(body.rest()) {
            // Set padding (RFC 3954 §5.3, RFC 7011 §3.3.1): shorter than any record,
            // or zeros. Padding "SHOULD" be zero, and some exporters (nProbe) leave
            // garbage in it, so a tail under 4 bytes (alignment padding) is accepted
            // whatever it holds; a longer non-zero tail is reported.
            if body.remaining() >= MAX_ALIGNMENT_PADDING && !all_zero(body.rest()) {
                out.push(reject(
                    at,
                    None,
                    format!(
                        "{} trailing bytes in data set {} are shorter than a record and not zero padding",
                        body.remaining(),
                        export.template_id
                    ),
                ));
            }
            return;
        }
        let fields = match decode_record(&mut body, template) {
            Ok(fields) => fields,
            Err(field_index) => {
                out.push(reject(
                    at,
                    None,
                    format!(
                        "data record of template {} ends inside field {} (of {}); rest of set skipped",
                        export.template_id,
                        field_index + 1,
                        template.fields.len()
                    ),
                ));
                return;
            }
        };
        if template.options && export.version == 10 {
            if let Some(ms) = fields
                .iter()
                .find(|f| f.spec.ie == SYSTEM_INIT_TIME_MILLISECONDS && f.spec.pen.is_none())
                .and_then(|f| be_uint(f.bytes))
                .and_then(|v| i64::try_from(v).ok())
            {
                templates.set_system_init_ms(export.version, export.domain, ms);
            }
        }
        out.push(flow::to_output(
            export,
            template.options,
            &fields,
            at as u64,
        ));
    }
}

/// Splits one record off `c`; on failure returns the index of the field that did
/// not fit (and leaves `c` wherever it stopped).
fn decode_record<'a>(c: &mut Cursor<'a>, template: &Template) -> Result<Vec<Field<'a>>, usize> {
    let mut fields = Vec::with_capacity(template.fields.len());
    for (i, spec) in template.fields.iter().enumerate() {
        let len = if spec.len == VARIABLE_LENGTH {
            // RFC 7011 §7: one length byte, or 255 then a two-byte length.
            match c.u8().ok_or(i)? {
                255 => usize::from(c.u16().ok_or(i)?),
                n => usize::from(n),
            }
        } else {
            usize::from(spec.len)
        };
        let bytes = c.take(len).ok_or(i)?;
        fields.push(Field { spec: *spec, bytes });
    }
    Ok(fields)
}

/// How rejections name an exporter: "v9 source id 3", "IPFIX observation domain 0".
pub(super) fn exporter(version: u16, domain: u32) -> String {
    match version {
        10 => format!("IPFIX observation domain {domain}"),
        9 => format!("v9 source id {domain}"),
        v => format!("v{v} exporter"),
    }
}

#[cfg(test)]
mod tests {
    use relaytrace_model::Location;

    use super::super::template::FieldSpec;
    use super::*;

    fn spec(ie: u16, len: u16) -> FieldSpec {
        FieldSpec {
            ie,
            pen: None,
            len,
            scope: false,
        }
    }

    const EXPORT: Export = Export {
        version: 10,
        domain: 0,
        template_id: 300,
        export_ns: 0,
        sys_uptime_ms: None,
        system_init_ms: None,
    };

    #[test]
    fn variable_length_fields_both_forms() {
        let template = Template {
            fields: vec![
                spec(82, VARIABLE_LENGTH),
                spec(83, VARIABLE_LENGTH),
                spec(4, 1),
            ],
            options: false,
        };
        let set = [
            0x03, b'e', b't', b'h', // interfaceName: short form, 3 bytes "eth"
            0xff, 0x00, 0x02, b'h', b'i', // interfaceDescription: long form, 2 bytes "hi"
            0x11, // protocolIdentifier = 17
            0x00, 0x00, // padding
        ];
        let mut cache = TemplateCache::default();
        let mut out = Vec::new();
        decode_set(
            Cursor::new(&set, 0, set.len()),
            &template,
            &EXPORT,
            &mut cache,
            &mut out,
        );
        assert_eq!(out.len(), 1, "{out:?}");
        let Output::Event(e) = &out[0] else {
            panic!("no addresses: expected an event, got {out:?}");
        };
        let v: serde_json::Value = serde_json::from_str(&e.json).unwrap();
        assert_eq!(v["fields"]["interfaceName"], "eth");
        assert_eq!(v["fields"]["interfaceDescription"], "hi");
        assert_eq!(v["fields"]["protocolIdentifier"], 17);
        assert_eq!(e.record, 0);
    }

    #[test]
    fn truncated_variable_length_is_rejected_not_read_past() {
        let template = Template {
            fields: vec![spec(82, VARIABLE_LENGTH)],
            options: false,
        };
        let set = [
            0x01, b'a', // interfaceName = "a"
            0x09, b'b', // claims 9 bytes, has 1
        ];
        let mut out = Vec::new();
        decode_set(
            Cursor::new(&set, 0, set.len()),
            &template,
            &EXPORT,
            &mut TemplateCache::default(),
            &mut out,
        );
        assert_eq!(out.len(), 2);
        let Output::Reject(r) = &out[1] else {
            panic!("expected rejection, got {out:?}");
        };
        assert_eq!(r.location, Location::Offset(2));
        assert!(r.reason.contains("template 300"), "{}", r.reason);
    }

    #[test]
    fn short_tail_is_padding_long_tail_is_reported() {
        let template = Template {
            fields: vec![spec(1, 8)],
            options: false,
        };
        for (tail, rejected) in [
            (&[0x0d, 0x00, 0x01][..], false),
            (&[1, 2, 3, 4, 5][..], true),
        ] {
            let mut set = vec![0, 0, 0, 0, 0, 0, 0, 0x2a]; // octetDeltaCount = 42
            set.extend_from_slice(tail);
            let mut out = Vec::new();
            decode_set(
                Cursor::new(&set, 0, set.len()),
                &template,
                &EXPORT,
                &mut TemplateCache::default(),
                &mut out,
            );
            assert_eq!(out.len(), 1 + usize::from(rejected), "{out:?}");
            assert_eq!(matches!(out.last(), Some(Output::Reject(_))), rejected);
        }
    }

    #[test]
    fn zero_length_template_cannot_loop() {
        let template = Template {
            fields: vec![spec(1, 0), spec(2, 0)],
            options: false,
        };
        let set = [0x01, 0x02, 0x03, 0x04];
        let mut out = Vec::new();
        decode_set(
            Cursor::new(&set, 0, set.len()),
            &template,
            &EXPORT,
            &mut TemplateCache::default(),
            &mut out,
        );
        assert!(matches!(out.as_slice(), [Output::Reject(_)]), "{out:?}");
    }

    #[test]
    fn options_record_teaches_system_init_time() {
        let template = Template {
            fields: vec![spec(160, 8)],
            options: true,
        };
        let set = [
            0x00, 0x00, 0x01, 0x4d, 0x4d, 0x00, 0xe3,
            0xc2, // systemInitTimeMilliseconds = 1431516013506
        ];
        let mut cache = TemplateCache::default();
        let mut out = Vec::new();
        decode_set(
            Cursor::new(&set, 0, set.len()),
            &template,
            &EXPORT,
            &mut cache,
            &mut out,
        );
        assert_eq!(cache.system_init_ms(10, 0), Some(1_431_516_013_506));
        assert!(matches!(&out[..], [Output::Event(e)] if e.kind == "netflow-options"));
    }
}

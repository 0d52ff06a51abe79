//! Zeek ASCII (TSV) logs.
//!
//! Header lines (`#separator`, `#set_separator`, `#empty_field`, `#unset_field`,
//! `#path`, `#fields`, `#types`) configure how the following data lines are split and
//! read; a file may hold several header blocks (concatenated logs). Other `#` lines
//! (`#open`, `#close`, btest banners) are comments.

use std::borrow::Cow;
use std::io::BufRead;

use relaytrace_model::{Event, Location, Rejection};
use serde_json::{Map, Value};

use super::conn_fields::{conn_from_fields, is_conn_log, parse_time, ConnField};
use crate::lines::{Line, LineReader};
use crate::{IngestError, Sink};

/// The header state that governs data lines.
struct Header {
    separator: String,
    set_separator: String,
    empty_field: String,
    unset_field: String,
    path: Option<String>,
    fields: Vec<String>,
    types: Vec<String>,
    is_conn: bool,
    /// Column of each [`ConnField`] (by discriminant), resolved once per `#fields`.
    conn_columns: [Option<usize>; ConnField::ALL.len()],
}

impl Default for Header {
    fn default() -> Self {
        // Zeek's defaults (LogAscii::separator etc.).
        Header {
            separator: "\t".into(),
            set_separator: ",".into(),
            empty_field: "(empty)".into(),
            unset_field: "-".into(),
            path: None,
            fields: Vec::new(),
            types: Vec::new(),
            is_conn: false,
            conn_columns: [None; ConnField::ALL.len()],
        }
    }
}

/// Replaces `\xHH` escapes (Zeek writes non-printable and separator bytes so).
fn unescape(s: &str) -> Cow<'_, str> {
    if !s.as_bytes().contains(&b'\\') {
        return Cow::Borrowed(s);
    }
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        // Work on bytes, never on `str` indices: the two characters after `\x` may be
        // part of a multi-byte character (fuzzing found that panic).
        if bytes[i] == b'\\' && bytes.get(i + 1) == Some(&b'x') {
            if let (Some(h), Some(l)) = (
                bytes.get(i + 2).copied().and_then(hex),
                bytes.get(i + 3).copied().and_then(hex),
            ) {
                out.push((h * 16 + l) as u8);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// Reads a Zeek TSV log into `sink`.
pub fn read_tsv(input: &mut dyn BufRead, sink: &mut dyn Sink) -> Result<(), IngestError> {
    let mut lines = LineReader::new(input);
    let mut header = Header::default();
    // Field boundaries of the current line, reused across lines (no allocation per
    // line on the hot path).
    let mut spans: Vec<(usize, usize)> = Vec::new();
    while let Some((line_no, line)) = lines.next_line()? {
        let loc = Location::Line(line_no);
        let text = match line {
            Line::Text(t) => t,
            Line::NotUtf8 => {
                sink.reject(reject(loc, None, "line is not valid UTF-8"))?;
                continue;
            }
            Line::TooLong => {
                sink.reject(reject(loc, None, "line longer than 16 MiB"))?;
                continue;
            }
        };
        if let Some(directive) = text.strip_prefix('#') {
            apply_header(&mut header, directive);
            continue;
        }
        if text.is_empty() {
            continue;
        }
        if header.fields.is_empty() {
            sink.reject(reject(loc, None, "data line before any #fields header"))?;
            continue;
        }
        split_spans(text, &header.separator, &mut spans);
        if spans.len() != header.fields.len() {
            sink.reject(reject(
                loc,
                None,
                &format!(
                    "expected {} fields (from #fields), found {}",
                    header.fields.len(),
                    spans.len()
                ),
            ))?;
            continue;
        }
        if header.is_conn {
            // One scan of the line for escapes instead of one per field (per-field
            // scans showed at 2% of a conn.log ingest, perf, 2026-11-30).
            let escaped = memchr::memchr(b'\\', text.as_bytes()).is_some();
            let get = |f: ConnField| -> Option<Cow<'_, str>> {
                let (a, b) = spans[header.conn_columns[f as usize]?];
                let v = &text[a..b];
                if v == header.unset_field || v == header.empty_field {
                    None
                } else if escaped {
                    Some(unescape(v))
                } else {
                    Some(Cow::Borrowed(v))
                }
            };
            match conn_from_fields(get, line_no) {
                Ok(conn) => sink.conn(conn)?,
                Err(e) => sink.reject(reject(loc, Some(e.field), &e.reason))?,
            }
        } else {
            let values: Vec<&str> = spans.iter().map(|&(a, b)| &text[a..b]).collect();
            match event_from_values(&header, &values, line_no) {
                Ok(event) => sink.event(event)?,
                Err((field, reason)) => sink.reject(reject(loc, Some(field), &reason))?,
            }
        }
    }
    Ok(())
}

/// Splits `text` at `sep` into byte ranges.
fn split_spans(text: &str, sep: &str, spans: &mut Vec<(usize, usize)>) {
    spans.clear();
    let mut start = 0;
    if sep.len() == 1 {
        let b = sep.as_bytes()[0];
        let bytes = text.as_bytes();
        // Eight bytes at a time: the byte-by-byte loop was a fifth of conn.log
        // parsing (perf annotate of parse-only, 2 M generated lines, 2026-11-30).
        let words = bytes.chunks_exact(8);
        let tail_at = bytes.len() - words.remainder().len();
        for (w, chunk) in words.enumerate() {
            let mut hits = separator_bits(chunk, b);
            while hits != 0 {
                let i = w * 8 + (hits.trailing_zeros() / 8) as usize;
                spans.push((start, i));
                start = i + 1;
                hits &= hits - 1;
            }
        }
        for (i, &c) in bytes.iter().enumerate().skip(tail_at) {
            if c == b {
                spans.push((start, i));
                start = i + 1;
            }
        }
    } else if !sep.is_empty() {
        for (i, _) in text.match_indices(sep) {
            spans.push((start, i));
            start = i + sep.len();
        }
    }
    spans.push((start, text.len()));
}

/// The high bit of byte k set exactly when `chunk[k] == sep` (8-byte `chunk`):
/// bytes equal to `sep` become zero under the XOR, and the zero-byte test
/// (`!((v & 0x7f..) + 0x7f.. | v | 0x7f..)`) is exact, with no carries between bytes.
fn separator_bits(chunk: &[u8], sep: u8) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let mut word = [0u8; 8];
    word.copy_from_slice(chunk);
    let v = u64::from_le_bytes(word) ^ u64::from_le_bytes([sep; 8]);
    !(((v & LOW7) + LOW7) | v | LOW7)
}

fn reject(location: Location, field: Option<&str>, reason: &str) -> Rejection {
    Rejection {
        location,
        field: field.map(str::to_string),
        reason: reason.to_string(),
    }
}

fn apply_header(header: &mut Header, directive: &str) {
    // `#separator` is itself separated by a space; the others by the separator.
    if let Some(v) = directive.strip_prefix("separator ") {
        header.separator = unescape(v).into_owned();
        return;
    }
    let mut parts = directive.split(header.separator.as_str());
    let key = parts.next().unwrap_or_default();
    let rest: Vec<String> = parts.map(|p| unescape(p).into_owned()).collect();
    let first = rest.first().cloned().unwrap_or_default();
    match key {
        "set_separator" => header.set_separator = first,
        "empty_field" => header.empty_field = first,
        "unset_field" => header.unset_field = first,
        "path" => header.path = Some(first),
        "fields" => {
            header.fields = rest;
            header.types.clear();
        }
        "types" => header.types = rest,
        _ => return,
    }
    let fields = &header.fields;
    header.is_conn = !fields.is_empty()
        && is_conn_log(header.path.as_deref(), |f| fields.iter().any(|x| x == f));
    header.conn_columns = ConnField::ALL.map(|f| fields.iter().position(|x| x == f.name()));
}

/// Converts one value to JSON by its Zeek type, so events keep numbers as numbers
/// and sets as arrays.
fn typed_value(header: &Header, ty: &str, v: &str) -> Value {
    if v == header.unset_field {
        return Value::Null;
    }
    if ty.starts_with("set[") || ty.starts_with("vector[") {
        if v == header.empty_field {
            return Value::Array(Vec::new());
        }
        return Value::Array(
            v.split(header.set_separator.as_str())
                .map(|s| Value::String(unescape(s).into_owned()))
                .collect(),
        );
    }
    if v == header.empty_field {
        return Value::String(String::new());
    }
    match ty {
        "count" | "int" | "port" => v
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(v.to_string())),
        "double" | "time" | "interval" => v
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(v.to_string())),
        "bool" => match v {
            "T" => Value::Bool(true),
            "F" => Value::Bool(false),
            _ => Value::String(v.to_string()),
        },
        _ => Value::String(unescape(v).into_owned()),
    }
}

fn event_from_values(
    header: &Header,
    values: &[&str],
    line_no: u64,
) -> Result<Event, (&'static str, String)> {
    let mut map = Map::new();
    let mut ts_ns = None;
    for (i, (name, v)) in header.fields.iter().zip(values).enumerate() {
        let ty = header.types.get(i).map(String::as_str).unwrap_or("string");
        if name == "ts" && *v != header.unset_field {
            ts_ns = Some(parse_time("ts", v).map_err(|e| (e.field, e.reason))?);
        }
        map.insert(name.clone(), typed_value(header, ty, v));
    }
    let text_of = |key: &str| map.get(key).and_then(Value::as_str).map(str::to_string);
    Ok(Event {
        kind: header.path.clone().unwrap_or_else(|| "zeek".into()),
        ts_ns,
        uid: text_of("uid"),
        community_id: text_of("community_id"),
        json: Value::Object(map.clone()).to_string(),
        record: line_no,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::VecSink;

    const CONN: &str = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\thistory\n#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tstring\n1300475167.096535\tCa\t141.142.220.202\t5353\t224.0.0.251\t5353\tudp\tdns\t-\t-\t-\tS0\tD\n1300475168.853899\tCb\t141.142.220.118\t43927\t141.142.2.2\t53\tudp\tdns\t0.000435\t38\t89\tSF\tDd\nbad\tline\n1300475168.853899\tCc\tnot-an-ip\t1\t1.2.3.4\t53\tudp\t-\t-\t-\t-\tS0\t-\n";

    #[test]
    fn reads_conn_lines_and_reports_bad_ones() {
        let mut sink = VecSink::default();
        read_tsv(&mut CONN.as_bytes(), &mut sink).unwrap();
        assert_eq!(sink.conns.len(), 2);
        let c = &sink.conns[1];
        assert_eq!(c.uid.as_deref(), Some("Cb"));
        assert_eq!(c.start_ns, 1_300_475_168_853_899_000);
        assert_eq!(c.duration_ns, Some(435_000));
        assert_eq!((c.orig_bytes, c.resp_bytes), (Some(38), Some(89)));
        assert_eq!(c.record, 9);
        assert_eq!(sink.conns[0].duration_ns, None);
        assert_eq!(sink.rejections.len(), 2);
        assert_eq!(sink.rejections[0].location, Location::Line(10));
        assert!(sink.rejections[0].reason.contains("expected 13 fields"));
        assert_eq!(sink.rejections[1].field.as_deref(), Some("id.orig_h"));
    }

    /// Zeek counts go to 2^64 − 1, the store's columns to 2^63 − 1: a larger count is
    /// rejected with its field (it was clamped without a word); the largest fits.
    #[test]
    fn a_count_beyond_the_store_is_rejected_with_its_field() {
        let head = CONN.split("\n1300475167").next().unwrap();
        let line = |bytes: &str| {
            format!("1300475168.853899\tCb\t10.0.0.1\t1\t10.0.0.2\t53\tudp\tdns\t0.5\t{bytes}\t1\tSF\tDd")
        };
        let text = format!(
            "{head}\n{}\n{}\n",
            line("18446744073709551615"),
            line("9223372036854775807")
        );
        let mut sink = VecSink::default();
        read_tsv(&mut text.as_bytes(), &mut sink).unwrap();
        assert_eq!(sink.conns.len(), 1);
        assert_eq!(sink.conns[0].orig_bytes, Some(9_223_372_036_854_775_807));
        // (And an IPv4-mapped IPv6 address is stored as the IPv4 address it is.)
        let mapped = text.replace("10.0.0.2", "::ffff:10.0.0.2");
        let mut sink = VecSink::default();
        read_tsv(&mut mapped.as_bytes(), &mut sink).unwrap();
        assert_eq!(sink.conns[0].resp_h.to_string(), "10.0.0.2");
        assert_eq!(sink.rejections.len(), 1);
        assert_eq!(sink.rejections[0].field.as_deref(), Some("orig_bytes"));
        assert!(sink.rejections[0]
            .reason
            .contains("largest count the store keeps"));
    }

    #[test]
    fn split_matches_a_plain_byte_scan() {
        let texts = [
            "",
            "\t",
            "a\tb",
            "1700000000.000951\tC101f5e859d7dded0\t10.109.15.217\t51956\t\t\t-\t(empty)",
            "\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t",
            "no separator at all in this rather long line of text",
            "\u{1}\u{8}\t\u{7f}\u{80}\t\u{ff}\u{9}\u{a}\t",
        ];
        for text in texts {
            for sep in ["\t", ",", "\u{1}"] {
                let mut got = Vec::new();
                split_spans(text, sep, &mut got);
                let mut want = Vec::new();
                let mut start = 0;
                for (i, c) in text.bytes().enumerate() {
                    if c == sep.as_bytes()[0] {
                        want.push((start, i));
                        start = i + 1;
                    }
                }
                want.push((start, text.len()));
                assert_eq!(got, want, "{text:?} split at {sep:?}");
            }
        }
    }

    #[test]
    fn unescapes_hex() {
        assert_eq!(unescape("a\\x09b"), "a\tb");
        assert_eq!(unescape("plain"), "plain");
        assert_eq!(unescape("bad\\xZZ"), "bad\\xZZ");
        assert_eq!(unescape("end\\x4"), "end\\x4");
        // Regression (fuzzing): a multi-byte character right after `\x`.
        assert_eq!(unescape("\\x0\u{fffd}\u{fffd}("), "\\x0\u{fffd}\u{fffd}(");
    }
}

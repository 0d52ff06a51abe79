//! NetFlow v5, NetFlow v9 (RFC 3954) and IPFIX (RFC 7011) export payloads.
//!
//! Input is the raw UDP payload of export datagrams, back to back, with no IP/UDP
//! framing (what `nc -u -l > file` records). [`read_payloads`] walks it datagram by
//! datagram, dispatching on the version in the first two bytes:
//! - `v5`: 24-byte header and `count` 48-byte records;
//! - `v9`: 20-byte header, then FlowSets until they run out (no length field);
//! - `ipfix`: 16-byte header carrying the message length, then Sets.
//!
//! Templates and options templates (`template`) live in a [`TemplateCache`] that
//! the caller keeps across inputs, because template and data datagrams often sit in
//! different files. Data records (`record`) become [`Conn`]s when they carry both
//! addresses, else [`Event`]s (`netflow-record`; options records: `netflow-options`)
//! — the mapping is in `flow`, the IANA element numbers in `fields`.
//!
//! Input is hostile: every read is bounds-checked (`cursor`), nothing panics, and
//! whatever cannot be decoded (data before its template, impossible lengths)
//! becomes a [`Rejection`] at its byte offset. Zero padding after a datagram is
//! not an error.
//!
//! Elsewhere: stitching flows split by active timeout ([`crate::stitch`], applied by
//! [`crate::read`]) and captures of export traffic (`pcap/export.rs`, which hands each
//! UDP payload to `read_datagram` with its exporter's templates).
//!
//! [`Conn`]: relaytrace_model::Conn
//! [`Event`]: relaytrace_model::Event

mod cursor;
mod fields;
mod flow;
mod ipfix;
mod record;
mod template;
mod v5;
mod v9;

use std::io::BufRead;

use relaytrace_model::{Conn, Event, Location, Rejection};

pub use template::TemplateCache;

use crate::{IngestError, Sink};

/// What the parsers produce, in input order; [`read_payloads`] hands each to the sink.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Output {
    Conn(Conn),
    Event(Event),
    Reject(Rejection),
}

/// Builds a rejection at an absolute input offset.
fn reject(at: usize, field: Option<&str>, reason: String) -> Output {
    Output::Reject(Rejection {
        location: Location::Offset(at as u64),
        field: field.map(str::to_string),
        reason,
    })
}

/// Largest export datagram: a UDP payload is at most 65,535 bytes, so a window that
/// holds this much past the current position always holds a whole datagram.
const MAX_DATAGRAM_BYTES: usize = 65_535;

/// Bytes consumed before the window is compacted; keeps memory at a few hundred KiB
/// whatever the input size.
const COMPACT_AFTER_BYTES: usize = 1 << 20;

/// Reads back-to-back NetFlow v5/v9/IPFIX export datagrams from `input` into `sink`,
/// learning templates into (and decoding with) `templates`.
///
/// Streams through a sliding window: v9 packets carry no length, so finding where one
/// ends needs look-ahead, and a window of one maximal datagram past the current
/// position is always enough. Bad datagrams and records become rejections at their
/// absolute byte offset; only I/O and sink failures are errors.
pub fn read_payloads(
    input: &mut dyn BufRead,
    templates: &mut TemplateCache,
    sink: &mut dyn Sink,
) -> Result<(), IngestError> {
    let mut window: Vec<u8> = Vec::new();
    let mut base: u64 = 0; // absolute offset of window[0]
    let mut pos = 0usize; // position in window
    let mut eof = false;
    let mut out = Vec::new();
    loop {
        while !eof && window.len() - pos < MAX_DATAGRAM_BYTES + 1 {
            let chunk = input.fill_buf()?;
            if chunk.is_empty() {
                eof = true;
                break;
            }
            let n = chunk.len();
            window.extend_from_slice(chunk);
            input.consume(n);
        }
        if pos >= window.len() {
            break;
        }
        if !matches!(window[pos..], [0x00, ..]) {
            // Not a header nor padding: nothing after this can be framed reliably.
            let mut skipped = (window.len() - pos) as u64;
            loop {
                let chunk = input.fill_buf()?;
                if chunk.is_empty() {
                    break;
                }
                let n = chunk.len();
                skipped += n as u64;
                input.consume(n);
            }
            let version = match window[pos..] {
                [a, b, ..] => u16::from_be_bytes([a, b]),
                [a] => u16::from(a),
                [] => 0,
            };
            sink.reject(Rejection {
                location: Location::Offset(base + pos as u64),
                field: Some("version".into()),
                reason: format!(
                    "no NetFlow v5/v9 or IPFIX header here (version {version}); rest of input ({skipped} bytes) skipped"
                ),
            })?;
            break;
        }
        pos = parse_datagram(&window, pos, templates, &mut out);
        deliver(&mut out, base, sink)?;
        if pos >= window.len() && !eof {
            // The parser gave up on the rest of the window (its rejection says "rest
            // of input skipped"): a real datagram never reaches past a full window.
            loop {
                let n = input.fill_buf()?.len();
                if n == 0 {
                    break;
                }
                input.consume(n);
            }
            break;
        }
        if pos >= COMPACT_AFTER_BYTES {
            window.drain(..pos);
            base += pos as u64;
            pos = 0;
        }
    }
    Ok(())
}

/// Hands parsed items to the sink, turning their window-relative offsets into
/// absolute ones by adding `base`.
fn deliver(out: &mut Vec<Output>, base: u64, sink: &mut dyn Sink) -> std::io::Result<()> {
    for item in out.drain(..) {
        match item {
            Output::Conn(mut c) => {
                c.record += base;
                sink.conn(c)?
            }
            Output::Event(mut e) => {
                e.record += base;
                sink.event(e)?
            }
            Output::Reject(mut r) => {
                if let Location::Offset(o) = &mut r.location {
                    *o += base;
                }
                sink.reject(r)?
            }
        }
    }
    Ok(())
}

/// Decodes the export datagram(s) in one UDP payload from a capture of export
/// traffic. `base` is added to every offset (record provenance, rejections), so the
/// caller can place them in its own file; `templates` should be the cache of this
/// exporter (its source address), which framed captures let us know.
pub(crate) fn read_datagram(
    payload: &[u8],
    base: u64,
    templates: &mut TemplateCache,
    sink: &mut dyn Sink,
) -> std::io::Result<()> {
    let mut pos = 0;
    let mut out = Vec::new();
    while pos < payload.len() {
        pos = parse_datagram(payload, pos, templates, &mut out);
        deliver(&mut out, base, sink)?;
    }
    Ok(())
}

/// Parses the datagram (or padding) at `at` and returns where the next one starts;
/// always past `at`, so the walk ends.
fn parse_datagram(
    input: &[u8],
    at: usize,
    templates: &mut TemplateCache,
    out: &mut Vec<Output>,
) -> usize {
    let rest = input.get(at..).unwrap_or(&[]);
    let next = match rest {
        [] => input.len(),
        [0x00, 0x05, ..] => v5::parse_datagram(input, at, templates, out),
        [0x00, 0x09, ..] => v9::parse_datagram(input, at, templates, out),
        [0x00, 0x0a, ..] => ipfix::parse_message(input, at, templates, out),
        [0x00, 0x00, ..] | [0x00] => skip_zero_padding(input, at),
        _ => {
            let version = match rest {
                [a, b, ..] => u16::from_be_bytes([*a, *b]),
                [a] => u16::from(*a),
                [] => 0,
            };
            out.push(reject(
                at,
                Some("version"),
                format!(
                    "no NetFlow v5/v9 or IPFIX header here (version {version}); rest of input ({} bytes) skipped",
                    rest.len()
                ),
            ));
            input.len()
        }
    };
    next.max(at + 1)
}

/// Skips a run of zero bytes (padding some exporters and capture tools leave after
/// a datagram). The next header begins with a zero byte itself (`00 09`), so the
/// run's last zero is given back when the byte after it is a known version.
fn skip_zero_padding(input: &[u8], at: usize) -> usize {
    let rest = input.get(at..).unwrap_or(&[]);
    match rest.iter().position(|b| *b != 0) {
        None => input.len(),
        Some(n) if n > 1 && matches!(rest.get(n), Some(5 | 9 | 10)) => at + n - 1,
        Some(n) => at + n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::VecSink;

    /// A v5 datagram with zero records, then padding, then another.
    #[test]
    fn walks_datagrams_across_zero_padding() {
        let empty_v5 = [
            0x00, 0x05, // version = 5
            0x00, 0x00, // count = 0
            0x00, 0x00, 0x00, 0x01, // sysUptime
            0x00, 0x00, 0x00, 0x02, // unix_secs
            0x00, 0x00, 0x00, 0x00, // unix_nsecs
            0x00, 0x00, 0x00, 0x00, // sequence
            0x00, 0x00, 0x00, 0x00, // engine, sampling
        ];
        let mut input = empty_v5.to_vec();
        input.extend_from_slice(&[0; 7]); // padding
        input.extend_from_slice(&empty_v5);
        input.extend_from_slice(&[0; 3]); // trailing padding
        let mut out = Vec::new();
        let mut cache = TemplateCache::default();
        let mut pos = 0;
        let mut starts = Vec::new();
        while pos < input.len() {
            starts.push(pos);
            pos = parse_datagram(&input, pos, &mut cache, &mut out);
        }
        assert_eq!(starts, vec![0, 24, 31, 55]);
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn garbage_is_one_rejection() {
        let mut sink = VecSink::default();
        let mut input: &[u8] = b"hello, not netflow";
        read_payloads(&mut input, &mut TemplateCache::default(), &mut sink).unwrap();
        assert_eq!(sink.rejections.len(), 1);
        assert_eq!(sink.rejections[0].location, Location::Offset(0));
        assert_eq!(sink.rejections[0].field.as_deref(), Some("version"));
    }

    /// Cheap deterministic fuzzing: mutate a valid input byte by byte and at random
    /// positions; no input may panic or stall.
    #[test]
    fn mutated_inputs_never_panic() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let base: Vec<u8> = [
            &[0x00, 0x0a, 0x00, 0x38][..], // IPFIX, length 56
            &[0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3],
            &[0x00, 0x02, 0x00, 0x14, 0x01, 0x00, 0x00, 0x03], // template 256, 3 fields
            &[0x00, 0x08, 0x00, 0x04, 0x80, 0x0c, 0xff, 0xff, 0, 0, 0, 9],
            &[0x01, 0x00, 0x00, 0x10], // data set 256, length 16
            &[10, 0, 0, 1, 0x03, 1, 2, 3, 0, 0, 0, 0],
            &[
                0x00, 0x09, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ],
        ]
        .concat();
        for i in 0..base.len() * 8 {
            let mut bytes = base.clone();
            let at = i % bytes.len();
            bytes[at] ^= 1 << (i / bytes.len());
            let r = next() as usize;
            let at2 = r % bytes.len();
            bytes[at2] = (r >> 32) as u8;
            let mut sink = VecSink::default();
            let mut cache = TemplateCache::default();
            let mut input: &[u8] = &bytes;
            read_payloads(&mut input, &mut cache, &mut sink).unwrap();
        }
    }
}

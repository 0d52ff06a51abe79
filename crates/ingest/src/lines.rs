//! Bounded line reading for the text formats.

use std::io::BufRead;

use relaytrace_model::{Location, Rejection};
use serde_json::{Map, Value};

use crate::{IngestError, Sink};

/// Longest line accepted. Real Zeek and EVE lines are a few KiB; a 16 MiB bound keeps
/// a file without newlines (or an attacker's) from exhausting memory.
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// One line read by [`LineReader`].
#[derive(Debug)]
pub enum Line<'a> {
    /// A complete line without its `\n` (and without a trailing `\r`).
    Text(&'a str),
    /// A line that is not UTF-8; its bytes are dropped, its place reported.
    NotUtf8,
    /// A line longer than [`MAX_LINE_BYTES`]; the excess was skipped.
    TooLong,
}

/// Reads lines, counting line numbers (1-based) and byte offsets, so every
/// rejection can say where it is. A line lying whole in the input's buffer is
/// returned from there; only lines that straddle two buffer fills are copied (into
/// a reusable buffer).
pub struct LineReader<'r> {
    input: &'r mut dyn BufRead,
    buf: Vec<u8>,
    /// Bytes of the input's buffer holding the line last returned from it; consumed
    /// on the next call.
    pending: usize,
    /// Number of the line last returned.
    pub line_no: u64,
    /// Byte offset of the start of the line last returned.
    pub offset: u64,
    next_offset: u64,
}

impl<'r> LineReader<'r> {
    /// Wraps a buffered input.
    pub fn new(input: &'r mut dyn BufRead) -> Self {
        LineReader {
            input,
            buf: Vec::with_capacity(4096),
            pending: 0,
            line_no: 0,
            offset: 0,
            next_offset: 0,
        }
    }

    /// The next line with its 1-based number, or `None` at end of input.
    pub fn next_line(&mut self) -> std::io::Result<Option<(u64, Line<'_>)>> {
        self.input.consume(std::mem::take(&mut self.pending));
        // Fast path, no copy: copying every line into `buf` showed at 3-5% of a
        // conn.log ingest (perf, 2 M generated lines, 2026-11-30).
        let newline = memchr::memchr(b'\n', self.input.fill_buf()?);
        if let Some(i) = newline.filter(|&i| i < MAX_LINE_BYTES) {
            self.pending = i + 1;
            self.line_no += 1;
            self.offset = self.next_offset;
            self.next_offset += (i + 1) as u64;
            // Same bytes as above: `fill_buf` on a non-empty buffer reads nothing.
            let chunk = self.input.fill_buf()?;
            return Ok(Some((self.line_no, decode(&chunk[..i]))));
        }
        self.buf.clear();
        let line_start = self.next_offset;
        let mut too_long = false;
        let mut consumed_any = false;
        loop {
            let chunk = self.input.fill_buf()?;
            if chunk.is_empty() {
                break;
            }
            consumed_any = true;
            let (take, done) = match memchr::memchr(b'\n', chunk) {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            let room = MAX_LINE_BYTES.saturating_sub(self.buf.len());
            if take > room {
                too_long = true;
                self.buf.extend_from_slice(&chunk[..room]);
            } else {
                self.buf.extend_from_slice(&chunk[..take]);
            }
            self.input.consume(take);
            self.next_offset += take as u64;
            if done {
                break;
            }
        }
        if !consumed_any {
            return Ok(None);
        }
        self.line_no += 1;
        self.offset = line_start;
        if too_long {
            return Ok(Some((self.line_no, Line::TooLong)));
        }
        let mut end = self.buf.len();
        if end > 0 && self.buf[end - 1] == b'\n' {
            end -= 1;
        }
        Ok(Some((self.line_no, decode(&self.buf[..end]))))
    }
}

/// A line's bytes without its `\n`: drops a trailing `\r`, checks UTF-8.
fn decode(bytes: &[u8]) -> Line<'_> {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(s) => Line::Text(s),
        Err(_) => Line::NotUtf8,
    }
}

/// Walks a JSON-lines input (Zeek JSON, Suricata EVE): calls `record` with each line
/// that is a JSON object and its line number, and rejects — with the line and the
/// reason — lines that are not UTF-8, too long, not JSON, or not an object. Blank
/// lines hold no record; with `hash_comments`, neither do lines starting with `#`.
pub fn for_each_json_object(
    input: &mut dyn BufRead,
    sink: &mut dyn Sink,
    hash_comments: bool,
    mut record: impl FnMut(Map<String, Value>, u64, &mut dyn Sink) -> std::io::Result<()>,
) -> Result<(), IngestError> {
    let mut lines = LineReader::new(input);
    while let Some((line_no, line)) = lines.next_line()? {
        let reject = |reason: String| Rejection {
            location: Location::Line(line_no),
            field: None,
            reason,
        };
        let text = match line {
            Line::Text(t) => t.trim(),
            Line::NotUtf8 => {
                sink.reject(reject("line is not valid UTF-8".into()))?;
                continue;
            }
            Line::TooLong => {
                sink.reject(reject("line longer than 16 MiB".into()))?;
                continue;
            }
        };
        if text.is_empty() || (hash_comments && text.starts_with('#')) {
            continue;
        }
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => record(map, line_no, sink)?,
            Ok(_) => sink.reject(reject("not a JSON object".into()))?,
            Err(e) => {
                // serde_json's text ends in "at line 1 column N": the line is the
                // input's, already in the location, and the column is said first.
                let text = e.to_string();
                let what = text
                    .rsplit_once(" at line ")
                    .map_or(text.as_str(), |(w, _)| w);
                sink.reject(reject(format!(
                    "invalid JSON at column {}: {what}",
                    e.column()
                )))?
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_lines_and_flags_bad_ones() {
        let data: &[u8] = b"a\r\nb\n\xff\xfe\nlast";
        let mut input = data;
        let mut r = LineReader::new(&mut input);
        let mut seen = Vec::new();
        while let Some((no, line)) = r.next_line().unwrap() {
            let text = match line {
                Line::Text(t) => t.to_string(),
                Line::NotUtf8 => "<bad>".to_string(),
                Line::TooLong => "<long>".to_string(),
            };
            seen.push((no, text));
        }
        assert_eq!(
            seen,
            vec![
                (1, "a".to_string()),
                (2, "b".to_string()),
                (3, "<bad>".to_string()),
                (4, "last".to_string()),
            ]
        );
    }

    #[test]
    fn lines_straddling_buffer_fills_read_like_whole_ones() {
        // The no-copy path (line whole in the input's buffer) and the copying path
        // (line split across fills) must give the same lines and byte offsets, at
        // every buffer size.
        let data: &[u8] = b"one\nt\r\nthree is longer\n\nx\n\xff\nlast line without newline";
        let mut want = Vec::new();
        let mut start = 0;
        while start < data.len() {
            let end = data[start..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(data.len(), |i| start + i);
            let part = &data[start..end];
            let part = part.strip_suffix(b"\r").unwrap_or(part);
            let text = std::str::from_utf8(part).map_or("<bad>".to_string(), str::to_string);
            want.push((want.len() as u64 + 1, text, start as u64));
            start = end + 1;
        }
        for capacity in 1..=20 {
            let mut input = std::io::BufReader::with_capacity(capacity, data);
            let mut r = LineReader::new(&mut input);
            let mut got = Vec::new();
            while let Some((no, line)) = r.next_line().unwrap() {
                let text = match line {
                    Line::Text(t) => t.to_string(),
                    Line::NotUtf8 => "<bad>".to_string(),
                    Line::TooLong => "<long>".to_string(),
                };
                got.push((no, text, r.offset));
            }
            assert_eq!(got, want, "buffer of {capacity} bytes");
        }
    }
}

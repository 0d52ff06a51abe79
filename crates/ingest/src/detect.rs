//! Format detection by content.
//!
//! File names lie (a `.log` may be JSON, a `.bin` may be a pcap), so the first bytes
//! decide. Gzip is removed before detection by [`crate::input::open_input`].

use std::fmt;
use std::io::BufRead;

use crate::input::peek;
use crate::IngestError;

/// How many bytes detection may look at: enough for several text lines.
const PEEK_BYTES: usize = 64 * 1024;

/// The input formats relaytrace reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Zeek ASCII logs with `#separator`/`#fields` headers.
    ZeekTsv,
    /// Zeek JSON logs, one object per line.
    ZeekJson,
    /// Suricata EVE JSON, one event per line.
    SuricataEve,
    /// Raw NetFlow v5/v9/IPFIX export datagrams, back to back.
    NetflowPayloads,
    /// A pcap/pcapng capture of NetFlow/IPFIX export traffic (taken at a collector).
    NetflowPcap,
    /// Classic libpcap capture.
    Pcap,
    /// pcapng capture.
    PcapNg,
}

impl Format {
    /// Stable name, used in the ledger and in `--format` overrides.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::ZeekTsv => "zeek-tsv",
            Format::ZeekJson => "zeek-json",
            Format::SuricataEve => "suricata-eve",
            Format::NetflowPayloads => "netflow",
            Format::NetflowPcap => "netflow-pcap",
            Format::Pcap => "pcap",
            Format::PcapNg => "pcapng",
        }
    }

    /// Parses a name given by [`Format::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        [
            Format::ZeekTsv,
            Format::ZeekJson,
            Format::SuricataEve,
            Format::NetflowPayloads,
            Format::NetflowPcap,
            Format::Pcap,
            Format::PcapNg,
        ]
        .into_iter()
        .find(|f| f.as_str() == s)
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Names the format of `input` from its first bytes, without consuming them.
pub fn detect_format(input: &mut dyn BufRead) -> Result<Format, IngestError> {
    let head = peek(input, PEEK_BYTES)?;
    detect_bytes(&head)
}

/// Detection on a byte prefix (pure; see [`detect_format`]).
pub fn detect_bytes(head: &[u8]) -> Result<Format, IngestError> {
    if head.len() >= 4 {
        let magic = [head[0], head[1], head[2], head[3]];
        match magic {
            [0xa1, 0xb2, 0xc3, 0xd4]
            | [0xd4, 0xc3, 0xb2, 0xa1]
            | [0xa1, 0xb2, 0x3c, 0x4d]
            | [0x4d, 0x3c, 0xb2, 0xa1]
            | [0x0a, 0x0d, 0x0d, 0x0a] => {
                if crate::pcap::looks_like_export_capture(head) {
                    return Ok(Format::NetflowPcap);
                }
                return Ok(if magic[0] == 0x0a {
                    Format::PcapNg
                } else {
                    Format::Pcap
                });
            }
            _ => {}
        }
    }
    if looks_like_netflow(head) {
        return Ok(Format::NetflowPayloads);
    }
    if let Some(f) = detect_text(head) {
        return Ok(f);
    }
    Err(IngestError::UnknownFormat(
        "not a pcap/pcapng, NetFlow/IPFIX payload, Zeek log or Suricata EVE file".into(),
    ))
}

/// NetFlow headers start with a big-endian version (5, 9, 10) and a count/length
/// that must be plausible; text formats never start with a 0x00 byte.
pub(crate) fn looks_like_netflow(head: &[u8]) -> bool {
    if head.len() < 16 || head[0] != 0 {
        return false;
    }
    let second = u16::from_be_bytes([head[2], head[3]]);
    match head[1] {
        // v5: count of 48-byte records, at most 30 per datagram (Cisco).
        5 => (1..=30).contains(&second),
        // v9: count of records (flowsets' records), non-zero.
        9 => second > 0,
        // IPFIX: message length, header included.
        10 => second >= 16,
        _ => false,
    }
}

fn detect_text(head: &[u8]) -> Option<Format> {
    let text = String::from_utf8_lossy(head);
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.starts_with("#separator") || line.starts_with("#fields") {
            return Some(Format::ZeekTsv);
        }
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let t = line.trim_start();
        if t.starts_with('{') {
            if t.contains("\"event_type\"") {
                return Some(Format::SuricataEve);
            }
            return Some(Format::ZeekJson);
        }
        // First real line is neither a Zeek header nor JSON: try a few more lines,
        // since corrupted files may start with garbage.
        if t.contains("\"event_type\"") {
            return Some(Format::SuricataEve);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_by_content() {
        let cases: [(&[u8], Format); 6] = [
            (&[0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0], Format::Pcap),
            (&[0x0a, 0x0d, 0x0d, 0x0a, 0, 0, 0, 0], Format::PcapNg),
            (
                b"#separator \\x09\n#set_separator\t,\n#fields\tts\tuid\n",
                Format::ZeekTsv,
            ),
            (b"{\"ts\":1.5,\"uid\":\"C1\"}\n", Format::ZeekJson),
            (
                b"{\"timestamp\":\"2017\",\"event_type\":\"flow\"}\n",
                Format::SuricataEve,
            ),
            (
                // NetFlow v5 header: version 5, count 2, then zeros.
                &[0, 5, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                Format::NetflowPayloads,
            ),
        ];
        for (bytes, want) in cases {
            assert_eq!(detect_bytes(bytes).unwrap(), want);
        }
    }

    #[test]
    fn refuses_unknown() {
        assert!(detect_bytes(b"hello world\n").is_err());
        assert!(detect_bytes(&[]).is_err());
    }
}

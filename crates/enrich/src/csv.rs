//! CSV range files: `start,end,asn,org` (AS data) and `start,end,country`.
//!
//! The layout of `@ip-location-db/asn` (`asn-ipv4.csv`, `asn-ipv6.csv`) and of the
//! country CSVs of the same project: no header, inclusive ranges given as dotted or
//! colon addresses, fields quoted with `"` when they contain a comma (`""` escapes a
//! quote), e.g. `1.0.0.0,1.0.0.255,13335,"Cloudflare, Inc."`. IPv4 and IPv6 rows may
//! share one file. Fields are trimmed of surrounding whitespace (real files have
//! organisation names with trailing spaces). The `-num` variants (decimal integers) are refused row by row:
//! an integer alone does not say which family it belongs to.
//!
//! Malformed rows are never guessed at: each becomes a [`RowProblem`] naming file,
//! line and reason, and the rest of the file is used.

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::error::{EnrichError, IoContext};
use crate::ranges::RangeRow;
use crate::types::{key_of, Asn, CountryCode, Family};

/// Longest line accepted, in bytes. Real rows are under 200 bytes (the longest AS
/// organisation names are about 100); a longer "line" is a wrong or hostile file, and
/// the bound keeps one such line from taking unbounded memory.
pub const MAX_LINE_BYTES: usize = 4096;

/// A row that was skipped, with where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowProblem {
    /// The source file.
    pub path: PathBuf,
    /// 1-based line number (for MMDB/MRT sources: record number or byte offset,
    /// named in `reason`).
    pub line: u64,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for RowProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.path.display(), self.line, self.reason)
    }
}

/// What a `start,end,asn,org` row says.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AsnInfo {
    /// The originating AS.
    pub asn: Asn,
    /// The AS's organisation name, when the source gives a non-empty one.
    pub org: Option<String>,
}

/// Rows of one source file split by family, plus the rows refused.
#[derive(Debug, Clone)]
pub struct Loaded<V> {
    /// IPv4 rows (keys are `u32` values widened to `u128`).
    pub v4: Vec<RangeRow<V>>,
    /// IPv6 rows.
    pub v6: Vec<RangeRow<V>>,
    /// Rows skipped, each with file, line and reason.
    pub problems: Vec<RowProblem>,
}

impl<V> Default for Loaded<V> {
    fn default() -> Self {
        Loaded {
            v4: Vec::new(),
            v6: Vec::new(),
            problems: Vec::new(),
        }
    }
}

impl<V> Loaded<V> {
    /// Rows accepted, both families.
    pub fn accepted(&self) -> u64 {
        (self.v4.len() + self.v6.len()) as u64
    }

    pub(crate) fn push(&mut self, family: Family, row: RangeRow<V>) {
        match family {
            Family::V4 => self.v4.push(row),
            Family::V6 => self.v6.push(row),
        }
    }
}

/// Reads a `start,end,asn,org` file. The org field may be missing or empty.
pub fn load_asn_csv(path: &Path) -> Result<Loaded<AsnInfo>, EnrichError> {
    load(path, |fields| {
        if fields.len() < 3 || fields.len() > 4 {
            return Err(format!(
                "expected 4 fields (start,end,asn,org), found {}",
                fields.len()
            ));
        }
        let asn = fields[2]
            .trim()
            .parse::<Asn>()
            .map_err(|e| format!("asn {:?}: {e}", fields[2]))?;
        let org = fields
            .get(3)
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty());
        Ok(AsnInfo { asn, org })
    })
}

/// Reads a `start,end,country` file.
pub fn load_country_csv(path: &Path) -> Result<Loaded<CountryCode>, EnrichError> {
    load(path, |fields| {
        if fields.len() != 3 {
            return Err(format!(
                "expected 3 fields (start,end,country), found {}",
                fields.len()
            ));
        }
        fields[2]
            .trim()
            .parse::<CountryCode>()
            .map_err(|e| format!("country {:?}: {e}", fields[2]))
    })
}

fn load<V>(
    path: &Path,
    value: impl Fn(&[String]) -> Result<V, String>,
) -> Result<Loaded<V>, EnrichError> {
    let file = File::open(path).at(path)?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut out = Loaded::default();
    let mut buf = Vec::with_capacity(256);
    let mut line_no = 0u64;
    loop {
        buf.clear();
        let n = (&mut reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut buf)
            .at(path)?;
        if n == 0 {
            break;
        }
        line_no += 1;
        if buf.last() != Some(&b'\n') && n > MAX_LINE_BYTES {
            // Skip the rest of the over-long line, then report it.
            let mut rest = Vec::new();
            loop {
                rest.clear();
                let m = (&mut reader)
                    .take(1 << 16)
                    .read_until(b'\n', &mut rest)
                    .at(path)?;
                if m == 0 || rest.last() == Some(&b'\n') {
                    break;
                }
            }
            out.problems.push(RowProblem {
                path: path.to_path_buf(),
                line: line_no,
                reason: format!("line longer than {MAX_LINE_BYTES} bytes"),
            });
            continue;
        }
        let text = match std::str::from_utf8(&buf) {
            Ok(t) => t.trim_end_matches(['\n', '\r']),
            Err(_) => {
                out.problems.push(RowProblem {
                    path: path.to_path_buf(),
                    line: line_no,
                    reason: "not UTF-8".into(),
                });
                continue;
            }
        };
        if text.trim().is_empty() || text.starts_with('#') {
            continue;
        }
        let parsed = split_fields(text).and_then(|fields| {
            let (family, first, last) = parse_range(&fields)?;
            Ok((family, first, last, value(&fields)?))
        });
        match parsed {
            Ok((family, first, last, value)) => out.push(family, RangeRow { first, last, value }),
            Err(reason) => out.problems.push(RowProblem {
                path: path.to_path_buf(),
                line: line_no,
                reason,
            }),
        }
    }
    if out.accepted() == 0 {
        return Err(EnrichError::EmptySource {
            path: path.to_path_buf(),
            rejected: out.problems.len() as u64,
        });
    }
    Ok(out)
}

/// The first two fields as an inclusive range of one family.
fn parse_range(fields: &[String]) -> Result<(Family, u128, u128), String> {
    if fields.len() < 2 {
        return Err("fewer than 2 fields".into());
    }
    let addr = |s: &str| -> Result<IpAddr, String> {
        let s = s.trim();
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "{s:?} is a bare integer (a -num file?): use the file with dotted/colon addresses"
            ));
        }
        s.parse::<IpAddr>()
            .map_err(|_| format!("{s:?} is not an IP address"))
    };
    let (fa, first) = key_of(addr(&fields[0])?);
    let (fb, last) = key_of(addr(&fields[1])?);
    if fa != fb {
        return Err("start and end are of different address families".into());
    }
    if first > last {
        return Err("start is after end".into());
    }
    Ok((fa, first, last))
}

/// Splits one CSV line (RFC 4180 quoting, no embedded newlines).
fn split_fields(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::with_capacity(4);
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    cur.push('"');
                } else {
                    quoted = false;
                    if !matches!(chars.peek(), None | Some(',')) {
                        return Err("text after a closing quote".into());
                    }
                }
            } else {
                cur.push(c);
            }
            continue;
        }
        match c {
            '"' if at_start => {
                quoted = true;
                at_start = false;
            }
            '"' => return Err("quote inside an unquoted field".into()),
            ',' => {
                fields.push(std::mem::take(&mut cur));
                at_start = true;
            }
            _ => {
                cur.push(c);
                at_start = false;
            }
        }
    }
    if quoted {
        return Err("unterminated quote".into());
    }
    fields.push(cur);
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_quoted_fields() {
        assert_eq!(
            split_fields(r#"1.0.0.0,1.0.0.255,13335,"Cloudflare, Inc.""#).unwrap(),
            vec!["1.0.0.0", "1.0.0.255", "13335", "Cloudflare, Inc."]
        );
        assert_eq!(
            split_fields(r#"a,"say ""hi""",c"#).unwrap(),
            vec!["a", r#"say "hi""#, "c"]
        );
        assert!(split_fields(r#"a,"open"#).is_err());
        assert!(split_fields(r#"a,"x"y"#).is_err());
        assert!(split_fields(r#"a,b"c"#).is_err());
    }

    #[test]
    fn malformed_rows_are_reported_with_line_and_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("asn.csv");
        let long = "x".repeat(MAX_LINE_BYTES + 10);
        let text = format!(
            "1.0.0.0,1.0.0.255,13335,\"Cloudflare, Inc.\"\n\
             1.0.1.0,1.0.0.0,1,backwards\n\
             16777216,16777471,13335,numeric\n\
             1.0.2.0,::1,5,mixed\n\
             1.0.3.0,1.0.3.255,AS99999999999,too big\n\
             1.0.4.0,1.0.4.255\n\
             {long}\n\
             2001:db8::,2001:db8::ffff,64496,\n"
        );
        std::fs::write(&path, text).unwrap();
        let loaded = load_asn_csv(&path).unwrap();
        assert_eq!(loaded.v4.len(), 1);
        assert_eq!(loaded.v6.len(), 1);
        assert_eq!(loaded.v6[0].value.org, None, "empty org is no org");
        let lines: Vec<u64> = loaded.problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, vec![2, 3, 4, 5, 6, 7]);
        assert!(loaded.problems[0].reason.contains("start is after end"));
        assert!(loaded.problems[1].reason.contains("bare integer"));
        assert!(loaded.problems[5].reason.contains("longer than"));
        assert!(loaded.problems[0].to_string().contains("asn.csv:2:"));
    }
}

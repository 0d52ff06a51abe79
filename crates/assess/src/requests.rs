//! Evidence requests: one Markdown file per holder, written by `assess --requests`.
//!
//! Each request says what is asked (exact time windows in UTC and addresses), why,
//! how to answer so that the requester can verify the answer without receiving
//! anything wholesale, and what each possible answer would change.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{AssessError, IoContext};
use crate::missing::Effect;
use crate::report::{effect_summary, Assessment};
use crate::words;

/// A file name for a holder: lower-case letters, digits and dashes, at most 60.
pub fn slug(holder: &str) -> String {
    let mut s = String::new();
    for c in holder.chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c.to_ascii_lowercase());
        } else if !s.ends_with('-') && !s.is_empty() {
            s.push('-');
        }
        if s.len() >= 60 {
            break;
        }
    }
    let s = s.trim_end_matches('-').to_string();
    if s.is_empty() {
        "holder".into()
    } else {
        s
    }
}

/// The Markdown request to `holder` for `effects`.
pub fn request(a: &Assessment, holder: &str, effects: &[&Effect]) -> String {
    let mut s = format!("{HEADING}{holder}\n\n");
    s.push_str(&format!(
        "An investigation of a network attack (relaytrace case; evidence digest `{}`) asks for the records below. \
The current assessment is **{}**: more proof is needed before anyone is named, and your records can supply some of it.\n\n",
        a.evidence_sha256,
        a.judgement.verdict.as_str().replace('_', " ")
    ));
    for (n, e) in effects.iter().enumerate() {
        let c = &e.candidate;
        s.push_str(&format!("## {}. {}\n\n", n + 1, c.id));
        s.push_str(&format!("**What is asked.** {}.\n\n", capitalise(&c.what)));
        if !c.windows.is_empty() {
            s.push_str("Time windows (UTC, inclusive):\n\n");
            for (a0, b0) in &c.windows {
                s.push_str(&format!(
                    "- {} to {}\n",
                    relaytrace_model::format_iso8601_us(*a0),
                    relaytrace_model::format_iso8601_us(*b0)
                ));
            }
            s.push('\n');
        }
        if !c.addresses.is_empty() {
            s.push_str(&format!(
                "Addresses: {}\n\n",
                c.addresses
                    .iter()
                    .map(|x| format!("`{x}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        s.push_str(&format!("**Why.** {}.\n\n", capitalise(&c.why)));
        if c.windows.is_empty() && c.addresses.is_empty() {
            // Not network records (a malware sample, a report, an analysis): the flow
            // instructions below would ask for windows and sessions it does not name.
            s.push_str("**How to answer.** Send what is asked with the SHA-256 digest of each file, its source and date, and a \
signed statement of how it was obtained. The requester records it as an evidence item graded for its source \
(`relaytrace evidence add item`), re-runs `relaytrace assess`, and returns the resulting finding and ledger so you can \
check every step with `relaytrace case verify`.\n\n");
        } else {
            s.push_str("**How to answer.** Export only the records inside the windows and addresses above, in their native format \
(NetFlow/IPFIX, Zeek conn.log, Suricata EVE JSON or pcap), and send them with the SHA-256 digest of each file and a signed statement of \
where they were recorded (sensor, clock source). The requester ingests them with `relaytrace ingest --vantage <your name>`, \
re-runs `relaytrace trace` and `relaytrace assess`, and returns the resulting findings and ledger so you can check every step with \
`relaytrace case verify`. If you prefer not to hand over records, you can instead confirm or deny the specific sessions listed, \
with the upstream address if one exists; that answer is graded like any other source.\n\n");
        }
        s.push_str("**What the answer would change.**\n\n");
        for o in &e.outcomes {
            let l = o.after.leading;
            s.push_str(&format!(
                "- {} (probability now {:.0} %): {} would lead, {} ({:.0} %); the verdict would be {}.\n",
                capitalise(&o.name),
                o.probability * 100.0,
                a.set.hypotheses[l].id,
                words::word(o.after.posterior[l]),
                words::clamp(o.after.posterior[l]) * 100.0,
                o.after.verdict.as_str().replace('_', " ")
            ));
        }
        s.push_str(&format!("\nIn sum: {}.\n\n", effect_summary(a, e)));
    }
    s
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// First line of every request file; how [`write()`] recognises the requests an
/// earlier run left in the directory.
const HEADING: &str = "# Evidence request to ";

/// What [`write()`] did in the requests directory.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// The requests of this assessment, sorted.
    pub files: Vec<PathBuf>,
    /// Requests an earlier run wrote there that this assessment no longer makes
    /// (the evidence arrived, or the holder is no longer the one to ask), removed so
    /// that an outdated request is not sent by mistake; sorted.
    pub removed: Vec<PathBuf>,
}

/// Writes one request per holder into `dir`, and removes the requests an earlier run
/// left there that this assessment does not make (files named `request-*.md` that
/// start with the request heading; nothing else in `dir` is touched).
pub fn write(dir: &Path, a: &Assessment) -> Result<Written, AssessError> {
    let files = write_requests(dir, a)?;
    let mut removed = Vec::new();
    for entry in fs::read_dir(dir).at(dir)? {
        let path = entry.at(dir)?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !(name.starts_with("request-") && name.ends_with(".md")) || files.contains(&path) {
            continue;
        }
        let ours = fs::read_to_string(&path).is_ok_and(|t| t.starts_with(HEADING));
        if ours {
            fs::remove_file(&path).at(&path)?;
            removed.push(path);
        }
    }
    removed.sort();
    Ok(Written { files, removed })
}

/// Writes one request per holder into `dir`; returns the files, sorted.
fn write_requests(dir: &Path, a: &Assessment) -> Result<Vec<PathBuf>, AssessError> {
    fs::create_dir_all(dir).at(dir)?;
    let mut by_holder: BTreeMap<&str, Vec<&Effect>> = BTreeMap::new();
    for e in &a.missing {
        by_holder
            .entry(e.candidate.holder.as_str())
            .or_default()
            .push(e);
    }
    let mut used: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = Vec::new();
    for (holder, effects) in by_holder {
        let base = slug(holder);
        let n = used.entry(base.clone()).or_insert(0);
        *n += 1;
        let name = if *n == 1 {
            format!("request-{base}.md")
        } else {
            format!("request-{base}-{n}.md")
        };
        let path = dir.join(name);
        fs::write(&path, request(a, holder, &effects)).at(&path)?;
        out.push(path);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::slug;

    #[test]
    fn slugs_are_file_names() {
        assert_eq!(
            slug("the operator of AS4837 (CHINA UNICOM)"),
            "the-operator-of-as4837-china-unicom"
        );
        assert_eq!(slug("../../etc"), "etc");
        assert_eq!(slug("***"), "holder");
        assert!(slug(&"x".repeat(200)).len() <= 60);
    }
}

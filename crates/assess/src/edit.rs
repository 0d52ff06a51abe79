//! Changing `evidence.toml` from the command line (`relaytrace evidence init/add`).
//!
//! Additions are appended as text (comments and layout of the file stay as the
//! analyst wrote them), and the whole new file is parsed with the same rules as
//! [`crate::evidence::parse`] *before* it is written: a bad addition never lands.

use std::fmt::Write as _;

use crate::evidence::FORMAT;

/// A TOML basic string for `s` (quotes, backslashes and control characters escaped).
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The file `evidence init` writes: the format line, the default policy spelled
/// out, and a comment showing an item.
pub fn skeleton() -> String {
    format!(
        "# relaytrace evidence file (see README.md, \"Assess\").\n\
format = {}\n\n\
# Verdict \"insufficient evidence\" unless the leading hypothesis reaches this ICD 203\n\
# word and the confidence this level.\n\
[policy]\n\
min_words = \"likely\"\n\
min_confidence = \"moderate\"\n\n\
# \"other\", \"false-flag\" and \"rented-infrastructure\" are added automatically.\n\
# [[hypothesis]]\n\
# id = \"actor-a\"\n\
# name = \"Actor A operated the attack\"\n\
# origin = {{ countries = [\"ZZ\"], asns = [64496], prefixes = [\"192.0.2.0/24\"] }}\n\n\
# [[item]]\n\
# id = \"code-reuse\"\n\
# kind = \"malware\"   # infrastructure, malware, tradecraft, timing, language, intent, outside-source\n\
# statement = \"The wiper shares code with tools earlier attributed to actor A.\"\n\
# source = {{ name = \"Vendor report\", url = \"https://example.org/report\", date = \"2016-02-24\" }}\n\
# reliability = \"B\"  # A-F (F: cannot be judged, no weight)\n\
# credibility = 2     # 1-6 (6: cannot be judged, no weight)\n\
# group = \"vendor-2016\"\n\
# spoofable = true\n\
# likelihoods = {{ actor-a = 0.6, otherwise = 0.1 }}   # or lr = {{ actor-a = 6.0 }}\n",
        quote(FORMAT)
    )
}

/// A hypothesis to append.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewHypothesis {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Relative prior, if not 1.
    pub prior: Option<f64>,
    /// Footprint countries.
    pub countries: Vec<String>,
    /// Footprint ASNs.
    pub asns: Vec<u64>,
    /// Footprint prefixes.
    pub prefixes: Vec<String>,
}

/// An item to append.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewItem {
    /// Id.
    pub id: String,
    /// Kind name.
    pub kind: String,
    /// Statement.
    pub statement: String,
    /// Source name.
    pub source: String,
    /// Source URL.
    pub url: String,
    /// Source date.
    pub date: Option<String>,
    /// Reliability letter.
    pub reliability: String,
    /// Credibility number.
    pub credibility: i64,
    /// Dependency group.
    pub group: Option<String>,
    /// Spoofable.
    pub spoofable: bool,
    /// `likelihoods` entries (may include `otherwise`).
    pub likelihoods: Vec<(String, f64)>,
    /// `lr` entries.
    pub lr: Vec<(String, f64)>,
    /// Holder of better evidence.
    pub holder: Option<String>,
}

fn table(entries: &[(String, f64)]) -> String {
    let inner: Vec<String> = entries
        .iter()
        .map(|(k, v)| format!("{} = {v:?}", quote(k)))
        .collect();
    format!("{{ {} }}", inner.join(", "))
}

/// The `[[hypothesis]]` block for `h`.
pub fn hypothesis_block(h: &NewHypothesis) -> String {
    let mut s = format!(
        "\n[[hypothesis]]\nid = {}\nname = {}\n",
        quote(&h.id),
        quote(&h.name)
    );
    if let Some(p) = h.prior {
        let _ = writeln!(s, "prior = {p:?}");
    }
    if !(h.countries.is_empty() && h.asns.is_empty() && h.prefixes.is_empty()) {
        let list = |v: &[String]| v.iter().map(|x| quote(x)).collect::<Vec<_>>().join(", ");
        let _ = writeln!(
            s,
            "origin = {{ countries = [{}], asns = [{}], prefixes = [{}] }}",
            list(&h.countries),
            h.asns
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            list(&h.prefixes)
        );
    }
    s
}

/// The `[[item]]` block for `it`.
pub fn item_block(it: &NewItem) -> String {
    let mut s = format!(
        "\n[[item]]\nid = {}\nkind = {}\nstatement = {}\nsource = {{ name = {}, url = {}{} }}\nreliability = {}\ncredibility = {}\n",
        quote(&it.id),
        quote(&it.kind),
        quote(&it.statement),
        quote(&it.source),
        quote(&it.url),
        it.date.as_ref().map_or(String::new(), |d| format!(", date = {}", quote(d))),
        quote(&it.reliability),
        it.credibility
    );
    if let Some(g) = &it.group {
        let _ = writeln!(s, "group = {}", quote(g));
    }
    if it.spoofable {
        s.push_str("spoofable = true\n");
    }
    if !it.likelihoods.is_empty() {
        let _ = writeln!(s, "likelihoods = {}", table(&it.likelihoods));
    }
    if !it.lr.is_empty() {
        let _ = writeln!(s, "lr = {}", table(&it.lr));
    }
    if let Some(h) = &it.holder {
        let _ = writeln!(s, "holder = {}", quote(h));
    }
    s
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::evidence::parse;

    #[test]
    fn blocks_round_trip_through_the_parser() {
        let mut text = skeleton();
        text.push_str(&hypothesis_block(&NewHypothesis {
            id: "kp".into(),
            name: "North \"Korea\"\nstate".into(),
            countries: vec!["KP".into()],
            asns: vec![131279],
            ..Default::default()
        }));
        text.push_str(&item_block(&NewItem {
            id: "x".into(),
            kind: "malware".into(),
            statement: "quote \" and backslash \\".into(),
            source: "S".into(),
            url: "https://example.org".into(),
            date: Some("2014-12-19".into()),
            reliability: "C".into(),
            credibility: 3,
            group: Some("g".into()),
            spoofable: true,
            likelihoods: vec![("kp".into(), 0.5), ("otherwise".into(), 0.1)],
            ..Default::default()
        }));
        let e = parse(&text, Path::new("e.toml")).unwrap();
        assert_eq!(e.hypotheses[0].name, "North \"Korea\"\nstate");
        assert_eq!(e.hypotheses[0].origin.as_ref().unwrap().asns, [131279]);
        assert_eq!(e.items[0].statement, "quote \" and backslash \\");
        assert_eq!(e.items[0].group, "g");
        assert_eq!(e.items[0].likelihood[0], 0.5);
    }

    #[test]
    fn skeleton_parses_with_only_the_defaults() {
        let e = parse(&skeleton(), Path::new("e.toml")).unwrap();
        assert_eq!(e.hypotheses.len(), 3);
        assert!(e.items.is_empty());
    }
}

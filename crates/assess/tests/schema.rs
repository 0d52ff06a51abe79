//! The JSON Schema of the evidence format agrees with the parser: its examples parse,
//! the demo evidence file validates against the schema, and the enumerations match.
//!
//! The validator here covers the keywords the schema uses (type, const, enum,
//! required, properties, additionalProperties, items, maxItems, minimum, maximum,
//! exclusiveMinimum, minLength, pattern by prefix/shape, $ref to $defs); it is a
//! cross-check, not a general JSON Schema implementation.

use std::path::Path;

use relaytrace_assess::evidence::{parse, Kind, FORMAT};
use relaytrace_assess::grade::Reliability;
use serde_json::Value;

const SCHEMA: &str = include_str!("../schema/evidence-1.schema.json");
const DEMO: &str = include_str!("../../../demo/evidence.toml");
const HELD_OUT: &[(&str, &str)] = &[
    (
        "bench/attribution-cases/olympic-destroyer.toml",
        include_str!("../../../bench/attribution-cases/olympic-destroyer.toml"),
    ),
    (
        "bench/attribution-cases/tv5monde.toml",
        include_str!("../../../bench/attribution-cases/tv5monde.toml"),
    ),
    (
        "bench/attribution-cases/wannacry.toml",
        include_str!("../../../bench/attribution-cases/wannacry.toml"),
    ),
    (
        "bench/attribution-cases/notpetya.toml",
        include_str!("../../../bench/attribution-cases/notpetya.toml"),
    ),
];

fn schema() -> Value {
    serde_json::from_str(SCHEMA).expect("schema is JSON")
}

/// The patterns the schema uses, checked by hand (no regex dependency for a test).
fn pattern_ok(pattern: &str, s: &str) -> bool {
    match pattern {
        "^[a-z0-9_-]{1,64}$" => {
            (1..=64).contains(&s.len())
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        }
        "^[A-Z]{2}$" => s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase()),
        "^https?://" => s.starts_with("http://") || s.starts_with("https://"),
        "^[0-9]{4}-[0-9]{2}-[0-9]{2}$" => {
            s.len() == 10
                && s.bytes().enumerate().all(|(i, b)| {
                    if i == 4 || i == 7 {
                        b == b'-'
                    } else {
                        b.is_ascii_digit()
                    }
                })
        }
        "^G[0-9]{4}$" | "^S[0-9]{4}$" => {
            s.len() == 5
                && s.as_bytes()[0] == pattern.as_bytes()[1]
                && s[1..].bytes().all(|b| b.is_ascii_digit())
        }
        "^T[0-9]{4}(\\.[0-9]{3})?$" => relaytrace_assess::evidence::is_attack_id(s, 'T'),
        other => panic!("pattern {other} not covered by the test validator"),
    }
}

fn validate(root: &Value, schema: &Value, v: &Value, at: &str, errors: &mut Vec<String>) {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.strip_prefix("#/$defs/").expect("local ref");
        return validate(root, &root["$defs"][name], v, at, errors);
    }
    if let Some(c) = schema.get("const") {
        if c != v {
            errors.push(format!("{at}: not {c}"));
        }
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array) {
        if !e.contains(v) {
            errors.push(format!("{at}: {v} not in enum"));
        }
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("object") => {
            let Some(m) = v.as_object() else {
                return errors.push(format!("{at}: not an object"));
            };
            for r in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if !m.contains_key(r.as_str().unwrap()) {
                    errors.push(format!("{at}: missing {r}"));
                }
            }
            let props = schema.get("properties").and_then(Value::as_object);
            for (k, x) in m {
                match props.and_then(|p| p.get(k)) {
                    Some(s) => validate(root, s, x, &format!("{at}.{k}"), errors),
                    None => match schema.get("additionalProperties") {
                        Some(Value::Bool(false)) => errors.push(format!("{at}: unknown {k}")),
                        Some(s @ Value::Object(_)) => {
                            validate(root, s, x, &format!("{at}.{k}"), errors)
                        }
                        _ => {}
                    },
                }
            }
        }
        Some("array") => {
            let Some(a) = v.as_array() else {
                return errors.push(format!("{at}: not an array"));
            };
            if let Some(n) = schema.get("maxItems").and_then(Value::as_u64) {
                if a.len() as u64 > n {
                    errors.push(format!("{at}: more than {n}"));
                }
            }
            if let Some(s) = schema.get("items") {
                for (i, x) in a.iter().enumerate() {
                    validate(root, s, x, &format!("{at}[{i}]"), errors);
                }
            }
        }
        Some("string") => {
            let Some(s) = v.as_str() else {
                return errors.push(format!("{at}: not a string"));
            };
            if let Some(n) = schema.get("minLength").and_then(Value::as_u64) {
                if (s.chars().count() as u64) < n {
                    errors.push(format!("{at}: shorter than {n}"));
                }
            }
            if let Some(p) = schema.get("pattern").and_then(Value::as_str) {
                if !pattern_ok(p, s) {
                    errors.push(format!("{at}: {s:?} does not match {p}"));
                }
            }
        }
        Some("number") | Some("integer") => {
            let Some(x) = v.as_f64() else {
                return errors.push(format!("{at}: not a number"));
            };
            if schema["type"] == "integer" && v.as_i64().is_none() && v.as_u64().is_none() {
                errors.push(format!("{at}: not an integer"));
            }
            if let Some(m) = schema.get("minimum").and_then(Value::as_f64) {
                if x < m {
                    errors.push(format!("{at}: below {m}"));
                }
            }
            if let Some(m) = schema.get("maximum").and_then(Value::as_f64) {
                if x > m {
                    errors.push(format!("{at}: above {m}"));
                }
            }
            if let Some(m) = schema.get("exclusiveMinimum").and_then(Value::as_f64) {
                if x <= m {
                    errors.push(format!("{at}: not above {m}"));
                }
            }
        }
        Some("boolean") if !v.is_boolean() => errors.push(format!("{at}: not a boolean")),
        _ => {}
    }
}

fn errors_of(v: &Value) -> Vec<String> {
    let s = schema();
    let mut e = Vec::new();
    validate(&s, &s, v, "$", &mut e);
    e
}

#[test]
fn schema_examples_pass_the_parser() {
    let s = schema();
    let examples = s["examples"].as_array().expect("examples");
    assert!(examples.len() >= 2);
    for (i, ex) in examples.iter().enumerate() {
        assert_eq!(errors_of(ex), Vec::<String>::new(), "example {i}");
        let text = toml::to_string(ex).expect("example as TOML");
        parse(&text, Path::new("example.toml"))
            .unwrap_or_else(|e| panic!("example {i} refused by the parser: {e}\n{text}"));
    }
}

#[test]
fn demo_evidence_validates_and_parses() {
    let set = parse(DEMO, Path::new("demo/evidence.toml")).expect("demo parses");
    assert!(set
        .items
        .iter()
        .all(|i| i.source.url.starts_with("https://")));
    let as_json: Value =
        serde_json::to_value(toml::from_str::<toml::Value>(DEMO).unwrap()).unwrap();
    assert_eq!(errors_of(&as_json), Vec::<String>::new());
}

/// The held-out cases of `bench/attribution-cases` (and the demo, which that bench also
/// runs) parse, validate, cite https sources, and name in their header a truth that is
/// one of their hypotheses and the dates to assess them at.
#[test]
fn held_out_cases_validate_and_parse() {
    for (path, text) in HELD_OUT.iter().chain([("demo/evidence.toml", DEMO)].iter()) {
        let set = parse(text, Path::new(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(
            set.items
                .iter()
                .all(|i| i.source.url.starts_with("https://")),
            "{path}"
        );
        let as_json: Value =
            serde_json::to_value(toml::from_str::<toml::Value>(text).unwrap()).unwrap();
        assert_eq!(errors_of(&as_json), Vec::<String>::new(), "{path}");
        let header = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key))
                .map(str::trim)
                .unwrap_or_else(|| panic!("{path}: no '{key}' line"))
        };
        let truth = header("# truth:");
        assert!(
            set.hypotheses.iter().any(|h| h.id == truth),
            "{path}: truth {truth}"
        );
        assert!(header("# as-of:").split_whitespace().count() >= 2, "{path}");
    }
}

#[test]
fn schema_rejects_what_the_parser_rejects() {
    let bad = [
        r#"{"format": "relaytrace-evidence/2"}"#,
        r#"{"format": "relaytrace-evidence/1", "item": [{"id": "x", "kind": "rumour", "statement": "s", "source": {"name": "n", "url": "https://e"}, "reliability": "B", "credibility": 2}]}"#,
        r#"{"format": "relaytrace-evidence/1", "item": [{"id": "x", "kind": "malware", "statement": "s", "source": {"name": "n", "url": "https://e"}, "reliability": "G", "credibility": 2}]}"#,
        r#"{"format": "relaytrace-evidence/1", "item": [{"id": "x", "kind": "malware", "statement": "s", "source": {"name": "n", "url": "https://e"}, "reliability": "B", "credibility": 7}]}"#,
        r#"{"format": "relaytrace-evidence/1", "hypothesis": [{"id": "A!", "name": "n"}]}"#,
        r#"{"format": "relaytrace-evidence/1", "weight": 3}"#,
    ];
    for b in bad {
        let v: Value = serde_json::from_str(b).unwrap();
        assert!(!errors_of(&v).is_empty(), "schema accepted {b}");
        let text = toml::to_string(&v).unwrap();
        assert!(
            parse(&text, Path::new("x.toml")).is_err(),
            "parser accepted {b}"
        );
    }
}

#[test]
fn enumerations_match_the_code() {
    let s = schema();
    assert_eq!(s["properties"]["format"]["const"], FORMAT);
    let kinds: Vec<&str> = s["$defs"]["item"]["properties"]["kind"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(kinds, Kind::ALL.map(Kind::as_str));
    let grades: Vec<&str> = s["$defs"]["item"]["properties"]["reliability"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(grades, Reliability::ALL.map(Reliability::letter));
}

//! Templates (RFC 3954 §5.2–5.3, RFC 7011 §3.4.1–3.4.2) and the cache that keeps
//! them between datagrams and files.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::cursor::Cursor;

/// Field length meaning "variable length, prefixed in the record" (RFC 7011 §7).
/// Some NetFlow v9 exporters (H3C NetStream) use it too, so both readers honour it.
pub(super) const VARIABLE_LENGTH: u16 = 65535;

/// Most templates one exporter may hold at once.
///
/// Template IDs span 256..=65535, so without a cap one hostile or broken exporter
/// could make us hold ~65k templates of up to ~16k fields each. Real exporters use a
/// few dozen (the largest in our corpus, Cisco ASA, uses 30); 4096 leaves ample room
/// and bounds memory to a few MB per exporter.
const MAX_TEMPLATES_PER_EXPORTER: usize = 4096;

/// Most exporters (version, source id / observation domain) the cache tracks.
///
/// The exporter key is a 32-bit number read from the datagram, so a hostile input
/// could otherwise spread templates over billions of keys and defeat the
/// per-exporter cap above.
const MAX_EXPORTERS: usize = 1024;

/// One Field Specifier: which Information Element, and how many bytes it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FieldSpec {
    /// Information Element (IPFIX) or field type (v9) number, enterprise bit cleared.
    pub(super) ie: u16,
    /// Private Enterprise Number for enterprise-specific IEs (RFC 7011 §3.2).
    pub(super) pen: Option<u32>,
    /// Bytes in each record, or [`VARIABLE_LENGTH`]; may be 0 in v9.
    pub(super) len: u16,
    /// Options-template scope field (RFC 3954 §6.1, RFC 7011 §3.4.2.1); in v9 scope
    /// fields have their own numbering (1 = System, 2 = Interface...).
    pub(super) scope: bool,
}

/// A (data or options) template: the layout of the data records that reference it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Template {
    /// The fields, scope fields first.
    pub(super) fields: Vec<FieldSpec>,
    /// Options template: its records describe the exporter, not flows.
    pub(super) options: bool,
}

impl Template {
    /// Fewest bytes a record of this template can take: fixed lengths, plus one
    /// length byte per variable-length field. A set tail shorter than this is padding.
    pub(super) fn min_record_len(&self) -> usize {
        self.fields
            .iter()
            .map(|f| match f.len {
                VARIABLE_LENGTH => 1,
                n => usize::from(n),
            })
            .sum()
    }
}

/// Reads `count` Field Specifiers, the first `scope_count` of them scope fields.
///
/// With `enterprise` (IPFIX, RFC 7011 §3.2) a set top bit means a 4-byte Private
/// Enterprise Number follows; NetFlow v9 has no such bit, its field types are
/// plain 16-bit numbers. `None` when the specifiers run past the cursor.
pub(super) fn read_field_specs(
    c: &mut Cursor<'_>,
    count: usize,
    scope_count: usize,
    enterprise: bool,
) -> Option<Vec<FieldSpec>> {
    // Each specifier takes at least 4 bytes: never reserve more than could fit.
    let mut fields = Vec::with_capacity(count.min(c.remaining() / 4));
    for i in 0..count {
        let raw = c.u16()?;
        let len = c.u16()?;
        let (ie, pen) = if enterprise && raw & 0x8000 != 0 {
            (raw & 0x7fff, Some(c.u32()?))
        } else {
            (raw, None)
        };
        fields.push(FieldSpec {
            ie,
            pen,
            len,
            scope: i < scope_count,
        });
    }
    Some(fields)
}

/// Which exporter a template belongs to. Without IP framing we cannot see the
/// exporter's address, so the key is the datagram's own scope: NetFlow version and
/// v9 Source ID or IPFIX Observation Domain ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct ExporterKey {
    version: u16,
    domain: u32,
}

/// What one exporter has told us so far.
#[derive(Debug, Clone, Default)]
struct Exporter {
    templates: HashMap<u16, Template>,
    /// IPFIX systemInitTimeMilliseconds (IE 160) from an options record: the base of
    /// flowStartSysUpTime/flowEndSysUpTime (RFC 7011 §5 / IANA IE 21, 22).
    system_init_ms: Option<i64>,
}

/// Why a template was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CacheFull {
    /// [`MAX_EXPORTERS`] reached.
    Exporters,
    /// [`MAX_TEMPLATES_PER_EXPORTER`] reached for this exporter.
    Templates,
}

impl CacheFull {
    /// Human reason for the rejection.
    pub(super) fn reason(self) -> String {
        match self {
            CacheFull::Exporters => {
                format!("template cache already tracks {MAX_EXPORTERS} exporters")
            }
            CacheFull::Templates => {
                format!("exporter already has {MAX_TEMPLATES_PER_EXPORTER} templates")
            }
        }
    }
}

/// Templates learned so far, keyed by (NetFlow version, v9 Source ID or IPFIX
/// Observation Domain ID, template ID).
///
/// NetFlow v9 and IPFIX data records cannot be decoded without the template that
/// describes them, and exporters send templates only now and then (often in other
/// datagrams, even other capture files), so the cache outlives one input: pass the
/// same cache to every [`super::read_payloads`] call of an ingest run. It is bounded
/// (4096 templates per exporter, 1024 exporters) because its keys come from the
/// input; templates over the bound are rejected, not stored.
#[derive(Debug, Clone, Default)]
pub struct TemplateCache {
    exporters: HashMap<ExporterKey, Exporter>,
    stored: u64,
}

impl TemplateCache {
    /// Number of templates held, over all exporters; lets callers report what a
    /// template-only file taught.
    pub fn len(&self) -> usize {
        self.exporters.values().map(|e| e.templates.len()).sum()
    }

    /// Template records stored over the cache's life (re-announcements included), so
    /// a reader can report that a template-only file was read.
    pub fn stored(&self) -> u64 {
        self.stored
    }

    /// True when no template is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stores (or replaces: RFC 7011 §8.1 allows redefinition over UDP) a template.
    pub(super) fn insert(
        &mut self,
        version: u16,
        domain: u32,
        id: u16,
        template: Template,
    ) -> Result<(), CacheFull> {
        let exporter = self.exporter_mut(version, domain)?;
        if exporter.templates.len() >= MAX_TEMPLATES_PER_EXPORTER
            && !exporter.templates.contains_key(&id)
        {
            return Err(CacheFull::Templates);
        }
        exporter.templates.insert(id, template);
        self.stored += 1;
        Ok(())
    }

    /// The template `id` of this exporter, if known.
    pub(super) fn get(&self, version: u16, domain: u32, id: u16) -> Option<&Template> {
        self.exporters
            .get(&ExporterKey { version, domain })?
            .templates
            .get(&id)
    }

    /// Forgets one template (IPFIX Template Withdrawal, RFC 7011 §8.1).
    pub(super) fn withdraw(&mut self, version: u16, domain: u32, id: u16) {
        if let Some(e) = self.exporters.get_mut(&ExporterKey { version, domain }) {
            e.templates.remove(&id);
        }
    }

    /// Forgets every template of the exporter (All Data Templates Withdrawal).
    pub(super) fn withdraw_all(&mut self, version: u16, domain: u32) {
        if let Some(e) = self.exporters.get_mut(&ExporterKey { version, domain }) {
            e.templates.clear();
        }
    }

    /// Remembers the exporter's systemInitTimeMilliseconds (IE 160).
    pub(super) fn set_system_init_ms(&mut self, version: u16, domain: u32, ms: i64) {
        if let Ok(e) = self.exporter_mut(version, domain) {
            e.system_init_ms = Some(ms);
        }
    }

    /// The exporter's systemInitTimeMilliseconds, if an options record gave it.
    pub(super) fn system_init_ms(&self, version: u16, domain: u32) -> Option<i64> {
        self.exporters
            .get(&ExporterKey { version, domain })?
            .system_init_ms
    }

    /// The cache as JSON, for the case store to keep between `ingest` runs instead of
    /// re-reading every earlier export file to learn its templates again:
    /// `{"exporters": [{"version", "domain", "system_init_ms", "templates": [{"id",
    /// "options", "fields": [[ie, pen, len, scope], ...]}]}]}`, exporters and templates
    /// sorted, so equal caches give equal text.
    pub fn to_json(&self) -> Value {
        let mut keys: Vec<&ExporterKey> = self.exporters.keys().collect();
        keys.sort_by_key(|k| (k.version, k.domain));
        let exporters: Vec<Value> = keys
            .into_iter()
            .map(|k| {
                let e = &self.exporters[k];
                let mut ids: Vec<&u16> = e.templates.keys().collect();
                ids.sort();
                let templates: Vec<Value> = ids
                    .into_iter()
                    .map(|id| {
                        let t = &e.templates[id];
                        let fields: Vec<Value> = t
                            .fields
                            .iter()
                            .map(|f| json!([f.ie, f.pen, f.len, f.scope]))
                            .collect();
                        json!({ "id": id, "options": t.options, "fields": fields })
                    })
                    .collect();
                json!({
                    "version": k.version,
                    "domain": k.domain,
                    "system_init_ms": e.system_init_ms,
                    "templates": templates,
                })
            })
            .collect();
        json!({ "exporters": exporters })
    }

    /// Reads what [`TemplateCache::to_json`] wrote, under the same bounds as templates
    /// read from the wire; the error says which value is wrong.
    pub fn from_json(v: &Value) -> Result<TemplateCache, String> {
        fn num<T: TryFrom<u64>>(v: &Value, what: &str) -> Result<T, String> {
            v.as_u64()
                .and_then(|n| T::try_from(n).ok())
                .ok_or_else(|| format!("{what}: {v} is not a valid number"))
        }
        let mut cache = TemplateCache::default();
        let exporters = v
            .get("exporters")
            .and_then(Value::as_array)
            .ok_or("no \"exporters\" list")?;
        for e in exporters {
            let version: u16 = num(&e["version"], "version")?;
            let domain: u32 = num(&e["domain"], "domain")?;
            let exporter = cache
                .exporter_mut(version, domain)
                .map_err(CacheFull::reason)?;
            exporter.system_init_ms = match &e["system_init_ms"] {
                Value::Null => None,
                ms => Some(
                    ms.as_i64()
                        .ok_or_else(|| format!("system_init_ms: {ms} is not an integer"))?,
                ),
            };
            let templates = e["templates"].as_array().ok_or("no \"templates\" list")?;
            for t in templates {
                let id: u16 = num(&t["id"], "template id")?;
                let options = t["options"].as_bool().ok_or("options: not a boolean")?;
                let mut fields = Vec::new();
                for f in t["fields"].as_array().ok_or("no \"fields\" list")? {
                    let pen = match &f[1] {
                        Value::Null => None,
                        p => Some(num(p, "enterprise number")?),
                    };
                    fields.push(FieldSpec {
                        ie: num(&f[0], "information element")?,
                        pen,
                        len: num(&f[2], "field length")?,
                        scope: f[3].as_bool().ok_or("scope: not a boolean")?,
                    });
                }
                cache
                    .insert(version, domain, id, Template { fields, options })
                    .map_err(CacheFull::reason)?;
            }
        }
        cache.stored = 0;
        Ok(cache)
    }

    /// True when the cache holds nothing an exporter said (no exporter seen).
    pub fn is_blank(&self) -> bool {
        self.exporters.is_empty()
    }

    fn exporter_mut(&mut self, version: u16, domain: u32) -> Result<&mut Exporter, CacheFull> {
        let key = ExporterKey { version, domain };
        if self.exporters.len() >= MAX_EXPORTERS && !self.exporters.contains_key(&key) {
            return Err(CacheFull::Exporters);
        }
        Ok(self.exporters.entry(key).or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tpl(lens: &[u16]) -> Template {
        Template {
            fields: lens
                .iter()
                .map(|&len| FieldSpec {
                    ie: 1,
                    pen: None,
                    len,
                    scope: false,
                })
                .collect(),
            options: false,
        }
    }

    #[test]
    fn keyed_by_version_domain_and_id() {
        let mut c = TemplateCache::default();
        c.insert(9, 0, 256, tpl(&[4])).unwrap();
        c.insert(10, 0, 256, tpl(&[8])).unwrap();
        c.insert(9, 1, 256, tpl(&[2])).unwrap();
        assert_eq!(c.len(), 3);
        assert_eq!(c.get(9, 0, 256).unwrap().min_record_len(), 4);
        assert_eq!(c.get(10, 0, 256).unwrap().min_record_len(), 8);
        assert_eq!(c.get(9, 1, 256).unwrap().min_record_len(), 2);
        assert!(c.get(9, 2, 256).is_none());
        c.withdraw(9, 0, 256);
        assert!(c.get(9, 0, 256).is_none());
        c.withdraw_all(10, 0);
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn json_round_trip_keeps_every_part_and_refuses_bad_values() {
        let mut c = TemplateCache::default();
        c.insert(9, 0, 256, tpl(&[4, 2])).unwrap();
        let mut opt = tpl(&[4]);
        opt.options = true;
        opt.fields[0].scope = true;
        opt.fields.push(FieldSpec {
            ie: 1,
            pen: Some(29305),
            len: VARIABLE_LENGTH,
            scope: false,
        });
        c.insert(10, 7, 300, opt).unwrap();
        c.set_system_init_ms(10, 7, 1_700_000_000_000);
        let v = c.to_json();
        let back = TemplateCache::from_json(&v).unwrap();
        assert_eq!(back.to_json(), v);
        assert_eq!(back.get(9, 0, 256), c.get(9, 0, 256));
        assert_eq!(back.get(10, 7, 300), c.get(10, 7, 300));
        assert_eq!(back.system_init_ms(10, 7), Some(1_700_000_000_000));
        assert_eq!(back.len(), 2);

        let mut bad = v.clone();
        bad["exporters"][0]["templates"][0]["fields"][0][2] = json!(70000);
        let e = TemplateCache::from_json(&bad).unwrap_err();
        assert!(e.contains("field length"), "{e}");
        let mut bad = v;
        bad["exporters"][1]["domain"] = json!(-1);
        assert!(TemplateCache::from_json(&bad)
            .unwrap_err()
            .contains("domain"));
        assert!(TemplateCache::from_json(&json!({})).is_err());
    }

    #[test]
    fn per_exporter_cap_holds_but_redefinition_passes() {
        let mut c = TemplateCache::default();
        for id in 0..MAX_TEMPLATES_PER_EXPORTER {
            c.insert(10, 7, 256 + id as u16, tpl(&[1])).unwrap();
        }
        assert_eq!(c.insert(10, 7, 60000, tpl(&[1])), Err(CacheFull::Templates));
        assert_eq!(c.insert(10, 7, 256, tpl(&[2])), Ok(()));
        assert_eq!(c.insert(10, 8, 60000, tpl(&[1])), Ok(()), "other exporter");
    }

    #[test]
    fn exporter_cap_holds() {
        let mut c = TemplateCache::default();
        for d in 0..MAX_EXPORTERS as u32 {
            c.insert(9, d, 256, tpl(&[1])).unwrap();
        }
        assert_eq!(
            c.insert(9, u32::MAX, 256, tpl(&[1])),
            Err(CacheFull::Exporters)
        );
    }

    #[test]
    fn enterprise_bit_only_in_ipfix() {
        let bytes = [
            0x80, 0x01, 0x00, 0x08, // IE 1 with enterprise bit, length 8
            0x00, 0x00, 0x72, 0x79, // PEN = 29305 (RFC 5103 reverse)
            0x00, 0x08, 0x00, 0x04, // IE 8 sourceIPv4Address, length 4
        ];
        let mut c = Cursor::new(&bytes, 0, bytes.len());
        let specs = read_field_specs(&mut c, 2, 1, true).unwrap();
        assert_eq!(
            specs,
            vec![
                FieldSpec {
                    ie: 1,
                    pen: Some(29305),
                    len: 8,
                    scope: true
                },
                FieldSpec {
                    ie: 8,
                    pen: None,
                    len: 4,
                    scope: false
                },
            ]
        );
        let mut c = Cursor::new(&bytes, 0, bytes.len());
        let v9 = read_field_specs(&mut c, 3, 0, false).unwrap();
        assert_eq!(v9[0].ie, 0x8001, "v9 keeps the raw type");
        let mut c = Cursor::new(&bytes, 0, bytes.len());
        assert_eq!(
            read_field_specs(&mut c, 4, 0, true),
            None,
            "runs past the end"
        );
    }

    #[test]
    fn variable_length_counts_one_byte() {
        assert_eq!(tpl(&[4, VARIABLE_LENGTH, 0]).min_record_len(), 5);
    }
}

//! Zeek JSON logs (`LogAscii::use_json=T` or the json-streaming-logs package): one
//! object per line, field names as in TSV (`id.orig_h`), optional `_path`.

use std::borrow::Cow;
use std::io::BufRead;

use relaytrace_model::{Event, Location, Rejection};
use serde_json::{Map, Value};

use super::conn_fields::{conn_from_fields, is_conn_log, parse_time, ConnField};
use crate::lines::for_each_json_object;
use crate::{IngestError, Sink};

/// Text of a JSON value as Zeek's TSV would print it; `None` for null.
///
/// Numbers use serde_json's shortest round-trip form, so `1521911799.739898` comes
/// back with exactly the digits Zeek wrote and is then parsed as a decimal.
pub(crate) fn value_text(v: &Value) -> Option<Cow<'_, str>> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(Cow::Borrowed(s.as_str())),
        Value::Bool(b) => Some(Cow::Borrowed(if *b { "T" } else { "F" })),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        other => Some(Cow::Owned(other.to_string())),
    }
}

/// Reads a Zeek JSON log into `sink`. `#` lines (btest banners) are comments.
pub fn read_json(input: &mut dyn BufRead, sink: &mut dyn Sink) -> Result<(), IngestError> {
    for_each_json_object(input, sink, true, |map, line_no, sink| {
        let loc = Location::Line(line_no);
        let path = map.get("_path").and_then(Value::as_str);
        if is_conn_log(path, |f| map.contains_key(f)) {
            let get = |f: ConnField| map.get(f.name()).and_then(value_text);
            match conn_from_fields(get, line_no) {
                Ok(conn) => sink.conn(conn)?,
                Err(e) => sink.reject(rejection(loc, Some(e.field), e.reason))?,
            }
        } else {
            match event_from_map(path, &map, line_no) {
                Ok(event) => sink.event(event)?,
                Err((field, reason)) => sink.reject(rejection(loc, Some(field), reason))?,
            }
        }
        Ok(())
    })
}

fn rejection(location: Location, field: Option<&str>, reason: String) -> Rejection {
    Rejection {
        location,
        field: field.map(str::to_string),
        reason,
    }
}

fn event_from_map(
    path: Option<&str>,
    map: &Map<String, Value>,
    line_no: u64,
) -> Result<Event, (&'static str, String)> {
    let ts_ns = match map.get("ts").and_then(value_text) {
        Some(v) => Some(parse_time("ts", &v).map_err(|e| (e.field, e.reason))?),
        None => None,
    };
    let text_of = |key: &str| map.get(key).and_then(Value::as_str).map(str::to_string);
    Ok(Event {
        kind: path.unwrap_or("zeek").to_string(),
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

    #[test]
    fn reads_conn_and_other_logs() {
        let data = "### banner\n{\"_path\":\"conn\",\"ts\":1300475168.853899,\"uid\":\"Cb\",\"id.orig_h\":\"2001:db8::1\",\"id.orig_p\":43927,\"id.resp_h\":\"2001:db8::2\",\"id.resp_p\":53,\"proto\":\"udp\",\"duration\":0.000435,\"orig_bytes\":38,\"conn_state\":\"SF\"}\n{\"_path\":\"ssh\",\"ts\":\"2018-03-24T17:16:39.739898Z\",\"uid\":\"C2\",\"auth_success\":true}\n{\"ts\":XXXXXXXXXX.XXXXXX}\n[1,2]\n";
        let mut sink = VecSink::default();
        read_json(&mut data.as_bytes(), &mut sink).unwrap();
        assert_eq!(sink.conns.len(), 1);
        let c = &sink.conns[0];
        assert_eq!(c.start_ns, 1_300_475_168_853_899_000);
        assert_eq!(c.duration_ns, Some(435_000));
        assert_eq!(c.orig_bytes, Some(38));
        assert_eq!(c.resp_bytes, None);
        assert_eq!(sink.events.len(), 1);
        assert_eq!(sink.events[0].kind, "ssh");
        assert_eq!(sink.events[0].ts_ns, Some(1_521_911_799_739_898_000));
        assert_eq!(sink.events[0].uid.as_deref(), Some("C2"));
        assert_eq!(sink.rejections.len(), 2);
        assert_eq!(sink.rejections[0].location, Location::Line(4));
        assert!(sink.rejections[0].reason.contains("invalid JSON"));
        assert_eq!(sink.rejections[1].reason, "not a JSON object");
    }
}

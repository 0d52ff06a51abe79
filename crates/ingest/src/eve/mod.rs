//! Suricata EVE JSON (one event per line; Suricata user guide, "Eve JSON Format").
//!
//! `flow` events (bidirectional) and `netflow` events (one direction each) become
//! connections; every other event type (`alert`, `dns`, `http`, `fileinfo`, `stats`...)
//! is kept whole as an event, linked by `flow_id` and `community_id`.

use std::io::BufRead;
use std::net::IpAddr;

use relaytrace_model::{parse_iso8601_ns, Conn, Event, Location, Proto, Rejection};
use serde_json::{Map, Value};

use crate::lines::for_each_json_object;
use crate::{IngestError, Sink};

/// Reads an EVE file into `sink`.
pub fn read(input: &mut dyn BufRead, sink: &mut dyn Sink) -> Result<(), IngestError> {
    for_each_json_object(input, sink, false, |map, line_no, sink| {
        match parse_event(&map, line_no) {
            Ok(Parsed::Conn(conn)) => sink.conn(*conn),
            Ok(Parsed::Event(event)) => sink.event(event),
            Err((field, reason)) => {
                sink.reject(rejection(Location::Line(line_no), Some(field), reason))
            }
        }
    })
}

enum Parsed {
    Conn(Box<Conn>),
    Event(Event),
}

type FieldResult<T> = Result<T, (&'static str, String)>;

fn rejection(location: Location, field: Option<&str>, reason: String) -> Rejection {
    Rejection {
        location,
        field: field.map(str::to_string),
        reason,
    }
}

fn time_field(map: &Map<String, Value>, field: &'static str) -> FieldResult<i64> {
    let v = map
        .get(field)
        .and_then(Value::as_str)
        .ok_or((field, "missing or not a string".to_string()))?;
    parse_iso8601_ns(v).map_err(|e| (field, e.to_string()))
}

fn parse_event(map: &Map<String, Value>, line_no: u64) -> FieldResult<Parsed> {
    let event_type = map
        .get("event_type")
        .and_then(Value::as_str)
        .ok_or(("event_type", "missing or not a string".to_string()))?;
    let ts_ns = time_field(map, "timestamp")?;
    let flow_id = map.get("flow_id").map(|v| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    let conn_kind = match event_type {
        "flow" => Some("flow"),
        "netflow" => Some("netflow"),
        _ => None,
    };
    if let Some(kind) = conn_kind {
        let mut conn = conn_from_flow(map, kind)?;
        conn.uid = flow_id;
        conn.record = line_no;
        return Ok(Parsed::Conn(Box::new(conn)));
    }
    Ok(Parsed::Event(Event {
        kind: event_type.to_string(),
        ts_ns: Some(ts_ns),
        uid: flow_id,
        community_id: map
            .get("community_id")
            .and_then(Value::as_str)
            .map(str::to_string),
        json: Value::Object(map.clone()).to_string(),
        record: line_no,
    }))
}

fn conn_from_flow(map: &Map<String, Value>, event_type: &'static str) -> FieldResult<Conn> {
    let addr = |field: &'static str| -> FieldResult<IpAddr> {
        let v = map
            .get(field)
            .and_then(Value::as_str)
            .ok_or((field, "missing or not a string".to_string()))?;
        v.parse().map_err(|e| (field, format!("{v:?}: {e}")))
    };
    // ICMP events carry no ports; Suricata then writes icmp_type/icmp_code.
    let port = |field: &'static str, icmp_alt: &'static str| -> FieldResult<u16> {
        match map.get(field).or_else(|| map.get(icmp_alt)) {
            None => Ok(0),
            Some(v) => v
                .as_u64()
                .and_then(|n| u16::try_from(n).ok())
                .ok_or((field, format!("not a port number: {v}"))),
        }
    };
    let proto_v = map.get("proto").ok_or(("proto", "missing".to_string()))?;
    let (proto, ip_proto) = match proto_v {
        Value::Number(n) => {
            let n = n
                .as_u64()
                .and_then(|n| u8::try_from(n).ok())
                .ok_or(("proto", format!("not a protocol number: {n}")))?;
            (Proto::from_ip_proto(n), Some(n))
        }
        Value::String(s) => {
            let p = Proto::parse(s).ok_or(("proto", format!("unknown protocol {s:?}")))?;
            let n = match s.to_ascii_lowercase().as_str() {
                "tcp" => Some(6),
                "udp" => Some(17),
                "icmp" => Some(1),
                "ipv6-icmp" | "icmpv6" => Some(58),
                "sctp" => Some(132),
                _ => None,
            };
            (p, n)
        }
        other => return Err(("proto", format!("unexpected value {other}"))),
    };
    let body = map
        .get(event_type)
        .and_then(Value::as_object)
        .ok_or((event_type, "missing object".to_string()))?;
    let start_ns = time_field(body, "start")?;
    let end_ns = time_field(body, "end")?;
    let count = |key: &'static str| -> FieldResult<Option<u64>> {
        match body.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => match v.as_u64() {
                Some(n) if n > relaytrace_model::MAX_COUNT => Err((key, too_large(n))),
                Some(n) => Ok(Some(n)),
                None => Err((key, format!("not a count: {v}"))),
            },
        }
    };
    let mut conn = Conn::new(
        proto,
        addr("src_ip")?,
        port("src_port", "icmp_type")?,
        addr("dest_ip")?,
        port("dest_port", "icmp_code")?,
        start_ns,
    );
    conn.ip_proto = ip_proto;
    conn.duration_ns = Some(end_ns.saturating_sub(start_ns));
    conn.service = map
        .get("app_proto")
        .and_then(Value::as_str)
        .filter(|s| *s != "failed")
        .map(str::to_string);
    if event_type == "flow" {
        // Suricata counts whole IP packets (headers included), like Zeek's *_ip_bytes.
        conn.orig_pkts = count("pkts_toserver")?;
        conn.resp_pkts = count("pkts_toclient")?;
        conn.orig_ip_bytes = count("bytes_toserver")?;
        conn.resp_ip_bytes = count("bytes_toclient")?;
        conn.conn_state = body
            .get("state")
            .and_then(Value::as_str)
            .map(|s| format!("eve:{s}"));
    } else {
        conn.orig_pkts = count("pkts")?;
        conn.orig_ip_bytes = count("bytes")?;
    }
    Ok(conn)
}

/// The rejection reason for a count the store cannot keep exactly.
fn too_large(n: u64) -> String {
    format!(
        "{n} is larger than {}, the largest count the store keeps (a 64-bit signed column)",
        relaytrace_model::MAX_COUNT
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::VecSink;

    #[test]
    fn flow_becomes_conn_and_alert_event() {
        let data = r#"{"timestamp":"2017-01-30T16:12:29.951412+0100","flow_id":1570941597606753,"event_type":"flow","src_ip":"172.17.0.2","src_port":46883,"dest_ip":"172.21.3.254","dest_port":53,"proto":"UDP","app_proto":"dns","flow":{"pkts_toserver":2,"pkts_toclient":2,"bytes_toserver":176,"bytes_toclient":802,"start":"2017-01-30T16:12:35.942945+0100","end":"2017-01-30T16:12:36.006904+0100","age":1,"state":"established","reason":"shutdown"}}
{"timestamp":"2017-01-30T16:12:29.951412+0100","flow_id":7,"event_type":"alert","community_id":"1:abc"}
{"timestamp":"garbage","event_type":"dns"}
{"event_type":"dns"
"#;
        let mut sink = VecSink::default();
        read(&mut data.as_bytes(), &mut sink).unwrap();
        assert_eq!(sink.conns.len(), 1);
        let c = &sink.conns[0];
        assert_eq!(c.uid.as_deref(), Some("1570941597606753"));
        assert_eq!(c.proto, Proto::Udp);
        assert_eq!(c.orig_p, 46883);
        assert_eq!(c.duration_ns, Some(63_959_000));
        assert_eq!((c.orig_ip_bytes, c.resp_ip_bytes), (Some(176), Some(802)));
        assert_eq!(c.service.as_deref(), Some("dns"));
        assert_eq!(sink.events.len(), 1);
        assert_eq!(sink.events[0].uid.as_deref(), Some("7"));
        assert_eq!(sink.events[0].community_id.as_deref(), Some("1:abc"));
        assert_eq!(sink.rejections.len(), 2);
        assert_eq!(sink.rejections[0].field.as_deref(), Some("timestamp"));
        assert_eq!(sink.rejections[1].location, Location::Line(4));
    }
}

//! The text readers (Zeek TSV/JSON, Suricata EVE) against the real files in
//! ../shared/corpus (see its PROVENANCE.md). Counts below were taken from the files
//! with grep and are cross-checked between formats, not copied from our output.

use std::path::PathBuf;

use relaytrace_ingest::{detect_format, input::open_input, read, Format, ReadOptions, VecSink};
use relaytrace_model::Location;

fn corpus(rel: &str) -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/corpus"
    ))
    .join(rel)
}

fn ingest(rel: &str) -> (Format, VecSink) {
    let path = corpus(rel);
    let mut input = open_input(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let format = detect_format(&mut input).unwrap();
    let mut sink = VecSink::default();
    let summary = read(format, &mut input, &mut ReadOptions::default(), &mut sink).unwrap();
    assert_eq!(
        summary.read,
        (sink.conns.len() + sink.events.len()) as u64,
        "summary counts what the sink got"
    );
    assert_eq!(summary.rejected, sink.rejections.len() as u64);
    (format, sink)
}

#[test]
fn eve_flows_become_conns_and_the_rest_events() {
    let (format, sink) = ingest("suricata-eve/surevego/eve.json");
    assert_eq!(format, Format::SuricataEve);
    // PROVENANCE: 266 events, of which 13 flow.
    assert_eq!(sink.conns.len(), 13);
    assert_eq!(sink.events.len(), 253);
    assert!(sink.rejections.is_empty(), "{:?}", sink.rejections);
    let alerts = sink.events.iter().filter(|e| e.kind == "alert").count();
    assert_eq!(alerts, 68);
    // Every alert is linked to a flow id.
    assert!(sink
        .events
        .iter()
        .filter(|e| e.kind == "alert")
        .all(|e| e.uid.is_some()));
}

#[test]
fn broken_eve_reports_each_bad_line_and_keeps_the_rest() {
    let (_, good) = ingest("suricata-eve/surevego/eve.json");
    let (_, broken) = ingest("suricata-eve/surevego/eve_broken.json");
    // `diff eve.json eve_broken.json` shows the corrupted lines: garbage at 1, 104,
    // 160 and 270; a bad timestamp at 2; broken quoting at 4 and 5. The 4 blank lines
    // the corruption added hold no record and are not rejections.
    let lines: Vec<Location> = broken.rejections.iter().map(|r| r.location).collect();
    let want: Vec<Location> = [1, 2, 4, 5, 104, 160, 270].map(Location::Line).to_vec();
    assert_eq!(lines, want, "{:#?}", broken.rejections);
    assert_eq!(broken.rejections[1].field.as_deref(), Some("timestamp"));
    // 273 lines - 4 blank - 7 rejected = 262 records read; the original has 266.
    assert_eq!(broken.conns.len() + broken.events.len(), 262);
    assert_eq!(good.conns.len() + good.events.len(), 266);
}

#[test]
fn zeek_tsv_and_json_of_the_same_log_agree() {
    let (tf, tsv) = ingest("zeek-json/zed-sample-data-wrccdc2018/ssh.tsv.log");
    let (jf, json) = ingest("zeek-json/zed-sample-data-wrccdc2018/ssh.json");
    assert_eq!((tf, jf), (Format::ZeekTsv, Format::ZeekJson));
    assert_eq!(tsv.events.len(), 22);
    assert_eq!(json.events.len(), 22);
    for (a, b) in tsv.events.iter().zip(&json.events) {
        assert_eq!(a.kind, "ssh");
        assert_eq!(a.kind, b.kind);
        assert_eq!(a.uid, b.uid);
        // TSV has decimal seconds, JSON ISO 8601 with microseconds: same instant.
        assert_eq!(a.ts_ns, b.ts_ns);
    }
}

#[test]
fn zeek_ntp_tsv_and_json_agree() {
    let (_, tsv) = ingest("zeek-json/zed-sample-data-wrccdc2018/ntp.tsv.log");
    let (_, json) = ingest("zeek-json/zed-sample-data-wrccdc2018/ntp.json");
    assert_eq!(tsv.events.len(), 904);
    assert_eq!(json.events.len(), 904);
    let ts = |s: &VecSink| s.events.iter().map(|e| e.ts_ns).collect::<Vec<_>>();
    assert_eq!(ts(&tsv), ts(&json));
}

#[test]
fn every_zeek_json_log_reads_without_rejection() {
    let dir = corpus("zeek-json/zed-sample-data-wrccdc2018");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let rel = format!(
            "zeek-json/zed-sample-data-wrccdc2018/{}",
            path.file_name().unwrap().to_string_lossy()
        );
        let (_, sink) = ingest(&rel);
        assert!(sink.rejections.is_empty(), "{rel}: {:?}", sink.rejections);
        assert!(!sink.events.is_empty(), "{rel}");
    }
}

#[test]
fn zeek_btest_conn_logs_read_with_masked_ts_reported() {
    // The btest baselines mask `ts` (XXXXXXXXXX.XXXXXX) except core.ppp: masked
    // records must be rejected naming the field, real ones read.
    let (format, ppp) = ingest("zeek-pcap-pairs/core.ppp/conn.log");
    assert_eq!(format, Format::ZeekTsv);
    assert_eq!(ppp.conns.len(), 3);
    let (_, masked) = ingest("zeek-pcap-pairs/opt.basic/conn.log");
    assert_eq!(masked.conns.len(), 0);
    assert_eq!(masked.rejections.len(), 34);
    assert!(masked
        .rejections
        .iter()
        .all(|r| r.field.as_deref() == Some("ts")));
}

#[test]
fn masked_json_http_log_line_is_rejected_with_its_line() {
    let (_, sink) = ingest("zeek-json/zeek-btest-http-uri-sha256/http.log");
    assert_eq!(sink.rejections.len(), 1);
    assert_eq!(sink.rejections[0].location, Location::Line(2));
}

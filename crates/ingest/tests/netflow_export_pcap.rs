//! Captures of NetFlow/IPFIX export traffic (see tests/fixtures/README.md): softflowd
//! exported the flows of `export-source.pcap`; decoding its export datagrams must give
//! back exactly the traffic our own pcap reader sees in the source capture.

use std::collections::BTreeSet;
use std::path::PathBuf;

use relaytrace_ingest::{detect_format, input::open_input, read, Format, ReadOptions, VecSink};
use relaytrace_model::Conn;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures")).join(name)
}

fn ingest(name: &str) -> (Format, VecSink) {
    let mut input = open_input(&fixture(name)).unwrap();
    let format = detect_format(&mut input).unwrap();
    let mut sink = VecSink::default();
    read(format, &mut input, &mut ReadOptions::default(), &mut sink).unwrap();
    (format, sink)
}

type Tuple = (String, String, u16, String, u16);

fn tuple(c: &Conn) -> Tuple {
    (
        c.proto.to_string(),
        c.orig_h.to_string(),
        c.orig_p,
        c.resp_h.to_string(),
        c.resp_p,
    )
}

#[test]
fn export_captures_give_back_the_source_traffic() {
    let (format, source) = ingest("export-source.pcap");
    assert_eq!(
        format,
        Format::Pcap,
        "a normal capture is not taken for export traffic"
    );
    assert!(
        source.conns.len() >= 5,
        "fixture too small: {}",
        source.conns.len()
    );
    let mut directions: BTreeSet<Tuple> = BTreeSet::new();
    let (mut packets, mut ip_bytes) = (0u64, 0u64);
    for c in &source.conns {
        directions.insert(tuple(c));
        let mut back = tuple(c);
        std::mem::swap(&mut back.1, &mut back.3);
        std::mem::swap(&mut back.2, &mut back.4);
        directions.insert(back);
        packets += c.orig_pkts.unwrap() + c.resp_pkts.unwrap();
        ip_bytes += c.orig_ip_bytes.unwrap() + c.resp_ip_bytes.unwrap();
    }
    for version in [5, 9, 10] {
        let name = format!("export-v{version}.pcap");
        let (format, export) = ingest(&name);
        assert_eq!(format, Format::NetflowPcap, "{name}");
        assert!(
            export.rejections.is_empty(),
            "{name}: {:?}",
            export.rejections
        );
        // softflowd exports one record per direction.
        let got: BTreeSet<Tuple> = export.conns.iter().map(tuple).collect();
        assert_eq!(got, directions, "{name}");
        let pk: u64 = export.conns.iter().map(|c| c.orig_pkts.unwrap()).sum();
        let by: u64 = export.conns.iter().map(|c| c.orig_ip_bytes.unwrap()).sum();
        assert_eq!(
            (pk, by),
            (packets, ip_bytes),
            "{name}: packets and IP bytes"
        );
        let stats = export
            .events
            .iter()
            .find(|e| e.kind == "netflow-export-stats")
            .expect("stats event");
        assert!(stats.json.contains("\"other_packets\":0"), "{}", stats.json);
    }
}

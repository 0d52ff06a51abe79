//! MRT RIB dumps from ../shared/corpus/mrt, with values decoded by hand from the bytes
//! (offsets in the comments), and a snapshot merging MRT with registry data.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use relaytrace_enrich::mrt::load_rib;
use relaytrace_enrich::{Asn, Provenance, Snapshot, SnapshotBuilder, SourceKind};

fn corpus(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpus/mrt")
        .join(name);
    assert!(
        p.is_file(),
        "{} missing: the tests read ../shared/corpus",
        p.display()
    );
    p
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// (first, last, origin, upstreams) of each IPv4 or IPv6 route.
fn routes(path: &Path, v6: bool) -> Vec<(u128, u128, u32, Vec<u32>)> {
    let rib = load_rib(path).unwrap();
    assert!(rib.routes.problems.is_empty(), "{:?}", rib.routes.problems);
    let rows = if v6 { rib.routes.v6 } else { rib.routes.v4 };
    rows.into_iter()
        .map(|r| {
            (
                r.first,
                r.last,
                r.value.origin.0,
                r.value.upstreams.iter().map(|a| a.0).collect(),
            )
        })
        .collect()
}

#[test]
fn quagga_table_dump_v2_origin_and_upstream() {
    // Record at byte 0x3a: type 13 (TABLE_DUMP_V2) subtype 2 (RIB_IPV4_UNICAST),
    // prefix length 0x18, prefix ac 11 00 = 172.17.0.0/24, one entry whose AS_PATH
    // (flags 0x50, extended length 0x1a) is AS_SEQUENCE of 6: fa56ea00 x3
    // (4200000000, prepended) then 0000fc00 x3 (64512, prepended).
    // Origin 64512; its upstream, prepending removed, 4200000000.
    let p = corpus("mrtparse-samples/quagga_rib.mrt");
    let up = vec![4_200_000_000];
    assert_eq!(
        routes(&p, false),
        vec![
            (0xac11_0000, 0xac11_00ff, 64512, up.clone()),
            (0xac11_0100, 0xac11_01ff, 64512, up.clone()),
            (0xac11_0200, 0xac11_02ff, 64512, up.clone()),
        ]
    );
    // RIB_IPV6_UNICAST records (subtype 4), e.g. at byte 0x166: prefix length 0x40,
    // prefix fd01 0001 0000 0000 = fd01:1::/64; then fd01:1:1::/64 and fd01:1:2::/64.
    let v6 = routes(&p, true);
    let fd01: u128 = 0xfd01_0001 << 96;
    assert_eq!(v6.len(), 3);
    assert_eq!(
        (v6[0].0, v6[0].2, v6[0].3.clone()),
        (fd01, 64512, up.clone())
    );
    assert_eq!(v6[1].0, fd01 | (1 << 80));
    assert_eq!(v6[0].1, fd01 | ((1u128 << 64) - 1), "a /64");
}

#[test]
fn openbgpd_table_dump_v1() {
    // First record: type 12 (TABLE_DUMP) subtype 1 (AFI_IPv4), prefix c0a80000 with
    // length 0x10 = 192.168.0.0/16, peer AS fde8 (65000), AS_PATH 02 01 fdf7:
    // AS_SEQUENCE [65015] with 2-byte ASNs. Origin 65015, no upstream (the peer's
    // neighbour is the origin). The second record, 192.168.0.10/32, has an empty
    // AS_PATH (40 02 00): a locally originated route, counted as no origin.
    let p = corpus("mrtparse-samples/openbgpd_rib_table.mrt");
    let rib = load_rib(&p).unwrap();
    assert_eq!(rib.stats.records, 31);
    assert_eq!(rib.stats.no_origin, 29);
    assert_eq!(
        routes(&p, false),
        vec![
            (0xc0a8_0000, 0xc0a8_ffff, 65015, vec![]),
            (0xc0a8_0100, 0xc0a8_01ff, 65015, vec![]),
        ]
    );
}

#[test]
fn bird_add_path_ribs_are_read() {
    // RFC 8050 RIB_IPV4_UNICAST_ADDPATH (subtype 8) and IPv6 (subtype 10) records,
    // each entry with a 4-byte path identifier before its attributes.
    let p = corpus("mrtparse-samples/bird-mrtdump_rib.mrt");
    let rib = load_rib(&p).unwrap();
    assert_eq!(rib.stats.records, 14);
    assert_eq!(rib.stats.skipped_records, 2, "the two PEER_INDEX_TABLEs");
    let r = routes(&p, false);
    assert_eq!(r.len(), 3);
    assert!(r.iter().all(|x| x.2 == 64512 && x.3 == vec![4_200_000_000]));
    assert_eq!(
        routes(&corpus("mrtparse-samples/bird6-mrtdump_rib.mrt"), true).len(),
        3
    );
}

#[test]
fn every_corpus_file_reads_and_one_without_rib_records_is_refused() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/mrt");
    for sub in ["mrtparse-samples", "bgpkit-parser-ripe"] {
        for e in std::fs::read_dir(dir.join(sub)).unwrap() {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !(name.ends_with(".mrt") || name.ends_with(".gz")) {
                continue;
            }
            if name.contains("updates") || name.contains("_bgp") {
                // BGP4MP and legacy BGP update streams: no RIB record at all, so no
                // snapshot (it would answer nothing and still become current).
                let e = load_rib(&path).expect_err(&name).to_string();
                assert!(e.contains("no routing table entry in its"), "{name}: {e}");
                assert!(e.contains("give a RIB dump"), "{name}: {e}");
            } else {
                let rib = load_rib(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert!(rib.stats.entries > 0, "{name}");
            }
        }
    }
}

#[test]
fn mrt_origin_takes_precedence_over_registry_data() {
    let mut b = SnapshotBuilder::new();
    b.add(
        SourceKind::Mrt,
        &corpus("mrtparse-samples/quagga_rib.mrt"),
        Provenance::default(),
    )
    .unwrap();
    b.add(
        SourceKind::AsnCsv,
        &fixture("asn.csv"),
        Provenance::default(),
    )
    .unwrap();
    b.add(
        SourceKind::CountryCsv,
        &fixture("country.csv"),
        Provenance::default(),
    )
    .unwrap();
    let snap = Snapshot::from_bytes(&b.build().bytes).unwrap();
    let look = |a: &str| snap.lookup(a.parse::<IpAddr>().unwrap());

    // The registry says 172.16.0.0/12 is AS65099; the RIB says 172.17.1.0/24 is
    // originated by AS64512 behind AS4200000000. Routing wins, and the organisation
    // is the registry's name for AS64512 (from its own row, 172.18.0.0/16).
    let h = look("172.17.1.9");
    assert_eq!(h.record.asn, Some(Asn(64512)));
    assert!(h.record.asn_from_routing);
    assert_eq!(h.record.upstreams, vec![Asn(4_200_000_000)]);
    assert_eq!(h.record.org, Some("Org Of 64512"));
    assert_eq!(
        h.record.country.map(|c| c.to_string()).as_deref(),
        Some("CN")
    );
    // The three routed /24s share one record, so they form one segment,
    // 172.17.0.0-172.17.2.255; the largest CIDR block in it holding .1.9 is a /23.
    assert_eq!(h.prefix, ("172.17.0.0".parse().unwrap(), 23));
    assert_eq!(h.last, "172.17.2.255".parse::<IpAddr>().unwrap());
    // Outside the routed prefixes the registry answers.
    let h = look("172.17.3.1");
    assert_eq!(h.record.asn, Some(Asn(65099)));
    assert!(!h.record.asn_from_routing);
    assert_eq!(h.record.org, Some("Registry Org"));
    // fd01:1::/48 from the RIB's IPv6 records; no registry data there.
    let h = look("fd01:1::1");
    assert_eq!(h.record.asn, Some(Asn(64512)));
    assert_eq!(h.record.org, Some("Org Of 64512"));
}

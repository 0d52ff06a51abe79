//! NetFlow v5/v9/IPFIX reader against the real export captures of
//! logstash-codec-netflow (see shared/corpus/PROVENANCE.md, netflow section).
//!
//! Template files are fed before their data files through one shared
//! `TemplateCache`, as the logstash spec does. Expected values were decoded by hand
//! from the bytes (offsets given in comments). Times are computed the RFC 3954 way
//! (header unix_secs minus header sysUptime minus FIRST_SWITCHED); the logstash
//! golden times differ from this by up to two seconds, so they are not used.

use std::net::IpAddr;

use relaytrace_ingest::netflow::{read_payloads, TemplateCache};
use relaytrace_ingest::VecSink;
use relaytrace_model::{Location, Proto};

/// Path of a corpus file.
macro_rules! corpus {
    ($name:literal) => {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/corpus/netflow/logstash-codec-netflow/",
            $name
        )
    };
}

/// Reads `files` in order into one sink with one template cache.
fn read(cache: &mut TemplateCache, files: &[&str]) -> VecSink {
    let mut sink = VecSink::default();
    for path in files {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        read_payloads(&mut bytes.as_slice(), cache, &mut sink)
            .unwrap_or_else(|e| panic!("{path}: {e}"));
    }
    sink
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap()
}

#[test]
fn netflow5_softflowd_all_datagrams() {
    let sink = read(&mut TemplateCache::default(), &[corpus!("netflow5.dat")]);
    // 12 datagrams with 2+4+4+4+2*8 records.
    assert_eq!(sink.conns.len(), 30);
    assert!(sink.rejections.is_empty(), "{:?}", sink.rejections);
    let c = &sink.conns[0];
    // Record 1 at offset 24: 10.0.2.2:54435 -> 10.0.2.15:22, TCP, 5 pkts, 230 bytes.
    assert_eq!((c.orig_h, c.orig_p), (ip("10.0.2.2"), 54435));
    assert_eq!((c.resp_h, c.resp_p), (ip("10.0.2.15"), 22));
    assert_eq!((c.proto, c.ip_proto), (Proto::Tcp, Some(6)));
    assert_eq!((c.orig_pkts, c.orig_ip_bytes), (Some(5), Some(230)));
    assert_eq!(
        (c.orig_bytes, c.resp_pkts, c.resp_ip_bytes),
        (None, None, None)
    );
    // Header: sysUptime 0x0d35 = 3381 ms, unix 0x55451990.0x10b57740 =
    // 1430591888.280328 s; First = 0xffffffff (uptime -1 ms, wrapped), so the flow
    // began 3382 ms before export; Last = 0x0a11 = 2577 ms, 2578 ms after First.
    assert_eq!(c.start_ns, 1_430_591_888_280_328_000 - 3_382_000_000);
    assert_eq!(c.duration_ns, Some(2_578_000_000));
    assert_eq!(c.record, 24);
    // Record 2 at offset 72: the reverse direction, 4 pkts, 304 bytes.
    let c = &sink.conns[1];
    assert_eq!((c.orig_h, c.orig_p, c.resp_p), (ip("10.0.2.15"), 22, 54435));
    assert_eq!(
        (c.orig_pkts, c.orig_ip_bytes, c.record),
        (Some(4), Some(304), 72)
    );
    // Second datagram starts at 24 + 2 * 48 = 120; its first record at 144.
    assert_eq!(sink.conns[2].record, 144);
}

#[test]
fn netflow5_juniper_first_record() {
    let sink = read(
        &mut TemplateCache::default(),
        &[corpus!("netflow5_test_juniper_mx80.dat")],
    );
    assert_eq!(sink.conns.len(), 29);
    assert!(sink.rejections.is_empty(), "{:?}", sink.rejections);
    let c = &sink.conns[0];
    // 10.0.0.1:443 -> 192.168.0.2:61608 (0xf0a8), TCP, 1 packet of 1500 bytes.
    assert_eq!((c.orig_h, c.orig_p), (ip("10.0.0.1"), 443));
    assert_eq!((c.resp_h, c.resp_p), (ip("192.168.0.2"), 61608));
    assert_eq!((c.orig_pkts, c.orig_ip_bytes), (Some(1), Some(1500)));
    // unix_secs 0x5790d3b4 = 1469109172, nsecs 0; uptime 0x0b5d12e8 - First
    // 0x0b5cd040 = 17064 ms; First = Last.
    assert_eq!(c.start_ns, 1_469_109_172_000_000_000 - 17_064_000_000);
    assert_eq!(c.duration_ns, Some(0));
}

#[test]
fn netflow5_invalid_counts_are_rejected_without_panic() {
    for (path, count) in [
        (corpus!("netflow5_test_invalid01.dat"), 55582),
        (corpus!("netflow5_test_invalid02.dat"), 163),
    ] {
        let sink = read(&mut TemplateCache::default(), &[path]);
        assert!(sink.conns.is_empty(), "{path}");
        assert_eq!(sink.rejections.len(), 1, "{path}: {:?}", sink.rejections);
        let r = &sink.rejections[0];
        assert_eq!(r.location, Location::Offset(0), "{path}");
        assert_eq!(r.field.as_deref(), Some("count"));
        assert!(r.reason.contains(&format!("count {count}")), "{}", r.reason);
    }
}

#[test]
fn netflow9_softflowd_templates_and_data_in_one_file() {
    let mut cache = TemplateCache::default();
    let sink = read(&mut cache, &[corpus!("netflow9_test_valid01.dat")]);
    assert_eq!(cache.len(), 2, "templates 1024 and 2048");
    // FlowSet 1024: 240 bytes = 6 records of 40; FlowSet 2048: 1 IPv6 record.
    assert_eq!(sink.conns.len(), 7);
    assert!(sink.rejections.is_empty(), "{:?}", sink.rejections);
    let c = &sink.conns[0];
    // Offset 152: 172.16.32.100:123 -> 172.16.32.248:123 UDP, 76 bytes, 1 packet.
    assert_eq!(c.record, 152);
    assert_eq!((c.orig_h, c.orig_p), (ip("172.16.32.100"), 123));
    assert_eq!((c.resp_h, c.resp_p), (ip("172.16.32.248"), 123));
    assert_eq!(
        (c.proto, c.orig_ip_bytes, c.orig_pkts),
        (Proto::Udp, Some(76), Some(1))
    );
    // unix_secs 0x5616be3e = 1444331070, uptime 0xb014 = 45076 ms,
    // FIRST 0x04c0 = 1216 ms, LAST 0x04c1 = 1217 ms.
    assert_eq!(
        c.start_ns,
        1_444_331_070_000_000_000 - (45_076 - 1_216) * 1_000_000
    );
    assert_eq!(c.duration_ns, Some(1_000_000));
    assert!(sink.conns[6].orig_h.is_ipv6());
}

#[test]
fn netflow9_template_file_then_data_file() {
    let mut cache = TemplateCache::default();
    let sink = read(
        &mut cache,
        &[
            corpus!("netflow9_test_cisco_asa_1_tpl.dat"),
            corpus!("netflow9_test_cisco_asa_1_data.dat"),
        ],
    );
    assert_eq!(cache.len(), 13);
    assert!(sink.rejections.is_empty(), "{:?}", sink.rejections);
    // Data FlowSet 265 (length 0x598 = 1432) holds 14 records of 102 bytes.
    assert_eq!(sink.conns.len(), 14);
    let c = &sink.conns[0];
    // Offset 24: conn 8500, 192.168.14.1 -> 2.2.2.11 ICMP echo reply (type 0,
    // code 0 from IEs 176/177), 56 bytes (IE 85), flowStartMilliseconds
    // 0x1504bffcff1 = 1444384067569.
    assert_eq!(c.record, 24);
    assert_eq!((c.orig_h, c.resp_h), (ip("192.168.14.1"), ip("2.2.2.11")));
    assert_eq!((c.proto, c.orig_p, c.resp_p), (Proto::Icmp, 0, 0));
    assert_eq!(c.orig_ip_bytes, Some(56));
    assert_eq!(c.start_ns, 1_444_384_067_569_000_000);
    assert_eq!(c.duration_ns, None, "ASA sends no end time");
    // Record 2 (offset 126): 192.168.23.22 -> 164.164.37.11, ICMP echo request.
    let c = &sink.conns[1];
    assert_eq!(
        (c.orig_h, c.orig_p, c.record),
        (ip("192.168.23.22"), 8, 126)
    );
}

#[test]
fn netflow9_data_before_template_is_rejected() {
    let sink = read(
        &mut TemplateCache::default(),
        &[corpus!("netflow9_test_cisco_asa_1_data.dat")],
    );
    assert!(sink.conns.is_empty());
    assert_eq!(sink.rejections.len(), 1, "{:?}", sink.rejections);
    let r = &sink.rejections[0];
    assert_eq!(
        r.location,
        Location::Offset(20),
        "FlowSet right after the header"
    );
    assert!(r.reason.contains("template 265"), "{}", r.reason);
    assert!(r.reason.contains("source id 0"), "{}", r.reason);
}

#[test]
fn netflow9_options_and_multiple_exporters() {
    let mut cache = TemplateCache::default();
    let sink = read(
        &mut cache,
        &[
            corpus!("netflow9_test_nprobe_tpl.dat"),
            corpus!("netflow9_test_softflowd_tpl_data.dat"),
            corpus!("netflow9_test_nprobe_data.dat"),
        ],
    );
    assert!(sink.rejections.is_empty(), "{:?}", sink.rejections);
    // nprobe (source id 147) templates 257, 258, options 259; softflowd (source
    // id 0) 1024, 2048: same IDs would not collide either.
    assert_eq!(cache.len(), 5);
    // Options record at 0xcc: scope System 0, IE 42 = 1, IE 41 = 0.
    assert_eq!(sink.events.len(), 1);
    let e = &sink.events[0];
    assert_eq!((e.kind.as_str(), e.record), ("netflow-options", 0xcc));
    let v = json(&e.json);
    assert_eq!(v["domain"], 147);
    assert_eq!(v["template_id"], 259);
    assert_eq!(v["fields"]["scopeSystem"], 0);
    assert_eq!(v["fields"]["exportedFlowRecordTotalCount"], 1);
    assert_eq!(v["fields"]["exportedMessageTotalCount"], 0);
    // softflowd's 7 flows, then nprobe's one: 172.16.32.201:22 -> 172.16.32.1:65058,
    // 200 bytes, 2 packets. Its 3 padding bytes are not zero (0d 00 01) yet are
    // alignment padding, not a rejection.
    assert_eq!(sink.conns.len(), 8);
    let c = &sink.conns[7];
    assert_eq!((c.orig_h, c.orig_p), (ip("172.16.32.201"), 22));
    assert_eq!((c.resp_h, c.resp_p), (ip("172.16.32.1"), 65058));
    assert_eq!((c.orig_ip_bytes, c.orig_pkts), (Some(200), Some(2)));
    // unix_secs 0x5616beb5 = 1444331189, uptime 0x84c6 = 33990, FIRST 0, LAST 5.
    assert_eq!(c.start_ns, 1_444_331_189_000_000_000 - 33_990_000_000);
    assert_eq!(c.duration_ns, Some(5_000_000));
}

#[test]
fn netflow9_zero_padding_is_not_an_error() {
    let mut cache = TemplateCache::default();
    let aci = read(
        &mut cache,
        &[corpus!("netflow9_test_cisco_aci_tpl256-258.dat")],
    );
    assert!(aci.rejections.is_empty(), "{:?}", aci.rejections);
    assert_eq!(cache.len(), 3);

    let mut cache = TemplateCache::default();
    let sink = read(
        &mut cache,
        &[
            corpus!("netflow9_test_paloalto_81_tpl256-263.dat"),
            corpus!("netflow9_test_paloalto_81_data257_1flowset_in_large_zerofilled_packet.dat"),
        ],
    );
    assert!(sink.rejections.is_empty(), "{:?}", sink.rejections);
    assert_eq!(
        sink.conns.len(),
        1,
        "1220 zero bytes follow the one FlowSet"
    );
    let c = &sink.conns[0];
    // Offset 24: 134.220.2.6:88 -> 134.220.1.156:50234 (0xc43a), TCP, 363 bytes in
    // 3 packets; uptime 0x3f531200 - FIRST 0x3f52d768 = 15000 ms before
    // unix_secs 0x5b17df91 = 1528291217.
    assert_eq!((c.orig_h, c.orig_p), (ip("134.220.2.6"), 88));
    assert_eq!((c.resp_h, c.resp_p), (ip("134.220.1.156"), 50234));
    assert_eq!((c.orig_ip_bytes, c.orig_pkts), (Some(363), Some(3)));
    assert_eq!(c.start_ns, 1_528_291_202_000_000_000);
}

/// logstash calls this file invalid because its header count (2) does not match
/// its 3 data records; v9 packets are framed by their FlowSets, not the count, so
/// every record decodes.
#[test]
fn netflow9_invalid01_count_mismatch_still_decodes() {
    let sink = read(
        &mut TemplateCache::default(),
        &[corpus!("netflow9_test_invalid01.dat")],
    );
    assert!(sink.rejections.is_empty(), "{:?}", sink.rejections);
    // Options data FlowSet 256 at 0xa2, record at 0xa6: scope Interface 0,
    // SAMPLING_INTERVAL 0x64 = 100, SAMPLING_ALGORITHM 1.
    assert_eq!(sink.events.len(), 1);
    let e = &sink.events[0];
    assert_eq!(e.record, 0xa6);
    let v = json(&e.json);
    assert_eq!(v["fields"]["scopeInterface"], 0);
    assert_eq!(v["fields"]["samplingInterval"], 100);
    assert_eq!(v["fields"]["samplingAlgorithm"], 1);
    // Data FlowSet 2048 at 0xb2, record at 0xb6 = 182: IPv6 NTP, 96 bytes, 1 packet.
    assert_eq!(sink.conns.len(), 2);
    let c = &sink.conns[0];
    assert_eq!(c.record, 182);
    assert_eq!((c.orig_h, c.orig_p), (ip("2001:44b8:1118:7200::10"), 123));
    assert_eq!(c.resp_h, ip("2001:44b8:4030:cd91:8075:bae:d39d:2621"));
    assert_eq!((c.orig_ip_bytes, c.orig_pkts), (Some(96), Some(1)));
}

#[test]
fn ipfix_softflowd_options_give_system_init_time() {
    let mut cache = TemplateCache::default();
    let sink = read(&mut cache, &[corpus!("ipfix.dat")]);
    assert!(sink.rejections.is_empty(), "{:?}", sink.rejections);
    // Options template set at 0xa0 is 30 bytes long, so the options data set is at
    // 0xbe and its record at 0xc2: meteringProcessId 2679, systemInitTimeMilliseconds
    // 0x14d4d00e3c2 = 1431516013506.
    assert_eq!(sink.events.len(), 1);
    let e = &sink.events[0];
    assert_eq!((e.kind.as_str(), e.record), ("netflow-options", 0xc2));
    let v = json(&e.json);
    assert_eq!(v["fields"]["meteringProcessId"], 2679);
    assert_eq!(
        v["fields"]["systemInitTimeMilliseconds"],
        1_431_516_013_506u64
    );
    // Data set 1024 at 0xbe + 24 = 0xd6, record at 0xda: 192.168.253.1:60560 -> 192.168.253.128:22 TCP,
    // 260 bytes, 5 packets, flowStartSysUpTime 0, flowEndSysUpTime 0x31b6 = 12726.
    let c = &sink.conns[0];
    assert_eq!(c.record, 0xda);
    assert_eq!((c.orig_h, c.orig_p), (ip("192.168.253.1"), 60560));
    assert_eq!((c.resp_h, c.resp_p), (ip("192.168.253.128"), 22));
    assert_eq!(
        (c.proto, c.orig_ip_bytes, c.orig_pkts),
        (Proto::Tcp, Some(260), Some(5))
    );
    assert_eq!(c.start_ns, 1_431_516_013_506_000_000);
    assert_eq!(c.duration_ns, Some(12_726_000_000));
    // 3 messages: 6 records of 44 bytes, then 1, then 5 (0xf0 - 16 - 4 = 220 bytes).
    assert_eq!(sink.conns.len(), 12);
}

#[test]
fn ipfix_enterprise_and_variable_length_templates() {
    // A misread enterprise bit or variable-length prefix shifts every later
    // field, leaving bytes over at the end of the set: a rejection.
    let pairs: [(&str, &str); 4] = [
        (
            corpus!("ipfix_test_yaf_tpl45841.dat"),
            corpus!("ipfix_test_yaf_data45841.dat"),
        ),
        (
            corpus!("ipfix_test_procera_tpl52935.dat"),
            corpus!("ipfix_test_procera_data52935.dat"),
        ),
        (
            corpus!("ipfix_test_barracuda_extended_uniflow_tpl256.dat"),
            corpus!("ipfix_test_barracuda_extended_uniflow_data256.dat"),
        ),
        (
            corpus!("ipfix_test_nokia_bras_tpl.dat"),
            corpus!("ipfix_test_nokia_bras_data256.dat"),
        ),
    ];
    for (tpl, data) in pairs {
        let mut cache = TemplateCache::default();
        let sink = read(&mut cache, &[tpl, data]);
        assert!(sink.rejections.is_empty(), "{data}: {:?}", sink.rejections);
        assert!(
            !sink.conns.is_empty() || !sink.events.is_empty(),
            "{data}: nothing decoded"
        );
    }
}

#[test]
fn ipfix_data_before_template_is_rejected() {
    let sink = read(
        &mut TemplateCache::default(),
        &[corpus!("ipfix_test_mikrotik_data258.dat")],
    );
    assert!(sink.conns.is_empty());
    assert_eq!(sink.rejections.len(), 1, "{:?}", sink.rejections);
    let r = &sink.rejections[0];
    assert_eq!(
        r.location,
        Location::Offset(16),
        "set right after the header"
    );
    assert!(r.reason.contains("template 258"), "{}", r.reason);
    assert!(r.reason.contains("observation domain"), "{}", r.reason);
}

/// The part of a corpus file name before `_tpl`/`_data`: files sharing it come
/// from one exporter (e.g. `..._fortios_521_tpl.dat`, `..._fortios_521_data256.dat`).
fn stem(name: &str) -> &str {
    let cut = ["_tpl", "_opttpl", "_data"]
        .iter()
        .filter_map(|m| name.find(m))
        .min()
        .unwrap_or(name.len());
    &name[..cut]
}

/// Every file of the corpus, each data file after the template files of the same
/// exporter (one cache per exporter: different vendors reuse template IDs under
/// the same source id 0): nothing panics and only the known-bad files and
/// data-before-template sets are rejected.
#[test]
fn whole_corpus_decodes() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/corpus/netflow/logstash-codec-netflow"
    );
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".dat"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 90, "corpus files per PROVENANCE.md");
    let mut conns = 0;
    let mut unexpected = Vec::new();
    for name in names.iter().filter(|n| !n.contains("tpl")) {
        let mut files: Vec<String> = names
            .iter()
            .filter(|t| t.contains("tpl") && stem(t) == stem(name))
            .map(|t| format!("{dir}/{t}"))
            .collect();
        files.push(format!("{dir}/{name}"));
        let files: Vec<&str> = files.iter().map(String::as_str).collect();
        let sink = read(&mut TemplateCache::default(), &files);
        conns += sink.conns.len();
        for r in &sink.rejections {
            let expected = name.contains("invalid")
                || r.reason.starts_with("no template")
                // nProbe DPI: FlowSet 256 holds one 83-byte record then 17 non-zero
                // bytes (offset 167) that are neither a record nor padding.
                || (name == "netflow9_test_nprobe_dpi.dat"
                    && r.location == Location::Offset(167)
                    && r.reason.starts_with("17 trailing bytes"));
            if !expected {
                unexpected.push(format!("{name}: {r}"));
            }
        }
    }
    assert!(unexpected.is_empty(), "{unexpected:#?}");
    assert!(conns > 300, "{conns}");
}

/// A large input streams through the bounded window: every datagram of a file
/// repeated past the window's compaction point is decoded, with absolute offsets.
#[test]
fn large_input_streams_with_absolute_offsets() {
    let one = std::fs::read(corpus!("netflow5.dat")).unwrap();
    let copies = 1500; // 1728 bytes each: about 2.6 MB, past the 1 MiB compaction
    let big: Vec<u8> = one
        .iter()
        .copied()
        .cycle()
        .take(one.len() * copies)
        .collect();
    let mut sink = VecSink::default();
    let mut input: &[u8] = &big;
    read_payloads(&mut input, &mut TemplateCache::default(), &mut sink).unwrap();
    let mut single = VecSink::default();
    let mut input: &[u8] = &one;
    read_payloads(&mut input, &mut TemplateCache::default(), &mut single).unwrap();
    assert!(sink.rejections.is_empty(), "{:?}", &sink.rejections[..1]);
    assert_eq!(sink.conns.len(), single.conns.len() * copies);
    let last = sink.conns.last().unwrap();
    let last_single = single.conns.last().unwrap();
    assert_eq!(
        last.record,
        last_single.record + (one.len() * (copies - 1)) as u64
    );
    assert_eq!(last.orig_h, last_single.orig_h);
}

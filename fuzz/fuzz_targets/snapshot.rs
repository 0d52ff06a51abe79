//! Fuzz target: loading an enrichment snapshot from hostile bytes must either fail
//! cleanly or give tables whose lookups never panic or read out of bounds.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(snap) = relaytrace_enrich::Snapshot::from_bytes(data) {
        let tables = snap.tables();
        for probe in [
            IpAddr::V4(Ipv4Addr::new(175, 45, 176, 1)),
            IpAddr::V4(Ipv4Addr::new(0, 0, 0, 0)),
            IpAddr::V4(Ipv4Addr::new(255, 255, 255, 255)),
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
            IpAddr::V6(Ipv6Addr::new(
                0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff,
            )),
        ] {
            let _ = tables.lookup(probe);
        }
    }
});

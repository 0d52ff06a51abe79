//! enrich-bench: lookups per second of our snapshot tables and of the `maxminddb`
//! crate on the same random addresses, IPv4 and IPv6 apart, single core; plus the
//! snapshot's size, build time and load time. Run by `bench/enrich`.
//!
//!   `enrich-bench DATA_DIR [COUNT]`
//!
//! DATA_DIR holds the unpacked default datasets (`.ci/fetch-data.sh` prints it).

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Instant;

use maxminddb::{PathElement, Reader};
use relaytrace_enrich::{Provenance, Snapshot, SnapshotBuilder, SourceKind};

/// splitmix64, as in the tests: deterministic random addresses.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn rate(n: usize, secs: f64) -> String {
    format!("{:>8.1} M/s", n as f64 / secs / 1e6)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().expect("usage: enrich-bench DATA_DIR [COUNT]"));
    let count: usize = args
        .next()
        .map_or(10_000_000, |s| s.parse().expect("COUNT"));
    let mmdb_path = dir.join("geo-whois-asn-country.mmdb");

    let t = Instant::now();
    let mut b = SnapshotBuilder::new();
    b.add(
        SourceKind::AsnCsv,
        &dir.join("asn-ipv4.csv"),
        Provenance::default(),
    )
    .unwrap();
    b.add(
        SourceKind::AsnCsv,
        &dir.join("asn-ipv6.csv"),
        Provenance::default(),
    )
    .unwrap();
    b.add(SourceKind::CountryMmdb, &mmdb_path, Provenance::default())
        .unwrap();
    let built = b.build();
    let build_secs = t.elapsed().as_secs_f64();
    let tmp = tempfile::tempdir().unwrap();
    let path = built.write_to_dir(tmp.path()).unwrap();

    let mut loads = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        black_box(Snapshot::open(&path).unwrap());
        loads.push(t.elapsed().as_secs_f64() * 1e3);
    }
    loads.sort_by(f64::total_cmp);
    let snap = Snapshot::open(&path).unwrap();
    let t = Instant::now();
    snap.verify_digest().unwrap();
    let verify_ms = t.elapsed().as_secs_f64() * 1e3;
    println!(
        "snapshot: {:.1} MiB on disk and in memory, {} IPv4 + {} IPv6 segments, {} records; \
         built in {build_secs:.1} s; load (one read + validation) median {:.1} ms (min {:.1}); \
         SHA-256 recheck {verify_ms:.1} ms",
        snap.size_bytes() as f64 / (1 << 20) as f64,
        snap.meta().v4_segments,
        snap.meta().v6_segments,
        snap.meta().records,
        loads[2],
        loads[0]
    );

    let mut rng = Rng(42);
    let v4: Vec<u32> = (0..count).map(|_| rng.next() as u32).collect();
    let v6: Vec<u128> = (0..count)
        .map(|_| {
            let a = (u128::from(rng.next()) << 64) | u128::from(rng.next());
            // Half uniform, half in 2000::/4 where nearly all allocated space is.
            if rng.next() & 1 == 0 {
                a
            } else {
                (a >> 4) | (0x2u128 << 124)
            }
        })
        .collect();
    let tables = snap.tables();
    let reader = Reader::open_readfile(&mmdb_path).unwrap();
    // maxminddb gets a tenth of the addresses: at < 1 M/s, 10 M would take minutes.
    let peer_n = (count / 10).max(1);
    println!("{count} random addresses per family for ours, {peer_n} for maxminddb; single thread");

    for (family, n_ours) in [("IPv4", count), ("IPv6", count)] {
        let t = Instant::now();
        let mut acc = 0u64;
        if family == "IPv4" {
            let mut out = vec![0u32; 4096];
            for chunk in v4.chunks(4096) {
                tables.v4_batch(chunk, &mut out[..chunk.len()]);
                acc += out[..chunk.len()]
                    .iter()
                    .map(|&x| u64::from(x))
                    .sum::<u64>();
            }
        } else {
            for &a in &v6 {
                acc += u64::from(tables.v6(a));
            }
        }
        let ours = t.elapsed().as_secs_f64();
        black_box(acc);

        let t = Instant::now();
        let mut found = 0u64;
        for i in 0..peer_n {
            let ip = if family == "IPv4" {
                IpAddr::V4(Ipv4Addr::from(v4[i]))
            } else {
                IpAddr::V6(Ipv6Addr::from(v6[i]))
            };
            let c: Option<String> = reader
                .lookup(ip)
                .unwrap()
                .decode_path(&[PathElement::Key("country_code")])
                .unwrap();
            found += u64::from(c.is_some());
        }
        let peer = t.elapsed().as_secs_f64();
        black_box(found);
        let (ro, rp) = (n_ours as f64 / ours, peer_n as f64 / peer);
        println!(
            "{family}: ours {} (record id per address)   maxminddb {} (lookup + country)   ratio {:.0}x",
            rate(n_ours, ours),
            rate(peer_n, peer),
            ro / rp
        );
    }
}

//! Writes large synthetic telemetry for `bench/ingest`: a Zeek conn.log, a pcap of
//! mixed traffic, and a file of NetFlow v9 export datagrams. Deterministic (fixed
//! xorshift seed), so every run measures the same bytes.
//!
//! Usage: `gen-inputs conn-log N OUT` | `gen-inputs pcap BYTES OUT` |
//! `gen-inputs netflow RECORDS OUT`

use std::fs::File;
use std::io::{BufWriter, Write};

/// Tiny deterministic PRNG (xorshift64): no dependency, same stream everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: gen-inputs conn-log|pcap|netflow COUNT OUT");
        std::process::exit(2);
    }
    let n: u64 = args[2].parse().expect("COUNT must be a number");
    let mut out = BufWriter::with_capacity(1 << 20, File::create(&args[3])?);
    match args[1].as_str() {
        "conn-log" => conn_log(n, &mut out)?,
        "pcap" => pcap(n, &mut out)?,
        "netflow" => {
            let mut lengths = BufWriter::new(File::create(format!("{}.lengths", args[3]))?);
            netflow(n, &mut out, &mut lengths)?;
            lengths.flush()?;
        }
        other => {
            eprintln!("unknown kind {other}");
            std::process::exit(2);
        }
    }
    out.flush()
}

/// A Zeek 9 style conn.log with `n` lines.
fn conn_log(n: u64, out: &mut impl Write) -> std::io::Result<()> {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    writeln!(out, "#separator \\x09")?;
    writeln!(out, "#set_separator\t,")?;
    writeln!(out, "#empty_field\t(empty)")?;
    writeln!(out, "#unset_field\t-")?;
    writeln!(out, "#path\tconn")?;
    writeln!(out, "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents\tip_proto")?;
    writeln!(out, "#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tbool\tbool\tcount\tstring\tcount\tcount\tcount\tcount\tset[string]\tcount")?;
    let states = ["SF", "S0", "REJ", "S1", "RSTO", "OTH"];
    let services = ["-", "ssh", "dns", "http", "ssl"];
    for i in 0..n {
        let ts = 1_700_000_000_000_000u64 + i * 1000 + rng.below(1000);
        let udp = rng.below(4) == 0;
        let ob = rng.below(100_000);
        let rb = rng.below(1_000_000);
        let op = rng.below(200) + 1;
        let rp = rng.below(400) + 1;
        writeln!(
            out,
            "{}.{:06}\tC{:016x}\t10.{}.{}.{}\t{}\t198.51.{}.{}\t{}\t{}\t{}\t{}.{:06}\t{}\t{}\t{}\tF\tF\t0\tShADadFf\t{}\t{}\t{}\t{}\t(empty)\t{}",
            ts / 1_000_000,
            ts % 1_000_000,
            rng.next(),
            rng.below(256),
            rng.below(256),
            rng.below(256),
            1024 + rng.below(60000),
            rng.below(256),
            rng.below(256),
            if udp { 53 } else { 22 + rng.below(3) * 421 },
            if udp { "udp" } else { "tcp" },
            services[rng.below(5) as usize],
            rng.below(3600),
            rng.below(1_000_000),
            ob,
            rb,
            states[rng.below(6) as usize],
            op,
            ob + op * 40,
            rp,
            rb + rp * 40,
            if udp { 17 } else { 6 },
        )?;
    }
    Ok(())
}

/// Internet checksum over `data` starting from `sum`.
fn checksum(data: &[u8], mut sum: u32) -> u16 {
    for pair in data.chunks(2) {
        let word = if pair.len() == 2 {
            u16::from_be_bytes([pair[0], pair[1]])
        } else {
            u16::from_be_bytes([pair[0], 0])
        };
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// One Ethernet/IPv4/{TCP,UDP} frame with valid checksums.
#[expect(
    clippy::too_many_arguments,
    reason = "a packet has this many header fields"
)]
fn frame(
    src: [u8; 4],
    dst: [u8; 4],
    proto: u8,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    payload_len: usize,
) -> Vec<u8> {
    let l4_len = if proto == 6 { 20 } else { 8 } + payload_len;
    let mut f = Vec::with_capacity(14 + 20 + l4_len);
    f.extend_from_slice(&[2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00]);
    let total = (20 + l4_len) as u16;
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[8] = 64;
    ip[9] = proto;
    ip[12..16].copy_from_slice(&src);
    ip[16..20].copy_from_slice(&dst);
    let c = checksum(&ip, 0);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    let mut l4 = vec![0u8; l4_len];
    l4[0..2].copy_from_slice(&sport.to_be_bytes());
    l4[2..4].copy_from_slice(&dport.to_be_bytes());
    if proto == 6 {
        l4[4..8].copy_from_slice(&seq.to_be_bytes());
        l4[8..12].copy_from_slice(&ack.to_be_bytes());
        l4[12] = 0x50;
        l4[13] = flags;
        l4[14..16].copy_from_slice(&65535u16.to_be_bytes());
    } else {
        l4[4..6].copy_from_slice(&(l4_len as u16).to_be_bytes());
    }
    for (i, b) in l4
        .iter_mut()
        .enumerate()
        .skip(if proto == 6 { 20 } else { 8 })
    {
        *b = i as u8;
    }
    let mut pseudo = 0u32;
    for w in [src, dst] {
        pseudo += u32::from(u16::from_be_bytes([w[0], w[1]]));
        pseudo += u32::from(u16::from_be_bytes([w[2], w[3]]));
    }
    pseudo += u32::from(proto) + l4_len as u32;
    let c = checksum(&l4, pseudo);
    let at = if proto == 6 { 16 } else { 6 };
    l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&l4);
    f
}

fn write_record(out: &mut impl Write, ts_us: u64, data: &[u8]) -> std::io::Result<()> {
    out.write_all(&((ts_us / 1_000_000) as u32).to_le_bytes())?;
    out.write_all(&((ts_us % 1_000_000) as u32).to_le_bytes())?;
    out.write_all(&(data.len() as u32).to_le_bytes())?;
    out.write_all(&(data.len() as u32).to_le_bytes())?;
    out.write_all(data)
}

/// A classic pcap of at least `bytes` bytes: interleaved TCP sessions (handshake,
/// data both ways, FIN) and UDP request/response pairs, valid checksums.
fn pcap(bytes: u64, out: &mut impl Write) -> std::io::Result<()> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    out.write_all(&[0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0])?; // magic, v2.4
    out.write_all(&[0; 8])?;
    out.write_all(&65535u32.to_le_bytes())?;
    out.write_all(&1u32.to_le_bytes())?; // Ethernet
    let mut written = 24u64;
    let mut count = 0u64;
    let mut ts = 1_700_000_000_000_000u64;
    let mut session = 0u32;
    while written < bytes {
        session += 1;
        let a = [
            10,
            (session >> 16) as u8,
            (session >> 8) as u8,
            session as u8,
        ];
        let b = [198, 51, 100, (session % 250) as u8 + 1];
        let sport = 1024 + (session % 60000) as u16;
        let mut packets: Vec<Vec<u8>> = Vec::new();
        if rng.below(5) == 0 {
            let q = 20 + rng.below(60) as usize;
            let r = 60 + rng.below(400) as usize;
            packets.push(frame(a, b, 17, sport, 53, 0, 0, 0, q));
            packets.push(frame(b, a, 17, 53, sport, 0, 0, 0, r));
        } else {
            let (mut sa, mut sb) = (1000u32, 5000u32);
            packets.push(frame(a, b, 6, sport, 443, sa, 0, 0x02, 0));
            packets.push(frame(b, a, 6, 443, sport, sb, sa + 1, 0x12, 0));
            sa += 1;
            sb += 1;
            packets.push(frame(a, b, 6, sport, 443, sa, sb, 0x10, 0));
            for _ in 0..(4 + rng.below(30)) {
                let from_a = rng.below(3) == 0;
                let len = if rng.below(2) == 0 {
                    1448
                } else {
                    rng.below(600) as usize + 1
                };
                if from_a {
                    packets.push(frame(a, b, 6, sport, 443, sa, sb, 0x18, len));
                    sa += len as u32;
                    packets.push(frame(b, a, 6, 443, sport, sb, sa, 0x10, 0));
                } else {
                    packets.push(frame(b, a, 6, 443, sport, sb, sa, 0x18, len));
                    sb += len as u32;
                    packets.push(frame(a, b, 6, sport, 443, sa, sb, 0x10, 0));
                }
            }
            packets.push(frame(a, b, 6, sport, 443, sa, sb, 0x11, 0));
            packets.push(frame(b, a, 6, 443, sport, sb, sa + 1, 0x11, 0));
            packets.push(frame(a, b, 6, sport, 443, sa + 1, sb + 1, 0x10, 0));
        }
        for p in packets {
            ts += 1 + rng.below(200);
            write_record(out, ts, &p)?;
            written += 16 + p.len() as u64;
            count += 1;
        }
    }
    println!("{count} packets, {written} bytes");
    Ok(())
}

/// NetFlow v9 export datagrams: one template (id 256, IPv4 5-tuple, counters, switched
/// times) in the first datagram, then data FlowSets of 30 records per datagram.
/// Also writes each datagram's length to `lengths` (one per line), so a replayer can
/// send them as separate UDP datagrams.
fn netflow(records: u64, out: &mut impl Write, lengths: &mut impl Write) -> std::io::Result<()> {
    let mut rng = Rng(0xd1b5_4a32_d192_ed03);
    // (IE, length): src addr, dst addr, src port, dst port, proto, bytes, packets,
    // first switched, last switched.
    let fields: [(u16, u16); 9] = [
        (8, 4),
        (12, 4),
        (7, 2),
        (11, 2),
        (4, 1),
        (1, 4),
        (2, 4),
        (22, 4),
        (21, 4),
    ];
    let rec_len: usize = fields.iter().map(|f| f.1 as usize).sum();
    let header = |count: u16, seq: u32, secs: u32| {
        let mut h = Vec::with_capacity(20);
        h.extend_from_slice(&9u16.to_be_bytes());
        h.extend_from_slice(&count.to_be_bytes());
        h.extend_from_slice(&3_600_000u32.to_be_bytes()); // sysUptime ms
        h.extend_from_slice(&secs.to_be_bytes());
        h.extend_from_slice(&seq.to_be_bytes());
        h.extend_from_slice(&1u32.to_be_bytes()); // source id
        h
    };
    let mut tpl = header(1, 0, 1_700_000_000);
    tpl.extend_from_slice(&0u16.to_be_bytes());
    tpl.extend_from_slice(&((8 + 4 * fields.len()) as u16).to_be_bytes());
    tpl.extend_from_slice(&256u16.to_be_bytes());
    tpl.extend_from_slice(&(fields.len() as u16).to_be_bytes());
    for (ie, len) in fields {
        tpl.extend_from_slice(&ie.to_be_bytes());
        tpl.extend_from_slice(&len.to_be_bytes());
    }
    out.write_all(&tpl)?;
    writeln!(lengths, "{}", tpl.len())?;
    let mut done = 0u64;
    let mut seq = 1u32;
    while done < records {
        let n = (records - done).min(30) as usize;
        let secs = 1_700_000_000 + (done / 1000) as u32;
        let mut d = header(n as u16, seq, secs);
        seq += 1;
        let body = 4 + n * rec_len;
        let pad = (4 - body % 4) % 4;
        d.extend_from_slice(&256u16.to_be_bytes());
        d.extend_from_slice(&((body + pad) as u16).to_be_bytes());
        for _ in 0..n {
            let r = rng.next();
            d.extend_from_slice(&[10, (r >> 8) as u8, (r >> 16) as u8, (r >> 24) as u8]);
            d.extend_from_slice(&[198, 51, 100, (r >> 32) as u8]);
            d.extend_from_slice(&(1024 + (r >> 40) as u16 % 60000).to_be_bytes());
            d.extend_from_slice(&[0, 22]);
            d.push(6);
            d.extend_from_slice(&((r % 100_000) as u32 + 40).to_be_bytes());
            d.extend_from_slice(&((r % 100) as u32 + 1).to_be_bytes());
            let last = 3_599_000 - (r % 1000) as u32;
            d.extend_from_slice(&(last - (r % 50_000) as u32).to_be_bytes());
            d.extend_from_slice(&last.to_be_bytes());
        }
        d.extend(std::iter::repeat_n(0u8, pad));
        out.write_all(&d)?;
        writeln!(lengths, "{}", d.len())?;
        done += n as u64;
    }
    Ok(())
}

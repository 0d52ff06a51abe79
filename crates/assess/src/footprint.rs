//! The network footprint a hypothesis' actor is believed to operate from:
//! countries, AS numbers and prefixes (`origin = {...}` in `evidence.toml`).
//!
//! `block` reads it from the assessment to decide whether an origin prefix or ASN may
//! be blocked; `assess` uses it to say whether a trace's origin hop falls inside it.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// Countries (ISO 3166-1 alpha-2), AS numbers and CIDR prefixes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Footprint {
    /// Country codes, upper case.
    #[serde(default)]
    pub countries: Vec<String>,
    /// AS numbers.
    #[serde(default)]
    pub asns: Vec<u64>,
    /// Prefixes such as `175.45.176.0/22`.
    #[serde(default)]
    pub prefixes: Vec<String>,
}

impl Footprint {
    /// Checks every entry, returning the first bad one with the reason.
    pub fn check(&self) -> Result<(), String> {
        for c in &self.countries {
            if c.len() != 2 || !c.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(format!(
                    "country {c:?} is not an upper-case ISO 3166-1 alpha-2 code"
                ));
            }
        }
        for &a in &self.asns {
            if a > u64::from(u32::MAX) {
                return Err(format!("AS number {a} is larger than 32 bits (RFC 6793)"));
            }
        }
        for p in &self.prefixes {
            let (net, len) = parse_prefix(p)
                .ok_or_else(|| format!("prefix {p:?} is not an address/length prefix"))?;
            // Host bits set (192.0.2.1/24) usually mean a typo in the address or the
            // length; the network it would stand for is said, not guessed.
            if host_bits_set(net, len) {
                return Err(format!(
                    "prefix {p:?} has host bits set: did you mean {}?",
                    network_text(net, len)
                ));
            }
        }
        if self.countries.is_empty() && self.asns.is_empty() && self.prefixes.is_empty() {
            return Err("an origin footprint needs a country, an ASN or a prefix".into());
        }
        Ok(())
    }

    /// Whether an address with the given ASN and country lies inside the footprint:
    /// inside a prefix, or announced by a listed ASN, or located in a listed country.
    pub fn contains(&self, ip: Option<IpAddr>, asn: Option<u64>, country: Option<&str>) -> bool {
        let by_prefix = ip.is_some_and(|ip| {
            self.prefixes
                .iter()
                .filter_map(|p| parse_prefix(p))
                .any(|(net, len)| in_prefix(ip, net, len))
        });
        by_prefix
            || asn.is_some_and(|a| self.asns.contains(&a))
            || country.is_some_and(|c| self.countries.iter().any(|x| x == c))
    }
}

/// Parses `addr/len`.
pub fn parse_prefix(s: &str) -> Option<(IpAddr, u8)> {
    let (a, l) = s.split_once('/')?;
    let ip: IpAddr = a.parse().ok()?;
    let len: u8 = l.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (len <= max).then_some((ip, len))
}

/// Whether `net` has bits set beyond its first `len`.
fn host_bits_set(net: IpAddr, len: u8) -> bool {
    match net {
        IpAddr::V4(a) => u32::from(a).checked_shl(u32::from(len)).unwrap_or(0) != 0,
        IpAddr::V6(a) => u128::from(a).checked_shl(u32::from(len)).unwrap_or(0) != 0,
    }
}

/// `net/len` with the host bits cleared.
fn network_text(net: IpAddr, len: u8) -> String {
    match net {
        IpAddr::V4(a) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            format!("{}/{len}", std::net::Ipv4Addr::from(u32::from(a) & mask))
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            format!("{}/{len}", std::net::Ipv6Addr::from(u128::from(a) & mask))
        }
    }
}

fn in_prefix(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(len))
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(len))
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp() -> Footprint {
        Footprint {
            countries: vec!["KP".into()],
            asns: vec![131279],
            prefixes: vec!["175.45.176.0/22".into()],
        }
    }

    #[test]
    fn asns_beyond_32_bits_and_prefixes_with_host_bits_are_refused() {
        let mut f = fp();
        f.asns.push(4_294_967_296);
        assert!(f.check().unwrap_err().contains("larger than 32 bits"));
        for (p, meant) in [
            ("192.0.2.1/24", "192.0.2.0/24"),
            ("2001:db8::1/32", "2001:db8::/32"),
        ] {
            let mut f = fp();
            f.prefixes.push(p.into());
            let e = f.check().unwrap_err();
            assert!(e.contains(&format!("did you mean {meant}?")), "{e}");
        }
        let mut f = fp();
        f.asns.push(4_294_967_295);
        f.prefixes
            .extend(["0.0.0.0/0".into(), "10.0.0.1/32".into(), "::/0".into()]);
        assert_eq!(f.check(), Ok(()));
    }

    #[test]
    fn contains_by_prefix_asn_or_country() {
        let f = fp();
        assert!(f.contains(Some("175.45.178.9".parse().unwrap()), None, None));
        assert!(!f.contains(Some("175.45.180.1".parse().unwrap()), None, None));
        assert!(f.contains(None, Some(131279), None));
        assert!(f.contains(None, None, Some("KP")));
        assert!(!f.contains(Some("192.0.2.66".parse().unwrap()), Some(64500), Some("CN")));
        assert!(!f.contains(Some("::1".parse().unwrap()), None, None));
    }

    #[test]
    fn check_names_the_bad_entry() {
        assert!(fp().check().is_ok());
        let mut f = fp();
        f.countries.push("kp".into());
        assert!(f.check().unwrap_err().contains("\"kp\""));
        let mut f = fp();
        f.prefixes.push("10.0.0.0/33".into());
        assert!(f.check().unwrap_err().contains("10.0.0.0/33"));
        assert!(Footprint::default().check().is_err());
    }
}

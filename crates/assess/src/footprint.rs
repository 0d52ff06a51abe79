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
        for p in &self.prefixes {
            parse_prefix(p)
                .ok_or_else(|| format!("prefix {p:?} is not an address/length prefix"))?;
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

//! Address prefixes for `--victim`.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::error::TraceError;

/// An IPv4 or IPv6 prefix (`203.0.113.0/24`, `2001:db8::/32`); a bare address is a
/// host prefix. Bits beyond the length are cleared on parsing, so equal prefixes
/// compare equal however they were written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cidr {
    addr: IpAddr,
    len: u8,
}

fn to_bits(a: IpAddr) -> (u128, u8) {
    match a {
        IpAddr::V4(v) => (u128::from(u32::from(v)), 32),
        IpAddr::V6(v) => (u128::from(v), 128),
    }
}

fn mask(width: u8, len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        let ones = (!0u128) << (128 - u32::from(len));
        ones >> (128 - u32::from(width))
    }
}

impl Cidr {
    /// The prefix of exactly one address (`/32` or `/128`).
    pub fn host(a: IpAddr) -> Cidr {
        let (_, width) = to_bits(a);
        Cidr {
            addr: a,
            len: width,
        }
    }

    /// Whether `a` lies inside the prefix (an IPv4 address never matches an IPv6
    /// prefix and vice versa: mapped addresses are not unmapped here).
    pub fn contains(&self, a: IpAddr) -> bool {
        let (p, pw) = to_bits(self.addr);
        let (x, xw) = to_bits(a);
        pw == xw && (p ^ x) & mask(pw, self.len) == 0
    }
}

impl FromStr for Cidr {
    type Err = TraceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || TraceError::BadCidr(s.to_string());
        let (a, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l.parse::<u8>().map_err(|_| bad())?)),
            None => (s, None),
        };
        let mut addr: IpAddr = a.trim().parse().map_err(|_| bad())?;
        let mut len = len;
        // An IPv4-mapped prefix (`::ffff:192.0.2.0/120`) is the IPv4 prefix it maps:
        // connections are stored with such addresses as IPv4 (`Conn::new`).
        if let (IpAddr::V6(_), IpAddr::V4(v4)) = (addr, addr.to_canonical()) {
            if len.is_none_or(|l| l >= 96) {
                addr = IpAddr::V4(v4);
                len = len.map(|l| l - 96);
            }
        }
        let (bits, width) = to_bits(addr);
        let len = len.unwrap_or(width);
        if len > width {
            return Err(bad());
        }
        let masked = bits & mask(width, len);
        let addr = match addr {
            IpAddr::V4(_) => IpAddr::V4((masked as u32).into()),
            IpAddr::V6(_) => IpAddr::V6(masked.into()),
        };
        Ok(Cidr { addr, len })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contains_table() {
        let cases = [
            ("203.0.113.0/24", "203.0.113.7", true),
            ("203.0.113.0/24", "203.0.114.7", false),
            ("203.0.113.7", "203.0.113.7", true),
            ("203.0.113.7", "203.0.113.8", false),
            ("203.0.113.9/0", "8.8.8.8", true),
            ("2001:db8::/32", "2001:db8:1::1", true),
            ("2001:db8::/32", "2001:db9::1", false),
            ("0.0.0.0/0", "2001:db8::1", false),
            // IPv4-mapped: the IPv4 prefix it maps (stored connections hold IPv4).
            ("::ffff:192.0.2.66", "192.0.2.66", true),
            ("::ffff:192.0.2.0/120", "192.0.2.9", true),
            ("::ffff:192.0.2.0/120", "192.0.3.9", false),
        ];
        for (p, a, want) in cases {
            let c: Cidr = p.parse().unwrap();
            assert_eq!(c.contains(a.parse().unwrap()), want, "{p} ∋ {a}");
        }
    }

    #[test]
    fn rejects_bad_prefixes() {
        for s in ["", "203.0.113.0/33", "2001:db8::/129", "x/8", "1.2.3.4/-1"] {
            assert!(s.parse::<Cidr>().is_err(), "{s}");
        }
        assert_eq!(
            "203.0.113.77/24".parse::<Cidr>().unwrap().to_string(),
            "203.0.113.0/24"
        );
    }
}

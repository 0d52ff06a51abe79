//! Domain values produced by enrichment: [`Asn`], [`CountryCode`], [`Family`].
//!
//! Newtypes rather than bare integers and strings, so an AS number cannot be mixed up
//! with a record id and a country code is always two upper-case ASCII letters.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An autonomous system number (RFC 6793: 32 bits). Printed as `AS4837`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Asn(pub u32);

impl fmt::Display for Asn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AS{}", self.0)
    }
}

impl FromStr for Asn {
    type Err = &'static str;

    /// Accepts `4837`, `AS4837` and `as4837`; rejects anything else, including
    /// asdot notation (`1.10`), which no source we read uses.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = s
            .strip_prefix("AS")
            .or_else(|| s.strip_prefix("as"))
            .unwrap_or(s);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err("AS number is not a decimal integer");
        }
        digits
            .parse::<u32>()
            .map(Asn)
            .map_err(|_| "AS number is larger than 32 bits")
    }
}

/// An ISO 3166-1 alpha-2 country code, stored as two upper-case ASCII letters.
///
/// Registry data also uses non-ISO codes such as `EU` and `AP`; they are kept as
/// given (they are two letters), because dropping them would claim "unknown" where the
/// source said something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CountryCode(pub [u8; 2]);

impl CountryCode {
    /// The code as a string slice (always valid ASCII).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CountryCode {
    type Err = &'static str;

    /// Two ASCII letters, case-insensitive (normalised to upper case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        if b.len() != 2 || !b.iter().all(u8::is_ascii_alphabetic) {
            return Err("country code is not two ASCII letters");
        }
        Ok(CountryCode([
            b[0].to_ascii_uppercase(),
            b[1].to_ascii_uppercase(),
        ]))
    }
}

/// Address family: the snapshot keeps one table per family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4: keys are `u32` values widened to `u128`.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// The largest key of this family.
    pub fn max(self) -> u128 {
        match self {
            Family::V4 => u128::from(u32::MAX),
            Family::V6 => u128::MAX,
        }
    }

    /// The address with numeric value `key` (which must fit the family).
    pub fn addr(self, key: u128) -> IpAddr {
        match self {
            Family::V4 => IpAddr::V4(Ipv4Addr::from(key as u32)),
            Family::V6 => IpAddr::V6(Ipv6Addr::from(key)),
        }
    }
}

/// The family and numeric value of an address. IPv4-mapped IPv6 addresses
/// (`::ffff:a.b.c.d`) are looked up as the IPv4 address they carry, as every
/// registry source files them under IPv4.
pub fn key_of(addr: IpAddr) -> (Family, u128) {
    match addr {
        IpAddr::V4(a) => (Family::V4, u128::from(u32::from(a))),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => (Family::V4, u128::from(u32::from(v4))),
            None => (Family::V6, u128::from(a)),
        },
    }
}

/// The largest CIDR block that contains `key` and lies inside `[first, last]`:
/// what `whois` prints as the address's prefix when a range is not itself a CIDR block.
pub fn covering_prefix(family: Family, key: u128, first: u128, last: u128) -> (IpAddr, u8) {
    let bits: u32 = match family {
        Family::V4 => 32,
        Family::V6 => 128,
    };
    let mut best = (key, bits as u8);
    for len in (0..=bits).rev() {
        let host_bits = bits - len;
        let mask: u128 = if host_bits >= 128 {
            u128::MAX
        } else {
            (1u128 << host_bits) - 1
        };
        let net = key & !mask;
        let top = net | (mask & family.max());
        if net < first || top > last {
            break;
        }
        best = (net, len as u8);
    }
    (family.addr(best.0), best.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asn_and_country_parse_strictly() {
        assert_eq!("AS4837".parse::<Asn>(), Ok(Asn(4837)));
        assert_eq!("4294967295".parse::<Asn>(), Ok(Asn(u32::MAX)));
        assert!("4294967296".parse::<Asn>().is_err());
        assert!("AS".parse::<Asn>().is_err());
        assert!("1.10".parse::<Asn>().is_err());
        assert_eq!("kp".parse::<CountryCode>().unwrap().as_str(), "KP");
        assert!("KOR".parse::<CountryCode>().is_err());
        assert!("K1".parse::<CountryCode>().is_err());
    }

    #[test]
    fn covering_prefix_stays_inside_the_range() {
        // 1.0.0.0-1.0.0.255 is exactly a /24.
        let p = covering_prefix(Family::V4, 0x0100_0005, 0x0100_0000, 0x0100_00ff);
        assert_eq!(p, ("1.0.0.0".parse().unwrap(), 24));
        // 1.0.128.0-1.0.196.255: 1.0.130.1 lies in the /23 1.0.130.0-1.0.131.255
        // (the /22 1.0.128.0-1.0.131.255 also fits; the /21 from 1.0.128.0 too...).
        let p = covering_prefix(Family::V4, 0x0100_8201, 0x0100_8000, 0x0100_c4ff);
        assert_eq!(p, ("1.0.128.0".parse().unwrap(), 18));
        let all = covering_prefix(Family::V6, 5, 0, u128::MAX);
        assert_eq!(all, ("::".parse().unwrap(), 0));
    }

    #[test]
    fn mapped_addresses_are_ipv4() {
        let (f, k) = key_of("::ffff:1.2.3.4".parse().unwrap());
        assert_eq!((f, k), (Family::V4, 0x0102_0304));
    }
}

//! Pure MRT parsing (RFC 6396, RFC 8050): bytes in, RIB entries out, no I/O.
//!
//! Only what enrichment needs is decoded: the prefix of each RIB record and, per
//! entry, the AS path (RFC 4271 §4.3 type 2, and AS4_PATH, RFC 6793 type 17). Other
//! record types (BGP4MP updates, state changes, OSPF...) are recognised by their
//! header and skipped whole.

/// MRT type TABLE_DUMP (RFC 6396 §4.2): one RIB entry per record, 2-byte ASNs.
pub const TABLE_DUMP: u16 = 12;
/// MRT type TABLE_DUMP_V2 (RFC 6396 §4.3): one prefix per record, 4-byte ASNs.
pub const TABLE_DUMP_V2: u16 = 13;
/// Longest record body accepted, in bytes. A full-table RIB record for one prefix
/// seen by a thousand peers is a few hundred KiB; a larger length is a corrupt or
/// hostile header, and the bound keeps it from allocating gigabytes.
pub const MAX_RECORD_BYTES: u32 = 16 << 20;
/// AS_PATH segments decoded per entry. Real paths have a handful; the bound stops a
/// crafted attribute from making one entry cost unbounded work.
pub const MAX_PATH_SEGMENTS: usize = 64;

/// MRT common header (RFC 6396 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Seconds since the Unix epoch.
    pub timestamp: u32,
    /// Record type (12 TABLE_DUMP, 13 TABLE_DUMP_V2, 16/17 BGP4MP...).
    pub kind: u16,
    /// Subtype (meaning depends on the type).
    pub subtype: u16,
    /// Body length in bytes (after the 12-byte header).
    pub length: u32,
}

/// Parses the 12-byte common header.
pub fn header(b: &[u8; 12]) -> Header {
    Header {
        timestamp: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        kind: u16::from_be_bytes([b[4], b[5]]),
        subtype: u16::from_be_bytes([b[6], b[7]]),
        length: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
    }
}

/// One RIB entry: a prefix and the AS path one peer had for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RibEntry {
    /// True for IPv6.
    pub v6: bool,
    /// Prefix address (IPv4 in the low 32 bits), host bits cleared.
    pub prefix: u128,
    /// Prefix length in bits.
    pub len: u8,
    /// The AS path as a flat sequence (AS_SEQUENCE members in order; an AS_SET
    /// contributes its members only when it has exactly one), AS4_PATH preferred.
    pub path: Vec<u32>,
    /// True when the path ends in an AS_SET of several ASes: no single origin.
    pub set_origin: bool,
}

/// Why a RIB record could not be decoded.
pub type ParseError = &'static str;

/// A tiny big-endian cursor that never reads past its slice.
struct Cur<'a> {
    b: &'a [u8],
}

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ParseError> {
        if self.b.len() < n {
            return Err("record shorter than its fields");
        }
        let (head, tail) = self.b.split_at(n);
        self.b = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, ParseError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, ParseError> {
        let s = self.take(2)?;
        Ok(u16::from_be_bytes([s[0], s[1]]))
    }
    fn u32(&mut self) -> Result<u32, ParseError> {
        let s = self.take(4)?;
        Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
}

/// Decodes the body of a TABLE_DUMP record (subtype 1 AFI_IPv4, 2 AFI_IPv6).
/// Returns `Ok(None)` for other subtypes.
pub fn table_dump(subtype: u16, body: &[u8]) -> Result<Option<RibEntry>, ParseError> {
    let v6 = match subtype {
        1 => false,
        2 => true,
        _ => return Ok(None),
    };
    let alen = if v6 { 16 } else { 4 };
    let mut c = Cur { b: body };
    c.u16()?; // view number
    c.u16()?; // sequence number
    let addr = c.take(alen)?;
    let len = c.u8()?;
    c.u8()?; // status (always 1)
    c.u32()?; // originated time
    c.take(alen)?; // peer address
    c.u16()?; // peer AS (2 bytes in TABLE_DUMP)
    let attr_len = c.u16()? as usize;
    let attrs = c.take(attr_len)?;
    let mut padded = [0u8; 16];
    padded[..alen].copy_from_slice(addr);
    let prefix = prefix_value(v6, &padded, len)?;
    let (path, set_origin) = as_path(attrs, 2)?;
    Ok(Some(RibEntry {
        v6,
        prefix,
        len,
        path,
        set_origin,
    }))
}

/// Decodes a TABLE_DUMP_V2 RIB record (subtypes 2 and 4, and their RFC 8050 ADD-PATH
/// forms 8 and 10) into one entry per peer. Returns an empty list for other subtypes
/// (PEER_INDEX_TABLE, multicast, RIB_GENERIC).
pub fn table_dump_v2(subtype: u16, body: &[u8]) -> Result<Vec<RibEntry>, ParseError> {
    let (v6, add_path) = match subtype {
        2 => (false, false),
        4 => (true, false),
        8 => (false, true),
        10 => (true, true),
        _ => return Ok(Vec::new()),
    };
    let mut c = Cur { b: body };
    c.u32()?; // sequence number
    let len = c.u8()?;
    let max = if v6 { 128 } else { 32 };
    if len > max {
        return Err("prefix length longer than the address");
    }
    let nbytes = usize::from(len).div_ceil(8);
    let mut padded = [0u8; 16];
    padded[..nbytes].copy_from_slice(c.take(nbytes)?);
    // IPv4 prefixes are written as the leading bytes of a 4-byte address.
    let prefix = prefix_value(v6, &padded, len)?;
    let count = c.u16()?;
    let mut out = Vec::with_capacity(usize::from(count).min(4096));
    for _ in 0..count {
        c.u16()?; // peer index
        c.u32()?; // originated time
        if add_path {
            c.u32()?; // path identifier (RFC 8050 §4.1)
        }
        let attr_len = c.u16()? as usize;
        let attrs = c.take(attr_len)?;
        let (path, set_origin) = as_path(attrs, 4)?;
        out.push(RibEntry {
            v6,
            prefix,
            len,
            path,
            set_origin,
        });
    }
    Ok(out)
}

/// The prefix as a number with host bits cleared. `bytes` holds the address in
/// network order from its first byte (IPv4 in bytes 0..4).
fn prefix_value(v6: bool, bytes: &[u8; 16], len: u8) -> Result<u128, ParseError> {
    let width: u32 = if v6 { 128 } else { 32 };
    if u32::from(len) > width {
        return Err("prefix length longer than the address");
    }
    let full = u128::from_be_bytes(*bytes);
    let value = if v6 { full } else { full >> 96 };
    let host = width - u32::from(len);
    let mask = if host >= 128 {
        0
    } else {
        !((1u128 << host) - 1)
    };
    Ok(value & mask)
}

/// Extracts the AS path from a path-attribute block; AS4_PATH wins over AS_PATH
/// when both are present (TABLE_DUMP with 2-byte ASNs carries the true 4-byte path
/// there, RFC 6793 §4.2.3; the origin and its upstream are at the tail, which the
/// AS4_PATH always holds).
fn as_path(mut attrs: &[u8], as_size: usize) -> Result<(Vec<u32>, bool), ParseError> {
    let mut path = None;
    let mut path4 = None;
    while !attrs.is_empty() {
        let mut c = Cur { b: attrs };
        let flags = c.u8()?;
        let kind = c.u8()?;
        let len = if flags & 0x10 != 0 {
            c.u16()? as usize
        } else {
            usize::from(c.u8()?)
        };
        let value = c.take(len)?;
        attrs = c.b;
        match kind {
            2 => path = Some(segments(value, as_size)?),
            17 => path4 = Some(segments(value, 4)?),
            _ => {}
        }
    }
    Ok(path4.or(path).unwrap_or((Vec::new(), false)))
}

/// Flattens AS_PATH segments (RFC 4271 §4.3; confederation segments, types 3 and 4,
/// are internal to a confederation and left out).
fn segments(value: &[u8], as_size: usize) -> Result<(Vec<u32>, bool), ParseError> {
    let mut c = Cur { b: value };
    let mut out = Vec::new();
    let mut set_origin = false;
    let mut n = 0;
    while !c.b.is_empty() {
        n += 1;
        if n > MAX_PATH_SEGMENTS {
            return Err("AS path with too many segments");
        }
        let kind = c.u8()?;
        let count = usize::from(c.u8()?);
        let raw = c.take(count * as_size)?;
        let asns = raw.chunks_exact(as_size).map(|a| {
            if as_size == 2 {
                u32::from(u16::from_be_bytes([a[0], a[1]]))
            } else {
                u32::from_be_bytes([a[0], a[1], a[2], a[3]])
            }
        });
        match kind {
            2 => {
                out.extend(asns);
                set_origin = false;
            }
            1 => {
                let members: Vec<u32> = asns.collect();
                if members.len() == 1 {
                    out.extend(members);
                    set_origin = false;
                } else {
                    set_origin = true;
                }
            }
            3 | 4 => {}
            _ => return Err("unknown AS_PATH segment type"),
        }
    }
    Ok((out, set_origin))
}

/// The origin AS of a flattened path and the AS before it (prepending removed).
pub fn origin_and_upstream(path: &[u32]) -> Option<(u32, Option<u32>)> {
    let origin = *path.last()?;
    let upstream = path.iter().rev().find(|&&a| a != origin).copied();
    Some((origin, upstream))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_dump_v2_rib_ipv4_record() {
        #[rustfmt::skip]
        let body = [
            0x00, 0x00, 0x00, 0x07, // sequence number = 7
            0x18,                   // prefix length = 24
            0xc0, 0x00, 0x02,       // prefix = 192.0.2.0
            0x00, 0x01,             // entry count = 1
            0x00, 0x00,             // peer index = 0
            0x58, 0x9e, 0x8b, 0xd4, // originated time
            0x00, 0x0e,             // attribute length = 14
            0x40, 0x02, 0x0a,       // flags transitive, type AS_PATH, length 10
            0x02, 0x02,             // AS_SEQUENCE of 2
            0x00, 0x00, 0xfd, 0xe8, // 65000
            0x00, 0x00, 0xfd, 0xe9, // 65001
            0x40, 0x01, 0x01, 0x00, // ORIGIN = IGP (ignored)
        ];
        // The attribute block above is 14 bytes: AS_PATH (3 + 10) is 13, ORIGIN
        // would make 17, so the length field cuts ORIGIN off: an error.
        assert_eq!(
            table_dump_v2(2, &body),
            Err("record shorter than its fields")
        );
        let mut fixed = body.to_vec();
        fixed[17] = 0x11; // attribute length = 17
        let entries = table_dump_v2(2, &fixed).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].prefix, 0xc000_0200);
        assert_eq!(entries[0].len, 24);
        assert_eq!(entries[0].path, vec![65000, 65001]);
        assert_eq!(
            origin_and_upstream(&entries[0].path),
            Some((65001, Some(65000)))
        );
    }

    #[test]
    fn prepending_and_sets() {
        assert_eq!(origin_and_upstream(&[1, 2, 3, 3, 3]), Some((3, Some(2))));
        assert_eq!(origin_and_upstream(&[7, 7]), Some((7, None)));
        assert_eq!(origin_and_upstream(&[]), None);
        #[rustfmt::skip]
        let set = [
            0x02, 0x01, 0x00, 0x01, // AS_SEQUENCE [1] (2-byte ASNs)
            0x01, 0x02, 0x00, 0x02, 0x00, 0x03, // AS_SET {2, 3}
        ];
        assert_eq!(segments(&set, 2), Ok((vec![1], true)));
    }
}

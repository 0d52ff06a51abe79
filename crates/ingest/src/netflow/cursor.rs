//! A bounds-checked big-endian reader over one region of the input.
//!
//! Every NetFlow/IPFIX length field is attacker-controlled, so nothing here indexes
//! or slices directly: each read returns `None` instead of panicking when the region
//! is too short, and positions are absolute input offsets so that rejections can
//! name the exact byte.

/// A read position inside `buf[..end]`; reads never go past `end`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor over `buf[pos..end]`; `end` is clamped to the buffer, so a hostile
    /// length can never widen the region.
    pub(super) fn new(buf: &'a [u8], pos: usize, end: usize) -> Self {
        let end = end.min(buf.len());
        Cursor {
            buf,
            pos: pos.min(end),
            end,
        }
    }

    /// Absolute offset of the next byte.
    pub(super) fn pos(&self) -> usize {
        self.pos
    }

    /// Absolute offset one past the last readable byte.
    pub(super) fn end(&self) -> usize {
        self.end
    }

    /// Bytes left before `end`.
    pub(super) fn remaining(&self) -> usize {
        self.end - self.pos
    }

    /// The unread bytes, without consuming them.
    pub(super) fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..self.end).unwrap_or(&[])
    }

    /// Takes the next `n` bytes, or `None` (consuming nothing) when fewer are left.
    pub(super) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let stop = self.pos.checked_add(n)?;
        if stop > self.end {
            return None;
        }
        let bytes = self.buf.get(self.pos..stop)?;
        self.pos = stop;
        Some(bytes)
    }

    /// Splits off the next `n` bytes as their own cursor (a set, a record).
    pub(super) fn sub(&mut self, n: usize) -> Option<Cursor<'a>> {
        let start = self.pos;
        self.take(n)?;
        Some(Cursor::new(self.buf, start, self.pos))
    }

    /// Reads one byte.
    pub(super) fn u8(&mut self) -> Option<u8> {
        self.take(1).and_then(|b| b.first().copied())
    }

    /// Reads a big-endian (network order) u16.
    pub(super) fn u16(&mut self) -> Option<u16> {
        let b = self.take(2)?;
        Some(u16::from_be_bytes(b.try_into().ok()?))
    }

    /// Reads a big-endian u32.
    pub(super) fn u32(&mut self) -> Option<u32> {
        let b = self.take(4)?;
        Some(u32::from_be_bytes(b.try_into().ok()?))
    }

    /// Reads a big-endian u16 at `offset` bytes ahead without consuming anything.
    pub(super) fn peek_u16(&self, offset: usize) -> Option<u16> {
        let mut c = *self;
        c.take(offset)?;
        c.u16()
    }
}

/// Reads an unsigned big-endian integer of 1 to 8 bytes.
///
/// IPFIX reduced-size encoding (RFC 7011 §6.2) lets exporters send a 64-bit counter
/// in fewer bytes, and NetFlow v9 lengths are the exporter's choice too, so integer
/// fields are read at whatever width the template gives. `None` for 0 or >8 bytes.
pub(super) fn be_uint(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() || bytes.len() > 8 {
        return None;
    }
    Some(bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

/// True when every byte is zero: the padding some exporters append after the last
/// set or datagram, which is not an error.
pub(super) fn all_zero(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| *b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_never_pass_the_end() {
        let bytes = [
            0x00, 0x0a, // u16 = 10
            0x00, 0x00, 0x01, 0x00, // u32 = 256
            0xff, // one byte left
        ];
        let mut c = Cursor::new(&bytes, 0, bytes.len());
        assert_eq!(c.u16(), Some(10));
        assert_eq!(c.u32(), Some(256));
        assert_eq!(c.u16(), None, "only one byte left");
        assert_eq!(c.pos(), 6, "a failed read consumes nothing");
        assert_eq!(c.u8(), Some(0xff));
        assert_eq!(c.u8(), None);
        assert_eq!(c.take(usize::MAX), None, "overflowing length is refused");
    }

    #[test]
    fn region_is_clamped_to_the_buffer() {
        let bytes = [1, 2, 3];
        let mut c = Cursor::new(&bytes, 1, 1000);
        assert_eq!(c.remaining(), 2);
        let mut sub = c.sub(1).unwrap();
        assert_eq!(sub.u8(), Some(2));
        assert_eq!(sub.u8(), None, "sub-cursor stops at its own end");
        assert_eq!(c.peek_u16(0), None, "one byte cannot make a u16");
    }

    #[test]
    fn uint_of_any_width() {
        assert_eq!(be_uint(&[0x01]), Some(1));
        assert_eq!(be_uint(&[0x01, 0x00, 0x00]), Some(65536));
        assert_eq!(be_uint(&[0xff; 8]), Some(u64::MAX));
        assert_eq!(be_uint(&[]), None);
        assert_eq!(be_uint(&[0; 9]), None);
    }
}

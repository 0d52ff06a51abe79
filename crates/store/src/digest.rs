//! SHA-256 digests of files and byte streams.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{IoContext, StoreError};

/// Hex SHA-256 of a byte slice.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Hex SHA-256 of a file's content, streamed (bounded memory).
pub fn file_sha256(path: &Path) -> Result<String, StoreError> {
    let mut file = File::open(path).at(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).at(path)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// A writer that hashes what passes through it, so evidence is copied and digested
/// in one pass.
pub struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
    /// Bytes written so far.
    pub bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// The hex digest and the inner writer.
    pub fn finish(self) -> (String, W) {
        (hex::encode(self.hasher.finalize()), self.inner)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that copies and hashes what passes through it, so evidence is stored,
/// digested and parsed in one pass over its bytes: the reader for its format reads
/// through it, and every byte it hands out has been written to the copy.
pub struct CopyingReader<R: Read, W: Write> {
    inner: R,
    copy: W,
    /// Names the copy in write errors (they surface through the format reader).
    copy_name: String,
    hasher: Sha256,
    /// Bytes read (and copied) so far.
    pub bytes: u64,
}

impl<R: Read, W: Write> CopyingReader<R, W> {
    /// Reads `inner`, copying to `copy` (named `copy_name` in errors).
    pub fn new(inner: R, copy: W, copy_name: String) -> Self {
        CopyingReader {
            inner,
            copy,
            copy_name,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// Reads (copies, hashes) whatever the consumer left unread, then returns the
    /// hex digest of every byte of the source, the byte count and the copy.
    pub fn finish(mut self) -> std::io::Result<(String, u64, W)> {
        let mut buf = vec![0u8; 1 << 20];
        while self.read(&mut buf)? > 0 {}
        Ok((hex::encode(self.hasher.finalize()), self.bytes, self.copy))
    }
}

impl<R: Read, W: Write> Read for CopyingReader<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.write_all(&buf[..n]).map_err(|e| {
            std::io::Error::new(e.kind(), format!("writing {}: {e}", self.copy_name))
        })?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digest() {
        // SHA-256("abc") from FIPS 180-2, appendix B.1.
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"ab").unwrap();
        w.write_all(b"c").unwrap();
        let (d, inner) = w.finish();
        assert_eq!(d, sha256_hex(b"abc"));
        assert_eq!(inner, b"abc");
        // A consumer that stops early: the rest is still copied and hashed.
        let mut r = CopyingReader::new(&b"abc"[..], Vec::new(), "copy".into());
        let mut first = [0u8; 1];
        r.read_exact(&mut first).unwrap();
        assert_eq!(
            r.finish().unwrap(),
            (sha256_hex(b"abc"), 3, b"abc".to_vec())
        );
    }
}

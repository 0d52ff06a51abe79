//! Writing big files past the page cache (Linux `O_DIRECT`).
//!
//! Ingest writes each evidence copy and table once and syncs it; nothing reads it back
//! during the ingest. Through the page cache every byte is copied into freshly zeroed
//! cache pages and written back at the sync, all in kernel time: on this project's
//! machine (ext4 on virtio, 2026-11-30) `dd bs=1M conv=fsync` of a 1 GB file took 2.32 s
//! (1.76 s of it system time), `dd bs=4M oflag=direct` 0.39 s (0.10 s). A
//! [`DirectWriter`] gathers bytes into one aligned block and writes whole blocks with
//! `O_DIRECT` (the device reads them straight from that block), and the last partial
//! block through an ordinary handle. Where `O_DIRECT` is refused (tmpfs, some network
//! and FUSE filesystems answer `EINVAL`, at open or at the first write) it falls back
//! to ordinary writes, so it works wherever `File::create` does.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Alignment of the block's address, length and file offsets: the largest logical
/// block size in common use (`O_DIRECT` needs the device's; 512 or 4096).
const ALIGN: usize = 4096;

/// A file writer that bypasses the page cache where it can; see the module doc.
///
/// Bytes reach the file in whole blocks and at [`DirectWriter::finish`], which must be
/// called: `flush` is a no-op on purpose (the parquet writer flushes after every column
/// chunk, and writing partial blocks would end direct writes), and dropping an
/// unfinished writer loses the last partial block (ingest scratch files are removed
/// then anyway).
pub struct DirectWriter {
    path: PathBuf,
    file: File,
    /// Whether `file` was opened with `O_DIRECT` (and still accepts such writes).
    direct: bool,
    /// `block + ALIGN` bytes, so that an aligned block of `block` bytes fits in it.
    storage: Vec<u8>,
    /// Start of the aligned block in `storage`.
    start: usize,
    /// Block size, a multiple of [`ALIGN`].
    block: usize,
    /// Bytes gathered in the block.
    filled: usize,
    /// Bytes already written to the file.
    written: u64,
}

#[cfg(target_os = "linux")]
fn open_direct(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
}

#[cfg(not(target_os = "linux"))]
fn open_direct(_path: &Path) -> io::Result<File> {
    Err(io::Error::from(io::ErrorKind::InvalidInput))
}

/// Whether an error means "no direct I/O here" rather than a real failure.
fn refused(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::InvalidInput || e.raw_os_error() == Some(libc::EINVAL)
}

impl DirectWriter {
    /// Creates (or truncates) `path`; bytes are written in blocks of `block` bytes
    /// (rounded up to a multiple of 4096).
    pub fn create(path: &Path, block: usize) -> io::Result<Self> {
        let block = block.max(1).div_ceil(ALIGN) * ALIGN;
        let (file, direct) = match open_direct(path) {
            Ok(f) => (f, true),
            Err(e) if refused(&e) => (File::create(path)?, false),
            Err(e) => return Err(e),
        };
        let storage = vec![0u8; block + ALIGN];
        let start = storage.as_ptr().align_offset(ALIGN);
        Ok(DirectWriter {
            path: path.to_path_buf(),
            file,
            direct,
            storage,
            start,
            block,
            filled: 0,
            written: 0,
        })
    }

    /// Whether writes still bypass the page cache (false after a fallback).
    pub fn is_direct(&self) -> bool {
        self.direct
    }

    /// Continues with an ordinary handle on the same file, at offset `at`.
    fn fall_back(&mut self, at: u64) -> io::Result<()> {
        let mut file = OpenOptions::new().write(true).open(&self.path)?;
        file.seek(SeekFrom::Start(at))?;
        self.file = file;
        self.direct = false;
        Ok(())
    }

    /// Writes the gathered bytes and empties the block.
    fn write_block(&mut self) -> io::Result<()> {
        let mut done = 0;
        while done < self.filled {
            let from = self.start + done;
            match self
                .file
                .write(&self.storage[from..self.start + self.filled])
            {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if self.direct && refused(&e) => {
                    self.fall_back(self.written + done as u64)?;
                }
                Err(e) => return Err(e),
            }
        }
        self.written += self.filled as u64;
        self.filled = 0;
        Ok(())
    }

    /// Writes what is left and returns the file (for `sync_all`).
    pub fn finish(mut self) -> io::Result<File> {
        if self.filled > 0 {
            // O_DIRECT writes whole aligned blocks only (ALIGN is a power of two).
            if self.direct && self.filled & (ALIGN - 1) != 0 {
                self.fall_back(self.written)?;
            }
            self.write_block()?;
        }
        Ok(self.file)
    }
}

impl Write for DirectWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(self.block - self.filled);
        let at = self.start + self.filled;
        self.storage[at..at + n].copy_from_slice(&data[..n]);
        self.filled += n;
        if self.filled == self.block {
            self.write_block()?;
        }
        Ok(n)
    }

    /// A no-op: see the type's doc.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every byte arrives in order, across whole blocks, odd-sized writes and the last
    /// partial block, whether or not the filesystem takes `O_DIRECT`.
    #[test]
    fn writes_every_byte_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut w = DirectWriter::create(&path, 8192).unwrap();
        for chunk in data.chunks(777) {
            w.write_all(chunk).unwrap();
        }
        w.flush().unwrap();
        let file = w.finish().unwrap();
        file.sync_all().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), data);
    }

    /// A fallback in the middle of a file (what an `EINVAL` at a write does) keeps
    /// what was written and continues at the right offset.
    #[test]
    fn falling_back_midway_keeps_the_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let mut w = DirectWriter::create(&path, 4096).unwrap();
        w.write_all(&[1u8; 5000]).unwrap();
        w.fall_back(w.written).unwrap();
        assert!(!w.is_direct());
        w.write_all(&[2u8; 5000]).unwrap();
        w.finish().unwrap();
        let got = std::fs::read(&path).unwrap();
        assert_eq!(got.len(), 10_000);
        assert!(got[..5000].iter().all(|&b| b == 1));
        assert!(got[5000..].iter().all(|&b| b == 2));
    }

    /// Writing an exact multiple of the block leaves nothing for `finish`.
    #[test]
    fn exact_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let mut w = DirectWriter::create(&path, 4096).unwrap();
        w.write_all(&[9u8; 8192]).unwrap();
        w.finish().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), vec![9u8; 8192]);
    }
}

//! Opening inputs: transparent gzip.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;

/// Read buffer size: large enough that per-read overhead vanishes on big captures.
const BUF_BYTES: usize = 1 << 20;

/// Opens `path` for reading, gunzipping when it starts with the gzip magic (content,
/// not the file name, decides).
pub fn open_input(path: &Path) -> std::io::Result<Box<dyn BufRead + Send>> {
    open_reader(File::open(path)?)
}

/// Like [`open_input`] for any byte source, e.g. one that hashes what it reads so
/// the store digests evidence in the same pass as the reader parses it.
pub fn open_reader<'a, R: Read + Send + 'a>(
    source: R,
) -> std::io::Result<Box<dyn BufRead + Send + 'a>> {
    let mut file = BufReader::with_capacity(BUF_BYTES, source);
    let head = file.fill_buf()?;
    if head.len() >= 2 && head[0] == 0x1f && head[1] == 0x8b {
        Ok(Box::new(BufReader::with_capacity(
            BUF_BYTES,
            MultiGzDecoder::new(file),
        )))
    } else {
        Ok(Box::new(file))
    }
}

/// Reads up to `n` bytes from the start of `input` without consuming them.
pub fn peek(input: &mut dyn BufRead, n: usize) -> std::io::Result<Vec<u8>> {
    let buf = input.fill_buf()?;
    Ok(buf[..buf.len().min(n)].to_vec())
}

/// Reads a whole (decompressed) input into memory; for formats that need random
/// access and are small by nature (NetFlow payload files).
pub fn read_all(input: &mut dyn BufRead) -> std::io::Result<Vec<u8>> {
    let mut v = Vec::new();
    input.read_to_end(&mut v)?;
    Ok(v)
}

//! Opening inputs: transparent gzip.

use std::fs::File;
use std::io::{BufRead, BufReader, ErrorKind, Read};
use std::path::Path;
use std::sync::{Arc, Mutex};

use flate2::read::MultiGzDecoder;
use relaytrace_model::{Location, Rejection};

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

/// Where a damaged gzip stream stopped, for [`open_reader_tolerant`]'s caller to
/// report as a rejection once the format reader is done.
#[derive(Debug, Clone, Default)]
pub struct GzipDamage(Arc<Mutex<Option<Rejection>>>);

impl GzipDamage {
    /// The rejection describing the damage, if the stream was damaged.
    pub fn take(&self) -> Option<Rejection> {
        self.0.lock().map_or(None, |mut d| d.take())
    }
}

/// A gzip decoder that ends its stream where the compressed data is cut short or
/// corrupt, instead of failing the whole read: what was decompressed before stays
/// readable, and the damage is kept in a [`GzipDamage`].
struct TolerantGz<R: BufRead> {
    inner: MultiGzDecoder<R>,
    produced: u64,
    damage: GzipDamage,
    ended: bool,
}

impl<R: BufRead> Read for TolerantGz<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.ended {
            return Ok(0);
        }
        match self.inner.read(buf) {
            Ok(n) => {
                self.produced += n as u64;
                Ok(n)
            }
            // The decoder's own complaints (a cut-short or corrupt stream); an error
            // of the file underneath is still an error.
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::UnexpectedEof | ErrorKind::InvalidData | ErrorKind::InvalidInput
                ) =>
            {
                self.ended = true;
                if let Ok(mut d) = self.damage.0.lock() {
                    *d = Some(Rejection {
                        location: Location::Offset(self.produced),
                        field: None,
                        reason: format!(
                            "gzip stream damaged ({e}): nothing after this offset of the decompressed input could be read; the records before it were"
                        ),
                    });
                }
                Ok(0)
            }
            Err(e) => Err(e),
        }
    }
}

/// Like [`open_reader`], but a gzip stream that is cut short or corrupt ends where it
/// can no longer be decompressed instead of failing: the format reader gets every
/// byte before the damage, and the returned [`GzipDamage`] says where it was. Ingest
/// uses this, so a truncated `.gz` keeps its good records as a truncated plain file
/// does.
pub fn open_reader_tolerant<'a, R: Read + Send + 'a>(
    source: R,
) -> std::io::Result<(Box<dyn BufRead + Send + 'a>, GzipDamage)> {
    let mut file = BufReader::with_capacity(BUF_BYTES, source);
    let head = file.fill_buf()?;
    let damage = GzipDamage::default();
    if head.len() >= 2 && head[0] == 0x1f && head[1] == 0x8b {
        let gz = TolerantGz {
            inner: MultiGzDecoder::new(file),
            produced: 0,
            damage: damage.clone(),
            ended: false,
        };
        Ok((Box::new(BufReader::with_capacity(BUF_BYTES, gz)), damage))
    } else {
        Ok((Box::new(file), damage))
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

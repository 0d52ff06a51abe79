//! Opening inputs: transparent gzip.

use std::fs::File;
use std::io::{BufRead, BufReader, ErrorKind, Read};
use std::path::Path;
use std::sync::{Arc, Mutex};

use flate2::read::MultiGzDecoder;
use relaytrace_model::{Location, Rejection};
use sha2::{Digest, Sha256};

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

/// What [`open_reader_tolerant`] learns of a gzip input while it is read: where a
/// damaged stream stopped (for the caller to report as a rejection once the format
/// reader is done), and the SHA-256 of the decompressed content (so the same content
/// ingested plain and compressed, or compressed twice differently, is recognised).
#[derive(Debug, Clone, Default)]
pub struct GzipStream(Arc<Mutex<GzipState>>);

#[derive(Debug, Default)]
struct GzipState {
    gzip: bool,
    damage: Option<Rejection>,
    damaged: bool,
    content: Sha256,
    ended: bool,
}

impl GzipStream {
    /// Whether the input is gzip-compressed.
    pub fn is_gzip(&self) -> bool {
        self.0.lock().is_ok_and(|s| s.gzip)
    }

    /// The rejection describing the damage, if the stream was damaged.
    pub fn take_damage(&self) -> Option<Rejection> {
        self.0.lock().map_or(None, |mut d| d.damage.take())
    }

    /// Hex SHA-256 of the decompressed content, for an undamaged gzip input read to
    /// its end (`None` for a plain input, whose content digest is its evidence digest,
    /// before the end, and for a damaged stream, whose content is not all known).
    pub fn content_sha256(&self) -> Option<String> {
        let state = self.0.lock().ok()?;
        // A damaged stream's digest would be of the readable part only.
        (state.gzip && state.ended && !state.damaged)
            .then(|| hex::encode(state.content.clone().finalize()))
    }
}

/// A gzip decoder that ends its stream where the compressed data is cut short or
/// corrupt, instead of failing the whole read: what was decompressed before stays
/// readable, and the damage is kept in a [`GzipDamage`].
struct TolerantGz<R: BufRead> {
    inner: MultiGzDecoder<R>,
    produced: u64,
    state: GzipStream,
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
                if let Ok(mut s) = self.state.0.lock() {
                    s.content.update(&buf[..n]);
                    s.ended |= n == 0 && !buf.is_empty();
                }
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
                if let Ok(mut d) = self.state.0.lock() {
                    d.ended = true;
                    d.damaged = true;
                    d.damage = Some(Rejection {
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
/// byte before the damage, and the returned [`GzipStream`] says where it was (and
/// what the content's digest is). Ingest uses this, so a truncated `.gz` keeps its
/// good records as a truncated plain file does.
pub fn open_reader_tolerant<'a, R: Read + Send + 'a>(
    source: R,
) -> std::io::Result<(Box<dyn BufRead + Send + 'a>, GzipStream)> {
    let mut file = BufReader::with_capacity(BUF_BYTES, source);
    let head = file.fill_buf()?;
    let state = GzipStream::default();
    if head.len() >= 2 && head[0] == 0x1f && head[1] == 0x8b {
        if let Ok(mut s) = state.0.lock() {
            s.gzip = true;
        }
        let gz = TolerantGz {
            inner: MultiGzDecoder::new(file),
            produced: 0,
            state: state.clone(),
            ended: false,
        };
        Ok((Box::new(BufReader::with_capacity(BUF_BYTES, gz)), state))
    } else {
        Ok((Box::new(file), state))
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

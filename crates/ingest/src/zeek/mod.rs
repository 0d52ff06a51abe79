//! Zeek logs (being written).
use std::io::BufRead;

use crate::{IngestError, Sink};

/// Reads a Zeek TSV log.
pub fn read_tsv(_input: &mut dyn BufRead, _sink: &mut dyn Sink) -> Result<(), IngestError> {
    Err(IngestError::UnknownFormat("zeek reader not built yet".into()))
}
/// Reads a Zeek JSON log.
pub fn read_json(_input: &mut dyn BufRead, _sink: &mut dyn Sink) -> Result<(), IngestError> {
    Err(IngestError::UnknownFormat("zeek reader not built yet".into()))
}

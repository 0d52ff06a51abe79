//! Suricata EVE (being written).
use std::io::BufRead;

use crate::{IngestError, Sink};

/// Reads an EVE file.
pub fn read(_input: &mut dyn BufRead, _sink: &mut dyn Sink) -> Result<(), IngestError> {
    Err(IngestError::UnknownFormat("eve reader not built yet".into()))
}

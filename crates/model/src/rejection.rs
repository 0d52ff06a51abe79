//! What a reader refused, and where.

use std::fmt;

/// Place of a record in an input file, in the unit that fits its format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// 1-based line number in a text format.
    Line(u64),
    /// Byte offset from the start of the (decompressed) input.
    Offset(u64),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Line(n) => write!(f, "line {n}"),
            Location::Offset(n) => write!(f, "byte offset {n}"),
        }
    }
}

/// One record a reader could not accept. Readers never drop input silently: each
/// rejection is counted, shown to the user and recorded in the case ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Where the record is.
    pub location: Location,
    /// The field at fault, when one can be named.
    pub field: Option<String>,
    /// Why it was refused.
    pub reason: String,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{}: field `{}`: {}", self.location, field, self.reason),
            None => write!(f, "{}: {}", self.location, self.reason),
        }
    }
}

//! The case store: one directory per investigation.
//!
//! Overview:
//! ```text
//! case/
//!   case.json          name and store format version
//!   evidence/<sha256>  inputs as given, content-addressed, read-only
//!   ledger.jsonl       append-only, hash-chained log of every step (see [`ledger`])
//!   tables/conns/      Parquet, one file per ingested input (see [`tables`])
//!   tables/packets/    per-packet timing of TCP connections (pcap inputs)
//!   tables/events/     non-connection records (alerts, protocol logs)
//!   tables/rejects/    JSON lines: every record a reader refused, with its place
//!   tables/enrich/     JSON lines per enrichment snapshot (written by `relaytrace enrich`)
//!   findings/          trace results (written by the trace crate)
//! ```
//! Values constant for a whole table file (evidence digest, vantage) are Parquet
//! key/value metadata, given back per row by [`tables::scan_rows`] (and per file by [`columns::scan_columns`]).
//! [`Case`] opens or creates a case; [`Case::ingest`] is the one write path for
//! telemetry (copy evidence, read it, write tables, then commit one ledger entry);
//! [`verify::verify`] recomputes every digest and the ledger chain.
//!
//! Crash safety: outputs are written under `tables/.tmp/` and renamed into place, and
//! the ledger entry that references them is appended last and synced. Anything not
//! referenced by the ledger is, by definition, not part of the case: readers ignore
//! it and `verify` lists it as debris of an interrupted run, and a re-run of the same
//! ingest replaces it.

pub mod case;
pub mod columns;
pub mod digest;
pub mod enrichment;
pub mod error;
pub mod findings;
pub mod ingest;
pub mod ledger;
pub mod tables;
pub mod verify;

pub use case::Case;
pub use error::StoreError;
pub use findings::{Dedup, RecordedFinding};
pub use ingest::{IngestOptions, IngestOutcome};
pub use ledger::{Ledger, LedgerEntry};
pub use verify::{verify, VerifyReport};

/// Version of this tool, written into every ledger entry so a partner knows which
/// code produced a table.
pub const TOOL_VERSION: &str = concat!("relaytrace ", env!("CARGO_PKG_VERSION"));

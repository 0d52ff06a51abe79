//! Enrichment: every address gets its AS number, AS organisation, country and
//! upstream ASes, from one immutable snapshot whose SHA-256 travels with every value.
//!
//! Overview:
//! - Sources are read by [`csv`] (`start,end,asn,org` and `start,end,country`),
//!   [`mmdb`] (MaxMind-format databases, via the `maxminddb` crate) and [`mrt`] (RIB
//!   dumps: origin AS and upstreams from AS paths). Each becomes range rows; overlaps
//!   inside one source follow the narrowest-wins rule of [`ranges`].
//! - [`SnapshotBuilder`] merges sources field by field with a documented precedence
//!   (MRT origin over registry AS data; see [`build`]) and serialises a
//!   [`BuiltSnapshot`]: one file named by its SHA-256.
//! - [`Snapshot`] loads that file with one read and answers lookups from flat tables:
//!   IPv4 by a DIR-16-8-8 table (one to three dependent loads), IPv6 by sorted
//!   segments with a /16 index ([`snapshot`] documents the layout). [`Tables`] is the
//!   borrowed hot-path view.
//! - [`npm`] pins the default datasets (npm packages of ip-location-db), checks their
//!   registry integrity hash and extracts them; [`store`] keeps snapshots in a data
//!   directory with a `current` pointer.

pub mod build;
pub mod case;
pub mod csv;
pub mod error;
pub mod mmdb;
pub mod mrt;
pub mod npm;
pub mod ranges;
pub mod snapshot;
pub mod store;
pub mod types;

pub use build::{BuiltSnapshot, Provenance, SnapshotBuilder, SourceKind, SourceReport};
pub use case::{enrich_case, hit_json, EnrichOutcome};
pub use csv::{AsnInfo, RowProblem};
pub use error::EnrichError;
pub use snapshot::{Hit, Record, Snapshot, SnapshotMeta, SourceMeta, Tables};
pub use types::{Asn, CountryCode, Family};

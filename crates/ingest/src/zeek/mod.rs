//! Zeek logs: ASCII TSV (`#fields` headers) and JSON, any Zeek version.
//!
//! Column order always comes from the log itself (`#fields` in TSV, key names in
//! JSON), never from a fixed list, so logs of Zeek 3.x to 9.x and logs with extra
//! columns read the same way. `conn` logs become [`relaytrace_model::Conn`]s; every
//! other log (ssh, http, dns, ...) becomes an [`relaytrace_model::Event`] linked by
//! `uid`. Spec: Zeek's "Logging framework" and `LogAscii` writer documentation.

mod conn_fields;
mod json;
mod tsv;

pub use json::read_json;
pub use tsv::read_tsv;

//! One module per subcommand.

pub mod case;
pub mod conns;
pub mod demo;
pub mod events;
pub mod ingest;

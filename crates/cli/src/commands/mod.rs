//! One module per subcommand.

pub mod assess;
pub mod block;
pub mod case;
pub mod conns;
pub mod data;
pub mod demo;
pub mod enrich;
pub mod events;
pub mod evidence;
pub mod ingest;
pub mod trace;
pub mod whois;

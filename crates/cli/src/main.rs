//! The `relaytrace` command: a thin layer over the pipeline crates.
//!
//! Parses arguments (clap), calls the libraries, prints results as a table, JSON
//! lines or CSV, and turns typed library errors into one-line messages. No analysis
//! logic lives here.

/// `println!` that stops printing quietly when standard output has been closed
/// (`relaytrace case log | head -1`), where `println!` panics with a backtrace; the
/// command still does its work and exits with its own status.
macro_rules! outln {
    () => { $crate::output::print_or_leave(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::output::print_or_leave(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `print!` with the same ending as [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => { $crate::output::print_or_leave(format_args!($($arg)*)) };
}

mod commands;
mod output;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc malloc: ingest allocates and frees many small strings
/// and large column buffers, where glibc's consolidation showed up as about a third
/// of `bench/ingest`'s profile.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// relaytrace — from network telemetry to a chain of evidence a sceptical partner can check.
///
/// Work happens inside a case directory: `case init` creates one, `ingest` adds
/// telemetry (Zeek, Suricata EVE, NetFlow/IPFIX, pcap), `conns` lists what was read,
/// `case verify` proves nothing was altered.
#[derive(Debug, Parser)]
#[command(name = "relaytrace", version, propagate_version = true)]
#[command(
    after_help = "Example:\n  relaytrace case init ./case\n  relaytrace ingest --case ./case --vantage victim-edge conn.log eve.json capture.pcapng\n  relaytrace conns --case ./case --host 203.0.113.7\n  relaytrace case verify ./case"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create, verify or inspect a case directory.
    #[command(subcommand)]
    Case(commands::case::CaseCommand),
    /// Read telemetry files into a case (format detected by content; gzip is fine).
    Ingest(commands::ingest::IngestArgs),
    /// List the connections of a case.
    Conns(commands::conns::ConnsArgs),
    /// List the non-connection events of a case (alerts, protocol logs).
    Events(commands::events::EventsArgs),
    /// Build the bundled demo case and run the pipeline on it end to end.
    Demo(commands::demo::DemoArgs),
    /// Fetch enrichment datasets and build snapshots, or list them.
    #[command(subcommand)]
    Data(commands::data::DataCommand),
    /// Look addresses up: prefix, ASN, AS organisation, country, snapshot digest.
    Whois(commands::whois::WhoisArgs),
    /// Add ASN, organisation and country of every address of a case (with the snapshot digest).
    Enrich(commands::enrich::EnrichArgs),
    /// Follow an attack from the victim back through relay hosts, with false-match probabilities.
    Trace(commands::trace::TraceArgs),
    /// Plan blocks from the findings (policy, allowlist, collateral) and render them for nftables, iptables, BGP, lists, STIX.
    #[command(subcommand)]
    Block(commands::block::BlockCommand),
    /// Weigh the evidence: probability per hypothesis (ICD 203 words), confidence, missing evidence.
    Assess(commands::assess::AssessArgs),
    /// Create, extend or list the case's evidence file (hypotheses and graded items).
    #[command(subcommand)]
    Evidence(commands::evidence::EvidenceCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    relaytrace_store::case::on_lock_wait(|root| {
        eprintln!(
            "waiting: another relaytrace run is writing to the case {} (it holds {}); this one goes on when it ends",
            root.display(),
            root.join(".lock").display()
        );
    });
    let result = match cli.command {
        Command::Case(cmd) => commands::case::run(cmd),
        Command::Ingest(args) => commands::ingest::run(args),
        Command::Conns(args) => commands::conns::run(args),
        Command::Events(args) => commands::events::run(args),
        Command::Demo(args) => commands::demo::run(args),
        Command::Data(cmd) => commands::data::run(cmd),
        Command::Whois(args) => commands::whois::run(args),
        Command::Enrich(args) => commands::enrich::run(args),
        Command::Trace(args) => commands::trace::run(args),
        Command::Block(cmd) => commands::block::run(cmd),
        Command::Assess(args) => commands::assess::run(args),
        Command::Evidence(cmd) => commands::evidence::run(cmd),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", friendly(&e));
            ExitCode::from(2)
        }
    }
}

/// An error and its causes on one line, each cause said once: the typed errors of the
/// crates already put their source's text in their own message (`{path}: {source}`),
/// so printing the chain as it is (`{:#}`) said it twice.
fn friendly(e: &anyhow::Error) -> String {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !msg.contains(&c) {
            msg.push_str(": ");
            msg.push_str(&c);
        }
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::friendly;
    use anyhow::Context as _;

    #[test]
    fn each_cause_is_said_once() {
        /// Like the crates' typed errors: its message holds its source's.
        #[derive(Debug)]
        struct Typed {
            source: std::io::Error,
        }
        impl std::fmt::Display for Typed {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "case.toml: {}", self.source)
            }
        }
        impl std::error::Error for Typed {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.source)
            }
        }
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e = anyhow::Error::from(Typed { source: io });
        assert_eq!(friendly(&e), "case.toml: no such file");
        // A context whose text does not hold its cause still shows it.
        let e: anyhow::Result<()> = Err(std::io::Error::other("disk full")).context("writing x");
        assert_eq!(friendly(&e.unwrap_err()), "writing x: disk full");
    }
}

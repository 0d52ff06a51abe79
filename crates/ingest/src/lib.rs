//! Telemetry readers.
//!
//! Overview: [`detect::detect_format`] looks at the first bytes of an input (after
//! transparent gunzip, see [`input::open_input`]) and names its [`Format`]; [`read`]
//! runs the matching reader, which streams records into a [`Sink`]:
//! connections ([`relaytrace_model::Conn`]), packet timelines, events, and
//! rejections. A reader never stops at a bad record: it reports it and goes on, and
//! the [`ReadSummary`] says "N read, M rejected".
//!
//! Readers, one module each, named after the format:
//! - [`zeek`]: Zeek TSV (`#fields` headers) and JSON logs;
//! - [`eve`]: Suricata EVE JSON;
//! - [`netflow`]: NetFlow v5, v9 and IPFIX export payloads (raw, or inside a capture
//!   of export traffic: [`Format::NetflowPcap`]);
//! - [`pcap`]: pcap and pcapng captures, with connection tracking.

pub mod detect;
pub mod error;
pub mod eve;
pub mod input;
pub mod lines;
pub mod netflow;
pub mod pcap;
pub mod stitch;
pub mod zeek;

use std::io::BufRead;

pub use detect::{detect_format, Format};
pub use error::IngestError;
use relaytrace_model::{Conn, Event, PacketTimeline, Rejection};

/// Receives what a reader produces. The store implements it to write tables; tests
/// implement it with vectors.
pub trait Sink {
    /// A connection was read.
    fn conn(&mut self, conn: Conn) -> std::io::Result<()>;
    /// A packet timeline for the connection whose `record` is `timeline.conn_record`.
    fn timeline(&mut self, timeline: PacketTimeline) -> std::io::Result<()>;
    /// A non-connection record was read.
    fn event(&mut self, event: Event) -> std::io::Result<()>;
    /// A record was refused.
    fn reject(&mut self, rejection: Rejection) -> std::io::Result<()>;
}

/// Counts of one reader run, recorded in the case ledger.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadSummary {
    /// Records accepted (connections + events).
    pub read: u64,
    /// Records refused (each also went to [`Sink::reject`]).
    pub rejected: u64,
    /// Connections among `read`.
    pub conns: u64,
    /// Events among `read` (the readers' summaries of a whole input, such as
    /// `pcap-stats`, are stored as events but counted in neither: see
    /// `relaytrace_model::READER_SUMMARY_KINDS`).
    pub events: u64,
    /// Packet timelines emitted.
    pub timelines: u64,
    /// Flow records merged into an earlier record of the same flow (NetFlow/IPFIX
    /// active-timeout splits, see [`stitch`]); not counted in `read`.
    pub merged: u64,
    /// NetFlow v9/IPFIX template records learned; a template-only file is read
    /// even though it yields no connection.
    pub templates: u64,
}

/// A [`Sink`] wrapper that keeps the [`ReadSummary`] counts, so no reader has to.
pub struct CountingSink<'a, S: Sink + ?Sized> {
    inner: &'a mut S,
    /// The counts so far.
    pub summary: ReadSummary,
}

impl<'a, S: Sink + ?Sized> CountingSink<'a, S> {
    /// Wraps `inner` with zeroed counts.
    pub fn new(inner: &'a mut S) -> Self {
        CountingSink {
            inner,
            summary: ReadSummary::default(),
        }
    }
}

impl<S: Sink + ?Sized> Sink for CountingSink<'_, S> {
    fn conn(&mut self, conn: Conn) -> std::io::Result<()> {
        self.summary.read += 1;
        self.summary.conns += 1;
        self.inner.conn(conn)
    }
    fn timeline(&mut self, timeline: PacketTimeline) -> std::io::Result<()> {
        self.summary.timelines += 1;
        self.inner.timeline(timeline)
    }
    fn event(&mut self, event: Event) -> std::io::Result<()> {
        // A reader's summary of the whole input is no record of it: a capture whose
        // every packet was lost must read as "0 read", not as one.
        if !event.is_reader_summary() {
            self.summary.read += 1;
            self.summary.events += 1;
        }
        self.inner.event(event)
    }
    fn reject(&mut self, rejection: Rejection) -> std::io::Result<()> {
        self.summary.rejected += 1;
        self.inner.reject(rejection)
    }
}

/// Options shared by all readers.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// NetFlow: templates learned from earlier files of the same ingest run, so that
    /// data files can follow their template files.
    pub netflow_templates: netflow::TemplateCache,
    /// pcap: checksum handling (Zeek's `-C`).
    pub pcap: pcap::PcapOptions,
    /// Evidence digests whose NetFlow templates are in `netflow_templates`, in the
    /// order they were read; the store records them with each NetFlow ingest so a
    /// re-analysis knows which files a data file's decoding depended on.
    pub netflow_template_sources: Vec<String>,
}

/// Reads one input of a known format into `sink`.
///
/// Errors are only returned for conditions that stop the whole input (I/O failure,
/// sink failure); bad records are rejections.
pub fn read(
    format: Format,
    input: &mut dyn BufRead,
    options: &mut ReadOptions,
    sink: &mut dyn Sink,
) -> Result<ReadSummary, IngestError> {
    let mut counting = CountingSink::new(sink);
    match format {
        Format::ZeekTsv => zeek::read_tsv(input, &mut counting)?,
        Format::ZeekJson => zeek::read_json(input, &mut counting)?,
        Format::SuricataEve => eve::read(input, &mut counting)?,
        Format::NetflowPayloads => {
            let before = options.netflow_templates.stored();
            let mut stitcher = stitch::Stitcher::new(&mut counting);
            netflow::read_payloads(input, &mut options.netflow_templates, &mut stitcher)?;
            let merged = stitcher.finish()?;
            counting.summary.merged = merged;
            counting.summary.templates = options.netflow_templates.stored() - before;
        }
        Format::Pcap | Format::PcapNg => pcap::read_with(input, &mut counting, options.pcap)?,
        Format::NetflowPcap => {
            let pcap_options = pcap::PcapOptions {
                netflow_export: true,
                ..options.pcap
            };
            let mut stitcher = stitch::Stitcher::new(&mut counting);
            pcap::read_with(input, &mut stitcher, pcap_options)?;
            counting.summary.merged = stitcher.finish()?;
        }
    }
    Ok(counting.summary)
}

/// A [`Sink`] that keeps nothing: for replaying evidence already in a case only to
/// learn its NetFlow templates (its records were counted when it was ingested).
#[derive(Debug, Default)]
pub struct DiscardSink;

impl Sink for DiscardSink {
    fn conn(&mut self, _: Conn) -> std::io::Result<()> {
        Ok(())
    }
    fn timeline(&mut self, _: PacketTimeline) -> std::io::Result<()> {
        Ok(())
    }
    fn event(&mut self, _: Event) -> std::io::Result<()> {
        Ok(())
    }
    fn reject(&mut self, _: Rejection) -> std::io::Result<()> {
        Ok(())
    }
}

/// A [`Sink`] that keeps everything in memory; for tests and small inputs.
#[derive(Debug, Default)]
pub struct VecSink {
    /// Connections in order.
    pub conns: Vec<Conn>,
    /// Timelines in order.
    pub timelines: Vec<PacketTimeline>,
    /// Events in order.
    pub events: Vec<Event>,
    /// Rejections in order.
    pub rejections: Vec<Rejection>,
}

impl VecSink {
    /// The records it received, as [`ReadSummary::read`] counts them: connections and
    /// events, but not a reader's summary of the whole input (`pcap-stats`...). The
    /// fuzz targets check the two agree: nothing is dropped or counted silently.
    pub fn records_read(&self) -> usize {
        self.conns.len()
            + self
                .events
                .iter()
                .filter(|e| !e.is_reader_summary())
                .count()
    }
}

impl Sink for VecSink {
    fn conn(&mut self, conn: Conn) -> std::io::Result<()> {
        self.conns.push(conn);
        Ok(())
    }
    fn timeline(&mut self, timeline: PacketTimeline) -> std::io::Result<()> {
        self.timelines.push(timeline);
        Ok(())
    }
    fn event(&mut self, event: Event) -> std::io::Result<()> {
        self.events.push(event);
        Ok(())
    }
    fn reject(&mut self, rejection: Rejection) -> std::io::Result<()> {
        self.rejections.push(rejection);
        Ok(())
    }
}

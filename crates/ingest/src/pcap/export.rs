//! NetFlow/IPFIX export traffic inside a capture (a capture taken at a collector).
//!
//! Each UDP payload is handed to the NetFlow decoder with the template cache of its
//! exporter, known here from the packet's source address (raw payload files lack
//! it). A record's `record` is the byte offset of its frame's record in the capture
//! plus its position in the UDP payload: unique in the file, and it points into the
//! frame that carried it.

use std::collections::HashMap;
use std::io::Cursor;
use std::net::IpAddr;

use relaytrace_model::{Conn, Event, PacketTimeline, Rejection};

use super::ip::IpPacket;
use super::reader::{read_capture, Frame};
use super::transport::Segment;
use super::PcapOptions;
use crate::detect::looks_like_netflow;
use crate::netflow::{self, TemplateCache};
use crate::{IngestError, Sink};

/// Exporters tracked at most; their addresses come from the input, so the table is
/// bounded. Datagrams of further exporters are decoded without templates of their own
/// (v5 still decodes; v9/IPFIX data is then rejected as "template unknown").
const MAX_EXPORTERS: usize = 1024;

/// Decodes export datagrams, keeping templates per exporter address.
#[derive(Default)]
pub(crate) struct ExportCollector {
    templates: HashMap<IpAddr, TemplateCache>,
    overflow: TemplateCache,
    datagrams: u64,
    other_packets: u64,
}

impl ExportCollector {
    /// One decoded packet of the capture.
    pub(crate) fn packet(
        &mut self,
        frame: &Frame<'_>,
        packet: &IpPacket<'_>,
        segment: &Segment,
        sink: &mut dyn Sink,
    ) -> Result<(), IngestError> {
        let Segment::Udp(udp) = segment else {
            self.other_packets += 1;
            return Ok(());
        };
        let end = usize::from(udp.ulen).clamp(8, packet.payload.len().max(8));
        let payload = packet.payload.get(8..end).unwrap_or(&[]);
        if !looks_like_netflow(payload) {
            self.other_packets += 1;
            return Ok(());
        }
        self.datagrams += 1;
        let cache =
            if self.templates.len() < MAX_EXPORTERS || self.templates.contains_key(&packet.src) {
                self.templates.entry(packet.src).or_default()
            } else {
                &mut self.overflow
            };
        netflow::read_datagram(payload, frame.offset, cache, sink)?;
        Ok(())
    }

    /// Reports what the capture held, so packets that were not export datagrams are
    /// counted rather than silently ignored.
    pub(crate) fn finish(self, sink: &mut dyn Sink) -> Result<(), IngestError> {
        let json = serde_json::json!({
            "export_datagrams": self.datagrams,
            "other_packets": self.other_packets,
            "exporters": self.templates.len(),
        });
        sink.event(Event {
            kind: "netflow-export-stats".into(),
            ts_ns: None,
            uid: None,
            community_id: None,
            json: json.to_string(),
            record: relaytrace_model::NETFLOW_EXPORT_STATS_RECORD,
        })?;
        Ok(())
    }
}

/// Collects only the export statistics event; everything else is discarded.
#[derive(Default)]
struct ProbeSink {
    stats: Option<serde_json::Value>,
}

impl Sink for ProbeSink {
    fn conn(&mut self, _: Conn) -> std::io::Result<()> {
        Ok(())
    }
    fn timeline(&mut self, _: PacketTimeline) -> std::io::Result<()> {
        Ok(())
    }
    fn event(&mut self, event: Event) -> std::io::Result<()> {
        if event.kind == "netflow-export-stats" {
            self.stats = serde_json::from_str(&event.json).ok();
        }
        Ok(())
    }
    fn reject(&mut self, _: Rejection) -> std::io::Result<()> {
        Ok(())
    }
}

/// See [`super::looks_like_export_capture`]. Runs the real pipeline in export mode
/// over the prefix (its truncated last frame is harmless here).
pub(crate) fn probe(head: &[u8]) -> bool {
    let mut sink = ProbeSink::default();
    let options = PcapOptions {
        ignore_checksums: true,
        netflow_export: true,
    };
    if read_capture(&mut Cursor::new(head), &mut sink, options).is_err() {
        return false;
    }
    let count = |k: &str| {
        sink.stats
            .as_ref()
            .and_then(|s| s.get(k))
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0)
    };
    count("export_datagrams") > 0 && count("other_packets") == 0
}

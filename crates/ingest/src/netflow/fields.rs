//! The IANA Information Elements we understand (IANA "IPFIX Information Elements"
//! registry; NetFlow v9 field types 1–127 share these numbers, RFC 3954 §8), with
//! their names and how to render their values as JSON.
//!
//! Elements not listed here are still kept in event JSON, as hex under `ie<N>` (or
//! `e<PEN>.<N>` for enterprise elements): we never guess the type of a field we do
//! not know.

use std::net::{Ipv4Addr, Ipv6Addr};

use serde_json::Value;

use super::cursor::be_uint;
use super::template::FieldSpec;

/// octetDeltaCount: IP-level bytes since the previous report of this flow.
pub(super) const OCTET_DELTA_COUNT: u16 = 1;
/// packetDeltaCount.
pub(super) const PACKET_DELTA_COUNT: u16 = 2;
/// protocolIdentifier: IANA IP protocol number.
pub(super) const PROTOCOL_IDENTIFIER: u16 = 4;
/// sourceTransportPort.
pub(super) const SOURCE_TRANSPORT_PORT: u16 = 7;
/// sourceIPv4Address.
pub(super) const SOURCE_IPV4_ADDRESS: u16 = 8;
/// destinationTransportPort.
pub(super) const DESTINATION_TRANSPORT_PORT: u16 = 11;
/// destinationIPv4Address.
pub(super) const DESTINATION_IPV4_ADDRESS: u16 = 12;
/// flowEndSysUpTime: ms of exporter uptime (v9: LAST_SWITCHED).
pub(super) const FLOW_END_SYS_UP_TIME: u16 = 21;
/// flowStartSysUpTime: ms of exporter uptime (v9: FIRST_SWITCHED).
pub(super) const FLOW_START_SYS_UP_TIME: u16 = 22;
/// sourceIPv6Address.
pub(super) const SOURCE_IPV6_ADDRESS: u16 = 27;
/// destinationIPv6Address.
pub(super) const DESTINATION_IPV6_ADDRESS: u16 = 28;
/// icmpTypeCodeIPv4: type * 256 + code.
pub(super) const ICMP_TYPE_CODE_IPV4: u16 = 32;
/// octetTotalCount: IP-level bytes since the flow began.
pub(super) const OCTET_TOTAL_COUNT: u16 = 85;
/// packetTotalCount.
pub(super) const PACKET_TOTAL_COUNT: u16 = 86;
/// icmpTypeCodeIPv6: type * 256 + code.
pub(super) const ICMP_TYPE_CODE_IPV6: u16 = 139;
/// flowStartSeconds (dateTimeSeconds).
pub(super) const FLOW_START_SECONDS: u16 = 150;
/// flowEndSeconds.
pub(super) const FLOW_END_SECONDS: u16 = 151;
/// flowStartMilliseconds (dateTimeMilliseconds, Unix epoch).
pub(super) const FLOW_START_MILLISECONDS: u16 = 152;
/// flowEndMilliseconds.
pub(super) const FLOW_END_MILLISECONDS: u16 = 153;
/// flowStartMicroseconds (dateTimeMicroseconds: NTP format, RFC 7011 §6.1.9).
pub(super) const FLOW_START_MICROSECONDS: u16 = 154;
/// flowEndMicroseconds.
pub(super) const FLOW_END_MICROSECONDS: u16 = 155;
/// flowStartNanoseconds (dateTimeNanoseconds: NTP format, RFC 7011 §6.1.10).
pub(super) const FLOW_START_NANOSECONDS: u16 = 156;
/// flowEndNanoseconds.
pub(super) const FLOW_END_NANOSECONDS: u16 = 157;
/// flowStartDeltaMicroseconds: µs before the message's export time.
pub(super) const FLOW_START_DELTA_MICROSECONDS: u16 = 158;
/// flowEndDeltaMicroseconds.
pub(super) const FLOW_END_DELTA_MICROSECONDS: u16 = 159;
/// systemInitTimeMilliseconds: base of flowStart/EndSysUpTime in IPFIX.
pub(super) const SYSTEM_INIT_TIME_MILLISECONDS: u16 = 160;
/// icmpTypeIPv4.
pub(super) const ICMP_TYPE_IPV4: u16 = 176;
/// icmpCodeIPv4.
pub(super) const ICMP_CODE_IPV4: u16 = 177;
/// icmpTypeIPv6.
pub(super) const ICMP_TYPE_IPV6: u16 = 178;
/// icmpCodeIPv6.
pub(super) const ICMP_CODE_IPV6: u16 = 179;

/// Private Enterprise Number under which RFC 5103 defines reverse-direction IEs
/// (same numbers as the forward IEs) for biflows.
pub(super) const REVERSE_PEN: u32 = 29305;

/// How a field's bytes are shown in event JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Unsigned integer of any width up to 8 bytes (reduced-size encoding).
    Unsigned,
    /// IPv4 or IPv6 address, by length.
    Address,
    /// 6-byte MAC address.
    Mac,
    /// UTF-8 string, trailing NULs removed (fixed-length v9 strings are NUL-padded).
    Text,
}

/// Known IEs: number, IANA name, kind. Sorted by number (binary-searched).
const KNOWN: &[(u16, &str, Kind)] = &[
    (1, "octetDeltaCount", Kind::Unsigned),
    (2, "packetDeltaCount", Kind::Unsigned),
    (3, "deltaFlowCount", Kind::Unsigned),
    (4, "protocolIdentifier", Kind::Unsigned),
    (5, "ipClassOfService", Kind::Unsigned),
    (6, "tcpControlBits", Kind::Unsigned),
    (7, "sourceTransportPort", Kind::Unsigned),
    (8, "sourceIPv4Address", Kind::Address),
    (9, "sourceIPv4PrefixLength", Kind::Unsigned),
    (10, "ingressInterface", Kind::Unsigned),
    (11, "destinationTransportPort", Kind::Unsigned),
    (12, "destinationIPv4Address", Kind::Address),
    (13, "destinationIPv4PrefixLength", Kind::Unsigned),
    (14, "egressInterface", Kind::Unsigned),
    (15, "ipNextHopIPv4Address", Kind::Address),
    (16, "bgpSourceAsNumber", Kind::Unsigned),
    (17, "bgpDestinationAsNumber", Kind::Unsigned),
    (18, "bgpNextHopIPv4Address", Kind::Address),
    (19, "postMCastPacketDeltaCount", Kind::Unsigned),
    (20, "postMCastOctetDeltaCount", Kind::Unsigned),
    (21, "flowEndSysUpTime", Kind::Unsigned),
    (22, "flowStartSysUpTime", Kind::Unsigned),
    (23, "postOctetDeltaCount", Kind::Unsigned),
    (24, "postPacketDeltaCount", Kind::Unsigned),
    (25, "minimumIpTotalLength", Kind::Unsigned),
    (26, "maximumIpTotalLength", Kind::Unsigned),
    (27, "sourceIPv6Address", Kind::Address),
    (28, "destinationIPv6Address", Kind::Address),
    (29, "sourceIPv6PrefixLength", Kind::Unsigned),
    (30, "destinationIPv6PrefixLength", Kind::Unsigned),
    (31, "flowLabelIPv6", Kind::Unsigned),
    (32, "icmpTypeCodeIPv4", Kind::Unsigned),
    (33, "igmpType", Kind::Unsigned),
    (34, "samplingInterval", Kind::Unsigned),
    (35, "samplingAlgorithm", Kind::Unsigned),
    (36, "flowActiveTimeout", Kind::Unsigned),
    (37, "flowIdleTimeout", Kind::Unsigned),
    (38, "engineType", Kind::Unsigned),
    (39, "engineId", Kind::Unsigned),
    (40, "exportedOctetTotalCount", Kind::Unsigned),
    (41, "exportedMessageTotalCount", Kind::Unsigned),
    (42, "exportedFlowRecordTotalCount", Kind::Unsigned),
    (52, "minimumTTL", Kind::Unsigned),
    (53, "maximumTTL", Kind::Unsigned),
    (55, "postIpClassOfService", Kind::Unsigned),
    (56, "sourceMacAddress", Kind::Mac),
    (57, "postDestinationMacAddress", Kind::Mac),
    (58, "vlanId", Kind::Unsigned),
    (59, "postVlanId", Kind::Unsigned),
    (60, "ipVersion", Kind::Unsigned),
    (61, "flowDirection", Kind::Unsigned),
    (62, "ipNextHopIPv6Address", Kind::Address),
    (63, "bgpNextHopIPv6Address", Kind::Address),
    (80, "destinationMacAddress", Kind::Mac),
    (81, "postSourceMacAddress", Kind::Mac),
    (82, "interfaceName", Kind::Text),
    (83, "interfaceDescription", Kind::Text),
    (84, "samplerName", Kind::Text),
    (85, "octetTotalCount", Kind::Unsigned),
    (86, "packetTotalCount", Kind::Unsigned),
    (89, "forwardingStatus", Kind::Unsigned),
    (94, "applicationDescription", Kind::Text),
    (96, "applicationName", Kind::Text),
    (136, "flowEndReason", Kind::Unsigned),
    (139, "icmpTypeCodeIPv6", Kind::Unsigned),
    (143, "meteringProcessId", Kind::Unsigned),
    (144, "exportingProcessId", Kind::Unsigned),
    (148, "flowId", Kind::Unsigned),
    (150, "flowStartSeconds", Kind::Unsigned),
    (151, "flowEndSeconds", Kind::Unsigned),
    (152, "flowStartMilliseconds", Kind::Unsigned),
    (153, "flowEndMilliseconds", Kind::Unsigned),
    (154, "flowStartMicroseconds", Kind::Unsigned),
    (155, "flowEndMicroseconds", Kind::Unsigned),
    (156, "flowStartNanoseconds", Kind::Unsigned),
    (157, "flowEndNanoseconds", Kind::Unsigned),
    (158, "flowStartDeltaMicroseconds", Kind::Unsigned),
    (159, "flowEndDeltaMicroseconds", Kind::Unsigned),
    (160, "systemInitTimeMilliseconds", Kind::Unsigned),
    (176, "icmpTypeIPv4", Kind::Unsigned),
    (177, "icmpCodeIPv4", Kind::Unsigned),
    (178, "icmpTypeIPv6", Kind::Unsigned),
    (179, "icmpCodeIPv6", Kind::Unsigned),
    (225, "postNATSourceIPv4Address", Kind::Address),
    (226, "postNATDestinationIPv4Address", Kind::Address),
    (227, "postNAPTSourceTransportPort", Kind::Unsigned),
    (228, "postNAPTDestinationTransportPort", Kind::Unsigned),
    (233, "firewallEvent", Kind::Unsigned),
    (234, "ingressVRFID", Kind::Unsigned),
    (235, "egressVRFID", Kind::Unsigned),
    (236, "VRFname", Kind::Text),
    (281, "postNATSourceIPv6Address", Kind::Address),
    (282, "postNATDestinationIPv6Address", Kind::Address),
    (302, "selectorId", Kind::Unsigned),
    (304, "selectorAlgorithm", Kind::Unsigned),
    (305, "samplingPacketInterval", Kind::Unsigned),
    (306, "samplingPacketSpace", Kind::Unsigned),
    (323, "observationTimeMilliseconds", Kind::Unsigned),
];

/// NetFlow v9 options scope field types (RFC 3954 §6.1), a numbering of their own.
const V9_SCOPES: &[(u16, &str)] = &[
    (1, "scopeSystem"),
    (2, "scopeInterface"),
    (3, "scopeLineCard"),
    (4, "scopeCache"),
    (5, "scopeTemplate"),
];

fn known(ie: u16) -> Option<(&'static str, Kind)> {
    KNOWN
        .binary_search_by_key(&ie, |(n, _, _)| *n)
        .ok()
        .and_then(|i| KNOWN.get(i))
        .map(|(_, name, kind)| (*name, *kind))
}

/// The JSON key for a field: IANA name, `reverse<Name>` for RFC 5103 reverse IEs,
/// `ie<N>` / `e<PEN>.<N>` when unknown, `scope<Type>` for v9 scope fields.
pub(super) fn name(version: u16, spec: &FieldSpec) -> String {
    if spec.scope && version == 9 {
        return V9_SCOPES
            .iter()
            .find(|(n, _)| *n == spec.ie)
            .map_or_else(|| format!("scope{}", spec.ie), |(_, s)| (*s).to_string());
    }
    match (spec.pen, known(spec.ie)) {
        (None, Some((name, _))) => name.to_string(),
        (None, None) => format!("ie{}", spec.ie),
        (Some(REVERSE_PEN), Some((name, _))) => {
            let mut chars = name.chars();
            let first = chars.next().map(|c| c.to_ascii_uppercase());
            format!(
                "reverse{}{}",
                first.map(String::from).unwrap_or_default(),
                chars.as_str()
            )
        }
        (Some(pen), _) => format!("e{pen}.{}", spec.ie),
    }
}

/// The JSON value of a field: typed when the IE is known and its length fits the
/// type, a lowercase hex string otherwise (so nothing is lost or invented).
pub(super) fn value(version: u16, spec: &FieldSpec, bytes: &[u8]) -> Value {
    let kind = if spec.scope && version == 9 {
        Some(Kind::Unsigned)
    } else {
        match spec.pen {
            None | Some(REVERSE_PEN) => known(spec.ie).map(|(_, k)| k),
            Some(_) => None,
        }
    };
    let typed = match kind {
        Some(Kind::Unsigned) => be_uint(bytes).map(Value::from),
        Some(Kind::Address) => address_string(bytes).map(Value::from),
        Some(Kind::Mac) if bytes.len() == 6 => Some(Value::from(
            bytes
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":"),
        )),
        Some(Kind::Text) => {
            let trimmed = bytes
                .iter()
                .rposition(|b| *b != 0)
                .and_then(|last| bytes.get(..=last))
                .unwrap_or(&[]);
            Some(Value::from(String::from_utf8_lossy(trimmed).into_owned()))
        }
        _ => None,
    };
    typed.unwrap_or_else(|| Value::from(hex(bytes)))
}

/// An IPv4 (4 bytes) or IPv6 (16 bytes) address; `None` for any other length.
pub(super) fn address(bytes: &[u8]) -> Option<std::net::IpAddr> {
    if let Ok(b) = <[u8; 4]>::try_from(bytes) {
        return Some(Ipv4Addr::from(b).into());
    }
    <[u8; 16]>::try_from(bytes)
        .ok()
        .map(|b| Ipv6Addr::from(b).into())
}

fn address_string(bytes: &[u8]) -> Option<String> {
    address(bytes).map(|a| a.to_string())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(ie: u16, pen: Option<u32>, len: u16) -> FieldSpec {
        FieldSpec {
            ie,
            pen,
            len,
            scope: false,
        }
    }

    #[test]
    fn table_is_sorted_for_binary_search() {
        assert!(KNOWN.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn names() {
        assert_eq!(name(10, &spec(8, None, 4)), "sourceIPv4Address");
        assert_eq!(
            name(10, &spec(1, Some(REVERSE_PEN), 8)),
            "reverseOctetDeltaCount"
        );
        assert_eq!(name(10, &spec(1, Some(6876), 8)), "e6876.1");
        assert_eq!(name(9, &spec(40000, None, 2)), "ie40000");
        let scope = FieldSpec {
            scope: true,
            ..spec(1, None, 4)
        };
        assert_eq!(name(9, &scope), "scopeSystem");
        assert_eq!(name(10, &scope), "octetDeltaCount", "IPFIX scopes are IEs");
    }

    #[test]
    fn values() {
        let v = |ie, bytes: &[u8]| value(10, &spec(ie, None, 0), bytes);
        assert_eq!(v(1, &[0x01, 0x04]), Value::from(260u64), "reduced size");
        assert_eq!(v(8, &[192, 168, 253, 1]), Value::from("192.168.253.1"));
        assert_eq!(v(8, &[192, 168]), Value::from("c0a8"), "bad length -> hex");
        assert_eq!(
            v(56, &[0x00, 0x50, 0x56, 0xc0, 0x00, 0x01]),
            Value::from("00:50:56:c0:00:01")
        );
        assert_eq!(v(82, b"eth0\0\0"), Value::from("eth0"));
        assert_eq!(v(9999, &[0xde, 0xad]), Value::from("dead"));
        assert_eq!(
            value(10, &spec(1, Some(9), 2), &[0, 1]),
            Value::from("0001"),
            "unknown enterprise IE is never typed"
        );
    }
}

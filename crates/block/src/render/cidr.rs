//! Plain CIDR lists, the format firewalls fetch as "external dynamic lists": one
//! prefix per line; `#` starts a comment, here carrying reason and expiry.

use std::fmt::Write;

use super::{active, expired, header, rule_comment, RenderContext};
use crate::plan::Plan;

/// One line per rule in force.
pub fn render(plan: &Plan, cx: &RenderContext) -> String {
    let mut out = header(plan, cx, "#");
    for r in active(plan, cx.now_ns) {
        let _ = writeln!(
            out,
            "{} # {}; expires {}",
            r.prefix,
            rule_comment(r),
            relaytrace_model::format_iso8601_us(r.expires_ns)
        );
    }
    out
}

/// The prefixes that have run out, for whoever maintains the list by hand.
pub fn removal(plan: &Plan, cx: &RenderContext) -> String {
    let mut out = header(plan, cx, "#");
    out.push_str("# expired: remove these lines\n");
    for r in expired(plan, cx.now_ns) {
        let _ = writeln!(
            out,
            "{} # expired {}",
            r.prefix,
            relaytrace_model::format_iso8601_us(r.expires_ns)
        );
    }
    out
}

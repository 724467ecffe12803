//! What a backend did with one packet, in terms every backend shares.

use serde::Serialize;
use std::fmt;

/// `enum xdp_action` (include/uapi/linux/bpf.h).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum XdpAction {
    Aborted,
    Drop,
    Pass,
    Tx,
    Redirect,
    /// A return value outside the enum; the kernel treats it as an invalid
    /// action (bpf_warn_invalid_xdp_action) and drops the frame.
    Invalid(u32),
}

impl XdpAction {
    pub fn from_retval(v: u32) -> XdpAction {
        match v {
            0 => XdpAction::Aborted,
            1 => XdpAction::Drop,
            2 => XdpAction::Pass,
            3 => XdpAction::Tx,
            4 => XdpAction::Redirect,
            v => XdpAction::Invalid(v),
        }
    }

    pub fn parse(s: &str) -> Option<XdpAction> {
        Some(match s.to_ascii_uppercase().trim_start_matches("XDP_") {
            "ABORTED" => XdpAction::Aborted,
            "DROP" => XdpAction::Drop,
            "PASS" => XdpAction::Pass,
            "TX" => XdpAction::Tx,
            "REDIRECT" => XdpAction::Redirect,
            _ => return None,
        })
    }
}

impl fmt::Display for XdpAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            XdpAction::Aborted => f.write_str("ABORTED"),
            XdpAction::Drop => f.write_str("DROP"),
            XdpAction::Pass => f.write_str("PASS"),
            XdpAction::Tx => f.write_str("TX"),
            XdpAction::Redirect => f.write_str("REDIRECT"),
            XdpAction::Invalid(v) => write!(f, "INVALID({v})"),
        }
    }
}

/// The per-packet outcome of any backend. An engine fault and a packet the
/// backend could not run are kept apart from a program-returned ABORTED.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Verdict {
    Action {
        action: XdpAction,
    },
    /// The engine's sandbox stopped the program.
    Fault {
        message: String,
        insn: usize,
    },
    /// The backend refused the frame before running (e.g. shorter than 14
    /// bytes under test-run).
    NotRun {
        reason: String,
    },
    /// The backend itself failed on this packet.
    Error {
        message: String,
    },
}

impl Verdict {
    /// The short label used in summaries and `--write-pcap`.
    pub fn label(&self) -> String {
        match self {
            Verdict::Action { action } => action.to_string(),
            Verdict::Fault { .. } => "FAULT".into(),
            Verdict::NotRun { .. } => "NOT_RUN".into(),
            Verdict::Error { .. } => "ERROR".into(),
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Action { action } => write!(f, "{action}"),
            Verdict::Fault { message, .. } => write!(f, "FAULT: {message}"),
            Verdict::NotRun { reason } => write!(f, "NOT RUN: {reason}"),
            Verdict::Error { message } => write!(f, "ERROR: {message}"),
        }
    }
}

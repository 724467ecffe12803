//! The NIC model: would an XDP/TC program be accepted for hardware offload
//! (Netronome nfp, netdevsim, hXDP), and if not, where and why; plus RSS.
//!
//! Rules and constants are documented, with their kernel and firmware sources,
//! in `docs/offload-rules.md`; `tests/rules_documented.rs` keeps it in step
//! with [`rules::RuleId`].

pub mod absint;
pub mod check;
pub mod disasm;
pub mod fuse48;
pub mod opcode;
pub mod perf;
pub mod profile;
pub mod program;
pub mod report;
pub mod rss;
pub mod rules;
pub mod vliw;

pub use check::{check, check_with, CheckOptions};
pub use perf::{estimate, Estimate, TraceSummary};
pub use profile::{Profile, ProfileError};
pub use program::{Insn, MapDef, ProgramSpec};
pub use report::{plural, Finding, Offloadability, Report, Severity};
pub use rules::RuleId;

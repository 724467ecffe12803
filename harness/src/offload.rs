//! The offload verdict as xdpqual reports it: the NIC model's checker
//! (`nic_model::check`), plus the host kernel's verifier where this machine
//! can ask it. Offloading loads a program with the same `BPF_PROG_LOAD`, and
//! the core verifier runs before (and around) the device's hooks
//! (kernel/bpf/syscall.c `bpf_prog_load()`, kernel/bpf/verifier.c
//! `bpf_check()`), so a program the host verifier refuses is not offloadable
//! to any NIC: rule KERNEL-VERIFIER (docs/offload-rules.md §4).

use nic_model::{Finding, Profile, Report, RuleId, Severity};

use crate::backends::host::{HostBackend, SessionOutcome};
use crate::program::{Object, Program};

/// What the host kernel's verifier said about the program.
#[derive(Debug, Clone, PartialEq)]
pub enum HostVerdict {
    Accepted {
        kernel: String,
    },
    Rejected {
        kernel: String,
        message: String,
        insn: Option<usize>,
    },
    /// The host backend cannot run here (capabilities, no bpf(2)), the load
    /// failed for a reason that is not the verifier's (a map the kernel
    /// cannot create, say), or the refusal is about the kernel's build (a
    /// helper it does not offer): the verifier did not decide.
    NotAsked {
        why: String,
    },
}

impl HostVerdict {
    /// One line for the reports.
    pub fn line(&self) -> String {
        match self {
            HostVerdict::Accepted { kernel } => {
                format!("the host kernel's verifier ({kernel}) accepts the program")
            }
            HostVerdict::Rejected { kernel, message, .. } => {
                format!("the host kernel's verifier ({kernel}) rejects the program: {message}")
            }
            HostVerdict::NotAsked { why } => {
                format!("the host kernel's verifier did not decide ({why})")
            }
        }
    }
}

/// Loads the program into the running kernel (and unloads it) to learn the
/// verifier's verdict.
pub fn host_verdict(obj: &Object, prog: &Program) -> HostVerdict {
    let host = match HostBackend::open() {
        Ok(h) => h,
        Err(e) => return HostVerdict::NotAsked { why: e.to_string() },
    };
    let kernel = host.kernel_release().to_string();
    match host.load(obj, prog) {
        Ok(SessionOutcome::Ready(_)) => HostVerdict::Accepted { kernel },
        // A helper this kernel's build does not offer to the program type is
        // a property of the build, not of the program (as the host cell
        // treats it, backends/host/prog.rs Rejection::helper_not_offered):
        // it does not decide offloadability.
        Ok(SessionOutcome::Rejected(r)) if r.rejection.helper_not_offered().is_some() => {
            HostVerdict::NotAsked {
                why: format!(
                    "kernel {kernel} does not offer {} to this program type, a property of its build, not of the program",
                    r.rejection.helper_not_offered().unwrap_or_default()
                ),
            }
        }
        Ok(SessionOutcome::Rejected(r)) => HostVerdict::Rejected {
            kernel,
            message: r
                .rejection
                .first_error_line
                .clone()
                .unwrap_or_else(|| format!("{} (no error line in the log)", r.rejection.errno)),
            insn: r.rejection.insn,
        },
        Err(e) => HostVerdict::NotAsked { why: format!("{e:#}") },
    }
}

/// The checker's report on `profile`, with the host verifier's refusal
/// added as a KERNEL-VERIFIER finding (which makes it not offloadable).
pub fn check(obj: &Object, prog: &Program, profile: &Profile, host: &HostVerdict) -> Report {
    let spec = crate::backends::nic::offload_spec(obj, prog);
    let mut report = nic_model::check(&spec, profile);
    if let HostVerdict::Rejected { kernel, message, insn } = host {
        report.add_finding(Finding {
            rule: RuleId::HostVerifier,
            severity: Severity::Violates,
            message: message.clone(),
            detail: format!(
                "the host kernel's verifier ({kernel}) rejects the program, and the offload path runs that verifier first"
            ),
            insn: *insn,
            source_line: None,
            disasm: None,
        });
    }
    report
}

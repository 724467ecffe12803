//! An offload cell's verdict: the guest kernel's answer on the real
//! offload path (maps and program bound to a netdevsim device, attached
//! with `XDP_FLAGS_HW_MODE`) next to `offload-check --profile netdevsim`
//! for the same program, rule by rule.
//!
//! The profile's verdict is the one `offload-check` prints: the NIC
//! model's findings plus the host verifier's refusal (rule
//! KERNEL-VERIFIER), the host verifier here being the guest kernel's own
//! (the agent's ordinary load of the program). netdevsim has no datapath,
//! so nothing runs: acceptance, map types and flags and the kernel's
//! exact messages are what is compared.

use super::protocol::{GuestLoad, GuestOffload, GuestReport, OffloadStep};
use super::spec::Offload;
use crate::offload::HostVerdict;
use crate::program::{Object, Program};
use nic_model::Severity;
use serde::Serialize;

/// Verifier-log bytes kept in the report (the whole log, up to this).
const LOG_KEEP: usize = 64 << 10;

/// The kernel's side.
#[derive(Clone, Debug, Serialize)]
pub struct KernelOffload {
    pub device: String,
    pub accepts: bool,
    /// The refused step (map create, program load, HW attach).
    pub step: Option<String>,
    pub errno: Option<String>,
    /// The verifier's first error line or the extack message.
    pub message: Option<String>,
    /// The full verifier log of the refused (or accepted) bound load.
    pub verifier_log: String,
}

/// The profile's side.
#[derive(Clone, Debug, Serialize)]
pub struct ProfileOffload {
    pub profile: String,
    pub verdict: String,
    pub accepts: bool,
    /// `RULE: message` for each blocking finding.
    pub rules: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct OffloadComparison {
    pub kernel: KernelOffload,
    pub profile: ProfileOffload,
    /// The guest kernel's ordinary (unbound) load, which offload-check's
    /// KERNEL-VERIFIER rule takes as the host verifier.
    pub host_verifier: String,
    pub agrees: bool,
}

impl OffloadComparison {
    /// One line: who says what.
    pub fn line(&self) -> String {
        let k = if self.kernel.accepts {
            "kernel accepts".to_string()
        } else {
            format!(
                "kernel refuses at {}: {}{}",
                self.kernel.step.as_deref().unwrap_or("?"),
                self.kernel.errno.as_deref().unwrap_or("?"),
                self.kernel.message.as_deref().map(|m| format!(" \"{m}\"")).unwrap_or_default()
            )
        };
        let p = if self.profile.rules.is_empty() {
            format!("profile {}: {}", self.profile.profile, self.profile.verdict)
        } else {
            format!(
                "profile {}: {} [{}]",
                self.profile.profile,
                self.profile.verdict,
                self.profile.rules.join("; ")
            )
        };
        format!("{} | {k} | {p}", if self.agrees { "agree" } else { "MISMATCH" })
    }
}

fn host_verdict(guest: &GuestReport) -> HostVerdict {
    let kernel = guest.kernel_release.clone();
    match &guest.load {
        GuestLoad::Loaded { .. } => HostVerdict::Accepted { kernel },
        GuestLoad::Rejected { errno, first_error_line, insn, .. } => HostVerdict::Rejected {
            kernel,
            message: first_error_line.clone().unwrap_or_else(|| errno.clone()),
            insn: *insn,
        },
        GuestLoad::Failed { message } => HostVerdict::NotAsked { why: message.clone() },
    }
}

fn keep(log: &str) -> String {
    if log.len() <= LOG_KEEP {
        return log.to_string();
    }
    let mut at = log.len() - LOG_KEEP;
    while !log.is_char_boundary(at) {
        at += 1;
    }
    format!("[... {} bytes left out ...]\n{}", at, &log[at..])
}

/// The kernel's side from the agent's report.
pub fn kernel_side(o: &GuestOffload) -> KernelOffload {
    let refused = |s: &OffloadStep| match s {
        OffloadStep::Accepted => None,
        OffloadStep::Refused { step, errno, message, log } => {
            Some((step.clone(), errno.clone(), message.clone(), log.clone()))
        }
    };
    let failure = refused(&o.load).or_else(|| o.attach.as_ref().and_then(refused));
    match failure {
        None => KernelOffload {
            device: o.device.clone(),
            accepts: true,
            step: None,
            errno: None,
            message: None,
            verifier_log: keep(&o.accepted_log),
        },
        Some((step, errno, message, log)) => KernelOffload {
            device: o.device.clone(),
            accepts: false,
            step: Some(step),
            errno: Some(errno),
            message,
            verifier_log: keep(&log),
        },
    }
}

/// Compares the guest's offload result with the profile's verdict.
pub fn compare(
    obj: &Object,
    prog: &Program,
    device: Offload,
    guest: &GuestReport,
    offload: &GuestOffload,
) -> anyhow::Result<OffloadComparison> {
    let profile = nic_model::Profile::builtin(device.profile())?;
    let host = host_verdict(guest);
    let report = crate::offload::check(obj, prog, &profile, &host);
    let rules: Vec<String> = report
        .findings
        .iter()
        .filter(|f| f.severity.blocks())
        .map(|f| {
            let sev = if f.severity == Severity::CannotProve { " (cannot prove)" } else { "" };
            format!("{}{sev}: {}", f.rule.id(), f.message)
        })
        .collect();
    let kernel = kernel_side(offload);
    let profile = ProfileOffload {
        profile: device.profile().to_string(),
        verdict: report.verdict_line(),
        accepts: report.verdict.loads(),
        rules,
    };
    Ok(OffloadComparison {
        agrees: kernel.accepts == profile.accepts,
        kernel,
        profile,
        host_verifier: host.line(),
    })
}

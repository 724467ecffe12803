//! The per-packet resource budget: everything one run may consume besides
//! its instructions' own time.
//!
//! Instructions are counted inline by the interpreter and the JIT (they are
//! the hot path; see `Exec::executed` / `EngineConfig::insn_budget`). Every
//! other resource a program can make the engine spend is charged here, by
//! the helper code that spends it. The JIT calls the very same helper code
//! (`rt_helper` -> `Exec::call_helper`), so a budget fault has the same
//! instruction index and message under both executors.
//!
//! The kernel has no per-run limit on helper work or events: it bounds a
//! run by the verifier's instruction limit and by what its fixed buffers
//! hold. The engine runs unverified programs, so it needs explicit bounds;
//! where the kernel has a limit (printk's 1 KiB buffer, a ringbuf record no
//! bigger than the ring, map key/value sizes) the helper and map code
//! apply that limit itself, and these budgets only bound the total per run.

use std::fmt;

/// Bytes of helper work that cost one budget unit: a helper that hashes,
/// copies or compares `n` bytes is charged `ceil(n / 8)` units, about what
/// an instruction loop moving 8-byte words would have been charged.
pub const BYTES_PER_WORK_UNIT: u64 = 8;

/// What one packet's run may consume (besides instructions).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunLimits {
    /// Helper work units ([`BYTES_PER_WORK_UNIT`] bytes hashed, copied or
    /// compared each). Default 16 Mi units = 128 MiB of bytes, the same
    /// order of host time as the default 1M-instruction budget.
    pub helper_work: u64,
    /// Events (perf records, ringbuf records, printk lines) one run may emit.
    pub events: u64,
    /// Bytes of perf and ringbuf event data (record plus sampled packet).
    pub event_bytes: u64,
    /// Bytes of `bpf_trace_printk` text (each line is already cut at the
    /// kernel's 1 KiB buffer).
    pub printk_bytes: u64,
    /// Bytes the engine allocates on the program's behalf during the run
    /// (ringbuf reservations).
    pub alloc_bytes: u64,
}

impl Default for RunLimits {
    fn default() -> Self {
        RunLimits {
            helper_work: 16 << 20,
            events: 65_536,
            event_bytes: 1 << 20,
            printk_bytes: 1 << 20,
            alloc_bytes: 64 << 20,
        }
    }
}

/// A budgeted resource, as fault messages name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Resource {
    HelperWork,
    Events,
    EventBytes,
    PrintkBytes,
    AllocBytes,
}

impl Resource {
    fn index(self) -> usize {
        self as usize
    }

    /// Whether the limit counts bytes (for the message's units).
    fn is_bytes(self) -> bool {
        matches!(self, Resource::EventBytes | Resource::PrintkBytes | Resource::AllocBytes)
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Resource::HelperWork => "helper work",
            Resource::Events => "events",
            Resource::EventBytes => "event bytes",
            Resource::PrintkBytes => "printk bytes",
            Resource::AllocBytes => "allocated bytes",
        })
    }
}

/// `1 MiB`, `64 KiB`, `1000 bytes`, or a plain count for non-byte limits.
pub fn show_limit(resource: Resource, limit: u64) -> String {
    if !resource.is_bytes() {
        return match resource {
            Resource::HelperWork => format!("{limit} units of {BYTES_PER_WORK_UNIT} bytes"),
            _ => limit.to_string(),
        };
    }
    for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if limit >= 1 << shift && limit.is_multiple_of(1 << shift) {
            return format!("{} {unit}", limit >> shift);
        }
    }
    format!("{limit} bytes")
}

/// One run's usage against its limits.
#[derive(Clone, Debug)]
pub struct Budget {
    limits: RunLimits,
    used: [u64; 5],
}

impl Budget {
    pub fn new(limits: RunLimits) -> Budget {
        Budget { limits, used: [0; 5] }
    }

    /// The limits this budget charges against.
    pub fn limits(&self) -> &RunLimits {
        &self.limits
    }

    pub fn limit(&self, r: Resource) -> u64 {
        match r {
            Resource::HelperWork => self.limits.helper_work,
            Resource::Events => self.limits.events,
            Resource::EventBytes => self.limits.event_bytes,
            Resource::PrintkBytes => self.limits.printk_bytes,
            Resource::AllocBytes => self.limits.alloc_bytes,
        }
    }

    pub fn used(&self, r: Resource) -> u64 {
        self.used[r.index()]
    }

    /// Sets what was used of `r`: for the JIT, which counts helper work
    /// for its inline array lookups in its own context while compiled code
    /// runs and hands the count back (`jit::runtime`).
    pub(crate) fn set_used(&mut self, r: Resource, n: u64) {
        self.used[r.index()] = n;
    }

    /// Charges `n` of `r`; past the limit it is a fault naming `r`. The
    /// check comes before the work it pays for, so an over-limit request
    /// never allocates or copies.
    pub fn charge(&mut self, r: Resource, n: u64) -> Result<(), super::FaultKind> {
        let limit = self.limit(r);
        let after = self.used[r.index()].saturating_add(n);
        if after > limit {
            return Err(super::FaultKind::ResourceExhausted { resource: r, limit });
        }
        self.used[r.index()] = after;
        Ok(())
    }

    /// Charges helper work for handling `bytes` bytes.
    pub fn work(&mut self, bytes: u64) -> Result<(), super::FaultKind> {
        self.charge(Resource::HelperWork, bytes.div_ceil(BYTES_PER_WORK_UNIT))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charge_stops_at_the_limit_and_names_it() {
        let mut b = Budget::new(RunLimits { event_bytes: 1 << 20, ..Default::default() });
        b.charge(Resource::EventBytes, 1 << 20).unwrap();
        let e = b.charge(Resource::EventBytes, 1).unwrap_err();
        assert_eq!(e.to_string(), "resource budget exhausted: event bytes (limit 1 MiB)");
        // A refused charge is not recorded.
        assert_eq!(b.used(Resource::EventBytes), 1 << 20);
    }

    #[test]
    fn work_is_one_unit_per_8_bytes_rounded_up() {
        let mut b = Budget::new(RunLimits { helper_work: 3, ..Default::default() });
        b.work(9).unwrap(); // 2 units
        b.work(8).unwrap(); // 1 unit
        assert_eq!(b.used(Resource::HelperWork), 3);
        assert!(b.work(1).is_err());
        assert!(b.work(u64::MAX).is_err(), "no overflow on absurd sizes");
    }
}

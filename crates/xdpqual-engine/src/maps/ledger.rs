//! The process-wide ledger of map memory.
//!
//! Each engine checks its own maps against `EngineConfig::map_memory_cap`,
//! but one process can hold many engines (`replay --threads N`, the diff's
//! engine and NIC queues, qualify's programs one after another), and a
//! hostile object must not multiply its maps by the number of engines.
//! So every map set also reserves its bytes here, against one cap for the
//! whole process (default 1 GiB; `XDPQUAL_MAP_MEMORY` sets it in bytes, or
//! with a K/M/G suffix, at start-up).
//!
//! Reservations are a high-water mark per map set: a map that grows
//! reserves each new element, and the bytes are given back when the map set
//! is dropped, not when an element is deleted.

use std::sync::atomic::{AtomicU64, Ordering};

/// The default process-wide cap: 1 GiB, as the budget states.
pub const DEFAULT_PROCESS_CAP: u64 = 1 << 30;

static IN_USE: AtomicU64 = AtomicU64::new(0);
static CAP: AtomicU64 = AtomicU64::new(DEFAULT_PROCESS_CAP);

/// Sets the process-wide cap (bytes).
pub fn set_cap(bytes: u64) {
    CAP.store(bytes, Ordering::Relaxed);
}

/// The process-wide cap (bytes).
pub fn cap() -> u64 {
    CAP.load(Ordering::Relaxed)
}

/// Bytes all map sets of the process hold now.
pub fn in_use() -> u64 {
    IN_USE.load(Ordering::Relaxed)
}

/// Reserves `n` bytes if they fit under the cap; otherwise returns what is
/// in use and reserves nothing.
pub fn reserve(n: u64) -> Result<(), u64> {
    let cap = cap();
    IN_USE
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
            used.checked_add(n).filter(|&total| total <= cap)
        })
        .map(drop)
}

/// Reserves `n` bytes whatever the cap says: for a copy of map sets that
/// were admitted already (a snapshot to reset to), so that the ledger still
/// counts every byte the process holds.
pub fn reserve_unchecked(n: u64) {
    IN_USE.fetch_add(n, Ordering::AcqRel);
}

/// Gives back `n` bytes reserved before.
pub fn release(n: u64) {
    let _ = IN_USE
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| Some(used.saturating_sub(n)));
}

/// Parses `XDPQUAL_MAP_MEMORY` (`1073741824`, `512M`, `2G`).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (digits, mult) = match s.char_indices().last()? {
        (i, 'K' | 'k') => (&s[..i], 1u64 << 10),
        (i, 'M' | 'm') => (&s[..i], 1 << 20),
        (i, 'G' | 'g') => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    digits.parse::<u64>().ok()?.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_suffixes() {
        assert_eq!(parse_size("1073741824"), Some(1 << 30));
        assert_eq!(parse_size("512M"), Some(512 << 20));
        assert_eq!(parse_size("2g"), Some(2 << 30));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size("99999999999G"), None);
    }
}

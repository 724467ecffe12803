//! The kernel release whose helper semantics the engine models.
//!
//! A few helpers changed what they return between releases, with the same
//! program and the same packet. The engine models the release it is told
//! (the host's for `diff`, each cell's in the matrix), so it agrees with
//! every kernel it is compared with rather than with one of them.

use std::fmt;

/// A kernel release, `major.minor`; the patch level does not change helper
/// semantics within a stable series.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KernelRelease {
    pub major: u16,
    pub minor: u16,
}

impl KernelRelease {
    /// The newest release whose changes the engine models, and its default
    /// when nothing says which kernel it stands for.
    pub const NEWEST_MODELLED: KernelRelease = KernelRelease::new(6, 18);

    pub const fn new(major: u16, minor: u16) -> Self {
        KernelRelease { major, minor }
    }

    /// Reads `uname -r` forms: `6.18.44-fc-v1300`, `6.1.0-28-cloud-amd64`,
    /// `6.12.0`, `5.10`. None for anything else.
    pub fn parse(release: &str) -> Option<Self> {
        let mut parts = release.split(['.', '-', '+']);
        let major = parts.next()?.parse().ok()?;
        let minor_text = parts.next()?;
        let digits = minor_text.find(|c: char| !c.is_ascii_digit()).unwrap_or(minor_text.len());
        let minor = minor_text[..digits].parse().ok()?;
        Some(KernelRelease { major, minor })
    }

    /// `bpf_csum_diff` folds its result to 16 bits (`csum_from32to16`) and
    /// takes sizes that are not multiples of 4, from Linux 6.13 on (commit
    /// 6a4794d5a3e2 "bpf: bpf_csum_diff: Optimize and homogenize for all
    /// archs"). Before, it returned the architecture's unfolded 32-bit
    /// `csum_partial` and refused such sizes with -EINVAL.
    pub fn csum_diff_folds(self) -> bool {
        self >= KernelRelease::new(6, 13)
    }
}

impl Default for KernelRelease {
    fn default() -> Self {
        KernelRelease::NEWEST_MODELLED
    }
}

impl fmt::Display for KernelRelease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_uname_forms() {
        assert_eq!(KernelRelease::parse("6.18.44-fc-v1300"), Some(KernelRelease::new(6, 18)));
        assert_eq!(KernelRelease::parse("6.1.0-28-cloud-amd64"), Some(KernelRelease::new(6, 1)));
        assert_eq!(KernelRelease::parse("5.10"), Some(KernelRelease::new(5, 10)));
        assert_eq!(KernelRelease::parse("6.13-rc1"), Some(KernelRelease::new(6, 13)));
        assert_eq!(KernelRelease::parse("6.12rc7"), Some(KernelRelease::new(6, 12)));
        assert_eq!(KernelRelease::parse(""), None);
        assert_eq!(KernelRelease::parse("linux"), None);
        assert_eq!(KernelRelease::parse("6"), None);
    }

    #[test]
    fn csum_diff_changed_in_6_13() {
        assert!(!KernelRelease::new(6, 12).csum_diff_folds());
        assert!(KernelRelease::new(6, 13).csum_diff_folds());
        assert!(!KernelRelease::new(5, 10).csum_diff_folds());
        assert!(KernelRelease::NEWEST_MODELLED.csum_diff_folds());
    }
}

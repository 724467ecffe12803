//! Independent oracles for the corpus programs.
//!
//! Each oracle is written from the header comment of `corpus/<prog>.c` (the
//! program's specification), never from the C code's implementation and never
//! from any backend's output. They parse frames by hand with plain byte
//! offsets, as the specifications are phrased.
//!
//! An oracle sees the frame the way `BPF_PROG_TEST_RUN` presents it to a
//! program that is not frags-aware: the first [`MAX_LINEAR`] bytes are the
//! linear area `data .. data_end` (what the specifications call "the frame",
//! L = data_end - data), the rest sits in page fragments that the programs
//! never see and that come back unchanged after the linear area.

#![allow(dead_code)]

pub(crate) mod co_re;
pub(crate) mod counters;
pub(crate) mod dispatcher;
pub(crate) mod edges;
pub(crate) mod encap;
pub(crate) mod firewall;
pub(crate) mod globals;
pub(crate) mod lpm_filter;
pub(crate) mod meta;
pub(crate) mod ratelimit;
pub(crate) mod redirect;
pub(crate) mod reflector;
pub(crate) mod subprogs;
pub(crate) mod truncate;
pub(crate) mod v4ops;
pub(crate) mod vlan;

/// Linear bytes of a test-run XDP buffer: one 4096-byte page minus
/// XDP_PACKET_HEADROOM (256) minus SKB_DATA_ALIGN(sizeof(struct
/// skb_shared_info)) (320 on x86_64); see net/bpf/test_run.c
/// bpf_prog_test_run_xdp (max_data_sz).
pub(crate) const MAX_LINEAR: usize = 4096 - 256 - 320;

/// Frames shorter than an Ethernet header are refused by test-run (EINVAL)
/// before the program runs.
pub(crate) const ETH_HLEN: usize = 14;

/// An XDP verdict, or "the program did not run".
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Verdict {
    Aborted,
    Drop,
    Pass,
    Tx,
    Redirect,
    /// Test-run refused the frame (shorter than 14 bytes).
    NotRun,
}

impl Verdict {
    pub(crate) const ALL: [Verdict; 6] = [
        Verdict::Aborted,
        Verdict::Drop,
        Verdict::Pass,
        Verdict::Tx,
        Verdict::Redirect,
        Verdict::NotRun,
    ];

    /// `enum xdp_action` (include/uapi/linux/bpf.h).
    pub(crate) fn from_r0(r0: u64) -> Option<Verdict> {
        match r0 as u32 {
            0 => Some(Verdict::Aborted),
            1 => Some(Verdict::Drop),
            2 => Some(Verdict::Pass),
            3 => Some(Verdict::Tx),
            4 => Some(Verdict::Redirect),
            _ => None,
        }
    }

    pub(crate) fn letter(self) -> char {
        match self {
            Verdict::Aborted => 'A',
            Verdict::Drop => 'D',
            Verdict::Pass => 'P',
            Verdict::Tx => 'T',
            Verdict::Redirect => 'R',
            Verdict::NotRun => 'N',
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Verdict::Aborted => "aborted",
            Verdict::Drop => "drop",
            Verdict::Pass => "pass",
            Verdict::Tx => "tx",
            Verdict::Redirect => "redirect",
            Verdict::NotRun => "not_run",
        }
    }

    pub(crate) fn from_name(s: &str) -> Option<Verdict> {
        Verdict::ALL.into_iter().find(|v| v.name() == s)
    }
}

/// One packet as an oracle receives it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pkt<'a> {
    /// The whole frame (linear part and fragments).
    pub frame: &'a [u8],
    /// What `bpf_ktime_get_ns` returns for this packet.
    pub ts_ns: u64,
    /// `xdp_md->ingress_ifindex`.
    pub ingress_ifindex: u32,
}

impl<'a> Pkt<'a> {
    /// `data .. data_end`.
    pub(crate) fn lin(&self) -> &'a [u8] {
        &self.frame[..self.frame.len().min(MAX_LINEAR)]
    }

    /// Bytes in page fragments, never seen by these programs.
    pub(crate) fn frags(&self) -> &'a [u8] {
        &self.frame[self.frame.len().min(MAX_LINEAR)..]
    }

    /// The output of a run that replaced the linear area by `lin`
    /// (fragments follow unchanged, as test-run's data_out has them).
    pub(crate) fn with_lin(&self, mut lin: Vec<u8>) -> Vec<u8> {
        lin.extend_from_slice(self.frags());
        lin
    }
}

/// What an oracle predicts for one packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Expect {
    pub verdict: Verdict,
    /// test-run's data_out (metadata, data, fragments) when predicted.
    pub output: Option<Vec<u8>>,
}

impl Expect {
    /// The program does not touch the packet.
    pub(crate) fn unchanged(verdict: Verdict, p: &Pkt) -> Expect {
        Expect { verdict, output: Some(p.frame.to_vec()) }
    }

    pub(crate) fn rewritten(verdict: Verdict, output: Vec<u8>) -> Expect {
        Expect { verdict, output: Some(output) }
    }
}

/// An entry an oracle expects in a map after the whole capture (value of
/// CPU 0 for per-CPU maps: the tests run one CPU).
#[derive(Clone, Debug)]
pub(crate) struct MapExpect {
    pub map: String,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

/// A program's specification as executable code. `run` is only called for
/// frames that test-run accepts (14 bytes or more): a refused frame never
/// reaches the program, so it cannot change any state.
pub(crate) trait Oracle {
    fn run(&mut self, p: &Pkt) -> Expect;

    /// Map contents the specification implies after every packet so far.
    fn expected_maps(&self) -> Vec<MapExpect> {
        Vec::new()
    }
}

/// Something to put into the object's maps before the capture.
#[derive(Clone, Debug)]
pub(crate) enum Setup {
    Update { map: &'static str, key: Vec<u8>, value: Vec<u8> },
    ProgArray { map: &'static str, slot: u32, prog: &'static str },
}

/// One program configuration to replay captures through.
pub(crate) struct Case {
    /// Corpus file stem (corpus/<program>.c, corpus/expect/<program>.toml).
    pub program: &'static str,
    /// Section or function name of the entry program.
    pub entry: &'static str,
    /// Name of this configuration (entry + map setup), unique per program.
    pub config: &'static str,
    pub setup: Vec<Setup>,
    pub oracle: fn() -> Box<dyn Oracle>,
}

/// Big-endian u16 at `off`.
pub(crate) fn be16(b: &[u8], off: usize) -> u16 {
    u16::from_be_bytes([b[off], b[off + 1]])
}

/// Every configuration of every corpus program.
pub(crate) fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    v.extend(firewall::cases());
    v.extend(co_re::cases());
    v.extend(lpm_filter::cases());
    v.extend(counters::cases());
    v.extend(reflector::cases());
    v.extend(encap::cases());
    v.extend(vlan::cases());
    v.extend(truncate::cases());
    v.extend(meta::cases());
    v.extend(redirect::cases());
    v.extend(dispatcher::cases());
    v.extend(ratelimit::cases());
    v.extend(subprogs::cases());
    v.extend(globals::cases());
    v.extend(v4ops::cases());
    v
}

/// A stateless oracle from a function.
pub(crate) struct Stateless(pub fn(&Pkt) -> Expect);

impl Oracle for Stateless {
    fn run(&mut self, p: &Pkt) -> Expect {
        (self.0)(p)
    }
}

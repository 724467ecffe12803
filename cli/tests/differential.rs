//! Differential property: every corpus XDP program gives the same verdict
//! and the same output bytes on the engine and on the running kernel, for
//! generated packets, valid and malformed.
//!
//! The kernel is the reference (the engine claims to be kernel-exact), so
//! nothing here is an expectation we recorded: each case is checked against
//! what the kernel did with the same bytes. A failure prints the shrunk
//! packet as a Rust byte-string ready to paste into a regression test.
//!
//! Cases: `CASES` per `cargo test`; `XDPQUAL_SOAK=1` runs 100 times more.
//! Without CAP_BPF (or the bpf syscall) it prints `SKIP: <reason>`.

mod common;

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

use common::packets::Frame;
use quickcheck::{QuickCheck, TestResult};
use xdpqual_testkit::pair::{PairOpen, VmHostPair};

const CASES: u64 = 8000;

struct Target {
    label: String,
    pair: Box<VmHostPair>,
}

thread_local! {
    static TARGETS: RefCell<Vec<Target>> = const { RefCell::new(Vec::new()) };
}
static CASES_RUN: AtomicU64 = AtomicU64::new(0);
static PACKETS: AtomicU64 = AtomicU64::new(0);
static NONDET: AtomicU64 = AtomicU64::new(0);

fn prop_same_on_engine_and_kernel(frame: Frame) -> TestResult {
    CASES_RUN.fetch_add(1, Ordering::Relaxed);
    TARGETS.with(|t| {
        for target in t.borrow_mut().iter_mut() {
            let r = target.pair.run(&frame.bytes);
            PACKETS.fetch_add(1, Ordering::Relaxed);
            if r.nondeterministic {
                NONDET.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if let Some(why) = r.disagreement {
                return TestResult::error(format!(
                    "{}: {why}\n  vm:   {} output {}\n  host: {} output {}\n  packet ({} bytes, {}): {}",
                    target.label,
                    r.vm.verdict,
                    hex(&r.vm.output),
                    r.host.verdict,
                    hex(&r.host.output),
                    frame.bytes.len(),
                    frame.what,
                    common::rust_bytes(&frame.bytes)
                ));
            }
        }
        TestResult::passed()
    })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn corpus_programs_agree_with_the_kernel_on_generated_packets() {
    let targets = match common::corpus_pairs() {
        Ok(t) => t,
        Err(skip) => {
            xdpqual::util::skip(format_args!("{skip}"));
            return;
        }
    };
    let n = targets.len();
    let refused: Vec<String> = targets
        .iter()
        .filter_map(|(l, p)| match p {
            PairOpen::Rejected(why) => Some(format!("{l}: {why}")),
            _ => None,
        })
        .collect();
    // Every corpus program is meant to load: a refusal is a finding, not a
    // skip. The one exception is a kernel build that does not offer a helper
    // the program calls: nothing to compare with here, said out loud.
    assert!(refused.is_empty(), "the kernel refused corpus programs:\n{}", refused.join("\n"));
    for (l, p) in &targets {
        if let PairOpen::HelperNotOffered(why) = p {
            xdpqual::util::skip(format_args!("differential: {l}: {why}"));
        }
    }
    TARGETS.with(|t| {
        *t.borrow_mut() = targets
            .into_iter()
            .filter_map(|(label, p)| match p {
                PairOpen::Ready(pair) => Some(Target { label, pair }),
                _ => None,
            })
            .collect()
    });
    let cases = common::cases(CASES);
    QuickCheck::new()
        .tests(cases)
        .max_tests(cases * 2)
        .rng(quickcheck::Gen::new(64))
        .quickcheck(prop_same_on_engine_and_kernel as fn(Frame) -> TestResult);
    xdpqual::util::count(format_args!(
        "differential packets: {} cases over {n} programs, {} packets compared, {} nondeterministic (time/random helpers) not counted",
        CASES_RUN.load(Ordering::Relaxed),
        PACKETS.load(Ordering::Relaxed),
        NONDET.load(Ordering::Relaxed)
    ));
    TARGETS.with(|t| t.borrow_mut().clear());
}

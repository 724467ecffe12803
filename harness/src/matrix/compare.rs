//! The engine against one guest kernel, packet by packet and map by map,
//! with the rules of `xdpqual diff`: verdicts and output bytes must match;
//! NOT_RUN agrees with NOT_RUN whatever the wording; a difference on a
//! packet that used time or random helpers is `nondeterministic`, not a
//! mismatch.

use super::job::{Input, Reference};
use super::protocol::{hex, GuestMap, GuestPacket};
use crate::compare::{compare_map_set, Class, MapContents, Tally, Unreported};
use crate::verdict::{Verdict, XdpAction};
use serde::Serialize;

/// Mismatches described in full per cell; all are counted.
pub const MAX_REPORTED: usize = 10;

#[derive(Clone, Debug, Serialize)]
pub struct PacketMismatch {
    pub capture: String,
    pub index: u64,
    pub engine: String,
    pub kernel: String,
    pub detail: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Agreement {
    pub packets: u64,
    /// `agreed`, `nondeterministic` and `mismatch_count`.
    #[serde(flatten)]
    pub tally: Tally,
    /// Differences that are the kernel's documented behaviour, not the
    /// engine's fault; each reason once in `explanations`.
    pub explained: u64,
    /// Packets only one side ran, because test-run's frame-size limits
    /// differ between kernels.
    pub not_comparable: u64,
    pub explanations: Vec<String>,
    pub mismatches: Vec<PacketMismatch>,
    pub map_mismatches: Vec<String>,
    pub map_nondeterministic: Vec<String>,
    /// Map differences after packets only one side ran (`not_comparable`).
    pub map_not_comparable: Vec<String>,
}

impl Agreement {
    pub fn agrees(&self) -> bool {
        self.tally.agrees(&self.map_mismatches)
    }
}

fn kernel_verdict(p: &GuestPacket) -> Verdict {
    match p {
        GuestPacket::Ran { retval, .. } => {
            Verdict::Action { action: XdpAction::from_retval(*retval) }
        }
        GuestPacket::NotRun { reason } => Verdict::NotRun { reason: reason.clone() },
        GuestPacket::Error { message } => Verdict::Error { message: message.clone() },
    }
}

/// Why kernels before 5.12 return a shorter frame for a program that
/// added metadata.
pub const NO_META_IN_DATA_OUT: &str = "before 5.12, BPF_PROG_TEST_RUN for XDP copies data_out from xdp.data, leaving out the metadata the program added with bpf_xdp_adjust_meta; 5.12 (xdp_md context support, net/bpf/test_run.c bpf_prog_test_run_xdp) starts it at xdp.data_meta, as the engine does. The frames after the metadata are identical.";

const ETH_HLEN: usize = 14;
pub const SHORT_FRAME: &str = "frames shorter than an Ethernet header (14 bytes): this kernel's BPF_PROG_TEST_RUN runs them, newer kernels (6.1+ here) and the engine refuse them with EINVAL";
pub const LONG_FRAME: &str = "frames longer than one page's linear area: this kernel's BPF_PROG_TEST_RUN refuses them, kernels with multi-buffer test-run (5.18+) and the engine split them into fragments";

/// The engine's output is the kernel's with `k` bytes of metadata in
/// front: a multiple of 4 and at most 32 (`xdp_metalen_invalid`,
/// include/net/xdp.h).
fn is_meta_prefix(engine: &[u8], kernel: &[u8]) -> bool {
    let k = engine.len().wrapping_sub(kernel.len());
    engine.len() > kernel.len() && k.is_multiple_of(4) && k <= 32 && &engine[k..] == kernel
}

/// Compares; `nondet_prog` says the program calls time/random helpers;
/// `without_ctx`: the guest ran test-run without a context (pre-5.12);
/// `kernel_linear`: the guest's test-run linear area
/// ([`Arch::test_run_linear`](super::spec::Arch::test_run_linear)), which the
/// engine reference models too (`EngineConfig::arch`).
pub fn compare(
    inputs: &[Input],
    reference: &Reference,
    guest: &[GuestPacket],
    guest_maps: &[GuestMap],
    nondet_prog: bool,
    without_ctx: bool,
    kernel_linear: usize,
) -> Agreement {
    let mut a = Agreement::default();
    if guest.len() != inputs.len() {
        a.map_mismatches.push(format!(
            "the guest returned {} packet results for {} packets",
            guest.len(),
            inputs.len()
        ));
    }
    for ((input, (ours, used_nondet)), theirs) in
        inputs.iter().zip(reference.results.iter().zip(&reference.nondeterministic)).zip(guest)
    {
        let kv = kernel_verdict(theirs);
        if let (true, GuestPacket::Ran { output, .. }) = (without_ctx && ours.verdict == kv, theirs)
        {
            if is_meta_prefix(&ours.output, output.as_deref().unwrap_or(&input.data)) {
                a.explained += 1;
                if a.explanations.is_empty() {
                    a.explanations.push(NO_META_IN_DATA_OUT.to_string());
                }
                a.packets += 1;
                continue;
            }
        }
        // One side never ran the program because of test-run's input
        // limits, which differ between kernels (measured: 5.10 runs frames
        // under ETH_HLEN that 6.1+ refuse, and refuses frames over one page
        // that 6.1+ split into fragments). The program's behaviour is not
        // in question on such a packet, so it is counted apart, not agreed.
        let kernel_ran = matches!(theirs, GuestPacket::Ran { .. });
        let engine_ran = !matches!(ours.verdict, Verdict::NotRun { .. });
        let short = input.data.len() < ETH_HLEN && !engine_ran && kernel_ran;
        let long = input.data.len() > kernel_linear && engine_ran && !kernel_ran;
        if short || long {
            a.packets += 1;
            a.not_comparable += 1;
            let why = if short { SHORT_FRAME.to_string() } else { LONG_FRAME.to_string() };
            if !a.explanations.contains(&why) {
                a.explanations.push(why);
            }
            continue;
        }
        let problem = match (&ours.verdict, &kv) {
            (Verdict::NotRun { .. }, Verdict::NotRun { .. }) => None,
            (x, y) if x != y => Some(format!("verdict {x} vs {y}")),
            _ => {
                let out = match theirs {
                    GuestPacket::Ran { output: Some(o), .. } => o.as_slice(),
                    _ => input.data.as_slice(),
                };
                (ours.output != out).then(|| {
                    let at = ours.output.iter().zip(out).position(|(x, y)| x != y).unwrap_or(ours.output.len().min(out.len()));
                    // The bytes from the first difference on (up to 8 of
                    // each side), so a report shows what differs.
                    let from = |b: &[u8]| hex::hex(&b[at.min(b.len())..(at + 8).min(b.len())]);
                    format!("output bytes differ: engine {} bytes, kernel {} bytes, first difference at byte {at} (engine {}, kernel {})", ours.output.len(), out.len(), from(&ours.output), from(out))
                })
            }
        };
        a.packets += 1;
        if a.tally.record(&problem, nondet_prog, *used_nondet) == Class::Mismatch {
            if let Some(detail) = problem {
                if a.mismatches.len() < MAX_REPORTED {
                    a.mismatches.push(PacketMismatch {
                        capture: input.capture.clone(),
                        index: input.index,
                        engine: ours.verdict.to_string(),
                        kernel: kv.to_string(),
                        detail,
                    });
                }
            }
        }
    }
    let diffs = compare_maps(reference, guest_maps);
    if nondet_prog {
        a.map_nondeterministic = diffs;
    } else if a.not_comparable > 0 {
        // The two sides ran different packet sets, so their maps may
        // rightly differ; shown, not counted.
        a.map_not_comparable = diffs;
    } else {
        a.map_mismatches.extend(diffs);
    }
    a
}

/// The guest's maps against the engine's reference run, through the one
/// map comparison. A map the guest left out is a difference: its report
/// lists every map of the object.
fn compare_maps(reference: &Reference, guest_maps: &[GuestMap]) -> Vec<String> {
    let theirs: Vec<MapContents> = guest_maps
        .iter()
        .map(|g| MapContents {
            name: g.name.clone(),
            percpu: reference
                .maps
                .maps
                .iter()
                .any(|m| m.def.name == g.name && m.def.map_type.is_percpu()),
            entries: match &g.unreadable {
                Some(why) => Err(format!("the guest could not read it: {why}")),
                None => g
                    .entries
                    .iter()
                    .map(|(k, vs)| {
                        Ok((
                            hex::decode(k)?,
                            vs.iter().map(|v| hex::decode(v)).collect::<Result<_, _>>()?,
                        ))
                    })
                    .collect::<Result<_, String>>()
                    .map_err(|e| format!("the guest's report is damaged: {e}")),
            },
        })
        .collect();
    compare_map_set(&reference.maps, "the kernel", &theirs, Unreported::Difference)
}

#[cfg(test)]
mod tests {
    use super::is_meta_prefix;

    #[test]
    fn metadata_prefix_is_exact() {
        let frame = [1u8, 2, 3, 4, 5, 6];
        let with_meta = [9u8, 9, 9, 9, 1, 2, 3, 4, 5, 6];
        assert!(is_meta_prefix(&with_meta, &frame));
        // Not a multiple of 4, longer than 32, different frame, equal.
        assert!(!is_meta_prefix(&with_meta[1..], &frame));
        assert!(!is_meta_prefix(&[vec![0u8; 36], frame.to_vec()].concat(), &frame));
        assert!(!is_meta_prefix(&with_meta, &[1, 2, 3, 4, 5, 7]));
        assert!(!is_meta_prefix(&frame, &frame));
    }
}

//! Whole-program limits: code size, stack over the call chain, call depth,
//! packet reach.

use super::{is_nfp, subprog_starts, CheckOptions, Sink};
use crate::absint::Outcome;
use crate::opcode::*;
use crate::profile::{CodeLimits, Family, NfpCost, Profile};
use crate::program::ProgramSpec;
use crate::report::Severity::*;
use crate::report::Stats;
use crate::rules::RuleId;

pub(super) fn check(
    prog: &ProgramSpec,
    profile: &Profile,
    opts: &CheckOptions,
    out: &Outcome,
    sink: &mut Sink,
    stats: &mut Stats,
) {
    code_size(prog, profile, out, sink, stats);
    stack(prog, profile, out, sink, stats);
    packet(profile, opts, out, sink, stats);
}

/// Instructions to count: the reachable ones (the verifier removes dead code
/// before the JIT runs: nfp_bpf_opt_remove_insns), or all if nothing ran.
fn counted(prog: &ProgramSpec, out: &Outcome) -> Vec<usize> {
    let mut v = Vec::new();
    let any = out.visited.iter().any(|x| *x);
    for pc in 0..prog.insns.len() {
        if !any || out.visited.get(pc).copied().unwrap_or(false) {
            v.push(pc);
        }
    }
    v
}

fn nfp_cost(i: &crate::program::Insn, c: &NfpCost) -> (u64, u64) {
    // (estimate, lower bound). Lower bound: every eBPF insn becomes at least one
    // NFP insn, 64-bit ALU at least two (offload-rules.md §1.5).
    let code = i.code;
    match class(code) {
        ALU64 | ALU => {
            let wide = class(code) == ALU64;
            let lb = if wide && op(code) != END { 2 } else { 1 };
            let est = match op(code) {
                MUL => c.mul.value,
                DIV | MOD => c.div.value,
                _ if wide => c.alu64.value,
                _ => c.alu32.value,
            };
            (est as u64, lb)
        }
        JMP | JMP32 => match op(code) {
            CALL => (c.helper_call.value as u64, 1),
            EXIT | JA => (c.other.value as u64, 1),
            _ => (c.jmp.value as u64, 1),
        },
        LDX => (c.load.value as u64, 1),
        ST | STX => (c.store.value as u64, 1),
        _ => (c.other.value as u64, 1),
    }
}

fn code_size(
    prog: &ProgramSpec,
    profile: &Profile,
    out: &Outcome,
    sink: &mut Sink,
    stats: &mut Stats,
) {
    let pcs = counted(prog, out);
    match &profile.code {
        CodeLimits::None => {}
        CodeLimits::Nfp { max_insns, outro_insns, prefetch_nops, cost } => {
            let fixed = outro_insns.value as u64 + prefetch_nops.value as u64;
            let (mut est, mut lb) = (fixed, prefetch_nops.value as u64);
            let mut pc_iter = pcs.iter().peekable();
            while let Some(&pc) = pc_iter.next() {
                let i = &prog.insns[pc];
                let (e, l) = if i.code == LD_DW_IMM { (2, 2) } else { nfp_cost(i, cost) };
                est += e;
                lb += l;
                if i.code == LD_DW_IMM {
                    pc_iter.next_if(|&&n| n == pc + 1);
                }
            }
            let max = max_insns.value as u64;
            stats.code_size_estimate = Some(est);
            stats.code_size_lower_bound = Some(lb);
            stats.code_size_limit = Some(max);
            if lb > max {
                sink.add(RuleId::S1, Violates, format!("instruction limit reached ({max} NFP instructions)"),
                    format!("at least {lb} NFP instructions needed (lower bound); extack `program too long`"), None);
            } else if est > max {
                sink.add(RuleId::S1, CannotProve, format!("cannot prove: program fits in {max} NFP instructions"),
                    format!("estimated {est} NFP instructions (lower bound {lb}); the estimate uses assumed per-instruction costs"), None);
            }
        }
        CodeLimits::Vliw { max_rows, lanes, typical_insns_per_row, compiler } => {
            let n = pcs.len() as u64;
            // A row holds at most `lanes` instructions, and at most one helper call.
            let calls = pcs
                .iter()
                .filter(|&&pc| op(prog.insns[pc].code) == CALL && class(prog.insns[pc].code) == JMP)
                .count() as u64;
            let lb = n.div_ceil(lanes.value as u64).max(calls);
            // With the compiler modelled, the estimate is its schedule's
            // length; its passes can remove instructions, so the lower bound
            // does not hold for it and only the schedule decides.
            let (est, how, lb) = match compiler {
                Some(c) => {
                    let s = crate::vliw::schedule(&prog.insns, &c.options(lanes.value));
                    let kept = s.placed.iter().filter(|p| p.is_some()).count() as u64;
                    let lb = kept.div_ceil(lanes.value as u64).max(calls);
                    (s.total_rows as u64, "the modelled parallelizer's schedule".to_string(), lb)
                }
                None => {
                    let est = ((n as f64) / typical_insns_per_row.value).ceil() as u64;
                    (
                        est.max(lb),
                        format!(
                            "{} eBPF instructions per row (assumed)",
                            typical_insns_per_row.value
                        ),
                        lb,
                    )
                }
            };
            let max = max_rows.value as u64;
            stats.code_size_estimate = Some(est);
            stats.code_size_lower_bound = Some(lb);
            stats.code_size_limit = Some(max);
            if lb > max {
                sink.add(RuleId::HxdpC1, Violates, "Error the parallelized program is longer than the available memory".into(),
                    format!("{n} eBPF instructions need at least {lb} rows of {} lanes; instruction memory has {max}", lanes.value), None);
            } else if est > max {
                sink.add(
                    RuleId::HxdpC1,
                    CannotProve,
                    format!("cannot prove: program fits in {max} VLIW rows"),
                    format!("estimated {est} rows by {how}"),
                    None,
                );
            }
        }
    }
}

fn stack(prog: &ProgramSpec, profile: &Profile, out: &Outcome, sink: &mut Sink, stats: &mut Stats) {
    let starts = subprog_starts(prog);
    let func_of = |pc: usize| starts[starts.partition_point(|&s| s <= pc) - 1];
    let end_of = |f: usize| starts.iter().copied().find(|&s| s > f).unwrap_or(prog.insns.len());
    let sl = &profile.stack;
    let align = sl.frame_align.value.max(1) as u64;

    // Frame size per function (nfp_bpf_finalize adds the callee extras, then
    // nfp_bpf_get_stack_usage rounds each frame up to STACK_FRAME_ALIGN).
    let frame = |f: usize| -> u64 {
        let mut d = out.stack_depth.get(&f).copied().unwrap_or(0);
        if f != 0 {
            d += sl.callee_ret_addr.value as u64;
            let writes_callee_saved =
                (f..end_of(f)).any(|pc| (6..=9).contains(&prog.insns[pc].dst));
            if writes_callee_saved {
                d += sl.callee_saved_regs.value as u64;
            }
        }
        d.div_ceil(align) * align
    };
    // Callees of each function.
    let callees = |f: usize| -> Vec<(usize, usize)> {
        (f..end_of(f))
            .filter(|&pc| {
                let i = prog.insns[pc];
                class(i.code) == JMP && op(i.code) == CALL && !is_x(i.code) && i.src == PSEUDO_CALL
            })
            .filter_map(|pc| {
                let t = pc as i64 + 1 + prog.insns[pc].imm as i64;
                (t >= 0 && (t as usize) < prog.insns.len()).then(|| (pc, func_of(t as usize)))
            })
            .collect()
    };
    // Deepest chain (DFS; recursion is cut, the kernel rejects it).
    fn dfs(
        f: usize,
        path: &mut Vec<usize>,
        frame: &dyn Fn(usize) -> u64,
        callees: &dyn Fn(usize) -> Vec<(usize, usize)>,
        best: &mut (u64, usize, Option<usize>),
        site: Option<usize>,
        acc: u64,
    ) {
        let total = acc + frame(f);
        if total > best.0 {
            best.0 = total;
        }
        if path.len() > best.1 {
            best.1 = path.len();
            best.2 = site;
        }
        for (pc, g) in callees(f) {
            if path.contains(&g) || path.len() > 64 {
                continue;
            }
            path.push(g);
            dfs(g, path, frame, callees, best, Some(pc), total);
            path.pop();
        }
    }
    let mut best = (0u64, 0usize, None);
    if !prog.insns.is_empty() {
        dfs(0, &mut vec![0], &frame, &callees, &mut best, None, 0);
    }
    let (total, frames, deepest_site) = best;
    stats.stack_bytes = Some(total);
    let max = sl.max_bytes.value as u64;
    let nfp = is_nfp(profile);
    if total > max {
        let (rule, msg) = match profile.profile.family {
            Family::Hxdp => {
                (RuleId::HxdpS1, format!("stack too large: program {total}B > hXDP stack {max}B"))
            }
            _ if nfp => {
                (RuleId::S2, format!("[nfp] stack too large: program {total}B > FW stack {max}B"))
            }
            _ => (RuleId::S2, format!("stack too large: program {total}B > {max}B")),
        };
        sink.add(
            rule,
            Violates,
            msg,
            format!("frames rounded up to {align} B along the deepest call chain"),
            None,
        );
    }
    if !out.stack_depth_unknown.is_empty() {
        sink.add(
            if profile.profile.family == Family::Hxdp { RuleId::HxdpS1 } else { RuleId::S2 },
            CannotProve,
            "cannot prove: stack usage within the limit".into(),
            "a stack access has an unbounded offset".into(),
            None,
        );
    }
    if nfp && frames > sl.max_call_frames.value as usize {
        sink.add(
            RuleId::S3,
            Violates,
            format!(
                "the call chain is {frames} frames deep, more than {} (MAX_CALL_FRAMES)",
                sl.max_call_frames.value
            ),
            String::new(),
            deepest_site,
        );
    }
}

fn packet(
    profile: &Profile,
    opts: &CheckOptions,
    out: &Outcome,
    sink: &mut Sink,
    stats: &mut Stats,
) {
    stats.max_pkt_offset_unbounded = out.pkt_offset_unbounded;
    stats.max_pkt_offset = (!out.pkt_offset_unbounded).then_some(out.max_pkt_offset);
    let Some(b) = &profile.packet.split_boundary else { return };
    let boundary = b.value as u64;
    let mtu = opts.mtu as u64;
    if out.pkt_offset_unbounded {
        let sev = if mtu > boundary { CannotProve } else { BehaviourDiffers };
        sink.add(
            RuleId::M7,
            sev,
            "cannot prove: packet access stays within the HW packet split boundary".into(),
            format!("a packet access has an unbounded offset; boundary {boundary} B, MTU {mtu}"),
            None,
        );
        return;
    }
    // nfp_bpf_offload_check_mtu: reject if min(max_pkt_offset, mtu) > fw_mtu.
    let reach = out.max_pkt_offset;
    if reach.min(mtu) > boundary {
        sink.add(RuleId::M7, Violates, "BPF offload not supported with potential packet access beyond HW packet split boundary".into(),
            format!("max packet offset {reach}, MTU {mtu}, boundary {boundary} B"), None);
    } else if reach > boundary {
        sink.add(RuleId::M7, BehaviourDiffers, "BPF offload active, potential packet access beyond hardware packet boundary".into(),
            format!("accepted at MTU {mtu}, but the program reaches offset {reach} > {boundary}: raising the MTU above {boundary} will be refused"), None);
    }
}

//! netdevsim and hXDP rules (offload-rules.md §2.1, §3), and the analysis bounds.

mod common;
use common::*;
use nic_model::opcode::*;
use nic_model::{check, check_with, CheckOptions, Offloadability, Severity};

#[test]
fn netdevsim_accepts_what_nfp_rejects() {
    // MOD, callx, bpf_redirect and a REDIRECT return: netdevsim models no ISA limits.
    let p = Prog::new()
        .mov(1, 7)
        .alu(MOD, 1, 3)
        .mov(2, 0)
        .raw(JMP | CALL | X, 2, 0, 0, 0)
        .call(helper::REDIRECT)
        .ret(4)
        .xdp();
    let r = check(&p, &profile("netdevsim"));
    assert_rules(&r, &[]);
    assert_eq!(r.verdict, Offloadability::Offloadable);
    let nfp = check(&p, &corenic());
    assert_rules(&nfp, &["NFP-H1", "NFP-I4", "NFP-R1", "NFP-S3"]);
}

#[test]
fn netdevsim_map_rules() {
    let nsim = profile("netdevsim");
    let r = check(&Prog::new().ret(2).xdp_maps(vec![map("lru", 9, 4, 8, 2)]), &nsim);
    assert_rules(&r, &["NSIM-M1"]);
    let r =
        check(&Prog::new().ret(2).xdp_maps(vec![map("three", map_type::ARRAY, 4, 8, 3)]), &nsim);
    assert_rules(&r, &["NSIM-M2"]);
    let mut m = map("f", map_type::HASH, 4, 8, 2);
    m.flags = 1;
    let r = check(&Prog::new().ret(2).xdp_maps(vec![m]), &nsim);
    assert_rules(&r, &["NSIM-M3"]);
    let r = check(&Prog::new().ret(2).xdp_maps(vec![map("ok", map_type::HASH, 4, 8, 2)]), &nsim);
    assert_rules(&r, &[]);
}

#[test]
fn netdevsim_still_enforces_kernel_program_type() {
    let r = check(&Prog::new().ret(0).spec("socket", vec![]), &profile("netdevsim"));
    assert_rules(&r, &["NFP-T1"]);
}

#[test]
fn hxdp_xdp_only() {
    let r = check(&Prog::new().ret(2).spec("tc", vec![]), &profile("hxdp"));
    assert_rules(&r, &["HXDP-T1"]);
}

#[test]
fn hxdp_instruction_rows() {
    // 1100 instructions need at least ceil(1100/4) = 275 rows > 256.
    let mut p = Prog::new();
    for _ in 0..1098 {
        p = p.alu(ADD, 0, 1);
    }
    let r = check(&p.ret(2).xdp(), &profile("hxdp"));
    assert_rules(&r, &["HXDP-C1"]);
    assert_eq!(severity_of(&r, "HXDP-C1"), Severity::Violates);
    assert_eq!(r.stats.code_size_lower_bound, Some(275));
    // 800 instructions in one dependency chain: the lower bound (200 rows)
    // fits, but the modelled compiler's schedule needs a row per link.
    let mut p = Prog::new();
    for _ in 0..798 {
        p = p.alu(ADD, 0, 1);
    }
    let r = check(&p.ret(2).xdp(), &profile("hxdp"));
    assert_eq!(severity_of(&r, "HXDP-C1"), Severity::CannotProve);
    assert!(r.stats.code_size_estimate.unwrap() >= 798);
    // 800 independent instructions (four registers in turn, each added to
    // itself): four per row, so 200 rows plus the exit's, which fits.
    let mut p = Prog::new();
    for k in 0..798u32 {
        p = p.alu(ADD, 2 + (k % 4) as u8, 1);
    }
    let r = check(&p.ret(2).xdp(), &profile("hxdp"));
    assert!(r.findings.iter().all(|f| f.rule.id() != "HXDP-C1"), "{}", r.to_text());
    let rows = r.stats.code_size_estimate.unwrap();
    assert!((200..=202).contains(&rows), "{rows} rows");
}

#[test]
fn hxdp_stack_and_isa() {
    // 300 B in main plus 300 B in a callee: 600 B > 512 B (no frame rounding on hXDP).
    let p = Prog::new()
        .mov(2, 0)
        .stx(DW, 10, -300, 2)
        .call_pc(2)
        .ret(2)
        .mov(2, 0)
        .stx(DW, 10, -300, 2)
        .ret(0)
        .xdp();
    let r = check(&p, &profile("hxdp"));
    assert_rules(&r, &["HXDP-S1"]);
    let r = check(&Prog::new().raw(JMP32 | JA, 0, 0, 0, 0).ret(2).xdp(), &profile("hxdp"));
    assert_rules(&r, &["HXDP-I1"]);
}

#[test]
fn bounded_loop_terminates_and_keeps_ranges_sound() {
    // for (i = 0; i < 1000; i++) ; i += 2^33; i *= 3: concretely i = 2^33 + 1000
    // at the MUL, so NFP-I2 must be reported (violates, or cannot prove after widening).
    let p = Prog::new()
        .mov(1, 0) // 0
        .alu(ADD, 1, 1) // 1
        .jmp(JLT, 1, 1000, -2) // 2 -> 1
        .lddw(3, 1 << 33) // 3,4
        .alur(ADD, 1, 3) // 5
        .alu(MUL, 1, 3) // 6
        .ret(2)
        .xdp();
    let r = check(&p, &corenic());
    assert_rules(&r, &["NFP-I2"]);
    assert!(r.stats.joined_instructions > 0, "the loop must have forced joins");
    // Without the addition, i = 1000 at the MUL: within u32, so the checker
    // may be unsure but must never claim a violation.
    let p = Prog::new().mov(1, 0).alu(ADD, 1, 1).jmp(JLT, 1, 1000, -2).alu(MUL, 1, 3).ret(2).xdp();
    let r = check(&p, &corenic());
    assert!(r.findings.iter().all(|f| f.severity != Severity::Violates), "{}", r.to_text());
    assert!(!ids(&r).contains(&"ANALYSIS-BUDGET"));
}

#[test]
fn joined_states_give_cannot_prove() {
    // Many paths with different constant stack offsets force a join (state cap 2);
    // the joined offset is a range, so the constant-offset rule cannot be proven.
    let opts = CheckOptions {
        limits: nic_model::absint::Limits { state_cap: 2, ..Default::default() },
        ..Default::default()
    };
    let mut p = Prog::new().call(7).movr(2, 10);
    for k in 1..=4 {
        p = p.jmp(JEQ, 0, k, 1).alu(ADD, 2, -4);
    }
    let p = p.ldx(B, 3, 2, -4).ret(2).xdp();
    let r = check_with(&p, &corenic(), &opts);
    assert_eq!(severity_of(&r, "NFP-S4"), Severity::CannotProve, "{}", r.to_text());
    // With the default cap every path is explored separately: all offsets are
    // multiples of 4, so nothing is reported.
    assert_rules(&check(&p, &corenic()), &[]);
}

#[test]
fn budget_exhaustion_is_reported() {
    let opts = CheckOptions {
        limits: nic_model::absint::Limits { budget: 3, ..Default::default() },
        ..Default::default()
    };
    let r = check_with(
        &Prog::new().mov(1, 0).mov(2, 0).mov(3, 0).mov(4, 0).ret(2).xdp(),
        &corenic(),
        &opts,
    );
    assert_rules(&r, &["ANALYSIS-BUDGET"]);
    assert_eq!(r.verdict, Offloadability::NotOffloadable);
}

#[test]
fn packet_walk_loop_converges_within_budget() {
    // The shape of firewall.c's IPv6 extension-header walk: the packet pointer
    // advances by a length read from the packet on every iteration. Widening
    // must make this converge long before the analysis budget; before the fix
    // it ran to the budget (ANALYSIS-BUDGET, verdict not_offloadable).
    let p = Prog::new()
        .xdp_pkt() // 0, 1: r6 = data, r7 = data_end
        .movr(2, 6) // 2: loop head
        .alu(ADD, 2, 2)
        .jmpr(JGT, 2, 7, 5) // 4: past the end -> 10
        .ldx(B, 3, 6, 1)
        .alu(ADD, 3, 1)
        .alu(LSH, 3, 3)
        .alur(ADD, 6, 3)
        .ja(-8) // 9: back to 2
        .ret(2)
        .xdp();
    let r = check(&p, &profile("hxdp"));
    assert!(!ids(&r).contains(&"ANALYSIS-BUDGET"), "{:?}", ids(&r));
    assert_eq!(r.verdict, Offloadability::Offloadable);
    // On the NFP the reach is unbounded: accepted at MTU 1500, MTU raise refused.
    let nfp = check(&p, &corenic());
    assert_rules(&nfp, &["NFP-M7"]);
}

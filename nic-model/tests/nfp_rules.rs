//! One program per rule of docs/offload-rules.md that breaks exactly that rule.
//! Expected rule IDs and severities are worked out from that document's tables,
//! not recorded from the checker.

mod common;
use common::*;
use nic_model::opcode::*;
use nic_model::{check, check_with, CheckOptions, Offloadability, Severity};

/// Passes every rule on nfp-corenic: bounds-checked packet read, in-range
/// MUL/DIV, stack key lookup, XADD into the map value, reads of another word.
fn passing() -> nic_model::ProgramSpec {
    Prog::new()
        .xdp_pkt() // 0,1
        .movr(8, 6) // 2
        .alu(ADD, 8, 14) // 3
        .jmpr(JGT, 8, 7, 16) // 4 -> 21 (drop)
        .ldx(H, 9, 6, 12) // 5 ethertype
        .alu(MUL, 9, 3) // 6 r9 <= 0xffff*3
        .alu(DIV, 9, 7) // 7
        .lookup_or_skip(3) // 8..15, 15 -> 19
        .mov(1, 1) // 16
        .xadd(DW, 0, 0, 1) // 17
        .ldx(DW, 1, 0, 8) // 18
        .ret(2) // 19,20 XDP_PASS
        .ret(1) // 21,22 XDP_DROP
        .xdp_maps(vec![counters()])
}

#[test]
fn passing_program_is_compatible_on_corenic() {
    let p = passing();
    let r = check(&p, &corenic());
    assert_rules(&r, &[]);
    assert_eq!(r.verdict, Offloadability::Offloadable);
    assert_eq!(r.verdict.exit_code(), 0);
    assert_eq!(r.stats.max_pkt_offset, Some(13));
    assert_eq!(r.stats.reachable_insns, p.insns.len() - 1, "all but the lddw second slot");
}

#[test]
fn t1_program_type() {
    let r = check(&Prog::new().ret(0).spec("kprobe/sys_open", vec![]), &corenic());
    assert_rules(&r, &["NFP-T1"]);
    assert_eq!(r.verdict, Offloadability::NotOffloadable);
    assert_eq!(r.verdict.exit_code(), 1);
}

#[test]
fn t2_prog_flags_from_frags_section() {
    let r = check(&Prog::new().ret(2).spec("xdp.frags", vec![]), &corenic());
    assert_rules(&r, &["NFP-T2"]);
}

#[test]
fn t9_extended_registers() {
    let r = check(&Prog::new().mov(11, 0).ret(2).xdp(), &corenic());
    assert_rules(&r, &["NFP-T9"]);
    assert_eq!(
        finding(&r, "NFP-T9").message,
        "[nfp] program uses extended registers - jit hardening?"
    );
}

#[test]
fn s1_code_size_lower_bound_exceeds_2560() {
    // 1300 ALU64 ops need at least 2 NFP instructions each: 2600 + 8 NOPs > 2560.
    let mut p = Prog::new().mov(0, 0);
    for _ in 0..1300 {
        p = p.alu(ADD, 0, 1);
    }
    let r = check(&p.mov(0, 2).exit().xdp(), &corenic());
    assert_rules(&r, &["NFP-S1"]);
    assert_eq!(severity_of(&r, "NFP-S1"), Severity::Violates);
}

#[test]
fn s1_code_size_estimate_only_is_cannot_prove() {
    // 700 ctx loads: lower bound 700 + 8 fits, the estimate (4 each) does not.
    let mut p = Prog::new();
    for _ in 0..700 {
        p = p.ldx(W, 0, 1, 0);
    }
    let r = check(&p.ret(2).xdp(), &corenic());
    assert_rules(&r, &["NFP-S1"]);
    assert_eq!(severity_of(&r, "NFP-S1"), Severity::CannotProve);
}

#[test]
fn s2_stack_frames_round_to_64() {
    // main touches 8 B (-> 64), the callee 480 B + 4 B return address (-> 512):
    // 576 B > 512 B FW stack, though the kernel's 32-B rounding gives 512.
    let p = Prog::new()
        .mov(2, 0)
        .stx(DW, 10, -8, 2)
        .call_pc(2) // -> 5
        .ret(2) // 3,4
        .mov(2, 0) // 5
        .stx(DW, 10, -480, 2)
        .ret(0)
        .xdp();
    let r = check(&p, &corenic());
    assert_rules(&r, &["NFP-S2"]);
    assert_eq!(
        finding(&r, "NFP-S2").message,
        "[nfp] stack too large: program 576B > FW stack 512B"
    );
    assert_eq!(r.stats.stack_bytes, Some(576));
}

#[test]
fn s2_callee_writing_r6_r9_adds_32_bytes() {
    // Callee: 440 B + 4 + 32 (writes r6) = 476 -> 512; main 8 -> 64: 576 > 512.
    let p = Prog::new()
        .stx(DW, 10, -8, 1)
        .call_pc(2)
        .ret(2)
        .mov(6, 0)
        .stx(DW, 10, -440, 6)
        .ret(0)
        .xdp();
    let r = check(&p, &corenic());
    assert_rules(&r, &["NFP-S2"]);
    // Without the r6 write the callee frame is 444 -> 448: 512 total, fits.
    let p = Prog::new()
        .stx(DW, 10, -8, 1)
        .call_pc(2)
        .ret(2)
        .mov(2, 0)
        .stx(DW, 10, -440, 2)
        .ret(0)
        .xdp();
    assert_rules(&check(&p, &corenic()), &[]);
}

#[test]
fn s3_callx() {
    let r = check(&Prog::new().mov(2, 0).raw(JMP | CALL | X, 2, 0, 0, 0).ret(2).xdp(), &corenic());
    assert_rules(&r, &["NFP-S3"]);
    assert_eq!(finding(&r, "NFP-S3").message, "[nfp] instruction 0x8d not supported");
}

#[test]
fn s3_call_depth_over_max_call_frames() {
    // main + 8 nested callees = 9 frames > MAX_CALL_FRAMES (8). Each callee
    // frame is 4 B (return address) -> 64 B: 8 x 64 = 512 B still fits the stack.
    let mut p = Prog::new().call_pc(2).ret(2);
    for _ in 0..7 {
        p = p.call_pc(2).ret(0);
    }
    let r = check(&p.ret(0).xdp(), &corenic());
    assert_rules(&r, &["NFP-S3"]);
    assert_eq!(r.stats.stack_bytes, Some(512));
}

#[test]
fn s4_variable_stack_pointer() {
    let p = Prog::new()
        .call(helper::GET_PRANDOM_U32)
        .alu(AND, 0, 7)
        .movr(2, 10)
        .alu(ADD, 2, -16)
        .alur(ADD, 2, 0)
        .ldx(B, 3, 2, 0)
        .ret(2)
        .xdp();
    let r = check(&p, &corenic());
    assert_rules(&r, &["NFP-S4"]);
    assert_eq!(severity_of(&r, "NFP-S4"), Severity::Violates);
    assert_eq!(finding(&r, "NFP-S4").insn, Some(5));
}

#[test]
fn s5_stack_location_changes_across_paths() {
    let p = Prog::new()
        .call(helper::GET_PRANDOM_U32) // 0
        .movr(2, 10) // 1
        .jmp(JGT, 0, 5, 2) // 2 -> 5
        .alu(ADD, 2, -8) // 3
        .ja(1) // 4 -> 6
        .alu(ADD, 2, -6) // 5
        .ldx(B, 3, 2, 0) // 6: fp-8 on one path, fp-6 on the other
        .ret(2)
        .xdp();
    let r = check(&p, &corenic());
    assert_rules(&r, &["NFP-S5"]);
    let f = finding(&r, "NFP-S5");
    assert_eq!(f.insn, Some(6));
    assert!(f.message.starts_with("[nfp] stack access changed location was:"), "{}", f.message);
    // -8 and -4 share off % 4: allowed.
    let p = Prog::new()
        .call(7)
        .movr(2, 10)
        .jmp(JGT, 0, 5, 2)
        .alu(ADD, 2, -8)
        .ja(1)
        .alu(ADD, 2, -4)
        .ldx(B, 3, 2, 0)
        .ret(2)
        .xdp();
    assert_rules(&check(&p, &corenic()), &[]);
}

#[test]
fn s6_pointer_type_changes_across_paths() {
    let p = Prog::new()
        .xdp_pkt() // 0,1
        .movr(8, 6) // 2
        .alu(ADD, 8, 1) // 3
        .jmpr(JGT, 8, 7, 8) // 4 -> 13
        .call(helper::GET_PRANDOM_U32) // 5
        .movr(2, 10) // 6
        .alu(ADD, 2, -8) // 7
        .jmp(JGT, 0, 5, 1) // 8 -> 10
        .movr(2, 6) // 9
        .ldx(B, 3, 2, 0) // 10: stack on one path, packet on the other
        .ret(2) // 11,12
        .ret(2) // 13,14
        .xdp();
    let r = check(&p, &corenic());
    assert_rules(&r, &["NFP-S6"]);
    assert_eq!(finding(&r, "NFP-S6").insn, Some(10));
}

#[test]
fn s7_tail_call() {
    let r = check(&Prog::new().call(helper::TAIL_CALL).ret(2).xdp(), &corenic());
    assert_rules(&r, &["NFP-S7"]);
    assert_eq!(finding(&r, "NFP-S7").message, "[nfp] unsupported function id: 12");
}

#[test]
fn i1_undefined_opcode() {
    // 0xe7: ALU64 with operation 0xe0, which the ISA does not define.
    let r = check(&Prog::new().raw(0xe7, 0, 0, 0, 0).ret(2).xdp(), &corenic());
    assert_rules(&r, &["NFP-I1"]);
    // 0x38 (LD|ABS|DW) is invalid and absent from instr_cb.
    let r = check(&Prog::new().raw(0x38, 0, 0, 0, 0).ret(2).spec("tc", vec![]), &corenic());
    assert!(ids(&r).contains(&"NFP-I1"), "{}", r.to_text());
}

#[test]
fn i2_mul_ranges() {
    // Unknown 64-bit value from the packet: cannot prove it fits u32.
    let p = Prog::new()
        .xdp_pkt()
        .movr(8, 6)
        .alu(ADD, 8, 8)
        .jmpr(JGT, 8, 7, 2)
        .ldx(DW, 0, 6, 0)
        .alu(MUL, 0, 3)
        .ret(2)
        .xdp();
    let r = check(&p, &corenic());
    assert_rules(&r, &["NFP-I2"]);
    assert_eq!(severity_of(&r, "NFP-I2"), Severity::CannotProve);
    assert!(finding(&r, "NFP-I2").message.contains("multiplicand is not within u32 value range"));
    // A constant above U32_MAX definitely violates.
    let r = check(&Prog::new().lddw(1, 1 << 32).alu(MUL, 1, 3).ret(2).xdp(), &corenic());
    assert_rules(&r, &["NFP-I2"]);
    assert_eq!(severity_of(&r, "NFP-I2"), Severity::Violates);
    // ALU64 MUL by a negative immediate.
    let r = check(&Prog::new().mov(1, 5).alu(MUL, 1, -1).ret(2).xdp(), &corenic());
    assert_rules(&r, &["NFP-I2"]);
    assert_eq!(
        finding(&r, "NFP-I2").message,
        "[nfp] sign extended multiplicand won't be within u32 value range"
    );
    // A branch bounds the value: the verifier-style refinement proves it.
    let p = Prog::new()
        .xdp_pkt()
        .movr(8, 6)
        .alu(ADD, 8, 8)
        .jmpr(JGT, 8, 7, 3)
        .ldx(DW, 0, 6, 0)
        .jmp(JGT, 0, 1000, 1)
        .alu(MUL, 0, 3)
        .ret(2)
        .xdp();
    assert_rules(&check(&p, &corenic()), &[]);
}

#[test]
fn i3_div_rules() {
    let r = check(
        &Prog::new().call(helper::GET_PRANDOM_U32).mov(1, 100).alur(DIV, 1, 0).ret(2).xdp(),
        &corenic(),
    );
    assert_rules(&r, &["NFP-I3"]);
    assert_eq!(finding(&r, "NFP-I3").message, "[nfp] divisor is not constant");
    let r = check(&Prog::new().mov(1, 100).alu(DIV, 1, -2).ret(2).xdp(), &corenic());
    assert_eq!(finding(&r, "NFP-I3").message, "[nfp] divide by negative constant is not supported");
    assert_rules(&r, &["NFP-I3"]);
    let r = check(&Prog::new().lddw(1, 1 << 40).alu(DIV, 1, 3).ret(2).xdp(), &corenic());
    assert_eq!(finding(&r, "NFP-I3").message, "[nfp] dividend is not within u32 value range");
    // Constant register divisor: allowed.
    let r = check(&Prog::new().call(7).mov(1, 10).alur(DIV, 0, 1).ret(2).xdp(), &corenic());
    assert_rules(&r, &[]);
}

#[test]
fn i4_mod() {
    // Valid encodings (the kernel rejects K forms with src != 0 and X forms with imm != 0).
    for (code, src, imm) in [(0x94u8, 0, 3), (0x97, 0, 3), (0x9c, 2, 0), (0x9f, 2, 0)] {
        let r = check(
            &Prog::new().mov(1, 7).mov(2, 3).raw(code, 1, src, 0, imm).ret(2).xdp(),
            &corenic(),
        );
        assert_rules(&r, &["NFP-I4"]);
    }
}

#[test]
fn i6_end_to_le_and_bswap() {
    let r = check(&Prog::new().mov(1, 7).raw(ALU | END | K, 1, 0, 0, 16).ret(2).xdp(), &corenic());
    assert_rules(&r, &["NFP-I6"]);
    let r =
        check(&Prog::new().mov(1, 7).raw(ALU64 | END | K, 1, 0, 0, 32).ret(2).xdp(), &corenic());
    assert_rules(&r, &["NFP-I6"]);
    // to-be is supported.
    let r = check(&Prog::new().mov(1, 7).raw(ALU | END | X, 1, 0, 0, 16).ret(2).xdp(), &corenic());
    assert_rules(&r, &[]);
}

#[test]
fn i7_gotol() {
    let r = check(&Prog::new().raw(JMP32 | JA, 0, 0, 0, 0).ret(2).xdp(), &corenic());
    assert_rules(&r, &["NFP-I7"]);
}

#[test]
fn i8_atomics() {
    // fetch-add into a map value: op not implemented.
    let p = Prog::new()
        .lookup_or_skip(2)
        .mov(1, 1)
        .raw(STX | MODE_ATOMIC | DW, 0, 1, 0, ATOMIC_ADD | ATOMIC_FETCH)
        .ret(2)
        .xdp_maps(vec![counters()]);
    let r = check(&p, &corenic());
    assert_rules(&r, &["NFP-I8"]);
    assert_eq!(finding(&r, "NFP-I8").message, "[nfp] atomic op not implemented: 1");
    // XADD to the stack: not a map value pointer (PTR_TO_STACK = 6).
    let r = check(
        &Prog::new().mov(1, 0).stx(DW, 10, -8, 1).mov(1, 1).xadd(DW, 10, -8, 1).ret(2).xdp(),
        &corenic(),
    );
    assert_rules(&r, &["NFP-I8"]);
    assert_eq!(finding(&r, "NFP-I8").message, "[nfp] atomic add not to a map value pointer: 6");
    // XADD of a pointer.
    let p = Prog::new().lookup_or_skip(1).xadd(DW, 0, 0, 10).ret(2).xdp_maps(vec![counters()]);
    let r = check(&p, &corenic());
    assert_rules(&r, &["NFP-I8"]);
    assert_eq!(finding(&r, "NFP-I8").message, "[nfp] atomic add not of a scalar: 6");
}

#[test]
fn i9_read_and_atomic_on_the_same_word() {
    let p = Prog::new()
        .lookup_or_skip(3)
        .ldx(DW, 1, 0, 0)
        .mov(1, 1)
        .xadd(DW, 0, 0, 1)
        .ret(2)
        .xdp_maps(vec![counters()]);
    let r = check(&p, &corenic());
    assert_rules(&r, &["NFP-I9"]);
    assert!(finding(&r, "NFP-I9").message.starts_with("[nfp] map value use type conflict"));
}

#[test]
fn i9_update_writes_non_zero_counter() {
    // On a firmware with map_update (assumed Agilio eBPF): the value written
    // holds 5 in a word that is atomically added elsewhere.
    let p = Prog::new()
        .lookup_or_skip(2) // 0..7, 6 -> 9
        .mov(1, 1) // 7
        .xadd(DW, 0, 0, 1) // 8
        .mov(1, 5) // 9
        .stx(DW, 10, -24, 1) // 10
        .stx(DW, 10, -16, 1) // 11
        .ld_map(1, 0) // 12,13
        .movr(2, 10)
        .alu(ADD, 2, -4)
        .movr(3, 10)
        .alu(ADD, 3, -24)
        .mov(4, 0)
        .call(helper::MAP_UPDATE_ELEM)
        .ret(2)
        .xdp_maps(vec![counters()]);
    let r = check(&p, &profile("nfp-agilio-ebpf"));
    assert_rules(&r, &["NFP-I9"]);
    assert_eq!(severity_of(&r, "NFP-I9"), Severity::Violates);
}

#[test]
fn i10_store_immediate() {
    let r = check(&Prog::new().st(W, 10, -4, 0).ret(2).xdp(), &corenic());
    assert_rules(&r, &["NFP-I10"]);
}

#[test]
fn i11_sign_extending_load() {
    let r = check(&Prog::new().raw(LDX | MODE_MEMSX | W, 0, 1, 0, 0).ret(2).xdp(), &corenic());
    assert_rules(&r, &["NFP-I11"]);
}

#[test]
fn i12_movsx_and_sdiv() {
    let r =
        check(&Prog::new().mov(1, 200).raw(ALU64 | MOV | X, 2, 1, 8, 0).ret(2).xdp(), &corenic());
    assert_rules(&r, &["NFP-I12"]);
    let r =
        check(&Prog::new().mov(1, 200).raw(ALU64 | DIV | K, 1, 0, 1, 3).ret(2).xdp(), &corenic());
    assert_rules(&r, &["NFP-I12"]);
}

#[test]
fn i13_ld_abs_in_xdp() {
    let r = check(&Prog::new().raw(LD | MODE_ABS | B, 0, 0, 0, 12).ret(2).xdp(), &corenic());
    assert_rules(&r, &["NFP-I13"]);
    // TC may use it (r0 = SHOT is an allowed TC return).
    let r = check(
        &Prog::new().raw(LD | MODE_ABS | B, 0, 0, 0, 12).ret(2).spec("tc", vec![]),
        &corenic(),
    );
    assert_rules(&r, &[]);
}

#[test]
fn i14_ld_imm64_pseudo_btf_id() {
    let r =
        check(&Prog::new().raw(LD_DW_IMM, 1, 3, 0, 7).raw(0, 0, 0, 0, 0).ret(2).xdp(), &corenic());
    assert_rules(&r, &["NFP-I14"]);
}

#[test]
fn m1_deref_of_packet_end() {
    let r = check(&Prog::new().ldx(W, 2, 1, 4).ldx(B, 0, 2, 0).ret(2).xdp(), &corenic());
    assert_rules(&r, &["NFP-M1"]);
    assert_eq!(finding(&r, "NFP-M1").message, "[nfp] unsupported ptr type: 9");
}

#[test]
fn m2_store_to_map_value() {
    let p =
        Prog::new().lookup_or_skip(2).mov(1, 1).stx(DW, 0, 0, 1).ret(2).xdp_maps(vec![counters()]);
    let r = check(&p, &corenic());
    assert_rules(&r, &["NFP-M2"]);
    assert_eq!(finding(&r, "NFP-M2").message, "[nfp] map writes not supported");
}

#[test]
fn m3_map_value_offsets() {
    let p = Prog::new()
        .call(helper::GET_PRANDOM_U32)
        .movr(6, 0)
        .alu(AND, 6, 7)
        .lookup_or_skip(2)
        .alur(ADD, 0, 6)
        .ldx(B, 1, 0, 0)
        .ret(2)
        .xdp_maps(vec![counters()]);
    let r = check(&p, &corenic());
    assert_rules(&r, &["NFP-M3"]);
    assert_eq!(finding(&r, "NFP-M3").message, "[nfp] map value offset is variable");
    let p = Prog::new().lookup_or_skip(1).ldx(DW, 1, 0, 16).ret(2).xdp_maps(vec![counters()]);
    let r = check(&p, &corenic());
    assert_rules(&r, &["NFP-M3"]);
    assert_eq!(finding(&r, "NFP-M3").message, "[nfp] map value access out-of-bounds");
}

#[test]
fn m4_xdp_ctx_read_of_rx_queue_index() {
    let r = check(&Prog::new().ldx(W, 0, 1, 16).ret(2).xdp(), &corenic());
    assert_rules(&r, &["NFP-M4"]);
}

#[test]
fn m5_xdp_ctx_writes() {
    let r = check(&Prog::new().mov(2, 1).stx(W, 1, 12, 2).ret(2).xdp(), &corenic());
    assert_rules(&r, &["NFP-M5"]);
    assert_eq!(finding(&r, "NFP-M5").message, "[nfp] unsupported store to context field");
    // rx_queue_index is writable with QUEUE_SELECT...
    let p = Prog::new().mov(2, 1).stx(W, 1, 16, 2).ret(2).xdp();
    assert_rules(&check(&p, &corenic()), &[]);
    // ...and not without it.
    let mut prof = corenic();
    prof.helpers.queue_select.value = false;
    let r = check(&p, &prof);
    assert_rules(&r, &["NFP-M5"]);
    assert_eq!(finding(&r, "NFP-M5").message, "[nfp] queue selection not supported by FW");
}

#[test]
fn m6_tc_ctx_read_of_mark() {
    let r = check(&Prog::new().ldx(W, 0, 1, 8).ret(2).spec("tc", vec![]), &corenic());
    assert_rules(&r, &["NFP-M6"]);
    let r = check(
        &Prog::new()
            .ldx(W, 0, 1, 0)
            .ldx(W, 2, 1, 76)
            .ldx(W, 3, 1, 80)
            .ret(2)
            .spec("classifier", vec![]),
        &corenic(),
    );
    assert_rules(&r, &[]);
}

fn reaches_2000() -> nic_model::ProgramSpec {
    Prog::new()
        .xdp_pkt()
        .movr(8, 6)
        .alu(ADD, 8, 2001)
        .jmpr(JGT, 8, 7, 1)
        .ldx(B, 0, 6, 2000)
        .ret(2)
        .xdp()
}

#[test]
fn m7_packet_reach_beyond_split_boundary() {
    let opts = CheckOptions { mtu: 9000, ..CheckOptions::default() };
    let r = check_with(&reaches_2000(), &corenic(), &opts);
    assert_rules(&r, &["NFP-M7"]);
    assert_eq!(severity_of(&r, "NFP-M7"), Severity::Violates);
    assert_eq!(r.stats.max_pkt_offset, Some(2000));
    // At MTU 1500 min(2000, 1500) <= 1888: loads, but the MTU cannot grow.
    let r = check(&reaches_2000(), &corenic());
    assert_rules(&r, &["NFP-M7"]);
    assert_eq!(severity_of(&r, "NFP-M7"), Severity::BehaviourDiffers);
    assert_eq!(r.verdict, Offloadability::OffloadableWithFallback);
}

#[test]
fn h1_unsupported_helpers() {
    for id in [helper::REDIRECT, helper::REDIRECT_MAP, 5, 69] {
        let r = check(&Prog::new().call(id).ret(2).xdp(), &corenic());
        assert_rules(&r, &["NFP-H1"]);
        assert_eq!(finding(&r, "NFP-H1").message, format!("[nfp] unsupported function id: {id}"));
    }
    // kfunc
    let r = check(
        &Prog::new().raw(JMP | CALL, 0, PSEUDO_KFUNC_CALL, 0, 12345).ret(2).xdp(),
        &corenic(),
    );
    assert_rules(&r, &["NFP-H1"]);
}

#[test]
fn h2_helpers_missing_from_corenic_firmware() {
    let p = Prog::new()
        .ld_map(1, 0)
        .movr(2, 10)
        .alu(ADD, 2, -4)
        .movr(3, 10)
        .alu(ADD, 3, -24)
        .mov(4, 0)
        .call(helper::MAP_UPDATE_ELEM)
        .ret(2)
        .xdp_maps(vec![counters()]);
    let r = check(&p, &corenic());
    assert_rules(&r, &["NFP-H2"]);
    assert_eq!(finding(&r, "NFP-H2").message, "[nfp] map_update: not supported by FW");
    // The assumed Agilio eBPF firmware has it.
    assert_rules(&check(&p, &profile("nfp-agilio-ebpf")), &[]);
    let r = check(&Prog::new().call(helper::PERF_EVENT_OUTPUT).ret(2).xdp(), &corenic());
    assert_rules(&r, &["NFP-H2"]);
}

#[test]
fn h3_map_helper_key_pointer() {
    // Key in the packet.
    let p = Prog::new()
        .xdp_pkt()
        .movr(8, 6)
        .alu(ADD, 8, 4)
        .jmpr(JGT, 8, 7, 4)
        .ld_map(1, 0)
        .movr(2, 6)
        .call(1)
        .ret(2)
        .xdp_maps(vec![counters()]);
    let r = check(&p, &corenic());
    assert_rules(&r, &["NFP-H3"]);
    assert_eq!(finding(&r, "NFP-H3").message, "[nfp] map_lookup: unsupported ptr type 8");
    // Unaligned stack key.
    let p = Prog::new()
        .mov(2, 0)
        .stx(DW, 10, -8, 2)
        .ld_map(1, 0)
        .movr(2, 10)
        .alu(ADD, 2, -6)
        .call(1)
        .ret(2)
        .xdp_maps(vec![counters()]);
    let r = check(&p, &corenic());
    assert_rules(&r, &["NFP-H3"]);
    assert_eq!(finding(&r, "NFP-H3").message, "[nfp] map_lookup: unaligned stack pointer 6");
}

#[test]
fn h4_adjust_head() {
    // Constant delta in the fast window, one call site: nothing to report.
    let r = check(&Prog::new().mov(2, -14).call(helper::XDP_ADJUST_HEAD).ret(2).xdp(), &corenic());
    assert_rules(&r, &[]);
    // The same delta set by a 32-bit move (`w2 = -14`, as clang emits for
    // an int argument): the register holds 0xfffffff2, which the driver
    // reads as the int -14 (nfp_record_adjust_head), so still the fast path.
    let r = check(
        &Prog::new().raw(ALU | MOV | K, 2, 0, 0, -14).call(helper::XDP_ADJUST_HEAD).ret(2).xdp(),
        &corenic(),
    );
    assert_rules(&r, &[]);
    assert_eq!(r.verdict, Offloadability::Offloadable);
    // Outside [-84, 46]: slow path with a runtime window check.
    let r = check(&Prog::new().mov(2, -200).call(helper::XDP_ADJUST_HEAD).ret(2).xdp(), &corenic());
    assert_rules(&r, &["NFP-H4"]);
    assert_eq!(severity_of(&r, "NFP-H4"), Severity::BehaviourDiffers);
    // FW that requires metadata shifting.
    let mut prof = corenic();
    prof.helpers.adjust_head.as_mut().unwrap().no_meta.value = false;
    let r = check(&Prog::new().mov(2, -14).call(helper::XDP_ADJUST_HEAD).ret(2).xdp(), &prof);
    assert_rules(&r, &["NFP-H4"]);
    assert_eq!(
        finding(&r, "NFP-H4").message,
        "[nfp] adjust_head: FW requires shifting metadata, not supported by the driver"
    );
}

#[test]
fn h5_adjust_tail_grows() {
    let r = check(&Prog::new().mov(2, 10).call(helper::XDP_ADJUST_TAIL).ret(2).xdp(), &corenic());
    assert_rules(&r, &["NFP-H5"]);
    assert_eq!(severity_of(&r, "NFP-H5"), Severity::BehaviourDiffers);
    let r = check(&Prog::new().mov(2, -10).call(helper::XDP_ADJUST_TAIL).ret(2).xdp(), &corenic());
    assert_rules(&r, &[]);
}

#[test]
fn h6_perf_event_output() {
    let perf = map("events", map_type::PERF_EVENT_ARRAY, 4, 4, 2);
    // flags 0 instead of BPF_F_CURRENT_CPU.
    let p = Prog::new()
        .ld_map(2, 0)
        .mov(3, 0)
        .movr(4, 10)
        .alu(ADD, 4, -8)
        .mov(5, 8)
        .call(helper::PERF_EVENT_OUTPUT)
        .ret(2)
        .xdp_maps(vec![perf.clone()]);
    let r = check(&p, &profile("nfp-agilio-ebpf"));
    assert_rules(&r, &["NFP-H6"]);
    assert_eq!(severity_of(&r, "NFP-H6"), Severity::Violates);
    // Correct flags: only the asynchronous-semantics warning remains.
    let p = Prog::new()
        .ld_map(2, 0)
        .lddw(3, 0xffff_ffff)
        .movr(4, 10)
        .alu(ADD, 4, -8)
        .mov(5, 8)
        .call(helper::PERF_EVENT_OUTPUT)
        .ret(2)
        .xdp_maps(vec![perf]);
    let r = check(&p, &profile("nfp-agilio-ebpf"));
    assert_rules(&r, &["NFP-H6"]);
    assert_eq!(severity_of(&r, "NFP-H6"), Severity::BehaviourDiffers);
    assert_eq!(r.verdict, Offloadability::OffloadableWithFallback);
}

#[test]
fn r1_xdp_redirect_return_is_a_drop() {
    let r = check(&Prog::new().ret(4).xdp(), &corenic());
    assert_rules(&r, &["NFP-R1"]);
    assert_eq!(severity_of(&r, "NFP-R1"), Severity::BehaviourDiffers);
    assert_eq!(r.verdict, Offloadability::OffloadableWithFallback);
}

#[test]
fn r2_tc_return_codes() {
    // TC_ACT_OK (0) is <= TC_ACT_REDIRECT and not SHOT/STOLEN/QUEUED.
    let r = check(&Prog::new().ret(0).spec("tc", vec![]), &corenic());
    assert_rules(&r, &["NFP-R2"]);
    assert_eq!(finding(&r, "NFP-R2").message, "[nfp] unsupported exit state: 1, imm: 0");
    // Unknown value.
    let r = check(&Prog::new().call(7).exit().spec("tc", vec![]), &corenic());
    assert_rules(&r, &["NFP-R2"]);
    // TC_ACT_UNSPEC (-1) is > 7 as u64 and allowed.
    assert_rules(&check(&Prog::new().ret(-1).spec("tc", vec![]), &corenic()), &[]);
}

#[test]
fn p1_map_type_not_offloadable() {
    let r = check(&Prog::new().ret(2).xdp_maps(vec![map("lru", 9, 4, 8, 16)]), &corenic());
    assert_rules(&r, &["NFP-P1"]);
    // A perf event array stays on the host and is fine.
    let r = check(
        &Prog::new().ret(2).xdp_maps(vec![map("ev", map_type::PERF_EVENT_ARRAY, 4, 4, 4)]),
        &corenic(),
    );
    assert_rules(&r, &[]);
}

#[test]
fn p4_map_flags() {
    let mut m = counters();
    m.flags = 1; // BPF_F_NO_PREALLOC
    let r = check(&Prog::new().ret(2).xdp_maps(vec![m]), &corenic());
    assert_rules(&r, &["NFP-P4"]);
    assert_eq!(finding(&r, "NFP-P4").message, "map flags are not supported");
}

#[test]
fn p5_map_type_not_in_firmware_bitmask() {
    let mut prof = corenic();
    prof.maps.device_types.value = vec![map_type::ARRAY];
    let r = check(&Prog::new().ret(2).xdp_maps(vec![counters()]), &prof);
    assert_rules(&r, &["NFP-P5"]);
}

#[test]
fn p6_too_many_maps() {
    let maps = (0..129).map(|i| map(&format!("m{i}"), map_type::ARRAY, 4, 8, 1)).collect();
    let r = check(&Prog::new().ret(2).xdp_maps(maps), &corenic());
    assert_rules(&r, &["NFP-P6"]);
}

#[test]
fn p7_total_entries() {
    let maps =
        vec![map("a", map_type::HASH, 4, 8, 2_000_000), map("b", map_type::HASH, 4, 8, 100_000)];
    let r = check(&Prog::new().ret(2).xdp_maps(maps), &corenic());
    assert_rules(&r, &["NFP-P7"]);
    assert_eq!(finding(&r, "NFP-P7").message, "map with too many elements: 100000, left: 48000");
}

#[test]
fn p8_element_sizes() {
    let r =
        check(&Prog::new().ret(2).xdp_maps(vec![map("big", map_type::HASH, 8, 60, 4)]), &corenic());
    assert_rules(&r, &["NFP-P8"]);
    let msgs: Vec<_> = r.findings.iter().map(|f| f.message.as_str()).collect();
    assert!(
        msgs.contains(&"map elements too large: 72, FW max element size (key+value): 64"),
        "{msgs:?}"
    );
    assert!(msgs.contains(&"map value size 60, FW max is 56"), "{msgs:?}");
}

#[test]
fn p12_global_data() {
    let mut g = map(".rodata", map_type::ARRAY, 4, 8, 1);
    g.origin = nic_model::program::MapOrigin::GlobalData;
    let r = check(
        &Prog::new().ld_map_value(1, 0, 0).ldx(DW, 0, 1, 0).ret(2).xdp_maps(vec![g]),
        &corenic(),
    );
    assert_rules(&r, &["NFP-P12"]);
}

#[test]
fn findings_carry_line_and_disassembly() {
    let r = check(&Prog::new().mov(1, 7).mov(2, 3).raw(0x9f, 1, 2, 0, 0).ret(2).xdp(), &corenic());
    let f = finding(&r, "NFP-I4");
    assert_eq!(f.insn, Some(2));
    assert_eq!(f.source_line.as_deref(), Some("prog.c:12"));
    assert_eq!(f.disasm.as_deref(), Some("r1 %= r2"));
    assert_eq!(f.message, "[nfp] instruction 0x9f not supported");
    let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(json["verdict"], "not_offloadable");
    assert_eq!(json["findings"][0]["rule"], "NFP-I4");
    assert_eq!(json["findings"][0]["severity"], "violates");
    assert!(r
        .to_text()
        .contains("NFP-I4 [violates] [nfp] instruction 0x9f not supported at insn 2 (prog.c:12)"));
}

#[test]
fn markdown_escapes_map_names() {
    let mut m = map("a|<b>&`c`", 9, 4, 8, 1);
    m.flags = 0;
    let r = check(&Prog::new().ret(2).xdp_maps(vec![m]), &corenic());
    let md = r.to_markdown();
    assert!(md.contains("a\\|&lt;b&gt;&amp;\\`c\\`"), "{md}");
    assert!(!md.contains("<b>"));
}

/// Found by `checker_pass_implies_engine_prepare` in CI: a BPF-to-BPF call
/// whose target lies past the end was passed as compatible. The kernel's
/// add_subprog refuses it ("call to invalid destination") before any offload
/// hook runs, so the checker must too. Call at insn 0 with imm 7 -> insn 8 of 3.
#[test]
fn call_outside_the_program_is_refused_like_the_kernel() {
    let r = check(&Prog::new().call_pc(7).ret(2).xdp(), &corenic());
    assert_rules(&r, &["KERNEL-RESERVED"]);
    let f = finding(&r, "KERNEL-RESERVED");
    assert_eq!(f.insn, Some(0));
    assert!(f.message.starts_with("call to invalid destination"), "{}", f.message);
    assert_eq!(r.verdict, Offloadability::NotOffloadable);
    // A call to a target inside the program is not this rule.
    let ok = check(&Prog::new().call_pc(2).ret(2).ret(0).xdp(), &corenic());
    assert!(ok.findings.iter().all(|f| f.rule.id() != "KERNEL-RESERVED"), "{:?}", ok.findings);
}

/// A 32-bit subtraction that can wrap (`w4 = byte - 14` is 0xfffffff2.. for
/// bytes below 14), added to the packet pointer: the offset range is
/// [0, 2^32 - 1], and the analysis reported 2^32 - 1 + 14 = 4294967309 as
/// the max packet offset (the kernel selftest xdpwall showed 2^32 + 14 on the
/// NFP profile). The verifier never grants a range to a packet pointer past
/// MAX_PACKET_OFF (0xffff), so the reach is unbounded, not a number.
#[test]
fn packet_offset_after_a_32_bit_wrap_is_unbounded() {
    let p = Prog::new()
        .xdp_pkt()
        .ldx(B, 4, 6, 0) // r4 = byte 0: [0, 255]
        .alu32(SUB, 4, 14) // w4 -= 14: wraps below 14
        .movr(8, 6)
        .alur(ADD, 8, 4) // r8 = data + [0, 2^32 - 1]
        .ldx(B, 0, 8, 14)
        .ret(2)
        .xdp();
    let r = check(&p, &profile("hxdp"));
    assert_eq!(r.stats.max_pkt_offset, None);
    assert!(r.stats.max_pkt_offset_unbounded);
    let text = r.to_text();
    assert!(text.contains("max packet offset unbounded"), "{text}");
    assert!(!text.contains("4294967"), "{text}");
    // On the NFP: NFP-M7 cannot bound it; at MTU 1500 (<= 1888) the program
    // loads, so it behaves differently (the MTU cannot be raised).
    let nfp = check(&p, &corenic());
    assert_rules(&nfp, &["NFP-M7"]);
    assert_eq!(severity_of(&nfp, "NFP-M7"), Severity::BehaviourDiffers);
    assert_eq!(nfp.verdict, Offloadability::OffloadableWithFallback);
    assert_eq!(nfp.stats.max_pkt_offset, None);
}

/// A loop whose counter starts as a range: `w3 = byte & 7`, exit if 0, then
/// each iteration reads byte r8 + 7, advances r8 by 8 and does `w3 += -1`
/// (imm 0xffffffff). The counter was [1, 7] and the add of 0xffffffff
/// overflowed 32 bits, so it became [0, 2^32 - 1] and the loop never ended in
/// the analysis: r8 grew until widened. Read as a subtraction the counter is
/// [1, 7 - k] after k iterations, so there are at most 7; the last reads at
/// 8 x 6 + 7 = 55.
#[test]
fn loop_counter_decremented_by_adding_minus_one_keeps_its_bound() {
    let p = Prog::new()
        .xdp_pkt() // 0, 1
        .ldx(B, 3, 6, 0) // 2
        .alu32(AND, 3, 7) // 3: w3 in [0, 7]
        .jmp(JEQ, 3, 0, 7) // 4: -> 12
        .movr(8, 6) // 5
        .ldx(B, 0, 8, 7) // 6: loop head
        .alu(ADD, 8, 8) // 7
        .alu32(ADD, 3, -1) // 8
        .raw(JMP32 | JNE | K, 3, 0, -4, 0) // 9: -> 6
        .ret(2) // 10, 11
        .ret(1) // 12, 13
        .xdp();
    let r = check(&p, &corenic());
    assert_eq!(r.stats.max_pkt_offset, Some(55));
    assert!(!r.stats.max_pkt_offset_unbounded);
    assert_rules(&r, &[]);
    assert_eq!(r.verdict, Offloadability::Offloadable);
}

/// The verdict is one of three states, and each rendering says which: a
/// run-time fallback (here NFP-R1, XDP_REDIRECT becomes an abort) is never
/// shown as plain "compatible"; markdown ends with a newline.
#[test]
fn verdict_states_in_every_rendering() {
    let fallback = check(&Prog::new().ret(4).xdp(), &corenic());
    assert_eq!(fallback.verdict, Offloadability::OffloadableWithFallback);
    assert_eq!(fallback.verdict.exit_code(), 0);
    let text = fallback.to_text();
    assert!(
        text.starts_with(
            "program `test` on profile `nfp-corenic`: offloadable with run-time fallback (NFP-R1)\n"
        ),
        "{text}"
    );
    let md = fallback.to_markdown();
    assert!(md.contains("Verdict: **offloadable with run-time fallback (NFP-R1)**"), "{md}");
    assert!(md.ends_with('\n') && !md.ends_with("\n\n"), "{md:?}");
    let json: serde_json::Value = serde_json::from_str(&fallback.to_json()).unwrap();
    assert_eq!(json["verdict"], "offloadable_with_fallback");
    assert!(!text.contains("compatible") && !md.contains("compatible"));

    let clean = check(&Prog::new().ret(2).xdp(), &corenic());
    assert_eq!(clean.verdict, Offloadability::Offloadable);
    assert!(clean.to_text().contains(": offloadable\n"), "{}", clean.to_text());
    assert!(clean.to_markdown().ends_with('\n'));
}

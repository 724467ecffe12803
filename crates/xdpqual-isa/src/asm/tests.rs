//! Expected encodings are worked out by hand from RFC 9669's tables
//! (class in the low 3 bits, source bit 0x08, operation in the high nibble;
//! for memory: mode | size | class), not taken from the assembler.

use super::*;

fn one(src: &str) -> Insn {
    let v = assemble(src).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v.len(), 1, "{src}");
    v[0]
}

fn i(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn::new(code, dst, src, off, imm)
}

#[test]
fn alu_family() {
    let cases: &[(&str, Insn)] = &[
        ("add32 %r0, -3", i(0x04, 0, 0, 0, -3)),
        ("add %r1, %r2", i(0x0f, 1, 2, 0, 0)),
        ("add64 %r1, %r2", i(0x0f, 1, 2, 0, 0)),
        ("sub32 %r3, %r4", i(0x1c, 3, 4, 0, 0)),
        ("mul %r1, 7", i(0x27, 1, 0, 0, 7)),
        ("div32 %r1, %r2", i(0x3c, 1, 2, 0, 0)),
        ("div %r1, 0x10", i(0x37, 1, 0, 0, 16)),
        ("sdiv %r1, 3", i(0x37, 1, 0, 1, 3)),
        ("sdiv32 %r1, %r2", i(0x3c, 1, 2, 1, 0)),
        ("smod32 %r1, %r2", i(0x9c, 1, 2, 1, 0)),
        ("smod %r1, -7", i(0x97, 1, 0, 1, -7)),
        ("or %r1, 1", i(0x47, 1, 0, 0, 1)),
        ("and32 %r1, 1", i(0x54, 1, 0, 0, 1)),
        ("lsh %r1, %r2", i(0x6f, 1, 2, 0, 0)),
        ("rsh32 %r1, 3", i(0x74, 1, 0, 0, 3)),
        ("neg %r1", i(0x87, 1, 0, 0, 0)),
        ("neg32 %r2", i(0x84, 2, 0, 0, 0)),
        ("mod %r1, %r2", i(0x9f, 1, 2, 0, 0)),
        ("xor32 %r1, %r2", i(0xac, 1, 2, 0, 0)),
        ("mov %r0, 1", i(0xb7, 0, 0, 0, 1)),
        ("mov32 %r0, %r1", i(0xbc, 0, 1, 0, 0)),
        ("mov32 %r0, 0xffffffff", i(0xb4, 0, 0, 0, -1)),
        ("arsh %r0, 2", i(0xc7, 0, 0, 0, 2)),
        ("arsh32 %r0, %r9", i(0xcc, 0, 9, 0, 0)),
        ("movsx864 %r0, %r1", i(0xbf, 0, 1, 8, 0)),
        ("movsx832 %r0, %r1", i(0xbc, 0, 1, 8, 0)),
        ("movsx1664 %r0, %r1", i(0xbf, 0, 1, 16, 0)),
        ("movsx1632 %r0, %r1", i(0xbc, 0, 1, 16, 0)),
        ("movsx3264 %r0, %r1", i(0xbf, 0, 1, 32, 0)),
    ];
    for (src, want) in cases {
        assert_eq!(one(src), *want, "{src}");
    }
}

#[test]
fn byte_swaps() {
    assert_eq!(one("le16 %r1"), i(0xd4, 1, 0, 0, 16));
    assert_eq!(one("le64 %r1"), i(0xd4, 1, 0, 0, 64));
    assert_eq!(one("be32 %r1"), i(0xdc, 1, 0, 0, 32));
    assert_eq!(one("bswap64 %r3"), i(0xd7, 3, 0, 0, 64));
    assert_eq!(one("swap16 %r3"), i(0xd7, 3, 0, 0, 16));
    assert_eq!(one("bswap32 %r0"), i(0xd7, 0, 0, 0, 32));
}

#[test]
fn loads_and_stores() {
    let cases: &[(&str, Insn)] = &[
        ("ldxb %r0, [%r1+2]", i(0x71, 0, 1, 2, 0)),
        ("ldxh %r0, [%r1-2]", i(0x69, 0, 1, -2, 0)),
        ("ldxw %r0, [%r1]", i(0x61, 0, 1, 0, 0)),
        ("ldxdw %r9, [%r10-8]", i(0x79, 9, 10, -8, 0)),
        ("ldxsb %r0, [%r1+1]", i(0x91, 0, 1, 1, 0)),
        ("ldxsh %r0, [%r1+1]", i(0x89, 0, 1, 1, 0)),
        ("ldxsw %r0, [%r1+1]", i(0x81, 0, 1, 1, 0)),
        ("stb [%r1+2], 5", i(0x72, 1, 0, 2, 5)),
        ("sth [%r1+2], -1", i(0x6a, 1, 0, 2, -1)),
        ("stw [%r1], 0x11223344", i(0x62, 1, 0, 0, 0x11223344)),
        ("stdw [%r10-16], 7", i(0x7a, 10, 0, -16, 7)),
        ("stxb [%r1+2], %r3", i(0x73, 1, 3, 2, 0)),
        ("stxh [%r1+2], %r3", i(0x6b, 1, 3, 2, 0)),
        ("stxw [%r1+2], %r3", i(0x63, 1, 3, 2, 0)),
        ("stxdw [%r10-8], %r1", i(0x7b, 10, 1, -8, 0)),
        ("stxdw [%r10 - 8], %r1", i(0x7b, 10, 1, -8, 0)),
    ];
    for (src, want) in cases {
        assert_eq!(one(src), *want, "{src}");
    }
}

#[test]
fn lddw_takes_two_slots() {
    let v = assemble("lddw %r0, 0x1122334455667788").unwrap();
    assert_eq!(v, vec![i(0x18, 0, 0, 0, 0x55667788), i(0, 0, 0, 0, 0x11223344)]);
    let v = assemble("lddw %r2, -2").unwrap();
    assert_eq!(v, vec![i(0x18, 2, 0, 0, -2), i(0, 0, 0, 0, -1)]);
}

#[test]
fn jumps_and_calls() {
    let cases: &[(&str, Insn)] = &[
        ("jeq %r1, 5, +2", i(0x15, 1, 0, 2, 5)),
        ("jeq %r1, %r2, -1", i(0x1d, 1, 2, -1, 0)),
        ("jgt %r1, 5, +1", i(0x25, 1, 0, 1, 5)),
        ("jge %r1, %r2, +1", i(0x3d, 1, 2, 1, 0)),
        ("jset %r1, 8, +1", i(0x45, 1, 0, 1, 8)),
        ("jne32 %r1, 1, +0", i(0x56, 1, 0, 0, 1)),
        ("jsgt %r1, -1, +1", i(0x65, 1, 0, 1, -1)),
        ("jsge32 %r1, %r2, +1", i(0x7e, 1, 2, 1, 0)),
        ("jlt %r1, 1, +1", i(0xa5, 1, 0, 1, 1)),
        ("jle32 %r1, 1, +1", i(0xb6, 1, 0, 1, 1)),
        ("jslt %r1, %r2, +1", i(0xcd, 1, 2, 1, 0)),
        ("jsle32 %r1, %r2, +3", i(0xde, 1, 2, 3, 0)),
        ("ja +4", i(0x05, 0, 0, 4, 0)),
        ("ja32 -3", i(0x06, 0, 0, 0, -3)),
        ("exit", i(0x95, 0, 0, 0, 0)),
        ("call 5", i(0x85, 0, 0, 0, 5)),
        ("call helper 1", i(0x85, 0, 0, 0, 1)),
        ("call %r2", i(0x8d, 2, 0, 0, 0)),
        ("call local +2", i(0x85, 0, 1, 0, 2)),
        ("call runtime 7", i(0x85, 0, 2, 0, 7)),
    ];
    for (src, want) in cases {
        assert_eq!(one(src), *want, "{src}");
    }
}

#[test]
fn atomics() {
    let cases: &[(&str, Insn)] = &[
        ("lock add [%r10-8], %r1", i(0xdb, 10, 1, -8, 0x00)),
        ("lock fetch add32 [%r1+4], %r2", i(0xc3, 1, 2, 4, 0x01)),
        ("lock or [%r1], %r2", i(0xdb, 1, 2, 0, 0x40)),
        ("lock fetch and [%r1], %r2", i(0xdb, 1, 2, 0, 0x51)),
        ("lock xor32 [%r1], %r2", i(0xc3, 1, 2, 0, 0xa0)),
        ("lock fetch xor [%r1], %r2", i(0xdb, 1, 2, 0, 0xa1)),
        ("lock xchg [%r10-8], %r1", i(0xdb, 10, 1, -8, 0xe1)),
        ("lock xchg32 [%r10-8], %r1", i(0xc3, 10, 1, -8, 0xe1)),
        ("lock cmpxchg [%r10-8], %r1", i(0xdb, 10, 1, -8, 0xf1)),
        ("lock cmpxchg32 [%r10-8], %r1", i(0xc3, 10, 1, -8, 0xf1)),
    ];
    for (src, want) in cases {
        assert_eq!(one(src), *want, "{src}");
    }
}

#[test]
fn labels_resolve_pc_relative() {
    let src = "\
        mov %r0, 0       # 0
        ja end           # 1 -> 5: off 3
    back:
        lddw %r1, 1      # 2,3 (two slots)
        jeq %r0, 0, back # 4 -> 2: off -3
    end:
        call local fn    # 5 -> 7: imm 1
        ja32 exit        # 6 -> 8 (first exit): imm 1
    fn:
        mov %r0, 1       # 7
        exit             # 8
        exit             # 9
    ";
    let v = assemble(src).unwrap();
    assert_eq!(v.len(), 10);
    assert_eq!(v[1], i(0x05, 0, 0, 3, 0));
    assert_eq!(v[4], i(0x15, 0, 0, -3, 0));
    assert_eq!(v[5], i(0x85, 0, 1, 0, 1));
    assert_eq!(v[6], i(0x06, 0, 0, 0, 1));
}

#[test]
fn label_on_instruction_line_and_comment_only_lines() {
    let v = assemble("# header\nstart: mov %r0, 1\n  jne %r0, 1, start\nexit").unwrap();
    assert_eq!(v[1], i(0x55, 0, 0, -2, 1));
}

#[test]
fn errors_carry_line_and_text() {
    let e = assemble("mov %r0, 1\nfrob %r1\nexit").unwrap_err();
    assert_eq!(e.line, 2);
    assert_eq!(e.text, "frob %r1");
    assert_eq!(e.kind, AsmErrorKind::UnknownMnemonic("frob".into()));
    assert!(e.to_string().starts_with("line 2: `frob %r1`: unknown mnemonic"));

    let e = assemble("exit\nja nowhere").unwrap_err();
    assert_eq!((e.line, e.kind), (2, AsmErrorKind::UnknownLabel("nowhere".into())));

    let e = assemble("a:\nexit\na:\nexit").unwrap_err();
    assert_eq!(
        (e.line, e.kind),
        (3, AsmErrorKind::DuplicateLabel { label: "a".into(), first_line: 1 })
    );

    let e = assemble("mov %r0").unwrap_err();
    assert_eq!(
        e.kind,
        AsmErrorKind::OperandCount { mnemonic: "mov".into(), expected: 2, found: 1 }
    );

    let e = assemble("mov %r16, 1").unwrap_err();
    assert_eq!(e.kind, AsmErrorKind::BadRegister("%r16".into()));

    let e = assemble("add32 %r0, 4294967296").unwrap_err();
    assert_eq!(e.kind, AsmErrorKind::ImmRange("4294967296".into()));

    let e = assemble("ldxw %r0, %r1").unwrap_err();
    assert!(matches!(e.kind, AsmErrorKind::Expected { .. }));

    let e = assemble("call nowhere 3").unwrap_err();
    assert_eq!(e.kind, AsmErrorKind::BadCallMode("nowhere".into()));

    let e = assemble("ldxdw %r0, [%r1+2").unwrap_err();
    assert!(matches!(e.kind, AsmErrorKind::BadMemory(_)));

    let e = assemble("lock nand [%r1], %r2").unwrap_err();
    assert!(matches!(e.kind, AsmErrorKind::UnknownMnemonic(_)));

    // 40000 slots between a jump and its label cannot fit in `off`.
    let mut far = String::from("ja end\n");
    far.push_str(&"mov %r0, 0\n".repeat(40_000));
    far.push_str("end:\nexit\n");
    let e = assemble(&far).unwrap_err();
    assert!(matches!(e.kind, AsmErrorKind::JumpRange { distance: 40_000, .. }));
}

/// The assembler inputs of bpf_conformance's own negative tests
/// (negative/invalid_*.data in its repository) are all refused.
#[test]
fn bpf_conformance_negative_inputs_are_refused() {
    use AsmErrorKind as K;
    let cases: &[(&str, fn(&AsmErrorKind) -> bool)] = &[
        ("mov32 %r0, 2147483648", |k| matches!(k, K::ImmRange(_))),
        ("mov32 %r0, 0x100000000", |k| matches!(k, K::ImmRange(_))),
        ("ja NOT_A_LABEL", |k| matches!(k, K::UnknownLabel(_))),
        ("lock or [%r10-8]", |k| matches!(k, K::OperandCount { .. })),
        ("lock", |k| matches!(k, K::OperandCount { .. })),
        ("ldxq %r0, %r1", |k| matches!(k, K::UnknownMnemonic(_))),
        ("ldxb %r0, %r1", |k| matches!(k, K::Expected { .. })),
        ("ldxb %r0, [%r1+0x10000]", |k| matches!(k, K::OffsetRange(_))),
        ("lddw %r0", |k| matches!(k, K::OperandCount { .. })),
        ("or %r0, %r50", |k| matches!(k, K::BadRegister(_))),
    ];
    for (line, ok) in cases {
        let e = assemble(&format!("{line}\nexit")).unwrap_err();
        assert_eq!(e.line, 1, "{line}");
        assert!(ok(&e.kind), "{line}: {e}");
    }
}

//! A tiny eBPF instruction builder for the checker tests.
#![allow(dead_code)]

use nic_model::opcode::*;
use nic_model::program::{
    section_prog_flags, Insn, MapDef, MapOrigin, MapType, ProgType, ProgramSpec,
};
use nic_model::{Profile, Report, RuleId, Severity};

pub(crate) const W: u8 = SIZE_W;
pub(crate) const H: u8 = SIZE_H;
pub(crate) const B: u8 = SIZE_B;
pub(crate) const DW: u8 = SIZE_DW;

#[derive(Default, Clone)]
pub(crate) struct Prog {
    pub insns: Vec<Insn>,
}

fn ins(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn { code, dst, src, off, imm }
}

impl Prog {
    pub(crate) fn new() -> Self {
        Prog::default()
    }
    pub(crate) fn raw(mut self, code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Self {
        self.insns.push(ins(code, dst, src, off, imm));
        self
    }
    pub(crate) fn mov(self, dst: u8, imm: i32) -> Self {
        self.raw(ALU64 | MOV | K, dst, 0, 0, imm)
    }
    pub(crate) fn movr(self, dst: u8, src: u8) -> Self {
        self.raw(ALU64 | MOV | X, dst, src, 0, 0)
    }
    pub(crate) fn alu(self, o: u8, dst: u8, imm: i32) -> Self {
        self.raw(ALU64 | o | K, dst, 0, 0, imm)
    }
    pub(crate) fn alur(self, o: u8, dst: u8, src: u8) -> Self {
        self.raw(ALU64 | o | X, dst, src, 0, 0)
    }
    pub(crate) fn alu32(self, o: u8, dst: u8, imm: i32) -> Self {
        self.raw(ALU | o | K, dst, 0, 0, imm)
    }
    pub(crate) fn ldx(self, size: u8, dst: u8, src: u8, off: i16) -> Self {
        self.raw(LDX | MODE_MEM | size, dst, src, off, 0)
    }
    pub(crate) fn stx(self, size: u8, dst: u8, off: i16, src: u8) -> Self {
        self.raw(STX | MODE_MEM | size, dst, src, off, 0)
    }
    pub(crate) fn st(self, size: u8, dst: u8, off: i16, imm: i32) -> Self {
        self.raw(ST | MODE_MEM | size, dst, 0, off, imm)
    }
    pub(crate) fn xadd(self, size: u8, dst: u8, off: i16, src: u8) -> Self {
        self.raw(STX | MODE_ATOMIC | size, dst, src, off, ATOMIC_ADD)
    }
    pub(crate) fn lddw(self, dst: u8, v: u64) -> Self {
        self.raw(LD_DW_IMM, dst, 0, 0, v as u32 as i32).raw(0, 0, 0, 0, (v >> 32) as u32 as i32)
    }
    pub(crate) fn ld_map(self, dst: u8, map: i32) -> Self {
        self.raw(LD_DW_IMM, dst, PSEUDO_MAP_FD, 0, map).raw(0, 0, 0, 0, 0)
    }
    pub(crate) fn ld_map_value(self, dst: u8, map: i32, off: i32) -> Self {
        self.raw(LD_DW_IMM, dst, PSEUDO_MAP_VALUE, 0, map).raw(0, 0, 0, 0, off)
    }
    pub(crate) fn jmp(self, o: u8, dst: u8, imm: i32, off: i16) -> Self {
        self.raw(JMP | o | K, dst, 0, off, imm)
    }
    pub(crate) fn jmpr(self, o: u8, dst: u8, src: u8, off: i16) -> Self {
        self.raw(JMP | o | X, dst, src, off, 0)
    }
    pub(crate) fn ja(self, off: i16) -> Self {
        self.raw(JMP | JA, 0, 0, off, 0)
    }
    pub(crate) fn call(self, id: i32) -> Self {
        self.raw(JMP | CALL, 0, CALL_HELPER, 0, id)
    }
    pub(crate) fn call_pc(self, rel: i32) -> Self {
        self.raw(JMP | CALL, 0, PSEUDO_CALL, 0, rel)
    }
    pub(crate) fn exit(self) -> Self {
        self.raw(JMP | EXIT, 0, 0, 0, 0)
    }
    /// `r0 = v; exit`
    pub(crate) fn ret(self, v: i32) -> Self {
        self.mov(0, v).exit()
    }
    /// `r6 = data; r7 = data_end` (XDP).
    pub(crate) fn xdp_pkt(self) -> Self {
        self.ldx(W, 6, 1, 0).ldx(W, 7, 1, 4)
    }
    /// Look up `key` (stack at r10-4, 4 bytes) in map 0; jumps over `skip` insns when NULL.
    pub(crate) fn lookup_or_skip(self, skip: i16) -> Self {
        self.mov(2, 0)
            .stx(W, 10, -4, 2)
            .ld_map(1, 0)
            .movr(2, 10)
            .alu(ADD, 2, -4)
            .call(helper::MAP_LOOKUP_ELEM)
            .jmp(JEQ, 0, 0, skip)
    }
    pub(crate) fn len(&self) -> usize {
        self.insns.len()
    }
    pub(crate) fn spec(self, section: &str, maps: Vec<MapDef>) -> ProgramSpec {
        let lines =
            Some((0..self.insns.len()).map(|i| (i, format!("prog.c:{}", 10 + i))).collect());
        ProgramSpec {
            name: "test".into(),
            section: section.into(),
            prog_type: ProgType::from_section(section),
            prog_flags: section_prog_flags(section),
            insns: self.insns,
            maps,
            lines,
        }
    }
    pub(crate) fn xdp(self) -> ProgramSpec {
        self.spec("xdp", vec![])
    }
    pub(crate) fn xdp_maps(self, maps: Vec<MapDef>) -> ProgramSpec {
        self.spec("xdp", maps)
    }
}

pub(crate) fn map(name: &str, map_type: u32, key: u32, value: u32, entries: u32) -> MapDef {
    MapDef {
        name: name.into(),
        map_type: MapType::from_uapi(map_type),
        key_size: key,
        value_size: value,
        max_entries: entries,
        flags: 0,
        origin: MapOrigin::BtfMaps,
        initial_data: None,
        read_only: false,
        inner: None,
        init_slots: Vec::new(),
    }
}

/// The counter map most tests use: HASH, u32 key, 16-byte value.
pub(crate) fn counters() -> MapDef {
    map("counters", map_type::HASH, 4, 16, 1024)
}

pub(crate) fn corenic() -> Profile {
    Profile::builtin("nfp-corenic").expect("built-in profile parses")
}

pub(crate) fn profile(name: &str) -> Profile {
    Profile::builtin(name).expect("built-in profile parses")
}

/// Rule IDs reported, as strings.
pub(crate) fn ids(r: &Report) -> Vec<&'static str> {
    let mut v: Vec<&'static str> = r.rule_ids().into_iter().map(RuleId::id).collect();
    v.sort();
    v
}

/// The report names exactly these rules.
#[track_caller]
pub(crate) fn assert_rules(r: &Report, want: &[&str]) {
    let mut want: Vec<&str> = want.to_vec();
    want.sort();
    let got = ids(r);
    assert_eq!(got, want, "\n{}", r.to_text());
}

/// Severity of the (first) finding with `rule`.
#[track_caller]
pub(crate) fn severity_of(r: &Report, rule: &str) -> Severity {
    r.findings
        .iter()
        .find(|f| f.rule.id() == rule)
        .unwrap_or_else(|| panic!("no {rule} finding:\n{}", r.to_text()))
        .severity
}

#[track_caller]
pub(crate) fn finding<'r>(r: &'r Report, rule: &str) -> &'r nic_model::Finding {
    r.findings
        .iter()
        .find(|f| f.rule.id() == rule)
        .unwrap_or_else(|| panic!("no {rule} finding:\n{}", r.to_text()))
}

//! eBPF opcode fields (UAPI `linux/bpf_common.h`, `linux/bpf.h`; RFC 9669 §3).
//! Duplicated from the harness on purpose: the harness depends on this crate.

pub const LD: u8 = 0x00;
pub const LDX: u8 = 0x01;
pub const ST: u8 = 0x02;
pub const STX: u8 = 0x03;
pub const ALU: u8 = 0x04;
pub const JMP: u8 = 0x05;
pub const JMP32: u8 = 0x06;
pub const ALU64: u8 = 0x07;

pub const K: u8 = 0x00;
pub const X: u8 = 0x08;

pub const ADD: u8 = 0x00;
pub const SUB: u8 = 0x10;
pub const MUL: u8 = 0x20;
pub const DIV: u8 = 0x30;
pub const OR: u8 = 0x40;
pub const AND: u8 = 0x50;
pub const LSH: u8 = 0x60;
pub const RSH: u8 = 0x70;
pub const NEG: u8 = 0x80;
pub const MOD: u8 = 0x90;
pub const XOR: u8 = 0xa0;
pub const MOV: u8 = 0xb0;
pub const ARSH: u8 = 0xc0;
pub const END: u8 = 0xd0;

pub const JA: u8 = 0x00;
pub const JEQ: u8 = 0x10;
pub const JGT: u8 = 0x20;
pub const JGE: u8 = 0x30;
pub const JSET: u8 = 0x40;
pub const JNE: u8 = 0x50;
pub const JSGT: u8 = 0x60;
pub const JSGE: u8 = 0x70;
pub const CALL: u8 = 0x80;
pub const EXIT: u8 = 0x90;
pub const JLT: u8 = 0xa0;
pub const JLE: u8 = 0xb0;
pub const JSLT: u8 = 0xc0;
pub const JSLE: u8 = 0xd0;

pub const SIZE_W: u8 = 0x00;
pub const SIZE_H: u8 = 0x08;
pub const SIZE_B: u8 = 0x10;
pub const SIZE_DW: u8 = 0x18;

pub const MODE_IMM: u8 = 0x00;
pub const MODE_ABS: u8 = 0x20;
pub const MODE_IND: u8 = 0x40;
pub const MODE_MEM: u8 = 0x60;
pub const MODE_MEMSX: u8 = 0x80;
pub const MODE_ATOMIC: u8 = 0xc0;

pub const LD_DW_IMM: u8 = LD | SIZE_DW | MODE_IMM;

pub const ATOMIC_ADD: i32 = 0x00;
pub const ATOMIC_OR: i32 = 0x40;
pub const ATOMIC_AND: i32 = 0x50;
pub const ATOMIC_XOR: i32 = 0xa0;
pub const ATOMIC_FETCH: i32 = 0x01;
pub const ATOMIC_XCHG: i32 = 0xe0 | ATOMIC_FETCH;
pub const ATOMIC_CMPXCHG: i32 = 0xf0 | ATOMIC_FETCH;

pub const PSEUDO_MAP_FD: u8 = 1;
pub const PSEUDO_MAP_VALUE: u8 = 2;

pub const CALL_HELPER: u8 = 0;
pub const PSEUDO_CALL: u8 = 1;
pub const PSEUDO_KFUNC_CALL: u8 = 2;

pub fn class(code: u8) -> u8 {
    code & 0x07
}
pub fn op(code: u8) -> u8 {
    code & 0xf0
}
pub fn mode(code: u8) -> u8 {
    code & 0xe0
}
pub fn is_x(code: u8) -> bool {
    code & X != 0
}

/// Where a jump or BPF-to-BPF call at `pc` goes: `pc + 1 + off` (or `+ imm`
/// for `gotol` and calls); `None` for exits, helper calls and instructions
/// that are not control flow, and for a target before the program.
pub fn jump_target(pc: usize, i: &crate::program::Insn) -> Option<usize> {
    let c = class(i.code);
    if c != JMP && c != JMP32 {
        return None;
    }
    let rel = match op(i.code) {
        EXIT => return None,
        CALL if i.src == PSEUDO_CALL => i.imm as i64,
        CALL => return None,
        JA if c == JMP32 => i.imm as i64, // gotol
        _ => i.off as i64,
    };
    let t = pc as i64 + 1 + rel;
    (t >= 0).then_some(t as usize)
}

/// Size in bytes of a load/store.
pub fn mem_size(code: u8) -> u8 {
    match code & 0x18 {
        SIZE_W => 4,
        SIZE_H => 2,
        SIZE_B => 1,
        _ => 8,
    }
}

/// UAPI helper ids the model names.
pub mod helper {
    pub const MAP_LOOKUP_ELEM: i32 = 1;
    pub const MAP_UPDATE_ELEM: i32 = 2;
    pub const MAP_DELETE_ELEM: i32 = 3;
    pub const GET_PRANDOM_U32: i32 = 7;
    pub const TAIL_CALL: i32 = 12;
    pub const REDIRECT: i32 = 23;
    pub const PERF_EVENT_OUTPUT: i32 = 25;
    pub const XDP_ADJUST_HEAD: i32 = 44;
    pub const REDIRECT_MAP: i32 = 51;
    pub const XDP_ADJUST_TAIL: i32 = 65;

    /// Name for messages; `None` for ids the model has no name for.
    pub fn name(id: i32) -> Option<&'static str> {
        Some(match id {
            1 => "map_lookup_elem",
            2 => "map_update_elem",
            3 => "map_delete_elem",
            5 => "ktime_get_ns",
            6 => "trace_printk",
            7 => "get_prandom_u32",
            8 => "get_smp_processor_id",
            12 => "tail_call",
            23 => "redirect",
            25 => "perf_event_output",
            28 => "csum_diff",
            44 => "xdp_adjust_head",
            51 => "redirect_map",
            54 => "xdp_adjust_meta",
            65 => "xdp_adjust_tail",
            69 => "fib_lookup",
            _ => return None,
        })
    }
}

/// UAPI `enum bpf_map_type` numbers the model names.
pub mod map_type {
    pub const HASH: u32 = 1;
    pub const ARRAY: u32 = 2;
    pub const PROG_ARRAY: u32 = 3;
    pub const PERF_EVENT_ARRAY: u32 = 4;

    pub fn name(t: u32) -> String {
        const NAMES: [&str; 33] = [
            "unspec",
            "hash",
            "array",
            "prog_array",
            "perf_event_array",
            "percpu_hash",
            "percpu_array",
            "stack_trace",
            "cgroup_array",
            "lru_hash",
            "lru_percpu_hash",
            "lpm_trie",
            "array_of_maps",
            "hash_of_maps",
            "devmap",
            "sockmap",
            "cpumap",
            "xskmap",
            "sockhash",
            "cgroup_storage",
            "reuseport_sockarray",
            "percpu_cgroup_storage",
            "queue",
            "stack",
            "sk_storage",
            "devmap_hash",
            "struct_ops",
            "ringbuf",
            "inode_storage",
            "task_storage",
            "bloom_filter",
            "user_ringbuf",
            "cgrp_storage",
        ];
        NAMES.get(t as usize).map(|s| s.to_string()).unwrap_or_else(|| format!("type {t}"))
    }
}

//! BPF to Cranelift IR, one Cranelift function per BPF function.
//!
//! Each BPF function (a program's entry, or the target of a `PSEUDO_CALL`)
//! becomes `fn(ctx: *mut JitCtx) -> status`. BPF registers are Cranelift
//! variables holding the same tagged engine addresses the interpreter uses;
//! they are read from `ctx.regs` on entry and written back at `exit`, and
//! spilled around calls into the engine. BPF-to-BPF calls go through the
//! `rt_call` slow path, which sets up the callee's frame exactly as the
//! interpreter does and calls the callee's compiled function: a real frame
//! per call, with the interpreter's depth limit.
//!
//! Semantics follow `engine/interp.rs` (kernel rules: ALU32 zero-extends,
//! division by zero gives 0, modulo by zero keeps the dividend, shift
//! amounts are masked — Cranelift's shifts mask by type width too).

use std::collections::{BTreeMap, HashMap};
use std::mem::offset_of;

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{
    types, AbiParam, AliasRegion, Block, InstBuilder, MemFlags, SigRef, Signature, Type, Value,
};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, FuncId, Linkage, Module};

use super::layout::{kind, layout, next_pc, segment, Kind};
use super::runtime::{
    FastMap, JitCtx, RtTable, FAST_MAP_SHIFT, FAULT_INVALID_INSN, FAULT_PC_OUT_OF_RANGE, ST_FAULT,
};
use crate::helpers::ids::MAP_LOOKUP_ELEM;
use crate::memory::{OFFSET_MASK, TAG_MAP, TAG_MAP_VALUE_BASE, TAG_PACKET, TAG_SHIFT, TAG_STACK};
use crate::Prepared;
use xdpqual_isa::opcode::*;
use xdpqual_isa::Insn;

const I64: Type = types::I64;

/// `BPF_LOAD_ACQ` / `BPF_STORE_REL` (see interp.rs).
const LOAD_ACQ: i32 = 0x100;
const STORE_REL: i32 = 0x110;

/// The module and, per BPF function, its id; `entries[p]` indexes the
/// function of program `p`'s entry.
pub(super) struct Translated {
    pub module: JITModule,
    pub ids: Vec<FuncId>,
    pub entries: Vec<usize>,
}

pub(super) fn translate(programs: &[Prepared], allow_callx: bool) -> Result<Translated, String> {
    let mut flags = settings::builder();
    flags.set("opt_level", "speed").map_err(|e| e.to_string())?;
    let isa = cranelift_native::builder()
        .map_err(|e| format!("host ISA: {e}"))?
        .finish(settings::Flags::new(flags))
        .map_err(|e| format!("host ISA: {e}"))?;
    if isa.pointer_type() != I64 {
        return Err("the JIT needs a 64-bit host".into());
    }
    let mut module = JITModule::new(JITBuilder::with_isa(isa, default_libcall_names()));

    // Every function: each program's entry, then each call target.
    let mut funcs: Vec<(usize, usize)> = Vec::new();
    let mut func_of: HashMap<(usize, usize), usize> = HashMap::new();
    let mut entries = Vec::new();
    // Functions a BPF-to-BPF call reaches: their caller reads r0-r5 back
    // when they exit; a program's entry is read for r0 only.
    let mut called: std::collections::HashSet<(usize, usize)> = Default::default();
    for (p, prog) in programs.iter().enumerate() {
        let mut add = |pc: usize| {
            *func_of.entry((p, pc)).or_insert_with(|| {
                funcs.push((p, pc));
                funcs.len() - 1
            })
        };
        entries.push(add(0));
        for (pc, ins) in prog.insns.iter().enumerate() {
            if ins.code == JMP | CALL && ins.src == PSEUDO_CALL {
                let t = pc as i64 + 1 + ins.imm as i64;
                if t >= 0 && (t as usize) < prog.insns.len() {
                    add(t as usize);
                    called.insert((p, t as usize));
                }
            }
        }
    }

    let mut sig = module.make_signature();
    sig.params.push(AbiParam::new(I64));
    sig.returns.push(AbiParam::new(I64));
    let mut ids = Vec::with_capacity(funcs.len());
    for (i, _) in funcs.iter().enumerate() {
        ids.push(
            module
                .declare_function(&format!("bpf_fn_{i}"), Linkage::Local, &sig)
                .map_err(|e| e.to_string())?,
        );
    }
    let mut cctx = module.make_context();
    let mut fctx = FunctionBuilderContext::new();
    for (i, &(p, entry)) in funcs.iter().enumerate() {
        cctx.func.signature = sig.clone();
        let rt_sigs = |n: usize| {
            let mut s = Signature::new(sig.call_conv);
            s.params.extend(std::iter::repeat_n(AbiParam::new(I64), n));
            s.returns.push(AbiParam::new(I64));
            s
        };
        {
            let b = FunctionBuilder::new(&mut cctx.func, &mut fctx);
            let mut t = Tx::new(b, &rt_sigs, p, &programs[p].insns, &func_of, allow_callx);
            t.exit_regs = if called.contains(&(p, entry)) { 6 } else { 1 };
            t.function(entry)?;
            t.b.seal_all_blocks();
            t.b.finalize();
        }
        module.define_function(ids[i], &mut cctx).map_err(|e| {
            format!("program '{}', function at insn {entry}: {e:?}", programs[p].name)
        })?;
        module.clear_context(&mut cctx);
    }
    Ok(Translated { module, ids, entries })
}

macro_rules! ctx_off {
    ($f:ident) => {
        offset_of!(JitCtx, $f) as i32
    };
}

fn rt_off(slot: usize) -> i32 {
    offset_of!(JitCtx, rt) as i32 + slot as i32
}

struct Tx<'a, 'f> {
    b: FunctionBuilder<'f>,
    prog: usize,
    insns: &'a [Insn],
    func_of: &'a HashMap<(usize, usize), usize>,
    allow_callx: bool,
    /// Registers r0.. an `exit` writes back to `JitCtx::regs`: r0-r5 for a
    /// function a call reaches (`rt_call`'s caller reloads them), r0 alone
    /// for an entry only (`run` reads nothing else). Fewer stores on every
    /// run's way out.
    exit_regs: u8,
    ctx: Value,
    budget: Value,
    regs: [Variable; 11],
    executed: Variable,
    /// Ends the function early with the status in its parameter.
    abort: Block,
    blocks: BTreeMap<usize, Block>,
    /// Signatures of slow paths by parameter count.
    sigs: [SigRef; 6],
}

// Memory is split into three alias regions, so that Cranelift's
// redundant-load elimination (alias_analysis.rs: a load is reused until a
// store to its own region, a call or a fence) can keep the frame bounds in
// registers across the program's own loads and stores:
// - `fixed()`: `JitCtx` fields compiled code only reads and that change
//   only inside calls out of it (frame bounds after `bpf_xdp_adjust_*`, the
//   frame of a BPF-to-BPF call, the ctx fields, the slow-path table);
// - `state()`: `JitCtx` fields compiled code writes (registers spilled for
//   calls, the instruction count, `stack_dirty`) or a call returns
//   (`status`);
// - `bpf_flags()`: the program's own memory (packet, stack), which is never
//   inside `JitCtx`.
// Putting a field compiled code stores to in `fixed()` would let a stale
// value be reused: every store in this file names `state()`.

fn fixed() -> MemFlags {
    MemFlags::trusted().with_alias_region(Some(AliasRegion::Table))
}

fn state() -> MemFlags {
    MemFlags::trusted().with_alias_region(Some(AliasRegion::Vmctx))
}

/// BPF memory may be unaligned; it never traps (bounds were checked).
fn bpf_flags() -> MemFlags {
    MemFlags::new().with_notrap().with_alias_region(Some(AliasRegion::Heap))
}

impl<'a, 'f> Tx<'a, 'f> {
    fn new(
        mut b: FunctionBuilder<'f>,
        rt_sig: &dyn Fn(usize) -> Signature,
        prog: usize,
        insns: &'a [Insn],
        func_of: &'a HashMap<(usize, usize), usize>,
        allow_callx: bool,
    ) -> Tx<'a, 'f> {
        let sigs = [0, 1, 2, 3, 4, 5].map(|n| b.import_signature(rt_sig(n)));
        let regs = [(); 11].map(|_| b.declare_var(I64));
        let executed = b.declare_var(I64);
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        let ctx = b.block_params(entry)[0];
        let budget = b.ins().load(I64, fixed(), ctx, ctx_off!(budget));
        let abort = b.create_block();
        b.append_block_param(abort, I64);
        b.set_cold_block(abort);
        Tx {
            b,
            prog,
            insns,
            func_of,
            allow_callx,
            exit_regs: 11,
            ctx,
            budget,
            regs,
            executed,
            abort,
            blocks: BTreeMap::new(),
            sigs,
        }
    }

    fn site(&mut self, pc: usize) -> Value {
        self.b.ins().iconst(I64, ((self.prog as u64) << 32 | pc as u64) as i64)
    }

    fn reg(&mut self, r: u8) -> Value {
        self.b.use_var(self.regs[r as usize])
    }

    fn set(&mut self, r: u8, v: Value) {
        self.b.def_var(self.regs[r as usize], v);
    }

    fn imm(&mut self, v: i64) -> Value {
        self.b.ins().iconst(I64, v)
    }

    /// Calls slow path `slot` (an `RtTable` field offset) with `args`
    /// after the context; returns its result.
    fn rt(&mut self, slot: usize, args: &[Value]) -> Value {
        let f = self.b.ins().load(I64, fixed(), self.ctx, rt_off(slot));
        let mut all = vec![self.ctx];
        all.extend_from_slice(args);
        let call = self.b.ins().call_indirect(self.sigs[all.len()], f, &all);
        self.b.inst_results(call)[0]
    }

    fn spill(&mut self, regs: impl IntoIterator<Item = u8>) {
        for r in regs {
            let v = self.reg(r);
            self.b.ins().store(state(), v, self.ctx, ctx_off!(regs) + 8 * r as i32);
        }
    }

    fn reload(&mut self, regs: impl IntoIterator<Item = u8>) {
        for r in regs {
            let v = self.b.ins().load(I64, state(), self.ctx, ctx_off!(regs) + 8 * r as i32);
            self.set(r, v);
        }
    }

    fn store_executed(&mut self) {
        let e = self.b.use_var(self.executed);
        self.b.ins().store(state(), e, self.ctx, ctx_off!(executed));
    }

    fn load_executed(&mut self) {
        let e = self.b.ins().load(I64, state(), self.ctx, ctx_off!(executed));
        self.b.def_var(self.executed, e);
    }

    /// Continues in a new block when `status` is OK, else aborts with it.
    fn check_status(&mut self, status: Value) {
        let ok = self.b.create_block();
        self.b.ins().brif(status, self.abort, &[status.into()], ok, &[]);
        self.b.switch_to_block(ok);
    }

    fn function(&mut self, entry: usize) -> Result<(), String> {
        let l = layout(self.insns, entry);
        self.reload(0..=10);
        self.load_executed();
        for &pc in &l.leaders {
            let blk = self.b.create_block();
            self.blocks.insert(pc, blk);
        }
        let first = self.blocks[&entry];
        self.b.ins().jump(first, &[]);

        // abort(status): keep the instruction count, return the status.
        self.b.switch_to_block(self.abort);
        let status = self.b.block_params(self.abort)[0];
        self.store_executed();
        self.b.ins().return_(&[status]);

        let leaders: Vec<usize> = l.leaders.iter().copied().collect();
        for leader in leaders {
            let blk = self.blocks[&leader];
            self.b.switch_to_block(blk);
            if leader >= self.insns.len() {
                // Fell off the end: the interpreter faults before counting.
                let site = self.site(leader);
                let kind = self.imm(FAULT_PC_OUT_OF_RANGE as i64);
                let arg = self.imm(leader as i64);
                let st = self.rt(offset_of!(RtTable, fault), &[site, kind, arg]);
                self.b.ins().jump(self.abort, &[st.into()]);
                continue;
            }
            self.block(&l.leaders, leader)?;
        }
        Ok(())
    }

    /// Emits the block starting at `leader` up to its terminator.
    fn block(
        &mut self,
        leaders: &std::collections::BTreeSet<usize>,
        leader: usize,
    ) -> Result<(), String> {
        let mut pc = leader;
        loop {
            let (count, end) = segment(self.insns, leaders, pc);
            self.charge(pc, count);
            // The segment's instructions; only the last may end the block.
            loop {
                let k = kind(self.insns, pc);
                match k {
                    Kind::Pure => self.alu(pc),
                    Kind::Lddw => {
                        let ins = self.insns[pc];
                        let v = (ins.imm as u32 as u64)
                            | ((self.insns[pc + 1].imm as u32 as u64) << 32);
                        let v = self.imm(v as i64);
                        self.set(ins.dst, v);
                    }
                    Kind::Effect => self.effect(pc)?,
                    Kind::Cond { target } => {
                        self.cond(pc, target);
                        return Ok(());
                    }
                    Kind::Ja { target } => {
                        let t = self.blocks[&target];
                        self.b.ins().jump(t, &[]);
                        return Ok(());
                    }
                    Kind::Exit => {
                        self.spill(0..self.exit_regs);
                        self.store_executed();
                        let zero = self.imm(0);
                        self.b.ins().return_(&[zero]);
                        return Ok(());
                    }
                    Kind::Bad => {
                        let site = self.site(pc);
                        let kind = self.imm(FAULT_INVALID_INSN as i64);
                        let arg = self.imm(self.insns[pc].code as i64);
                        let st = self.rt(offset_of!(RtTable, fault), &[site, kind, arg]);
                        self.b.ins().jump(self.abort, &[st.into()]);
                        return Ok(());
                    }
                }
                let next = next_pc(self.insns, pc);
                if next == end {
                    pc = next;
                    break;
                }
                pc = next;
            }
            if let Some(&blk) = self.blocks.get(&pc) {
                self.b.ins().jump(blk, &[]);
                return Ok(());
            }
            if pc >= self.insns.len() {
                return Err(format!("insn {pc}: block runs off the program without a leader"));
            }
        }
    }

    /// Charges `count` instructions; on crossing the budget, faults at the
    /// exact instruction (`rt_budget`).
    fn charge(&mut self, start: usize, count: u64) {
        let before = self.b.use_var(self.executed);
        let after = self.b.ins().iadd_imm(before, count as i64);
        let over = self.b.ins().icmp(IntCC::UnsignedGreaterThan, after, self.budget);
        let cold = self.b.create_block();
        let ok = self.b.create_block();
        self.b.set_cold_block(cold);
        self.b.ins().brif(over, cold, &[], ok, &[]);
        self.b.switch_to_block(cold);
        let site = self.site(start);
        let st = self.rt(offset_of!(RtTable, budget), &[site, before]);
        // rt_budget set ctx.executed; abort stores the variable, so match it.
        let e = self.b.ins().load(I64, state(), self.ctx, ctx_off!(executed));
        self.b.def_var(self.executed, e);
        self.b.ins().jump(self.abort, &[st.into()]);
        self.b.switch_to_block(ok);
        self.b.def_var(self.executed, after);
    }

    fn cond(&mut self, pc: usize, target: usize) {
        let ins = self.insns[pc];
        let wide = ins.code & 7 == JMP;
        let mut a = self.reg(ins.dst);
        let mut s = if ins.code & X != 0 { self.reg(ins.src) } else { self.imm(ins.imm as i64) };
        if !wide {
            a = self.b.ins().ireduce(types::I32, a);
            s = self.b.ins().ireduce(types::I32, s);
        }
        let op = ins.code & 0xf0;
        let c = if op == JSET {
            let x = self.b.ins().band(a, s);
            self.b.ins().icmp_imm(IntCC::NotEqual, x, 0)
        } else {
            let cc = match op {
                JEQ => IntCC::Equal,
                JGT => IntCC::UnsignedGreaterThan,
                JGE => IntCC::UnsignedGreaterThanOrEqual,
                JNE => IntCC::NotEqual,
                JSGT => IntCC::SignedGreaterThan,
                JSGE => IntCC::SignedGreaterThanOrEqual,
                JLT => IntCC::UnsignedLessThan,
                JLE => IntCC::UnsignedLessThanOrEqual,
                JSLT => IntCC::SignedLessThan,
                _ => IntCC::SignedLessThanOrEqual, // JSLE; layout admits only valid ops
            };
            self.b.ins().icmp(cc, a, s)
        };
        let (t, f) = (self.blocks[&target], self.blocks[&(pc + 1)]);
        self.b.ins().brif(c, t, &[], f, &[]);
    }

    fn alu(&mut self, pc: usize) {
        let ins = self.insns[pc];
        let wide = ins.code & 7 == ALU64;
        let op = ins.code & 0xf0;
        let d = self.reg(ins.dst);
        if op == END {
            let ty = match ins.imm {
                16 => types::I16,
                32 => types::I32,
                _ => I64,
            };
            let mut v = if ty == I64 { d } else { self.b.ins().ireduce(ty, d) };
            // ALU64 END is the v4 unconditional swap; ALU END|X is to-be
            // (a swap on this little-endian model); ALU END|K is to-le (a
            // truncation).
            if wide || ins.code & X != 0 {
                v = self.b.ins().bswap(v);
            }
            let v = if ty == I64 { v } else { self.b.ins().uextend(I64, v) };
            self.set(ins.dst, v);
            return;
        }
        let ty = if wide { I64 } else { types::I32 };
        let s = if ins.code & X != 0 {
            let s = self.reg(ins.src);
            if wide {
                s
            } else {
                self.b.ins().ireduce(ty, s)
            }
        } else if wide {
            self.imm(ins.imm as i64)
        } else {
            self.b.ins().iconst(ty, ins.imm as u32 as i64)
        };
        let d = if wide { d } else { self.b.ins().ireduce(ty, d) };
        let signed = ins.off == 1;
        let v = match op {
            ADD => self.b.ins().iadd(d, s),
            SUB => self.b.ins().isub(d, s),
            MUL => self.b.ins().imul(d, s),
            DIV | MOD => self.div(op == MOD, signed, ty, d, s),
            OR => self.b.ins().bor(d, s),
            AND => self.b.ins().band(d, s),
            XOR => self.b.ins().bxor(d, s),
            LSH => self.b.ins().ishl(d, s),
            RSH => self.b.ins().ushr(d, s),
            ARSH => self.b.ins().sshr(d, s),
            NEG => self.b.ins().ineg(d),
            _ => {
                // MOV, MOVSX (off 8/16/32: sign-extend the low bits of src).
                match ins.off {
                    8 | 16 | 32 => {
                        let from = match ins.off {
                            8 => types::I8,
                            16 => types::I16,
                            _ => types::I32,
                        };
                        let low = self.b.ins().ireduce(from, s);
                        self.b.ins().sextend(ty, low)
                    }
                    _ => s,
                }
            }
        };
        let v = if wide { v } else { self.b.ins().uextend(I64, v) };
        self.set(ins.dst, v);
    }

    /// Kernel division: x/0 = 0, x%0 = x, signed x/-1 = -x, x%-1 = 0,
    /// without ever giving Cranelift a divisor that traps.
    fn div(&mut self, modulo: bool, signed: bool, ty: Type, d: Value, s: Value) -> Value {
        let zero = self.b.ins().iconst(ty, 0);
        let one = self.b.ins().iconst(ty, 1);
        let is0 = self.b.ins().icmp_imm(IntCC::Equal, s, 0);
        if !signed {
            let safe = self.b.ins().select(is0, one, s);
            return if modulo {
                let r = self.b.ins().urem(d, safe);
                self.b.ins().select(is0, d, r)
            } else {
                let q = self.b.ins().udiv(d, safe);
                self.b.ins().select(is0, zero, q)
            };
        }
        let is_m1 = self.b.ins().icmp_imm(IntCC::Equal, s, -1);
        let special = self.b.ins().bor(is0, is_m1);
        let safe = self.b.ins().select(special, one, s);
        if modulo {
            let r = self.b.ins().srem(d, safe);
            let r = self.b.ins().select(is_m1, zero, r);
            self.b.ins().select(is0, d, r)
        } else {
            let q = self.b.ins().sdiv(d, safe);
            let neg = self.b.ins().ineg(d);
            let q = self.b.ins().select(is_m1, neg, q);
            self.b.ins().select(is0, zero, q)
        }
    }

    fn effect(&mut self, pc: usize) -> Result<(), String> {
        let ins = self.insns[pc];
        let size = mem_size(ins.code) as i64;
        match ins.code & 7 {
            LDX => {
                let base = self.reg(ins.src);
                let a = self.b.ins().iadd_imm(base, ins.off as i64);
                let v = self.load(pc, a, size);
                let v = if ins.code & 0xe0 == MODE_MEMSX { self.sext(v, size) } else { v };
                self.set(ins.dst, v);
            }
            ST => {
                let base = self.reg(ins.dst);
                let a = self.b.ins().iadd_imm(base, ins.off as i64);
                let v = self.imm(ins.imm as i64);
                self.store(pc, a, size, v);
            }
            STX if ins.code & 0xe0 == MODE_ATOMIC && ins.imm == LOAD_ACQ => {
                let base = self.reg(ins.src);
                let a = self.b.ins().iadd_imm(base, ins.off as i64);
                let v = self.load(pc, a, size);
                self.set(ins.dst, v);
            }
            STX if ins.code & 0xe0 == MODE_ATOMIC
                && (size == 4 || size == 8)
                && inline_atomic(ins.imm) =>
            {
                self.atomic(pc, size)
            }
            STX if ins.code & 0xe0 == MODE_ATOMIC && ins.imm != STORE_REL => {
                let base = self.reg(ins.dst);
                let a = self.b.ins().iadd_imm(base, ins.off as i64);
                self.atomic_slow(pc, a, size);
            }
            STX => {
                let base = self.reg(ins.dst);
                let a = self.b.ins().iadd_imm(base, ins.off as i64);
                let v = self.reg(ins.src);
                self.store(pc, a, size, v);
            }
            _ => self.call(pc)?,
        }
        Ok(())
    }

    /// An atomic operation of a known kind and size (`Exec::atomic`) in
    /// place when the address is stack or a writable map value the inline
    /// checks admit; anything else (packet or ctx, where it faults; a
    /// read-only value, where a compare-and-exchange that changes nothing
    /// does not fault; test memory) takes the slow path, the interpreter's
    /// own code. The engine is single-threaded per map set, as the
    /// interpreter's plain read-modify-write assumes.
    fn atomic(&mut self, pc: usize, size: i64) {
        let ins = self.insns[pc];
        let base = self.reg(ins.dst);
        let a = self.b.ins().iadd_imm(base, ins.off as i64);
        let done = self.b.create_block();
        let slow = self.b.create_block();
        self.b.set_cold_block(slow);
        let ptr = self.fast_ptr(a, size, slow, true, false);
        let old = if size == 4 {
            self.b.ins().uload32(bpf_flags(), ptr, 0)
        } else {
            self.b.ins().load(I64, bpf_flags(), ptr, 0)
        };
        let s = self.reg(ins.src);
        let s = if size == 4 { self.b.ins().band_imm(s, u32::MAX as i64) } else { s };
        let new = match ins.imm {
            ATOMIC_XCHG => s,
            ATOMIC_CMPXCHG => {
                let r0 = self.reg(0);
                let expected =
                    if size == 4 { self.b.ins().band_imm(r0, u32::MAX as i64) } else { r0 };
                let eq = self.b.ins().icmp(IntCC::Equal, old, expected);
                // Storing `old` back when they differ writes the bytes it
                // read: nothing changes.
                self.b.ins().select(eq, s, old)
            }
            op => match op & !ATOMIC_FETCH {
                ATOMIC_ADD => self.b.ins().iadd(old, s),
                ATOMIC_OR => self.b.ins().bor(old, s),
                ATOMIC_AND => self.b.ins().band(old, s),
                _ => self.b.ins().bxor(old, s), // ATOMIC_XOR: the match above admits no other
            },
        };
        if size == 4 {
            self.b.ins().istore32(bpf_flags(), new, ptr, 0);
        } else {
            self.b.ins().store(bpf_flags(), new, ptr, 0);
        }
        if ins.imm == ATOMIC_CMPXCHG {
            self.set(0, old);
        } else if ins.imm & ATOMIC_FETCH != 0 {
            self.set(ins.src, old);
        }
        self.b.ins().jump(done, &[]);

        self.b.switch_to_block(slow);
        self.atomic_slow(pc, a, size);
        self.b.ins().jump(done, &[]);

        self.b.switch_to_block(done);
    }

    /// The atomic at `pc` on address `a` through the interpreter's own
    /// `Exec::atomic` (`rt_atomic`): r0 and the source register spilled
    /// and reloaded, since it may write either.
    fn atomic_slow(&mut self, pc: usize, a: Value, size: i64) {
        let ins = self.insns[pc];
        self.spill([0, ins.src]);
        let site = self.site(pc);
        let packed = self.imm(((ins.imm as i64) << 8) | size);
        let src = self.imm(ins.src as i64);
        let st = self.rt(offset_of!(RtTable, atomic), &[site, a, packed, src]);
        self.check_status(st);
        self.reload([0, ins.src]);
    }

    fn sext(&mut self, v: Value, size: i64) -> Value {
        let ty = match size {
            1 => types::I8,
            2 => types::I16,
            _ => types::I32,
        };
        let low = self.b.ins().ireduce(ty, v);
        self.b.ins().sextend(I64, low)
    }

    fn call(&mut self, pc: usize) -> Result<(), String> {
        let ins = self.insns[pc];
        if ins.code & X == 0 && ins.src == CALL_HELPER && ins.imm == MAP_LOOKUP_ELEM {
            self.lookup(pc);
            return Ok(());
        }
        let site = self.site(pc);
        self.spill(0..=10);
        self.store_executed();
        if ins.code & X != 0 || ins.src == CALL_HELPER {
            let callx = ins.code & X != 0;
            if callx && !self.allow_callx {
                return Err(format!("insn {pc}: callx outside the conformance runtime"));
            }
            let id = if callx { self.reg(ins.dst) } else { self.imm(ins.imm as i64) };
            let flag = self.imm(callx as i64);
            let st = self.rt(offset_of!(RtTable, helper), &[site, id, flag]);
            self.load_executed();
            self.check_status(st);
            self.reload([0]);
            if !callx {
                // The interpreter zeroes the clobbered r1-r5 (see interp.rs).
                for r in 1..=5 {
                    let z = self.imm(0);
                    self.set(r, z);
                }
            }
        } else if ins.src == PSEUDO_CALL {
            let t = (pc as i64 + 1 + ins.imm as i64) as usize;
            let func = *self
                .func_of
                .get(&(self.prog, t))
                .ok_or_else(|| format!("insn {pc}: call target {t} has no function"))?;
            let func = self.imm(func as i64);
            let st = self.rt(offset_of!(RtTable, call), &[site, func]);
            self.load_executed();
            self.check_status(st);
            self.reload(0..=5);
        } else {
            return Err(format!("insn {pc}: call with src {}", ins.src));
        }
        Ok(())
    }

    /// `bpf_map_lookup_elem` at `pc`. An `ARRAY` or `PERCPU_ARRAY` lookup
    /// (`FastMap::lookup_n` non-zero) with a key the inline checks can
    /// read is address arithmetic, as the kernel's `array_map_gen_lookup`
    /// (kernel/bpf/arraymap.c) emits it: index below `max_entries`, else
    /// NULL. The kernel also masks the index (`index_mask`) so that a
    /// mispredicted bound check cannot read out of the array; here the
    /// result is an engine address, never dereferenced without the region
    /// check, so the mask would change nothing. The key's helper work
    /// (`Budget::work(4)`, one unit) is charged as the helper charges it.
    /// Nothing is changed until every check has passed: a failed check
    /// sends the whole call to the helper (`rt_lookup`), which faults, or
    /// not, exactly as in the interpreter. Every other lookup calls the
    /// helper directly, without the generic helper path's register spill.
    fn lookup(&mut self, pc: usize) {
        let done = self.b.create_block();
        self.b.append_block_param(done, I64);
        let slow = self.b.create_block();
        let r1 = self.reg(1);
        let r2 = self.reg(2);

        let tag = self.b.ins().ushr_imm(r1, TAG_SHIFT as i64);
        let m = self.b.ins().band_imm(r1, OFFSET_MASK as i64);
        let is_map = self.b.ins().icmp_imm(IntCC::Equal, tag, TAG_MAP as i64);
        let nmaps = self.b.ins().load(I64, fixed(), self.ctx, ctx_off!(nmaps));
        let known = self.b.ins().icmp(IntCC::UnsignedLessThan, m, nmaps);
        let ok = self.b.ins().band(is_map, known);
        let entry = self.b.create_block();
        self.b.ins().brif(ok, entry, &[], slow, &[]);

        self.b.switch_to_block(entry);
        let tab = self.b.ins().load(I64, fixed(), self.ctx, ctx_off!(maps));
        let at = self.b.ins().ishl_imm(m, FAST_MAP_SHIFT);
        let e = self.b.ins().iadd(tab, at);
        let n = self.b.ins().load(I64, fixed(), e, offset_of!(FastMap, lookup_n) as i32);
        let key = self.b.create_block();
        self.b.ins().brif(n, key, &[], slow, &[]);

        self.b.switch_to_block(key);
        let ptr = self.fast_ptr(r2, 4, slow, false, true);
        let used = self.b.ins().load(I64, state(), self.ctx, ctx_off!(work_used));
        let limit = self.b.ins().load(I64, fixed(), self.ctx, ctx_off!(work_limit));
        let after = self.b.ins().iadd_imm(used, 1);
        let over = self.b.ins().icmp(IntCC::UnsignedGreaterThan, after, limit);
        let charged = self.b.create_block();
        self.b.ins().brif(over, slow, &[], charged, &[]);

        self.b.switch_to_block(charged);
        self.b.ins().store(state(), after, self.ctx, ctx_off!(work_used));
        let idx = self.b.ins().uload32(bpf_flags(), ptr, 0);
        let stride = self.b.ins().load(I64, fixed(), e, offset_of!(FastMap, stride) as i32);
        let cpu_off = self.b.ins().load(I64, fixed(), e, offset_of!(FastMap, cpu_off) as i32);
        // `Exec::value_addr`: `addr(TAG_MAP_VALUE_BASE + m, slot * stride
        // + cpu_off)`.
        let o = self.b.ins().imul(idx, stride);
        let o = self.b.ins().iadd(o, cpu_off);
        let o = self.b.ins().band_imm(o, OFFSET_MASK as i64);
        let t = self.b.ins().iadd_imm(m, TAG_MAP_VALUE_BASE as i64);
        let t = self.b.ins().ishl_imm(t, TAG_SHIFT as i64);
        let v = self.b.ins().bor(t, o);
        let inside = self.b.ins().icmp(IntCC::UnsignedLessThan, idx, n);
        let null = self.imm(0);
        let v = self.b.ins().select(inside, v, null);
        self.b.ins().jump(done, &[v.into()]);

        self.b.switch_to_block(slow);
        let site = self.site(pc);
        let v = self.rt(offset_of!(RtTable, lookup), &[site, r1, r2]);
        let st = self.b.ins().load(I64, state(), self.ctx, ctx_off!(status));
        self.b.ins().brif(st, self.abort, &[st.into()], done, &[v.into()]);

        self.b.switch_to_block(done);
        let r0 = self.b.block_params(done)[0];
        self.set(0, r0);
        // The interpreter zeroes the clobbered r1-r5 (see interp.rs).
        for r in 1..=5 {
            let z = self.imm(0);
            self.set(r, z);
        }
    }

    /// The inline packet/stack check of `Exec::slice`; anything else, or a
    /// failed check, goes to the interpreter's checked `load`.
    fn load(&mut self, pc: usize, a: Value, size: i64) -> Value {
        let done = self.b.create_block();
        self.b.append_block_param(done, I64);
        let slow = self.b.create_block();
        self.b.set_cold_block(slow);
        // A 4-byte load may be a ctx field: checked after packet and stack.
        let not_mem = if size == 4 { self.b.create_block() } else { slow };
        let ptr = self.fast_ptr(a, size, not_mem, false, true);
        let v = match size {
            1 => self.b.ins().uload8(I64, bpf_flags(), ptr, 0),
            2 => self.b.ins().uload16(I64, bpf_flags(), ptr, 0),
            4 => self.b.ins().uload32(bpf_flags(), ptr, 0),
            _ => self.b.ins().load(I64, bpf_flags(), ptr, 0),
        };
        self.b.ins().jump(done, &[v.into()]);

        if size == 4 {
            // `Exec::ctx_load` inline: `a` is the ctx address plus a
            // multiple of 4 below `ctx_span`. A pointer of another region
            // differs from the ctx address in its tag, so the difference
            // is far outside the span.
            self.b.switch_to_block(not_mem);
            let base = self.b.ins().load(I64, fixed(), self.ctx, ctx_off!(ctx_addr));
            let span = self.b.ins().load(I64, fixed(), self.ctx, ctx_off!(ctx_span));
            let d = self.b.ins().isub(a, base);
            let inside = self.b.ins().icmp(IntCC::UnsignedLessThan, d, span);
            let misaligned = self.b.ins().band_imm(d, 3);
            let aligned = self.b.ins().icmp_imm(IntCC::Equal, misaligned, 0);
            let ok = self.b.ins().band(inside, aligned);
            let field = self.b.create_block();
            self.b.ins().brif(ok, field, &[], slow, &[]);
            self.b.switch_to_block(field);
            // Field i (at byte 4i) is the u64 at ctx_fields + 8i = + 2d.
            let at = self.b.ins().ishl_imm(d, 1);
            let p = self.b.ins().iadd(self.ctx, at);
            let v = self.b.ins().load(I64, fixed(), p, ctx_off!(ctx_fields));
            self.b.ins().jump(done, &[v.into()]);
        }

        self.b.switch_to_block(slow);
        let site = self.site(pc);
        let sz = self.imm(size);
        let v = self.rt(offset_of!(RtTable, load), &[site, a, sz]);
        let st = self.b.ins().load(I64, state(), self.ctx, ctx_off!(status));
        self.b.ins().brif(st, self.abort, &[st.into()], done, &[v.into()]);

        self.b.switch_to_block(done);
        self.b.block_params(done)[0]
    }

    fn store(&mut self, pc: usize, a: Value, size: i64, v: Value) {
        let done = self.b.create_block();
        let slow = self.b.create_block();
        self.b.set_cold_block(slow);
        let ptr = self.fast_ptr(a, size, slow, true, true);
        match size {
            1 => self.b.ins().istore8(bpf_flags(), v, ptr, 0),
            2 => self.b.ins().istore16(bpf_flags(), v, ptr, 0),
            4 => self.b.ins().istore32(bpf_flags(), v, ptr, 0),
            _ => self.b.ins().store(bpf_flags(), v, ptr, 0),
        };
        self.b.ins().jump(done, &[]);

        self.b.switch_to_block(slow);
        let site = self.site(pc);
        let sz = self.imm(size);
        let st = self.rt(offset_of!(RtTable, store), &[site, a, sz, v]);
        self.b.ins().brif(st, self.abort, &[st.into()], done, &[]);

        self.b.switch_to_block(done);
    }

    /// Emits the region checks for `[a, a+size)`; falls into a block where
    /// the returned host pointer is valid, or branches to `slow`. A write
    /// to the stack lowers `JitCtx::stack_dirty` (the run clears the entry
    /// frame from there when it ends; lowering it for an access that then
    /// fails the check only makes that clear longer). Without `packet`,
    /// packet addresses go to `slow` (atomics, which fault there).
    fn fast_ptr(&mut self, a: Value, size: i64, slow: Block, write: bool, packet: bool) -> Value {
        let ok = self.b.create_block();
        self.b.append_block_param(ok, I64);
        let pkt = if packet { self.b.create_block() } else { slow };
        let not_pkt = self.b.create_block();
        let stack = self.b.create_block();

        let tag = self.b.ins().ushr_imm(a, TAG_SHIFT as i64);
        let off = self.b.ins().band_imm(a, OFFSET_MASK as i64);
        // off < 2^40, so off + size cannot wrap.
        let end = self.b.ins().iadd_imm(off, size);
        let is_pkt = self.b.ins().icmp_imm(IntCC::Equal, tag, TAG_PACKET as i64);
        let mut regions =
            vec![(stack, ctx_off!(stack_low), ctx_off!(stack_hi), ctx_off!(stack_base))];
        if packet {
            self.b.ins().brif(is_pkt, pkt, &[], not_pkt, &[]);
            regions.push((pkt, ctx_off!(pkt_lo), ctx_off!(pkt_hi), ctx_off!(pkt_base)));
        } else {
            self.b.ins().brif(is_pkt, slow, &[], not_pkt, &[]);
        }

        for (blk, lo, hi, base) in regions {
            self.b.switch_to_block(blk);
            let lo = self.b.ins().load(I64, fixed(), self.ctx, lo);
            let hi = self.b.ins().load(I64, fixed(), self.ctx, hi);
            let ge = self.b.ins().icmp(IntCC::UnsignedGreaterThanOrEqual, off, lo);
            let le = self.b.ins().icmp(IntCC::UnsignedLessThanOrEqual, end, hi);
            let inside = self.b.ins().band(ge, le);
            if write && blk == stack {
                let d = self.b.ins().load(I64, state(), self.ctx, ctx_off!(stack_dirty));
                let d = self.b.ins().umin(d, off);
                self.b.ins().store(state(), d, self.ctx, ctx_off!(stack_dirty));
            }
            let base = self.b.ins().load(I64, fixed(), self.ctx, base);
            let p = self.b.ins().iadd(base, off);
            self.b.ins().brif(inside, ok, &[p.into()], slow, &[]);
        }

        self.b.switch_to_block(not_pkt);
        let is_stack = self.b.ins().icmp_imm(IntCC::Equal, tag, TAG_STACK as i64);
        let not_stack = self.b.create_block();
        self.b.ins().brif(is_stack, stack, &[], not_stack, &[]);

        // A map value (`FastMap`): `Exec::slice`'s check where it is a mask
        // and two compares, else `len` is 0 and the slow path divides.
        self.b.switch_to_block(not_stack);
        let m = self.b.ins().iadd_imm(tag, -(TAG_MAP_VALUE_BASE as i64));
        let nmaps = self.b.ins().load(I64, fixed(), self.ctx, ctx_off!(nmaps));
        // Tags below the base wrap to huge values.
        let known = self.b.ins().icmp(IntCC::UnsignedLessThan, m, nmaps);
        let value = self.b.create_block();
        self.b.ins().brif(known, value, &[], slow, &[]);
        self.b.switch_to_block(value);
        let tab = self.b.ins().load(I64, fixed(), self.ctx, ctx_off!(maps));
        let at = self.b.ins().ishl_imm(m, FAST_MAP_SHIFT);
        let e = self.b.ins().iadd(tab, at);
        let field = |f: usize| f as i32;
        let len_at = if write { offset_of!(FastMap, wlen) } else { offset_of!(FastMap, len) };
        let len = self.b.ins().load(I64, fixed(), e, field(len_at));
        let mask = self.b.ins().load(I64, fixed(), e, field(offset_of!(FastMap, mask)));
        let vs = self.b.ins().load(I64, fixed(), e, field(offset_of!(FastMap, value_size)));
        let cpu_off = self.b.ins().load(I64, fixed(), e, field(offset_of!(FastMap, cpu_off)));
        // The offset inside the slot, less this CPU's part: below the value
        // size exactly when the access lies in this CPU's value (another
        // part, or the padding after it, wraps or lands past it).
        let in_slot = self.b.ins().band(off, mask);
        let within = self.b.ins().isub(in_slot, cpu_off);
        let inner_end = self.b.ins().iadd_imm(within, size);
        let in_store = self.b.ins().icmp(IntCC::UnsignedLessThanOrEqual, end, len);
        // `within <= value_size` first: a wrapped `within` (an offset just
        // before this CPU's part) would wrap back to a small `inner_end`.
        let not_before = self.b.ins().icmp(IntCC::UnsignedLessThanOrEqual, within, vs);
        let fits = self.b.ins().icmp(IntCC::UnsignedLessThanOrEqual, inner_end, vs);
        let in_value = self.b.ins().band(not_before, fits);
        let inside = self.b.ins().band(in_store, in_value);
        let base = self.b.ins().load(I64, fixed(), e, field(offset_of!(FastMap, values)));
        let p = self.b.ins().iadd(base, off);
        self.b.ins().brif(inside, ok, &[p.into()], slow, &[]);

        self.b.switch_to_block(ok);
        self.b.block_params(ok)[0]
    }
}

/// The atomic operations `Exec::atomic` performs (add, or, and, xor, each
/// with or without fetch; exchange; compare-and-exchange); anything else
/// is the slow path's invalid instruction.
fn inline_atomic(imm: i32) -> bool {
    matches!(imm, ATOMIC_XCHG | ATOMIC_CMPXCHG)
        || matches!(imm & !ATOMIC_FETCH, ATOMIC_ADD | ATOMIC_OR | ATOMIC_AND | ATOMIC_XOR)
}

// `check_status` and the slow paths branch on "status != 0" meaning abort.
const _: () = assert!(ST_FAULT != 0);

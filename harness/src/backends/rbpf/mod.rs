//! The rbpf backend: runs programs on rbpf 0.4.1 (github.com/qmonnet/rbpf),
//! an independent userspace eBPF implementation, as a second opinion.
//!
//! rbpf is only a useful witness where it implements the kernel's semantics
//! exactly, so nothing runs before [`eligibility::check`] has refused what it
//! gets wrong (see that module for each rule and where in rbpf it comes
//! from). XDP programs additionally go through [`xdp_ctx::rewrite_xdp_ctx`]
//! so their `struct xdp_md` loads work against rbpf's metadata buffer.
//!
//! Engines:
//! - the interpreter (always): bounds-checks every access against the
//!   memory, metadata buffer and stack it was given and reports a run error
//!   otherwise;
//! - the x86_64 JIT ([`run_raw_jit`], and `xdpqual bench`'s rbpf-jit row):
//!   rbpf's JIT does no bounds checking at all, and a program can tell it
//!   from the interpreter (r10 points into a heap buffer in one and into the
//!   native stack in the other), so "the interpreter ran it first" proves
//!   nothing. It runs only in a sandboxed child process ([`sandbox`]), and
//!   its results are only compared with the interpreter's.
//!
//! rbpf's error texts name host addresses (the interpreter's out-of-bounds
//! message prints the access, the mbuff, the memory and the stack); every
//! text that leaves this module goes through [`scrub_addresses`] first.
//!
//! Helper calls are refused unless the caller registers them
//! ([`RbpfHelpers`]); which kernel helpers to bridge is the caller's call.
//! A registered helper receives the mbuff pointer where the program passes
//! its context.

pub mod backend;
pub mod eligibility;
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
pub mod sandbox;
pub mod xdp_ctx;

pub use eligibility::{check, eligibility, Engine};
pub use xdp_ctx::{rewrite_xdp_ctx, XdpMd};

use crate::isa::{encode_le, Insn};
use std::fmt;

/// Why rbpf cannot run a program exactly: what, and at which slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    pub reason: String,
    pub insn: usize,
}

impl Unsupported {
    pub fn new(reason: String, insn: usize) -> Unsupported {
        Unsupported { reason, insn }
    }
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rbpf: unsupported: {} at insn {}", self.reason, self.insn)
    }
}

impl std::error::Error for Unsupported {}

/// Why a run produced no result.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Unsupported(#[from] Unsupported),
    /// rbpf's verifier refused the program, or execution failed (an
    /// out-of-bounds access, an unknown helper, too deep a call chain).
    #[error("rbpf: {0}")]
    Rbpf(String),
}

fn rbpf_err(e: std::io::Error) -> RunError {
    RunError::Rbpf(scrub_addresses(&e.to_string()))
}

/// `text` with every `0x` followed by 8 or more hex digits replaced by
/// `<addr>`: rbpf formats host pointers that way (`{:#x}`, and `{:?}` of a
/// pointer), and no value that long in its messages is anything else (the
/// lengths and offsets it prints are short). Addresses of this process
/// must never reach a report.
pub fn scrub_addresses(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'0' && matches!(b.get(i + 1), Some(b'x' | b'X')) {
            let digits = b[i + 2..].iter().take_while(|c| c.is_ascii_hexdigit()).count();
            if digits >= 8 {
                out.push_str("<addr>");
                i += 2 + digits;
                continue;
            }
        }
        let ch = text[i..].chars().next().expect("i is on a char boundary");
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// Helpers to register with rbpf, by id. Empty by default.
#[derive(Clone, Default)]
pub struct RbpfHelpers(pub Vec<(u32, ::rbpf::ebpf::Helper)>);

impl RbpfHelpers {
    pub fn ids(&self) -> Vec<u32> {
        self.0.iter().map(|(id, _)| *id).collect()
    }
}

/// Runs a non-XDP program in the interpreter with `r1` = `mem`'s address
/// (null when empty), as bpf_conformance's plugins do. rbpf sets no `r2`
/// (`interpreter.rs` zeroes it), where ubpf would pass the length.
pub fn run_raw(insns: &[Insn], mem: &mut [u8], helpers: &RbpfHelpers) -> Result<u64, RunError> {
    check(insns, Engine::Interpreter, &helpers.ids())?;
    refuse_entry_reads(insns)?;
    let bytes = encode_le(insns);
    let mut vm = ::rbpf::EbpfVmRaw::new(Some(&bytes)).map_err(rbpf_err)?;
    for (id, f) in &helpers.0 {
        vm.register_helper(*id, *f).map_err(rbpf_err)?;
    }
    guarded(|| vm.execute_program(mem))
}

/// rbpf zeroes r2-r5 at entry; bpf_conformance's executors pass the memory
/// length in r2 (ubpf_plugin calls `fn(mem, mem_len)`), and the kernel
/// refuses reads of them. A program reading one has no agreed value there.
fn refuse_entry_reads(insns: &[Insn]) -> Result<(), Unsupported> {
    for r in 2..=5 {
        if let Some(at) = eligibility::reads_before_write(insns, r) {
            return Err(Unsupported::new(
                format!("reads r{r} at entry (rbpf sets it to 0; the suite passes the memory length in r2)"),
                at,
            ));
        }
    }
    Ok(())
}

/// Runs rbpf, turning a panic inside it (an `unreachable!()` or an
/// arithmetic overflow check) into an error instead of taking the harness
/// down. Eligibility is meant to rule these out; this is the backstop.
fn guarded(f: impl FnOnce() -> Result<u64, std::io::Error>) -> Result<u64, RunError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r.map_err(rbpf_err),
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(RunError::Rbpf(scrub_addresses(&format!("panicked: {msg}"))))
        }
    }
}

/// Runs a non-XDP program on rbpf's x86_64 JIT, in a sandboxed child
/// ([`sandbox`]), after rbpf's interpreter has run it on a copy of `mem`
/// here (for its error text, if it fails). Returns the JIT's `r0` only
/// where it equals the interpreter's: a value the interpreter did not
/// produce is an error that withholds the value (it may be a host
/// address). `mem` is not written back.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
pub fn run_raw_jit(insns: &[Insn], mem: &[u8]) -> Result<u64, RunError> {
    check(insns, Engine::Jit, &[])?;
    let mut probe = mem.to_vec();
    run_raw(insns, &mut probe, &RbpfHelpers::default())?;
    let bytes = encode_le(insns);
    let inputs = [mem];
    let job = sandbox::Job {
        bytecode: &bytes,
        ctx: sandbox::Ctx::Raw,
        inputs: &inputs,
        jit: true,
        timed: sandbox::Timed::None,
        rounds: 0,
        timeout: sandbox::default_timeout(1, 0),
    };
    let report = sandbox::run(&job).map_err(|e| RunError::Rbpf(e.to_string()))?;
    match (report.interpreter[0], report.jit_agreeing(0)) {
        (None, _) => Err(RunError::Rbpf(
            "rbpf's interpreter failed in the sandbox where it ran here".into(),
        )),
        (Some(_), Some(r0)) => Ok(r0),
        (Some(_), None) => Err(RunError::Rbpf(
            "rbpf's JIT returned a value its interpreter did not (withheld: it may be a host address)"
                .into(),
        )),
    }
}

/// An XDP program prepared for rbpf: checked and with context loads
/// rewritten. Keeps the bytes rbpf borrows.
#[derive(Clone, Debug)]
pub struct XdpProgram {
    bytes: Vec<u8>,
    helpers: Vec<u32>,
}

impl XdpProgram {
    /// Checks `insns` for the interpreter (with `helpers` registered at run
    /// time) and rewrites its `xdp_md` loads.
    pub fn prepare(insns: &[Insn], helpers: &RbpfHelpers) -> Result<XdpProgram, Unsupported> {
        check(insns, Engine::Interpreter, &helpers.ids())?;
        refuse_entry_reads(insns)?;
        let rewritten = rewrite_xdp_ctx(insns)?;
        Ok(XdpProgram { bytes: encode_le(&rewritten), helpers: helpers.ids() })
    }

    /// [`prepare`](Self::prepare), for running in this process: also
    /// refuses every program that can loop. rbpf's interpreter has no
    /// instruction budget, so a loop could run forever inside diff or
    /// qualify; with no cycle in the control flow (and nested BPF-to-BPF
    /// calls refused by [`check`]) every run ends within the program's
    /// length times two frames. A backward jump that closes no cycle (clang
    /// shares exit blocks that way) is fine. `bench` runs rbpf in a child
    /// with a deadline instead, so loops are measured there.
    pub fn prepare_bounded(
        insns: &[Insn],
        helpers: &RbpfHelpers,
    ) -> Result<XdpProgram, Unsupported> {
        if let Some((from, to)) = crate::isa::cfg::find_cycle(insns) {
            return Err(Unsupported::new(
                format!(
                    "loop (insn {from} goes to insn {to}, closing a cycle): rbpf's interpreter has no instruction budget, so it could run without end in this process"
                ),
                from,
            ));
        }
        Self::prepare(insns, helpers)
    }

    /// Runs on one packet; returns the program's `r0` (the XDP action).
    /// `packet` is the whole frame (`data` to `data_end`); `data_meta` is
    /// set equal to `data` (no metadata). The VM is built per run because
    /// rbpf's VM borrows the program; its verifier pass is linear.
    pub fn run(
        &self,
        packet: &mut [u8],
        ingress_ifindex: u32,
        rx_queue_index: u32,
        helpers: &RbpfHelpers,
    ) -> Result<u64, RunError> {
        if helpers.ids() != self.helpers {
            return Err(RunError::Rbpf(
                "helpers differ from those the program was prepared for".into(),
            ));
        }
        let data = packet.as_ptr() as u64;
        let md = XdpMd {
            data,
            data_end: data + packet.len() as u64,
            data_meta: data,
            ingress_ifindex,
            rx_queue_index,
            egress_ifindex: 0,
        };
        let mbuff = md.to_mbuff();
        let mut vm = ::rbpf::EbpfVmMbuff::new(Some(&self.bytes)).map_err(rbpf_err)?;
        for (id, f) in &helpers.0 {
            vm.register_helper(*id, *f).map_err(rbpf_err)?;
        }
        // rbpf takes `mem` as `&[u8]` yet lets the program store through
        // it (an aliasing wart inside rbpf we cannot fix from here); we at
        // least hold `packet` exclusively, so nothing else observes it.
        guarded(|| vm.execute_program(packet, &mbuff))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isa::asm::assemble;

    #[test]
    fn raw_run_reads_memory_through_r1() {
        let p = assemble("ldxh %r0, [%r1+2]\nexit").unwrap();
        let mut mem = [0xaa, 0xbb, 0x11, 0x22];
        assert_eq!(run_raw(&p, &mut mem, &RbpfHelpers::default()).unwrap(), 0x2211);
    }

    #[test]
    fn out_of_bounds_is_a_run_error() {
        let p = assemble("ldxdw %r0, [%r1+8]\nexit").unwrap();
        let mut mem = [0u8; 4];
        let e = run_raw(&p, &mut mem, &RbpfHelpers::default()).unwrap_err();
        assert!(matches!(e, RunError::Rbpf(ref m) if m.contains("out of bounds")), "{e}");
    }

    #[test]
    fn unsupported_before_running() {
        let p = assemble("mov %r0, 7\nsdiv %r0, 2\nexit").unwrap();
        let e = run_raw(&p, &mut [], &RbpfHelpers::default()).unwrap_err();
        assert_eq!(e.to_string(), "rbpf: unsupported: signed division (sdiv, off=1) at insn 1");
    }

    /// Kernel results worked out by hand: NEG of i64::MIN wraps to itself;
    /// a backward BPF-to-BPF call returns the callee's r0.
    #[test]
    fn wrapping_arithmetic_matches_the_kernel() {
        let none = RbpfHelpers::default();
        let p = assemble("lddw %r0, 0x8000000000000000\nneg %r0\nexit").unwrap();
        assert_eq!(run_raw(&p, &mut [], &none).unwrap(), 0x8000000000000000);
        let p = assemble("ja +2\nf:\nmov %r0, 5\nexit\ncall local f\nexit").unwrap();
        assert_eq!(p[3].imm, -3);
        assert_eq!(run_raw(&p, &mut [], &none).unwrap(), 5);
    }

    /// In this process rbpf may only run programs that end: a loop (here
    /// one that never ends) is refused before it runs, while forward
    /// jumps and a backward BPF-to-BPF call are not loops.
    #[test]
    fn loops_are_refused_for_in_process_runs() {
        let none = RbpfHelpers::default();
        let forever = assemble("mov %r0, 2\nja -1\nexit").unwrap();
        let e = XdpProgram::prepare_bounded(&forever, &none).unwrap_err();
        assert!(
            e.to_string().contains("loop (insn 1 goes to insn 1, closing a cycle)")
                && e.to_string().ends_with("at insn 1"),
            "{e}"
        );
        let counted = assemble("mov %r1, 3\nsub %r1, 1\njne %r1, 0, -2\nmov %r0, 2\nexit").unwrap();
        assert!(XdpProgram::prepare_bounded(&counted, &none).is_err());
        let forward = assemble("mov %r0, 2\njeq %r1, 0, +1\nmov %r0, 1\nexit").unwrap();
        assert!(XdpProgram::prepare_bounded(&forward, &none).is_ok());
        let call = assemble("ja +2\nf:\nmov %r0, 2\nexit\ncall local f\nexit").unwrap();
        assert!(XdpProgram::prepare_bounded(&call, &none).is_ok());
        // clang's shared exit block: a backward jump that closes no cycle.
        let shared_exit = assemble("mov %r0, 2\njeq %r1, 0, +2\nexit\nmov %r0, 1\nja -3").unwrap();
        assert!(XdpProgram::prepare_bounded(&shared_exit, &none).is_ok());
        assert_eq!(run_raw(&shared_exit, &mut [], &none).unwrap(), 2);
    }

    #[test]
    fn registered_helper_is_called() {
        fn add(a: u64, b: u64, _: u64, _: u64, _: u64) -> u64 {
            a + b
        }
        let helpers = RbpfHelpers(vec![(9, add)]);
        let p = assemble("mov %r1, 40\nmov %r2, 2\ncall 9\nexit").unwrap();
        assert_eq!(run_raw(&p, &mut [], &helpers).unwrap(), 42);
    }

    /// A hand-written XDP program: drop frames shorter than 14 bytes, else
    /// return the EtherType's low byte. Expected values worked out from
    /// the frames below.
    #[test]
    fn xdp_program_sees_data_and_data_end() {
        let src = "\
            ldxw %r2, [%r1+0]
            ldxw %r3, [%r1+4]
            mov %r4, %r2
            add %r4, 14
            jgt %r4, %r3, drop
            ldxb %r0, [%r2+13]
            exit
        drop:
            mov %r0, 1
            exit";
        let prog = XdpProgram::prepare(&assemble(src).unwrap(), &RbpfHelpers::default()).unwrap();
        let mut frame = [0u8; 14];
        frame[12] = 0x08;
        frame[13] = 0x06;
        assert_eq!(prog.run(&mut frame, 1, 0, &RbpfHelpers::default()).unwrap(), 0x06);
        let mut runt = [0u8; 10];
        assert_eq!(prog.run(&mut runt, 1, 0, &RbpfHelpers::default()).unwrap(), 1);
    }

    #[test]
    fn xdp_program_reads_ifindex_and_writes_packet() {
        let src = "ldxw %r0, [%r1+12]\nldxw %r2, [%r1+0]\nstb [%r2+0], 0x5a\nexit";
        let prog = XdpProgram::prepare(&assemble(src).unwrap(), &RbpfHelpers::default()).unwrap();
        let mut frame = [0u8; 4];
        assert_eq!(prog.run(&mut frame, 7, 0, &RbpfHelpers::default()).unwrap(), 7);
        assert_eq!(frame[0], 0x5a);
    }

    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    #[test]
    fn jit_agrees_and_is_gated_by_the_interpreter() {
        let p = assemble("ldxw %r0, [%r1+0]\nadd %r0, 1\nexit").unwrap();
        let mem = 41u32.to_le_bytes();
        assert_eq!(run_raw_jit(&p, &mem).unwrap(), 42);
        // Out of bounds: the interpreter's error, the JIT never runs.
        let p = assemble("ldxdw %r0, [%r1+64]\nexit").unwrap();
        assert!(matches!(run_raw_jit(&p, &mem), Err(RunError::Rbpf(_))));
        // le16 is refused for the JIT.
        let p = assemble("le16 %r0\nexit").unwrap();
        assert!(matches!(run_raw_jit(&p, &mem), Err(RunError::Unsupported(_))));
    }

    /// A real out-of-bounds error from rbpf's interpreter names the access,
    /// the mbuff, the memory and the stack by host address (interpreter.rs
    /// `check_mem`); none of them may survive into the RunError.
    #[test]
    fn rbpf_errors_carry_no_host_address() {
        let p = assemble("mov %r2, %r10\nldxdw %r0, [%r1+64]\nexit").unwrap();
        let mut mem = [0u8; 16];
        let addr = mem.as_ptr() as u64;
        let e = run_raw(&p, &mut mem, &RbpfHelpers::default()).unwrap_err().to_string();
        assert!(e.contains("out of bounds") && e.contains("<addr>"), "{e}");
        assert!(!e.contains(&format!("{addr:#x}")) && !e.contains(&format!("{addr}")), "{e}");
        let long_hex = e
            .split(|c: char| !c.is_ascii_hexdigit() && c != 'x')
            .any(|w| w.strip_prefix("0x").is_some_and(|h| h.len() >= 8));
        assert!(!long_hex, "{e}");
        // The raw rbpf message really did carry the address.
        let bytes = encode_le(&p);
        let vm = ::rbpf::EbpfVmRaw::new(Some(&bytes)).unwrap();
        let raw = vm.execute_program(&mut mem).unwrap_err().to_string();
        assert!(raw.contains(&format!("{addr:#x}")), "{raw}");
        // The XDP path (diff, qualify): the same, with the frame's address.
        let src = "ldxw %r2, [%r1+0]\nldxdw %r0, [%r2+4096]\nexit";
        let prog = XdpProgram::prepare(&assemble(src).unwrap(), &RbpfHelpers::default()).unwrap();
        let mut frame = [0u8; 64];
        let addr = frame.as_ptr() as u64;
        let e = prog.run(&mut frame, 1, 0, &RbpfHelpers::default()).unwrap_err().to_string();
        assert!(e.contains("out of bounds") && e.contains("<addr>"), "{e}");
        assert!(!e.contains(&format!("{addr:#x}")) && !e.contains(&format!("{addr}")), "{e}");
    }

    #[test]
    fn scrubbing_keeps_short_numbers() {
        assert_eq!(
            scrub_addresses("addr 0x7ffd12345678, size 8\nmem: 0x55d0aa/0x10 0xDEADBEEF1"),
            "addr <addr>, size 8\nmem: 0x55d0aa/0x10 <addr>"
        );
        assert_eq!(scrub_addresses("é 0x1234567 ü"), "é 0x1234567 ü");
    }
}

//! Exact verdicts from an fexit probe on the attached program, the way
//! xdpdump observes XDP programs.
//!
//! A BPF_PROG_TYPE_TRACING program with expected_attach_type
//! BPF_TRACE_FEXIT is loaded against the XDP program (`attach_prog_fd`, and
//! `attach_btf_id` = the BTF id of the XDP program's FUNC in its own BTF).
//! The kernel only allows that when the XDP program was loaded with BTF and
//! `func_info`: kernel/bpf/verifier.c bpf_check_attach_target refuses
//! targets without BTF ("can only be attached to another program annotated
//! with BTF") and looks the FUNC up in the target's `func_info` ("Subprog
//! %s doesn't exist"). It must also be JIT-compiled ("Can attach to only
//! JITed progs").
//!
//! An fexit program sees the traced function's arguments and then its
//! return value as an array of u64 (`ctx[0]` = the `struct xdp_md *`, which
//! the verifier retypes to `struct xdp_buff *`, kernel/bpf/btf.c
//! btf_translate_to_vmlinux; `ctx[1]` = the XDP action). For each run it
//! takes a sequence number from a counter and writes, into slot
//! `seq % SLOTS` of an array, the action, the frame length
//! (`data_end - data`) and its first bytes, then `seq + 1` as the record's
//! stamp. The field offsets of `struct xdp_buff` are read from the running
//! kernel's BTF (/sys/kernel/btf/vmlinux), not assumed.
//!
//! The packet's identity is still its turn (one frame in flight, see
//! [`super::observe`]); the probe replaces the run counter as the fence and
//! gives the action itself, so DROP and ABORTED are told apart.

use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use crate::backends::host::{KernelMap, KernelProgram};
use crate::isa::{self, opcode as op, Insn};
use crate::program::{MapDef, MapOrigin, MapType};
use xdpqual_kernel::sys;

/// Records kept; more runs than this between two reads lose the oldest.
const SLOTS: u32 = 64;
/// Bytes of the frame's head kept per run.
pub const HEAD: usize = 64;
const RECORD: usize = 16 + HEAD;

const BPF_PROG_TYPE_TRACING: u32 = 26;
const BPF_TRACE_FEXIT: u32 = 25;
const HELPER_MAP_LOOKUP_ELEM: i32 = 1;
const HELPER_PROBE_READ_KERNEL: i32 = 113;

/// One run of the XDP program as the probe saw it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Run {
    /// The program's return value.
    pub action: u32,
    /// `data_end - data` when it returned.
    pub len: u32,
    /// The first bytes of the frame when it returned (at most [`HEAD`]).
    #[serde(with = "crate::util::hex_bytes")]
    pub head: Vec<u8>,
}

pub struct VerdictProbe {
    counter: KernelMap,
    records: KernelMap,
    _prog: OwnedFd,
    _link: OwnedFd,
    seen: u64,
}

fn array(name: &str, value_size: u32, max_entries: u32) -> MapDef {
    MapDef {
        name: name.into(),
        map_type: MapType::Array,
        key_size: 4,
        value_size,
        max_entries,
        flags: 0,
        origin: MapOrigin::Legacy,
        initial_data: None,
        read_only: false,
        inner: None,
        init_slots: Vec::new(),
    }
}

fn ld_map(dst: u8, fd: i32) -> [Insn; 2] {
    [
        Insn::new(op::LD | op::SIZE_DW | op::MODE_IMM, dst, op::PSEUDO_MAP_FD, 0, fd),
        Insn::new(0, 0, 0, 0, 0),
    ]
}

/// The fexit program. `data`/`data_end`: offsets in `struct xdp_buff`.
fn program(counter_fd: i32, records_fd: i32, data: i16, data_end: i16) -> Vec<Insn> {
    let alu = |o: u8, dst: u8, imm: i32| Insn::new(op::ALU64 | o | op::K, dst, 0, 0, imm);
    let mov = |dst: u8, src: u8| Insn::new(op::ALU64 | op::MOV | op::X, dst, src, 0, 0);
    let ldx = |size: u8, dst: u8, src: u8, off: i16| {
        Insn::new(op::LDX | size | op::MODE_MEM, dst, src, off, 0)
    };
    let stx = |size: u8, dst: u8, src: u8, off: i16| {
        Insn::new(op::STX | size | op::MODE_MEM, dst, src, off, 0)
    };
    let st = |size: u8, dst: u8, off: i16, imm: i32| {
        Insn::new(op::ST | size | op::MODE_MEM, dst, 0, off, imm)
    };
    let call = |h: i32| Insn::new(op::JMP | op::CALL, 0, 0, 0, h);
    let jeq0 = |dst: u8, off: i16| Insn::new(op::JMP | op::JEQ | op::K, dst, 0, off, 0);
    let mut p = Vec::new();
    p.push(ldx(op::SIZE_DW, 7, 1, 0)); // r7 = ctx[0]: struct xdp_buff *
    p.push(ldx(op::SIZE_DW, 8, 1, 8)); // r8 = ctx[1]: the return value
                                       // r9 = fetch_add(counter[0], 1)
    p.push(st(op::SIZE_W, 10, -4, 0));
    p.extend(ld_map(1, counter_fd));
    p.push(mov(2, 10));
    p.push(alu(op::ADD, 2, -4));
    p.push(call(HELPER_MAP_LOOKUP_ELEM));
    let to_exit_1 = p.len();
    p.push(jeq0(0, 0)); // patched below
    p.push(alu(op::MOV, 9, 1));
    p.push(Insn::new(
        op::STX | op::SIZE_DW | op::MODE_ATOMIC,
        0,
        9,
        0,
        op::ATOMIC_ADD | op::ATOMIC_FETCH,
    ));
    // r6 = &records[r9 % SLOTS]
    p.push(mov(1, 9));
    p.push(alu(op::AND, 1, SLOTS as i32 - 1));
    p.push(stx(op::SIZE_W, 10, 1, -8));
    p.extend(ld_map(1, records_fd));
    p.push(mov(2, 10));
    p.push(alu(op::ADD, 2, -8));
    p.push(call(HELPER_MAP_LOOKUP_ELEM));
    let to_exit_2 = p.len();
    p.push(jeq0(0, 0)); // patched below
    p.push(mov(6, 0));
    p.push(stx(op::SIZE_W, 6, 8, 8)); // action
    p.push(ldx(op::SIZE_DW, 3, 7, data)); // r3 = data
    p.push(ldx(op::SIZE_DW, 2, 7, data_end));
    p.push(Insn::new(op::ALU64 | op::SUB | op::X, 2, 3, 0, 0)); // r2 = len
    p.push(stx(op::SIZE_W, 6, 2, 12));
    p.push(Insn::new(op::JMP | op::JLE | op::K, 2, 0, 1, HEAD as i32));
    p.push(alu(op::MOV, 2, HEAD as i32));
    p.push(mov(1, 6));
    p.push(alu(op::ADD, 1, 16));
    p.push(call(HELPER_PROBE_READ_KERNEL)); // (dst, size, src)
    p.push(alu(op::ADD, 9, 1));
    p.push(stx(op::SIZE_DW, 6, 9, 0)); // stamp, last
    let exit = p.len();
    p.push(alu(op::MOV, 0, 0));
    p.push(Insn::new(op::JMP | op::EXIT, 0, 0, 0, 0));
    for at in [to_exit_1, to_exit_2] {
        p[at].off = (exit - at - 1) as i16;
    }
    p
}

/// `struct xdp_buff`'s `data` and `data_end` offsets in the running kernel.
fn xdp_buff_offsets() -> Result<(usize, usize), String> {
    let path = "/sys/kernel/btf/vmlinux";
    let btf = std::fs::read(path).map_err(|e| {
        format!("reading {path}: {e} (kernel built without CONFIG_DEBUG_INFO_BTF?)")
    })?;
    let off = |m| {
        crate::loader::btf_types::member_offset(&btf, "xdp_buff", m)
            .map_err(|e| format!("{path}: {e}"))
    };
    Ok((off("data")?, off("data_end")?))
}

/// Whether this kernel lets us load fentry/fexit programs at all: a
/// trivial fentry on `bpf_fentry_test1` (net/bpf/test_run.c keeps it for
/// exactly such tests). `Err` says what the kernel answered.
pub fn kernel_allows_tracing() -> Result<(), String> {
    const BPF_TRACE_FENTRY: u32 = 24;
    let path = "/sys/kernel/btf/vmlinux";
    let btf = std::fs::read(path).map_err(|e| format!("reading {path}: {e}"))?;
    let id = crate::loader::btf_types::func_id(&btf, "bpf_fentry_test1")
        .map_err(|e| format!("{path}: {e}"))?;
    let bytes = isa::encode_le(&[
        Insn::new(op::ALU64 | op::MOV | op::K, 0, 0, 0, 0),
        Insn::new(op::JMP | op::EXIT, 0, 0, 0, 0),
    ]);
    let spec = sys::ProgSpec {
        prog_type: BPF_PROG_TYPE_TRACING,
        expected_attach_type: BPF_TRACE_FENTRY,
        prog_flags: 0,
        insns: &bytes,
        license: c"GPL",
        name: "xq_can_trace",
        log_level: 0,
        btf: None,
        attach: None,
    };
    sys::prog_load_traced_fn(&spec, id)
        .map(drop)
        .map_err(|e| format!("an fentry program on bpf_fentry_test1 was refused: {e}"))
}

fn read_trimmed(path: &str) -> String {
    match std::fs::read_to_string(path) {
        Ok(s) => s.trim().to_string(),
        Err(e) => format!("unreadable ({e})"),
    }
}

/// Loads a two-instruction `r0 = 0; exit` of `prog_type` with
/// `expected_attach_type` and `attach_btf_id` (no target program).
fn try_load(prog_type: u32, attach_type: u32, btf_id: u32) -> Result<(), sys::Errno> {
    let bytes = isa::encode_le(&[
        Insn::new(op::ALU64 | op::MOV | op::K, 0, 0, 0, 0),
        Insn::new(op::JMP | op::EXIT, 0, 0, 0, 0),
    ]);
    let spec = sys::ProgSpec {
        prog_type,
        expected_attach_type: attach_type,
        prog_flags: 0,
        insns: &bytes,
        license: c"GPL",
        name: "xq_diag",
        log_level: 0,
        btf: None,
        attach: None,
    };
    sys::prog_load_traced_fn(&spec, btf_id).map(drop)
}

/// Why BPF_PROG_LOAD of the fexit probe got EPERM with an empty verifier
/// log, as far as userspace can tell: each thing the kernel checks is tried
/// or read, and what is left is said.
fn explain_eperm(func_id: u32) -> String {
    const BPF_PROG_TYPE_KPROBE: u32 = 2;
    const BPF_TRACE_FENTRY: u32 = 24;
    let mut facts = Vec::new();
    // kernel/bpf/syscall.c bpf_prog_load: EPERM without CAP_BPF, and for
    // "perfmon" program types (kprobe, tracing, ...) without CAP_PERFMON.
    let perfmon_ok = match try_load(BPF_PROG_TYPE_KPROBE, 0, 0) {
        Ok(()) => {
            facts.push("CAP_BPF and CAP_PERFMON are in effect (a kprobe program, the same \"perfmon\" class as tracing in kernel/bpf/syscall.c bpf_prog_load, loads)".to_string());
            true
        }
        Err(e) => {
            facts.push(format!("a kprobe program is refused too ({e}): CAP_BPF or CAP_PERFMON is missing (kernel/bpf/syscall.c bpf_prog_load, is_perfmon_prog_type)"));
            false
        }
    };
    facts.push(format!(
        "kernel.unprivileged_bpf_disabled={} (applies only without CAP_BPF)",
        read_trimmed("/proc/sys/kernel/unprivileged_bpf_disabled")
    ));
    facts.push(format!(
        "net.core.bpf_jit_enable={} (trampolines need the JIT)",
        read_trimmed("/proc/sys/net/core/bpf_jit_enable")
    ));
    facts.push(format!(
        "the XDP program was loaded with its BTF and func_info, and the probe named its function (attach_prog_fd, attach_btf_id {func_id}) with expected_attach_type BPF_TRACE_FEXIT and a GPL licence"
    ));
    let lockdown = std::fs::read_to_string("/sys/kernel/security/lockdown")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown (securityfs not mounted)".into());
    facts.push(format!("lockdown: {lockdown}"));
    // The verifier refuses an fentry program without a BTF id with EINVAL
    // and "Tracing programs must provide btf_id" (kernel/bpf/verifier.c
    // bpf_check_attach_target). EPERM instead means the load was refused
    // before the verifier looked at the attach target.
    let before_verifier = matches!(try_load(26, BPF_TRACE_FENTRY, 0), Err(e) if e.0 == libc::EPERM);
    let conclusion = if perfmon_ok && before_verifier {
        "an fentry program without any attach target is refused with EPERM as well, where the verifier would answer EINVAL (\"Tracing programs must provide btf_id\", kernel/bpf/verifier.c bpf_check_attach_target): this kernel refuses every trampoline program (fentry/fexit) before the verifier reaches the attach target. With the capability checks passed, upstream bpf_prog_load (kernel/bpf/syscall.c) has one EPERM left on that path, the security_bpf_prog_load LSM hook, unless the kernel is patched; nothing in this process can change that, so verdicts come from tagging"
    } else if perfmon_ok {
        "tracing programs in general load, so the refusal is specific to this target"
    } else {
        "run as root with CAP_BPF and CAP_PERFMON"
    };
    format!(". Checked: {}. So: {conclusion}", facts.join("; "))
}

impl VerdictProbe {
    /// Loads the probe against `target` and attaches it. `Err` says why
    /// exact verdicts are unavailable.
    pub fn attach(target: &KernelProgram) -> Result<VerdictProbe, String> {
        let func_id = match target.btf() {
            crate::backends::host::BtfUse::Loaded { func_id } => *func_id,
            crate::backends::host::BtfUse::Without(why) => {
                return Err(format!("the program was loaded without BTF, which fexit needs: {why}"))
            }
        };
        let (data, data_end) = xdp_buff_offsets()?;
        let map_err =
            |e: crate::backends::host::MapError| format!("creating the probe's maps: {e}");
        let counter = KernelMap::create(&array("xq_fexit_seq", 8, 1)).map_err(map_err)?;
        let records =
            KernelMap::create(&array("xq_fexit_runs", RECORD as u32, SLOTS)).map_err(map_err)?;
        let insns = program(counter.fd().raw(), records.fd().raw(), data as i16, data_end as i16);
        let bytes = isa::encode_le(&insns);
        let spec = sys::ProgSpec {
            prog_type: BPF_PROG_TYPE_TRACING,
            expected_attach_type: BPF_TRACE_FEXIT,
            prog_flags: 0,
            insns: &bytes,
            license: c"GPL",
            name: "xq_fexit",
            log_level: 1,
            btf: None,
            attach: Some((std::os::fd::AsRawFd::as_raw_fd(target.fd()), func_id)),
        };
        let mut log = vec![0u8; 1 << 20];
        let prog = sys::prog_load(&spec, &mut log).map_err(|f| {
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end]);
            let last = text
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty() && !l.starts_with("processed"))
                .unwrap_or("")
                .trim()
                .to_string();
            let mut msg = format!(
                "the kernel refused the fexit probe ({}{})",
                f.errno,
                if last.is_empty() { String::new() } else { format!(": {last}") }
            );
            if f.errno.0 == libc::EPERM && last.is_empty() {
                msg.push_str(&explain_eperm(func_id));
            }
            msg
        })?;
        let link = sys::tracing_attach(&prog)
            .map_err(|e| format!("attaching the fexit probe failed: {e}"))?;
        Ok(VerdictProbe { counter, records, _prog: prog, _link: link, seen: 0 })
    }

    fn count(&self) -> Result<u64, String> {
        let v = self
            .counter
            .lookup(&0u32.to_ne_bytes())
            .map_err(|e| e.to_string())?
            .unwrap_or_default();
        Ok(v.get(..8).map_or(0, |b| u64::from_ne_bytes(b.try_into().expect("8"))))
    }

    /// Marks every run so far as seen.
    pub fn sync(&mut self) -> Result<(), String> {
        self.seen = self.count()?;
        Ok(())
    }

    /// Runs counted so far (as of the last [`poll_runs`](Self::poll_runs)).
    pub fn seen_total(&self) -> u64 {
        self.seen
    }

    /// Runs recorded since the last call, oldest first, without waiting for
    /// new ones; `None` for a record whose slot was reused before it was
    /// read.
    pub fn poll_runs(&mut self) -> Result<Vec<Option<Run>>, String> {
        let now = self.count()?;
        let start = Instant::now();
        // The counter moves before the record is written: a record is
        // waited for this long.
        let patience = Duration::from_millis(50);
        let mut runs = Vec::new();
        for seq in self.seen..now {
            if now - seq > u64::from(SLOTS) {
                runs.push(None);
                continue;
            }
            let key = ((seq % u64::from(SLOTS)) as u32).to_ne_bytes();
            let rec = loop {
                let r = self.records.lookup(&key).map_err(|e| e.to_string())?.unwrap_or_default();
                let stamp = r.get(..8).map_or(0, |b| u64::from_ne_bytes(b.try_into().expect("8")));
                if stamp == seq + 1 {
                    break Some(r);
                }
                if stamp > seq + 1 || start.elapsed() > patience {
                    break None;
                }
                std::thread::yield_now();
            };
            runs.push(rec.map(|r| {
                let word = |o: usize| u32::from_ne_bytes(r[o..o + 4].try_into().expect("4"));
                let len = word(12);
                Run { action: word(8), len, head: r[16..16 + (len as usize).min(HEAD)].to_vec() }
            }));
        }
        self.seen = now;
        Ok(runs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_jumps_land_on_the_exit() {
        let p = program(3, 4, 0, 8);
        let exit = p.iter().position(|i| i.code == op::JMP | op::EXIT).unwrap();
        for (at, i) in p.iter().enumerate().filter(|(_, i)| i.code == op::JMP | op::JEQ | op::K) {
            assert_eq!(
                at as i64 + 1 + i64::from(i.off),
                exit as i64 - 1,
                "jump at {at} must reach `r0 = 0`"
            );
        }
    }
}

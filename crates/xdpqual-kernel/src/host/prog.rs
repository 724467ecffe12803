//! Loading one relocated [`Program`] into the kernel as an XDP program.
//!
//! The instructions are the loader's, unchanged except for the map
//! references: a relocated `lddw` names a map by its index in
//! `Object::maps`, which the kernel knows nothing about, so each is replaced
//! by the fd of the [`KernelMap`] created from that definition. The kernel
//! then sees exactly the bytes the engine interprets, and instruction
//! indices in the verifier log are indices into `Program::insns`.
//!
//! A program the verifier refuses is a result, not an error:
//! [`LoadOutcome::Rejected`] carries the log and the instruction it blames,
//! so the caller can point at the source line with `Program::lines`.

use super::btf::{BtfUse, KernelBtf};
use super::maps::KernelMap;
use crate::isa::{opcode as op, Insn};
use crate::program::Program;
use crate::sys::{self, Errno};
use std::ffi::CString;
use std::os::fd::OwnedFd;

/// `BPF_PROG_TYPE_XDP` (enum bpf_prog_type).
pub const BPF_PROG_TYPE_XDP: u32 = 6;
/// `BPF_XDP` (enum bpf_attach_type): a plain XDP program, not one for a
/// DEVMAP/CPUMAP entry (those cannot be test-run, net/bpf/test_run.c).
pub const BPF_XDP: u32 = 37;
/// `BPF_XDP_DEVMAP` and `BPF_XDP_CPUMAP` (enum bpf_attach_type,
/// include/uapi/linux/bpf.h): programs run by a DEVMAP/CPUMAP entry.
pub const BPF_XDP_DEVMAP: u32 = 33;
pub const BPF_XDP_CPUMAP: u32 = 35;

/// The attach type libbpf loads a program of this section with
/// (tools/lib/bpf/libbpf.c section_defs: `xdp/devmap`, `xdp.frags/devmap`,
/// `xdp/cpumap`, `xdp.frags/cpumap`; everything else XDP is BPF_XDP). Kept
/// here, not in the loader, because the QEMU guest agent builds this file
/// on its own; loader::XdpAttach says the same.
pub fn attach_type_of(section: &str) -> u32 {
    match section {
        "xdp/devmap" | "xdp.frags/devmap" => BPF_XDP_DEVMAP,
        "xdp/cpumap" | "xdp.frags/cpumap" => BPF_XDP_CPUMAP,
        _ => BPF_XDP,
    }
}

/// `BPF_F_XDP_HAS_FRAGS`: the program understands multi-buffer frames.
pub const BPF_F_XDP_HAS_FRAGS: u32 = 1 << 5;

/// The kernel refuses log buffers over `UINT_MAX >> 2` or under 128 bytes
/// (`bpf_vlog_init`, kernel/bpf/log.c); we stop growing well before.
const MAX_LOG_SIZE: usize = 256 << 20;
const MIN_LOG_SIZE: usize = 128;

/// How to load.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// The object's license; the kernel gates GPL-only helpers on it.
    pub license: String,
    /// Verifier log level for the first attempt (1: the instructions it
    /// walked; 2: plus the register state at every one).
    pub log_level: u32,
    /// Initial log buffer; it grows on ENOSPC up to 256 MiB.
    pub log_size: usize,
}

impl Default for LoadOptions {
    fn default() -> LoadOptions {
        LoadOptions { license: "GPL".to_string(), log_level: 1, log_size: 4 << 20 }
    }
}

/// Why a program could not be submitted, or the kernel failed in a way
/// that says nothing about the program (as opposed to a verifier refusal).
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadError {
    #[error("program `{program}`: instruction {insn} refers to map {index}, but the object has {maps} maps")]
    BadMapReference { program: String, insn: usize, index: i32, maps: usize },
    #[error("program `{program}`: instruction {insn} is an lddw without its second slot")]
    TruncatedLddw { program: String, insn: usize },
    #[error("program `{program}` is empty")]
    Empty { program: String },
    #[error("license string {0:?} contains a NUL byte")]
    License(String),
    #[error("loading program `{program}` failed for a reason outside the program: {errno}{}", if log.is_empty() { String::new() } else { format!("; verifier log:\n{log}") })]
    Kernel { program: String, errno: Errno, log: String },
    #[error("program `{program}` loaded but BPF_OBJ_GET_INFO_BY_FD failed: {errno}")]
    Info { program: String, errno: Errno },
}

/// What the kernel reported about a program it accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedInfo {
    /// Kernel-wide program id (as `bpftool prog` shows it).
    pub id: u32,
    /// Size of the kernel's rewritten program in bytes.
    pub xlated_prog_len: u32,
    /// Size of the JIT image in bytes (0 when interpreted).
    pub jited_prog_len: u32,
    /// Instructions the verifier processed.
    pub verified_insns: u32,
    /// `uname -r` of the kernel that accepted it.
    pub kernel_release: String,
}

/// A program in the kernel; closed (and, with no other holder, unloaded)
/// when dropped.
#[derive(Debug)]
pub struct KernelProgram {
    name: String,
    fd: OwnedFd,
    frags: bool,
    info: LoadedInfo,
    log: String,
    btf: BtfUse,
}

impl KernelProgram {
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn info(&self) -> &LoadedInfo {
        &self.info
    }
    /// Loaded with `BPF_F_XDP_HAS_FRAGS`.
    pub fn frags(&self) -> bool {
        self.frags
    }
    /// The verifier log of the accepted load (empty at log level 0).
    pub fn verifier_log(&self) -> &str {
        &self.log
    }
    /// The program's fd, for callers that attach it themselves (the live
    /// backend) or load a tracing program against it.
    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }
    /// The program after the verifier's rewrites (what the JIT compiled),
    /// for finding out which side is wrong when the engine and the kernel
    /// disagree.
    pub fn xlated(&self) -> Result<Vec<Insn>, Errno> {
        Ok(sys::prog_xlated(&self.fd)?.iter().map(|b| sys::decode_native(*b)).collect())
    }
    /// Whether it was loaded with its BTF (and so can be traced).
    pub fn btf(&self) -> &BtfUse {
        &self.btf
    }
}

/// The verifier said no.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub errno: Errno,
    /// The whole verifier log (possibly only its tail, see `log_truncated`).
    pub log: String,
    /// The verifier's error message, if the log has one.
    pub first_error_line: Option<String>,
    /// The instruction the error is about (index into `Program::insns`).
    pub insn: Option<usize>,
    /// The log outgrew the largest buffer we offer; `log` is its tail.
    pub log_truncated: bool,
}

impl Rejection {
    /// The helper (`bpf_xdp_adjust_meta#54`) when the verifier refused the
    /// program because this kernel does not offer that helper to its
    /// program type: the verifier's "program of this type cannot use helper"
    /// (kernel/bpf/verifier.c, check_helper_call, when the program type's
    /// get_func_proto returns nothing). That is a property of the kernel's
    /// build, not a fault in the program: a kernel that offers the helper
    /// may load it.
    pub fn helper_not_offered(&self) -> Option<&str> {
        let line = self.first_error_line.as_deref()?;
        let rest = line.split("program of this type cannot use helper ").nth(1)?;
        Some(rest.split_whitespace().next().unwrap_or(rest))
    }
}

#[derive(Debug)]
pub enum LoadOutcome {
    Loaded(KernelProgram),
    Rejected(Rejection),
}

impl LoadOutcome {
    pub fn loaded(self) -> Option<KernelProgram> {
        match self {
            LoadOutcome::Loaded(p) => Some(p),
            LoadOutcome::Rejected(_) => None,
        }
    }
}

/// Copies the instructions with object map indices replaced by map fds.
pub fn patch_map_refs(prog: &Program, maps: &[KernelMap]) -> Result<Vec<Insn>, LoadError> {
    let mut insns = prog.insns.clone();
    let mut i = 0;
    while i < insns.len() {
        if !insns[i].is_lddw() {
            i += 1;
            continue;
        }
        if i + 1 >= insns.len() {
            return Err(LoadError::TruncatedLddw { program: prog.name.clone(), insn: i });
        }
        let src = insns[i].src;
        if src == op::PSEUDO_MAP_FD || src == op::PSEUDO_MAP_VALUE {
            let index = insns[i].imm;
            let map = usize::try_from(index).ok().and_then(|ix| maps.get(ix)).ok_or(
                LoadError::BadMapReference {
                    program: prog.name.clone(),
                    insn: i,
                    index,
                    maps: maps.len(),
                },
            )?;
            // For PSEUDO_MAP_VALUE the second slot's imm is the offset into
            // the value and stays as it is.
            insns[i].imm = map.fd().raw();
        }
        i += 2;
    }
    Ok(insns)
}

/// Splits a verifier log into the error message and the instruction it is
/// about.
///
/// At log level 1 and above the verifier prints each instruction of the
/// path it is walking (at level 1 it discards paths that reached exit, so
/// a refusal leaves the failing path) as
/// `12: (61) r2 = *(u32 *)(r1 +4)` (`do_check` in kernel/bpf/verifier.c,
/// via `print_bpf_insn`), and an error is printed right after the
/// instruction that caused it, followed by the `processed N insns` summary.
/// Errors found before the walk (`check_cfg`: unreachable code, jumps out of
/// range, back-edges) have no instruction line and name the instruction in
/// the message (`unreachable insn 3`, `jump out of range from insn 1 to 9`).
///
/// `insn_count` places the one message that names no index: `last insn is
/// not an exit or jmp` (check_subprogs) is about the last instruction.
pub fn parse_verifier_log(log: &str, insn_count: usize) -> (Option<String>, Option<usize>) {
    let lines: Vec<&str> = log.lines().collect();
    let last_insn =
        lines.iter().enumerate().rev().find_map(|(at, l)| insn_line_index(l).map(|ix| (at, ix)));
    let is_noise = |l: &&str| {
        let t = l.trim();
        t.is_empty()
            || t.starts_with("processed ")
            || t.starts_with("verification time")
            || t.starts_with("stack depth")
            || t.starts_with(';')
            || t.starts_with("from ")
            || t.starts_with("mark_precise")
            || t.starts_with("last_idx")
            || t.starts_with("regs=")
            || t.starts_with("parent ")
            || t.starts_with("func#")
            || state_line(t)
    };
    match last_insn {
        Some((at, ix)) => {
            let err = lines[at + 1..].iter().find(|l| !is_noise(l)).map(|l| l.trim().to_string());
            (err, Some(ix))
        }
        None => {
            let err = lines.iter().find(|l| !is_noise(l)).map(|l| l.trim().to_string());
            let ix = match err.as_deref() {
                Some(m) if m.starts_with("last insn is not an exit or jmp") => {
                    insn_count.checked_sub(1)
                }
                Some(m) => insn_in_message(m),
                None => None,
            };
            (err, ix)
        }
    }
}

/// `12: (61) ...` → 12.
fn insn_line_index(line: &str) -> Option<usize> {
    let (num, rest) = line.split_once(": (")?;
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let code = rest.get(..3)?;
    if code.len() == 3
        && code.as_bytes()[2] == b')'
        && code[..2].bytes().all(|b| b.is_ascii_hexdigit())
    {
        num.parse().ok()
    } else {
        None
    }
}

/// `12: R1=ctx() ...` (register state at log level 2).
fn state_line(line: &str) -> bool {
    match line.split_once(": ") {
        Some((num, rest)) => {
            !num.is_empty()
                && num.bytes().all(|b| b.is_ascii_digit())
                && (rest.starts_with('R') || rest.starts_with("frame"))
        }
        None => false,
    }
}

/// The first `insn N` in a message.
fn insn_in_message(msg: &str) -> Option<usize> {
    let at = msg.find("insn ")?;
    let digits: String = msg[at + 5..].chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

fn log_text(buf: &[u8]) -> String {
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Errnos that say the kernel or our process could not take the program,
/// whatever its contents; everything else from BPF_PROG_LOAD is the
/// verifier (or the load checks before it) refusing this program.
fn is_backend_errno(e: Errno) -> bool {
    matches!(e.0, libc::EPERM | libc::ENOSYS | libc::EBADF | libc::ENOMEM | libc::EFAULT)
}

impl KernelProgram {
    /// Loads `prog` as an XDP program using `maps` (created from the same
    /// object's `maps`, in order) for its map references, without BTF.
    pub fn load(
        prog: &Program,
        maps: &[KernelMap],
        opts: &LoadOptions,
    ) -> Result<LoadOutcome, LoadError> {
        Self::load_with_btf(prog, maps, opts, Err("loaded without BTF on request"))
    }

    /// As [`load`](Self::load), BTF-aware when `btf` has records for the
    /// program (`Err`: why there is no BTF). A program the verifier refuses
    /// with its BTF is tried again without: BTF makes global functions be
    /// verified on their own against their prototypes, which some programs
    /// that load without BTF do not pass, and our verdict is about the
    /// instructions. What was done is in [`KernelProgram::btf`].
    pub fn load_with_btf(
        prog: &Program,
        maps: &[KernelMap],
        opts: &LoadOptions,
        btf: Result<&KernelBtf, &str>,
    ) -> Result<LoadOutcome, LoadError> {
        let with = match btf {
            Ok(b) => match b.program(&prog.name) {
                Some(records) => Ok((b, records)),
                None => Err(format!("the object's .BTF.ext has no func_info for `{}`", prog.name)),
            },
            Err(why) => Err(why.to_string()),
        };
        let (kb, records) = match with {
            Ok(x) => x,
            Err(why) => return Self::load_inner(prog, maps, opts, None, BtfUse::Without(why)),
        };
        let spec = sys::ProgBtf {
            btf_fd: kb.fd(),
            func_info: &records.func_info,
            line_info: &records.line_info,
        };
        let func_id = records.func_info[0].1;
        match Self::load_inner(prog, maps, opts, Some(spec), BtfUse::Loaded { func_id })? {
            LoadOutcome::Loaded(p) => Ok(LoadOutcome::Loaded(p)),
            LoadOutcome::Rejected(r) => {
                let why = format!(
                    "with its BTF the kernel refused it ({}: {}); loaded without",
                    r.errno,
                    r.first_error_line.as_deref().unwrap_or("no message")
                );
                Self::load_inner(prog, maps, opts, None, BtfUse::Without(why))
            }
        }
    }

    fn load_inner(
        prog: &Program,
        maps: &[KernelMap],
        opts: &LoadOptions,
        btf: Option<sys::ProgBtf<'_>>,
        btf_use: BtfUse,
    ) -> Result<LoadOutcome, LoadError> {
        if prog.insns.is_empty() {
            return Err(LoadError::Empty { program: prog.name.clone() });
        }
        let insns = patch_map_refs(prog, maps)?;
        let bytes = sys::encode_native(&insns);
        let license = CString::new(opts.license.clone())
            .map_err(|_| LoadError::License(opts.license.clone()))?;
        let name = super::maps::kernel_name(&prog.name);
        let spec = |log_level| sys::ProgSpec {
            prog_type: BPF_PROG_TYPE_XDP,
            // `xdp/devmap` and `xdp/cpumap` programs are verified for their
            // map (they may read `egress_ifindex`), as libbpf loads them.
            expected_attach_type: attach_type_of(&prog.section),
            prog_flags: if prog.frags { BPF_F_XDP_HAS_FRAGS } else { 0 },
            insns: &bytes,
            license: &license,
            name: &name,
            log_level,
            btf: btf.as_ref().map(|b| sys::ProgBtf {
                btf_fd: b.btf_fd,
                func_info: b.func_info,
                line_info: b.line_info,
            }),
            attach: None,
        };

        let mut level = opts.log_level;
        let mut size = opts.log_size.clamp(MIN_LOG_SIZE, MAX_LOG_SIZE);
        let mut truncated_tail: Option<String> = None;
        let result = loop {
            let mut log = if level == 0 { Vec::new() } else { vec![0u8; size] };
            match sys::prog_load(&spec(level), &mut log) {
                Ok(fd) => break Ok((fd, log_text(&log))),
                Err(f) if f.errno.0 == libc::ENOSPC && level > 0 => {
                    // The log did not fit. The kernel reports ENOSPC even
                    // when verification itself failed (bpf_check lets the
                    // log's error replace it), so the verdict is unknown:
                    // grow and retry, or, past our ceiling, ask again without
                    // a log and keep the tail we have (the log is rotating,
                    // so the buffer holds its end, where the error is).
                    if size >= MAX_LOG_SIZE {
                        truncated_tail = Some(log_text(&log));
                        level = 0;
                    } else {
                        let wanted = f.log_true_size as usize;
                        size = wanted.max(size.saturating_mul(4)).min(MAX_LOG_SIZE);
                    }
                }
                Err(f) => {
                    let text = log_text(&log);
                    if is_backend_errno(f.errno) {
                        return Err(LoadError::Kernel {
                            program: prog.name.clone(),
                            errno: f.errno,
                            log: text,
                        });
                    }
                    let (first_error_line, insn) = parse_verifier_log(&text, prog.insns.len());
                    // Level 2 adds register state; it is only worth a second
                    // verification when level 1 did not say where it failed.
                    if level == 1
                        && insn.is_none()
                        && matches!(f.errno.0, libc::EACCES | libc::EINVAL)
                    {
                        level = 2;
                        continue;
                    }
                    break Err(Rejection {
                        errno: f.errno,
                        log: truncated_tail.clone().unwrap_or(text),
                        first_error_line,
                        insn,
                        log_truncated: truncated_tail.is_some(),
                    });
                }
            }
        };
        let (fd, log) = match result {
            Ok(ok) => ok,
            Err(mut rejection) => {
                if rejection.log_truncated {
                    let (line, insn) = parse_verifier_log(&rejection.log, prog.insns.len());
                    rejection.first_error_line = line;
                    rejection.insn = insn;
                }
                return Ok(LoadOutcome::Rejected(rejection));
            }
        };
        let info = sys::prog_info(&fd)
            .map_err(|errno| LoadError::Info { program: prog.name.clone(), errno })?;
        let kernel_release =
            sys::kernel_release().unwrap_or_else(|e| format!("unknown (uname: {e})"));
        Ok(LoadOutcome::Loaded(KernelProgram {
            name: prog.name.clone(),
            fd,
            frags: prog.frags,
            info: LoadedInfo {
                id: info.id,
                xlated_prog_len: info.xlated_prog_len,
                jited_prog_len: info.jited_prog_len,
                verified_insns: info.verified_insns,
                kernel_release,
            },
            log,
            btf: btf_use,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_error_after_last_instruction() {
        let log = "0: R1=ctx() R10=fp0\n\
                   0: (61) r2 = *(u32 *)(r1 +0)          ; R1=ctx() R2_w=pkt(r=0)\n\
                   1: (71) r0 = *(u8 *)(r2 +12)\n\
                   invalid access to packet, off=12 size=1, R2(id=0,off=12,r=0)\n\
                   R2 offset is outside of the packet\n\
                   processed 2 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0\n";
        let (line, insn) = parse_verifier_log(log, 3);
        assert_eq!(insn, Some(1));
        assert_eq!(
            line.as_deref(),
            Some("invalid access to packet, off=12 size=1, R2(id=0,off=12,r=0)")
        );
    }

    #[test]
    fn cfg_errors_name_the_instruction() {
        let (line, insn) = parse_verifier_log("unreachable insn 3\nprocessed 0 insns\n", 5);
        assert_eq!(line.as_deref(), Some("unreachable insn 3"));
        assert_eq!(insn, Some(3));
        let (_, insn) = parse_verifier_log("jump out of range from insn 1 to 9\n", 5);
        assert_eq!(insn, Some(1));
        // As 6.18 logs it (the func# line is the subprogram table).
        let (line, insn) = parse_verifier_log(
            "func#0 @0\nlast insn is not an exit or jmp\nprocessed 0 insns (limit 1000000)\n",
            1,
        );
        assert_eq!(line.as_deref(), Some("last insn is not an exit or jmp"));
        assert_eq!(insn, Some(0));
    }

    #[test]
    fn state_lines_are_not_instructions() {
        assert_eq!(insn_line_index("12: R1=ctx() R10=fp0"), None);
        assert_eq!(insn_line_index("12: (bf) r0 = r2"), Some(12));
        assert_eq!(insn_line_index("from 4 to 6: R0=1"), None);
    }
}

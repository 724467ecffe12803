//! Every `unsafe` of the rbpf sandbox, kept together and small: process
//! creation, the pipe, rlimits, prctl, the seccomp filter, and the one call
//! into rbpf's JIT-compiled code.
//!
//! `fork`, `waitpid`, `kill`, the pipe, `poll`/`read`, prctl, rlimits,
//! signal dispositions and `munmap` go through `nix`. Raw `libc` is left for
//! what nix lacks: `seccomp(2)` with its `sock_filter` program,
//! `close_range(2)`, `_exit`, and the child's `write` by fd number (see
//! [`write_all`]).
//!
//! The seccomp filter is written by hand as classic BPF with libc's
//! constants rather than with the `seccompiler` crate: it is twelve
//! instructions (an architecture check, five syscall numbers, one argument
//! compare), which is easier to review here than a new dependency and its
//! JSON/IR layers, and `sandbox` tests it directly (a forbidden call kills
//! the child with SIGSYS, the allowed ones work).

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::resource::{getrlimit, setrlimit, Resource};
use nix::sys::signal::{SigHandler, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{ForkResult, Pid};

fn io_err(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// `AUDIT_ARCH_X86_64` from include/uapi/linux/audit.h: `EM_X86_64 |
/// __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE`. libc does not export it.
const AUDIT_ARCH_X86_64: u32 = 62 | 0x8000_0000 | 0x4000_0000;

/// Offsets in `struct seccomp_data` (include/uapi/linux/seccomp.h): `int nr`
/// at 0, `__u32 arch` at 4, `__u64 instruction_pointer` at 8, `__u64
/// args[6]` at 16. x86_64 is little-endian, so args[0]'s low half is at 16.
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;
const DATA_ARG0_LO: u32 = 16;
const DATA_ARG0_HI: u32 = 20;

/// A pipe's two ends, both close-on-exec (so a `Command` spawned by
/// another thread of this process cannot inherit them).
pub(super) struct Pipe {
    pub read: OwnedFd,
    pub write: OwnedFd,
}

pub(super) fn pipe() -> io::Result<Pipe> {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io_err)?;
    Ok(Pipe { read, write })
}

/// Where `fork` left us.
pub(super) enum Forked {
    Parent { pid: i32 },
    Child(Child),
}

/// Proof that the code holding it runs in the forked child. Only [`fork`]
/// makes one; the JIT call below needs a [`Jailed`], made from this.
pub(super) struct Child(());

/// Forks. glibc's `fork` runs its atfork handlers, which reset malloc's
/// arena locks in the child, so the child may allocate (until it installs
/// the seccomp filter, after which it must not and does not). Other locks
/// another thread held at fork time stay held in the child; the child code
/// (`sandbox::child_main`) takes none of them: no stdio, no env, no
/// threads.
pub(super) fn fork() -> io::Result<Forked> {
    // SAFETY: nix marks fork unsafe for what a child of a multi-threaded
    // process may do before exec; the child's restrictions are the note
    // above (it never returns into the parent's code: `supervise` ends it
    // with `exit_child`).
    match unsafe { nix::unistd::fork() }.map_err(io_err)? {
        ForkResult::Child => Ok(Forked::Child(Child(()))),
        ForkResult::Parent { child } => Ok(Forked::Parent { pid: child.as_raw() }),
    }
}

/// Ends the child at once: no atexit handlers, no destructors (they belong
/// to the parent's state, copied), no stdio flush. Raw: nix has no
/// `_exit`, and `std::process::exit` would run the atexit handlers.
pub(super) fn exit_child(_: &Child, code: i32) -> ! {
    // SAFETY: _exit never returns and touches no process state we rely on.
    unsafe { libc::_exit(code) }
}

/// Writes all of `buf` to the child's result fd `fd`, retrying on EINTR
/// and short writes. Raw `write(2)` by number: the seccomp filter allows
/// exactly this number, and after [`restrict`] has closed every other fd by
/// range the child holds no I/O-safe handle that nix's `write` (which takes
/// `AsFd`) could borrow honestly.
pub(super) fn write_all(fd: i32, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        // SAFETY: buf is a live slice; write reads at most buf.len() bytes.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        buf = &buf[n as usize..];
    }
    Ok(())
}

/// Reads what is available (after `poll` said so). Ok(0) is end of file.
pub(super) fn read_some(fd: impl AsFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match nix::unistd::read(fd.as_fd(), buf) {
            Err(Errno::EINTR) => continue,
            r => return r.map_err(io_err),
        }
    }
}

/// Waits up to `timeout` for `fd` to become readable (or hung up).
/// Returns false on timeout.
pub(super) fn poll_readable(fd: impl AsFd, timeout: Duration) -> io::Result<bool> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let ms = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
    let mut p = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    match poll(&mut p, ms) {
        Err(Errno::EINTR) => Ok(true), // let the caller re-check its deadline and read
        Err(e) => Err(io_err(e)),
        Ok(0) => Ok(false),
        Ok(_) => Ok(true),
    }
}

pub(super) fn kill_child(pid: i32) {
    // pid is our own unreaped child (waitpid has not returned for it), so
    // the pid cannot have been reused by another process.
    let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
}

/// How the child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Ended {
    Exited(i32),
    Signaled(i32),
}

/// Reaps `pid`, blocking.
pub(super) fn wait(pid: i32) -> io::Result<Ended> {
    loop {
        match waitpid(Pid::from_raw(pid), None) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(io_err(e)),
            Ok(WaitStatus::Exited(_, code)) => return Ok(Ended::Exited(code)),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(Ended::Signaled(sig as i32)),
            // Without WUNTRACED/WCONTINUED only an end is reported.
            Ok(other) => {
                return Err(io::Error::other(format!("waitpid reported {other:?}, not an end")))
            }
        }
    }
}

/// The signal's name, for messages.
pub(super) fn signal_name(sig: i32) -> String {
    match Signal::try_from(sig) {
        Ok(s) => s.as_str().to_string(),
        Err(_) => format!("signal {sig}"),
    }
}

/// This process's virtual size in bytes (`/proc/self/statm`'s first field
/// is in pages), read by the parent before forking: the child's address
/// space limit is set above it, since the child starts as a copy.
pub(super) fn virtual_size() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().next()?.parse().ok()?;
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE).ok().flatten();
    Some(pages * page.unwrap_or(4096).max(4096) as u64)
}

/// The limits the child puts on itself before it runs any program code.
pub(super) struct Limits {
    pub address_space: u64,
    pub cpu_seconds: u64,
    pub max_fd: i32,
    /// The parent's pid, to notice it died before PDEATHSIG was armed.
    pub parent: i32,
}

/// Steps 1-4 of the child's lockdown, before the JIT compiles: no other
/// fds, no new privileges, death with the parent, rlimits. Returns an
/// error naming the step that failed (the child then reports it and
/// exits without running anything).
pub(super) fn restrict(c: &Child, keep_fd: i32, l: &Limits) -> Result<(), &'static str> {
    use nix::sys::prctl;
    // Close every fd but the result pipe, including stdio: after this the
    // child can reach nothing it inherited (other tests' pipes, BPF program
    // fds, the capture file).
    // SAFETY: in the child, nothing it still runs uses another fd (the
    // OwnedFds of the copied parent state are never used or dropped: the
    // child ends with `_exit`).
    unsafe {
        if keep_fd > 0 {
            close_range(0, keep_fd as u32 - 1)?;
        }
        close_range(keep_fd as u32 + 1, u32::MAX)?;
    }
    prctl::set_pdeathsig(Signal::SIGKILL).map_err(|_| "prctl(PR_SET_PDEATHSIG)")?;
    // The parent may have died before PDEATHSIG was armed.
    if nix::unistd::getppid().as_raw() != l.parent {
        exit_child(c, 111);
    }
    prctl::set_no_new_privs().map_err(|_| "prctl(PR_SET_NO_NEW_PRIVS)")?;
    // Not dumpable: no core file, and no ptrace from other processes of
    // this user into the child's copy of the parent's memory.
    prctl::set_dumpable(false).map_err(|_| "prctl(PR_SET_DUMPABLE)")?;
    // Rust's runtime handles SIGSEGV/SIGBUS (stack-overflow detection) by
    // calling sigaction, which the filter would turn into SIGSYS: restore
    // the default actions so a crash is reported as the signal it is.
    for sig in [Signal::SIGSEGV, Signal::SIGBUS, Signal::SIGILL, Signal::SIGFPE, Signal::SIGTRAP] {
        // SAFETY: nix marks signal() unsafe for the handlers it may
        // install; SIG_DFL runs no code of ours.
        if unsafe { nix::sys::signal::signal(sig, SigHandler::SigDfl) }.is_err() {
            return Err("signal(SIG_DFL)");
        }
    }
    // Never raise a hard limit we inherited (that would fail anyway).
    let lower = |res, want: u64| match getrlimit(res) {
        Ok((_, hard)) => {
            let v = want.min(hard);
            setrlimit(res, v, v).is_ok()
        }
        Err(_) => false,
    };
    if !lower(Resource::RLIMIT_AS, l.address_space) {
        return Err("setrlimit(RLIMIT_AS)");
    }
    if !lower(Resource::RLIMIT_CPU, l.cpu_seconds) {
        return Err("setrlimit(RLIMIT_CPU)");
    }
    if !lower(Resource::RLIMIT_NOFILE, l.max_fd as u64 + 1) {
        return Err("setrlimit(RLIMIT_NOFILE)");
    }
    if !lower(Resource::RLIMIT_CORE, 0) || !lower(Resource::RLIMIT_FSIZE, 0) {
        return Err("setrlimit(RLIMIT_CORE/FSIZE)");
    }
    if !lower(Resource::RLIMIT_NPROC, 0) {
        return Err("setrlimit(RLIMIT_NPROC)");
    }
    Ok(())
}

/// Unmaps every shared mapping the child inherited (`s` in
/// `/proc/self/maps`: MAP_SHARED memory, memfds, SysV segments, mmapped
/// BPF maps or packet rings): after fork those pages are still the
/// parent's, and code in the child could write them. Runs before
/// [`restrict`] closes the fds, since it opens one. The rest of the
/// child's memory is a private copy.
pub(super) fn unmap_shared(_: &Child) -> Result<(), &'static str> {
    let maps = std::fs::read_to_string("/proc/self/maps").map_err(|_| "reading /proc/self/maps")?;
    for line in maps.lines() {
        let mut f = line.split_whitespace();
        let (Some(range), Some(perms)) = (f.next(), f.next()) else { continue };
        if perms.as_bytes().get(3) != Some(&b's') {
            continue;
        }
        let Some((a, b)) = range.split_once('-') else { return Err("parsing /proc/self/maps") };
        let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) else {
            return Err("parsing /proc/self/maps");
        };
        let Some(start) = std::ptr::NonNull::new(a as *mut std::ffi::c_void) else {
            return Err("parsing /proc/self/maps");
        };
        // SAFETY: the range is a whole mapping of this (child) process
        // that nothing in the child uses: the child's code touches only its
        // private copy of the parent's heap and stack, and rbpf's buffers.
        if unsafe { nix::sys::mman::munmap(start, b - a) }.is_err() {
            return Err("munmap of a shared mapping");
        }
    }
    Ok(())
}

/// A shared anonymous page in this process, for the test that the child
/// cannot write it. Returns its address.
#[cfg(test)]
pub(super) fn shared_page() -> usize {
    use nix::sys::mman::{mmap_anonymous, MapFlags, ProtFlags};
    let len = std::num::NonZeroUsize::new(4096).unwrap();
    // SAFETY: a fresh anonymous mapping; no existing memory is affected.
    let p = unsafe {
        mmap_anonymous(
            None,
            len,
            ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
            MapFlags::MAP_SHARED,
        )
    };
    p.expect("mmap of a shared page").as_ptr() as usize
}

/// Writes `v` to `addr` (a page from [`shared_page`]), or reads it.
#[cfg(test)]
pub(super) fn poke(addr: usize, v: Option<u8>) -> u8 {
    let p = addr as *mut u8;
    // SAFETY: test-only; addr comes from `shared_page`, mapped for the
    // process's life (in the child it may be gone: then this faults, which
    // is what the test wants to see).
    unsafe {
        if let Some(v) = v {
            std::ptr::write_volatile(p, v);
        }
        std::ptr::read_volatile(p)
    }
}

/// close_range(2) (Linux 5.9); falls back to closing one by one up to the
/// fd limit on older kernels. Raw: nix has no close_range.
///
/// SAFETY: callers pass fd ranges that hold nothing the caller still uses.
unsafe fn close_range(first: u32, last: u32) -> Result<(), &'static str> {
    if first > last {
        return Ok(());
    }
    // SAFETY: as the function's contract says.
    let rc = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) };
    if rc == 0 {
        return Ok(());
    }
    let Ok((soft, _)) = getrlimit(Resource::RLIMIT_NOFILE) else { return Err("close_range") };
    let end = (soft.min(1 << 20) as u32).min(last.saturating_add(1));
    for fd in first..end {
        // As the function's contract says; EBADF is harmless.
        let _ = nix::unistd::close(fd as i32);
    }
    Ok(())
}

/// The child after seccomp: only `write` to the result fd, `exit`,
/// `exit_group`, `rt_sigreturn` and `clock_gettime` (the vDSO's fallback
/// for timing) remain. Only [`lock_down`] makes one.
pub(super) struct Jailed<'c> {
    _child: &'c Child,
}

/// Installs the seccomp filter (raw `seccomp(2)`: nix has no seccomp). Every other system call, and every call
/// through another ABI (x32 numbers, i386 `int 0x80` with its own arch
/// value), kills the whole process (`SECCOMP_RET_KILL_PROCESS`, which the
/// parent sees as SIGSYS).
pub(super) fn lock_down(c: &Child, result_fd: i32) -> Result<Jailed<'_>, &'static str> {
    let stmt = |code: u32, k: u32| libc::sock_filter { code: code as u16, jt: 0, jf: 0, k };
    let jeq = |k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    };
    let ld = |off| stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, off);
    let ret = |k| stmt(libc::BPF_RET | libc::BPF_K, k);
    let allowed =
        [libc::SYS_exit_group, libc::SYS_exit, libc::SYS_rt_sigreturn, libc::SYS_clock_gettime];
    let mut f = vec![
        ld(DATA_ARCH),                       // 0
        jeq(AUDIT_ARCH_X86_64, 1, 0),        // 1: other arch -> 2 (kill)
        ret(libc::SECCOMP_RET_KILL_PROCESS), // 2
        ld(DATA_NR),                         // 3
    ];
    // 4..8: allowed numbers jump to ALLOW; `write` jumps to the fd check.
    // Offsets are relative to the next instruction. Layout after these:
    // [write check][kill][fd lo][fd hi][kill][allow].
    let n = allowed.len() as u8;
    for (i, nr) in allowed.iter().enumerate() {
        let i = i as u8;
        // From slot 4+i, ALLOW is the last slot, 4+n+7 (see layout), so
        // jt = (4+n+7) - (4+i) - 1.
        f.push(jeq(*nr as u32, n + 6 - i, 0));
    }
    f.push(jeq(libc::SYS_write as u32, 1, 0)); // -> fd lo check, else kill
    f.push(ret(libc::SECCOMP_RET_KILL_PROCESS));
    f.push(ld(DATA_ARG0_LO));
    f.push(jeq(result_fd as u32, 0, 2)); // fd lo mismatch -> kill
    f.push(ld(DATA_ARG0_HI));
    f.push(jeq(0, 1, 0)); // high half must be 0 -> allow
    f.push(ret(libc::SECCOMP_RET_KILL_PROCESS));
    f.push(ret(libc::SECCOMP_RET_ALLOW));
    debug_assert_eq!(f.len(), 4 + allowed.len() + 8);
    let prog = libc::sock_fprog { len: f.len() as u16, filter: f.as_mut_ptr() };
    // SAFETY: prog points at `f`, alive for the call; the kernel copies the
    // filter. NO_NEW_PRIVS was set in `restrict`, which seccomp requires of
    // an unprivileged caller.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0u32,
            &prog as *const libc::sock_fprog,
        )
    };
    drop(f);
    if rc != 0 {
        return Err("seccomp(SECCOMP_SET_MODE_FILTER)");
    }
    Ok(Jailed { _child: c })
}

/// Calls rbpf's JIT-compiled program on an XDP metadata buffer and packet.
pub(super) fn jit_mbuff(
    _: &Jailed<'_>,
    vm: &::rbpf::EbpfVmMbuff<'_>,
    mem: &mut [u8],
    mbuff: &mut [u8],
) -> Option<u64> {
    // SAFETY: this is not safe in general: rbpf's JIT checks no bounds, and
    // the program may write anywhere in this address space. It runs only in
    // the forked child (a `Jailed` exists only there, after seccomp), whose
    // memory is a private copy the parent never reads; all it can still do
    // is write to the result pipe, whose contents the parent validates and
    // never trusts. rbpf errs only when nothing was compiled.
    unsafe { vm.execute_program_jit(mem, mbuff) }.ok()
}

/// Calls rbpf's JIT-compiled program with `r1` = `mem` (the raw VM).
pub(super) fn jit_raw(_: &Jailed<'_>, vm: &::rbpf::EbpfVmRaw<'_>, mem: &mut [u8]) -> Option<u64> {
    // SAFETY: as in `jit_mbuff`: only in the sandboxed child.
    unsafe { vm.execute_program_jit(mem) }.ok()
}

/// Makes a raw syscall the filter forbids (getpid), for the sandbox's own
/// test that the filter kills.
#[cfg(test)]
pub(super) fn forbidden_syscall(_: &Jailed<'_>) {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::syscall(libc::SYS_getpid) };
}

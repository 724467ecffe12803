//! rbpf's JIT, run only in a sandboxed child process.
//!
//! rbpf's x86_64 JIT checks no bounds, and a program can tell it from
//! rbpf's interpreter: there `r10` points into a heap buffer, in the JIT
//! into the native stack (`jit.rs` copies `rsp` into r10's register). A
//! program that branches on that value passes any "the interpreter ran it
//! first" gate and then, natively, writes over return addresses or returns
//! host pointers. So the JIT never runs in the harness's process. Instead
//! [`run`]:
//!
//! 1. has everything the child needs already in memory (the bytecode, the
//!    inputs, one packet buffer's worth of capacity), then forks;
//! 2. in the child: unmaps every shared mapping it inherited (so it
//!    cannot write the parent's memory through one), closes every fd but
//!    the result pipe (stdio included), restores default signal actions,
//!    arms `PR_SET_PDEATHSIG(SIGKILL)`, sets `PR_SET_NO_NEW_PRIVS`, drops
//!    dumpability, lowers rlimits (address space to what it has plus
//!    [`CHILD_HEADROOM`], CPU seconds to the timeout, no new fds, no core,
//!    no file writes, no processes);
//! 3. runs rbpf's (bounds-checked) interpreter on every input and writes
//!    each `r0` or error: the reference, written before any native code of
//!    the program exists;
//! 4. JIT-compiles, then installs a seccomp filter that leaves only
//!    `write` to the result pipe, `exit`/`exit_group`, `rt_sigreturn` and
//!    `clock_gettime`, killing the process on anything else (`sys`);
//! 5. runs the JIT on every input the interpreter completed (a check pass,
//!    which is also the warm-up), then the timed rounds, each timed inside
//!    the child; and exits.
//!
//! The parent shares nothing writable with the child: it reads fixed-size
//! records from the pipe, with a deadline (poll), kills the child
//! (SIGKILL, then reaps it) when the deadline passes or the child sends
//! more than the job can produce, and validates the stream (order, counts,
//! round times no longer than the parent's own clock saw the child live).
//! A crash, a timeout, a seccomp kill (SIGSYS) or a malformed stream is an
//! [`Error`] naming how far the child got, never a harness failure.
//!
//! What the child returns after step 4 is untrusted: the JIT's `r0` values
//! are only compared with the interpreter's ([`Report::mismatches`]) and
//! must never be printed (a program can put a host address there), and the
//! round times are bounded by the parent's clock. Timing itself remains a
//! channel (a program can loop for as long as an address says); a
//! benchmark cannot close that one.

mod sys;

use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::{Duration, Instant};

use super::XdpMd;

/// Address space the child may grow by beyond the parent's at fork time
/// (rbpf's JIT allocates its code pages and the interpreter its stack).
pub const CHILD_HEADROOM: u64 = 512 << 20;

/// Longest error text the child may send (rbpf's compile errors).
const MAX_TEXT: usize = 1024;

/// How the program receives its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ctx {
    /// `r1` = the input's address (null when empty), as `EbpfVmRaw`.
    Raw,
    /// An XDP program whose `xdp_md` loads were rewritten
    /// ([`super::rewrite_xdp_ctx`]): `r1` = an mbuff describing the input.
    Xdp { ingress_ifindex: u32, rx_queue_index: u32 },
}

/// Which engine the timed rounds measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timed {
    None,
    /// rbpf's interpreter over every input (no JIT is compiled).
    Interpreter,
    /// rbpf's JIT over the inputs its interpreter completed.
    Jit,
}

/// One child's work.
pub struct Job<'a> {
    /// The program, encoded (for [`Ctx::Xdp`], with its context loads
    /// already rewritten).
    pub bytecode: &'a [u8],
    pub ctx: Ctx,
    pub inputs: &'a [&'a [u8]],
    /// Run rbpf's JIT (a check pass over the inputs the interpreter
    /// completed). Implied by [`Timed::Jit`].
    pub jit: bool,
    pub timed: Timed,
    pub rounds: usize,
    /// Wall-clock limit for the whole child, from fork to exit.
    pub timeout: Duration,
}

/// A timeout fitting a job: 5 s plus 20 µs per program run (rbpf's JIT
/// takes well under 1 µs for the programs we measure; the margin is for a
/// loaded CI machine and for rbpf's interpreter, which is slower).
pub fn default_timeout(inputs: usize, rounds: usize) -> Duration {
    let runs = inputs as u64 * (rounds as u64 + 2);
    Duration::from_secs(5)
        + Duration::from_micros(20).saturating_mul(runs.min(u32::MAX as u64) as u32)
}

/// What a child that finished sent back.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// rbpf's interpreter, per input: `r0`, or None for an rbpf error.
    /// Trusted: written before any of the program's native code existed.
    pub interpreter: Vec<Option<u64>>,
    /// rbpf's JIT, per input the interpreter completed (in input order):
    /// untrusted `r0` values, for comparing only (see [`Report::mismatches`]).
    jit: Vec<Option<u64>>,
    /// Nanoseconds of each timed round, measured in the child.
    pub rounds_ns: Vec<u64>,
}

impl Report {
    /// Inputs the interpreter completed, which the JIT ran.
    pub fn gated(&self) -> usize {
        self.interpreter.iter().flatten().count()
    }

    /// How many of the JIT's results differ from the interpreter's on the
    /// same input. The values themselves are withheld on purpose.
    pub fn mismatches(&self) -> usize {
        let interp = self.interpreter.iter().flatten();
        interp.zip(&self.jit).filter(|(i, j)| Some(**i) != **j).count()
    }

    /// The JIT's `r0` on input `k`, only where it equals the interpreter's
    /// (so it cannot be a value the program made up natively).
    pub fn jit_agreeing(&self, k: usize) -> Option<u64> {
        let want = self.interpreter.get(k).copied().flatten()?;
        let pos = self.interpreter[..k].iter().flatten().count();
        (self.jit.get(pos).copied().flatten() == Some(want)).then_some(want)
    }
}

/// Why a child produced no report. The text says which engine, how far it
/// got, and how it ended; it contains nothing the child chose except
/// counts bounded by the job and a signal number or exit status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

// The records: a tag byte and a little-endian u64.
const REC: usize = 9;
const MAGIC: u64 = 0x7864_7071_7362_6f78; // "xdpqsbox"
const T_START: u8 = b'S';
const T_INTERP_OK: u8 = b'I';
const T_INTERP_ERR: u8 = b'i';
const T_COMPILED: u8 = b'C';
const T_JIT_OK: u8 = b'J';
const T_JIT_ERR: u8 = b'j';
const T_ROUND: u8 = b'T';
const T_DONE: u8 = b'D';
/// A setup step failed: the value indexes [`SETUP_STEPS`].
const T_SETUP_ERR: u8 = b'E';
/// Text follows (the value is its length), before T_SETUP_ERR.
const T_TEXT: u8 = b'M';

const SETUP_STEPS: [&str; 5] = [
    "restricting the child (shared mappings, fds, prctl, rlimits)",
    "loading the program into rbpf",
    "JIT-compiling the program",
    "installing the seccomp filter",
    "writing results",
];
const STEP_RESTRICT: u64 = 0;
const STEP_LOAD: u64 = 1;
const STEP_COMPILE: u64 = 2;
const STEP_SECCOMP: u64 = 3;

/// Runs `job` in a sandboxed child. See the module notes.
pub fn run(job: &Job<'_>) -> Result<Report, Error> {
    let jit = job.jit || job.timed == Timed::Jit;
    let engine = if jit { "rbpf JIT child" } else { "rbpf interpreter child" };
    let fail = |what: String| Error(format!("{engine}: {what}"));
    if jit && job.timed == Timed::Interpreter {
        // The child times the JIT once it has compiled it.
        return Err(fail("a job cannot both run the JIT and time the interpreter".into()));
    }
    let n = job.inputs.len();
    let jit_recs = if jit { 1 + n } else { 0 };
    let max_bytes = REC * (2 + n + jit_recs + job.rounds + 1) + REC + MAX_TEXT;
    let max_len = job.inputs.iter().map(|i| i.len()).max().unwrap_or(0);
    let mut buf = Vec::with_capacity(max_len);
    let s =
        supervise(job.timeout, max_bytes, |c, fd, limits| child_main(c, job, &mut buf, fd, limits))
            .map_err(|e| fail(e.to_string()))?;
    let parsed = parse(&s.bytes, job, jit, s.elapsed);
    match (s.stop, s.ended, parsed) {
        (None, sys::Ended::Exited(0), Parsed::Complete(r)) => Ok(r),
        (Some(Stop::Timeout), _, p) => Err(fail(format!(
            "did not finish within {:.1} s and was killed{}{}",
            job.timeout.as_secs_f64(),
            p.progress(job),
            if jit {
                " (rbpf's JIT has no instruction budget: a looping program ends this way)"
            } else {
                ""
            }
        ))),
        (Some(Stop::TooMuch), _, _) => {
            Err(fail("sent more output than its job can produce; killed, results discarded".into()))
        }
        (Some(Stop::ReadError(e)), _, _) => Err(fail(format!("reading its results failed: {e}"))),
        (None, _, Parsed::Setup { step, text }) => {
            let step = SETUP_STEPS.get(step as usize).copied().unwrap_or("setting up");
            Err(fail(match text {
                Some(t) => format!("{step} failed: {t}"),
                None => format!("{step} failed"),
            }))
        }
        (None, _, Parsed::Garbage(why)) => {
            Err(fail(format!("sent malformed results ({why}); results discarded")))
        }
        (None, sys::Ended::Signaled(sig), p) => {
            let why = if sig == libc::SIGSYS {
                " (a system call the sandbox forbids)"
            } else if sig == libc::SIGXCPU {
                " (CPU time limit)"
            } else {
                ""
            };
            Err(fail(format!("killed by {}{why}{}", sys::signal_name(sig), p.progress(job))))
        }
        (None, sys::Ended::Exited(code), p) => {
            Err(fail(format!("exited with status {code}{}", p.progress(job))))
        }
    }
}

/// What the parent saw of one child.
struct Supervised {
    bytes: Vec<u8>,
    /// Why the parent stopped reading early (and killed the child).
    stop: Option<Stop>,
    ended: sys::Ended,
    /// From fork to end of file (or the kill).
    elapsed: Duration,
}

/// Forks; the child runs `body` (given the pipe's write end and the limits
/// to put on itself) and exits with its result, whatever happens. The
/// parent reads at most `max_bytes` until end of file or `timeout`,
/// killing the child on either, and reaps it.
fn supervise(
    timeout: Duration,
    max_bytes: usize,
    body: impl FnOnce(&sys::Child, i32, &sys::Limits) -> i32,
) -> Result<Supervised, String> {
    let parent = std::process::id() as i32;
    let pipe = sys::pipe().map_err(|e| format!("cannot create its pipe: {e}"))?;
    let limits = sys::Limits {
        address_space: sys::virtual_size().unwrap_or(4 << 30).saturating_add(CHILD_HEADROOM),
        cpu_seconds: timeout.as_secs() + 2,
        max_fd: pipe.write.as_raw_fd(),
        parent,
    };
    let started = Instant::now();
    let pid = match sys::fork() {
        Err(e) => return Err(format!("cannot fork: {e}")),
        Ok(sys::Forked::Child(c)) => {
            // Whatever happens in the child ends here: an unwind must never
            // return into the parent's code in this copy of the process.
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                body(&c, pipe.write.as_raw_fd(), &limits)
            }))
            .unwrap_or(101);
            sys::exit_child(&c, code)
        }
        Ok(sys::Forked::Parent { pid }) => pid,
    };
    drop(pipe.write);
    let (bytes, stop) = read_records(pipe.read.as_fd(), pid, timeout, max_bytes, started);
    drop(pipe.read);
    let elapsed = started.elapsed();
    let ended = sys::wait(pid).map_err(|e| format!("waitpid failed: {e}"))?;
    Ok(Supervised { bytes, stop, ended, elapsed })
}

enum Stop {
    Timeout,
    TooMuch,
    ReadError(std::io::Error),
}

/// Reads the child's records until end of file, the deadline, or more
/// bytes than the job can produce (the child is then killed). Returns
/// what was read and why reading stopped early, if it did.
fn read_records(
    fd: BorrowedFd<'_>,
    pid: i32,
    timeout: Duration,
    max: usize,
    started: Instant,
) -> (Vec<u8>, Option<Stop>) {
    let mut out = Vec::with_capacity(max.min(1 << 20));
    let mut chunk = [0u8; 4096];
    let stop = loop {
        let left = timeout.saturating_sub(started.elapsed());
        if left.is_zero() {
            break Some(Stop::Timeout);
        }
        match sys::poll_readable(fd, left) {
            Ok(false) => break Some(Stop::Timeout),
            Ok(true) => {}
            Err(e) => break Some(Stop::ReadError(e)),
        }
        match sys::read_some(fd, &mut chunk) {
            Ok(0) => break None,
            Ok(k) => {
                if out.len() + k > max {
                    break Some(Stop::TooMuch);
                }
                out.extend_from_slice(&chunk[..k]);
            }
            Err(e) => break Some(Stop::ReadError(e)),
        }
    };
    if stop.is_some() {
        sys::kill_child(pid);
    }
    (out, stop)
}

/// The stream, checked against the job.
enum Parsed {
    Complete(Report),
    /// The child reported a setup failure (before any native code ran).
    Setup {
        step: u64,
        text: Option<String>,
    },
    /// Ended early: how far it got.
    Partial {
        phase: Phase,
        done: usize,
        of: usize,
    },
    Garbage(String),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Starting,
    Interpreter,
    JitCheck,
    Rounds,
}

impl Parsed {
    fn progress(&self, job: &Job<'_>) -> String {
        match self {
            Parsed::Partial { phase: Phase::Starting, .. } => " before it started".into(),
            Parsed::Partial { phase: Phase::Interpreter, done, of } => {
                format!(" in rbpf's interpreter after {done} of {of} packets")
            }
            Parsed::Partial { phase: Phase::JitCheck, done, of } => {
                format!(" after {done} of {of} packets")
            }
            Parsed::Partial { phase: Phase::Rounds, done, .. } => {
                format!(" in timed round {} of {}", done + 1, job.rounds)
            }
            Parsed::Complete(_) => " after sending complete results".into(),
            Parsed::Setup { .. } | Parsed::Garbage(_) => String::new(),
        }
    }
}

/// Checks the record stream: S, one I/i per input, then (JIT) C and one
/// J per input the interpreter completed, then T per round, then D.
/// Round times above what the parent's clock saw are refused.
fn parse(bytes: &[u8], job: &Job<'_>, jit: bool, elapsed: Duration) -> Parsed {
    let n = job.inputs.len();
    let mut recs = bytes.chunks(REC);
    let mut at = 0usize; // byte offset, for text records
    let mut next = |recs: &mut std::slice::Chunks<'_, u8>| -> Option<Result<(u8, u64), String>> {
        let r = recs.next()?;
        at += r.len();
        if r.len() != REC {
            return Some(Err(format!("a record cut short at byte {}", at - r.len())));
        }
        Some(Ok((r[0], u64::from_le_bytes(r[1..].try_into().expect("8 bytes")))))
    };
    macro_rules! take {
        ($phase:expr, $done:expr, $of:expr) => {
            match next(&mut recs) {
                None => return Parsed::Partial { phase: $phase, done: $done, of: $of },
                Some(Err(e)) => return Parsed::Garbage(e),
                Some(Ok(r)) => r,
            }
        };
    }
    // A setup error (optionally with text) may come at the points where the
    // child does setup work; text records are only accepted there.
    let setup_err = |tag: u8, v: u64, recs: &mut std::slice::Chunks<'_, u8>| -> Option<Parsed> {
        match tag {
            T_SETUP_ERR => Some(Parsed::Setup { step: v, text: None }),
            T_TEXT => {
                let len = v as usize;
                if len > MAX_TEXT {
                    return Some(Parsed::Garbage("an over-long error text".into()));
                }
                // The text is raw bytes after the record: re-chunk the rest.
                let rest: Vec<u8> = recs.by_ref().flatten().copied().collect();
                if rest.len() != len + REC || rest[len] != T_SETUP_ERR {
                    return Some(Parsed::Garbage("an error text without its step".into()));
                }
                let step = u64::from_le_bytes(rest[len + 1..].try_into().expect("8 bytes"));
                let text = clean_text(&String::from_utf8_lossy(&rest[..len]));
                Some(Parsed::Setup { step, text: Some(text) })
            }
            _ => None,
        }
    };
    let (tag, v) = take!(Phase::Starting, 0, 0);
    if let Some(p) = setup_err(tag, v, &mut recs) {
        return p;
    }
    if (tag, v) != (T_START, MAGIC) {
        return Parsed::Garbage("no start record".into());
    }
    let mut report = Report::default();
    for k in 0..n {
        let (tag, v) = take!(Phase::Interpreter, k, n);
        match tag {
            T_INTERP_OK => report.interpreter.push(Some(v)),
            T_INTERP_ERR if v == 0 => report.interpreter.push(None),
            _ if k == 0 => {
                if let Some(p) = setup_err(tag, v, &mut recs) {
                    return p;
                }
                return Parsed::Garbage(format!(
                    "record {tag:#04x} where interpreter results belong"
                ));
            }
            _ => {
                return Parsed::Garbage(format!(
                    "record {tag:#04x} where interpreter results belong"
                ))
            }
        }
    }
    let gated = report.gated();
    if jit {
        let (tag, v) = take!(Phase::JitCheck, 0, gated);
        if let Some(p) = setup_err(tag, v, &mut recs) {
            return p;
        }
        if (tag, v) != (T_COMPILED, MAGIC) {
            return Parsed::Garbage("no compiled record".into());
        }
        // From here on, the program's native code has run: nothing below
        // is trusted beyond its shape.
        for k in 0..gated {
            let (tag, v) = take!(Phase::JitCheck, k, gated);
            match tag {
                T_JIT_OK => report.jit.push(Some(v)),
                T_JIT_ERR if v == 0 => report.jit.push(None),
                // Installing the filter is the one setup step after the
                // compiled record; no text is accepted here, since code
                // running after it may be the program's.
                T_SETUP_ERR if k == 0 && v == STEP_SECCOMP && recs.next().is_none() => {
                    return Parsed::Setup { step: v, text: None }
                }
                _ => return Parsed::Garbage("a record where JIT results belong".into()),
            }
        }
    }
    let rounds = if job.timed == Timed::None { 0 } else { job.rounds };
    let bound = elapsed.as_nanos().min(u64::MAX as u128) as u64;
    for k in 0..rounds {
        let (tag, v) = take!(Phase::Rounds, k, rounds);
        if tag != T_ROUND {
            return Parsed::Garbage("a record where round times belong".into());
        }
        report.rounds_ns.push(v);
        if report.rounds_ns.iter().fold(0u64, |a, b| a.saturating_add(*b)) > bound {
            return Parsed::Garbage("round times longer than the child lived".into());
        }
    }
    let (tag, v) = take!(Phase::Rounds, rounds, rounds);
    if (tag, v) != (T_DONE, MAGIC) || recs.next().is_some() {
        return Parsed::Garbage("no clean end record".into());
    }
    Parsed::Complete(report)
}

/// Text from the child's setup phase (rbpf's messages), with host
/// addresses removed and control characters replaced.
fn clean_text(s: &str) -> String {
    super::scrub_addresses(s).chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// The child: see the module notes. Returns its exit status.
fn child_main(
    c: &sys::Child,
    job: &Job<'_>,
    buf: &mut Vec<u8>,
    fd: i32,
    limits: &sys::Limits,
) -> i32 {
    let put = |tag: u8, v: u64| {
        let mut r = [0u8; REC];
        r[0] = tag;
        r[1..].copy_from_slice(&v.to_le_bytes());
        if sys::write_all(fd, &r).is_err() {
            // The parent is gone or closed the pipe: nothing to report to.
            sys::exit_child(c, 3);
        }
    };
    let setup_failed = |step: u64, text: Option<&str>| -> i32 {
        if let Some(t) = text {
            let t = &t.as_bytes()[..t.len().min(MAX_TEXT)];
            put(T_TEXT, t.len() as u64);
            if sys::write_all(fd, t).is_err() {
                return 3;
            }
        }
        put(T_SETUP_ERR, step);
        2
    };
    if sys::unmap_shared(c).and_then(|()| sys::restrict(c, fd, limits)).is_err() {
        return setup_failed(STEP_RESTRICT, None);
    }
    put(T_START, MAGIC);
    buf.resize(buf.capacity(), 0);
    let jit = job.jit || job.timed == Timed::Jit;
    let md = |b: &[u8], ctx: Ctx| -> [u8; super::xdp_ctx::XDP_MD_FIELDS * 8] {
        let (ingress_ifindex, rx_queue_index) = match ctx {
            Ctx::Xdp { ingress_ifindex, rx_queue_index } => (ingress_ifindex, rx_queue_index),
            Ctx::Raw => (0, 0),
        };
        let data = b.as_ptr() as u64;
        XdpMd {
            data,
            data_end: data + b.len() as u64,
            data_meta: data,
            ingress_ifindex,
            rx_queue_index,
            egress_ifindex: 0,
        }
        .to_mbuff()
    };
    match job.ctx {
        Ctx::Xdp { .. } => {
            let mut vm = match ::rbpf::EbpfVmMbuff::new(Some(job.bytecode)) {
                Ok(vm) => vm,
                Err(e) => return setup_failed(STEP_LOAD, Some(&e.to_string())),
            };
            let interp = |b: &mut [u8]| {
                let m = md(b, job.ctx);
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| vm.execute_program(b, &m)))
                    .ok()
                    .and_then(Result::ok)
            };
            let mut gated = Vec::with_capacity(job.inputs.len());
            for (k, input) in job.inputs.iter().enumerate() {
                let b = &mut buf[..input.len()];
                b.copy_from_slice(input);
                match interp(b) {
                    Some(r0) => {
                        put(T_INTERP_OK, r0);
                        gated.push(k);
                    }
                    None => put(T_INTERP_ERR, 0),
                }
            }
            if !jit {
                for _ in 0..timed_rounds(job) {
                    let t = Instant::now();
                    for input in job.inputs {
                        let b = &mut buf[..input.len()];
                        b.copy_from_slice(input);
                        std::hint::black_box(interp(b));
                    }
                    put(T_ROUND, t.elapsed().as_nanos() as u64);
                }
                put(T_DONE, MAGIC);
                return 0;
            }
            if let Err(e) = vm.jit_compile() {
                return setup_failed(STEP_COMPILE, Some(&e.to_string()));
            }
            put(T_COMPILED, MAGIC);
            let Ok(jail) = sys::lock_down(c, fd) else {
                return setup_failed(STEP_SECCOMP, None);
            };
            // No allocation from here on: the filter forbids brk and mmap.
            let run = |k: usize, buf: &mut [u8]| {
                let input = job.inputs[k];
                let b = &mut buf[..input.len()];
                b.copy_from_slice(input);
                // On this stack frame, as in the parent's interpreter runs.
                let mut m = md(b, job.ctx);
                sys::jit_mbuff(&jail, &vm, b, &mut m)
            };
            for &k in &gated {
                match run(k, buf) {
                    Some(r0) => put(T_JIT_OK, r0),
                    None => put(T_JIT_ERR, 0),
                }
            }
            for _ in 0..timed_rounds(job) {
                let t = Instant::now();
                for &k in &gated {
                    std::hint::black_box(run(k, buf));
                }
                put(T_ROUND, t.elapsed().as_nanos() as u64);
            }
        }
        Ctx::Raw => {
            let mut vm = match ::rbpf::EbpfVmRaw::new(Some(job.bytecode)) {
                Ok(vm) => vm,
                Err(e) => return setup_failed(STEP_LOAD, Some(&e.to_string())),
            };
            let mut gated = Vec::with_capacity(job.inputs.len());
            for (k, input) in job.inputs.iter().enumerate() {
                let b = &mut buf[..input.len()];
                b.copy_from_slice(input);
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    vm.execute_program(b)
                }));
                match r.ok().and_then(Result::ok) {
                    Some(r0) => {
                        put(T_INTERP_OK, r0);
                        gated.push(k);
                    }
                    None => put(T_INTERP_ERR, 0),
                }
            }
            if !jit {
                for _ in 0..timed_rounds(job) {
                    let t = Instant::now();
                    for input in job.inputs {
                        let b = &mut buf[..input.len()];
                        b.copy_from_slice(input);
                        std::hint::black_box(vm.execute_program(b).ok());
                    }
                    put(T_ROUND, t.elapsed().as_nanos() as u64);
                }
                put(T_DONE, MAGIC);
                return 0;
            }
            if let Err(e) = vm.jit_compile() {
                return setup_failed(STEP_COMPILE, Some(&e.to_string()));
            }
            put(T_COMPILED, MAGIC);
            let Ok(jail) = sys::lock_down(c, fd) else {
                return setup_failed(STEP_SECCOMP, None);
            };
            let run = |k: usize, buf: &mut [u8]| {
                let input = job.inputs[k];
                let b = &mut buf[..input.len()];
                b.copy_from_slice(input);
                sys::jit_raw(&jail, &vm, b)
            };
            for &k in &gated {
                match run(k, buf) {
                    Some(r0) => put(T_JIT_OK, r0),
                    None => put(T_JIT_ERR, 0),
                }
            }
            for _ in 0..timed_rounds(job) {
                let t = Instant::now();
                for &k in &gated {
                    std::hint::black_box(run(k, buf));
                }
                put(T_ROUND, t.elapsed().as_nanos() as u64);
            }
        }
    }
    put(T_DONE, MAGIC);
    0
}

fn timed_rounds(job: &Job<'_>) -> usize {
    if job.timed == Timed::None {
        0
    } else {
        job.rounds
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jailed(body: impl FnOnce(&sys::Jailed<'_>, i32)) -> Supervised {
        supervise(Duration::from_secs(20), 4096, |c, fd, limits| {
            sys::restrict(c, fd, limits).expect("restrict");
            let jail = sys::lock_down(c, fd).expect("seccomp");
            body(&jail, fd);
            0
        })
        .unwrap()
    }

    /// The filter lets the child write its results, read the clock and
    /// exit cleanly.
    #[test]
    fn allowed_calls_work() {
        let s = jailed(|_, fd| {
            let t = Instant::now();
            let ns = t.elapsed().as_nanos() as u64;
            sys::write_all(fd, &ns.to_le_bytes()).unwrap();
        });
        assert_eq!((s.stop.is_none(), s.ended), (true, sys::Ended::Exited(0)));
        assert_eq!(s.bytes.len(), 8);
    }

    /// Any other call, or a write to another fd, kills the child with
    /// SIGSYS; what it wrote before stays readable.
    #[test]
    fn forbidden_calls_kill_with_sigsys() {
        let s = jailed(|j, fd| {
            sys::write_all(fd, b"before").unwrap();
            sys::forbidden_syscall(j);
            sys::write_all(fd, b"after").unwrap();
        });
        assert_eq!(s.ended, sys::Ended::Signaled(libc::SIGSYS));
        assert_eq!(s.bytes, b"before");
        let s = jailed(|_, fd| {
            let _ = sys::write_all(fd + 1, b"elsewhere");
            sys::write_all(fd, b"after").unwrap();
        });
        assert_eq!(s.ended, sys::Ended::Signaled(libc::SIGSYS));
        assert!(s.bytes.is_empty());
    }

    /// A child that never ends is killed at the deadline; one that writes
    /// without end is killed at the byte cap.
    #[test]
    fn deadline_and_output_cap() {
        let s = supervise(Duration::from_millis(300), 64, |_, _, _| loop {
            std::hint::spin_loop();
        })
        .unwrap();
        assert!(matches!(s.stop, Some(Stop::Timeout)));
        assert_eq!(s.ended, sys::Ended::Signaled(libc::SIGKILL));
        let s = supervise(Duration::from_secs(20), 64, |_, fd, _| loop {
            if sys::write_all(fd, &[0u8; 32]).is_err() {
                return 0;
            }
        })
        .unwrap();
        assert!(matches!(s.stop, Some(Stop::TooMuch)));
        assert!(s.bytes.len() <= 64);
    }

    /// Shared mappings are gone from the child: writing one faults there
    /// and the parent's page keeps its value.
    #[test]
    fn child_cannot_write_shared_memory() {
        let page = sys::shared_page();
        sys::poke(page, Some(7));
        let s = supervise(Duration::from_secs(20), 64, |c, fd, limits| {
            sys::unmap_shared(c).expect("unmap");
            sys::restrict(c, fd, limits).expect("restrict");
            sys::poke(page, Some(9));
            0
        })
        .unwrap();
        assert_eq!(s.ended, sys::Ended::Signaled(libc::SIGSEGV));
        assert_eq!(sys::poke(page, None), 7);
    }

    /// The child's other fds are closed before anything runs.
    #[test]
    fn child_inherits_no_other_fd() {
        let keep = std::fs::File::open("/proc/self/statm").unwrap();
        let s = supervise(Duration::from_secs(20), 64, |c, fd, limits| {
            sys::restrict(c, fd, limits).expect("restrict");
            let mut b = [0u8; 1];
            let open = sys::read_some(&keep, &mut b).is_ok();
            sys::write_all(fd, &[open as u8]).unwrap();
            0
        })
        .unwrap();
        assert_eq!(s.bytes, [0u8]);
    }

    fn report(interp: &[Option<u64>], jit: &[Option<u64>]) -> Report {
        Report { interpreter: interp.to_vec(), jit: jit.to_vec(), rounds_ns: vec![] }
    }

    #[test]
    fn mismatches_count_and_agreeing_values_only() {
        let r = report(&[Some(1), None, Some(3)], &[Some(1), Some(0x7ffd_0000_1000)]);
        assert_eq!((r.gated(), r.mismatches()), (2, 1));
        assert_eq!(r.jit_agreeing(0), Some(1));
        assert_eq!(r.jit_agreeing(1), None);
        assert_eq!(r.jit_agreeing(2), None, "the JIT's value differs: withheld");
    }

    /// Streams are checked against the job: order, counts, round times
    /// bounded by the parent's clock, and no text after native code ran.
    #[test]
    fn stream_validation() {
        let inputs: [&[u8]; 2] = [&[0u8; 14], &[1u8; 14]];
        let job = Job {
            bytecode: &[],
            ctx: Ctx::Raw,
            inputs: &inputs,
            jit: true,
            timed: Timed::Jit,
            rounds: 1,
            timeout: Duration::from_secs(1),
        };
        let rec = |t: u8, v: u64| {
            let mut r = vec![t];
            r.extend_from_slice(&v.to_le_bytes());
            r
        };
        let good: Vec<u8> = [
            rec(T_START, MAGIC),
            rec(T_INTERP_OK, 2),
            rec(T_INTERP_ERR, 0),
            rec(T_COMPILED, MAGIC),
            rec(T_JIT_OK, 2),
            rec(T_ROUND, 500),
            rec(T_DONE, MAGIC),
        ]
        .concat();
        let sec = Duration::from_secs(1);
        match parse(&good, &job, true, sec) {
            Parsed::Complete(r) => {
                assert_eq!(r.interpreter, vec![Some(2), None]);
                assert_eq!((r.mismatches(), r.rounds_ns.clone()), (0, vec![500]));
            }
            _ => panic!("a good stream"),
        }
        // Round time longer than the child lived.
        assert!(matches!(parse(&good, &job, true, Duration::from_nanos(100)), Parsed::Garbage(_)));
        // Cut short inside the JIT pass: progress, not garbage.
        assert!(matches!(
            parse(&good[..REC * 4], &job, true, sec),
            Parsed::Partial { phase: Phase::JitCheck, done: 0, of: 1 }
        ));
        // Half a record.
        assert!(matches!(parse(&good[..REC * 4 + 3], &job, true, sec), Parsed::Garbage(_)));
        // An extra JIT record, a trailing record, text after compiling.
        let mut extra = good[..REC * 5].to_vec();
        extra.extend(rec(T_JIT_OK, 9));
        assert!(matches!(parse(&extra, &job, true, sec), Parsed::Garbage(_)));
        let mut trailing = good.clone();
        trailing.extend(rec(T_DONE, MAGIC));
        assert!(matches!(parse(&trailing, &job, true, sec), Parsed::Garbage(_)));
        let mut text = good[..REC * 4].to_vec();
        text.extend(rec(T_TEXT, 4));
        text.extend(b"0x7ffd12345678");
        assert!(matches!(parse(&text, &job, true, sec), Parsed::Garbage(_)));
        // Setup text before compiling is accepted, addresses scrubbed.
        let mut setup = good[..REC * 3].to_vec();
        setup.extend(rec(T_TEXT, 16));
        setup.extend(b"at 0x7ffd12345678"[..16].iter());
        setup.extend(rec(T_SETUP_ERR, STEP_COMPILE));
        match parse(&setup, &job, true, sec) {
            Parsed::Setup { step, text: Some(t) } => {
                assert_eq!(step, STEP_COMPILE);
                assert_eq!(t, "at <addr>");
            }
            _ => panic!("a setup error"),
        }
    }
}

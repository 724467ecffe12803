//! Parallel replay: packets spread over worker threads the way a NIC
//! spreads them over receive queues, results put back in capture order.
//!
//! # The split
//!
//! Each packet goes to a worker by receive-side scaling: the Toeplitz hash
//! (`nic_model::rss`, Microsoft's default key) of the flow, then a
//! round-robin indirection table of `workers` queues, as a NIC with that
//! many queues and ethtool's default table would do. The hash input is
//! source and destination address plus source and destination port for
//! TCP and UDP (the 4-tuple), the two addresses only for other IP
//! protocols, and frames with no IP flow (ARP, unparseable, ...) all go to
//! worker 0, as NICs deliver non-RSS traffic to the default queue. A flow's
//! packets therefore always meet the same worker, in capture order. (The
//! two directions of a connection may land on different workers, as on a
//! real NIC: the Toeplitz hash is not symmetric.)
//!
//! # Workers and maps
//!
//! Worker `w` of `n` is its own [`Engine`] built with
//! `EngineConfig { cpu: w, ncpus: n }`: it plays CPU `w`, writes only that
//! CPU's slot of per-CPU maps, and has its own copy of every other map.
//! That is the kernel's model exactly for per-CPU maps; for the others it
//! is only right if nobody writes them, which
//! [`shared_state::shared_state_uses`](super::shared_state) checks
//! statically. A program that shares state is replayed on one worker unless
//! the caller allows the split anyway (`--parallel-unsafe`).
//!
//! `rx_queue_index` stays what the caller set (not the worker's queue), so
//! the per-packet results do not depend on the thread count.
//!
//! # Determinism
//!
//! Packets are taken in chunks. Whoever reads a chunk classifies it and
//! computes every packet's RSS queue as it reads it; then every worker
//! runs its own packets of the chunk in capture order and counts them
//! (counts add up the same in any order). Only what has an order (JSON
//! lines, pcap output) walks the chunk in capture order afterwards, taking
//! each packet's result from its worker. So the output is the same for any
//! thread count, and equal to [`super::replay`]'s for parallel-safe
//! programs.
//!
//! # Input
//!
//! Packets come in owned chunks ([`super::chunk`]): classic Ethernet pcap
//! files are read in large blocks into reusable buffers
//! ([`PcapBatches`](crate::capture::PcapBatches)) and packets are slices
//! of them; other captures go through the streaming reader.
//!
//! When only counts are wanted (no JSON lines, pcap output, trace or
//! `--fresh-maps`), threads are not tied to workers (`Feed`): each thread
//! reads and classifies the next chunk when fewer than `AHEAD` are held,
//! or runs an idle worker's packets of the next chunk that worker has not
//! run. A worker is run by one thread at a time and takes its chunks in
//! order, so it sees its packets as above. Reading, the one serial part,
//! then overlaps with running, and no thread waits for another chunk by
//! chunk (an RSS split is uneven within a chunk, and evens out over
//! several). Otherwise the chunks go in lockstep: one pool thread reads
//! and classifies chunk k+1 while the workers run chunk k, and the chunk's
//! results are written in capture order before the next.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};

use anyhow::{bail, Context, Result};
use rayon::prelude::*;

use super::chunk::{Chunk, Frame, Source};
use super::shared_state::{shared_state_uses, SharedUse};
use super::summary::{add_counts, fault_reason, CaptureSummary, Summary};
use super::{progress_bar, trace, PacketLine, ReplayOptions};
use crate::backends::engine::run_frame_executed;
use crate::backends::PacketResult;
use crate::capture::{FiveTuple, FrameClass, PcapFileWriter, ProtoClass, TsPrecision, VlanTagging};
use crate::engine::{Batch, Engine, Executor, NoTrace, PacketIn, Recorder, SlotOutcome};
use crate::program::Object;
use crate::verdict::{Verdict, XdpAction};
use nic_model::rss::{toeplitz, IndirectionTable, MICROSOFT_KEY};

/// How many workers, and whether to split a program that shares state.
#[derive(Clone, Debug)]
pub struct ParallelOptions {
    /// Workers wanted (at least 1).
    pub threads: usize,
    /// Split even when the program writes non-per-CPU maps.
    pub allow_shared_state: bool,
}

/// How a replay was run.
#[derive(Clone, Debug)]
pub struct Plan {
    pub workers: usize,
    /// Why the program's state is shared between flows (empty: it is not).
    pub shared: Vec<SharedUse>,
    /// Set when fewer workers run than were asked for, with the reason.
    pub downgraded: Option<String>,
}

/// Decides the number of workers for `obj` under `opts`.
pub fn plan(obj: &Object, opts: &ParallelOptions) -> Plan {
    let wanted = opts.threads.max(1);
    let shared = shared_state_uses(obj);
    let downgraded = (wanted > 1 && !shared.is_empty() && !opts.allow_shared_state).then(|| {
        format!(
            "the program shares state between flows ({}{}), so the split across {wanted} workers could change its results; replaying on one thread (--parallel-unsafe splits anyway)",
            shared[0],
            if shared.len() > 1 { format!(" and {} more", shared.len() - 1) } else { String::new() }
        )
    });
    Plan { workers: if downgraded.is_some() { 1 } else { wanted }, shared, downgraded }
}

/// The worker queue for a flow (see the module notes).
pub fn rss_queue(flow: Option<&FiveTuple>, table: &IndirectionTable) -> usize {
    let Some(f) = flow else { return 0 };
    let mut input = [0u8; 36];
    let mut n = 0;
    for a in [f.src, f.dst] {
        match a {
            std::net::IpAddr::V4(a) => {
                input[n..n + 4].copy_from_slice(&a.octets());
                n += 4;
            }
            std::net::IpAddr::V6(a) => {
                input[n..n + 16].copy_from_slice(&a.octets());
                n += 16;
            }
        }
    }
    if matches!(f.protocol, 6 | 17) {
        input[n..n + 2].copy_from_slice(&f.src_port.to_be_bytes());
        input[n + 2..n + 4].copy_from_slice(&f.dst_port.to_be_bytes());
        n += 4;
    }
    // Mixed families cannot come out of one parsed header; queue 0 if they did.
    match toeplitz(&MICROSOFT_KEY, &input[..n]) {
        Ok(h) => usize::from(table.queue(h)),
        Err(_) => 0,
    }
}

/// [`rss_queue`] by table: the Toeplitz hash is linear in its input
/// (XOR of one key window per set input bit), so each input byte's share
/// can be looked up by its position and value, and the hash of an input is
/// the XOR of one table entry per byte. Twelve lookups for an IPv4 4-tuple,
/// against nic-model's 96 bit steps (which stays the definition; test
/// `rss_table_agrees_with_the_toeplitz_definition`).
struct Rss {
    table: IndirectionTable,
    /// The table's length less one when it is a power of two (the usual
    /// 128): the entry is then the hash's low bits without a division,
    /// which was a third of this hash's time in `perf annotate`.
    mask: Option<usize>,
    /// `by_byte[i][b]`: the hash of an input whose byte `i` is `b` and
    /// whose other bytes are 0.
    by_byte: Box<[[u32; 256]; RSS_INPUT_MAX]>,
}

/// The longest RSS input: two IPv6 addresses and two ports.
const RSS_INPUT_MAX: usize = 36;

impl Rss {
    fn new(table: IndirectionTable) -> Result<Rss> {
        let mut by_byte = Box::new([[0u32; 256]; RSS_INPUT_MAX]);
        let mut input = [0u8; RSS_INPUT_MAX];
        for (i, row) in by_byte.iter_mut().enumerate() {
            for bit in 0..8 {
                input[i] = 0x80 >> bit;
                row[usize::from(input[i])] = toeplitz(&MICROSOFT_KEY, &input[..=i])
                    .context("the RSS key is shorter than the longest input")?;
            }
            input[i] = 0;
            // Every other value is the XOR of its bits' entries.
            for b in 1..256usize {
                let low = b & b.wrapping_neg();
                row[b] = row[b ^ low] ^ row[low];
            }
        }
        let len = table.entries().len();
        let mask = len.is_power_of_two().then(|| len - 1);
        Ok(Rss { table, mask, by_byte })
    }

    /// The same queue as [`rss_queue`] with this table.
    #[inline]
    fn queue(&self, flow: Option<&FiveTuple>) -> usize {
        let Some(f) = flow else { return 0 };
        let mut hash = 0u32;
        let mut at = 0;
        let mut add = |bytes: &[u8]| {
            for &b in bytes {
                hash ^= self.by_byte[at][usize::from(b)];
                at += 1;
            }
        };
        for a in [f.src, f.dst] {
            match a {
                std::net::IpAddr::V4(a) => add(&a.octets()),
                std::net::IpAddr::V6(a) => add(&a.octets()),
            }
        }
        if matches!(f.protocol, 6 | 17) {
            add(&f.src_port.to_be_bytes());
            add(&f.dst_port.to_be_bytes());
        }
        usize::from(match self.mask {
            Some(mask) => self.table.entries()[hash as usize & mask],
            None => self.table.queue(hash),
        })
    }
}

/// What a parallel replay produced.
pub struct ParallelReport {
    pub summary: Summary,
    pub trace: Option<String>,
    pub plan: Plan,
    /// The workers' engines, worker `w` playing CPU `w`.
    pub engines: Vec<Engine>,
}

impl ParallelReport {
    /// The maps after the run as one engine's: per-CPU maps take CPU `w`'s
    /// values from worker `w`; other maps are worker 0's, which is every
    /// worker's when the program does not share state. Refused when it does
    /// and more than one worker ran, since no single copy is the truth.
    pub fn merged_engine(mut self) -> Result<Engine> {
        if self.engines.len() > 1 && !self.plan.shared.is_empty() {
            bail!(
                "the maps cannot be dumped after a split replay of a program that shares state between flows ({}): each of the {} workers has its own copy; replay with --threads 1 to dump them",
                self.plan.shared[0],
                self.engines.len()
            );
        }
        let mut engines = std::mem::take(&mut self.engines).into_iter();
        let mut merged = engines.next().context("no workers ran")?;
        for (w, other) in engines.enumerate().map(|(i, e)| (i + 1, e)) {
            for (m, theirs) in merged.maps_mut().maps.iter_mut().zip(other.maps().maps.iter()) {
                if !m.def.map_type.is_percpu() {
                    continue;
                }
                for e in theirs.entries() {
                    if let Some(v) = e.values.get(w) {
                        let rc = m.update(&e.key, v, 0, Some(w));
                        if rc != 0 {
                            bail!("merging CPU {w}'s entries of per-CPU map '{}': update refused with errno {}", m.def.name, -rc);
                        }
                    }
                }
            }
        }
        Ok(merged)
    }
}

/// Every protocol class, for reading counts back from their slots (a
/// class missing here would have its counts missing from the summary:
/// test `every_protocol_class_is_listed`).
const PROTO_CLASSES: [ProtoClass; 9] = [
    ProtoClass::Tcp,
    ProtoClass::Udp,
    ProtoClass::Icmpv4,
    ProtoClass::Icmpv6,
    ProtoClass::Ipv4,
    ProtoClass::Ipv6,
    ProtoClass::Arp,
    ProtoClass::Other,
    ProtoClass::Unparseable,
];

/// A verdict as counted in the summary, without allocation.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Label {
    Action(XdpAction),
    Fault,
    NotRun,
    Error,
}

impl Label {
    fn of(v: &Verdict) -> Label {
        match v {
            Verdict::Action { action } => Label::Action(*action),
            Verdict::Fault { .. } => Label::Fault,
            Verdict::NotRun { .. } => Label::NotRun,
            Verdict::Error { .. } => Label::Error,
        }
    }
    fn text(self) -> String {
        match self {
            Label::Action(a) => a.to_string(),
            Label::Fault => "FAULT".into(),
            Label::NotRun => "NOT_RUN".into(),
            Label::Error => "ERROR".into(),
        }
    }
}

struct Worker {
    engine: Engine,
    /// Results of this worker's packets of the current chunk, in order;
    /// kept only when something needs them in capture order (the sink).
    out: Vec<PacketResult>,
    /// The last batch's results, kept for their capacity.
    batch: Batch,
    /// Counts of this worker's packets of the current capture. Counting is
    /// commutative, so workers count their own and the capture's summary
    /// adds them up: no per-packet work is left for one thread.
    tally: VerdictCounts,
    trace: Option<String>,
    /// Packets this worker ran in the interpreter and in compiled code.
    interpreted: u64,
    compiled: u64,
}

/// What the run needs from the caller besides the captures.
struct Run<'a> {
    obj: &'a Object,
    program: &'a str,
    opts: &'a ReplayOptions,
    /// JSON or pcap output wants each result, with its frame, in capture order.
    ordered_output: bool,
    rss: Rss,
    /// The worker pool; `None` with one worker, which runs on the calling
    /// thread.
    pool: Option<&'a rayon::ThreadPool>,
}

impl Run<'_> {
    /// Runs `a` and `b`, side by side when there is a pool.
    fn join<A: Send, B: Send>(
        &self,
        a: impl FnOnce() -> A + Send,
        b: impl FnOnce() -> B + Send,
    ) -> (A, B) {
        match self.pool {
            Some(pool) => pool.join(a, b),
            None => {
                let rb = b();
                (a(), rb)
            }
        }
    }
}

/// Per-capture verdict counts (a histogram, not `compare::Tally`'s
/// agreement counters), keyed without strings until the end. This is
/// touched once per packet, so the usual keys (a class and one of the five
/// actions, FAULT, NOT_RUN or ERROR) index an array; the rest (actions
/// outside the enum, classes past the array) go to a map. FxHash, not
/// SipHash: the keys are ours (no flooding risk).
struct VerdictCounts {
    /// By [`dense_index`].
    dense: Box<[u64; DENSE]>,
    rare: rustc_hash::FxHashMap<(FrameClass, Label), u64>,
    truncated: u64,
    /// FAULT reasons and ERROR messages with counts (only faulting packets
    /// pay for the string).
    faults: BTreeMap<String, u64>,
    errors: BTreeMap<String, u64>,
}

/// VLAN taggings × protocol class slots × labels with a slot.
const CLASS_SLOTS: usize = 16;
const LABEL_SLOTS: usize = 8;
const DENSE: usize = 3 * CLASS_SLOTS * LABEL_SLOTS;

/// Where `(class, label)` counts in [`VerdictCounts::dense`], if it has a slot.
fn dense_index(class: FrameClass, label: Label) -> Option<usize> {
    let l = match label {
        Label::Action(XdpAction::Aborted) => 0,
        Label::Action(XdpAction::Drop) => 1,
        Label::Action(XdpAction::Pass) => 2,
        Label::Action(XdpAction::Tx) => 3,
        Label::Action(XdpAction::Redirect) => 4,
        Label::Fault => 5,
        Label::NotRun => 6,
        Label::Error => 7,
        Label::Action(XdpAction::Invalid(_)) => return None,
    };
    let (v, p) = (class.vlan as usize, class.proto as usize);
    (p < CLASS_SLOTS).then_some((v * CLASS_SLOTS + p) * LABEL_SLOTS + l)
}

impl Default for VerdictCounts {
    fn default() -> VerdictCounts {
        VerdictCounts {
            dense: Box::new([0; DENSE]),
            rare: Default::default(),
            truncated: 0,
            faults: BTreeMap::new(),
            errors: BTreeMap::new(),
        }
    }
}

impl VerdictCounts {
    fn add(&mut self, other: &mut VerdictCounts) {
        for (mine, theirs) in self.dense.iter_mut().zip(other.dense.iter_mut()) {
            *mine += std::mem::take(theirs);
        }
        for (k, n) in other.rare.drain() {
            *self.rare.entry(k).or_default() += n;
        }
        self.truncated += std::mem::take(&mut other.truncated);
        add_counts(&mut self.faults, std::mem::take(&mut other.faults));
        add_counts(&mut self.errors, std::mem::take(&mut other.errors));
    }

    /// Counts one packet of `class` that ended as `label`.
    fn count(&mut self, class: FrameClass, label: Label, truncated: bool) {
        match dense_index(class, label) {
            Some(i) => self.dense[i] += 1,
            None => *self.rare.entry((class, label)).or_default() += 1,
        }
        self.truncated += u64::from(truncated);
    }

    /// Counts a FAULT by its reason (the message without its instruction
    /// detail), whichever way the packet ran.
    fn count_fault(&mut self, message: &str) {
        *self.faults.entry(fault_reason(message)).or_default() += 1;
    }

    fn count_problem(&mut self, v: &Verdict) {
        match v {
            Verdict::Fault { message, .. } => self.count_fault(message),
            Verdict::Error { message } => *self.errors.entry(message.clone()).or_default() += 1,
            _ => {}
        }
    }

    fn into_summary(self, cap: &mut CaptureSummary) {
        // Every key a dense slot can stand for, to read the slots back.
        let mut keys = Vec::new();
        for vlan in [VlanTagging::Untagged, VlanTagging::Single, VlanTagging::Double] {
            for proto in PROTO_CLASSES {
                for label in [
                    Label::Action(XdpAction::Aborted),
                    Label::Action(XdpAction::Drop),
                    Label::Action(XdpAction::Pass),
                    Label::Action(XdpAction::Tx),
                    Label::Action(XdpAction::Redirect),
                    Label::Fault,
                    Label::NotRun,
                    Label::Error,
                ] {
                    keys.push((FrameClass { vlan, proto }, label));
                }
            }
        }
        let mut counts = self.rare;
        for (class, label) in keys {
            let i = dense_index(class, label).expect("every class and label listed has a slot");
            if self.dense[i] > 0 {
                *counts.entry((class, label)).or_default() += self.dense[i];
            }
        }
        // Summaries are maps keyed by strings: the order here is not seen.
        for ((class, label), n) in counts {
            let l = label.text();
            *cap.counts.by_verdict.entry(l.clone()).or_default() += n;
            cap.counts.total += n;
            let c = cap.by_class.entry(class.to_string()).or_default();
            *c.by_verdict.entry(l).or_default() += n;
            c.total += n;
        }
        cap.truncated = self.truncated;
        add_counts(&mut cap.faults, self.faults);
        add_counts(&mut cap.errors, self.errors);
    }
}

/// Replays `captures` through `program` on the workers `plan` decided.
/// `build(cpu, ncpus)` makes one worker's engine (with any map files
/// applied and snapshotted).
pub fn replay_parallel(
    obj: &Object,
    program: &str,
    build: &(dyn Fn(usize, usize) -> Result<Engine> + Sync),
    captures: &[PathBuf],
    opts: &ReplayOptions,
    plan: Plan,
) -> Result<ParallelReport> {
    let n = plan.workers.max(1);
    let ordered_output = opts.json.is_some() || !opts.write_pcap.is_empty();
    // Only counts wanted: workers take chunks at their own pace (see
    // `count_capture`). Anything that needs packets one at a time or in
    // capture order goes chunk by chunk, all workers together.
    let counting = !ordered_output && !opts.fresh_maps && opts.trace.is_none();
    // n workers, n threads: the thread that reads and orders is one of the
    // pool's (everything below runs inside `install`), so no extra thread
    // competes with the workers for cores. One worker needs no pool, and
    // counting runs on threads of its own.
    let pool = if n == 1 || counting {
        None
    } else {
        Some(
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .thread_name(|i| format!("xdpqual-replay-{i}"))
                .build()
                .context("starting the replay worker threads")?,
        )
    };
    let mut workers = (0..n)
        .map(|w| {
            let mut engine = build(w, n)?;
            engine.set_keep_output(ordered_output);
            Ok(Worker {
                engine,
                out: Vec::new(),
                batch: Batch::new(),
                tally: VerdictCounts::default(),
                trace: None,
                interpreted: 0,
                compiled: 0,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let run = Run {
        obj,
        program,
        opts,
        ordered_output,
        rss: Rss::new(IndirectionTable::round_robin(
            u16::try_from(n).context("more than 65535 workers")?,
        )?)?,
        pool: pool.as_ref(),
    };
    let mut summary = Summary {
        schema: "xdpqual.replay.summary/1",
        program: program.to_string(),
        object: obj.path.display().to_string(),
        captures: Vec::new(),
        executors: BTreeMap::new(),
    };
    let mut sink = Sink::open(opts)?;
    let progress = progress_bar(opts.progress);
    let queue = |flow: Option<&FiveTuple>| if n == 1 { 0 } else { run.rss.queue(flow) };
    let mut body = || -> Result<()> {
        let mut global = 0u64;
        for path in captures {
            let mut cap =
                CaptureSummary { capture: path.display().to_string(), ..Default::default() };
            let mut tally = VerdictCounts::default();
            match Source::open(path) {
                Err(e) => cap.error = Some(e.to_string()),
                Ok(source) if counting => {
                    let (error, mut source) =
                        count_capture(&run, &mut workers, source, &mut global, &queue, &progress)?;
                    for w in workers.iter_mut() {
                        tally.add(&mut w.tally);
                    }
                    cap.error = error;
                    cap.notices = source.notices();
                }
                Ok(mut source) => {
                    let mut cur = source.next_chunk(global);
                    cur.classify(queue);
                    loop {
                        // The reading thread reads and classifies the next
                        // chunk (its bytes are then in that core's cache)
                        // while the workers run this one. Measured on 2
                        // cores: classifying in a separate parallel phase
                        // left the second thread asleep for most of it.
                        let next_global = global + cur.frames.len() as u64;
                        let (next, ()) = run.join(
                            || {
                                (!cur.last).then(|| {
                                    let mut c = source.next_chunk(next_global);
                                    c.classify(queue);
                                    c
                                })
                            },
                            || run_workers(&run, &mut workers, &cur),
                        );
                        for w in workers.iter_mut() {
                            tally.add(&mut w.tally);
                        }
                        if run.ordered_output {
                            sink.chunk(&cap.capture, &cur, &workers)?;
                        }
                        if let Some(p) = &progress {
                            p.inc(cur.frames.len() as u64);
                        }
                        global = next_global;
                        if let Some(e) = cur.error.take() {
                            cap.error = Some(e);
                        }
                        source.recycle(cur);
                        match next {
                            Some(c) => cur = c,
                            None => break,
                        }
                    }
                    cap.notices = source.notices();
                }
            }
            tally.into_summary(&mut cap);
            summary.captures.push(cap);
        }
        Ok(())
    };
    match &pool {
        Some(p) => p.install(body)?,
        None => body()?,
    }
    if let Some(p) = progress {
        p.finish_and_clear();
    }
    sink.finish()?;
    for (name, n) in [
        (Executor::Interpreter.name(), workers.iter().map(|w| w.interpreted).sum::<u64>()),
        (Executor::Jit.name(), workers.iter().map(|w| w.compiled).sum::<u64>()),
    ] {
        if n > 0 {
            summary.executors.insert(name.to_string(), n);
        }
    }
    let trace = workers.iter_mut().find_map(|w| w.trace.take());
    Ok(ParallelReport {
        summary,
        trace,
        plan,
        engines: workers.into_iter().map(|w| w.engine).collect(),
    })
}

/// Chunks read and not yet run by every worker, at most: each is one
/// capture buffer ([`crate::capture::batch::BUFFER_BYTES`]), and a few are
/// enough for reading to go on while the workers run the earlier ones, and
/// for a worker with a run of its own packets not to hold the others up
/// chunk by chunk.
const AHEAD: usize = 4;

/// The chunks of one capture and the workers that run them, shared by the
/// threads of a counting replay. A thread does whatever is there to do:
/// read and classify the next chunk, or run an idle worker's packets of the
/// next chunk it has not run. Workers are data (an engine playing one CPU,
/// its counts), so any thread can run any of them, one thread at a time
/// and each worker's chunks in order. Threads are not tied to workers
/// because the work is not even: reading is serial and costs about as much
/// as a worker's share of a chunk (measured: with each thread tied to its
/// worker and the one ahead reading, two threads used 0.8-0.9 of the two
/// cores).
struct Feed<'a, 'w, Q> {
    state: Mutex<FeedState<'w>>,
    changed: Condvar,
    /// Read before running when there is room: with one thread, a chunk is
    /// better run while its bytes are still in cache.
    read_first: bool,
    /// A type, not a `dyn`, so that the RSS hash can inline into the
    /// classification loop.
    queue: &'a Q,
    progress: Option<&'a indicatif::ProgressBar>,
}

struct FeedState<'w> {
    /// `None` while a thread reads from it.
    source: Option<Source>,
    /// Chunks read and not yet run by every worker, oldest first, each
    /// with the number of workers still to run it.
    held: VecDeque<(Arc<Chunk>, usize)>,
    /// Sequence number in the capture of `held[0]`.
    first: usize,
    /// The capture's last chunk has been read.
    ended: bool,
    /// Global number of the next chunk's first packet.
    global: u64,
    /// Why reading stopped early.
    error: Option<String>,
    /// Run chunks whose buffers go back to the source when it is returned.
    spent: Vec<Chunk>,
    /// Each worker, `None` while a thread runs it.
    idle: Vec<Option<&'w mut Worker>>,
    /// Each worker's next chunk (sequence number).
    next: Vec<usize>,
    /// A thread stopped by a panic: the others stop rather than wait for it.
    abandoned: bool,
}

impl<'w, Q> Feed<'_, 'w, Q> {
    fn lock(&self) -> std::sync::MutexGuard<'_, FeedState<'w>> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl<'w, Q: Fn(Option<&FiveTuple>) -> usize> Feed<'_, 'w, Q> {
    /// One thread's loop: read or run until every chunk has been run by
    /// every worker.
    fn work(&self, run: &Run) {
        let mut st = self.lock();
        loop {
            if st.abandoned || (st.ended && st.held.is_empty()) {
                return;
            }
            let can_read = !st.ended && st.held.len() < AHEAD && st.source.is_some();
            let runnable = (0..st.idle.len())
                .find(|&w| st.idle[w].is_some() && st.next[w] - st.first < st.held.len());
            if can_read && (self.read_first || runnable.is_none()) {
                st = self.read(st);
            } else if let Some(w) = runnable {
                let worker = st.idle[w].take().expect("checked above");
                let seq = st.next[w];
                let chunk = Arc::clone(&st.held[seq - st.first].0);
                drop(st);
                run_batch(run, worker, w, &chunk);
                drop(chunk);
                st = self.lock();
                st.idle[w] = Some(worker);
                st.next[w] += 1;
                self.ran(&mut st, seq);
            } else {
                st = self.changed.wait(st).unwrap_or_else(std::sync::PoisonError::into_inner);
                continue;
            }
            self.changed.notify_all();
        }
    }

    /// Reads and classifies the next chunk, without the lock meanwhile.
    fn read<'g>(
        &'g self,
        mut st: std::sync::MutexGuard<'g, FeedState<'w>>,
    ) -> std::sync::MutexGuard<'g, FeedState<'w>> {
        let mut source = st.source.take().expect("the caller checked it is there");
        for c in st.spent.drain(..) {
            source.recycle(c);
        }
        let global = st.global;
        drop(st);
        let mut chunk = source.next_chunk(global);
        chunk.classify(self.queue);
        let mut st = self.lock();
        st.source = Some(source);
        st.global += chunk.frames.len() as u64;
        st.ended = chunk.last;
        if let Some(e) = chunk.error.take() {
            st.error = Some(e);
        }
        if chunk.frames.is_empty() {
            st.spent.push(chunk);
        } else {
            let workers = st.idle.len();
            st.held.push_back((Arc::new(chunk), workers));
        }
        st
    }

    /// One worker has run chunk `seq` (and its handle to it is dropped).
    fn ran(&self, st: &mut FeedState<'w>, seq: usize) {
        let at = seq - st.first;
        st.held[at].1 -= 1;
        while st.held.front().is_some_and(|(_, left)| *left == 0) {
            let (chunk, _) = st.held.pop_front().expect("checked above");
            st.first += 1;
            if let Some(p) = self.progress {
                p.inc(chunk.frames.len() as u64);
            }
            if let Ok(chunk) = Arc::try_unwrap(chunk) {
                st.spent.push(chunk);
            }
        }
    }
}

/// Tells the other threads to stop when one unwinds, so none of them waits
/// forever for work it holds.
struct AbandonOnPanic<'a, 'b, 'w, Q>(&'a Feed<'b, 'w, Q>);

impl<Q> Drop for AbandonOnPanic<'_, '_, '_, Q> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.lock().abandoned = true;
            self.0.changed.notify_all();
        }
    }
}

/// Runs and counts every packet of one capture when only counts are
/// wanted, on as many threads as workers (this one and the others), each
/// doing whatever a [`Feed`] has to do. Returns why reading stopped early,
/// and the source for its notices.
fn count_capture(
    run: &Run,
    workers: &mut [Worker],
    source: Source,
    global: &mut u64,
    queue: &(impl Fn(Option<&FiveTuple>) -> usize + Sync),
    progress: &Option<indicatif::ProgressBar>,
) -> Result<(Option<String>, Source)> {
    let threads = workers.len();
    let feed = Feed {
        state: Mutex::new(FeedState {
            source: Some(source),
            held: VecDeque::new(),
            first: 0,
            ended: false,
            global: *global,
            error: None,
            spent: Vec::new(),
            next: vec![0; workers.len()],
            idle: workers.iter_mut().map(Some).collect(),
            abandoned: false,
        }),
        changed: Condvar::new(),
        read_first: threads > 1,
        queue,
        progress: progress.as_ref(),
    };
    let work = || {
        let _stop_others = AbandonOnPanic(&feed);
        feed.work(run);
    };
    std::thread::scope(|s| -> Result<()> {
        let mut others = Vec::new();
        for i in 1..threads {
            let spawned = std::thread::Builder::new()
                .name(format!("xdpqual-replay-{i}"))
                .spawn_scoped(s, work);
            // The threads started can do all of the work without the
            // others, so failing here cannot leave them waiting.
            others.push(spawned.context("starting a replay thread")?);
        }
        work();
        for t in others {
            if let Err(panic) = t.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Ok(())
    })?;
    let st = feed.state.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    *global = st.global;
    Ok((st.error, st.source.expect("the source is returned after every read")))
}

/// Every worker runs and counts its own share of the classified chunk, in
/// parallel when there is a pool.
fn run_workers(run: &Run, workers: &mut [Worker], chunk: &Chunk) {
    // Counting needs only each packet's verdict, so the chunk runs as one
    // batch per worker unless something needs more of a packet than its
    // slot says: its frame in capture order, a trace, or maps reset before
    // every packet.
    let traced = run.opts.trace.is_some_and(|g| chunk.frames.iter().any(|f| f.global == g));
    let batched = !run.ordered_output && !run.opts.fresh_maps && !traced;
    let work = |w: usize, worker: &mut Worker| {
        if batched {
            return run_batch(run, worker, w, chunk);
        }
        worker.out.clear();
        for f in chunk.frames_of(w) {
            let r = run_one(run, worker, f, chunk.data(f));
            worker.tally.count(f.class, Label::of(&r.verdict), f.truncated);
            worker.tally.count_problem(&r.verdict);
            if run.ordered_output {
                worker.out.push(r);
            }
        }
    };
    match run.pool {
        None => work(0, &mut workers[0]),
        Some(_) => workers.par_iter_mut().enumerate().for_each(|(w, worker)| work(w, worker)),
    }
}

/// Worker `w`'s share of `chunk` in one [`Engine::run_batch`], counted as
/// `run_one`'s results are.
fn run_batch(run: &Run, worker: &mut Worker, w: usize, chunk: &Chunk) {
    let opts = run.opts;
    let frames: Vec<&Frame> = chunk.frames_of(w).collect();
    let inputs: Vec<PacketIn> = frames
        .iter()
        .map(|f| PacketIn {
            data: chunk.data(f),
            ts_ns: f.ts_ns,
            ingress_ifindex: opts.ingress_ifindex,
            rx_queue_index: opts.rx_queue_index,
        })
        .collect();
    worker.engine.run_batch(&inputs, &mut worker.batch);
    let batch = &worker.batch;
    let mut ran = 0;
    for (i, (f, slot)) in frames.iter().zip(batch.slots()).enumerate() {
        let label = match slot.outcome {
            SlotOutcome::Exit { r0 } => Label::Action(XdpAction::from_retval(r0 as u32)),
            SlotOutcome::Fault => {
                let fault = batch.fault(i).expect("a fault slot has its fault");
                worker.tally.count_fault(&fault.to_string());
                Label::Fault
            }
            SlotOutcome::NotRun(_) => Label::NotRun,
        };
        ran += u64::from(label != Label::NotRun);
        worker.tally.count(f.class, label, f.truncated);
    }
    match batch.executor() {
        Some(Executor::Interpreter) => worker.interpreted += ran,
        Some(Executor::Jit) => worker.compiled += ran,
        None => {}
    }
}

fn run_one(run: &Run, worker: &mut Worker, f: &Frame, data: &[u8]) -> PacketResult {
    let opts = run.opts;
    if opts.fresh_maps {
        worker.engine.reset_maps();
    }
    let input = PacketIn {
        data,
        ts_ns: f.ts_ns,
        ingress_ifindex: opts.ingress_ifindex,
        rx_queue_index: opts.rx_queue_index,
    };
    let (r, executor) = if opts.trace == Some(f.global) {
        let mut rec = Recorder::new(100_000);
        // The trace shows the output frame even when nothing else keeps it.
        worker.engine.set_keep_output(true);
        let (mut r, executor) = run_frame_executed(&mut worker.engine, &input, &mut rec);
        worker.engine.set_keep_output(run.ordered_output);
        worker.trace = Some(trace::render(&worker.engine, run.obj, run.program, &rec, &r));
        if !run.ordered_output {
            r.output = Vec::new();
        }
        (r, executor)
    } else {
        run_frame_executed(&mut worker.engine, &input, &mut NoTrace)
    };
    match executor {
        Some(Executor::Interpreter) => worker.interpreted += 1,
        Some(Executor::Jit) => worker.compiled += 1,
        None => {}
    }
    r
}

/// Ordered per-packet outputs: JSON lines and per-verdict pcaps.
struct Sink {
    json: Option<(PathBuf, std::io::BufWriter<std::fs::File>)>,
    /// Per-verdict pcaps, with their paths for messages.
    writers: BTreeMap<String, (PathBuf, PcapFileWriter)>,
}

impl Sink {
    fn open(opts: &ReplayOptions) -> Result<Sink> {
        let json = match &opts.json {
            Some(p) => Some((
                p.clone(),
                std::io::BufWriter::new(
                    std::fs::File::create(p)
                        .with_context(|| format!("creating JSON output {}", p.display()))?,
                ),
            )),
            None => None,
        };
        let mut writers = BTreeMap::new();
        for (verdict, path) in &opts.write_pcap {
            writers.insert(
                verdict.to_uppercase(),
                (
                    path.clone(),
                    PcapFileWriter::create(path, TsPrecision::Nanosecond)
                        .with_context(|| format!("creating {}", path.display()))?,
                ),
            );
        }
        Ok(Sink { json, writers })
    }

    /// Writes a chunk's packets in capture order, taking each one's result
    /// from the worker that ran it.
    fn chunk(&mut self, capture: &str, chunk: &Chunk, workers: &[Worker]) -> Result<()> {
        let mut cursors = vec![0usize; workers.len()];
        for f in &chunk.frames {
            let result = &workers[f.queue].out[cursors[f.queue]];
            cursors[f.queue] += 1;
            self.packet(capture, f, chunk.data(f), result)?;
        }
        Ok(())
    }

    fn packet(
        &mut self,
        capture: &str,
        f: &Frame,
        data: &[u8],
        result: &PacketResult,
    ) -> Result<()> {
        if !self.writers.is_empty() {
            if let Some((path, w)) = self.writers.get_mut(&result.verdict.label()) {
                if !result.output.is_empty() {
                    w.write(f.ts_ns, &result.output).with_context(|| {
                        format!("writing --write-pcap output {}", path.display())
                    })?;
                }
            }
        }
        if let Some((path, j)) = self.json.as_mut() {
            let line = PacketLine::new(
                capture,
                f.index,
                f.ts_ns,
                data,
                f.orig_len,
                f.truncated,
                f.class.to_string(),
                result,
            );
            serde_json::to_writer(&mut *j, &line)
                .map_err(std::io::Error::from)
                .and_then(|()| j.write_all(b"\n"))
                .with_context(|| format!("writing JSON output {}", path.display()))?;
        }
        Ok(())
    }

    fn finish(self) -> Result<()> {
        if let Some((path, mut j)) = self.json {
            j.flush().with_context(|| format!("writing JSON output {}", path.display()))?;
        }
        for (_, (path, w)) in self.writers {
            w.finish()
                .with_context(|| format!("finishing --write-pcap output {}", path.display()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EngineConfig;
    use crate::loader::load_object;
    use crate::replay::replay;
    use std::path::Path;

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    /// The firewall's blocklist as pcapgen's firewall profile defines it
    /// (192.0.2.66, 2001:db8::66, TCP/UDP ports 23, 445, 3389), so its
    /// verdicts are a mix of PASS and DROP.
    fn firewall_maps(e: &mut Engine) {
        let one = [1u8];
        let maps = e.maps_mut();
        maps.by_name("blocked_v4").unwrap().update(&[192, 0, 2, 66], &one, 0, None);
        let mut v6 = [0u8; 16];
        v6[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        v6[15] = 0x66;
        maps.by_name("blocked_v6").unwrap().update(&v6, &one, 0, None);
        for port in crate::pcapgen::firewall::BLOCKED_DST_PORTS {
            for proto in [6u8, 17] {
                let p = port.to_le_bytes();
                maps.by_name("blocked_ports").unwrap().update(
                    &[p[0], p[1], proto, 0],
                    &one,
                    0,
                    None,
                );
            }
        }
    }

    fn engine_for(obj: &Object, cpu: usize, ncpus: usize) -> Engine {
        let mut e =
            Engine::new(obj, None, EngineConfig { cpu, ncpus, ..Default::default() }).unwrap();
        if obj.maps.iter().any(|m| m.name == "blocked_v4") {
            firewall_maps(&mut e);
        }
        e.snapshot_maps();
        e
    }

    fn captures() -> Vec<PathBuf> {
        vec![root().join("pcaps/firewall-2k.pcap"), root().join("pcaps/mixed-2k.pcap")]
    }

    fn opts(json: Option<PathBuf>) -> ReplayOptions {
        ReplayOptions { ingress_ifindex: 1, json, ..Default::default() }
    }

    fn tmp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("xdpqual-par-{}-{name}", std::process::id()))
    }

    /// The serial reference loop's summary and JSON lines.
    fn serial(obj: &Object) -> (String, String) {
        let mut e = engine_for(obj, 0, 1);
        let j = tmp(&format!("{}-serial.jsonl", obj.programs[0].name));
        let name = obj.programs[0].name.clone();
        let r = replay(&mut e, obj, &name, &captures(), &opts(Some(j.clone()))).unwrap();
        let lines = std::fs::read_to_string(&j).unwrap();
        std::fs::remove_file(j).unwrap();
        (serde_json::to_string(&r.summary).unwrap(), lines)
    }

    fn parallel(obj: &Object, threads: usize, allow: bool) -> (String, String, ParallelReport) {
        let name = obj.programs[0].name.clone();
        let p = plan(obj, &ParallelOptions { threads, allow_shared_state: allow });
        let j = tmp(&format!("{name}-par{threads}-{allow}.jsonl"));
        let build = |cpu: usize, n: usize| Ok(engine_for(obj, cpu, n));
        let r =
            replay_parallel(obj, &name, &build, &captures(), &opts(Some(j.clone())), p).unwrap();
        let lines = std::fs::read_to_string(&j).unwrap();
        std::fs::remove_file(j).unwrap();
        (serde_json::to_string(&r.summary).unwrap(), lines, r)
    }

    /// firewall keeps its only written state in a PERCPU_ARRAY: any split
    /// gives the serial loop's summary and per-packet lines, byte for byte,
    /// and the per-CPU counters summed over workers equal the serial ones.
    #[test]
    fn firewall_is_identical_at_any_thread_count() {
        let obj = load_object(&root().join("corpus/build/firewall.v3.o")).unwrap();
        assert!(shared_state_uses(&obj).is_empty(), "{:?}", shared_state_uses(&obj));
        let (sum1, lines1) = serial(&obj);
        assert!(
            sum1.contains("\"DROP\"") && sum1.contains("\"PASS\""),
            "the blocklist should both drop and pass: {sum1}"
        );
        let mut serial_engine = engine_for(&obj, 0, 1);
        let name = obj.programs[0].name.clone();
        replay(&mut serial_engine, &obj, &name, &captures(), &opts(None)).unwrap();
        let stats_total = |e: &Engine| -> Vec<u64> {
            let m = e.maps().maps.iter().find(|m| m.def.name == "stats").unwrap();
            m.entries()
                .iter()
                .map(|en| {
                    en.values.iter().map(|v| u64::from_le_bytes(v[..8].try_into().unwrap())).sum()
                })
                .collect()
        };
        let want = stats_total(&serial_engine);
        for threads in [1, 2, 4] {
            let (sum, lines, report) = parallel(&obj, threads, false);
            assert_eq!(report.plan.workers, threads);
            assert_eq!(sum, sum1, "{threads} threads: summary differs");
            assert!(lines == lines1, "{threads} threads: per-packet lines differ");
            if threads > 1 {
                let per_worker: Vec<u64> =
                    report.engines.iter().map(|e| stats_total(e).iter().sum()).collect();
                assert!(
                    per_worker.iter().all(|&n| n > 0),
                    "RSS should give every worker packets: {per_worker:?}"
                );
            }
            let merged = report.merged_engine().unwrap();
            assert_eq!(
                stats_total(&merged),
                want,
                "{threads} threads: per-CPU stats summed over CPUs"
            );
        }
    }

    /// Counting from batches (no per-packet output asked for) gives the
    /// serial per-packet loop's summary and map contents, for every corpus
    /// program on the interpreter and the JIT: the batch path is only
    /// faster, never different.
    #[test]
    fn batched_counting_equals_the_serial_loop_on_the_corpus() {
        let mut programs = 0;
        for entry in std::fs::read_dir(root().join("corpus/build")).unwrap() {
            let path = entry.unwrap().path();
            if !path.to_string_lossy().ends_with(".v3.o") {
                continue;
            }
            let obj = load_object(&path).unwrap();
            let name = obj.programs[0].name.clone();
            for jit in [false, true] {
                let make = |_cpu: usize, _n: usize| {
                    let mut e =
                        Engine::new(&obj, None, EngineConfig { jit, ..Default::default() })?;
                    if obj.maps.iter().any(|m| m.name == "blocked_v4") {
                        firewall_maps(&mut e);
                    }
                    Ok(e)
                };
                let mut serial_engine = make(0, 1).unwrap();
                let serial =
                    replay(&mut serial_engine, &obj, &name, &captures(), &opts(None)).unwrap();
                let p = plan(&obj, &ParallelOptions { threads: 1, allow_shared_state: false });
                let batched =
                    replay_parallel(&obj, &name, &make, &captures(), &opts(None), p).unwrap();
                let what = format!("{} (jit: {jit})", path.display());
                assert_eq!(
                    serde_json::to_string(&batched.summary).unwrap(),
                    serde_json::to_string(&serial.summary).unwrap(),
                    "{what}: summary"
                );
                let dump = |e: &Engine| {
                    format!("{:?}", e.maps().maps.iter().map(|m| m.entries()).collect::<Vec<_>>())
                };
                assert_eq!(dump(&batched.engines[0]), dump(&serial_engine), "{what}: maps");
            }
            programs += 1;
        }
        assert!(programs >= 14, "only {programs} corpus programs found");
    }

    /// Counting (no per-packet output) at any thread count, the workers
    /// taking chunks at their own pace, gives the serial loop's summary and
    /// per-CPU counters. The generated capture is large enough (about 40
    /// capture buffers) that workers run ahead of each other and chunks
    /// are recycled; the mixed capture brings VLAN tags, ARP and broken
    /// frames, and the one that cannot be opened an error between the two.
    #[test]
    fn counting_at_any_thread_count_equals_the_serial_loop() {
        let obj = load_object(&root().join("corpus/build/firewall.v3.o")).unwrap();
        let big = tmp("firewall-120k.pcap");
        crate::pcapgen::write_profile_pcap(
            &big,
            crate::pcapgen::Profile::Firewall,
            120_000,
            7,
            TsPrecision::Nanosecond,
        )
        .unwrap();
        let caps = vec![big.clone(), tmp("no-such.pcap"), root().join("pcaps/mixed-2k.pcap")];
        let name = obj.programs[0].name.clone();
        let mut serial_engine = engine_for(&obj, 0, 1);
        let serial = replay(&mut serial_engine, &obj, &name, &caps, &opts(None)).unwrap();
        let want = serde_json::to_string(&serial.summary).unwrap();
        assert!(want.contains("\"DROP\"") && want.contains("\"error\":\""), "{want}");
        let stats = |e: &Engine| -> Vec<Vec<u8>> {
            let m = e.maps().maps.iter().find(|m| m.def.name == "stats").unwrap();
            m.entries().iter().map(|en| en.values.concat()).collect()
        };
        for threads in [1, 2, 3, 4] {
            let p = plan(&obj, &ParallelOptions { threads, allow_shared_state: false });
            let build = |cpu: usize, n: usize| Ok(engine_for(&obj, cpu, n));
            let r = replay_parallel(&obj, &name, &build, &caps, &opts(None), p).unwrap();
            assert_eq!(r.engines.len(), threads);
            assert_eq!(
                serde_json::to_string(&r.summary).unwrap(),
                want,
                "{threads} threads: summary"
            );
            let merged = r.merged_engine().unwrap();
            // CPU 0 of the serial run saw every packet; the split's CPUs
            // together saw the same, so the sums per entry agree.
            let sum = |e: &Engine| -> Vec<u64> {
                let m = e.maps().maps.iter().find(|m| m.def.name == "stats").unwrap();
                m.entries()
                    .iter()
                    .map(|en| {
                        en.values
                            .iter()
                            .map(|v| u64::from_le_bytes(v[..8].try_into().unwrap()))
                            .sum()
                    })
                    .collect()
            };
            assert_eq!(sum(&merged), sum(&serial_engine), "{threads} threads: stats");
            if threads == 1 {
                assert_eq!(stats(&merged), stats(&serial_engine));
            }
        }
        std::fs::remove_file(big).unwrap();
    }

    /// The Toeplitz table gives nic-model's hash (the definition) for IPv4
    /// and IPv6 flows with and without ports, at several queue counts.
    #[test]
    fn rss_table_agrees_with_the_toeplitz_definition() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for queues in [2u16, 3, 4, 128] {
            let table = IndirectionTable::round_robin(queues).unwrap();
            let rss = Rss::new(table.clone()).unwrap();
            let mut seen = std::collections::BTreeSet::new();
            for i in 0..2000 {
                let (a, b) = (next(), next());
                let (src, dst) = if i % 2 == 0 {
                    (
                        std::net::IpAddr::from((a as u32).to_be_bytes()),
                        std::net::IpAddr::from(((a >> 32) as u32).to_be_bytes()),
                    )
                } else {
                    let wide = |v: u64, w: u64| {
                        std::net::IpAddr::from(
                            ((u128::from(v) << 64) | u128::from(w)).to_be_bytes(),
                        )
                    };
                    (wide(a, b), wide(b, next()))
                };
                let t = FiveTuple {
                    src,
                    dst,
                    protocol: [6u8, 17, 1, 58][i % 4],
                    src_port: b as u16,
                    dst_port: (b >> 16) as u16,
                };
                let q = rss.queue(Some(&t));
                assert_eq!(q, rss_queue(Some(&t), &table), "{t:?}, {queues} queues");
                seen.insert(q);
            }
            assert_eq!(seen.len(), usize::from(queues), "every queue should be hit");
            assert_eq!(rss.queue(None), 0);
        }
    }

    /// Every protocol class has its counting slots read back: the match
    /// has no wildcard, so a new class fails to compile here until it is
    /// given its place in `PROTO_CLASSES`.
    #[test]
    fn every_protocol_class_is_listed() {
        let position = |p: ProtoClass| match p {
            ProtoClass::Tcp => 0,
            ProtoClass::Udp => 1,
            ProtoClass::Icmpv4 => 2,
            ProtoClass::Icmpv6 => 3,
            ProtoClass::Ipv4 => 4,
            ProtoClass::Ipv6 => 5,
            ProtoClass::Arp => 6,
            ProtoClass::Other => 7,
            ProtoClass::Unparseable => 8,
        };
        for (i, p) in PROTO_CLASSES.into_iter().enumerate() {
            assert_eq!(position(p), i, "{p:?}");
        }
        assert_eq!(PROTO_CLASSES.len(), 9);
    }

    /// counters does atomics on a value of the ARRAY `totals`: shared state,
    /// so it runs on one worker unless the split is forced, and a forced
    /// split cannot dump maps.
    #[test]
    fn counters_shares_state() {
        let obj = load_object(&root().join("corpus/build/counters.v3.o")).unwrap();
        let uses = shared_state_uses(&obj);
        assert!(
            uses.iter()
                .any(|u| u.what.contains("atomic operation on a value of ARRAY map 'totals'")),
            "{uses:?}"
        );
        assert!(
            !uses.iter().any(|u| u.what.contains("proto_stats")),
            "proto_stats is per-CPU: {uses:?}"
        );
        let p = plan(&obj, &ParallelOptions { threads: 4, allow_shared_state: false });
        assert_eq!(p.workers, 1);
        assert!(p.downgraded.as_deref().unwrap().contains("--parallel-unsafe"));
        let (sum1, lines1) = serial(&obj);
        let (sum, lines, report) = parallel(&obj, 4, false);
        assert_eq!((sum, lines == lines1), (sum1, true));
        assert_eq!(report.engines.len(), 1);
        let (_, _, forced) = parallel(&obj, 4, true);
        assert_eq!(forced.engines.len(), 4);
        let err = forced.merged_engine().err().unwrap().to_string();
        assert!(err.contains("--threads 1"), "{err}");
    }

    /// Microsoft's RSS verification vector: 66.9.149.187:2794 ->
    /// 161.142.100.80:1766 over TCP hashes to 0x51ccc178; with 128 queues
    /// the default table sends it to queue 0x78 (the hash's low 7 bits).
    #[test]
    fn rss_uses_the_four_tuple_in_network_order() {
        let t = FiveTuple {
            src: "66.9.149.187".parse().unwrap(),
            dst: "161.142.100.80".parse().unwrap(),
            protocol: 6,
            src_port: 2794,
            dst_port: 1766,
        };
        let table = IndirectionTable::round_robin(128).unwrap();
        assert_eq!(rss_queue(Some(&t), &table), 0x78);
        // Same vector without ports (ICMP): the 2-tuple hash is 0x323e8fc2.
        let icmp = FiveTuple { protocol: 1, src_port: 0, dst_port: 0, ..t };
        assert_eq!(rss_queue(Some(&icmp), &table), 0x42);
        assert_eq!(rss_queue(None, &table), 0);
    }
}

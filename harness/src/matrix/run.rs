//! Running the matrix: prepare kernels, agents and the job, boot the cells
//! in parallel (bounded by cores and memory), compare each with the engine.

use super::apt::AptTree;
use super::compare::{self, Agreement};
use super::job::{self, Input};
use super::protocol::{decode_frames, GuestLoad, GuestReport};
use super::qemu::{self, Accel, VmSpec};
use super::spec::{Arch, Cell, KernelSource};
use super::{agent, initramfs, kernel, sources};
use crate::engine::KernelRelease;
use crate::mapfile::MapInit;
use crate::program::{Object, Program};
use anyhow::{Context, Result};
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a KVM guest may stay silent before KVM is declared broken
/// (a healthy one reaches /init in well under a second).
const KVM_HELLO: Duration = Duration::from_secs(8);

/// Whether KVM worked, once probed in this process.
static KVM_VERDICT: std::sync::OnceLock<(bool, String)> = std::sync::OnceLock::new();

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccelChoice {
    /// KVM for the host's own architecture when it works, else TCG.
    Auto,
    Tcg,
}

pub struct Options {
    pub cells: Vec<Cell>,
    pub cache: PathBuf,
    /// Debian mirror URI; `None`: the one in the system's apt sources.
    pub mirror: Option<String>,
    pub refresh: bool,
    pub jobs: Option<usize>,
    /// Per cell, boot to power-off.
    pub timeout: Duration,
    pub agent_dir: Option<PathBuf>,
    pub maps: Vec<MapInit>,
    pub rx_queue_index: u32,
    pub max_packets: Option<usize>,
    pub accel: AccelChoice,
    /// How the caller loaded the object: a guest that resolves the
    /// program's CO-RE relocations against its own kernel's BTF loads the
    /// object the same way (`job::core_job`).
    pub load: crate::loader::LoadOptions,
}

impl Options {
    /// How long one cell may take, boot to power-off, unless the caller
    /// says otherwise: a TCG guest boots a Debian kernel in under a minute
    /// on this machine kind, so twice that is a hang.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

    /// Runs on `cells` with kernels and agents cached under `cache`, and
    /// everything else as `xdpqual matrix` does by default: the system's
    /// Debian mirror, no refresh, one job per core, the default timeout, no
    /// map files, queue 0, every packet, KVM when it works, and the object
    /// loaded with default options.
    pub fn new(cells: Vec<Cell>, cache: PathBuf) -> Options {
        Options {
            cells,
            cache,
            mirror: None,
            refresh: false,
            jobs: None,
            timeout: Self::DEFAULT_TIMEOUT,
            agent_dir: None,
            maps: Vec::new(),
            rx_queue_index: 0,
            max_packets: None,
            accel: AccelChoice::Auto,
            load: crate::loader::LoadOptions::default(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CellStatus {
    /// Loaded, and every deterministic packet and map agrees.
    Agrees,
    Disagrees,
    /// The verifier refused the program.
    Refused,
    /// No verdict: kernel unavailable, boot failed, guest hung or panicked.
    Failed,
}

#[derive(Clone, Debug, Serialize)]
pub struct CellReport {
    pub name: String,
    pub arch: Arch,
    pub required: bool,
    pub kernel: String,
    pub kernel_release: Option<String>,
    pub accel: Option<Accel>,
    pub status: CellStatus,
    /// Refusal or failure, in one line.
    pub error: Option<String>,
    pub verified_insns: Option<u32>,
    pub jited_len: Option<u32>,
    pub xlated_len: Option<u32>,
    pub agreement: Option<Agreement>,
    pub notes: Vec<String>,
    /// Seconds from QEMU start to the agent's first line.
    pub boot_s: Option<f64>,
    pub wall_s: f64,
    /// The console's last lines for a failed cell.
    pub console_tail: Option<String>,
    /// The guest verifier's last log lines for a refusal.
    pub verifier_log_tail: Option<String>,
    /// An offload cell's verdicts: the kernel's next to the profile's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offload: Option<super::offload::OffloadComparison>,
    /// A program with CO-RE relocations: the BTF this cell resolved them
    /// against and what each one became.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub core: Option<CellCore>,
}

/// The CO-RE relocation a cell made against its own kernel's BTF.
#[derive(Clone, Debug, Serialize)]
pub struct CellCore {
    /// The guest file (`/sys/kernel/btf/vmlinux`).
    pub btf: String,
    pub btf_bytes: u64,
    pub btf_sha256: String,
    /// Each relocation as `inspect` prints it.
    pub relocations: Vec<String>,
}

impl CellReport {
    /// Whether this cell makes the run fail.
    pub fn fails_run(&self) -> bool {
        self.required && self.status != CellStatus::Agrees
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct MatrixReport {
    pub schema: &'static str,
    pub object: String,
    pub program: String,
    pub packets: usize,
    pub capture_errors: Vec<String>,
    pub kvm: String,
    pub cells: Vec<CellReport>,
    pub wall_s: f64,
}

impl MatrixReport {
    pub fn passes(&self) -> bool {
        !self.cells.iter().any(CellReport::fails_run)
    }
}

fn failed(cell: &Cell, kernel: String, error: String) -> CellReport {
    CellReport {
        name: cell.name.clone(),
        arch: cell.arch,
        required: cell.required,
        kernel,
        kernel_release: None,
        accel: None,
        status: CellStatus::Failed,
        error: Some(error),
        verified_insns: None,
        jited_len: None,
        xlated_len: None,
        agreement: None,
        notes: Vec::new(),
        boot_s: None,
        wall_s: 0.0,
        console_tail: None,
        verifier_log_tail: None,
        offload: None,
        core: None,
    }
}

/// Parallel guests: one per core, and as many as memory holds.
fn parallelism(wanted: Option<usize>, cells: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mem_mb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemAvailable:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(1024, |kb| kb / 1024);
    // QEMU itself needs ~150 MiB beside the guest's RAM.
    let by_mem = (mem_mb / (qemu::MEMORY_MB as u64 + 150)).max(1) as usize;
    wanted.unwrap_or(cores.min(by_mem)).clamp(1, cells.max(1))
}

/// What every cell shares.
struct Prepared<'a> {
    obj: &'a Object,
    program: &'a Program,
    inputs: Vec<Input>,
    opts: &'a Options,
    nondet_prog: bool,
    /// The program has CO-RE relocations that each cell resolves itself.
    per_cell_core: bool,
    /// Engine references, one per guest model (CPUs, release, byte order)
    /// and, for a program relocated per cell, per relocated instruction
    /// stream (empty otherwise): cells whose kernels' BTF resolve the
    /// program alike share one.
    references: Mutex<BTreeMap<RefKey, std::sync::Arc<job::Reference>>>,
}

type RefKey = (job::GuestModel, Vec<u8>);

struct Ready {
    cell: Cell,
    kernel: kernel::KernelImage,
    qemu: PathBuf,
    initrd: PathBuf,
}

pub fn run(
    obj: &Object,
    program: &Program,
    captures: &[PathBuf],
    opts: &Options,
) -> Result<MatrixReport> {
    let start = Instant::now();
    let (inputs, capture_errors) = job::read_inputs(captures, opts.max_packets)?;
    let core = job::core_job(obj, &opts.load)?;
    // One job per guest byte order: map-file integers become bytes in the
    // guest's order. Offload cells run no packets: each job also comes
    // without them, asking for the offload path.
    // The little-endian job failing is an error of the run, as before; a
    // big-endian one (map files the big-endian engine refuses) fails only
    // the big-endian cells, so the rest of the matrix still runs.
    type JobBytes = (Vec<u8>, Vec<u8>);
    let mut jobs: BTreeMap<bool, std::result::Result<JobBytes, String>> = BTreeMap::new();
    for big in opts.cells.iter().map(|c| c.arch.big_endian()) {
        if jobs.contains_key(&big) {
            continue;
        }
        let built = job::build(obj, program, &opts.maps, &inputs, opts.rx_queue_index, big)
            // Big-endian guests run the host-relocated bytes: the loader
            // reads little-endian target BTF only (docs/design.md, Limits).
            .map(|j| super::protocol::Job { core: if big { None } else { core.clone() }, ..j })
            .and_then(|j| {
                let packets = serde_json::to_vec(&j).context("serialising the guest job")?;
                let offload_job = super::protocol::Job {
                    packets: Vec::new(),
                    offload: Some(super::protocol::OffloadJob::Netdevsim),
                    ..j
                };
                let offload = serde_json::to_vec(&offload_job)
                    .context("serialising the guest offload job")?;
                Ok((packets, offload))
            });
        let built = match built {
            Ok(b) => Ok(b),
            Err(e) if big => Err(format!("preparing the big-endian job: {e:#}")),
            Err(e) => return Err(e),
        };
        jobs.insert(big, built);
    }

    // Per architecture and kind (offload or not): QEMU (a missing one is an
    // error up front) and the initramfs with that architecture's agent.
    type ArchFiles = std::result::Result<(PathBuf, PathBuf), String>;
    let mut arch_files: BTreeMap<(Arch, bool), ArchFiles> = BTreeMap::new();
    for key in opts.cells.iter().map(|c| (c.arch, c.offload.is_some())) {
        if arch_files.contains_key(&key) {
            continue;
        }
        let q = qemu::find(key.0)?;
        let files = match &jobs[&key.0.big_endian()] {
            Ok((packets, offload)) => {
                let agent = agent::agent_bytes(key.0, opts.agent_dir.as_deref(), &opts.cache)?;
                let bytes = if key.1 { offload } else { packets };
                Ok((q, initramfs::build(&opts.cache, &agent, bytes)?))
            }
            Err(e) => Err(e.clone()),
        };
        arch_files.insert(key, files);
    }

    // Kernels, one at a time (they share the apt tree and the network).
    let needs_apt = opts.cells.iter().any(|c| matches!(c.kernel, KernelSource::Debian { .. }));
    let mirror = match (&opts.mirror, needs_apt) {
        (Some(m), _) => m.trim_end_matches('/').to_string(),
        (None, true) => sources::system_mirror(Path::new("/etc/apt"))?,
        (None, false) => String::new(),
    };
    let suites: Vec<String> = opts
        .cells
        .iter()
        .filter_map(|c| match &c.kernel {
            KernelSource::Debian { suite, .. } => Some(suite.clone()),
            KernelSource::File(_) | KernelSource::Build { .. } => None,
        })
        .collect();
    let tree = AptTree::new(&opts.cache, &mirror, suites);
    if opts.refresh && needs_apt {
        tree.update(true)?;
    }
    let mut reports: Vec<Option<CellReport>> = vec![None; opts.cells.len()];
    let mut ready: Vec<(usize, Ready)> = Vec::new();
    // Per cell: its kernel (a download when not cached), then its boot.
    let bar = crate::util::progress::steps("cells", opts.cells.len() as u64);
    for (i, cell) in opts.cells.iter().enumerate() {
        bar.set_message(format!("{}: kernel ({})", cell.name, cell.kernel.describe()));
        if let Err(e) = &arch_files[&(cell.arch, cell.offload.is_some())] {
            reports[i] = Some(failed(cell, cell.kernel.describe(), e.clone()));
            bar.inc(1);
            continue;
        }
        match kernel::resolve(cell, &opts.cache, &tree, opts.refresh) {
            Ok(k) => {
                let (q, initrd) = arch_files[&(cell.arch, cell.offload.is_some())]
                    .clone()
                    .expect("checked above");
                ready.push((i, Ready { cell: cell.clone(), kernel: k, qemu: q, initrd }));
            }
            Err(e) => {
                reports[i] = Some(failed(cell, cell.kernel.describe(), e.to_string()));
                bar.inc(1);
            }
        }
    }

    let shared = Prepared {
        obj,
        program,
        inputs,
        opts,
        nondet_prog: job::calls_nondeterministic(program),
        per_cell_core: core.is_some(),
        references: Mutex::new(BTreeMap::new()),
    };

    // KVM: tried on the first cell of the host's architecture; a guest
    // that stays silent means KVM does not work here (seen: /dev/kvm
    // present, guest hangs with no output), and every cell uses TCG.
    let host = Arch::host();
    let mut kvm = "not used (no cell of the host architecture)".to_string();
    let mut kvm_ok = false;
    let mut queue: VecDeque<(usize, Ready)> = ready.into();
    if opts.accel == AccelChoice::Tcg {
        kvm = "not used (--tcg)".into();
    } else if let Some(pos) = queue.iter().position(|(_, r)| Some(r.cell.arch) == host) {
        if !qemu::kvm_openable() {
            kvm = "not used (/dev/kvm cannot be opened)".into();
        } else if let Some((ok, why)) = KVM_VERDICT.get() {
            // Probed earlier in this process: do not pay the probe again.
            kvm_ok = *ok;
            kvm = why.clone();
        } else {
            let (i, r) = queue.remove(pos).expect("position is valid");
            bar.set_message(format!("{}: booting (KVM probe), running the job", r.cell.name));
            let rep = run_cell(&shared, &r, Accel::Kvm);
            if rep.boot_s.is_some() {
                kvm_ok = true;
                kvm = "used for the host architecture".into();
                reports[i] = Some(rep);
                bar.inc(1);
            } else {
                // Seen here: `-cpu host` aborts at once on an MSR the
                // (nested) KVM refuses; other models hang silently.
                let qemu_says = rep
                    .console_tail
                    .as_deref()
                    .and_then(|t| t.split("[qemu stderr] ").nth(1))
                    .and_then(|e| e.lines().next())
                    .map(|l| format!("; QEMU: {l}"))
                    .unwrap_or_default();
                kvm = format!(
                    "/dev/kvm is present but a KVM guest ({}) did not reach /init within {}s ({}{qemu_says}); falling back to TCG",
                    r.cell.name,
                    KVM_HELLO.as_secs(),
                    rep.error.as_deref().unwrap_or("no output")
                );
                queue.push_front((i, r));
            }
            let _ = KVM_VERDICT.set((kvm_ok, kvm.clone()));
        }
    }

    let workers = parallelism(opts.jobs, queue.len());
    let queue = Mutex::new(queue);
    let done = Mutex::new(Vec::new());
    // The cells booted now, for the bar's message.
    let booting = Mutex::new(std::collections::BTreeSet::<String>::new());
    let show = |b: &std::collections::BTreeSet<String>| {
        let names: Vec<&str> = b.iter().map(String::as_str).collect();
        bar.set_message(format!("booting, running the job: {}", names.join(", ")));
    };
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let Some((i, r)) = queue.lock().expect("queue lock").pop_front() else { break };
                let accel =
                    if kvm_ok && Some(r.cell.arch) == host { Accel::Kvm } else { Accel::Tcg };
                let how = if matches!(accel, Accel::Kvm) { "KVM" } else { "TCG" };
                let label = format!("{} ({how})", r.cell.name);
                {
                    let mut b = booting.lock().expect("booting lock");
                    b.insert(label.clone());
                    show(&b);
                }
                let rep = run_cell(&shared, &r, accel);
                {
                    let mut b = booting.lock().expect("booting lock");
                    b.remove(&label);
                    show(&b);
                }
                bar.inc(1);
                done.lock().expect("done lock").push((i, rep));
            });
        }
    });
    drop(bar);
    for (i, rep) in done.into_inner().expect("done lock") {
        reports[i] = Some(rep);
    }
    Ok(MatrixReport {
        schema: "xdpqual.matrix/1",
        object: obj.path.display().to_string(),
        program: program.name.clone(),
        packets: shared.inputs.len(),
        capture_errors,
        kvm,
        cells: reports.into_iter().map(|r| r.expect("every cell has a report")).collect(),
        wall_s: start.elapsed().as_secs_f64(),
    })
}

/// The engine's reference for `guest`; `relocated`: the instructions the
/// guest relocated itself (CO-RE), which the engine then runs instead of
/// the host's.
fn reference(
    p: &Prepared,
    guest: job::GuestModel,
    relocated: Option<&[Vec<u8>]>,
) -> Result<std::sync::Arc<job::Reference>> {
    let key: RefKey = (guest, relocated.map(|r| r.concat()).unwrap_or_default());
    if let Some(r) = p.references.lock().expect("reference lock").get(&key) {
        return Ok(r.clone());
    }
    let own;
    let (obj, program) = match relocated {
        Some(insns) => {
            own = job::relocated(p.obj, p.program, insns)?;
            (&own.0, &own.1)
        }
        None => (p.obj, p.program),
    };
    let r = std::sync::Arc::new(job::reference(
        obj,
        program,
        &p.opts.maps,
        &p.inputs,
        guest,
        p.opts.rx_queue_index,
    )?);
    p.references.lock().expect("reference lock").insert(key, r.clone());
    Ok(r)
}

fn run_cell(p: &Prepared, r: &Ready, accel: Accel) -> CellReport {
    let mut rep = failed(&r.cell, r.kernel.label.clone(), String::new());
    rep.accel = Some(accel);
    let spec = VmSpec {
        qemu: &r.qemu,
        arch: r.cell.arch,
        kernel: &r.kernel.path,
        initrd: &r.initrd,
        accel,
        hello_timeout: if accel == Accel::Kvm { KVM_HELLO } else { p.opts.timeout },
        timeout: p.opts.timeout,
    };
    let vm = match qemu::boot(&spec) {
        Ok(vm) => vm,
        Err(e) => {
            rep.error = Some(e.to_string());
            return rep;
        }
    };
    rep.wall_s = vm.wall.as_secs_f64();
    rep.boot_s = vm.hello.map(|d| d.as_secs_f64());
    let guest: GuestReport = match decode_frames(&vm.console).map_err(|e| e.to_string()).and_then(
        |b| serde_json::from_slice(&b).map_err(|e| format!("result frames do not parse: {e}")),
    ) {
        Ok(g) => g,
        Err(e) => {
            rep.error = Some(if vm.timed_out {
                match vm.hello {
                    None => format!(
                        "guest never reached /init within {:.0}s (hung boot)",
                        spec.hello_timeout.as_secs_f64()
                    ),
                    Some(_) => {
                        format!("guest did not finish within {:.0}s", spec.timeout.as_secs_f64())
                    }
                }
            } else if vm.hello.is_none() {
                let status =
                    vm.exit.map_or("killed by a signal".to_string(), |c| format!("status {c}"));
                format!("QEMU exited ({status}) before the guest reached /init: a QEMU error, a kernel panic or a bad kernel image (see the console tail)")
            } else {
                format!("guest exited without a readable report ({e}): agent crash or kernel panic")
            });
            rep.console_tail = Some(vm.tail());
            return rep;
        }
    };
    rep.kernel_release = Some(guest.kernel_release.clone()).filter(|s| !s.is_empty());
    rep.notes = guest.notes.clone();
    if matches!(r.cell.kernel, KernelSource::Build { .. }) {
        rep.notes.push(format!("kernel {}", r.kernel.label));
    }
    let relocated = match &guest.core {
        Some(Ok(c)) => {
            rep.core = Some(CellCore {
                btf: c.btf_path.clone(),
                btf_bytes: c.btf_bytes,
                btf_sha256: c.btf_sha256.clone(),
                relocations: c.relocations.clone(),
            });
            Some(c.insns.as_slice())
        }
        Some(Err(e)) => {
            rep.error = Some(e.clone());
            return rep;
        }
        None if p.per_cell_core && r.cell.arch.big_endian() => {
            rep.notes.push(
                "CO-RE relocations resolved against the host's BTF, not this kernel's: \
                 relocating against a big-endian kernel's BTF is not supported"
                    .into(),
            );
            None
        }
        None if p.per_cell_core => {
            rep.error = Some(
                "the program has CO-RE relocations and the guest agent did not resolve them \
                 against its kernel's BTF (an older agent?)"
                    .into(),
            );
            return rep;
        }
        None => None,
    };
    if let Some(device) = r.cell.offload {
        offload_verdict(p, &mut rep, device, &guest, &vm, relocated);
        return rep;
    }
    match &guest.load {
        GuestLoad::Failed { message } => {
            rep.error = Some(message.clone());
            rep.console_tail = Some(vm.tail());
        }
        GuestLoad::Rejected { errno, first_error_line, insn, log_tail } => {
            rep.status = CellStatus::Refused;
            let at = insn
                .and_then(|i| {
                    p.program
                        .lines
                        .lookup(i)
                        .map(|l| format!(" (insn {i}, {}:{})", l.file, l.line))
                        .or(Some(format!(" (insn {i})")))
                })
                .unwrap_or_default();
            rep.error = Some(format!(
                "{}{at}",
                first_error_line.clone().unwrap_or_else(|| format!("refused with {errno}"))
            ));
            rep.verifier_log_tail = Some(log_tail.clone());
        }
        GuestLoad::Loaded { verified_insns, xlated_len, jited_len, rejected_others } => {
            rep.verified_insns = *verified_insns;
            rep.xlated_len = Some(*xlated_len);
            rep.jited_len = Some(*jited_len);
            if !rejected_others.is_empty() {
                rep.notes.push(format!(
                    "other programs of the object refused (tail calls to them fall through): {}",
                    rejected_others.join(", ")
                ));
            }
            let ncpus = guest.possible_cpus.unwrap_or(1);
            let big = r.cell.arch.big_endian();
            if big != p.obj.byte_order.is_big() {
                // The kernel runs the instructions with its own memory
                // order; so does the engine it is compared with.
                rep.notes.push(format!(
                    "the object is {} ({}) and this guest is {}: both the kernel and the engine run its instructions with {} memory, which is what the program does on such a machine, not what it was written for",
                    p.obj.byte_order.clang_target(),
                    p.obj.byte_order,
                    if big { "big-endian" } else { "little-endian" },
                    if big { "big-endian" } else { "little-endian" },
                ));
            }
            // The engine models the release the guest booted; an unreadable
            // release (never seen) falls back to the newest modelled.
            let kernel = KernelRelease::parse(&guest.kernel_release)
                .unwrap_or(KernelRelease::NEWEST_MODELLED);
            let arch = r.cell.arch.machine();
            match reference(p, job::GuestModel { ncpus, kernel, big, arch }, relocated) {
                Err(e) => rep.error = Some(format!("engine: {e:#}")),
                Ok(reference) => {
                    let a = compare::compare(
                        &p.inputs,
                        &reference,
                        &guest.packets,
                        &guest.maps,
                        p.nondet_prog,
                        guest.ran_without_ctx,
                        r.cell.arch.test_run_linear(),
                    );
                    rep.status =
                        if a.agrees() { CellStatus::Agrees } else { CellStatus::Disagrees };
                    rep.error = None;
                    rep.agreement = Some(a);
                }
            }
        }
    }
    rep
}

/// An offload cell: the kernel's offload verdict against the profile's.
fn offload_verdict(
    p: &Prepared,
    rep: &mut CellReport,
    device: super::spec::Offload,
    guest: &GuestReport,
    vm: &qemu::VmResult,
    relocated: Option<&[Vec<u8>]>,
) {
    if let GuestLoad::Loaded { verified_insns, xlated_len, jited_len, .. } = &guest.load {
        rep.verified_insns = *verified_insns;
        rep.xlated_len = Some(*xlated_len);
        rep.jited_len = Some(*jited_len);
    }
    let offload = match &guest.offload {
        Some(Ok(o)) => o,
        Some(Err(e)) => {
            rep.error = Some(format!("offload device: {e}"));
            rep.console_tail = Some(vm.tail());
            return;
        }
        None => {
            rep.error =
                Some("the guest agent did not run the offload path (an older agent?)".into());
            return;
        }
    };
    // The profile judges the instructions the guest kernel was offered.
    let own;
    let (obj, program) = match relocated.map(|r| job::relocated(p.obj, p.program, r)) {
        Some(Ok(o)) => {
            own = o;
            (&own.0, &own.1)
        }
        Some(Err(e)) => {
            rep.error = Some(format!("{e:#}"));
            return;
        }
        None => (p.obj, p.program),
    };
    match super::offload::compare(obj, program, device, guest, offload) {
        Ok(c) => {
            rep.status = if c.agrees { CellStatus::Agrees } else { CellStatus::Disagrees };
            rep.error = None;
            if !c.kernel.accepts {
                rep.verifier_log_tail = Some(c.kernel.verifier_log.clone());
            }
            rep.offload = Some(c);
        }
        Err(e) => rep.error = Some(format!("profile {}: {e:#}", device.profile())),
    }
}

/// The report as a table and per-cell details.
pub fn render(r: &MatrixReport) -> String {
    let mut s = format!(
        "matrix of {} ({}) on {} packets; KVM: {}\n",
        r.program, r.object, r.packets, r.kvm
    );
    s.push_str(&format!(
        "{:<14} {:<44} {:<5} {:<6} {:>8} {:>7} {:<28} {:>6} {:>6}\n",
        "cell", "kernel", "accel", "loads", "verified", "jited", "engine vs kernel", "boot", "wall"
    ));
    for c in &r.cells {
        let loads = match c.status {
            CellStatus::Agrees | CellStatus::Disagrees => "yes",
            CellStatus::Refused => "NO",
            CellStatus::Failed => "FAILED",
        };
        let agree = match (&c.agreement, &c.offload) {
            (_, Some(o)) if o.agrees => format!(
                "offload agree ({})",
                if o.kernel.accepts { "both accept" } else { "both refuse" }
            ),
            (_, Some(o)) => format!(
                "OFFLOAD MISMATCH (kernel {})",
                if o.kernel.accepts { "accepts" } else { "refuses" }
            ),
            (a, None) => match a {
                Some(a) if a.agrees() && a.explained + a.not_comparable > 0 => {
                    format!(
                        "agree {}/{} ({} expl, {} n/c)",
                        a.tally.agreed, a.packets, a.explained, a.not_comparable
                    )
                }
                Some(a) if a.agrees() && a.tally.nondeterministic == 0 => {
                    format!("agree {}/{}", a.tally.agreed, a.packets)
                }
                Some(a) if a.agrees() => {
                    format!(
                        "agree {}/{} ({} nondet)",
                        a.tally.agreed, a.packets, a.tally.nondeterministic
                    )
                }
                Some(a) => {
                    format!(
                        "DIFFER {} pkts {} maps",
                        a.tally.mismatch_count,
                        a.map_mismatches.len()
                    )
                }
                None => "-".into(),
            },
        };
        let opt = |v: Option<u32>| v.map_or("n/a".to_string(), |x| x.to_string());
        let kernel = c.kernel_release.as_deref().unwrap_or(&c.kernel);
        s.push_str(&format!(
            "{:<14} {:<44} {:<5} {:<6} {:>8} {:>7} {:<28} {:>6} {:>6}\n",
            c.name,
            kernel,
            c.accel.map_or("-".to_string(), |a| format!("{a:?}").to_lowercase()),
            loads,
            opt(c.verified_insns),
            opt(c.jited_len),
            agree,
            c.boot_s.map_or("-".to_string(), |b| format!("{b:.1}s")),
            format!("{:.1}s", c.wall_s),
        ));
        if let Some(e) = &c.error {
            s.push_str(&format!(
                "    {}: {}\n",
                if c.status == CellStatus::Refused { "verifier" } else { "error" },
                e
            ));
        }
    }
    for c in &r.cells {
        let mut lines = Vec::new();
        for n in &c.notes {
            lines.push(format!("note: {n}"));
        }
        if let Some(core) = &c.core {
            lines.push(format!(
                "CO-RE relocated against this kernel's {} ({} bytes, sha256 {}):",
                core.btf,
                core.btf_bytes,
                core.btf_sha256.get(..16).unwrap_or(&core.btf_sha256)
            ));
            for r in &core.relocations {
                lines.push(format!("  {r}"));
            }
        }
        if let Some(a) = &c.agreement {
            for m in &a.mismatches {
                lines.push(format!(
                    "MISMATCH {} packet {}: engine {} / kernel {}: {}",
                    m.capture, m.index, m.engine, m.kernel, m.detail
                ));
            }
            for e in &a.explanations {
                lines.push(format!("explained: {e}"));
            }
            for m in &a.map_mismatches {
                lines.push(format!("MAP MISMATCH {m}"));
            }
            for m in &a.map_not_comparable {
                lines.push(format!(
                    "map differs ({} packets not comparable, see above): {m}",
                    a.not_comparable
                ));
            }
            for m in &a.map_nondeterministic {
                lines.push(format!("map differs (program reads time or random numbers): {m}"));
            }
        }
        if let Some(o) = &c.offload {
            lines.push(format!("offload on {}: {}", o.kernel.device, o.line()));
            lines.push(format!("host verifier: {}", o.host_verifier));
            lines.push(format!(
                "profile `{}` is checked against this real kernel's offload path; the NFP and hXDP profiles are documentation-based",
                o.profile.profile
            ));
        }
        if let Some(t) = &c.console_tail {
            lines.push(format!("console tail:\n{}", t.trim_end()));
        }
        if !lines.is_empty() {
            s.push_str(&format!("[{}]\n", c.name));
            for l in lines {
                s.push_str(&format!("  {l}\n"));
            }
        }
    }
    s.push_str(&format!(
        "{} cells: {} agree, {} disagree, {} refuse, {} failed; {:.1}s\n",
        r.cells.len(),
        r.cells.iter().filter(|c| c.status == CellStatus::Agrees).count(),
        r.cells.iter().filter(|c| c.status == CellStatus::Disagrees).count(),
        r.cells.iter().filter(|c| c.status == CellStatus::Refused).count(),
        r.cells.iter().filter(|c| c.status == CellStatus::Failed).count(),
        r.wall_s
    ));
    s
}

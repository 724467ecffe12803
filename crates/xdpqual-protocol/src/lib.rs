//! What the host sends a guest (a [`Job`], as a file in the initramfs) and
//! what the guest agent sends back (a [`GuestReport`], framed on the serial
//! console).
//!
//! This crate is the wire format between two binaries built from the same
//! sources: `xdpqual` (the host, `harness/src/matrix`) and the static guest
//! agent (`crates/xdpqual-agent`). It is a crate of its own, rather than a module
//! of either side or of the kernel layer, so that both depend on it and on
//! nothing of each other, and so the kernel layer keeps one job (talking to
//! the kernel). It depends on nothing but `serde`, `thiserror`, `std` and
//! `xdpqual-object` (the map definitions a job carries), makes no system
//! calls, and builds for every guest target.
//!
//! The console also carries whatever the kernel prints, so a report travels
//! as lines `@@XQ1 <index>/<count> <crc32> <hex>`: each line says where it
//! belongs and carries the CRC-32 (IEEE, as zlib computes it) of its bytes,
//! and a reader takes the marker from anywhere in a line (a kernel message
//! printed without a newline may precede it). A frame that fails its
//! checksum, or a missing frame, makes the whole report unreadable: a cell
//! with a damaged report fails rather than showing partial results.

use serde::{Deserialize, Serialize};
use xdpqual_object::MapDef;

/// Starts every line the agent writes for the host.
pub const MAGIC: &str = "@@XQ1";
/// The agent's first line, written as soon as it runs: proof that the
/// kernel booted and reached `/init`.
pub const HELLO: &str = "@@XQ1 HELLO";
/// The agent's last line, after the frames.
pub const END: &str = "@@XQ1 END";
/// Payload bytes per frame line.
pub const FRAME_BYTES: usize = 2048;
/// Path of the job file inside the initramfs.
pub const JOB_PATH: &str = "/xdpqual-job.json";

/// Hex strings for byte vectors, so jobs and reports stay compact text
/// (the one hex module, `xdpqual_object::hex`).
pub use xdpqual_object::hex;

/// One program of the object, as the loader linked it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobProgram {
    pub name: String,
    pub section: String,
    pub frags: bool,
    /// `Program::insns` encoded little-endian (`isa::encode_le`), whatever
    /// the object's or the guest's byte order: the wire format is fixed.
    /// The agent decodes the slots and the kernel layer re-encodes them in
    /// the guest's own order (`xdpqual_kernel::sys::encode_native`), so a
    /// big-endian (s390x) kernel gets `bpfeb` slots. Everything else in a
    /// job is JSON numbers, or raw memory bytes (map keys and values,
    /// frames) that both sides use as they are.
    #[serde(with = "hex::hex_bytes")]
    pub insns: Vec<u8>,
}

/// One map entry to write before the first packet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapWrite {
    /// Index into `Job::maps`.
    pub map: usize,
    #[serde(with = "hex::hex_bytes")]
    pub key: Vec<u8>,
    /// The syscall value: per-CPU maps carry one 8-byte-aligned slot per
    /// possible CPU.
    #[serde(with = "hex::hex_bytes")]
    pub value: Vec<u8>,
    /// True for per-CPU maps whose value holds one CPU's slot: the agent
    /// repeats it for every possible CPU of its kernel.
    pub per_cpu_broadcast: bool,
}

/// A PROG_ARRAY slot to fill.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TailCall {
    pub map: String,
    pub slot: u32,
    pub target: String,
}

/// Everything the agent needs; the first program is the one under test.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub license: String,
    pub programs: Vec<JobProgram>,
    pub maps: Vec<MapDef>,
    pub map_writes: Vec<MapWrite>,
    pub tail_calls: Vec<TailCall>,
    pub rx_queue_index: u32,
    /// Frames to run, in order, each once.
    #[serde(with = "hex::hex_vec")]
    pub packets: Vec<Vec<u8>>,
    /// An offload cell: after the ordinary load, load the program again
    /// bound to a simulated device and attach it in HW mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offload: Option<OffloadJob>,
    /// A program with CO-RE relocations: the object, for the agent to
    /// relocate against the guest kernel's own BTF before loading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub core: Option<JobCore>,
}

/// The object a job's programs came from, and how the host loaded it, so
/// that the agent resolves its CO-RE relocations against the guest
/// kernel's `/sys/kernel/btf/vmlinux`, as a libbpf loader on that machine
/// would. The agent replaces each [`JobProgram`]'s instructions with its
/// own relocation's (same object, same loader: only the relocated values
/// can differ) and reports them back ([`GuestCore`]), so that the engine
/// reference runs exactly what the guest kernel ran.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobCore {
    /// The ELF object file as the user gave it.
    #[serde(with = "hex::hex_bytes")]
    pub object: Vec<u8>,
    /// `PROG.o:SECTION`'s section, when given.
    pub select: Option<String>,
    /// `--type xdp` was given.
    pub force_xdp: bool,
    /// `--map-size` values (they change no instruction, but the loader
    /// checks them).
    pub map_sizes: Vec<(String, u32)>,
}

/// What the agent's CO-RE relocation against the guest kernel's BTF did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestCore {
    /// The BTF file relocated against (`/sys/kernel/btf/vmlinux`).
    pub btf_path: String,
    pub btf_bytes: u64,
    /// SHA-256 of the BTF file, hex: which kernel's types were used.
    pub btf_sha256: String,
    /// Each relocation, as `inspect` prints it (section, instruction,
    /// kind, type, access, outcome).
    pub relocations: Vec<String>,
    /// The relocated instructions of every job program, in job order
    /// (`isa::encode_le`, as [`JobProgram::insns`]).
    #[serde(with = "hex::hex_vec")]
    pub insns: Vec<Vec<u8>>,
}

/// Which simulated offload device the agent creates.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OffloadJob {
    /// `echo "<id> 1" > /sys/bus/netdevsim/new_device`
    /// (drivers/net/netdevsim/bus.c new_device_store).
    Netdevsim,
}

/// One step of the offload path and the kernel's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OffloadStep {
    Accepted,
    Refused {
        /// `BPF_MAP_CREATE`, `BPF_PROG_LOAD` or the netlink attach.
        step: String,
        errno: String,
        /// The kernel's words: the verifier's first error line or the
        /// extack message, when it gave any.
        message: Option<String>,
        /// The full verifier log (program load), empty otherwise.
        log: String,
    },
}

/// What the offload path said.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestOffload {
    /// The netdev the agent created, e.g. `eth0 (ifindex 2, netdevsim1)`.
    pub device: String,
    /// Maps and program bound to the device.
    pub load: OffloadStep,
    /// `XDP_FLAGS_HW_MODE` attach over netlink; `None` when the load was
    /// refused.
    pub attach: Option<OffloadStep>,
    /// The verifier log of the bound load when it was accepted (the
    /// driver's own lines, such as netdevsim's "Hello from netdevsim!").
    pub accepted_log: String,
}

/// What the guest kernel's verifier said.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GuestLoad {
    Loaded {
        /// `verified_insns` from prog info; `None` where the kernel does
        /// not report it (added in 5.16) or reports 0.
        verified_insns: Option<u32>,
        xlated_len: u32,
        /// 0 when the kernel interprets the program.
        jited_len: u32,
        /// Other programs of the object (tail-call targets) it refused.
        rejected_others: Vec<String>,
    },
    Rejected {
        errno: String,
        first_error_line: Option<String>,
        insn: Option<usize>,
        /// The last lines of the verifier log.
        log_tail: String,
    },
    /// The backend could not even try (maps refused, no BPF, ...).
    Failed { message: String },
}

/// What one packet did in the guest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GuestPacket {
    Ran {
        retval: u32,
        /// The output frame; `None` when it equals the input, which keeps
        /// the serial traffic small for programs that do not rewrite.
        #[serde(with = "hex::hex_opt", default)]
        output: Option<Vec<u8>>,
        duration_ns: u32,
    },
    /// The kernel refused the frame itself (too short, too long).
    NotRun {
        reason: String,
    },
    Error {
        message: String,
    },
}

/// One map's contents after the last packet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestMap {
    pub name: String,
    /// (key, one value per possible CPU for per-CPU maps, else one value).
    pub entries: Vec<(String, Vec<String>)>,
    /// Why the map could not be read (or is not readable by design).
    pub unreadable: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestReport {
    pub kernel_release: String,
    pub possible_cpus: Option<usize>,
    pub load: GuestLoad,
    pub packets: Vec<GuestPacket>,
    pub maps: Vec<GuestMap>,
    /// Features this kernel lacks that the agent worked around, in words.
    pub notes: Vec<String>,
    /// Test-run was called without a context (kernels before 5.12).
    #[serde(default)]
    pub ran_without_ctx: bool,
    /// The offload path's result, for a job that asked for it; a string
    /// when the device could not be set up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offload: Option<Result<GuestOffload, String>>,
    /// For a job with [`Job::core`]: the relocation the guest made, or why
    /// it could not (then `load` is `Failed` too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub core: Option<Result<GuestCore, String>>,
}

/// CRC-32 (IEEE 802.3, reflected, as zlib's `crc32`).
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// Splits `payload` into frame lines, each ending in `\n`.
pub fn encode_frames(payload: &[u8]) -> Vec<String> {
    let chunks: Vec<&[u8]> =
        if payload.is_empty() { vec![&[][..]] } else { payload.chunks(FRAME_BYTES).collect() };
    let count = chunks.len();
    chunks
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{MAGIC} {i}/{count} {:08x} {}\n", crc32(c), hex::hex(c)))
        .collect()
}

/// Why the frames on a console do not make a report.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("no result frames on the console")]
    Missing,
    #[error("result frame {index}: {what}")]
    Damaged { index: String, what: String },
    #[error("result frames incomplete: got {got} of {count}")]
    Incomplete { got: usize, count: usize },
}

/// Collects frames from console text (other lines ignored) into the payload.
pub fn decode_frames(console: &str) -> Result<Vec<u8>, FrameError> {
    let mut parts: Vec<Option<Vec<u8>>> = Vec::new();
    let mut count: Option<usize> = None;
    for line in console.lines() {
        let Some(at) = line.find(MAGIC) else { continue };
        let rest = line[at + MAGIC.len()..].trim();
        if rest.starts_with("HELLO") || rest.starts_with("END") {
            continue;
        }
        let mut fields = rest.split(' ');
        let (pos, crc, data) = (fields.next(), fields.next(), fields.next().unwrap_or(""));
        let damaged = |what: &str| FrameError::Damaged {
            index: pos.unwrap_or("?").to_string(),
            what: what.to_string(),
        };
        let (i, n) = pos
            .and_then(|p| p.split_once('/'))
            .and_then(|(i, n)| Some((i.parse::<usize>().ok()?, n.parse::<usize>().ok()?)))
            .filter(|(i, n)| i < n)
            .ok_or_else(|| damaged("bad position field"))?;
        if *count.get_or_insert(n) != n {
            return Err(damaged("frame count changed between frames"));
        }
        let bytes = hex::decode(data.trim_end()).map_err(|e| damaged(&e))?;
        let want = crc
            .and_then(|c| u32::from_str_radix(c, 16).ok())
            .ok_or_else(|| damaged("bad checksum field"))?;
        if crc32(&bytes) != want {
            return Err(damaged("checksum mismatch (console output interleaved or corrupted)"));
        }
        parts.resize(n, None);
        parts[i] = Some(bytes);
    }
    let count = count.ok_or(FrameError::Missing)?;
    let got = parts.iter().filter(|p| p.is_some()).count();
    if got != count {
        return Err(FrameError::Incomplete { got, count });
    }
    Ok(parts.into_iter().flatten().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        // The CRC catalogue's check value for CRC-32/ISO-HDLC.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn frames_survive_kernel_noise() {
        let payload: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
        let mut console = String::from("[    1.0] random: crng init done\n");
        for (i, f) in encode_frames(&payload).iter().enumerate() {
            if i == 1 {
                console.push_str("[    2.0] some message without newline");
            }
            console.push_str(f);
        }
        assert_eq!(decode_frames(&console).unwrap(), payload);
    }

    #[test]
    fn damage_is_detected() {
        let frames = encode_frames(b"hello world");
        let bad = frames[0].replace("68656c6c6f", "68656c6c6e");
        assert!(matches!(decode_frames(&bad), Err(FrameError::Damaged { .. })));
        let two = encode_frames(&vec![1u8; FRAME_BYTES + 1]);
        assert_eq!(decode_frames(&two[1]), Err(FrameError::Incomplete { got: 1, count: 2 }));
        assert_eq!(decode_frames("no frames here"), Err(FrameError::Missing));
    }
}

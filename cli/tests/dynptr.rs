//! XDP dynptrs (`bpf_dynptr_from_xdp`, `_slice`, `_slice_rdwr`, `_adjust`,
//! `_is_null`, `_is_rdonly`, `_size`, `_clone`, and the helpers
//! `bpf_dynptr_read`/`_write`) in the engine's interpreter and JIT, against
//! values worked out by hand from the kernel's code (kernel/bpf/helpers.c,
//! net/core/filter.c; see crates/xdpqual-engine/src/helpers/dynptr.rs) and
//! against the host kernel with `diff --backends vm,host`.
//!
//! tests/data/dynptr/dynptr.c is built here with clang, in three variants
//! (plain, -DSTALE, -DRDWR). Each frame carries its case in byte 14 and two
//! arguments A (bytes 16-17) and B (bytes 18-19); the program writes eight
//! u32 results to bytes 20-51. Every other byte i of an input frame is
//! `i as u8`, so the expected words below follow from the offsets: the
//! four bytes at k >= 52 read as `k | k+1 << 8 | k+2 << 16 | k+3 << 24`.

use std::path::{Path, PathBuf};
use std::process::Command;
use xdpqual::backends::engine::run_packet_executed;
use xdpqual::capture::{write_pcap, TsPrecision};
use xdpqual::compare::PacketSource;
use xdpqual::engine::{Engine, EngineConfig, Executor, NoTrace};
use xdpqual::loader::load_object;

const EINVAL: u32 = -22i32 as u32;
const E2BIG: u32 = -7i32 as u32;
const ERANGE: u32 = -34i32 as u32;

/// The four frame bytes from offset `k` (byte i is `i as u8`) as a
/// little-endian word.
fn at(k: u32) -> u32 {
    u32::from_le_bytes([k as u8, (k + 1) as u8, (k + 2) as u8, (k + 3) as u8])
}

/// One frame: case, A, B and its length.
fn frame(len: usize, case: u8, a: u16, b: u16) -> Vec<u8> {
    let mut f: Vec<u8> = (0..len).map(|i| i as u8).collect();
    f[12..14].copy_from_slice(&[0x88, 0xb5]);
    f[14] = case;
    f[15] = 0;
    f[16..18].copy_from_slice(&a.to_le_bytes());
    f[18..20].copy_from_slice(&b.to_le_bytes());
    f[20..52].fill(0);
    f
}

/// A case and what the kernel's code says comes out of it.
struct Case {
    what: &'static str,
    input: Vec<u8>,
    /// The output frame: the input with the results and any writes.
    output: Vec<u8>,
}

/// `input` with `words` at 20.. (at most 8) and `edits` applied, cut to
/// `len` bytes when the program shrank the frame.
fn case(
    what: &'static str,
    input: Vec<u8>,
    words: &[u32],
    edits: &[(usize, &[u8])],
    shape: Option<(usize, usize)>,
) -> Case {
    let mut out = input.clone();
    for (at, bytes) in edits {
        out[*at..at + bytes.len()].copy_from_slice(bytes);
    }
    // adjust_head / adjust_tail: the output is `out[start..end]` and the
    // results are written from the new start.
    let (start, end) = shape.unwrap_or((0, out.len()));
    let mut out = out[start..end].to_vec();
    for (i, w) in words.iter().enumerate() {
        out[20 + 4 * i..24 + 4 * i].copy_from_slice(&w.to_le_bytes());
    }
    Case { what, input, output: out }
}

fn plain_cases() -> Vec<Case> {
    let xdpqua = b"XDPQUA";
    vec![
        case(
            "from_xdp with flags 1: -EINVAL, and a null dynptr every call refuses",
            frame(64, 0, 1, 0),
            &[EINVAL, 1, EINVAL, 0, EINVAL, EINVAL, EINVAL, 0],
            &[],
            None,
        ),
        case(
            "8-byte slice inside the frame",
            frame(100, 1, 60, 0),
            &[0, 100, 0, 1, at(60), at(64)],
            &[],
            None,
        ),
        case(
            "8-byte slice ending at the frame's end",
            frame(100, 1, 92, 0),
            &[0, 100, 0, 1, at(92), at(96)],
            &[],
            None,
        ),
        case(
            "8-byte slice one past the end: NULL",
            frame(100, 1, 93, 0),
            &[0, 100, 0, 0],
            &[],
            None,
        ),
        case(
            "8-byte slice at the end of a full linear frame (3520 bytes)",
            frame(3520, 1, 3512, 0),
            // 3512 % 256 = 184: bytes 184..191.
            &[0, 3520, 0, 1, at(184), at(188)],
            &[],
            None,
        ),
        case(
            "16-byte slice with a buffer, in range: a pointer into the frame, buffer untouched",
            frame(100, 2, 84, 0),
            &[1, at(84), at(96), 0xaaaa_aaaa],
            &[],
            None,
        ),
        case(
            "16-byte slice with a buffer, one past the end: NULL",
            frame(100, 2, 85, 0),
            &[0, 0, 0, 0xaaaa_aaaa],
            &[],
            None,
        ),
        case(
            "dynptr_write of 6 bytes, then read back",
            frame(100, 4, 70, 0),
            &[0, 0, u32::from_le_bytes(*b"XDPQ"), 0],
            &[(70, xdpqua)],
            None,
        ),
        case(
            "dynptr_write and read with flags 1: -EINVAL, frame unchanged",
            frame(100, 4, 70, 1),
            &[EINVAL, EINVAL, 0x1111_1111, 0],
            &[],
            None,
        ),
        case(
            "dynptr_write past the end: -E2BIG; a 4-byte read there fits",
            frame(100, 4, 95, 0),
            &[E2BIG, 0, at(95), 0],
            &[],
            None,
        ),
        case(
            "dynptr_write past the end with flags 1: the range is checked first (-E2BIG); \
             the read checks flags first (-EINVAL)",
            frame(100, 4, 95, 1),
            &[E2BIG, EINVAL, 0x1111_1111, 0],
            &[],
            None,
        ),
        case(
            "adjust(52, 60): size 8, offset 0 is frame byte 52; a 2-byte write at 2",
            frame(100, 5, 52, 60),
            &[0, 8, at(52), 0, at(52), 0],
            &[(54, &[52, 53])],
            None,
        ),
        case(
            "adjust(60, 52): start > end is -EINVAL, the dynptr unchanged",
            frame(100, 5, 60, 52),
            &[EINVAL, 100, at(0), 0, at(0), 0],
            &[(2, &[0, 1])],
            None,
        ),
        case(
            "adjust(10, 101): end past the size is -ERANGE",
            frame(100, 5, 10, 101),
            &[ERANGE, 100, at(0), 0, at(0), 0],
            &[(2, &[0, 1])],
            None,
        ),
        case(
            "clone, adjust the clone to 64..72; a null dynptr's clone is -EINVAL and null",
            frame(100, 6, 64, 72),
            &[0, 0, 100, 8, 0, at(64), EINVAL, 1],
            &[],
            None,
        ),
    ]
}

/// A 5000-byte frame is 3520 linear bytes and one 1480-byte fragment
/// (test-run's geometry on x86_64, net/bpf/test_run.c).
fn frags_cases() -> Vec<Case> {
    vec![
        case(
            "8-byte slice across the linear end, no buffer: NULL (bpf_xdp_pointer)",
            frame(5000, 1, 3516, 0),
            &[0, 5000, 0, 0],
            &[],
            None,
        ),
        case(
            "8-byte slice inside the fragment: a pointer into it",
            frame(5000, 1, 4000, 0),
            &[0, 5000, 0, 1, at(4000), at(4004)],
            &[],
            None,
        ),
        case(
            "8-byte slice ending at the fragment's (and frame's) end",
            frame(5000, 1, 4992, 0),
            &[0, 5000, 0, 1, at(4992), at(4996)],
            &[],
            None,
        ),
        case(
            "16-byte slice with a buffer inside the fragment: a pointer into it, buffer untouched",
            frame(5000, 2, 4984, 0),
            &[1, at(4984), at(4996), 0xaaaa_aaaa],
            &[],
            None,
        ),
        case(
            "16-byte slice across the linear end with a buffer: copied into the buffer",
            frame(5000, 2, 3512, 0),
            &[2, at(3512), at(3524), at(3512)],
            &[],
            None,
        ),
        case(
            "dynptr_write across the linear end, read back across it",
            frame(5000, 4, 3517, 0),
            &[0, 0, u32::from_le_bytes(*b"XDPQ"), 0],
            &[(3517, b"XDPQUA")],
            None,
        ),
        case(
            "dynptr_write inside the fragment, up to the frame's end",
            frame(5000, 4, 4994, 0),
            &[0, 0, u32::from_le_bytes(*b"XDPQ"), 0],
            &[(4994, b"XDPQUA")],
            None,
        ),
        case(
            "adjust(3500, 3540) spans the linear end: size 40, reads at its start",
            frame(5000, 5, 3500, 3540),
            &[0, 40, at(3500), 0, at(3500), 0],
            &[(3502, &[3500u32 as u8, 3501u32 as u8])],
            None,
        ),
    ]
}

fn stale_cases() -> Vec<Case> {
    // buf after a 14-byte partial copy from 76: frame bytes 76..90, then
    // the two bytes it had (0xaa).
    let tail = u32::from_le_bytes([88, 89, 0xaa, 0xaa]);
    let head_word = u32::from_le_bytes([8, 0, 14, 0]);
    vec![
        case(
            "tail shrunk by 10: a slice past the new end copies what is left into the buffer",
            frame(100, 7, 76, 10),
            &[100, 0, 100, 2, at(76), tail, 0, 0],
            &[],
            Some((0, 90)),
        ),
        case(
            "tail shrunk by 10: a read inside the stale size but past the end is -EINVAL",
            frame(100, 7, 96, 10),
            &[100, 0, 100, 0, 0xaaaa_aaaa, 0xaaaa_aaaa, EINVAL, 0],
            &[],
            Some((0, 90)),
        ),
        case(
            "tail unchanged: the slice is a pointer into the frame",
            frame(100, 7, 80, 0),
            &[100, 0, 100, 1, 0xaaaa_aaaa, 0xaaaa_aaaa, 0, 1],
            &[],
            None,
        ),
        case(
            "head moved by 14: dynptr offset 0 is the new data, the size stays 100",
            frame(100, 8, 14, 0),
            &[0, 100, 0, head_word, head_word],
            &[],
            Some((14, 100)),
        ),
        case(
            "head move that would leave 13 bytes: -EINVAL, nothing moves",
            frame(64, 8, 51, 0),
            &[EINVAL, 64, 0, at(0), at(0)],
            &[],
            None,
        ),
    ]
}

fn rdwr_cases() -> Vec<Case> {
    vec![
        case(
            "4-byte rdwr slice at 60, written through",
            frame(100, 3, 60, 0),
            &[1],
            &[(60, &[0xde, 0xad, 0xbe, 0xef])],
            None,
        ),
        case("4-byte rdwr slice at 97: NULL", frame(100, 3, 97, 0), &[0], &[], None),
    ]
}

/// Builds the test program with the macros in `variant` (`+`-separated,
/// "" for the plain one), or says why it cannot.
fn build(dir: &Path, variant: &str) -> Result<PathBuf, String> {
    let src = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/dynptr/dynptr.c"));
    let obj = dir.join(format!("dynptr{}.o", variant.replace('+', "_")));
    let inc = format!("-I/usr/include/{}-linux-gnu", std::env::consts::ARCH);
    let mut cmd = Command::new("clang-19");
    cmd.args(["-O2", "-g", "-target", "bpf", "-mcpu=v3", &inc]);
    for m in variant.split('+').filter(|m| !m.is_empty()) {
        cmd.arg(format!("-D{m}"));
    }
    let o = cmd.arg("-c").arg(&src).arg("-o").arg(&obj).output();
    match o {
        Ok(o) if o.status.success() => Ok(obj),
        Ok(o) => Err(format!("clang-19 failed: {}", String::from_utf8_lossy(&o.stderr))),
        Err(e) => Err(format!("clang-19 cannot run: {e}")),
    }
}

/// Runs every case through the interpreter and the JIT; both must give
/// the worked-out frame and TX.
fn engine_agrees(obj: &Path, cases: &[Case]) {
    let o = load_object(obj).unwrap();
    for jit in [false, true] {
        let mut e = Engine::new(&o, None, EngineConfig::default()).unwrap().with_jit(jit);
        for c in cases {
            let pkt = PacketSource {
                data: c.input.clone(),
                ts_ns: 0,
                ingress_ifindex: 1,
                rx_queue_index: 0,
            };
            let (r, ex) = run_packet_executed(&mut e, &pkt, &mut NoTrace);
            let want = if jit { Executor::Jit } else { Executor::Interpreter };
            assert_eq!(ex, Some(want), "{}: ran on {ex:?}", c.what);
            assert_eq!(r.verdict.to_string(), "TX", "{} (jit {jit}): {r:?}", c.what);
            if r.output != c.output {
                let words = |f: &[u8]| -> Vec<String> {
                    f[20..52]
                        .chunks(4)
                        .map(|w| format!("{:#x}", u32::from_le_bytes(w.try_into().unwrap())))
                        .collect()
                };
                let first = r.output.iter().zip(&c.output).position(|(x, y)| x != y);
                panic!(
                    "{} (jit {jit}): results {:?}, want {:?}; lengths {} and {}, first \
                     difference at {first:?}",
                    c.what,
                    words(&r.output),
                    words(&c.output),
                    r.output.len(),
                    c.output.len()
                );
            }
        }
    }
}

/// `xdpqual diff --backends vm,host` over the cases: every packet agrees.
/// `Err` with the reason when the host cannot run the program.
fn host_agrees(dir: &Path, obj: &Path, cases: &[Case]) -> Result<u64, String> {
    let cap = dir.join(format!("{}.pcap", obj.file_stem().unwrap().to_string_lossy()));
    let frames = cases.iter().enumerate().map(|(i, c)| (i as u64 * 1000, c.input.clone()));
    write_pcap(&cap, TsPrecision::Microsecond, frames).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_xdpqual"))
        .args(["diff", obj.to_str().unwrap(), cap.to_str().unwrap()])
        .args(["--backends", "vm,host", "--format", "json"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    if o.status.code() == Some(2) {
        return Err(err);
    }
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {err} {}", String::from_utf8_lossy(&o.stdout)));
    assert_eq!(o.status.code(), Some(0), "{err}\n{v}");
    assert_eq!(v["backends"], serde_json::json!(["vm", "host"]));
    assert_eq!(v["agreed"].as_u64(), Some(cases.len() as u64), "{v}");
    Ok(cases.len() as u64)
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("xdpqual-dynptr-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn dynptr_cases_match_the_kernel_code_and_the_host_kernel() {
    let dir = tmpdir("plain");
    for (variant, cases) in
        [("", plain_cases()), ("STALE", stale_cases()), ("FRAGS", frags_cases())]
    {
        let obj = match build(&dir, variant) {
            Ok(o) => o,
            Err(e) => {
                xdpqual::util::skip(format_args!("{e}"));
                return;
            }
        };
        engine_agrees(&obj, &cases);
        match host_agrees(&dir, &obj, &cases) {
            Ok(n) => println!("dynptr{variant}: {n} packets, vm and host agree on all"),
            Err(e) if e.contains("could not run") => {
                xdpqual::util::skip(format_args!("the host backend cannot run here: {e}"))
            }
            Err(e) => panic!("dynptr{variant}: diff failed: {e}"),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A slice into a fragment is an engine fragment address that every access
/// checks against the fragment as it is: kept (against the verifier)
/// across a bpf_xdp_adjust_tail that shortens or drops the fragment, it
/// faults instead of reaching what the fragment was; while the bytes are
/// still there it reads them. Interpreter and JIT.
#[test]
fn a_fragment_slice_kept_across_adjust_tail_is_checked_against_the_fragment() {
    let dir = tmpdir("frag");
    let obj = match build(&dir, "FRAGS+STALE_FRAG") {
        Ok(o) => o,
        Err(e) => {
            xdpqual::util::skip(format_args!("{e}"));
            return;
        }
    };
    let o = load_object(&obj).unwrap();
    for jit in [false, true] {
        let mut e = Engine::new(&o, None, EngineConfig::default()).unwrap().with_jit(jit);
        let mut run = |a: u16, b: u16| {
            let pkt = PacketSource {
                data: frame(5000, 9, a, b),
                ts_ns: 0,
                ingress_ifindex: 1,
                rx_queue_index: 0,
            };
            run_packet_executed(&mut e, &pkt, &mut NoTrace).0
        };
        // The fragment is bytes 3520..5000 (1480 bytes); the slice at 4000
        // is its byte 480.
        let r = run(4000, 10);
        assert_eq!(r.verdict.to_string(), "TX", "jit {jit}: {:?}", r.verdict);
        assert_eq!(&r.output[20..24], &at(4000).to_le_bytes(), "jit {jit}");
        assert_eq!(r.output.len(), 4990, "jit {jit}");
        for (b, what) in [(1000, "shortened to 480 bytes"), (1480, "dropped")] {
            let r = run(4000, b);
            let v = serde_json::to_value(&r.verdict).unwrap().to_string();
            assert!(
                v.contains("fault") && v.contains("packet"),
                "fragment {what} (jit {jit}): {v}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// bpf_dynptr_slice_rdwr: the engine against the hand-worked frames; the
/// host comparison only where the host kernel's verifier takes the
/// program (this machine's 6.18 build refuses the kfunc outright,
/// "bpf_dynptr_slice_rdwr() is not allowed", which the diff reports).
#[test]
fn slice_rdwr_writes_through_to_the_frame() {
    let dir = tmpdir("rdwr");
    let obj = match build(&dir, "RDWR") {
        Ok(o) => o,
        Err(e) => {
            xdpqual::util::skip(format_args!("{e}"));
            return;
        }
    };
    let cases = rdwr_cases();
    engine_agrees(&obj, &cases);
    let frags = match build(&dir, "RDWR+FRAGS") {
        Ok(o) => o,
        Err(e) => panic!("{e}"),
    };
    let frag_cases = vec![
        case(
            "4-byte rdwr slice inside the fragment, written through",
            frame(5000, 3, 4500, 0),
            &[1],
            &[(4500, &[0xde, 0xad, 0xbe, 0xef])],
            None,
        ),
        case(
            "4-byte rdwr slice across the linear end, no buffer: NULL",
            frame(5000, 3, 3518, 0),
            &[0],
            &[],
            None,
        ),
    ];
    engine_agrees(&frags, &frag_cases);
    match host_agrees(&dir, &obj, &cases) {
        Ok(n) => println!("dynptrRDWR: {n} packets, vm and host agree on all"),
        Err(e) if e.contains("bpf_dynptr_slice_rdwr() is not allowed") => {
            xdpqual::util::skip(format_args!(
                "host comparison: this kernel refuses the program (\"bpf_dynptr_slice_rdwr() \
             is not allowed\")"
            ))
        }
        Err(e) if e.contains("could not run") => {
            xdpqual::util::skip(format_args!("the host backend cannot run here: {e}"))
        }
        Err(e) => panic!("dynptrRDWR: diff failed: {e}"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// corpus/hostile/dynptr_forge.c (built into corpus/build/hostile/): each
/// forged or corrupted dynptr faults, naming the call, or gets the kernel's
/// error; nothing reads or writes outside the sandbox. hostile_programs.rs
/// runs the same object through every command; this says what each attack
/// must come to, in the interpreter and the JIT.
#[test]
fn forged_dynptrs_fault_or_get_an_error() {
    let obj = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../corpus/build/hostile/dynptr_forge.o"
    ));
    let o = load_object(&obj).unwrap();
    // (selector, what must happen): a fault whose message holds the text,
    // or TX with this u32 at frame bytes 20..24.
    enum Want {
        Fault(&'static str),
        Ret(u32),
    }
    use Want::*;
    let wants = [
        (0, Fault("bpf_dynptr_read")),
        (1, Fault("bpf_dynptr_slice")),
        // size forced to 2^24 - 1: the range check passes, the frame's
        // (bpf_xdp_pointer) does not: 60000 + 4 > 64.
        (2, Ret(EINVAL)),
        // offset 0xffffff00: bpf_xdp_pointer's 0xffff limit, -EFAULT.
        (3, Ret(-14i32 as u32)),
        // offset 0xfffffffc: the same limit, so the slice is NULL and the
        // write through it never happens.
        (4, Ret(0)),
        (5, Fault("bpf_dynptr_size")),
        (6, Fault("bpf_dynptr_from_xdp")),
        (7, Fault("")),
        (8, Fault("")),
        (9, Fault("")),
        // A slice kept across adjust_tail(-40) reads past the new end.
        (10, Fault("packet")),
        (11, Fault("bpf_dynptr_read")),
        (12, Fault("bpf_dynptr_size")),
    ];
    for jit in [false, true] {
        let mut e = Engine::new(&o, None, EngineConfig::default()).unwrap().with_jit(jit);
        for (sel, want) in &wants {
            let mut data = vec![0u8; 64];
            data[12..14].copy_from_slice(&[0x08, 0x00]);
            data[14] = *sel;
            let pkt = PacketSource { data, ts_ns: 0, ingress_ifindex: 1, rx_queue_index: 0 };
            let (r, _) = run_packet_executed(&mut e, &pkt, &mut NoTrace);
            let v = serde_json::to_value(&r.verdict).unwrap();
            match want {
                Fault(text) => {
                    let msg = v.to_string();
                    assert!(msg.contains("fault") && msg.contains(text), "{sel} (jit {jit}): {v}");
                }
                Ret(x) => {
                    assert_eq!(r.verdict.to_string(), "TX", "{sel} (jit {jit}): {v}");
                    let got = u32::from_le_bytes(r.output[20..24].try_into().unwrap());
                    assert_eq!(got, *x, "{sel} (jit {jit})");
                }
            }
        }
    }
}

//! Writes starting corpora for the fuzz targets, so the fuzzer begins from
//! inputs that get past the first checks instead of from nothing:
//!
//! - `corpus/loader/`: the committed clang objects (`corpus/build/*.o`) and
//!   the loader's test objects (`cli/tests/data/**/*.o`);
//! - `corpus/engine/`: every bpf_conformance program with its memory, and
//!   every XDP program of the committed objects with a small UDP frame, in
//!   the `engine` target's input layout;
//! - `corpus/helpers/`: every modelled helper with argument shapes that
//!   get past its first checks (ctx, map references of each map, stack
//!   pointers, small and near-2^64 sizes), in the `helpers` target's layout;
//! - `corpus/capture/`: the committed captures (`pcaps/*.pcap`) and, when
//!   `../shared/` is beside the checkout, tcpdump's 830 test captures, many
//!   of them malformed on purpose.
//!
//! Run from `harness/fuzz/`: `cargo run --release --example seed`.

use std::fs;
use std::path::{Path, PathBuf};

use xdpqual_testkit::conformance::{data_files, suite_dir, ConformanceTest};
use xdpqual::isa::encode_le;

/// Ethernet + IPv4 + UDP, 42 bytes of headers and 22 of payload.
const UDP_FRAME: [u8; 64] = {
    let mut f = [0u8; 64];
    let hdr: [u8; 42] = [
        0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00, // Ethernet, IPv4
        0x45, 0, 0, 50, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, // IPv4, UDP
        0x30, 0x39, 0x00, 0x35, 0, 30, 0, 0, // UDP 12345 -> 53
    ];
    let mut i = 0;
    while i < hdr.len() {
        f[i] = hdr[i];
        i += 1;
    }
    f
};

fn engine_input(flags: u8, insns: &[u8], packet: &[u8]) -> Vec<u8> {
    let n = (insns.len() / 8).min(u16::MAX as usize) as u16;
    let mut v = vec![flags];
    v.extend_from_slice(&n.to_le_bytes());
    v.extend_from_slice(&insns[..n as usize * 8]);
    v.extend_from_slice(packet);
    v
}

fn objects(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            objects(&p, out);
        } else if p.extension().is_some_and(|x| x == "o") {
            out.push(p);
        }
    }
}

/// One call of the `helpers` target: helper index, then (kind, value) for
/// r1..r5 (kinds as in `fuzz_targets/helpers.rs`: 0 raw, 1 stack, 2 packet,
/// 3 ctx, 4 map ref, 5 array value, 6 near 2^64, 7 small size, 8 callback,
/// 9 first call's r0).
type Call = (u8, [(u8, u64); 5]);

fn helpers_input(flags: u8, calls: [Call; 2], stack: &[u8; 64], packet: &[u8]) -> Vec<u8> {
    let mut v = vec![flags];
    for (h, args) in calls {
        v.push(h);
        for (k, x) in args {
            v.push(k);
            v.extend_from_slice(&x.to_le_bytes());
        }
    }
    v.extend_from_slice(stack);
    v.extend_from_slice(packet);
    v
}

fn helper_seeds(dir: &Path) -> std::io::Result<usize> {
    use xdpqual::engine::helpers::ids::SUPPORTED;
    let mut stack = [0u8; 64];
    stack[..16].copy_from_slice(b"%d %s %99999x\0\0\0");
    let stk = (1, (-64i64) as u64);
    let mut n = 0;
    for (i, _) in SUPPORTED.iter().enumerate() {
        let h = i as u8;
        let mut shapes: Vec<[(u8, u64); 5]> = vec![
            [(0, 0); 5],
            [(3, 0), (0, 0), (0, 0), (0, 0), (0, 0)],
            [stk, (7, 16), (7, 7), (1, (-48i64) as u64), (5, 0)],
            [(6, 0), (6, 7), (6, 0), (6, 0), (6, 0)],
            [(8, 0), (8, 0), (8, 0), (8, 0), (8, 0)],
        ];
        for m in 0..13u64 {
            shapes.push([(4, m), stk, stk, (0, 0), (0, 0)]);
            shapes.push([(3, 0), (4, m), (0, 0xffff_ffff), stk, (7, 8)]);
            shapes.push([(4, m), (7, 64), (0, 0), (0, 0), (0, 0)]);
        }
        for (j, args) in shapes.into_iter().enumerate() {
            // Alone, then followed by a ringbuf submit of its result.
            let submit = SUPPORTED.iter().position(|(id, _)| *id == 132).unwrap() as u8;
            for (flags, second) in [
                (0u8, (0u8, [(0u8, 0u64); 5])),
                (2, (submit, [(9, 0), (0, 0), (0, 0), (0, 0), (0, 0)])),
            ] {
                fs::write(
                    dir.join(format!("seed-{i}-{j}-{flags}")),
                    helpers_input(flags, [(h, args), second], &stack, &UDP_FRAME),
                )?;
                n += 1;
            }
        }
    }
    Ok(n)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let loader_dir = Path::new("corpus/loader");
    let engine_dir = Path::new("corpus/engine");
    let capture_dir = Path::new("corpus/capture");
    let helpers_dir = Path::new("corpus/helpers");
    fs::create_dir_all(helpers_dir)?;
    let n_helpers = helper_seeds(helpers_dir)?;
    fs::create_dir_all(loader_dir)?;
    fs::create_dir_all(engine_dir)?;
    fs::create_dir_all(capture_dir)?;

    let mut objs = Vec::new();
    objects(&root.join("corpus/build"), &mut objs);
    objects(&root.join("cli/tests/data"), &mut objs);
    let (mut n_loader, mut n_engine) = (0, 0);
    for path in &objs {
        let bytes = fs::read(path)?;
        let stem = path.file_name().unwrap().to_string_lossy();
        fs::write(loader_dir.join(format!("seed-{stem}")), &bytes)?;
        n_loader += 1;
        let Ok(obj) = xdpqual::loader::load_object_bytes(&bytes, path) else { continue };
        for prog in &obj.programs {
            let flags = 2 | u8::from(prog.frags);
            let input = engine_input(flags, &encode_le(&prog.insns), &UDP_FRAME);
            fs::write(engine_dir.join(format!("seed-{stem}-{}", prog.name)), input)?;
            // The same, also compiled and compared with the interpreter.
            let input = engine_input(flags | 4, &encode_le(&prog.insns), &UDP_FRAME);
            fs::write(engine_dir.join(format!("seed-{stem}-{}-jit", prog.name)), input)?;
            n_engine += 2;
        }
    }

    let suite = suite_dir();
    for file in data_files(&suite).unwrap_or_default() {
        let Ok(test) = ConformanceTest::load(&file) else { continue };
        let Ok(insns) = test.program(&file) else { continue };
        let stem = file.file_stem().unwrap().to_string_lossy();
        fs::write(
            engine_dir.join(format!("seed-conf-{stem}")),
            engine_input(0, &encode_le(&insns), &test.mem),
        )?;
        n_engine += 1;
    }
    let mut n_capture = 0;
    for dir in [root.join("pcaps"), root.join("../shared/pcaps/tcpdump/tests")] {
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        for p in entries.flatten().map(|e| e.path()) {
            let is_capture = p.extension().is_some_and(|x| x == "pcap" || x == "pcapng");
            // Huge captures slow every fuzzing round; libFuzzer truncates to
            // -max_len anyway.
            if is_capture && fs::metadata(&p).is_ok_and(|m| m.len() <= 1 << 20) {
                fs::write(
                    capture_dir.join(format!("seed-{}", p.file_name().unwrap().to_string_lossy())),
                    fs::read(&p)?,
                )?;
                n_capture += 1;
            }
        }
    }
    println!(
        "wrote {n_loader} loader seeds, {n_engine} engine seeds (suite: {}), {n_capture} capture seeds, {n_helpers} helpers seeds",
        suite.display()
    );
    Ok(())
}

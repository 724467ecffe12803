//! Criterion benchmarks, one layer at a time, so a regression shows in the
//! layer that has it: the capture readers alone, then each corpus program on
//! the engine's interpreter and JIT, rbpf (interpreter and JIT, where
//! eligible) and the host kernel in-kernel (where it is available and accepts
//! the program). `cargo bench -p xdpqual` runs them; `cargo test` does not
//! (`test = false` in Cargo.toml). Measurement times are kept short so the
//! whole set finishes in a few minutes; `xdpqual bench` is the one-program
//! side-by-side report.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use xdpqual::backends::host::testrun::{RunFlags, XdpCtx};
use xdpqual::backends::host::{HostBackend, SessionOutcome};
use xdpqual::backends::rbpf::{self, sandbox, RbpfHelpers, XdpMd, XdpProgram};
use xdpqual::capture::{CaptureReader, PcapBatches};
use xdpqual::engine::{Engine, EngineConfig, ExecMode, PacketIn};
use xdpqual::isa::encode_le;
use xdpqual::loader::load_object;

/// Packets per benchmark iteration, from the mixed capture.
const PACKETS: usize = 256;
/// Packets for the kernel's in-kernel figure (see where it is used).
const KERNEL_SAMPLE: usize = 8;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn packets() -> Vec<Vec<u8>> {
    CaptureReader::open(root().join("pcaps/mixed-2k.pcap"))
        .expect("pcaps/mixed-2k.pcap")
        .take(PACKETS)
        .map(|p| p.expect("readable").data)
        .collect()
}

fn corpus() -> Vec<(String, PathBuf)> {
    let mut v: Vec<_> = std::fs::read_dir(root().join("corpus/build"))
        .expect("corpus/build")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".v3.o"))
        .map(|p| {
            (p.file_name().unwrap().to_string_lossy().trim_end_matches(".v3.o").to_string(), p)
        })
        .collect();
    v.sort();
    v
}

fn capture_readers(c: &mut Criterion) {
    let path = root().join("pcaps/firewall-2k.pcap");
    let n = CaptureReader::open(&path).unwrap().count() as u64;
    let mut g = c.benchmark_group("capture");
    g.throughput(Throughput::Elements(n));
    g.bench_function("batches", |b| {
        b.iter(|| {
            let mut r = PcapBatches::open(&path).unwrap().unwrap();
            let mut bytes = 0usize;
            loop {
                let batch = r.next_batch();
                if batch.is_empty() {
                    break bytes;
                }
                bytes += batch.records().map(|r| r.data.len()).sum::<usize>();
                r.recycle(batch);
            }
        })
    });
    g.bench_function("streaming", |b| {
        b.iter(|| CaptureReader::open(&path).unwrap().map(|r| r.unwrap().data.len()).sum::<usize>())
    });
    g.finish();
}

fn input(data: &[u8]) -> PacketIn<'_> {
    PacketIn { data, ts_ns: 0, ingress_ifindex: 1, rx_queue_index: 0 }
}

fn programs(c: &mut Criterion) {
    let pkts: Vec<Vec<u8>> = packets().into_iter().filter(|p| p.len() >= 14).collect();
    let host = HostBackend::open().ok();
    if host.is_none() {
        eprintln!("host kernel unavailable: kernel benchmarks skipped");
    }
    for (name, path) in corpus() {
        let obj = load_object(&path).expect("corpus object loads");
        let prog = obj.program(None).expect("an XDP program").clone();
        let mut g = c.benchmark_group(name.clone());
        g.throughput(Throughput::Elements(pkts.len() as u64));
        // The interpreter, then the same engine compiled with Cranelift. A
        // program the JIT cannot compile would fall back to the interpreter,
        // so its JIT row is left out rather than timed twice under another
        // name.
        for (row, jit) in [("engine-interp", false), ("engine-jit", true)] {
            let Ok(mut e) = Engine::new(
                &obj,
                Some(&prog.name),
                EngineConfig { jit, ..EngineConfig::default() },
            ) else {
                continue;
            };
            if jit && !matches!(e.exec_mode(), ExecMode::Jit) {
                eprintln!(
                    "{name}: the JIT fell back to the interpreter ({}); engine-jit skipped",
                    e.exec_mode()
                );
                continue;
            }
            g.bench_function(row, |b| {
                b.iter(|| {
                    for p in &pkts {
                        // By reference: black-boxing the result by value copies it
                        // (a fifth of the floor in perf), which is not part of a run.
                        black_box(&e.run_xdp(&input(p)));
                    }
                })
            });
        }
        if XdpProgram::prepare(&prog.insns, &RbpfHelpers::default()).is_ok() {
            let bytes = encode_le(&rbpf::rewrite_xdp_ctx(&prog.insns).unwrap());
            let vm = ::rbpf::EbpfVmMbuff::new(Some(&bytes)).unwrap();
            let mut buf = vec![0u8; 16 * 1024];
            let md = |b: &[u8]| {
                let d = b.as_ptr() as u64;
                XdpMd {
                    data: d,
                    data_end: d + b.len() as u64,
                    data_meta: d,
                    ingress_ifindex: 1,
                    rx_queue_index: 0,
                    egress_ifindex: 0,
                }
                .to_mbuff()
            };
            // The JIT only repeats runs the bounds-checking interpreter completed.
            let ok: Vec<&Vec<u8>> = pkts
                .iter()
                .filter(|p| {
                    let b = &mut buf[..p.len()];
                    b.copy_from_slice(p);
                    let m = md(b);
                    vm.execute_program(b, &m).is_ok()
                })
                .collect();
            g.bench_function("rbpf-interp", |b| {
                b.iter(|| {
                    for p in &ok {
                        let bb = &mut buf[..p.len()];
                        bb.copy_from_slice(p);
                        let m = md(bb);
                        black_box(vm.execute_program(bb, &m).ok());
                    }
                })
            });
            // rbpf's JIT checks no bounds, so it runs only in the sandboxed
            // child (backends::rbpf::sandbox), which times the rounds itself.
            if rbpf::check(&prog.insns, rbpf::Engine::Jit, &[]).is_ok() {
                let inputs: Vec<&[u8]> = ok.iter().map(|p| p.as_slice()).collect();
                g.bench_function("rbpf-jit", |b| {
                    b.iter_custom(|iters| {
                        let job = sandbox::Job {
                            bytecode: &bytes,
                            ctx: sandbox::Ctx::Xdp { ingress_ifindex: 1, rx_queue_index: 0 },
                            inputs: &inputs,
                            jit: true,
                            timed: sandbox::Timed::Jit,
                            rounds: iters as usize,
                            timeout: sandbox::default_timeout(inputs.len(), iters as usize),
                        };
                        let r = sandbox::run(&job).unwrap_or_else(|e| panic!("{name}: {e}"));
                        assert_eq!(
                            r.mismatches(),
                            0,
                            "{name}: rbpf's JIT disagreed with its interpreter"
                        );
                        Duration::from_nanos(r.rounds_ns.iter().sum())
                    })
                });
            }
        }
        if let Some(h) = &host {
            if let Ok(SessionOutcome::Ready(s)) = h.load(&obj, &prog) {
                let ctx = XdpCtx::loopback();
                // Every call with repeat > 1 waits for two RCU grace periods
                // (the XDP dispatcher swap in net/bpf/test_run.c), so the
                // kernel gets an even stride of KERNEL_SAMPLE packets.
                let stride = pkts.len().div_ceil(KERNEL_SAMPLE).max(1);
                let ok: Vec<&Vec<u8>> = pkts
                    .iter()
                    .step_by(stride)
                    .filter(|p| s.run(p, ctx, 1, RunFlags::default()).is_ok())
                    .collect();
                // The kernel times its own loop: iter_custom reports its
                // average times the iterations, per packet of the sample.
                g.throughput(Throughput::Elements(ok.len() as u64));
                g.bench_function("kernel-in-kernel", |b| {
                    b.iter_custom(|iters| {
                        // The kernel reports a per-run average; at least
                        // 1000 runs per call keep its 1-ns resolution and
                        // timer overhead out of the figure.
                        let repeat = iters.clamp(1000, u64::from(u32::MAX)) as u32;
                        let mut total = Duration::ZERO;
                        for p in &ok {
                            let r = s.run(p, ctx, repeat, RunFlags::default()).expect("test run");
                            total += Duration::from_nanos(u64::from(r.duration_ns) * iters);
                        }
                        total
                    })
                });
            }
        }
        g.finish();
    }
}

fn config() -> Criterion {
    Criterion::default()
        .measurement_time(Duration::from_secs(1))
        .warm_up_time(Duration::from_millis(300))
        .sample_size(10)
}

criterion_group! { name = layers; config = config(); targets = capture_readers, programs }
criterion_main!(layers);

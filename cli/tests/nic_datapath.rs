//! The emulated NIC datapath (`nic:PROFILE`): the profile's rules around the
//! engine, RSS stability, and the checker/engine agreement property.

use quickcheck::{quickcheck, TestResult};
use xdpqual::backends::nic::{synthetic_udp_frames, NicBackend, NicOpen};
use xdpqual::backends::PacketSource;
use xdpqual::engine::{Engine, EngineConfig};
use xdpqual::isa::Insn;
use xdpqual::program::{LineTable, Object, Program};
use xdpqual::verdict::{Verdict, XdpAction};

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn { code, dst, src, off, imm }
}

fn object(insns: Vec<Insn>) -> (Object, Program) {
    let p = Program {
        name: "p".into(),
        section: "xdp".into(),
        frags: false,
        insns,
        lines: LineTable::default(),
        functions: Vec::new(),
    };
    let obj = Object {
        path: "test.o".into(),
        programs: vec![p.clone()],
        maps: Vec::new(),
        license: "GPL".into(),
        byte_order: Default::default(),
        kfuncs: Default::default(),
        ksyms: Default::default(),
        btf: Default::default(),
    };
    (obj, p)
}

fn open(insns: Vec<Insn>) -> Box<NicBackend> {
    let (obj, p) = object(insns);
    match NicBackend::open(&obj, &p, "nfp-corenic", Some(4)).expect("open") {
        NicOpen::Ready(n) => n,
        NicOpen::Rejected(r) => panic!("rejected: {}", r.to_text()),
    }
}

fn pkt(data: Vec<u8>) -> PacketSource {
    PacketSource { data, ts_ns: 0, ingress_ifindex: 1, rx_queue_index: 0 }
}

const EXIT: u8 = 0x95;
const MOV64_K: u8 = 0xb7;
const CALL: u8 = 0x85;
const JNE_K: u8 = 0x55;

/// r0 = v; exit
fn ret(v: i32) -> Vec<Insn> {
    vec![insn(MOV64_K, 0, 0, 0, v), insn(EXIT, 0, 0, 0, 0)]
}

#[test]
fn redirect_is_an_abort_on_the_nfp() {
    // NFP-R1: r0 = XDP_REDIRECT (4) is above the NFP's largest action.
    let mut nic = open(ret(4));
    let r = nic.run(&pkt(synthetic_udp_frames(60, 1).remove(0)));
    assert_eq!(r.result.verdict, Verdict::Action { action: XdpAction::Aborted });
    assert_eq!(r.applied.len(), 1);
    assert_eq!(r.applied[0].rule, "NFP-R1");
    let t = nic.totals();
    assert_eq!((t.rx, t.abort, t.pass, t.drop, t.tx), (1, 1, 0, 0, 0));
}

#[test]
fn tx_is_counted_as_tx() {
    let mut nic = open(ret(3));
    let r = nic.run(&pkt(synthetic_udp_frames(60, 1).remove(0)));
    assert_eq!(r.result.verdict, Verdict::Action { action: XdpAction::Tx });
    assert!(r.applied.is_empty());
    assert_eq!(nic.totals().tx, 1);
}

/// r2 = delta; r1 = ctx (r6); call helper; if r0 != 0 -> DROP else PASS.
fn adjust(helper: i32, delta: i32) -> Vec<Insn> {
    vec![
        insn(0xbf, 6, 1, 0, 0), // r6 = r1
        insn(MOV64_K, 2, 0, 0, delta),
        insn(CALL, 0, 0, 0, helper),
        insn(JNE_K, 0, 0, 2, 0),
        insn(MOV64_K, 0, 0, 0, 2),
        insn(EXIT, 0, 0, 0, 0),
        insn(MOV64_K, 0, 0, 0, 1),
        insn(EXIT, 0, 0, 0, 0),
    ]
}

#[test]
fn adjust_head_outside_the_firmware_window_is_refused() {
    // CoreNIC window: start 128, off_min 44 -> at most 84 bytes of headroom
    // may be taken; the kernel allows 216.
    let frame = synthetic_udp_frames(60, 1).remove(0);
    let mut nic = open(adjust(44, -84));
    let r = nic.run(&pkt(frame.clone()));
    assert_eq!(r.result.verdict, Verdict::Action { action: XdpAction::Pass });
    assert!(r.applied.is_empty());
    let mut nic = open(adjust(44, -85));
    let r = nic.run(&pkt(frame.clone()));
    assert_eq!(
        r.result.verdict,
        Verdict::Action { action: XdpAction::Drop },
        "-EINVAL leads to DROP"
    );
    assert_eq!(r.applied[0].rule, "NFP-H4");
    // The kernel takes -85.
    let (obj, p) = object(adjust(44, -85));
    let mut e = Engine::new(&obj, Some(&p.name), EngineConfig::default()).unwrap();
    let k =
        xdpqual::backends::engine::run_packet(&mut e, &pkt(frame), &mut xdpqual::engine::NoTrace);
    assert_eq!(k.verdict, Verdict::Action { action: XdpAction::Pass });
}

#[test]
fn adjust_tail_may_only_shrink() {
    let frame = synthetic_udp_frames(60, 1).remove(0);
    let mut nic = open(adjust(65, -10));
    assert_eq!(
        nic.run(&pkt(frame.clone())).result.verdict,
        Verdict::Action { action: XdpAction::Pass }
    );
    let mut nic = open(adjust(65, 10));
    let r = nic.run(&pkt(frame.clone()));
    assert_eq!(r.result.verdict, Verdict::Action { action: XdpAction::Drop });
    assert_eq!(r.applied[0].rule, "NFP-H5");
    // Shrinking below ETH_HLEN is refused too (60 - 47 = 13).
    let mut nic = open(adjust(65, -47));
    assert_eq!(nic.run(&pkt(frame)).result.verdict, Verdict::Action { action: XdpAction::Drop });
}

#[test]
fn frames_beyond_the_split_boundary_are_dropped_before_the_program() {
    let mut nic = open(ret(2));
    let r = nic.run(&pkt(synthetic_udp_frames(14 + 1889, 1).remove(0)));
    assert!(matches!(r.result.verdict, Verdict::NotRun { .. }));
    assert_eq!(r.applied[0].rule, "NFP-M7");
    let r = nic.run(&pkt(synthetic_udp_frames(14 + 1888, 1).remove(0)));
    assert_eq!(r.result.verdict, Verdict::Action { action: XdpAction::Pass });
    assert_eq!(nic.totals().oversize, 1);
}

#[test]
fn rss_spreads_flows_over_queues() {
    let nic = open(ret(2));
    let mut seen = [0u32; 4];
    for f in synthetic_udp_frames(60, 256) {
        seen[nic.queue_of(&f) as usize] += 1;
    }
    assert!(seen.iter().all(|&n| n > 0), "every queue gets flows: {seen:?}");
}

quickcheck! {
    /// A flow's queue depends on its 4-tuple only: not on the frame's
    /// length, payload or TTL, and not on when it is asked.
    fn flow_queue_is_stable(index: u16, len_a: u16, len_b: u16, fill: u8, ttl: u8) -> bool {
        let nic = open(ret(2));
        let mk = |len: u16| {
            let mut f = synthetic_udp_frames(60 + (len % 1400) as usize, index as usize + 1).pop().unwrap();
            for b in &mut f[42..] { *b = fill; }
            f[22] = ttl;
            f
        };
        let (a, b) = (mk(len_a), mk(len_b));
        nic.queue_of(&a) == nic.queue_of(&b) && nic.queue_of(&a) == nic.queue_of(&a)
    }

    /// The same packets give the same verdicts whatever the queue count.
    fn verdicts_do_not_depend_on_queue_count(queues: u8) -> TestResult {
        let q = (queues % 16) as u16 + 1;
        let (obj, p) = object(adjust(44, -20));
        let NicOpen::Ready(mut a) = NicBackend::open(&obj, &p, "nfp-corenic", Some(1)).unwrap() else { return TestResult::failed() };
        let NicOpen::Ready(mut b) = NicBackend::open(&obj, &p, "nfp-corenic", Some(q)).unwrap() else { return TestResult::failed() };
        for f in synthetic_udp_frames(60, 16) {
            let (x, y) = (a.run(&pkt(f.clone())), b.run(&pkt(f)));
            if x.result.verdict != y.result.verdict || x.result.output != y.result.output {
                return TestResult::failed();
            }
        }
        TestResult::passed()
    }

    /// A program the offload checker accepts is also accepted by the
    /// engine's prepare: the checker is never more permissive than the
    /// loader. Programs are drawn from ALU/jump/load/store/call/exit shapes
    /// with arbitrary registers, offsets and immediates.
    fn checker_pass_implies_engine_prepare(raw: Vec<(u8, u8, u8, i16, i32)>) -> TestResult {
        const CODES: &[u8] = &[0x07, 0x0f, 0x17, 0x1f, 0x27, 0x37, 0x47, 0x57, 0x67, 0x77, 0x87, 0xa7, 0xb7, 0xbf, 0xc7,
            0x04, 0x0c, 0x14, 0x24, 0x34, 0x44, 0x54, 0x64, 0x74, 0x84, 0xa4, 0xb4, 0xbc, 0xc4, 0xdc,
            0x05, 0x15, 0x1d, 0x25, 0x2d, 0x35, 0x55, 0x5d, 0x65, 0x6d, 0x16, 0x56,
            0x61, 0x69, 0x71, 0x79, 0x63, 0x6b, 0x73, 0x7b, 0xdb, 0xc3, 0x85, 0x95, 0x18];
        let mut insns: Vec<Insn> = raw.iter().take(24).map(|&(c, d, s, off, imm)| {
            let code = CODES[c as usize % CODES.len()];
            let off = if code & 0x07 == 0x05 || code & 0x07 == 0x06 { off.rem_euclid(4) } else { off % 520 };
            let imm = if code == 0x85 { [1, 7, 44, 65, 2, 12][imm.rem_euclid(6) as usize] } else { imm };
            insn(code, d % 11, s % 11, off, imm)
        }).collect();
        // lddw needs its second slot.
        let mut i = 0;
        while i < insns.len() {
            if insns[i].code == 0x18 {
                insns[i].src = 0;
                insns.insert(i + 1, insn(0, 0, 0, 0, 0));
                i += 1;
            }
            i += 1;
        }
        insns.extend(ret(2));
        let (obj, p) = object(insns);
        let profile = nic_model::Profile::builtin("nfp-corenic").unwrap();
        let report = nic_model::check(&xdpqual::backends::nic::offload_spec(&obj, &p), &profile);
        if report.verdict.exit_code() != 0 {
            return TestResult::discard();
        }
        match Engine::for_program(&p, &obj.maps, EngineConfig::default()) {
            Ok(_) => TestResult::passed(),
            Err(e) => TestResult::error(format!("checker passed but prepare refused: {e}\n{:?}", p.insns)),
        }
    }
}

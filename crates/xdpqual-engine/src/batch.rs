//! Many packets per call: [`Engine::run_batch`].
//!
//! [`Engine::run_xdp`] pays a fixed cost on every packet that has nothing
//! to do with the program: it builds the run's whole state (`Exec`, and for
//! compiled code the `JitCtx` with its slow-path table), guards the run
//! against a panic, and hands back a [`RunResult`] of several vectors. On a
//! short program that floor was most of a run (issue 16). A batch builds
//! the state once, and per packet resets only what a run changes: the
//! frame, the counters, the entry registers. What a run came to is a few
//! words in a preallocated [`RunSlot`]; what is rare (a fault's details,
//! events, a redirect target) goes to side tables indexed by packet.
//!
//! The semantics are `run_xdp`'s, packet by packet in order: maps, the
//! random-number state and the stack carry over exactly as between two
//! `run_xdp` calls (the entry frame is cleared after each run, see
//! `Engine::exec`). `batch_equals_one_by_one` in this module's tests and
//! the corpus tests hold the two paths to that. The frame is not copied
//! back out (as replay without ordered output): the next packet is laid
//! out in its place.

use super::exec::Stop;
use super::memory::*;
use super::trace::NoTrace;
use super::xdp::{NotRunReason, XdpBuff};
use super::{jit, Engine, Event, Executor, Fault, Outcome};
use super::{PacketIn, RedirectTarget, RunResult};

/// What one packet's run came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotOutcome {
    /// The program returned `r0`.
    Exit { r0: u64 },
    /// The sandbox stopped it; the fault is [`Batch::fault`] of the packet.
    Fault,
    /// The frame was refused before the program ran, as test-run does.
    NotRun(NotRunReason),
}

/// One packet's result: what [`RunResult`] says, less the frame and the
/// rare parts, which [`Batch`] keeps aside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunSlot {
    pub outcome: SlotOutcome,
    /// Instructions executed.
    pub insns: u64,
}

/// The results of one [`Engine::run_batch`] call, reusable from call to
/// call (its vectors keep their capacity).
#[derive(Debug, Default)]
pub struct Batch {
    slots: Vec<RunSlot>,
    /// By packet index, ascending.
    faults: Vec<(usize, Fault)>,
    events: Vec<(usize, Vec<Event>)>,
    redirects: Vec<(usize, RedirectTarget)>,
    executor: Option<Executor>,
}

impl Batch {
    pub fn new() -> Batch {
        Batch::default()
    }

    pub fn slots(&self) -> &[RunSlot] {
        &self.slots
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// What ran the batch's programs (every packet of a batch runs on the
    /// same executor); `None` before the first batch.
    pub fn executor(&self) -> Option<Executor> {
        self.executor
    }

    /// The fault of packet `i`, when its outcome is [`SlotOutcome::Fault`].
    pub fn fault(&self, i: usize) -> Option<&Fault> {
        side(&self.faults, i)
    }

    /// What packet `i`'s run emitted (empty for most packets).
    pub fn events(&self, i: usize) -> &[Event] {
        side(&self.events, i).map_or(&[], Vec::as_slice)
    }

    /// Where packet `i` was redirected, if its run called a redirect helper.
    pub fn redirect(&self, i: usize) -> Option<&RedirectTarget> {
        side(&self.redirects, i)
    }

    /// Packet `i`'s result as [`Engine::run_xdp`] gives it, with an empty
    /// `output` (a batch does not keep frames).
    pub fn result(&self, i: usize) -> RunResult {
        let slot = self.slots[i];
        let outcome = match slot.outcome {
            SlotOutcome::Exit { r0 } => Outcome::Exit { r0 },
            SlotOutcome::Fault => Outcome::Fault(
                self.fault(i).cloned().expect("a fault slot always has its fault recorded"),
            ),
            SlotOutcome::NotRun(reason) => Outcome::NotRun { reason },
        };
        let ran = !matches!(slot.outcome, SlotOutcome::NotRun(_));
        RunResult {
            outcome,
            output: Vec::new(),
            events: self.events(i).to_vec(),
            insns: slot.insns,
            redirect: self.redirect(i).cloned(),
            executor: if ran { self.executor } else { None },
        }
    }

    fn clear(&mut self) {
        self.slots.clear();
        self.faults.clear();
        self.events.clear();
        self.redirects.clear();
    }
}

/// The entry for packet `i` of a side table sorted by packet index.
fn side<V>(table: &[(usize, V)], i: usize) -> Option<&V> {
    table.binary_search_by_key(&i, |(at, _)| *at).ok().map(|k| &table[k].1)
}

impl Engine {
    /// Runs the entry program on each of `packets` in order, as that many
    /// [`Engine::run_xdp`] calls would, and writes the results to `out`
    /// (cleared first). Compiled code runs it when the engine has it.
    pub fn run_batch(&mut self, packets: &[PacketIn<'_>], out: &mut Batch) {
        out.clear();
        out.slots.reserve(packets.len());
        let use_jit = self.jit.is_some();
        out.executor = Some(if use_jit { Executor::Jit } else { Executor::Interpreter });
        let mut buff =
            self.buff.take().unwrap_or_else(|| Box::new(XdpBuff::empty_on(self.config.arch)));
        let ctx_addr = addr(TAG_CTX, 0);
        let entry = self.entry;
        let surroundings = self.surroundings;
        // Out of `self` for the batch, as in `Engine::exec`; put back below.
        let compiled = self.jit.take();
        let jit = compiled.as_deref().filter(|_| use_jit);
        let mut session = jit::Session::<NoTrace>::new();
        let mut events = Vec::new();
        let mut redirect = None;
        let mut tracer = NoTrace;
        let mut ex = self.exec_state(
            Some(&mut *buff),
            None,
            ctx_addr,
            &mut tracer,
            &mut events,
            &mut redirect,
        );
        for (i, pkt) in packets.iter().enumerate() {
            let laid_out = ex.buff.as_deref_mut().map(|b| b.reset_with(pkt.data, surroundings));
            if let Some(Err(reason)) = laid_out {
                out.slots.push(RunSlot { outcome: SlotOutcome::NotRun(reason), insns: 0 });
                continue;
            }
            ex.begin_run(pkt);
            // As in `Engine::exec`: the last line against a panic anywhere
            // in a run, so one packet cannot take the process down.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match jit {
                Some(code) => session.run_entry(
                    code,
                    &mut ex,
                    entry,
                    ctx_addr,
                    (pkt.ingress_ifindex, pkt.rx_queue_index),
                ),
                None => {
                    let mut regs = [0u64; 11];
                    regs[1] = ctx_addr;
                    regs[10] = addr(TAG_STACK, STACK_SIZE as u64);
                    match ex.run_frame(entry, 0, &mut regs, 0) {
                        Ok(()) | Err(Stop::Unwind) => Ok(regs[0]),
                        Err(stop) => Err(stop),
                    }
                }
            }))
            .unwrap_or_else(|payload| Err(ex.engine_panicked(entry, payload.as_ref())));
            ex.end_run();
            let outcome = match result {
                Ok(r0) => SlotOutcome::Exit { r0 },
                // Both executors turned an unwind into its r0 above.
                Err(Stop::Unwind) => unreachable!("an unwind returns r0"),
                Err(Stop::Fault(f)) => {
                    out.faults.push((i, *f));
                    SlotOutcome::Fault
                }
            };
            out.slots.push(RunSlot { outcome, insns: ex.executed });
            if !ex.events.is_empty() {
                out.events.push((i, std::mem::take(ex.events)));
            }
            if let Some(r) = ex.redirect.take() {
                out.redirects.push((i, r));
            }
        }
        drop(ex);
        self.jit = compiled;
        self.buff = Some(buff);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EngineConfig;
    use xdpqual_isa::asm::assemble;

    fn engine(src: &str, jit: bool) -> Engine {
        let p = xdpqual_object::Program {
            name: "batch".into(),
            section: "xdp".into(),
            frags: false,
            insns: assemble(src).unwrap(),
            lines: Default::default(),
            functions: Vec::new(),
        };
        Engine::for_program(&p, &[], EngineConfig { jit, ..Default::default() }).unwrap()
    }

    /// Frames of every kind a batch must handle: too short to run, plain,
    /// ones the program faults on, and ones it emits for.
    fn frames() -> Vec<Vec<u8>> {
        let mut v: Vec<Vec<u8>> = vec![vec![1; 10], vec![]];
        for len in [14usize, 15, 60, 61, 64, 100, 1500, 3600] {
            for first in [0u8, 1, 7, 0x41] {
                let mut f = vec![0xabu8; len];
                f[0] = first;
                v.push(f);
            }
        }
        v
    }

    /// Reads the first byte: 0 passes, 1 redirects (bpf_redirect to the
    /// byte at 1), 7 prints, anything else reads past the end of the frame.
    const PROG: &str = "
        mov %r6, %r1
        ldxw %r2, [%r6+0]
        ldxw %r3, [%r6+4]
        mov %r4, %r2
        add %r4, 14
        jgt %r4, %r3, drop
        ldxb %r5, [%r2+0]
        jeq %r5, 0, pass
        jeq %r5, 1, redir
        jeq %r5, 7, print
        ldxdw %r0, [%r2+4000]
        exit
    pass:
        stxdw [%r10-8], %r5
        mov %r0, 2
        exit
    redir:
        ldxb %r1, [%r2+1]
        mov %r2, 0
        call 23
        exit
    print:
        stw [%r10-8], 0x0a6968
        mov %r1, %r10
        add %r1, -8
        mov %r2, 4
        call 6
        mov %r0, 3
        exit
    drop:
        mov %r0, 1
        exit
    ";

    #[test]
    fn batch_equals_one_by_one() {
        for jit in [false, true] {
            let frames = frames();
            let packets: Vec<PacketIn> = frames
                .iter()
                .enumerate()
                .map(|(i, f)| PacketIn {
                    data: f,
                    ts_ns: i as u64 * 1000,
                    ingress_ifindex: 1,
                    rx_queue_index: 0,
                })
                .collect();
            let mut one = engine(PROG, jit);
            one.set_keep_output(false);
            let expected: Vec<RunResult> = packets.iter().map(|p| one.run_xdp(p)).collect();
            let mut batched = engine(PROG, jit);
            let mut out = Batch::new();
            // Twice, so the second batch starts from the first one's state.
            for _ in 0..2 {
                batched.run_batch(&packets, &mut out);
                assert_eq!(out.len(), packets.len());
                for (i, want) in expected.iter().enumerate() {
                    let got = out.result(i);
                    assert_eq!(
                        format!("{:?}", got),
                        format!("{:?}", want),
                        "packet {i} (jit: {jit})"
                    );
                }
            }
            // Every kind of outcome happened, so the comparison covered them.
            let kinds =
                |o: &dyn Fn(&SlotOutcome) -> bool| out.slots().iter().any(|s| o(&s.outcome));
            assert!(kinds(&|o| matches!(o, SlotOutcome::NotRun(_))));
            assert!(kinds(&|o| matches!(o, SlotOutcome::Fault)));
            assert!(kinds(&|o| matches!(o, SlotOutcome::Exit { r0: 2 })));
            assert!((0..out.len()).any(|i| !out.events(i).is_empty()));
            assert!((0..out.len()).any(|i| out.redirect(i).is_some()));
            assert_eq!(
                out.executor(),
                Some(if jit { Executor::Jit } else { Executor::Interpreter })
            );
        }
    }

    #[test]
    fn headroom_an_adjusting_program_grows_into_reads_zero_after_a_run_wrote_it() {
        // bpf_xdp_adjust_head(ctx, -8), r0 = the new first byte (headroom),
        // then 0x55 written there. The kernel lays each frame out in a
        // zeroed page (net/bpf/test_run.c, bpf_test_init) and adjust_head
        // does not clear what it exposes (net/core/filter.c), so every run
        // reads 0, also after an earlier run wrote the same byte.
        let src = "
            mov %r6, %r1
            mov %r2, -8
            call 44
            jne %r0, 0, +8
            ldxw %r2, [%r6+0]
            ldxw %r3, [%r6+4]
            mov %r4, %r2
            add %r4, 1
            jgt %r4, %r3, +3
            ldxb %r0, [%r2+0]
            stb [%r2+0], 0x55
            exit
            mov %r0, 99
            exit
        ";
        for jit in [false, true] {
            let f = vec![0x11u8; 60];
            let p = PacketIn { data: &f, ts_ns: 0, ingress_ifindex: 0, rx_queue_index: 0 };
            let mut e = engine(src, jit);
            let mut out = Batch::new();
            e.run_batch(&[p, p], &mut out);
            for s in out.slots() {
                assert_eq!(s.outcome, SlotOutcome::Exit { r0: 0 }, "jit: {jit}");
            }
            let mut e = engine(src, jit);
            for _ in 0..2 {
                assert!(matches!(e.run_xdp(&p).outcome, Outcome::Exit { r0: 0 }));
            }
        }
    }

    #[test]
    fn a_batch_leaves_the_entry_frame_zeroed() {
        // Writes a marker to the stack, then reads a slot no run wrote.
        let src = "
            mov %r1, 0x5a
            stxdw [%r10-16], %r1
            ldxdw %r0, [%r10-8]
            exit
        ";
        for jit in [false, true] {
            let mut e = engine(src, jit);
            let f = vec![0u8; 64];
            let p = PacketIn { data: &f, ts_ns: 0, ingress_ifindex: 0, rx_queue_index: 0 };
            let mut out = Batch::new();
            e.run_batch(&[p, p, p], &mut out);
            for s in out.slots() {
                assert_eq!(s.outcome, SlotOutcome::Exit { r0: 0 });
            }
            assert!(e.stack[STACK_SIZE - FRAME_SIZE..].iter().all(|&b| b == 0));
        }
    }
}

//! `__ksym` kernel variables (`Object::ksyms`) and the helpers that take
//! per-CPU ones, `bpf_per_cpu_ptr` (153) and `bpf_this_cpu_ptr` (154).
//!
//! What the kernel's verifier makes of an `lddw` of a variable's BTF id
//! (kernel/bpf/verifier.c `__check_pseudo_btf_id`): a variable vmlinux's
//! BTF lists in `.data..percpu` is `PTR_TO_BTF_ID | MEM_PERCPU`, which no
//! instruction may dereference and only these two helpers accept
//! (`ARG_PTR_TO_PERCPU_BTF_ID`, at offset 0); any other typed variable is
//! read-only memory of its type's size. The helpers
//! (kernel/bpf/helpers.c `bpf_per_cpu_ptr`, `bpf_this_cpu_ptr`) return the
//! variable's copy on a CPU, NULL from `bpf_per_cpu_ptr` when
//! `cpu >= nr_cpu_ids`; the verifier makes the copy read-only too
//! (`MEM_RDONLY` for a non-struct type; a vmlinux struct through
//! `PTR_TO_BTF_ID` can only be read from an XDP program).
//!
//! Each is a [`TAG_KSYM`] region of the engine, never host memory. Its
//! contents are the kernel's live data, which the engine cannot know:
//! reads give zeros, and the tracer hears of every read
//! ([`Region::Ksym`]), so a comparison classes a packet whose result
//! differs after such a read as nondeterministic. Writes fault, as the
//! verifier refuses them.

use super::super::exec::Exec;
use super::super::fault::{FaultKind, Region};
use super::super::memory::{addr, offset_of, tag_of, TAG_KSYM};
use super::super::trace::Tracer;
use xdpqual_object::{KsymKind, KsymVar};

/// `bpf_per_cpu_ptr(const void *percpu_ptr, u32 cpu)`.
pub const PER_CPU_PTR: i32 = 153;
/// `bpf_this_cpu_ptr(const void *percpu_ptr)`.
pub const THIS_CPU_PTR: i32 = 154;

/// Bits of the offset that address a byte of a variable: variables larger
/// than this are refused at load.
pub const BYTE_BITS: u32 = 20;
/// Bits of the view (see [`TAG_KSYM`]): CPUs beyond `2^12 - 2` are refused.
pub const VIEW_BITS: u32 = 12;
/// Variables an object may have (bits 32..40).
pub const MAX_KSYMS: usize = 256;

/// The engine address an `lddw` of variable `index` gives.
pub fn base_addr(index: usize) -> u64 {
    addr(TAG_KSYM, (index as u64) << 32)
}

fn split(a: u64) -> (usize, u64, u64) {
    let off = offset_of(a);
    (
        (off >> 32) as usize,
        (off >> BYTE_BITS) & ((1 << VIEW_BITS) - 1),
        off & ((1 << BYTE_BITS) - 1),
    )
}

/// Why a typed variable cannot be an engine region, if it cannot.
pub fn check(k: &KsymVar, index: usize) -> Result<(), String> {
    if index >= MAX_KSYMS {
        return Err(format!("more than {MAX_KSYMS} __ksym variables"));
    }
    if let KsymKind::Typed { size, .. } = k.kind {
        if size as u64 >= 1 << BYTE_BITS {
            return Err(format!(
                "__ksym variable `{}` is {size} bytes, more than the engine models ({} bytes)",
                k.name,
                (1u64 << BYTE_BITS) - 1
            ));
        }
    }
    Ok(())
}

impl<T: Tracer> Exec<'_, T> {
    /// `[a, a+len)` inside a kernel variable: zeros to read (the engine
    /// cannot know the kernel's data), a fault to write.
    pub(crate) fn ksym_slice(
        &mut self,
        pc: usize,
        a: u64,
        len: usize,
        write: bool,
    ) -> Result<&mut [u8], FaultKind> {
        let (index, view, byte) = split(a);
        let region = Region::Ksym(index as u32);
        let oob = |hi: u64| FaultKind::OutOfBounds {
            addr: a,
            size: len.min(255) as u8,
            write,
            region,
            valid: (0, hi),
        };
        let Some(KsymKind::Typed { size, percpu, .. }) = self.ksyms.get(index).map(|k| &k.kind)
        else {
            return Err(oob(0));
        };
        // A per-CPU variable's own address is not memory (the verifier
        // refuses any access through it); a plain one has only view 0.
        let valid = if *percpu { view >= 1 && view <= self.maps.ncpus as u64 } else { view == 0 };
        let hi = if valid { u64::from(*size) } else { 0 };
        if byte.checked_add(len as u64).is_none_or(|e| e > hi) {
            return Err(oob(hi));
        }
        if write {
            return Err(FaultKind::ReadOnly { addr: a, region });
        }
        self.tracer.mem(pc, region, byte, len, false);
        self.ksym_scratch.clear();
        self.ksym_scratch.resize(len, 0);
        Ok(&mut self.ksym_scratch[..])
    }

    /// `bpf_per_cpu_ptr` (`cpu` given) and `bpf_this_cpu_ptr` (`None`).
    pub(crate) fn cpu_ptr(&mut self, percpu_ptr: u64, cpu: Option<u64>) -> Result<u64, FaultKind> {
        let helper = if cpu.is_some() { "bpf_per_cpu_ptr" } else { "bpf_this_cpu_ptr" };
        let (index, view, byte) = split(percpu_ptr);
        let is_percpu = tag_of(percpu_ptr) == TAG_KSYM
            && view == 0
            && matches!(
                self.ksyms.get(index).map(|k| &k.kind),
                Some(KsymKind::Typed { percpu: true, .. })
            );
        if !is_percpu || byte != 0 {
            return Err(FaultKind::HelperArgument {
                helper,
                reason: format!(
                    "argument {percpu_ptr:#x} is not the address of a per-CPU __ksym variable \
                     (the verifier requires ARG_PTR_TO_PERCPU_BTF_ID at offset 0)"
                ),
            });
        }
        let ncpus = self.maps.ncpus as u64;
        let cpu = match cpu {
            // `cpu` is a u32 argument; NULL at or past nr_cpu_ids.
            Some(c) if (c as u32 as u64) >= ncpus => return Ok(0),
            Some(c) => c as u32 as u64,
            None => self.cpu as u64,
        };
        Ok(base_addr(index) | ((cpu + 1) << BYTE_BITS))
    }
}

#[cfg(test)]
mod tests {
    //! Hostile uses of kernel variables, under the interpreter and the JIT:
    //! each must fault (or be refused) the way the verifier's rules say.
    use crate::fault::FaultKind;
    use crate::{Engine, EngineConfig, Outcome, PacketIn};
    use xdpqual_isa::Insn;
    use xdpqual_object::{KsymKind, KsymVar, Object, Program};

    const PLAIN_ID: i32 = 40;
    const PERCPU_ID: i32 = 41;

    fn object(insns: Vec<Insn>) -> Object {
        let var = |name: &str, btf_id: u32, percpu: bool| KsymVar {
            name: name.into(),
            weak: false,
            kind: KsymKind::Typed { btf_id, type_name: "int64".into(), size: 8, percpu },
        };
        Object {
            path: Default::default(),
            programs: vec![Program {
                name: "p".into(),
                section: "xdp".into(),
                frags: false,
                insns,
                lines: Default::default(),
                functions: Vec::new(),
            }],
            maps: Vec::new(),
            license: "GPL".into(),
            byte_order: Default::default(),
            kfuncs: Default::default(),
            ksyms: vec![var("plain", PLAIN_ID as u32, false), var("pcpu", PERCPU_ID as u32, true)],
            btf: Default::default(),
        }
    }

    /// `r1 = &var` (lddw with BPF_PSEUDO_BTF_ID).
    fn ld(id: i32) -> [Insn; 2] {
        [Insn::new(0x18, 1, 3, 0, id), Insn::new(0, 0, 0, 0, 0)]
    }

    /// Runs `body` (after `r1 = &var`), then `exit`, under both executors.
    fn run(id: i32, body: &[Insn]) -> Vec<Outcome> {
        let mut insns = ld(id).to_vec();
        insns.extend_from_slice(body);
        insns.push(Insn::new(0x95, 0, 0, 0, 0));
        let obj = object(insns);
        [false, true]
            .into_iter()
            .map(|jit| {
                let cfg = EngineConfig { ncpus: 2, jit, ..EngineConfig::default() };
                let mut e = Engine::new(&obj, None, cfg).unwrap();
                let pkt = [0u8; 64];
                let pin = PacketIn { data: &pkt, ts_ns: 0, ingress_ifindex: 1, rx_queue_index: 0 };
                e.run_xdp(&pin).outcome
            })
            .collect()
    }

    fn fault(o: &Outcome) -> &FaultKind {
        match o {
            Outcome::Fault(f) => &f.kind,
            o => panic!("expected a fault, got {o:?}"),
        }
    }

    #[test]
    fn a_plain_variable_reads_zero_inside_and_faults_outside_or_on_write() {
        // r0 = *(u64 *)(r1 + 0): zeros.
        for o in run(PLAIN_ID, &[Insn::new(0x79, 0, 1, 0, 0)]) {
            assert!(matches!(o, Outcome::Exit { r0: 0 }), "{o:?}");
        }
        // One byte past its 8.
        for o in run(PLAIN_ID, &[Insn::new(0x71, 0, 1, 8, 0)]) {
            assert!(matches!(fault(&o), FaultKind::OutOfBounds { valid: (0, 8), .. }), "{o:?}");
        }
        // *(u8 *)(r1 + 0) = 1: read-only.
        for o in run(PLAIN_ID, &[Insn::new(0x72, 1, 0, 0, 1)]) {
            assert!(matches!(fault(&o), FaultKind::ReadOnly { .. }), "{o:?}");
        }
    }

    #[test]
    fn a_per_cpu_variable_is_reached_only_through_the_helpers() {
        // Its own address is no memory.
        for o in run(PERCPU_ID, &[Insn::new(0x79, 0, 1, 0, 0)]) {
            assert!(matches!(fault(&o), FaultKind::OutOfBounds { valid: (0, 0), .. }), "{o:?}");
        }
        // bpf_this_cpu_ptr gives 8 readable, read-only bytes.
        let this = [Insn::new(0x85, 0, 0, 0, super::THIS_CPU_PTR), Insn::new(0x79, 0, 0, 0, 0)];
        for o in run(PERCPU_ID, &this) {
            assert!(matches!(o, Outcome::Exit { r0: 0 }), "{o:?}");
        }
        let write = [Insn::new(0x85, 0, 0, 0, super::THIS_CPU_PTR), Insn::new(0x72, 0, 0, 0, 1)];
        for o in run(PERCPU_ID, &write) {
            assert!(matches!(fault(&o), FaultKind::ReadOnly { .. }), "{o:?}");
        }
        // bpf_per_cpu_ptr: NULL at cpu >= nr_cpu_ids (2 here), as a u32.
        for (cpu, null) in [(1i32, false), (2, true), (-1, true)] {
            let body = [
                Insn::new(0xb7, 2, 0, 0, cpu),
                Insn::new(0x85, 0, 0, 0, super::PER_CPU_PTR),
                // r0 = (r0 == 0)
                Insn::new(0x15, 0, 0, 2, 0),
                Insn::new(0xb7, 0, 0, 0, 0),
                Insn::new(0x05, 0, 0, 1, 0),
                Insn::new(0xb7, 0, 0, 0, 1),
            ];
            for o in run(PERCPU_ID, &body) {
                assert!(matches!(o, Outcome::Exit { r0 } if r0 == u64::from(null)), "{cpu}: {o:?}");
            }
        }
        // The helpers refuse anything but the variable's own address: the
        // plain variable, and the per-CPU one at an offset.
        for o in run(PLAIN_ID, &[Insn::new(0x85, 0, 0, 0, super::THIS_CPU_PTR)]) {
            assert!(matches!(fault(&o), FaultKind::HelperArgument { .. }), "{o:?}");
        }
        let off = [Insn::new(0x07, 1, 0, 0, 8), Insn::new(0x85, 0, 0, 0, super::THIS_CPU_PTR)];
        for o in run(PERCPU_ID, &off) {
            assert!(matches!(fault(&o), FaultKind::HelperArgument { .. }), "{o:?}");
        }
    }

    #[test]
    fn a_btf_id_no_variable_resolved_to_is_refused_at_load() {
        let mut insns = ld(999).to_vec();
        insns.push(Insn::new(0x95, 0, 0, 0, 0));
        let err = Engine::new(&object(insns), None, EngineConfig::default()).err().unwrap();
        assert!(err.to_string().contains("kernel BTF id 999"), "{err}");
    }
}

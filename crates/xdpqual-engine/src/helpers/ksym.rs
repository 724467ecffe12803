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

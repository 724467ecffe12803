//! XDP dynptrs: the kfuncs `bpf_dynptr_from_xdp`, `bpf_dynptr_slice`,
//! `bpf_dynptr_slice_rdwr`, `bpf_dynptr_adjust`, `bpf_dynptr_is_null`,
//! `bpf_dynptr_is_rdonly`, `bpf_dynptr_size`, `bpf_dynptr_clone`, and the
//! helpers `bpf_dynptr_read` (201) and `bpf_dynptr_write` (202), as Linux
//! 6.18 runs them on a dynptr over an `xdp_buff`.
//!
//! Sources (Linux 6.12 read in full, the 6.13-6.18 changes to these
//! functions read as patches; the host kernel's answers are the test):
//! - kernel/bpf/helpers.c: the `DYNPTR_*` size bits, `bpf_dynptr_init`,
//!   `bpf_dynptr_set_null`, `bpf_dynptr_check_off_len`, the read/write
//!   helpers (`__bpf_dynptr_read`/`__bpf_dynptr_write` from 6.14 on),
//!   `bpf_dynptr_slice(_rdwr)`, `bpf_dynptr_adjust`, `_is_null`,
//!   `_is_rdonly`, `_size`, `_clone`.
//! - net/core/filter.c: `bpf_dynptr_from_xdp`, `bpf_xdp_pointer`,
//!   `bpf_xdp_copy_buf`, `__bpf_xdp_load_bytes`, `__bpf_xdp_store_bytes`.
//! - include/linux/bpf.h: `struct bpf_dynptr_kern` (`void *data; u32 size;
//!   u32 offset;`, 16 bytes) and `enum bpf_dynptr_type` (XDP is 4).
//!
//! What the kernel does, in short: `bpf_dynptr_from_xdp` records the
//! `xdp_buff`, offset 0 and the frame's length at that moment
//! (`xdp_get_buff_len`: linear part plus fragments); flags other than 0
//! make it a null dynptr and -EINVAL. Every later use checks `offset + len`
//! against that recorded size (`bpf_dynptr_check_off_len`, -E2BIG or a
//! NULL slice), then addresses the frame as it is now, from its current
//! `data`, through `bpf_xdp_pointer`: -EFAULT when the offset or length is
//! over 0xffff, -EINVAL past the current end, a direct pointer when the
//! range lies in the linear part or in one fragment, NULL when it crosses
//! a boundary. A slice that gets no direct pointer is copied into the
//! caller's buffer (`bpf_xdp_copy_buf`) when one was given, even when
//! `bpf_xdp_pointer` failed: the copy then stops at the frame's current end
//! and leaves the rest of the buffer as it was. That case is reachable only
//! with a stale size, after `bpf_xdp_adjust_head`/`_tail` shrank the frame:
//! the verifier invalidates slices then (`clear_all_pkt_pointers` with
//! `reg_is_dynptr_slice_pkt`, kernel/bpf/verifier.c) but not the dynptr.
//! An XDP dynptr is never read-only (only skb dynptrs of programs that may
//! not write packets are, verifier.c `KF_bpf_dynptr_from_skb`), so
//! `slice_rdwr` and `bpf_dynptr_write` work on it.
//!
//! How the engine holds one. The dynptr is 16 bytes of the program's stack,
//! laid out as the kernel's struct, with the ctx address (an engine
//! address, never a host one) standing for the `xdp_buff` pointer: the
//! kernel's `data` is the ctx too (`(struct xdp_buff *)x`). The verifier
//! forbids the program to read or write those bytes; a hostile program the
//! engine runs without a verifier can, so every use re-reads them from the
//! stack and checks them: on the stack, 8-byte aligned (as the verifier
//! demands), `data` either 0 (a null dynptr) or this run's ctx, and the
//! type bits XDP. Anything else faults as a forged dynptr. A dynptr whose
//! offset or size a program rewrote can do no harm: each access is checked
//! against the frame as it is (the kernel's own `bpf_xdp_pointer` checks),
//! and each byte goes through the engine's bounds-checked `slice`.
//!
//! Slices into the linear part are ordinary engine packet addresses, which
//! every load and store checks against `[data_meta, data_end)` of the frame
//! as it is at that access. A slice copied into the program's buffer is that
//! buffer's own (stack or map value) address. The kernel can also hand out
//! a direct pointer into one fragment of a multi-buffer frame (an
//! `xdp.frags` program given a frame longer than the linear area); the
//! engine gives a fragment address (`TAG_FRAG`: fragment index and byte),
//! which every access checks against that fragment as it is then (a later
//! `bpf_xdp_adjust_tail` may shorten or drop it). `bpf_dynptr_read`/`_write`
//! and slices that cross from one part into the next (copied through the
//! buffer) work over fragments as the kernel's do.

use super::{arg_err, neg};
use crate::exec::Exec;
use crate::fault::{FaultKind, Region};
use crate::memory::{region_of, TAG_FRAG, TAG_PACKET};
use crate::trace::Tracer;

/// Internal ids of the dynptr kfuncs (see [`super::kfuncs`]): a block of
/// their own, apart from the other kfuncs' ids.
const BASE: i32 = 0x7ff0_0100;
pub const FROM_XDP: i32 = BASE;
pub const SLICE: i32 = BASE + 1;
pub const SLICE_RDWR: i32 = BASE + 2;
pub const ADJUST: i32 = BASE + 3;
pub const IS_NULL: i32 = BASE + 4;
pub const IS_RDONLY: i32 = BASE + 5;
pub const SIZE: i32 = BASE + 6;
pub const CLONE: i32 = BASE + 7;

/// The dynptr kfuncs the engine models, by name.
pub const KFUNCS: &[(&str, i32)] = &[
    ("bpf_dynptr_from_xdp", FROM_XDP),
    ("bpf_dynptr_slice", SLICE),
    ("bpf_dynptr_slice_rdwr", SLICE_RDWR),
    ("bpf_dynptr_adjust", ADJUST),
    ("bpf_dynptr_is_null", IS_NULL),
    ("bpf_dynptr_is_rdonly", IS_RDONLY),
    ("bpf_dynptr_size", SIZE),
    ("bpf_dynptr_clone", CLONE),
];

/// Whether `id` is one of the dynptr kfuncs' internal ids.
pub fn is_kfunc(id: i32) -> bool {
    (FROM_XDP..=CLONE).contains(&id)
}

/// `bpf_dynptr_read` and `bpf_dynptr_write` (enum bpf_func_id).
pub const HELPER_READ: i32 = 201;
pub const HELPER_WRITE: i32 = 202;

/// `sizeof(struct bpf_dynptr)` (and of `struct bpf_dynptr_kern`).
pub const DYNPTR_SIZE: usize = 16;
/// kernel/bpf/helpers.c: the size word's low 24 bits are the size, bits
/// 28-30 the type, bit 31 read-only.
const SIZE_MASK: u32 = 0x00ff_ffff;
const TYPE_SHIFT: u32 = 28;
const RDONLY_BIT: u32 = 1 << 31;
/// `BPF_DYNPTR_TYPE_XDP` (include/linux/bpf.h).
const TYPE_XDP: u32 = 4;

const EINVAL: i64 = 22;
const E2BIG: i64 = 7;
const EFAULT: i64 = 14;
const ERANGE: i64 = 34;

/// A dynptr as read back from the stack.
#[derive(Clone, Copy, Debug)]
struct Dynptr {
    /// The kernel's `size` word: size, type and read-only bit.
    word: u32,
    offset: u32,
}

impl Dynptr {
    fn size(self) -> u32 {
        self.word & SIZE_MASK
    }
    fn rdonly(self) -> bool {
        self.word & RDONLY_BIT != 0
    }
    /// helpers.c `bpf_dynptr_check_off_len`: -E2BIG unless
    /// `[offset, offset + len)` lies within the size.
    fn check_off_len(self, offset: u32, len: u32) -> Result<(), i64> {
        let size = self.size();
        if len > size || offset > size - len {
            return Err(-E2BIG);
        }
        Ok(())
    }
}

/// Where `bpf_xdp_pointer` found a range: `(part, offset in it)`, part 0
/// the linear area (offset from `data`), part i > 0 fragment i - 1.
type Place = (usize, usize);

impl<T: Tracer> Exec<'_, T> {
    /// Runs dynptr kfunc `id` (one of [`KFUNCS`]).
    pub(super) fn dynptr_kfunc(
        &mut self,
        id: i32,
        pc: usize,
        r: [u64; 5],
    ) -> Result<u64, FaultKind> {
        match id {
            FROM_XDP => self.dynptr_from_xdp(pc, r),
            SLICE | SLICE_RDWR => self.dynptr_slice(pc, id == SLICE_RDWR, r),
            ADJUST => {
                let at = r[0];
                let Some(mut d) = self.dynptr_at(pc, "bpf_dynptr_adjust", at)? else {
                    return Ok(neg(EINVAL));
                };
                let (start, end) = (r[1] as u32, r[2] as u32);
                if start > end {
                    return Ok(neg(EINVAL));
                }
                if start > d.size() || end > d.size() {
                    return Ok(neg(ERANGE));
                }
                d.offset = d.offset.wrapping_add(start);
                d.word = (d.word & !SIZE_MASK) | (end - start);
                self.dynptr_store(pc, at, Some(d))?;
                Ok(0)
            }
            IS_NULL => Ok(self.dynptr_at(pc, "bpf_dynptr_is_null", r[0])?.is_none() as u64),
            IS_RDONLY => Ok(self
                .dynptr_at(pc, "bpf_dynptr_is_rdonly", r[0])?
                .is_some_and(Dynptr::rdonly) as u64),
            // Returns __u32: -EINVAL for a null dynptr is 0xffffffea.
            SIZE => Ok(match self.dynptr_at(pc, "bpf_dynptr_size", r[0])? {
                Some(d) => d.size() as u64,
                None => neg(EINVAL) as u32 as u64,
            }),
            CLONE => {
                let d = self.dynptr_at(pc, "bpf_dynptr_clone", r[0])?;
                self.dynptr_uninit("bpf_dynptr_clone", r[1])?;
                self.dynptr_store(pc, r[1], d)?;
                Ok(if d.is_some() { 0 } else { neg(EINVAL) })
            }
            _ => Err(FaultKind::Internal { what: format!("dynptr kfunc id {id:#x}") }),
        }
    }

    /// `bpf_dynptr_read(dst, len, src, offset, flags)` (201) and
    /// `bpf_dynptr_write(dst, offset, src, len, flags)` (202).
    pub(super) fn dynptr_helper(
        &mut self,
        id: i32,
        pc: usize,
        r: [u64; 5],
    ) -> Result<u64, FaultKind> {
        if id == HELPER_READ {
            const NAME: &str = "bpf_dynptr_read";
            let (dst, len, offset, flags) = (r[0], r[1] as u32, r[3] as u32, r[4]);
            // ARG_PTR_TO_UNINIT_MEM of ARG_CONST_SIZE_OR_ZERO bytes: the
            // verifier checks the destination whatever the outcome.
            if len > 0 {
                self.slice(pc, dst, len as usize, true)?;
            }
            let Some(d) = self.dynptr_at(pc, NAME, r[2])? else { return Ok(neg(EINVAL)) };
            if flags != 0 {
                return Ok(neg(EINVAL));
            }
            if let Err(e) = d.check_off_len(offset, len) {
                return Ok(e as u64);
            }
            self.res.work(len as u64)?;
            let mut tmp = vec![0u8; len as usize];
            match self.xdp_load_bytes(d.offset.wrapping_add(offset), &mut tmp) {
                Ok(()) => {
                    if len > 0 {
                        self.slice(pc, dst, len as usize, true)?.copy_from_slice(&tmp);
                    }
                    Ok(0)
                }
                Err(e) => Ok(e as u64),
            }
        } else {
            const NAME: &str = "bpf_dynptr_write";
            let (offset, src, len, flags) = (r[1] as u32, r[2], r[3] as u32, r[4]);
            // ARG_PTR_TO_MEM | MEM_RDONLY of ARG_CONST_SIZE_OR_ZERO bytes.
            let bytes = self.read_bytes(pc, src, len as u64)?;
            let Some(d) = self.dynptr_at(pc, NAME, r[0])? else { return Ok(neg(EINVAL)) };
            if d.rdonly() {
                return Ok(neg(EINVAL));
            }
            if let Err(e) = d.check_off_len(offset, len) {
                return Ok(e as u64);
            }
            // The XDP case checks flags only after the range.
            if flags != 0 {
                return Ok(neg(EINVAL));
            }
            Ok(match self.xdp_store_bytes(d.offset.wrapping_add(offset), &bytes) {
                Ok(()) => 0,
                Err(e) => e as u64,
            })
        }
    }

    /// `bpf_dynptr_from_xdp(ctx, flags, ptr__uninit)`.
    fn dynptr_from_xdp(&mut self, pc: usize, r: [u64; 5]) -> Result<u64, FaultKind> {
        const NAME: &str = "bpf_dynptr_from_xdp";
        self.ctx_arg(NAME, r[0])?;
        self.dynptr_uninit(NAME, r[2])?;
        if r[1] != 0 {
            self.dynptr_store(pc, r[2], None)?;
            return Ok(neg(EINVAL));
        }
        let size = self.frame_len() as u32;
        // xdp_get_buff_len is at most 3520 + 17 * 4096 bytes, well under
        // DYNPTR_MAX_SIZE (2^24 - 1), which from_xdp does not check.
        let d = Dynptr { word: (size & SIZE_MASK) | (TYPE_XDP << TYPE_SHIFT), offset: 0 };
        self.dynptr_store(pc, r[2], Some(d))?;
        Ok(0)
    }

    /// `bpf_dynptr_slice(p, offset, buffer__opt, buffer__szk)` and
    /// `bpf_dynptr_slice_rdwr` (the same after refusing a null or
    /// read-only dynptr).
    fn dynptr_slice(&mut self, pc: usize, rdwr: bool, r: [u64; 5]) -> Result<u64, FaultKind> {
        let name = if rdwr { "bpf_dynptr_slice_rdwr" } else { "bpf_dynptr_slice" };
        let (offset, buffer, len) = (r[1] as u32, r[2], r[3] as u32);
        // A non-NULL buffer must be buffer__szk bytes of writable memory
        // (the verifier's check of a `__szk` size with an `__opt` buffer).
        if buffer != 0 {
            self.slice(pc, buffer, len as usize, true)?;
        }
        let Some(d) = self.dynptr_at(pc, name, r[0])? else { return Ok(0) };
        if rdwr && d.rdonly() {
            return Ok(0);
        }
        if d.check_off_len(offset, len).is_err() {
            return Ok(0);
        }
        let at = d.offset.wrapping_add(offset);
        if let Ok(Some((part, off))) = self.xdp_pointer(at, len) {
            if part > 0 {
                // Inside fragment `part - 1`: the kernel's pointer into the
                // fragment's page is an engine fragment address.
                return Ok(crate::memory::addr(TAG_FRAG, ((part as u64 - 1) << 16) | off as u64));
            }
            let b = self.buff.as_ref().expect("dynptr_at checked the ctx");
            return Ok(crate::memory::addr(TAG_PACKET, (b.data + off) as u64));
        }
        if buffer == 0 {
            return Ok(0);
        }
        self.res.work(len as u64)?;
        let mut tmp = Vec::new();
        self.xdp_copy_out(at as usize, len as usize, &mut tmp);
        if !tmp.is_empty() {
            self.slice(pc, buffer, tmp.len(), true)?.copy_from_slice(&tmp);
        }
        Ok(buffer)
    }

    /// Reads the dynptr at `a`: `None` for a null one. Faults unless `a` is
    /// an aligned stack slot holding a dynptr this engine could have made.
    fn dynptr_at(
        &mut self,
        pc: usize,
        name: &'static str,
        a: u64,
    ) -> Result<Option<Dynptr>, FaultKind> {
        self.dynptr_uninit(name, a)?;
        let data = self.load(pc, a, 8)?;
        let word = self.load(pc, a + 8, 4)? as u32;
        let offset = self.load(pc, a + 12, 4)? as u32;
        if data == 0 {
            return Ok(None);
        }
        if data != self.ctx_addr || self.buff.is_none() || (word >> TYPE_SHIFT) & 7 != TYPE_XDP {
            // The forged pointer word is not echoed: it is the program's
            // value, and a report must not carry what looks like an address.
            return Err(arg_err(
                name,
                format!(
                    "the dynptr at {a:#x} is not one bpf_dynptr_from_xdp made: its bytes were \
                     written by the program (size word {word:#x}), which the verifier forbids"
                ),
            ));
        }
        Ok(Some(Dynptr { word, offset }))
    }

    /// The verifier's rules for a dynptr argument's place: a stack slot at
    /// an 8-byte aligned offset (verifier.c `process_dynptr_func`:
    /// "dynptr has to be at a constant offset", and the slots are whole
    /// stack slots). The bytes themselves are checked by `slice`.
    fn dynptr_uninit(&self, name: &'static str, a: u64) -> Result<(), FaultKind> {
        if region_of(a) != Region::Stack || !a.is_multiple_of(8) {
            return Err(arg_err(
                name,
                format!("the dynptr argument {a:#x} is not an 8-byte aligned stack slot"),
            ));
        }
        Ok(())
    }

    /// Writes `d` (or a null dynptr, all zeros: `bpf_dynptr_set_null`).
    fn dynptr_store(&mut self, pc: usize, a: u64, d: Option<Dynptr>) -> Result<(), FaultKind> {
        // Check the whole 16 bytes first, so that a partial write cannot
        // happen.
        self.slice(pc, a, DYNPTR_SIZE, true)?;
        let (data, word, offset) = match d {
            Some(d) => (self.ctx_addr, d.word, d.offset),
            None => (0, 0, 0),
        };
        self.store(pc, a, 8, data)?;
        self.store(pc, a + 8, 4, word as u64)?;
        self.store(pc, a + 12, 4, offset as u64)
    }

    /// `xdp_get_buff_len`: the linear part plus the fragments.
    fn frame_len(&self) -> usize {
        self.buff.as_ref().map_or(0, |b| b.data_end - b.data + b.frags_len())
    }

    /// The frame's parts in order: the linear area from `data`, then each
    /// fragment, as (length, part number).
    fn part_lens(&self) -> Vec<usize> {
        let Some(b) = self.buff.as_ref() else { return Vec::new() };
        std::iter::once(b.data_end - b.data).chain(b.frags.iter().map(Vec::len)).collect()
    }

    /// net/core/filter.c `bpf_xdp_pointer(xdp, offset, len)`: `Err` with
    /// -EFAULT when either is over 0xffff, -EINVAL when the range passes the
    /// frame's end; `Ok(None)` when it crosses from one part into the next;
    /// else the part and the offset in it. Kept literal where the kernel
    /// is quirky: an offset at the very end of a fragmented frame falls
    /// back to the linear area with what is left of the offset.
    fn xdp_pointer(&self, offset: u32, len: u32) -> Result<Option<Place>, i64> {
        if offset > 0xffff || len > 0xffff {
            return Err(-EFAULT);
        }
        let parts = self.part_lens();
        let total: usize = parts.iter().sum();
        let (mut offset, len) = (offset as usize, len as usize);
        if offset + len > total {
            return Err(-EINVAL);
        }
        let (mut part, mut size) = (0, parts.first().copied().unwrap_or(0));
        if offset >= size {
            offset -= size;
            for (i, &frag) in parts.iter().enumerate().skip(1) {
                if offset < frag {
                    (part, size) = (i, frag);
                    break;
                }
                offset -= frag;
            }
        }
        Ok((offset + len <= size).then_some((part, offset)))
    }

    /// net/core/filter.c `bpf_xdp_copy_buf(xdp, off, buf, len, false)`:
    /// appends to `out` the bytes from `off` on, part by part, stopping
    /// after `len` bytes or at the frame's end, whichever comes first (the
    /// kernel's copy leaves the rest of the buffer as it was).
    fn xdp_copy_out(&self, mut off: usize, mut len: usize, out: &mut Vec<u8>) {
        let Some(b) = self.buff.as_ref() else { return };
        let parts =
            std::iter::once(&b.page[b.data..b.data_end]).chain(b.frags.iter().map(|f| &f[..]));
        let mut start = 0;
        for p in parts {
            if len == 0 {
                break;
            }
            if off < start + p.len() {
                let at = off - start;
                let n = len.min(p.len() - at);
                out.extend_from_slice(&p[at..at + n]);
                off += n;
                len -= n;
            }
            start += p.len();
        }
    }

    /// `__bpf_xdp_load_bytes`: `bpf_xdp_pointer`'s errors, else the bytes
    /// (directly, or through `bpf_xdp_copy_buf` across parts).
    fn xdp_load_bytes(&mut self, offset: u32, dst: &mut [u8]) -> Result<(), i64> {
        self.xdp_pointer(offset, dst.len() as u32)?;
        let mut tmp = Vec::with_capacity(dst.len());
        self.xdp_copy_out(offset as usize, dst.len(), &mut tmp);
        dst.copy_from_slice(&tmp);
        Ok(())
    }

    /// `__bpf_xdp_store_bytes`: as the load, writing.
    fn xdp_store_bytes(&mut self, offset: u32, src: &[u8]) -> Result<(), i64> {
        self.xdp_pointer(offset, src.len() as u32)?;
        let Some(b) = self.buff.as_mut() else { return Ok(()) };
        let (data, lin) = (b.data, b.data_end - b.data);
        for (i, &byte) in src.iter().enumerate() {
            let at = offset as usize + i;
            if at < lin {
                b.page[data + at] = byte;
            } else {
                let mut rest = at - lin;
                for f in b.frags.iter_mut() {
                    if rest < f.len() {
                        f[rest] = byte;
                        break;
                    }
                    rest -= f.len();
                }
            }
        }
        Ok(())
    }
}

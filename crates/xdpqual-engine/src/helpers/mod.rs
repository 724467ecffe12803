//! Helper functions, each with the kernel's argument checks and results.
//!
//! The verifier guarantees most argument properties in the kernel; the
//! engine cannot assume a verifier ran (it runs untrusted programs), so each
//! helper checks what the verifier would have and faults with a
//! `HelperArgument` naming the rule instead of misbehaving.

pub mod conntrack;
pub mod csum;
pub mod dynptr;
pub mod ids;
pub mod kfuncs;
pub mod ksym;
pub mod printk;

use super::budget::Resource;
use super::exec::{Exec, HelperMode, HelperOutcome, HelperOutcome::Return, Reservation};
use super::fault::FaultKind;
use super::maps::Index;
use super::memory::*;
use super::trace::{MapOp, Tracer};
use super::{Event, RedirectTarget};
use ids::*;
use xdpqual_object::MapType;

/// What a panic in `bpf_map_lookup_elem` is reported as, before the
/// panic's message: [`Exec::contain`]'s wording for helper 1, for the
/// JIT's guard around [`Exec::call_map_lookup_uncontained`] (a constant:
/// the guard is on every lookup's path and must not format it).
pub(crate) const MAP_LOOKUP_GUARD: &str = "helper bpf_map_lookup_elem (#1)";

/// XDP actions (enum xdp_action).
pub const XDP_ABORTED: u64 = 0;
pub const XDP_REDIRECT: u64 = 4;

/// Helper id that panics, in test builds only.
#[cfg(test)]
pub(crate) const TEST_PANIC_HELPER: i32 = 0x7fff_0001;

/// `MAX_TAIL_CALL_CNT` (include/linux/bpf.h).
pub const MAX_TAIL_CALL_CNT: u32 = 33;
/// `BPF_MAX_LOOPS` (include/linux/bpf.h): 8M iterations.
pub const BPF_MAX_LOOPS: u64 = 8 * 1024 * 1024;

const EINVAL: i64 = 22;
const ENOENT: i64 = 2;
const EFAULT: i64 = 14;
const E2BIG: i64 = 7;
const EAGAIN: i64 = 11;

fn neg(e: i64) -> u64 {
    (-e) as u64
}

fn arg_err(helper: &'static str, reason: impl Into<String>) -> FaultKind {
    FaultKind::HelperArgument { helper, reason: reason.into() }
}

/// `bpf_check_mtu(ctx, ifindex, *mtu_len, len_diff, flags)` for XDP, as
/// net/core/filter.c `bpf_xdp_check_mtu` computes it: flags other than 0
/// give -EINVAL; the device is `ifindex`, or the receive queue's device
/// when it is 0 (`__dev_via_ifindex`); the length checked is the linear
/// frame (`data_end - data`), or `*mtu_len` plus the device's L2 header
/// when `*mtu_len` is non-zero, plus `len_diff`; over `mtu +
/// hard_header_len` it returns BPF_MTU_CHK_RET_FRAG_NEEDED (1), else 0.
/// `*mtu_len` receives the device MTU (0 on the error paths).
///
/// BPF_PROG_TEST_RUN runs XDP on loopback's receive queue 0
/// (net/bpf/test_run.c bpf_prog_test_run_xdp: `__netif_get_rx_queue(
/// current->nsproxy->net_ns->loopback_dev, 0)`), and loopback is ifindex 1
/// in every namespace, with MTU 65536 and an Ethernet-sized hard header
/// (drivers/net/loopback.c loopback_setup: `dev->mtu = 64 * 1024`,
/// `hard_header_len = ETH_HLEN`). Other devices are the host's and are not
/// modelled.
const LOOPBACK_MTU: u64 = 65536;
const LOOPBACK_HARD_HEADER_LEN: i64 = 14;

impl<T: Tracer> Exec<'_, T> {
    fn map_arg(&self, helper: &'static str, v: u64) -> Result<usize, FaultKind> {
        if tag_of(v) != TAG_MAP || offset_of(v) as usize >= self.maps.maps.len() {
            return Err(arg_err(
                helper,
                format!("argument {v:#x} is not a map (expected a `lddw` map reference)"),
            ));
        }
        Ok(offset_of(v) as usize)
    }

    fn check_mtu(&mut self, pc: usize, r: [u64; 5]) -> Result<u64, FaultKind> {
        self.ctx_arg("bpf_check_mtu", r[0])?;
        let ifindex = r[1] as u32;
        let len_diff = r[3] as u32 as i32;
        // The verifier makes mtu_len a pointer to 4 writable bytes.
        let order = self.order;
        let mtu_in = order.u32_from(self.slice(pc, r[2], 4, true)?[..4].try_into().expect("4"));
        let (ret, mtu) = if r[4] != 0 {
            (neg(EINVAL), 0)
        } else if ifindex != 0 && ifindex != 1 {
            return Err(FaultKind::NotModelled {
                what: format!(
                    "bpf_check_mtu on ifindex {ifindex}: the engine models only the test-run \
                     device, loopback (ifindex 0 or 1)"
                ),
            });
        } else {
            let b = self.buff.as_ref().expect("ctx checked");
            // `int` arithmetic in the kernel.
            let mut len: i64 = if mtu_in != 0 {
                mtu_in as i32 as i64 + LOOPBACK_HARD_HEADER_LEN
            } else {
                (b.data_end - b.data) as i64
            };
            len = (len as i32).wrapping_add(len_diff) as i64;
            let dev_len = LOOPBACK_MTU as i64 + LOOPBACK_HARD_HEADER_LEN;
            (if len > dev_len { 1 } else { 0 }, LOOPBACK_MTU as u32)
        };
        self.slice(pc, r[2], 4, true)?.copy_from_slice(&order.u32_bytes(mtu));
        Ok(ret)
    }

    /// `bpf_fib_lookup(ctx, params, plen, flags)` against the modelled FIB
    /// ([`crate::fib`]). The verifier makes `params` memory of `plen`
    /// bytes (ARG_PTR_TO_MEM with ARG_CONST_SIZE, net/core/filter.c
    /// bpf_xdp_fib_lookup_proto), so that much must be readable and
    /// writable; the kernel then touches the first 64 bytes, which the
    /// model updates in a copy written back whole (unchanged bytes are
    /// written with their own values).
    fn fib_lookup(&mut self, pc: usize, r: [u64; 5]) -> Result<u64, FaultKind> {
        self.ctx_arg("bpf_fib_lookup", r[0])?;
        let Some(fib) = self.fib else {
            return Err(FaultKind::NotModelled {
                what: "bpf_fib_lookup needs a forwarding table: give one with --fib FILE \
                       (interfaces, routes and neighbours; see README)"
                    .into(),
            });
        };
        let plen = r[2] as u32 as i32;
        if plen <= 0 {
            return Err(arg_err("bpf_fib_lookup", format!("params size {plen} is not positive")));
        }
        self.res.work(plen as u64)?;
        self.slice(pc, r[1], plen as usize, true)?;
        if (plen as usize) < crate::fib::PARAMS_SIZE {
            return Ok(neg(EINVAL));
        }
        let mut p = [0u8; crate::fib::PARAMS_SIZE];
        p.copy_from_slice(&self.slice(pc, r[1], crate::fib::PARAMS_SIZE, false)?[..]);
        // The model reads and writes the struct's host-order integers
        // (tot_len/mtu_result, ifindex, rt_metric, tbid) little-endian; for
        // a big-endian program they are reversed in and out again, which
        // leaves every other byte as it was.
        let swap = |p: &mut [u8; crate::fib::PARAMS_SIZE]| {
            for (at, len) in crate::fib::HOST_ORDER_FIELDS {
                p[at..at + len].reverse();
            }
        };
        if self.big {
            swap(&mut p);
        }
        let ret = fib.lookup(&mut p, plen, r[3] as u32);
        if self.big {
            swap(&mut p);
        }
        self.slice(pc, r[1], crate::fib::PARAMS_SIZE, true)?.copy_from_slice(&p);
        Ok(ret as u64)
    }

    fn ctx_arg(&self, helper: &'static str, v: u64) -> Result<(), FaultKind> {
        if v != self.ctx_addr || self.buff.is_none() {
            return Err(arg_err(helper, "first argument must be the program's ctx"));
        }
        Ok(())
    }

    fn value_addr(&self, map: usize, slot: usize) -> u64 {
        let m = &self.maps.maps[map];
        let cpu_off = if m.def.map_type.is_percpu() { self.cpu * m.per_cpu } else { 0 };
        addr(TAG_MAP_VALUE_BASE + map as u64, (slot * m.stride + cpu_off) as u64)
    }

    /// `bpf_map_lookup_elem(r1 = map, r2 = key)` in the kernel's helper
    /// table: the element's value address, a map-in-map's inner map, or 0.
    fn map_lookup(&mut self, pc: usize, r1: u64, r2: u64) -> Result<u64, FaultKind> {
        let m = self.map_arg("bpf_map_lookup_elem", r1)?;
        let t = self.maps.maps[m].def.map_type;
        if matches!(
            t,
            MapType::ProgArray | MapType::Cpumap | MapType::Ringbuf | MapType::PerfEventArray
        ) {
            return Err(arg_err(
                "bpf_map_lookup_elem",
                format!("the verifier refuses lookups in {} maps", t.name()),
            ));
        }
        // Lookups are the hot helper: the map reads a key in the stack or
        // the packet where it is; any other small key is copied onto the
        // stack (it may be in this map's own values), not into a fresh
        // allocation.
        let ks = self.maps.maps[m].def.key_size as usize;
        let slot = if ks <= 64 {
            // Hashing and comparing the key is the helper's work.
            self.res.work(ks as u64)?;
            if let Some((key, maps)) = self.key_in_place(r2, ks) {
                maps.maps[m].find(key)
            } else {
                let mut small = [0u8; 64];
                small[..ks].copy_from_slice(self.slice(pc, r2, ks, false)?);
                self.maps.maps[m].find(&small[..ks])
            }
        } else {
            let key = self.read_bytes(pc, r2, ks as u64)?;
            self.maps.maps[m].find(&key)
        };
        self.tracer.map_op(m, slot.map_or(MapOp::Missed, |slot| MapOp::Found { slot }));
        Ok(match slot {
            // A map-in-map hands out the inner map itself
            // (arraymap.c `array_of_map_lookup_elem`, hashtab.c
            // `htab_of_map_lookup_elem`), which the program passes
            // to map helpers like a `lddw` map reference.
            Some(slot) if t.is_map_in_map() => {
                let mm = &self.maps.maps[m];
                let v = &mm.values[slot * mm.stride..][..4];
                addr(TAG_MAP, mm.order.u32_from(v.try_into().expect("4")) as u64)
            }
            Some(slot) => self.value_addr(m, slot),
            None => 0,
        })
    }

    /// `bpf_map_lookup_elem` called directly, as the JIT's lookup slow path
    /// does: what [`Exec::call_helper`] does for it (the runtime's helper
    /// table, the same checks, faults and work charge), without the
    /// generic call's dispatch and without its panic containment, which
    /// the caller provides (one guard per call, not two): a panic must
    /// become the fault `Internal { what: "{MAP_LOOKUP_GUARD}: {panic}" }`
    /// at this call, as [`Exec::contain`] words it.
    #[inline]
    pub(crate) fn call_map_lookup_uncontained(
        &mut self,
        prog: usize,
        pc: usize,
        r1: u64,
        r2: u64,
        depth: usize,
    ) -> Result<u64, FaultKind> {
        if self.helper_mode != HelperMode::Xdp {
            let mut regs = [0, r1, r2, 0, 0, 0, 0, 0, 0, 0, 0];
            return match self.call_helper(MAP_LOOKUP_ELEM, prog, pc, &mut regs, depth)? {
                Return(v) => Ok(v),
                // The conformance runtime has no lookup helper: it faults.
                _ => Err(FaultKind::Internal {
                    what: "bpf_map_lookup_elem ended the program".into(),
                }),
            };
        }
        self.map_lookup(pc, r1, r2)
    }

    /// Runs helper `id`'s body so that a panic in it (a bug in the engine)
    /// becomes this packet's fault, at this call, instead of unwinding.
    fn contain<R>(id: i32, body: impl FnOnce() -> Result<R, FaultKind>) -> Result<R, FaultKind> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).unwrap_or_else(|payload| {
            Err(FaultKind::Internal {
                what: format!(
                    "helper {}: {}",
                    super::helper_name(id),
                    super::panic_message(payload.as_ref())
                ),
            })
        })
    }

    /// Calls helper `id`. A panic inside the helper (a bug in the engine)
    /// becomes this packet's fault, at this call, instead of unwinding: the
    /// interpreter and the JIT (whose `rt_helper` calls this) report it the
    /// same way, and no unwind ever reaches compiled code.
    pub(crate) fn call_helper(
        &mut self,
        id: i32,
        prog: usize,
        pc: usize,
        regs: &mut [u64; 11],
        depth: usize,
    ) -> Result<HelperOutcome, FaultKind> {
        Self::contain(id, || self.call_helper_unguarded(id, prog, pc, regs, depth))
    }

    fn call_helper_unguarded(
        &mut self,
        id: i32,
        prog: usize,
        pc: usize,
        regs: &mut [u64; 11],
        depth: usize,
    ) -> Result<HelperOutcome, FaultKind> {
        use HelperOutcome::Return;
        let r = [regs[1], regs[2], regs[3], regs[4], regs[5]];
        if self.helper_mode == HelperMode::Conformance {
            return match id {
                5 if r[0] == 0 => Ok(HelperOutcome::Unwind(0)),
                5 => Ok(Return(r[0])),
                _ => Err(FaultKind::NotModelled {
                    what: format!("helper {id} in the conformance runtime"),
                }),
            };
        }
        match id {
            MAP_LOOKUP_ELEM => self.map_lookup(pc, r[0], r[1]).map(Return),
            MAP_UPDATE_ELEM => {
                let m = self.map_arg("bpf_map_update_elem", r[0])?;
                let def = &self.maps.maps[m].def;
                if !matches!(
                    def.map_type,
                    MapType::Hash
                        | MapType::Array
                        | MapType::PercpuHash
                        | MapType::PercpuArray
                        | MapType::LruHash
                        | MapType::LruPercpuHash
                        | MapType::LpmTrie
                ) {
                    return Err(arg_err(
                        "bpf_map_update_elem",
                        format!("programs cannot update {} maps", def.map_type.name()),
                    ));
                }
                if self.maps.maps[m].read_only {
                    return Err(arg_err(
                        "bpf_map_update_elem",
                        format!("map '{}' is read-only", def.name),
                    ));
                }
                let (ks, vs) = (def.key_size as u64, def.value_size as u64);
                let key = self.read_bytes(pc, r[1], ks)?;
                let value = self.read_bytes(pc, r[2], vs)?;
                let cpu = self.cpu;
                self.check_map_growth(m, &key)?;
                let done = self.maps.maps[m].update_slot(&key, &value, r[3], Some(cpu));
                self.tracer.map_op(
                    m,
                    match done {
                        Ok((slot, inserted)) => MapOp::Wrote { slot, inserted },
                        Err(_) => MapOp::Membership,
                    },
                );
                Ok(Return(done.map_or_else(|e| e as u64, |_| 0)))
            }
            MAP_DELETE_ELEM => {
                let m = self.map_arg("bpf_map_delete_elem", r[0])?;
                let def = &self.maps.maps[m].def;
                if matches!(
                    def.map_type,
                    MapType::ProgArray
                        | MapType::Devmap
                        | MapType::DevmapHash
                        | MapType::Cpumap
                        | MapType::Xskmap
                        | MapType::Ringbuf
                        | MapType::PerfEventArray
                        // verifier.c check_map_func_compatibility: a
                        // map-in-map allows bpf_map_lookup_elem only.
                        | MapType::ArrayOfMaps
                        | MapType::HashOfMaps
                ) {
                    return Err(arg_err(
                        "bpf_map_delete_elem",
                        format!("programs cannot delete from {} maps", def.map_type.name()),
                    ));
                }
                let key = self.read_bytes(pc, r[1], def.key_size as u64)?;
                self.tracer.map_op(m, MapOp::Membership);
                Ok(Return(self.maps.maps[m].delete(&key) as u64))
            }
            KTIME_GET_NS | KTIME_GET_BOOT_NS | KTIME_GET_COARSE_NS => Ok(Return(self.now_ns)),
            JIFFIES64 => Ok(Return(jiffies64(self.now_ns, self.hz))),
            GET_PRANDOM_U32 => Ok(Return(self.next_random() as u64)),
            GET_SMP_PROCESSOR_ID => Ok(Return(self.cpu as u64)),
            TRACE_PRINTK => self.trace_printk(pc, r).map(Return),
            TAIL_CALL => {
                self.ctx_arg("bpf_tail_call", r[0])?;
                let m = self.map_arg("bpf_tail_call", r[1])?;
                let map = &self.maps.maps[m];
                if map.def.map_type != MapType::ProgArray {
                    return Err(arg_err("bpf_tail_call", "second argument must be a PROG_ARRAY"));
                }
                // bpf_tail_call semantics (kernel/bpf/core.c JMP_TAIL_CALL):
                // out-of-range index, exhausted count or empty slot fall
                // through to the next instruction.
                let index = r[2] as u32 as usize;
                let Index::Array { present } = &map.index else {
                    unreachable!("prog array is an array")
                };
                if index >= present.len() || self.tail_calls >= MAX_TAIL_CALL_CNT || !present[index]
                {
                    return Ok(Return(neg(ENOENT)));
                }
                let target = map
                    .order
                    .u32_from(map.values[index * map.stride..][..4].try_into().expect("4"))
                    as usize;
                if target >= self.programs.len() {
                    return Ok(Return(neg(ENOENT)));
                }
                self.tail_calls += 1;
                let _ = depth;
                Ok(HelperOutcome::TailCall(target))
            }
            REDIRECT => {
                // bpf_xdp_redirect: non-zero flags abort.
                if r[1] != 0 {
                    return Ok(Return(XDP_ABORTED));
                }
                *self.redirect = Some(RedirectTarget::Ifindex { ifindex: r[0] as u32 });
                Ok(Return(XDP_REDIRECT))
            }
            REDIRECT_MAP => self.redirect_map(r).map(Return),
            PERF_EVENT_OUTPUT => self.perf_event_output(pc, r).map(Return),
            CSUM_DIFF => self.csum_diff(pc, r).map(Return),
            XDP_ADJUST_HEAD => {
                self.ctx_arg("bpf_xdp_adjust_head", r[0])?;
                if self.target_refuses_head(r[1] as i32) {
                    self.refusals.push((pc, id));
                    return Ok(Return(neg(EINVAL)));
                }
                Ok(Return(self.buff.as_mut().expect("ctx checked").adjust_head(r[1] as i32) as u64))
            }
            XDP_ADJUST_META => {
                self.ctx_arg("bpf_xdp_adjust_meta", r[0])?;
                Ok(Return(self.buff.as_mut().expect("ctx checked").adjust_meta(r[1] as i32) as u64))
            }
            XDP_ADJUST_TAIL => {
                self.ctx_arg("bpf_xdp_adjust_tail", r[0])?;
                if self.target_refuses_tail(r[1] as i32) {
                    self.refusals.push((pc, id));
                    return Ok(Return(neg(EINVAL)));
                }
                match self.buff.as_mut().expect("ctx checked").adjust_tail(r[1] as i32) {
                    Ok(v) => Ok(Return(v as u64)),
                    Err(what) => Err(FaultKind::NotModelled { what: what.into() }),
                }
            }
            XDP_GET_BUFF_LEN => {
                self.ctx_arg("bpf_xdp_get_buff_len", r[0])?;
                let b = self.buff.as_ref().expect("ctx checked");
                Ok(Return((b.data_end - b.data + b.frags_len()) as u64))
            }
            XDP_LOAD_BYTES | XDP_STORE_BYTES => {
                self.xdp_bytes(pc, id == XDP_STORE_BYTES, r).map(Return)
            }
            CHECK_MTU => self.check_mtu(pc, r).map(Return),
            ksym::PER_CPU_PTR => self.cpu_ptr(r[0], Some(r[1])).map(Return),
            ksym::THIS_CPU_PTR => self.cpu_ptr(r[0], None).map(Return),
            FIB_LOOKUP => self.fib_lookup(pc, r).map(Return),
            SPIN_LOCK | SPIN_UNLOCK => {
                // Single-threaded: locking is a no-op, but the lock must live
                // in a map value, as the verifier requires.
                if !matches!(region_of(r[0]), crate::fault::Region::MapValue(_)) {
                    return Err(arg_err("bpf_spin_lock", "the lock must be inside a map value"));
                }
                self.slice(pc, r[0], 4, true)?;
                Ok(Return(0))
            }
            RINGBUF_OUTPUT => {
                let m = self.map_arg("bpf_ringbuf_output", r[0])?;
                // The size is a u64 (kernel/bpf/ringbuf.c bpf_ringbuf_output);
                // one no region holds faults in `read_bytes` before anything
                // is copied.
                let data = self.read_bytes(pc, r[1], r[2])?;
                self.ringbuf_commit(m, data, r[3]).map(|v| Return(v as u64))
            }
            RINGBUF_RESERVE => {
                let m = self.map_arg("bpf_ringbuf_reserve", r[0])?;
                if self.maps.maps[m].def.map_type != MapType::Ringbuf {
                    return Err(arg_err("bpf_ringbuf_reserve", "map is not a RINGBUF"));
                }
                if r[2] != 0 {
                    return Ok(Return(0));
                }
                // __bpf_ringbuf_reserve: a size over RINGBUF_MAX_RECORD_SZ, or
                // a record (with its header) bigger than the ring, is NULL;
                // `ringbuf_take` does the second with checked arithmetic.
                let size = r[1];
                if size > RINGBUF_MAX_RECORD_SZ
                    || self.reservations.len() >= 256
                    || !self.ringbuf_take(m, size)
                {
                    return Ok(Return(0));
                }
                // The ring had room, so `size` is at most the ring's size
                // (up to 2 GiB for a ring the kernel accepts); the run's
                // allocation budget bounds each reservation and their sum
                // before anything is allocated.
                self.res.charge(Resource::AllocBytes, size)?;
                let data = vec![0; size as usize];
                self.reservations.push(Reservation { map: m, data, open: true });
                Ok(Return(addr(TAG_RINGBUF, ((self.reservations.len() - 1) as u64) << 24)))
            }
            RINGBUF_SUBMIT | RINGBUF_DISCARD => {
                let a = r[0];
                let rid = (offset_of(a) >> 24) as usize;
                let open = self.reservations.get(rid).is_some_and(|x| x.open);
                if tag_of(a) != TAG_RINGBUF || offset_of(a) & 0xff_ffff != 0 || !open {
                    return Err(arg_err(
                        "bpf_ringbuf_submit",
                        "argument is not an open ringbuf reservation",
                    ));
                }
                let res = &mut self.reservations[rid];
                res.open = false;
                let (map, data) = (res.map, std::mem::take(&mut res.data));
                // The space was taken at reserve time; a discarded record keeps
                // it too, since nothing consumes the ring under test-run.
                if id == RINGBUF_SUBMIT {
                    self.charge_event(data.len() as u64)?;
                    let name = self.maps.maps[map].def.name.clone();
                    self.events.push(Event::Ringbuf { map: name, data });
                }
                Ok(Return(0))
            }
            LOOP => self.bpf_loop(prog, pc, r, depth).map(Return),
            // A helper that panics, to test that a panic in helper code is
            // contained (test builds only).
            #[cfg(test)]
            TEST_PANIC_HELPER => panic!("test helper panicked with r1 = {:#x}", r[0]),
            xdpqual_isa::helpers::CORE_RELO_POISON => Err(FaultKind::CorePoisoned),
            id if xdpqual_isa::helpers::is_kfunc_poison(id) => Err(FaultKind::NotModelled {
                what: format!(
                    "a call of a weak kfunc the target kernel lacks (poisoned by the loader as \
                     libbpf does, extern #{}); the kernel rejects a program that can reach one",
                    id - xdpqual_isa::helpers::KFUNC_POISON_BASE
                ),
            }),
            kfuncs::XDP_RX_TIMESTAMP | kfuncs::XDP_RX_HASH | kfuncs::XDP_RX_VLAN_TAG => {
                // The out-arguments are left untouched, as the default
                // bodies leave them (net/core/xdp.c).
                Ok(Return(kfuncs::EOPNOTSUPP as u64))
            }
            kfuncs::XDP_FLOW_LOOKUP => {
                // net/netfilter/nf_flow_table_bpf.c bpf_xdp_flow_lookup: a
                // wrong opts_len is -EINVAL; a family other than AF_INET (2)
                // or AF_INET6 (10) -EAFNOSUPPORT; otherwise the lookup finds
                // no flowtable on the test-run device (nf_flowtable_by_dev),
                // -ENOENT. Each stores the error in opts->error and returns
                // NULL.
                let error = if r[3] as u32 != kfuncs::FLOWTABLE_OPTS_SZ {
                    kfuncs::EINVAL
                } else {
                    // struct bpf_fib_lookup begins with `__u8 family`.
                    match self.read_bytes(pc, r[1], 1)?[0] {
                        2 | 10 => kfuncs::ENOENT,
                        _ => kfuncs::EAFNOSUPPORT,
                    }
                };
                self.store(pc, r[2], 4, error as u32 as u64)?;
                Ok(Return(0))
            }
            dynptr::HELPER_READ | dynptr::HELPER_WRITE => self.dynptr_helper(id, pc, r).map(Return),
            id if dynptr::is_kfunc(id) => self.dynptr_kfunc(id, pc, r).map(Return),
            id if kfuncs::is_conntrack(id) => self.conntrack_call(id, pc, r).map(Return),
            _ => Err(FaultKind::NotModelled { what: format!("helper #{id}") }),
        }
    }
}

/// `RINGBUF_MAX_RECORD_SZ` (kernel/bpf/ringbuf.c): `UINT_MAX / 4`.
const RINGBUF_MAX_RECORD_SZ: u64 = u32::MAX as u64 / 4;

/// Bytes a ringbuf record occupies: an 8-byte header, rounded up to 8
/// (`BPF_RINGBUF_HDR_SZ`, kernel/bpf/ringbuf.c); `None` when that does not
/// fit in a u64 (the ring is then too small for it anyway).
fn ringbuf_record_size(len: u64) -> Option<u64> {
    Some(len.checked_add(8 + 7)? & !7)
}

impl<T: Tracer> Exec<'_, T> {
    /// `bpf_csum_diff` as the modelled release defines it (net/core/filter.c):
    /// see [`crate::KernelRelease::csum_diff_folds`] for the change in 6.13.
    fn csum_diff(&mut self, pc: usize, r: [u64; 5]) -> Result<u64, FaultKind> {
        let (from_size, to_size) = (r[1] as u32 as usize, r[3] as u32 as usize);
        let seed = r[4] as u32;
        // The architecture's csum_partial: x86_64's for little-endian runs,
        // s390x's for big-endian ones (the matrix's big-endian cell).
        let big = self.big;
        let partial = |buf: &[u8], seed: u32| {
            if big {
                csum::csum_partial_s390x(buf, seed)
            } else {
                csum::csum_partial_x86_64(buf, seed)
            }
        };
        if !self.kernel.csum_diff_folds() {
            // Up to 6.12: both sizes multiples of 4 and together at most the
            // 512-byte per-CPU scratch buffer (`bpf_sp.diff`), else -EINVAL;
            // the NOT of `from` then `to` go through one csum_partial.
            if (from_size | to_size) & 3 != 0 || from_size + to_size > 512 {
                return Ok(neg(EINVAL));
            }
            let from = self.read_bytes(pc, r[0], from_size as u64)?;
            let to = self.read_bytes(pc, r[2], to_size as u64)?;
            let buf = csum::diff_buffer(&from, &to);
            return Ok(u64::from(partial(&buf, seed)));
        }
        // From 6.13: csum_partial over each buffer in place, combined with
        // csum_sub, folded by csum_from32to16. The verifier bounds the sizes
        // (ARG_CONST_SIZE_OR_ZERO), so there is no -EINVAL any more.
        let from = self.read_bytes(pc, r[0], from_size as u64)?;
        let to = self.read_bytes(pc, r[2], to_size as u64)?;
        let sum = match (from_size, to_size) {
            (0, 0) => seed,
            (0, _) => partial(&to, seed),
            (_, 0) => !partial(&from, !seed),
            _ => csum::csum_sub(partial(&to, seed), partial(&from, 0)),
        };
        Ok(u64::from(csum::from32to16(sum)))
    }

    /// An offload target's adjust_head window (e.g. the NFP firmware's
    /// ADJUST_HEAD capability, checked in nfp/bpf/jit.c adjust_head).
    fn target_refuses_head(&self, delta: i32) -> bool {
        let (Some(t), Some(b)) = (self.target, self.buff.as_ref()) else { return false };
        let Some((lo, hi)) = t.adjust_head_window else { return false };
        let moved = b.data as i64 - super::xdp::XDP_PACKET_HEADROOM as i64 + delta as i64;
        let new_len = (b.data_end - b.data) as i64 - delta as i64;
        moved < lo || moved > hi || new_len < t.min_len_after_adjust as i64
    }

    /// Shrink-only adjust_tail (nfp/bpf/jit.c adjust_tail: the add must
    /// carry, so a delta >= 0 is refused; the new length must stay >= ETH_HLEN).
    fn target_refuses_tail(&self, delta: i32) -> bool {
        let (Some(t), Some(b)) = (self.target, self.buff.as_ref()) else { return false };
        if !t.adjust_tail_shrink_only {
            return false;
        }
        let new_len = (b.data_end - b.data + b.frags_len()) as i64 + delta as i64;
        delta >= 0 || new_len < t.min_len_after_adjust as i64
    }

    /// The kernel's per-CPU prandom is unknowable; this is a seeded
    /// splitmix64 so runs are reproducible.
    fn next_random(&mut self) -> u32 {
        *self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) as u32
    }

    fn trace_printk(&mut self, pc: usize, r: [u64; 5]) -> Result<u64, FaultKind> {
        let size = r[1] as u32 as usize;
        if size == 0 {
            return Err(arg_err("bpf_trace_printk", "format size is 0"));
        }
        let fmt = self.read_bytes(pc, r[0], size as u64)?;
        // bpf_bprintf_prepare: the format must be NUL-terminated in size.
        if fmt[size - 1] != 0 {
            return Ok(neg(EINVAL));
        }
        let end = fmt.iter().position(|&b| b == 0).unwrap_or(size);
        let mut strs = Vec::new();
        let mut fetch = |a: u64| -> Option<String> {
            // %s reads up to a NUL, at most the kernel's 512-byte buffer.
            let mut s = Vec::new();
            for i in 0..512u64 {
                match self.slice(pc, a.wrapping_add(i), 1, false) {
                    Ok(b) if b[0] != 0 => s.push(b[0]),
                    Ok(_) => break,
                    Err(_) => {
                        // The kernel prints "(efault)" for unreadable strings.
                        return Some("(efault)".into());
                    }
                }
            }
            let s = String::from_utf8_lossy(&s).into_owned();
            strs.push(s.clone());
            Some(s)
        };
        let line = printk::format(&fmt[..end], [r[2], r[3], r[4]], &mut fetch);
        // `%s` reads (at most 512 bytes each, three per call) are helper work.
        let fetched: usize = strs.iter().map(String::len).sum();
        self.res.work(fetched as u64)?;
        match line {
            Some(line) => {
                self.res.charge(Resource::Events, 1)?;
                self.res.charge(Resource::PrintkBytes, line.text.len() as u64)?;
                self.events.push(Event::TracePrintk { text: line.text });
                // bstr_printf's return: the whole line's length, as an int.
                Ok(line.len as i32 as i64 as u64)
            }
            None => Ok(neg(EINVAL)),
        }
    }

    /// `__bpf_xdp_redirect_map` (include/linux/filter.h): the low two bits
    /// of the flags are the action returned when the key has no entry. Only
    /// DEVMAP and DEVMAP_HASH take `BPF_F_BROADCAST` and
    /// `BPF_F_EXCLUDE_INGRESS` (their `map_redirect` passes them as the
    /// flag mask, kernel/bpf/devmap.c); CPUMAP and XSKMAP pass 0, so either
    /// flag there returns XDP_ABORTED. A broadcast redirects whatever the
    /// key: the lookup's failure is ignored.
    fn redirect_map(&mut self, r: [u64; 5]) -> Result<u64, FaultKind> {
        const ACTION_MASK: u64 = 3;
        const BPF_F_BROADCAST: u64 = 1 << 3;
        const BPF_F_EXCLUDE_INGRESS: u64 = 1 << 4;
        let m = self.map_arg("bpf_redirect_map", r[0])?;
        let map = &mut self.maps.maps[m];
        let flag_mask = match map.def.map_type {
            MapType::Devmap | MapType::DevmapHash => BPF_F_BROADCAST | BPF_F_EXCLUDE_INGRESS,
            MapType::Cpumap | MapType::Xskmap => 0,
            t => {
                return Err(arg_err(
                    "bpf_redirect_map",
                    format!("{} is not a redirect map", t.name()),
                ))
            }
        };
        let flags = r[2];
        if flags & !(ACTION_MASK | flag_mask) != 0 {
            return Ok(XDP_ABORTED);
        }
        let key = r[1] as u32;
        // The kernel indexes with the u32 argument itself
        // (devmap.c `__dev_map_lookup_elem(map, key)`); our maps take key
        // bytes, in the program's order.
        let found = map.find(&map.order.u32_bytes(key));
        if flags & BPF_F_BROADCAST != 0 {
            // Devmap values start with the target's ifindex (struct
            // bpf_devmap_val, or a bare u32).
            let ifindexes = map
                .entries()
                .iter()
                .filter_map(|e| Some(map.order.u32_from(e.values[0].get(..4)?.try_into().ok()?)))
                .collect();
            *self.redirect = Some(RedirectTarget::Broadcast {
                map: map.def.name.clone(),
                ifindexes,
                exclude_ingress: flags & BPF_F_EXCLUDE_INGRESS != 0,
            });
            return Ok(XDP_REDIRECT);
        }
        match found {
            Some(slot) => {
                let vs = map.def.value_size as usize;
                let value = map.values[slot * map.stride..][..vs].to_vec();
                *self.redirect =
                    Some(RedirectTarget::Map { map: map.def.name.clone(), key, value });
                Ok(XDP_REDIRECT)
            }
            None => {
                *self.redirect = None;
                Ok(flags & ACTION_MASK)
            }
        }
    }

    /// `bpf_xdp_event_output`: flags' low 32 bits pick the CPU slot
    /// (`BPF_F_CURRENT_CPU`), the upper 32 bits how many packet bytes to
    /// append. With no perf reader attached, as under test-run, the kernel
    /// returns -ENOENT; the engine returns the same and still records the
    /// event so the user can see what would have been sent.
    fn perf_event_output(&mut self, pc: usize, r: [u64; 5]) -> Result<u64, FaultKind> {
        const BPF_F_INDEX_MASK: u64 = 0xffff_ffff;
        const BPF_F_CURRENT_CPU: u64 = BPF_F_INDEX_MASK;
        const BPF_F_CTXLEN_MASK: u64 = 0xfffff << 32;
        self.ctx_arg("bpf_perf_event_output", r[0])?;
        let m = self.map_arg("bpf_perf_event_output", r[1])?;
        if self.maps.maps[m].def.map_type != MapType::PerfEventArray {
            return Err(arg_err("bpf_perf_event_output", "map is not a PERF_EVENT_ARRAY"));
        }
        let flags = r[2];
        if flags & !(BPF_F_CTXLEN_MASK | BPF_F_INDEX_MASK) != 0 {
            return Ok(neg(EINVAL));
        }
        let pkt_len = ((flags & BPF_F_CTXLEN_MASK) >> 32) as usize;
        let total = {
            let b = self.buff.as_ref().expect("ctx checked");
            b.data_end - b.data + b.frags_len()
        };
        if pkt_len > total {
            return Ok(neg(EFAULT));
        }
        let index = flags & BPF_F_INDEX_MASK;
        let index = if index == BPF_F_CURRENT_CPU { self.cpu as u32 } else { index as u32 };
        if index >= self.maps.maps[m].def.max_entries {
            return Ok(neg(E2BIG));
        }
        // The record's size is a u64 (bpf_xdp_event_output's meta_size).
        // Event and byte budgets are charged before anything is copied.
        self.charge_event(r[4].saturating_add(pkt_len as u64))?;
        self.res.work(pkt_len as u64)?;
        let data = self.read_bytes(pc, r[3], r[4])?;
        let b = self.buff.as_ref().expect("ctx checked");
        let mut packet = Vec::with_capacity(pkt_len);
        for part in
            std::iter::once(&b.page[b.data..b.data_end]).chain(b.frags.iter().map(|f| &f[..]))
        {
            let want = pkt_len - packet.len();
            packet.extend_from_slice(&part[..want.min(part.len())]);
        }
        self.events.push(Event::Perf {
            map: self.maps.maps[m].def.name.clone(),
            index,
            data,
            packet,
            delivered: false,
        });
        Ok(neg(ENOENT))
    }

    /// Nothing consumes records under test-run, so a ring fills up and then
    /// refuses (-EAGAIN for output, NULL for reserve), as the kernel's does.
    fn ringbuf_commit(&mut self, m: usize, data: Vec<u8>, flags: u64) -> Result<i64, FaultKind> {
        const BPF_RB_NO_WAKEUP: u64 = 1;
        const BPF_RB_FORCE_WAKEUP: u64 = 2;
        if flags & !(BPF_RB_NO_WAKEUP | BPF_RB_FORCE_WAKEUP) != 0 {
            return Ok(-EINVAL);
        }
        if self.maps.maps[m].def.map_type != MapType::Ringbuf {
            return Ok(-EINVAL);
        }
        if !self.ringbuf_take(m, data.len() as u64) {
            return Ok(-EAGAIN);
        }
        self.charge_event(data.len() as u64)?;
        self.events.push(Event::Ringbuf { map: self.maps.maps[m].def.name.clone(), data });
        Ok(0)
    }

    /// Takes space for a record; false when the ring is full (or the
    /// record could never fit it).
    fn ringbuf_take(&mut self, m: usize, len: u64) -> bool {
        let cap = self.maps.maps[m].def.max_entries as u64;
        let Some(rec) = ringbuf_record_size(len) else { return false };
        match &mut self.maps.maps[m].index {
            Index::Ringbuf { used } if used.checked_add(rec).is_some_and(|e| e <= cap) => {
                *used += rec;
                true
            }
            _ => false,
        }
    }

    /// Charges one event of `bytes` bytes to the run's budget.
    fn charge_event(&mut self, bytes: u64) -> Result<(), FaultKind> {
        self.res.charge(Resource::Events, 1)?;
        self.res.charge(Resource::EventBytes, bytes)
    }

    /// A new element in a map that grows per element must fit under the
    /// engine's map memory cap and the process-wide one (maps/ledger.rs).
    /// The kernel has no such cap (its limit is
    /// the memory cgroup), so this is a fault naming the cap, not an errno.
    /// A full map is left to `update`, which answers -E2BIG as the kernel.
    fn check_map_growth(&mut self, m: usize, key: &[u8]) -> Result<(), FaultKind> {
        let map = &self.maps.maps[m];
        let grow = map.growth_bytes();
        if grow == 0 || map.contains(key) {
            return Ok(());
        }
        let name = map.def.name.clone();
        if !self.maps.reserve_growth(grow) {
            let cap = self.maps.cap.min(super::maps::ledger::cap());
            return Err(FaultKind::MapMemoryCap { map: name, cap });
        }
        Ok(())
    }

    /// `bpf_xdp_load_bytes` / `bpf_xdp_store_bytes`: offsets count from
    /// `data` across the linear part and the fragments.
    fn xdp_bytes(&mut self, pc: usize, store: bool, r: [u64; 5]) -> Result<u64, FaultKind> {
        let name = if store { "bpf_xdp_store_bytes" } else { "bpf_xdp_load_bytes" };
        self.ctx_arg(name, r[0])?;
        let (off, len) = (r[1] as u32 as usize, r[3] as u32 as usize);
        if len == 0 {
            return Err(arg_err(name, "length must be a non-zero constant"));
        }
        if off > 0xffff || len > 0xffff {
            return Ok(neg(EFAULT));
        }
        let total = {
            let b = self.buff.as_ref().expect("ctx checked");
            b.data_end - b.data + b.frags_len()
        };
        if off + len > total {
            return Ok(neg(EINVAL));
        }
        let mut tmp = if store {
            self.read_bytes(pc, r[2], len as u64)?
        } else {
            self.res.work(len as u64)?;
            vec![0u8; len]
        };
        {
            let b = self.buff.as_mut().expect("ctx checked");
            let lin = b.data_end - b.data;
            for (i, byte) in tmp.iter_mut().enumerate() {
                let at = off + i;
                let cell = if at < lin {
                    &mut b.page[b.data + at]
                } else {
                    let mut rest = at - lin;
                    let mut found = None;
                    for f in b.frags.iter_mut() {
                        if rest < f.len() {
                            found = Some(&mut f[rest]);
                            break;
                        }
                        rest -= f.len();
                    }
                    found.expect("offset within total length")
                };
                if store {
                    *cell = *byte;
                } else {
                    *byte = *cell;
                }
            }
        }
        if !store {
            self.slice(pc, r[2], len, true)?.copy_from_slice(&tmp);
        }
        Ok(0)
    }

    /// `bpf_loop(nr, callback, ctx, flags)`: calls `callback(i, ctx)` until
    /// it returns 1 or `nr` iterations; returns the number of calls.
    fn bpf_loop(
        &mut self,
        prog: usize,
        pc: usize,
        r: [u64; 5],
        depth: usize,
    ) -> Result<u64, FaultKind> {
        if r[3] != 0 {
            return Ok(neg(EINVAL));
        }
        if r[0] > BPF_MAX_LOOPS {
            return Ok(neg(E2BIG));
        }
        if tag_of(r[1]) != TAG_FUNC {
            return Err(arg_err("bpf_loop", "callback is not a BPF function"));
        }
        if depth + 1 >= MAX_FRAMES {
            return Err(FaultKind::CallDepth);
        }
        let target = offset_of(r[1]) as usize;
        let saved_low = self.stack_low;
        let mut calls = 0;
        for i in 0..r[0] {
            let mut regs = [0u64; 11];
            regs[1] = i;
            regs[2] = r[2];
            regs[10] = addr(TAG_STACK, (STACK_SIZE - (depth + 1) * FRAME_SIZE) as u64);
            self.stack_low = STACK_SIZE - (depth + 2) * FRAME_SIZE;
            self.clear_frame(depth + 1);
            let res = self.run_frame(prog, target, &mut regs, depth + 1);
            self.stack_low = saved_low;
            calls += 1;
            match res {
                Ok(()) => {}
                // A fault in the callback is reported at the bpf_loop call.
                Err(super::exec::Stop::Fault(f)) => return Err(f.kind),
                Err(super::exec::Stop::Unwind) => break,
            }
            if regs[0] == 1 {
                break;
            }
        }
        let _ = pc;
        Ok(calls)
    }
}

/// `bpf_jiffies64` at the engine's clock `now_ns` (the packet's capture
/// time): the kernel's `get_jiffies_64()` counts `hz` ticks a second from
/// INITIAL_JIFFIES, `(unsigned long)(unsigned int)(-300 * HZ)`, which puts
/// the 32-bit wrap five minutes after boot (include/linux/jiffies.h). Like
/// the ktime helpers it is nondeterministic: the diff does not expect the
/// kernel's value.
pub(crate) fn jiffies64(now_ns: u64, hz: u32) -> u64 {
    let initial = u64::from((-300i64 * i64::from(hz)) as u32);
    let ticks = (u128::from(now_ns) * u128::from(hz) / 1_000_000_000) as u64;
    initial.wrapping_add(ticks)
}

#[cfg(test)]
mod jiffies_tests {
    #[test]
    fn jiffies_start_five_minutes_before_the_32_bit_wrap() {
        // HZ = 250: INITIAL_JIFFIES = 2^32 - 300 * 250 = 4294892296.
        assert_eq!(super::jiffies64(0, 250), 4_294_892_296);
        assert_eq!(super::jiffies64(1_000_000_000, 250), 4_294_892_296 + 250);
        // One tick is 4 ms at 250 Hz; 3.999 ms is still the same tick.
        assert_eq!(super::jiffies64(3_999_999, 250), 4_294_892_296);
        assert_eq!(super::jiffies64(4_000_000, 250), 4_294_892_297);
        // HZ = 1000: 2^32 - 300000.
        assert_eq!(super::jiffies64(0, 1000), 4_294_667_296);
    }
}

#[cfg(test)]
mod guard_tests {
    #[test]
    fn the_jit_words_a_lookup_panic_as_the_helper_containment_does() {
        // `Exec::contain` formats "helper {helper_name(id)}: {panic}".
        let contained = format!("helper {}", crate::helper_name(super::ids::MAP_LOOKUP_ELEM));
        assert_eq!(super::MAP_LOOKUP_GUARD, contained);
    }
}

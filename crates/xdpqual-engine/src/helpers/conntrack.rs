//! The XDP conntrack kfuncs against the modelled table
//! ([`crate::conntrack`]), following net/netfilter/nf_conntrack_bpf.c as of
//! Linux 6.18 (with the ct zone options of 6.11: `opts__sz` 12 or 16) and
//! the shared ctnetlink code in net/netfilter/nf_conntrack_core.c
//! (`__nf_ct_change_timeout`, `nf_ct_change_status_common`) and
//! include/net/netfilter/nf_conntrack_core.h (`__nf_ct_set_timeout`).
//!
//! A returned `struct nf_conn *` is an engine address with tag
//! [`TAG_CONNTRACK`]: the reference's index in bits 24.. of the offset and
//! the byte inside the struct below. Loads read the connection's image;
//! stores may only write `mark` (net/netfilter/nf_conntrack_bpf.c
//! `_nf_conntrack_btf_struct_access` allows writes to `mark` alone). A
//! released reference, or a number that is not one, faults.

use super::kfuncs as k;
use crate::conntrack::{self as ct, Conn, Ref, Target, Tuple, Zone};
use crate::exec::Exec;
use crate::fault::{FaultKind, Region};
use crate::memory::*;
use crate::trace::Tracer;

const EINVAL: i32 = -22;
const ENOENT: i32 = -2;
const EPROTO: i32 = -71;
const EAFNOSUPPORT: i32 = -97;
const ENONET: i32 = -64;
const ENOMEM: i32 = -12;
const EPERM: i64 = -1;
const ETIME: i64 = -62;
const EBUSY: i64 = -16;
/// `NF_BPF_CT_OPTS_SZ`, and the size before ct zones were added.
const OPTS_SZ: u32 = 16;
const OPTS_OLD_SZ: u32 = 12;
/// `sizeof(bpf_tuple->ipv4)`, `sizeof(bpf_tuple->ipv6)`
/// (include/uapi/linux/bpf.h `struct bpf_sock_tuple`).
const TUPLE4: u32 = 12;
const TUPLE6: u32 = 36;
/// `bpf_xdp_ct_alloc`'s default timeout: 10 s (`timeout * HZ`).
const ALLOC_TIMEOUT_S: u64 = 10;

fn arg(name: &'static str, reason: impl Into<String>) -> FaultKind {
    FaultKind::HelperArgument { helper: name, reason: reason.into() }
}

impl<T: Tracer> Exec<'_, T> {
    /// Dispatches one conntrack kfunc.
    pub(crate) fn conntrack_call(
        &mut self,
        id: i32,
        pc: usize,
        r: [u64; 5],
    ) -> Result<u64, FaultKind> {
        let name = k::name(id).unwrap_or("conntrack kfunc");
        if self.conntrack.is_none() {
            return Err(FaultKind::NotModelled {
                what: format!(
                    "{name}: the engine was built without the target kernel's struct nf_conn \
                     layout (the harness reads it from the target BTF)"
                ),
            });
        }
        let now = self.jiffies32();
        let hz = self.hz;
        let table = self.conntrack.as_deref_mut().expect("checked");
        table.place_seeds(now, hz);
        match id {
            k::XDP_CT_LOOKUP => self.ct_lookup(pc, r, now),
            k::XDP_CT_ALLOC => self.ct_alloc(pc, r),
            k::CT_INSERT_ENTRY => self.ct_insert(r, now),
            k::CT_RELEASE => {
                if r[0] == 0 {
                    return Ok(0);
                }
                let i = self.ct_ref(name, r[0], Some(false))?;
                self.ct_refs.refs[i].open = false;
                Ok(0)
            }
            k::CT_SET_TIMEOUT | k::CT_CHANGE_TIMEOUT => {
                let init = id == k::CT_SET_TIMEOUT;
                let i = self.ct_ref(name, r[0], Some(init))?;
                let t = ct::msecs_to_jiffies(r[1] as u32, hz).min(i32::MAX as u64) as u32;
                self.with_conn(i, |table, c| {
                    let status = table.status(c);
                    // __nf_ct_change_timeout: a fixed timeout refuses, a
                    // dying connection takes the new timeout and says so.
                    if !init && status & ct::IPS_FIXED_TIMEOUT != 0 {
                        return EPERM as u64;
                    }
                    // __nf_ct_set_timeout: absolute once confirmed,
                    // relative before.
                    let v = if status & ct::IPS_CONFIRMED != 0 { now.wrapping_add(t) } else { t };
                    table.set_timeout(c, v);
                    if !init && status & ct::IPS_DYING != 0 {
                        return ETIME as u64;
                    }
                    0
                })
            }
            k::CT_SET_STATUS | k::CT_CHANGE_STATUS => {
                let i = self.ct_ref(name, r[0], Some(id == k::CT_SET_STATUS))?;
                let status = r[1] as u32 as u64;
                self.with_conn(i, |table, c| {
                    // nf_ct_change_status_common.
                    let old = table.status(c);
                    let d = old ^ status;
                    if d & (ct::IPS_EXPECTED | ct::IPS_CONFIRMED | ct::IPS_DYING) != 0
                        || (d & ct::IPS_SEEN_REPLY != 0 && status & ct::IPS_SEEN_REPLY == 0)
                        || (d & ct::IPS_ASSURED != 0 && status & ct::IPS_ASSURED == 0)
                    {
                        return EBUSY as u64;
                    }
                    // __nf_ct_change_status(ct, status, 0): sets the
                    // changeable bits below __IPS_MAX_BIT, clears none.
                    let on = status & !ct::IPS_UNCHANGEABLE_MASK & ((1 << ct::IPS_MAX_BIT) - 1);
                    table.set_status(c, old | on);
                    0
                })
            }
            _ => Err(FaultKind::NotModelled { what: format!("kfunc id {id:#x}") }),
        }
    }

    /// The engine clock as the kernel's 32-bit jiffies (`nfct_time_stamp`).
    fn jiffies32(&self) -> u32 {
        super::jiffies64(self.now_ns, self.hz) as u32
    }

    /// The open reference `a` points at (the start of its struct), checking
    /// it is an allocated one (`Some(true)`), an inserted or looked-up one
    /// (`Some(false)`), or either. The verifier enforces these types; the
    /// engine faults instead.
    fn ct_ref(&self, name: &'static str, a: u64, init: Option<bool>) -> Result<usize, FaultKind> {
        let i = (offset_of(a) >> 24) as usize;
        let r = self.ct_refs.refs.get(i).filter(|r| r.open);
        let ok = tag_of(a) == TAG_CONNTRACK && offset_of(a) & 0xff_ffff == 0 && r.is_some();
        if !ok {
            return Err(arg(name, "argument is not a held reference to a struct nf_conn"));
        }
        let pending = matches!(r.expect("checked").target, Target::Pending(_));
        match init {
            Some(true) if !pending => Err(arg(
                name,
                "argument must be an allocated, not yet inserted, struct nf_conn___init",
            )),
            Some(false) if pending => Err(arg(
                name,
                "argument is a struct nf_conn___init; insert it first (bpf_ct_insert_entry)",
            )),
            _ => Ok(i),
        }
    }

    fn with_conn(
        &mut self,
        i: usize,
        f: impl FnOnce(&ct::Table, &mut Conn) -> u64,
    ) -> Result<u64, FaultKind> {
        let table = self.conntrack.as_deref_mut().expect("checked by conntrack_call");
        let c = match &mut self.ct_refs.refs[i].target {
            Target::Pending(c) => &mut **c,
            Target::Table(id) => match table.conns.get_mut(id) {
                Some(c) => c,
                None => {
                    return Err(FaultKind::Internal { what: "conntrack reference lost".into() })
                }
            },
        };
        // The closure reads the layout through a table without connections,
        // since the connection is borrowed mutably from the real one.
        let codec = ct::Table::codec(&table.layout, table.big);
        Ok(f(&codec, c))
    }

    /// A new reference, as an engine address.
    fn ct_push(&mut self, target: Target) -> Result<u64, FaultKind> {
        if self.ct_refs.refs.len() >= ct::MAX_REFS {
            return Err(FaultKind::NotModelled {
                what: format!("more than {} conntrack references in one run", ct::MAX_REFS),
            });
        }
        self.ct_refs.refs.push(Ref { target, open: true });
        Ok(addr(TAG_CONNTRACK, ((self.ct_refs.refs.len() - 1) as u64) << 24))
    }

    /// The checks `__bpf_nf_ct_lookup` and `__bpf_nf_ct_alloc_entry` share,
    /// up to the zone; `Err(errno)` is what goes to `opts->error`.
    /// `lookup`: l4proto is checked before netns_id (the lookup) or inside
    /// the tuple parse, after it (the allocation).
    fn ct_parse(
        &mut self,
        pc: usize,
        r: [u64; 5],
        lookup: bool,
    ) -> Result<Result<(Tuple, Zone), i32>, FaultKind> {
        let (tuple_sz, opts_sz) = (r[2] as u32, r[4] as u32);
        // The verifier makes `opts` memory of `opts__sz` bytes and the tuple
        // memory of `tuple__sz` bytes (the `__sz` argument suffix).
        let opts = self.read_bytes(pc, r[3], opts_sz as u64)?;
        let tuple = self.read_bytes(pc, r[1], tuple_sz as u64)?;
        if opts_sz != OPTS_SZ && opts_sz != OPTS_OLD_SZ {
            return Ok(Err(EINVAL));
        }
        let netns_id = self.order.u32_from(opts[0..4].try_into().expect("4")) as i32;
        let l4proto = opts[8];
        let zone_id = if self.big {
            u16::from_be_bytes([opts[10], opts[11]])
        } else {
            u16::from_le_bytes([opts[10], opts[11]])
        };
        if opts_sz == OPTS_SZ {
            if opts[13..16].iter().any(|&b| b != 0) {
                return Ok(Err(EINVAL));
            }
        } else if zone_id != 0 {
            return Ok(Err(EINVAL));
        }
        let proto_ok = l4proto == ct::IPPROTO_TCP || l4proto == ct::IPPROTO_UDP;
        if lookup && !proto_ok {
            return Ok(Err(EPROTO));
        }
        if netns_id < -1 {
            return Ok(Err(EINVAL));
        }
        if !proto_ok {
            return Ok(Err(EPROTO));
        }
        let mut t = Tuple {
            l3num: 0,
            proto: l4proto,
            src: [0; 16],
            dst: [0; 16],
            sport: [0; 2],
            dport: [0; 2],
        };
        // struct bpf_sock_tuple: saddr, daddr, sport, dport.
        let alen = match tuple_sz {
            TUPLE4 => {
                t.l3num = 2;
                4
            }
            TUPLE6 => {
                t.l3num = 10;
                16
            }
            _ => return Ok(Err(EAFNOSUPPORT)),
        };
        t.src[..alen].copy_from_slice(&tuple[..alen]);
        t.dst[..alen].copy_from_slice(&tuple[alen..2 * alen]);
        t.sport.copy_from_slice(&tuple[2 * alen..2 * alen + 2]);
        t.dport.copy_from_slice(&tuple[2 * alen + 2..2 * alen + 4]);
        if netns_id >= 0 {
            // get_net_ns_by_id: the engine models the one namespace the
            // program runs in, which has no ids for other namespaces.
            return Ok(Err(ENONET));
        }
        let zone = if opts_sz == OPTS_SZ {
            let mut dir = opts[12];
            if dir == 0 {
                // The kernel writes the default direction back.
                dir = ct::ZONE_DIR_BOTH;
                self.store(pc, r[3].wrapping_add(12), 1, dir as u64)?;
            }
            Zone { id: zone_id, dir }
        } else {
            Zone::DEFAULT
        };
        Ok(Ok((t, zone)))
    }

    fn ct_error(&mut self, pc: usize, opts: u64, err: i32) -> Result<u64, FaultKind> {
        // bpf_xdp_ct_lookup/alloc store the error in opts->error (offset 4)
        // and return NULL.
        self.store(pc, opts.wrapping_add(4), 4, err as u32 as u64)?;
        Ok(0)
    }

    fn ct_lookup(&mut self, pc: usize, r: [u64; 5], now: u32) -> Result<u64, FaultKind> {
        self.ctx_arg_ct("bpf_xdp_ct_lookup", r[0])?;
        let (t, zone) = match self.ct_parse(pc, r, true)? {
            Ok(v) => v,
            Err(e) => return self.ct_error(pc, r[3], e),
        };
        self.res.work(64)?;
        let held = self.ct_refs.held();
        let table = self.conntrack.as_deref_mut().expect("checked");
        table.collect_tuple(&t, now, &held);
        let Some((id, dir)) = table.find(&t, zone) else {
            return self.ct_error(pc, r[3], ENOENT);
        };
        // opts->dir = NF_CT_DIRECTION(hash).
        self.store(pc, r[3].wrapping_add(9), 1, dir as u64)?;
        self.ct_push(Target::Table(id))
    }

    fn ct_alloc(&mut self, pc: usize, r: [u64; 5]) -> Result<u64, FaultKind> {
        self.ctx_arg_ct("bpf_xdp_ct_alloc", r[0])?;
        let (t, zone) = match self.ct_parse(pc, r, false)? {
            Ok(v) => v,
            Err(e) => return self.ct_error(pc, r[3], e),
        };
        let hz = self.hz;
        let pending =
            self.ct_refs.refs.iter().filter(|r| matches!(r.target, Target::Pending(_))).count();
        let (mut count, size) = {
            let table = self.conntrack.as_deref().expect("checked");
            (table.conns.len(), table.layout.size)
        };
        if count + pending >= ct::MAX_ENTRIES {
            // Full: expired connections go first, as the kernel's garbage
            // collector and early drop would free them; scanning the whole
            // table is charged as helper work.
            self.res.work(count as u64 * 8)?;
            let (held, now) = (self.ct_refs.held(), self.jiffies32());
            let table = self.conntrack.as_deref_mut().expect("checked");
            table.collect(now, &held);
            count = table.conns.len();
        }
        if count + pending >= ct::MAX_ENTRIES {
            return self.ct_error(pc, r[3], ENOMEM);
        }
        self.res.charge(crate::budget::Resource::AllocBytes, size as u64)?;
        let table = self.conntrack.as_deref_mut().expect("checked");
        let mut c = table.new_conn(t, zone);
        // Unconfirmed: the timeout is relative (__nf_ct_set_timeout).
        table.set_timeout(&mut c, (ALLOC_TIMEOUT_S * hz as u64).min(i32::MAX as u64) as u32);
        self.ct_push(Target::Pending(Box::new(c)))
    }

    fn ct_insert(&mut self, r: [u64; 5], now: u32) -> Result<u64, FaultKind> {
        let i = self.ct_ref("bpf_ct_insert_entry", r[0], Some(true))?;
        // The reference is consumed whatever happens (KF_RELEASE).
        self.ct_refs.refs[i].open = false;
        let Target::Pending(c) =
            std::mem::replace(&mut self.ct_refs.refs[i].target, Target::Table(0))
        else {
            unreachable!("checked by ct_ref")
        };
        let mut c = *c;
        let held = self.ct_refs.held();
        let table = self.conntrack.as_deref_mut().expect("checked");
        table.collect_tuple(&c.orig, now, &held);
        table.collect_tuple(&c.orig.reversed(), now, &held);
        // nf_conntrack_hash_check_insert: -EEXIST when either tuple is in
        // the table already; the connection is freed and NULL returned.
        if table.find(&c.orig, c.zone).is_some() || table.find(&c.orig.reversed(), c.zone).is_some()
        {
            return Ok(0);
        }
        let status = table.status(&c) | ct::IPS_CONFIRMED;
        table.set_status(&mut c, status);
        // The timeout set before insertion is relative; it counts from the
        // insertion.
        let rel = table.timeout(&c);
        table.set_timeout(&mut c, now.wrapping_add(rel));
        let id = table.add(c);
        self.ct_push(Target::Table(id))
    }

    fn ctx_arg_ct(&self, name: &'static str, v: u64) -> Result<(), FaultKind> {
        if v != self.ctx_addr || self.buff.is_none() {
            return Err(arg(name, "first argument must be the program's ctx"));
        }
        Ok(())
    }

    /// `[off, off+len)` of the struct a conntrack address points into: the
    /// sandbox for `struct nf_conn` loads and stores.
    pub(crate) fn conntrack_slice(
        &mut self,
        a: u64,
        len: usize,
        write: bool,
    ) -> Result<&mut [u8], FaultKind> {
        let off = offset_of(a);
        let (i, inner) = ((off >> 24) as usize, off & 0xff_ffff);
        let oob = |hi: u64| FaultKind::OutOfBounds {
            addr: a,
            size: len.min(255) as u8,
            write,
            region: Region::Conntrack,
            valid: (0, hi),
        };
        let Some(table) = self.conntrack.as_deref_mut() else { return Err(oob(0)) };
        let Some(r) = self.ct_refs.refs.get_mut(i).filter(|r| r.open) else { return Err(oob(0)) };
        let size = table.layout.size as u64;
        let range = check_range(inner, len, 0, size).ok_or_else(|| oob(size))?;
        if write {
            // Only `mark` is writable (_nf_conntrack_btf_struct_access).
            let ok = table.layout.mark.is_some_and(|m| range.start >= m && range.end <= m + 4);
            if !ok {
                return Err(FaultKind::ReadOnly { addr: a, region: Region::Conntrack });
            }
        }
        let image = match &mut r.target {
            Target::Pending(c) => &mut c.image,
            Target::Table(id) => match table.conns.get_mut(id) {
                Some(c) => &mut c.image,
                None => return Err(oob(0)),
            },
        };
        Ok(&mut image[range])
    }
}

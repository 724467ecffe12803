//! The modelled conntrack table behind the XDP conntrack kfuncs
//! (`bpf_xdp_ct_lookup`, `bpf_xdp_ct_alloc`, `bpf_ct_insert_entry`,
//! `bpf_ct_release`, `bpf_ct_set_timeout`, `bpf_ct_change_timeout`,
//! `bpf_ct_set_status`, `bpf_ct_change_status`; net/netfilter/
//! nf_conntrack_bpf.c). The kfuncs themselves are in
//! `helpers/conntrack.rs`; this module holds the table and the
//! `struct nf_conn` images a program reads.
//!
//! What is modelled:
//! - one network namespace's table (the one test-run's loopback device is
//!   in), keyed by the original and the reply tuple of each connection and
//!   its zone, as nf_conntrack_find_get and nf_conntrack_hash_check_insert
//!   match them (tuple equal, zone id equal for the tuple's direction);
//! - each connection as a zeroed `struct nf_conn` of the target kernel's
//!   size (from its BTF) with `status`, `mark`, `timeout`, `zone` and both
//!   `tuplehash[].tuple` filled in at that BTF's offsets. Every other field
//!   (refcount, hash links, `ct_net`, `master`, `ext`, `proto`) reads as
//!   zero, where the kernel has live values and pointers;
//! - timeouts in jiffies at the engine's clock (the packet's timestamp,
//!   what `bpf_ktime_get_ns` returns, turned into jiffies as
//!   `bpf_jiffies64` does): an entry whose timeout has passed is gone, as
//!   if the kernel's garbage collector had already removed it.
//!
//! The table persists across the packets of a run, like a map, and
//! [`Table::entries`] reports it.

use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// `IPPROTO_TCP`, `IPPROTO_UDP`.
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;

/// Status bits (include/uapi/linux/netfilter/nf_conntrack_common.h
/// `enum ip_conntrack_status`; the values match the 6.18 BTF).
pub const IPS_EXPECTED: u64 = 1 << 0;
pub const IPS_SEEN_REPLY: u64 = 1 << 1;
pub const IPS_ASSURED: u64 = 1 << 2;
pub const IPS_CONFIRMED: u64 = 1 << 3;
pub const IPS_DYING: u64 = 1 << 9;
pub const IPS_FIXED_TIMEOUT: u64 = 1 << 10;
/// `IPS_UNCHANGEABLE_MASK`: NAT and NAT-done bits, EXPECTED, CONFIRMED,
/// DYING, SEQ_ADJUST, TEMPLATE, UNTRACKED, OFFLOAD and HW_OFFLOAD (56313 in
/// the 6.18 BTF).
pub const IPS_UNCHANGEABLE_MASK: u64 = 0xdbf9;
/// `__IPS_MAX_BIT`: bits at or above it are never set by a status change.
pub const IPS_MAX_BIT: u32 = 16;
/// `NF_CT_DEFAULT_ZONE_DIR`: a zone that applies to both directions.
pub const ZONE_DIR_BOTH: u8 = 3;
/// Connections the table holds at most. The kernel's limit is
/// `nf_conntrack_max` (262144 on this machine, sized from memory); the
/// engine holds fewer so a run's memory stays bounded, and answers as the
/// kernel does when full (`nf_conntrack_alloc`: -ENOMEM).
pub const MAX_ENTRIES: usize = 65536;
/// References one run may hold at once; the kernel's verifier bounds them
/// by the program's own acquire/release pairs, the engine by this.
pub const MAX_REFS: usize = 256;

/// Where the modelled fields lie in the target kernel's `struct nf_conn`
/// (offsets in bytes, from its BTF).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// `sizeof(struct nf_conn)`.
    pub size: usize,
    /// `status`, an `unsigned long` (8 bytes on the 64-bit machines
    /// modelled).
    pub status: usize,
    /// `timeout`, a u32 in jiffies.
    pub timeout: usize,
    /// `mark` (absent without CONFIG_NF_CONNTRACK_MARK; then no field of
    /// the struct is writable).
    pub mark: Option<usize>,
    /// `zone` (`struct nf_conntrack_zone { u16 id; u8 flags; u8 dir; }`,
    /// absent without CONFIG_NF_CONNTRACK_ZONES).
    pub zone: Option<usize>,
    /// Offsets of `tuplehash[0].tuple` and `tuplehash[1].tuple`, whose
    /// 40-byte layout is fixed by include/net/netfilter/nf_conntrack_tuple.h
    /// (`src.u3` at 0, `src.u` at 16, `src.l3num` at 18, `dst.u3` at 20,
    /// `dst.u` at 36, `dst.protonum` at 38, `dst.dir` at 39).
    pub tuples: Option<[usize; 2]>,
}

impl Layout {
    /// Checks that every field lies inside the struct.
    pub fn check(&self) -> Result<(), String> {
        let inside = |what: &str, off: usize, len: usize| {
            if off.checked_add(len).is_some_and(|e| e <= self.size) {
                Ok(())
            } else {
                Err(format!(
                    "nf_conn.{what} at {off} (+{len}) lies outside its {} bytes",
                    self.size
                ))
            }
        };
        if self.size == 0 || self.size > 4096 {
            return Err(format!("sizeof(struct nf_conn) = {} is not plausible", self.size));
        }
        inside("status", self.status, 8)?;
        inside("timeout", self.timeout, 4)?;
        if let Some(m) = self.mark {
            inside("mark", m, 4)?;
        }
        if let Some(z) = self.zone {
            inside("zone", z, 4)?;
        }
        if let Some(t) = self.tuples {
            inside("tuplehash[0].tuple", t[0], TUPLE_SIZE)?;
            inside("tuplehash[1].tuple", t[1], TUPLE_SIZE)?;
        }
        Ok(())
    }
}

/// `sizeof(struct nf_conntrack_tuple)`.
pub const TUPLE_SIZE: usize = 40;

/// One direction's tuple: addresses and ports as on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tuple {
    /// `AF_INET` (2) or `AF_INET6` (10).
    pub l3num: u16,
    pub proto: u8,
    /// IPv4 addresses use the first 4 bytes, the rest are zero
    /// (`union nf_inet_addr`).
    pub src: [u8; 16],
    pub dst: [u8; 16],
    /// Ports in network order, as their two bytes.
    pub sport: [u8; 2],
    pub dport: [u8; 2],
}

impl Tuple {
    /// The other direction's tuple (bpf_nf_ct_tuple_parse with
    /// IP_CT_DIR_REPLY swaps source and destination).
    pub fn reversed(&self) -> Tuple {
        Tuple { src: self.dst, dst: self.src, sport: self.dport, dport: self.sport, ..*self }
    }

    fn write(&self, out: &mut [u8], dir: u8) {
        out[..TUPLE_SIZE].fill(0);
        out[0..16].copy_from_slice(&self.src);
        out[16..18].copy_from_slice(&self.sport);
        out[18..20].copy_from_slice(&self.l3num.to_le_bytes());
        out[20..36].copy_from_slice(&self.dst);
        out[36..38].copy_from_slice(&self.dport);
        out[38] = self.proto;
        out[39] = dir;
    }
}

/// A conntrack zone (`struct nf_conntrack_zone`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Zone {
    pub id: u16,
    pub dir: u8,
}

impl Zone {
    /// `nf_ct_zone_dflt`.
    pub const DEFAULT: Zone = Zone { id: 0, dir: ZONE_DIR_BOTH };

    /// `nf_ct_zone_id(zone, dir)`: the id where the zone applies to that
    /// direction, else the default zone's id 0.
    fn id_for(&self, dir: u8) -> u16 {
        if self.dir & (1 << dir) != 0 {
            self.id
        } else {
            0
        }
    }
}

/// A connection given in a `--conntrack` file, in the table before the
/// first packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seed {
    /// The original direction's tuple.
    pub tuple: Tuple,
    pub zone: Zone,
    /// IPS_CONFIRMED is added: a connection in the table is confirmed.
    pub status: u64,
    pub mark: u32,
    /// Counted from the first packet that calls a conntrack kfunc.
    pub timeout_ms: u64,
}

/// What the engine is built with: the target kernel's layout and the
/// connections the table starts with.
#[derive(Clone, Debug)]
pub struct Setup {
    pub layout: Layout,
    pub seeds: Vec<Seed>,
}

/// A connection: its tuples and zone, and its `struct nf_conn` image,
/// which holds `status`, `mark` and `timeout` (the program writes `mark`
/// in place).
#[derive(Clone, Debug)]
pub(crate) struct Conn {
    pub orig: Tuple,
    pub zone: Zone,
    pub image: Vec<u8>,
}

/// A connection as the table reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EntryView {
    pub proto: u8,
    pub src: String,
    pub sport: u16,
    pub dst: String,
    pub dport: u16,
    pub zone: u16,
    pub status: u64,
    pub mark: u32,
    /// `timeout` as the struct holds it: the jiffy at which it expires.
    pub timeout_jiffies: u32,
}

/// The table, owned by the engine across packets.
#[derive(Clone, Debug)]
pub struct Table {
    pub(crate) layout: Layout,
    pub(crate) big: bool,
    pub(crate) conns: BTreeMap<u64, Conn>,
    /// Connection ids by the tuple of either direction, so that a lookup
    /// costs the same however full the table is.
    pub(crate) index: HashMap<Tuple, Vec<u64>>,
    pub(crate) next_id: u64,
    /// Seeds not yet placed: they are placed, with their timeouts counted
    /// from then, at the first conntrack kfunc call.
    pub(crate) seeds: Option<Vec<Seed>>,
}

impl Table {
    pub fn new(setup: &Setup, big: bool) -> Table {
        Table {
            layout: setup.layout.clone(),
            big,
            conns: BTreeMap::new(),
            index: HashMap::new(),
            next_id: 1,
            seeds: Some(setup.seeds.clone()),
        }
    }

    /// A table with no connections, for reading and writing images with
    /// this layout and byte order.
    pub(crate) fn codec(layout: &Layout, big: bool) -> Table {
        Table {
            layout: layout.clone(),
            big,
            conns: BTreeMap::new(),
            index: HashMap::new(),
            next_id: 0,
            seeds: None,
        }
    }

    pub(crate) fn put(&self, image: &mut [u8], off: usize, len: usize, v: u64) {
        let b = v.to_le_bytes();
        let dst = &mut image[off..off + len];
        dst.copy_from_slice(&b[..len]);
        if self.big {
            dst.reverse();
        }
    }

    pub(crate) fn get(&self, image: &[u8], off: usize, len: usize) -> u64 {
        let mut b = [0u8; 8];
        b[..len].copy_from_slice(&image[off..off + len]);
        if self.big {
            b[..len].reverse();
        }
        u64::from_le_bytes(b)
    }

    pub(crate) fn status(&self, c: &Conn) -> u64 {
        self.get(&c.image, self.layout.status, 8)
    }

    pub(crate) fn set_status(&self, c: &mut Conn, v: u64) {
        let off = self.layout.status;
        self.put(&mut c.image, off, 8, v);
    }

    pub(crate) fn timeout(&self, c: &Conn) -> u32 {
        self.get(&c.image, self.layout.timeout, 4) as u32
    }

    pub(crate) fn set_timeout(&self, c: &mut Conn, v: u32) {
        let off = self.layout.timeout;
        self.put(&mut c.image, off, 4, v as u64);
    }

    /// A new, unconfirmed connection as nf_conntrack_alloc leaves it: both
    /// tuples and the zone set, everything else zero.
    pub(crate) fn new_conn(&self, orig: Tuple, zone: Zone) -> Conn {
        let mut image = vec![0u8; self.layout.size];
        if let Some([t0, t1]) = self.layout.tuples {
            orig.write(&mut image[t0..], 0);
            orig.reversed().write(&mut image[t1..], 1);
            if self.big {
                // l3num is a host-order u16.
                image[t0 + 18..t0 + 20].reverse();
                image[t1 + 18..t1 + 20].reverse();
            }
        }
        if let Some(z) = self.layout.zone {
            self.put(&mut image, z, 2, zone.id as u64);
            image[z + 3] = zone.dir;
        }
        Conn { orig, zone, image }
    }

    /// Whether `c` has expired at jiffy `now` (nf_ct_is_expired: the
    /// timeout minus now, as a signed 32-bit number, is not positive).
    pub(crate) fn expired(&self, c: &Conn, now: u32) -> bool {
        (self.timeout(c).wrapping_sub(now) as i32) <= 0
    }

    /// Places the seeds at jiffy `now`.
    pub(crate) fn place_seeds(&mut self, now: u32, hz: u32) {
        let Some(seeds) = self.seeds.take() else { return };
        for s in seeds {
            if self.conns.len() >= MAX_ENTRIES {
                break;
            }
            let mut c = self.new_conn(s.tuple, s.zone);
            self.set_status(&mut c, s.status | IPS_CONFIRMED);
            if let Some(m) = self.layout.mark {
                self.put(&mut c.image, m, 4, s.mark as u64);
            }
            let t =
                msecs_to_jiffies(s.timeout_ms.min(u32::MAX as u64) as u32, hz).min(i32::MAX as u64);
            self.set_timeout(&mut c, now.wrapping_add(t as u32));
            self.add(c);
        }
    }

    /// Puts `c` in the table; returns its id.
    pub(crate) fn add(&mut self, c: Conn) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.index.entry(c.orig).or_default().push(id);
        self.index.entry(c.orig.reversed()).or_default().push(id);
        self.conns.insert(id, c);
        id
    }

    fn remove(&mut self, id: u64) {
        let Some(c) = self.conns.remove(&id) else { return };
        for t in [c.orig, c.orig.reversed()] {
            if let Some(ids) = self.index.get_mut(&t) {
                ids.retain(|&i| i != id);
                if ids.is_empty() {
                    self.index.remove(&t);
                }
            }
        }
    }

    /// The connection whose tuple in some direction equals `t` in zone
    /// `zone` (nf_ct_key_equal), with that direction.
    pub(crate) fn find(&self, t: &Tuple, zone: Zone) -> Option<(u64, u8)> {
        self.index.get(t)?.iter().find_map(|id| {
            let c = self.conns.get(id)?;
            let dir = if c.orig == *t { 0u8 } else { 1u8 };
            (c.zone.id_for(dir) == zone.id_for(dir)).then_some((*id, dir))
        })
    }

    /// Removes the expired connections with tuple `t` that no reference
    /// holds (`nf_ct_gc_expired` on the lookup's hash chain).
    pub(crate) fn collect_tuple(&mut self, t: &Tuple, now: u32, held: &[u64]) {
        let Some(ids) = self.index.get(t) else { return };
        let dead: Vec<u64> = ids
            .iter()
            .filter(|id| {
                !held.contains(id) && self.conns.get(id).is_some_and(|c| self.expired(c, now))
            })
            .copied()
            .collect();
        for id in dead {
            self.remove(id);
        }
    }

    /// Removes expired connections that no reference holds, as the
    /// kernel's lookup (`nf_ct_gc_expired`) and garbage collector do.
    pub(crate) fn collect(&mut self, now: u32, held: &[u64]) {
        let dead: Vec<u64> = self
            .conns
            .iter()
            .filter(|(id, c)| self.expired(c, now) && !held.contains(id))
            .map(|(id, _)| *id)
            .collect();
        for id in dead {
            self.remove(id);
        }
    }

    /// Every connection, in insertion order.
    pub fn entries(&self) -> Vec<EntryView> {
        let addr = |a: &[u8; 16], l3: u16| {
            if l3 == 2 {
                std::net::Ipv4Addr::new(a[0], a[1], a[2], a[3]).to_string()
            } else {
                std::net::Ipv6Addr::from(*a).to_string()
            }
        };
        self.conns
            .values()
            .map(|c| EntryView {
                proto: c.orig.proto,
                src: addr(&c.orig.src, c.orig.l3num),
                sport: u16::from_be_bytes(c.orig.sport),
                dst: addr(&c.orig.dst, c.orig.l3num),
                dport: u16::from_be_bytes(c.orig.dport),
                zone: c.zone.id,
                status: self.status(c),
                mark: self.layout.mark.map_or(0, |m| self.get(&c.image, m, 4) as u32),
                timeout_jiffies: self.timeout(c),
            })
            .collect()
    }

    /// Whether the seeds have not been placed yet.
    pub fn seeds_pending(&self) -> bool {
        self.seeds.is_some()
    }
}

/// `msecs_to_jiffies` for a HZ that divides 1000 (include/linux/jiffies.h
/// `_msecs_to_jiffies`: rounds up); other HZ values scale with rounding up.
pub fn msecs_to_jiffies(ms: u32, hz: u32) -> u64 {
    let hz = hz.max(1) as u64;
    (ms as u64 * hz).div_ceil(1000)
}

/// A reference a run holds (`KF_ACQUIRE` result).
#[derive(Clone, Debug)]
pub(crate) enum Target {
    /// A connection of the table.
    Table(u64),
    /// An allocated connection not yet inserted (`struct nf_conn___init`).
    Pending(Box<Conn>),
}

#[derive(Clone, Debug)]
pub(crate) struct Ref {
    pub target: Target,
    pub open: bool,
}

/// The references of one run; everything they point at is engine memory.
#[derive(Default, Debug)]
pub(crate) struct Refs {
    pub refs: Vec<Ref>,
}

impl Refs {
    /// Table ids that open references hold.
    pub(crate) fn held(&self) -> Vec<u64> {
        self.refs
            .iter()
            .filter(|r| r.open)
            .filter_map(|r| match r.target {
                Target::Table(id) => Some(id),
                Target::Pending(_) => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        // Linux 6.18 on x86_64, as harness/src/conntrackfile.rs reads it
        // from /sys/kernel/btf/vmlinux on this project's machine.
        Layout {
            size: 248,
            status: 128,
            timeout: 8,
            mark: Some(168),
            zone: Some(12),
            tuples: Some([32, 88]),
        }
    }

    fn tuple() -> Tuple {
        let mut src = [0u8; 16];
        let mut dst = [0u8; 16];
        src[..4].copy_from_slice(&[10, 0, 0, 1]);
        dst[..4].copy_from_slice(&[10, 0, 0, 2]);
        Tuple {
            l3num: 2,
            proto: 6,
            src,
            dst,
            sport: 1234u16.to_be_bytes(),
            dport: 80u16.to_be_bytes(),
        }
    }

    #[test]
    fn a_connection_is_found_from_both_directions_in_its_zone() {
        let mut t = Table::new(&Setup { layout: layout(), seeds: vec![] }, false);
        let c = t.new_conn(tuple(), Zone::DEFAULT);
        // Tuples in the image: 10.0.0.1:1234 -> 10.0.0.2:80, dir 0; reply
        // 10.0.0.2:80 -> 10.0.0.1:1234, dir 1.
        // tuplehash[0].tuple at 32: src.u3 32..48, src.u 48..50, l3num
        // 50..52, dst.u3 52..68, dst.u 68..70, protonum 70, dir 71.
        assert_eq!(&c.image[32..36], &[10, 0, 0, 1]);
        assert_eq!(&c.image[48..50], &[0x04, 0xd2]);
        assert_eq!(&c.image[50..52], &[2, 0]);
        assert_eq!(&c.image[52..56], &[10, 0, 0, 2]);
        assert_eq!(&c.image[68..70], &[0, 80]);
        assert_eq!(c.image[70], 6);
        assert_eq!(c.image[71], 0);
        // tuplehash[1].tuple at 88: the reply, dir 1.
        assert_eq!(&c.image[88..92], &[10, 0, 0, 2]);
        assert_eq!(&c.image[104..106], &[0, 80]);
        assert_eq!(c.image[127], 1);
        // zone { id 0, flags 0, dir 3 } at 12.
        assert_eq!(&c.image[12..16], &[0, 0, 0, 3]);
        assert!(c.image[128..136].iter().all(|&b| b == 0), "status starts at 0");
        let id = t.add(c);
        assert_eq!(t.find(&tuple(), Zone::DEFAULT), Some((id, 0)));
        assert_eq!(t.find(&tuple().reversed(), Zone::DEFAULT), Some((id, 1)));
        assert_eq!(t.find(&tuple(), Zone { id: 5, dir: 3 }), None);
        // A zone that applies only to the reply direction (dir bit 1)
        // leaves the original direction in zone 0.
        assert_eq!(t.find(&tuple(), Zone { id: 5, dir: 2 }), Some((id, 0)));
    }

    #[test]
    fn expiry_is_signed_32_bit_jiffies() {
        let mut t = Table::new(&Setup { layout: layout(), seeds: vec![] }, false);
        let mut c = t.new_conn(tuple(), Zone::DEFAULT);
        t.set_timeout(&mut c, 5);
        assert!(!t.expired(&c, 4));
        assert!(t.expired(&c, 5));
        // Across the 32-bit wrap: timeout 3, now 0xffff_fff0 is 19 jiffies
        // before it.
        t.set_timeout(&mut c, 3);
        assert!(!t.expired(&c, 0xffff_fff0));
        let id = t.add(c);
        t.collect(3, &[id]);
        t.collect_tuple(&tuple(), 3, &[id]);
        assert_eq!(t.conns.len(), 1, "a held connection stays");
        t.collect_tuple(&tuple().reversed(), 3, &[]);
        assert!(t.conns.is_empty() && t.index.is_empty());
    }

    #[test]
    fn msecs_round_up_to_jiffies() {
        // HZ 250: 4 ms a jiffy.
        assert_eq!(msecs_to_jiffies(10_000, 250), 2500);
        assert_eq!(msecs_to_jiffies(1, 250), 1);
        assert_eq!(msecs_to_jiffies(4, 250), 1);
        assert_eq!(msecs_to_jiffies(5, 250), 2);
        assert_eq!(msecs_to_jiffies(0, 250), 0);
    }
}

//! The kernel's LRU for LRU_HASH and LRU_PERCPU_HASH, modelled step by
//! step so that a full map evicts the keys the kernel evicts.
//!
//! Source: kernel/bpf/bpf_lru_list.c and bpf_lru_list.h as of Linux 6.18
//! (with the `target_free` batch size of 6.16), used from
//! kernel/bpf/hashtab.c (`prealloc_init`, `prealloc_lru_pop`,
//! `htab_lru_push_free`, `htab_lru_map_delete_node`). The code here is our
//! own; comments name the kernel function each step follows.
//!
//! Every element of an LRU map owns a node. A node sits on one of:
//! - the *active* or *inactive* list of an LRU list (head = most recently
//!   placed), with a reference bit that lookups set;
//! - a CPU's *pending* list (common LRU only): nodes handed out on that
//!   CPU since its last refill, not yet on the active/inactive lists;
//! - a free list: the LRU list's own, or a CPU's local one (common LRU).
//!
//! Free nodes are interchangeable (which preallocated element a key lands
//! in is not visible: the hash table is searched by key), so a free list is
//! modelled by its length. That keeps a 33-million-entry map as cheap as an
//! empty one: nodes are materialised only while they hold an element.
//!
//! Two layouts (hashtab.c `htab_map_alloc`, `BPF_F_NO_COMMON_LRU`):
//! - **common** (default): one LRU list for the map, plus per CPU a local
//!   free list and a pending list. A CPU takes nodes from its local free
//!   list; when empty it refills it with up to `target_free` nodes from the
//!   global free list, shrinking (evicting from) the inactive list for the
//!   rest; when that finds nothing it steals from the CPUs' local lists.
//! - **per-CPU lists** (`BPF_F_NO_COMMON_LRU`): one LRU list per CPU, each
//!   populated with `max_entries / ncpus` nodes (max_entries rounded up to
//!   a multiple of the CPU count); a node stays on its CPU's list for life.
//!
//! Every operation runs on one CPU: the program's (`EngineConfig::cpu`),
//! or for updates from user space the CPU the loading thread runs on.

/// `LOCAL_FREE_TARGET`: the most nodes one refill moves to a CPU's local
/// free list (the actual batch is `target_free`, at most this).
const LOCAL_FREE_TARGET: usize = 128;
/// `LOCAL_NR_SCANS`: nodes one rotation or shrink looks at (common LRU).
const LOCAL_NR_SCANS: usize = LOCAL_FREE_TARGET;
/// `PERCPU_FREE_TARGET`: nodes one shrink frees on a per-CPU list.
const PERCPU_FREE_TARGET: usize = 4;
/// `PERCPU_NR_SCANS`: nodes one rotation or shrink looks at (per-CPU lists).
const PERCPU_NR_SCANS: usize = PERCPU_FREE_TARGET;

/// Where a node is (`enum bpf_lru_list_type`, free types left out: a free
/// node is not materialised). `Head` marks a list's sentinel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    Head,
    Active,
    Inactive,
    Pending,
}

#[derive(Clone, Debug)]
struct Node {
    prev: usize,
    next: usize,
    place: Place,
    referenced: bool,
    /// The CPU whose pending list holds it (common LRU) or whose LRU list
    /// owns it (per-CPU lists): `bpf_lru_node.cpu`.
    cpu: usize,
    /// The element's key, to remove it from the table on eviction
    /// (`htab_lru_map_delete_node`).
    key: Box<[u8]>,
}

/// `struct bpf_lru_list`.
#[derive(Clone, Debug)]
struct List {
    active: usize,
    inactive: usize,
    active_len: usize,
    inactive_len: usize,
    /// `next_inactive_rotation`: a node of the inactive list, or its head.
    rotation: usize,
    /// Nodes on the list's free list.
    free: usize,
}

/// `struct bpf_lru_locallist` (common LRU, one per CPU).
#[derive(Clone, Debug)]
struct Local {
    pending: usize,
    free: usize,
    next_steal: usize,
}

/// Where a shrink puts the nodes it frees.
#[derive(Clone, Copy)]
enum Dest {
    Local(usize),
    List(usize),
}

pub(super) type NodeId = usize;

#[derive(Clone, Debug)]
pub(super) struct KernelLru {
    /// List heads first, then nodes; `spare` are ids free for reuse.
    nodes: Vec<Node>,
    spare: Vec<usize>,
    /// One list (common LRU) or one per CPU.
    lists: Vec<List>,
    /// One per CPU for the common LRU, none for per-CPU lists.
    locals: Vec<Local>,
    ncpus: usize,
    /// `bpf_lru.target_free` (common LRU).
    target_free: usize,
    /// `bpf_lru.nr_scans`.
    nr_scans: usize,
    /// Keys removed from the table since the last `take_evicted`.
    evicted: Vec<Box<[u8]>>,
}

impl KernelLru {
    /// `max_entries` the kernel gives an LRU map: with per-CPU lists it is
    /// rounded up to a multiple of the CPU count, or down when rounding up
    /// would overflow a u32 (hashtab.c `htab_map_alloc`).
    pub(super) fn max_entries(requested: usize, ncpus: usize, percpu_lists: bool) -> usize {
        let ncpus = ncpus.max(1);
        if !percpu_lists {
            return requested;
        }
        let up = requested.div_ceil(ncpus) * ncpus;
        if up > u32::MAX as usize {
            requested / ncpus * ncpus
        } else {
            up
        }
    }

    /// A map of `max_entries` nodes (already rounded by [`Self::max_entries`]),
    /// all free: `bpf_lru_init` then `bpf_lru_populate` (`prealloc_init`
    /// populates every element; LRU maps have no extra elements).
    pub(super) fn new(max_entries: usize, ncpus: usize, percpu_lists: bool) -> KernelLru {
        let ncpus = ncpus.max(1);
        let mut lru = KernelLru {
            nodes: Vec::new(),
            spare: Vec::new(),
            lists: Vec::new(),
            locals: Vec::new(),
            ncpus,
            // bpf_common_lru_populate: half a CPU's share, within
            // [1, LOCAL_FREE_TARGET].
            target_free: (max_entries / ncpus / 2).clamp(1, LOCAL_FREE_TARGET),
            nr_scans: if percpu_lists { PERCPU_NR_SCANS } else { LOCAL_NR_SCANS },
            evicted: Vec::new(),
        };
        let lists = if percpu_lists { ncpus } else { 1 };
        for _ in 0..lists {
            let active = lru.head();
            let inactive = lru.head();
            // bpf_common_lru_populate puts every node on the global free
            // list; bpf_percpu_lru_populate gives each CPU max/ncpus.
            let free = if percpu_lists { max_entries / ncpus } else { max_entries };
            lru.lists.push(List {
                active,
                inactive,
                active_len: 0,
                inactive_len: 0,
                rotation: inactive,
                free,
            });
        }
        if !percpu_lists {
            for cpu in 0..ncpus {
                let pending = lru.head();
                // bpf_lru_locallist_init: stealing starts at the CPU itself.
                lru.locals.push(Local { pending, free: 0, next_steal: cpu });
            }
        }
        lru
    }

    /// Whether the map has one LRU list per CPU (`BPF_F_NO_COMMON_LRU`).
    pub(super) fn percpu_lists(&self) -> bool {
        self.locals.is_empty()
    }

    pub(super) fn ncpus(&self) -> usize {
        self.ncpus
    }

    fn head(&mut self) -> usize {
        let id = self.nodes.len();
        self.nodes.push(Node {
            prev: id,
            next: id,
            place: Place::Head,
            referenced: false,
            cpu: 0,
            key: Box::default(),
        });
        id
    }

    fn alloc(&mut self, key: &[u8], cpu: usize) -> usize {
        let node = Node {
            prev: 0,
            next: 0,
            place: Place::Pending,
            referenced: false,
            cpu,
            key: key.into(),
        };
        match self.spare.pop() {
            Some(id) => {
                self.nodes[id] = Node { prev: id, next: id, ..node };
                id
            }
            None => {
                let id = self.nodes.len();
                self.nodes.push(Node { prev: id, next: id, ..node });
                id
            }
        }
    }

    /// Gives a node's id back; returns its key.
    fn release(&mut self, id: usize) -> Box<[u8]> {
        self.spare.push(id);
        std::mem::take(&mut self.nodes[id].key)
    }

    fn unlink(&mut self, id: usize) {
        let (p, n) = (self.nodes[id].prev, self.nodes[id].next);
        self.nodes[p].next = n;
        self.nodes[n].prev = p;
        self.nodes[id].prev = id;
        self.nodes[id].next = id;
    }

    /// `list_add`: right after the head, i.e. at the front.
    fn push_front(&mut self, head: usize, id: usize) {
        let first = self.nodes[head].next;
        self.nodes[id].prev = head;
        self.nodes[id].next = first;
        self.nodes[first].prev = id;
        self.nodes[head].next = id;
    }

    fn is_empty(&self, head: usize) -> bool {
        self.nodes[head].next == head
    }

    fn head_of(&self, li: usize, place: Place) -> usize {
        match place {
            Place::Active => self.lists[li].active,
            _ => self.lists[li].inactive,
        }
    }

    fn count(&mut self, li: usize, place: Place, up: bool) {
        let l = &mut self.lists[li];
        let c = match place {
            Place::Active => &mut l.active_len,
            Place::Inactive => &mut l.inactive_len,
            _ => return,
        };
        if up {
            *c += 1;
        } else {
            *c -= 1;
        }
    }

    /// Keeps `next_inactive_rotation` valid when `id` leaves its place: it
    /// steps back to the previous entry (as every kernel move does).
    fn leave_rotation(&mut self, li: usize, id: usize) {
        if self.lists[li].rotation == id {
            self.lists[li].rotation = self.nodes[id].prev;
        }
    }

    /// `__bpf_lru_node_move`: between or within active and inactive; the
    /// reference bit is cleared, the node goes to the front.
    fn node_move(&mut self, li: usize, id: usize, to: Place) {
        let from = self.nodes[id].place;
        if from != to {
            self.count(li, from, false);
            self.count(li, to, true);
            self.nodes[id].place = to;
        }
        self.nodes[id].referenced = false;
        self.leave_rotation(li, id);
        self.unlink(id);
        let head = self.head_of(li, to);
        self.push_front(head, id);
    }

    /// `__bpf_lru_node_move_in`: from a pending list onto the LRU list.
    fn move_in(&mut self, li: usize, id: usize, to: Place) {
        self.count(li, to, true);
        self.nodes[id].place = to;
        self.nodes[id].referenced = false;
        self.unlink(id);
        let head = self.head_of(li, to);
        self.push_front(head, id);
    }

    /// `del_from_htab` (always succeeds here: one thread, every listed node
    /// holds an element) then `__bpf_lru_node_move_to_free`.
    fn evict(&mut self, li: usize, id: usize, dest: Dest) {
        self.leave_rotation(li, id);
        let place = self.nodes[id].place;
        self.count(li, place, false);
        self.unlink(id);
        let key = self.release(id);
        self.evicted.push(key);
        match dest {
            Dest::Local(cpu) => self.locals[cpu].free += 1,
            Dest::List(l) => self.lists[l].free += 1,
        }
    }

    /// `__bpf_lru_list_rotate_active`: from the tail, referenced nodes go
    /// back to the front of active, the others to the front of inactive;
    /// at most `nr_scans` nodes, and never past the node that was first.
    fn rotate_active(&mut self, li: usize) {
        let head = self.lists[li].active;
        if self.is_empty(head) {
            return;
        }
        let first = self.nodes[head].next;
        let mut cur = self.nodes[head].prev;
        let mut i = 0;
        while cur != head {
            let before = self.nodes[cur].prev;
            let to = if self.nodes[cur].referenced { Place::Active } else { Place::Inactive };
            self.node_move(li, cur, to);
            i += 1;
            if i == self.nr_scans || cur == first {
                break;
            }
            cur = before;
        }
    }

    /// `__bpf_lru_list_rotate_inactive`: walks backwards from
    /// `next_inactive_rotation` (skipping the head, wrapping around) for at
    /// most `nr_scans` nodes, moving referenced ones to active and leaving
    /// the rest in place; the walk resumes there next time.
    fn rotate_inactive(&mut self, li: usize) {
        let head = self.lists[li].inactive;
        if self.is_empty(head) {
            return;
        }
        let start = self.lists[li].rotation;
        let mut last = self.nodes[start].next;
        if last == head {
            last = self.nodes[last].next;
        }
        let mut cur = start;
        let mut next = head;
        let mut i = 0;
        while i < self.nr_scans {
            if cur == head {
                if self.is_empty(head) {
                    break; // cannot happen (the walk stops at `last`); no spin
                }
                cur = self.nodes[cur].prev;
                continue;
            }
            next = self.nodes[cur].prev;
            if self.nodes[cur].referenced {
                self.node_move(li, cur, Place::Active);
            }
            if cur == last {
                break;
            }
            cur = next;
            i += 1;
        }
        self.lists[li].rotation = next;
    }

    /// `__bpf_lru_list_rotate`.
    fn rotate(&mut self, li: usize) {
        // bpf_lru_list_inactive_low
        if self.lists[li].inactive_len < self.lists[li].active_len {
            self.rotate_active(li);
        }
        self.rotate_inactive(li);
    }

    /// `__bpf_lru_list_shrink_inactive`: from the tail of inactive,
    /// referenced nodes go to active, the others are evicted to `dest`,
    /// until `want` are freed or `nr_scans` nodes were looked at.
    fn shrink_inactive(&mut self, li: usize, want: usize, dest: Dest) -> usize {
        let head = self.lists[li].inactive;
        let mut cur = self.nodes[head].prev;
        let (mut freed, mut i) = (0, 0);
        while cur != head {
            let before = self.nodes[cur].prev;
            if self.nodes[cur].referenced {
                self.node_move(li, cur, Place::Active);
            } else {
                self.evict(li, cur, dest);
                freed += 1;
                if freed == want {
                    break;
                }
            }
            i += 1;
            if i == self.nr_scans {
                break;
            }
            cur = before;
        }
        freed
    }

    /// `__bpf_lru_list_shrink`: when shrinking frees nothing, evicts the
    /// tail of inactive (or of active when inactive is empty) regardless of
    /// its reference bit.
    fn shrink(&mut self, li: usize, want: usize, dest: Dest) -> usize {
        let freed = self.shrink_inactive(li, want, dest);
        if freed > 0 {
            return freed;
        }
        let l = &self.lists[li];
        let head = if !self.is_empty(l.inactive) { l.inactive } else { l.active };
        let tail = self.nodes[head].prev;
        if tail == head {
            return 0;
        }
        self.evict(li, tail, dest);
        1
    }

    /// `__local_list_flush`: a CPU's pending nodes, oldest first, onto the
    /// front of active (referenced) or inactive.
    fn flush(&mut self, cpu: usize) {
        let head = self.locals[cpu].pending;
        let mut cur = self.nodes[head].prev;
        while cur != head {
            let before = self.nodes[cur].prev;
            let to = if self.nodes[cur].referenced { Place::Active } else { Place::Inactive };
            self.move_in(0, cur, to);
            cur = before;
        }
    }

    /// `bpf_lru_list_pop_free_to_local`: flush, rotate, then move up to
    /// `target_free` free nodes to the CPU's local free list, shrinking the
    /// LRU list for what the global free list lacks.
    fn refill_local(&mut self, cpu: usize) {
        self.flush(cpu);
        self.rotate(0);
        let take = self.lists[0].free.min(self.target_free);
        self.lists[0].free -= take;
        self.locals[cpu].free += take;
        if take < self.target_free {
            self.shrink(0, self.target_free - take, Dest::Local(cpu));
        }
    }

    /// `__local_list_add_pending`.
    fn add_pending(&mut self, cpu: usize, id: usize, key: &[u8]) {
        let n = &mut self.nodes[id];
        n.cpu = cpu;
        n.place = Place::Pending;
        n.referenced = false;
        n.key = key.into();
        let head = self.locals[cpu].pending;
        self.push_front(head, id);
    }

    /// `__local_list_pop_pending`: the oldest unreferenced pending node of
    /// `victim`, else the oldest one; its element is evicted.
    fn steal_pending(&mut self, victim: usize) -> Option<usize> {
        let head = self.locals[victim].pending;
        for force in [false, true] {
            let mut cur = self.nodes[head].prev;
            while cur != head {
                if force || !self.nodes[cur].referenced {
                    self.unlink(cur);
                    let key = std::mem::take(&mut self.nodes[cur].key);
                    self.evicted.push(key);
                    return Some(cur);
                }
                cur = self.nodes[cur].prev;
            }
        }
        None
    }

    /// `bpf_common_lru_pop_free`.
    fn common_pop(&mut self, cpu: usize, key: &[u8]) -> Option<NodeId> {
        if self.locals[cpu].free == 0 {
            self.refill_local(cpu);
        }
        if self.locals[cpu].free > 0 {
            self.locals[cpu].free -= 1;
            let id = self.alloc(key, cpu);
            self.add_pending(cpu, id, key);
            return Some(id);
        }
        // Nothing free locally nor on the LRU list: steal a free node, or
        // else a pending one, round robin from `next_steal`.
        let first = self.locals[cpu].next_steal;
        let mut steal = first;
        let got = loop {
            let got = if self.locals[steal].free > 0 {
                self.locals[steal].free -= 1;
                Some(self.alloc(key, cpu))
            } else {
                self.steal_pending(steal)
            };
            // get_next_cpu: possible CPUs are 0..ncpus here.
            steal = (steal + 1) % self.ncpus;
            if got.is_some() || steal == first {
                break got;
            }
        };
        self.locals[cpu].next_steal = steal;
        let id = got?;
        self.add_pending(cpu, id, key);
        Some(id)
    }

    /// `bpf_percpu_lru_pop_free`: rotate this CPU's list, shrink it when
    /// its free list is empty, and put a free node at the front of
    /// inactive.
    fn percpu_pop(&mut self, cpu: usize, key: &[u8]) -> Option<NodeId> {
        self.rotate(cpu);
        if self.lists[cpu].free == 0 {
            self.shrink(cpu, PERCPU_FREE_TARGET, Dest::List(cpu));
        }
        if self.lists[cpu].free == 0 {
            return None;
        }
        self.lists[cpu].free -= 1;
        let id = self.alloc(key, cpu);
        self.nodes[id].place = Place::Inactive;
        self.count(cpu, Place::Inactive, true);
        let head = self.lists[cpu].inactive;
        self.push_front(head, id);
        Some(id)
    }

    /// `bpf_lru_pop_free` on `cpu`, for an element with `key`. Elements
    /// it evicts are listed by [`Self::take_evicted`]. `None` is the
    /// kernel's NULL (the update fails with -ENOMEM).
    pub(super) fn pop_free(&mut self, cpu: usize, key: &[u8]) -> Option<NodeId> {
        let cpu = cpu % self.ncpus;
        if self.percpu_lists() {
            self.percpu_pop(cpu, key)
        } else {
            self.common_pop(cpu, key)
        }
    }

    /// `bpf_lru_push_free`: a node whose element left the table (deleted,
    /// replaced, or never inserted).
    pub(super) fn push_free(&mut self, id: NodeId) {
        let (place, cpu) = (self.nodes[id].place, self.nodes[id].cpu);
        if self.percpu_lists() {
            // bpf_percpu_lru_push_free: back to its own CPU's free list.
            self.leave_rotation(cpu, id);
            self.count(cpu, place, false);
            self.unlink(id);
            self.release(id);
            self.lists[cpu].free += 1;
        } else if place == Place::Pending {
            // bpf_common_lru_push_free: to the local free list of the CPU
            // whose pending list held it.
            self.unlink(id);
            self.release(id);
            self.locals[cpu].free += 1;
        } else {
            // bpf_lru_list_push_free: to the global free list.
            self.leave_rotation(0, id);
            self.count(0, place, false);
            self.unlink(id);
            self.release(id);
            self.lists[0].free += 1;
        }
    }

    /// `bpf_lru_node_set_ref`: a lookup from a program (the helper, or the
    /// verifier's inlined `htab_lru_map_gen_lookup`), not from user space.
    pub(super) fn set_ref(&mut self, id: NodeId) {
        self.nodes[id].referenced = true;
    }

    /// The keys evicted since the last call, for the table to drop.
    pub(super) fn take_evicted(&mut self) -> Vec<Box<[u8]>> {
        std::mem::take(&mut self.evicted)
    }
}

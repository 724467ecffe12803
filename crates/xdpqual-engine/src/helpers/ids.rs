//! Helper ids the engine implements (numbers from `enum bpf_func_id`,
//! include/uapi/linux/bpf.h). Anything else is refused at load time.

pub const MAP_LOOKUP_ELEM: i32 = 1;
pub const MAP_UPDATE_ELEM: i32 = 2;
pub const MAP_DELETE_ELEM: i32 = 3;
pub const KTIME_GET_NS: i32 = 5;
pub const TRACE_PRINTK: i32 = 6;
pub const GET_PRANDOM_U32: i32 = 7;
pub const GET_SMP_PROCESSOR_ID: i32 = 8;
pub const TAIL_CALL: i32 = 12;
pub const REDIRECT: i32 = 23;
pub const PERF_EVENT_OUTPUT: i32 = 25;
pub const CSUM_DIFF: i32 = 28;
pub const XDP_ADJUST_HEAD: i32 = 44;
pub const REDIRECT_MAP: i32 = 51;
pub const XDP_ADJUST_META: i32 = 54;
pub const XDP_ADJUST_TAIL: i32 = 65;
pub const FIB_LOOKUP: i32 = 69;
pub const SPIN_LOCK: i32 = 93;
pub const JIFFIES64: i32 = 118;
pub const SPIN_UNLOCK: i32 = 94;
pub const KTIME_GET_BOOT_NS: i32 = 125;
pub const RINGBUF_OUTPUT: i32 = 130;
pub const RINGBUF_RESERVE: i32 = 131;
pub const RINGBUF_SUBMIT: i32 = 132;
pub const RINGBUF_DISCARD: i32 = 133;
pub const KTIME_GET_COARSE_NS: i32 = 160;
pub const CHECK_MTU: i32 = 163;
pub const LOOP: i32 = 181;
pub const XDP_GET_BUFF_LEN: i32 = 188;
pub const XDP_LOAD_BYTES: i32 = 189;
pub const XDP_STORE_BYTES: i32 = 190;

/// (id, name) of every helper the engine runs.
pub const SUPPORTED: &[(i32, &str)] = &[
    (MAP_LOOKUP_ELEM, "bpf_map_lookup_elem"),
    (MAP_UPDATE_ELEM, "bpf_map_update_elem"),
    (MAP_DELETE_ELEM, "bpf_map_delete_elem"),
    (KTIME_GET_NS, "bpf_ktime_get_ns"),
    (TRACE_PRINTK, "bpf_trace_printk"),
    (GET_PRANDOM_U32, "bpf_get_prandom_u32"),
    (GET_SMP_PROCESSOR_ID, "bpf_get_smp_processor_id"),
    (TAIL_CALL, "bpf_tail_call"),
    (REDIRECT, "bpf_redirect"),
    (PERF_EVENT_OUTPUT, "bpf_perf_event_output"),
    (CSUM_DIFF, "bpf_csum_diff"),
    (XDP_ADJUST_HEAD, "bpf_xdp_adjust_head"),
    (REDIRECT_MAP, "bpf_redirect_map"),
    (XDP_ADJUST_META, "bpf_xdp_adjust_meta"),
    (XDP_ADJUST_TAIL, "bpf_xdp_adjust_tail"),
    (FIB_LOOKUP, "bpf_fib_lookup"),
    (SPIN_LOCK, "bpf_spin_lock"),
    (SPIN_UNLOCK, "bpf_spin_unlock"),
    (KTIME_GET_BOOT_NS, "bpf_ktime_get_boot_ns"),
    (JIFFIES64, "bpf_jiffies64"),
    (RINGBUF_OUTPUT, "bpf_ringbuf_output"),
    (RINGBUF_RESERVE, "bpf_ringbuf_reserve"),
    (RINGBUF_SUBMIT, "bpf_ringbuf_submit"),
    (RINGBUF_DISCARD, "bpf_ringbuf_discard"),
    (KTIME_GET_COARSE_NS, "bpf_ktime_get_coarse_ns"),
    (CHECK_MTU, "bpf_check_mtu"),
    (LOOP, "bpf_loop"),
    (XDP_GET_BUFF_LEN, "bpf_xdp_get_buff_len"),
    (XDP_LOAD_BYTES, "bpf_xdp_load_bytes"),
    (XDP_STORE_BYTES, "bpf_xdp_store_bytes"),
    (super::ksym::PER_CPU_PTR, "bpf_per_cpu_ptr"),
    (super::ksym::THIS_CPU_PTR, "bpf_this_cpu_ptr"),
    (super::dynptr::HELPER_READ, "bpf_dynptr_read"),
    (super::dynptr::HELPER_WRITE, "bpf_dynptr_write"),
];

pub fn name(id: i32) -> Option<&'static str> {
    #[cfg(test)]
    if id == super::TEST_PANIC_HELPER {
        return Some("test_panic");
    }
    SUPPORTED.iter().find(|(i, _)| *i == id).map(|(_, n)| *n)
}

/// Helpers whose result the engine cannot know the kernel's value of: the
/// diff classes packets that depend on them as nondeterministic.
pub const NONDETERMINISTIC: &[i32] = &[
    KTIME_GET_NS,
    KTIME_GET_BOOT_NS,
    KTIME_GET_COARSE_NS,
    JIFFIES64,
    GET_PRANDOM_U32,
    GET_SMP_PROCESSOR_ID,
];

#!/usr/bin/env python3
"""Writes the --map fixtures that give Katran's balancer (lib/bpf/balancer.bpf.c)
one VIP and three reals, for the public corpus test.

Usage: katran_fixture.py OUTDIR [RING_SIZE]
RING_SIZE is the build's (balancer_consts.h: 65537 by default).

What the balancer does with them (read from its source):
- vip_map (HASH, struct vip_definition -> struct vip_meta): 10.1.0.1, TCP
  port 80 (the port in network order, as the program copies it from the
  header), vip_num 0, flags 0. Packets to other destinations miss and get
  XDP_PASS ("send to tcp/ip stack"); port 0 is not configured, so other
  ports of 10.1.0.1 pass too.
- ch_rings (ARRAY): slots RING_SIZE * vip_num + hash for vip_num 0, i.e.
  every slot of VIP 0's ring, cycle through the reals 1, 2, 3 (real ids
  start at 1; 0 means "no real" and drops).
- reals (ARRAY of struct real_definition): 1 -> 192.168.1.1,
  2 -> 192.168.1.2, 3 -> 192.168.1.3, IPv4 (flags 0): a VIP packet is
  IPIP-encapsulated towards its real and sent back out with XDP_TX.
- ctl_array (ARRAY of struct ctl_value): slot 0 (MAC_ADDR_POS) holds the
  default gateway's MAC, written as the encapsulated packet's destination.
- pckt_srcs (ARRAY of struct real_definition, GUE builds only): slot 0,
  the IPv4 source of the GUE header, 172.16.0.1.
- lru_mapping (ARRAY_OF_MAPS): one fresh LRU (from the inner-map template)
  per CPU 0 and 1, as Katran's loader makes one per CPU; the runs are
  pinned to CPU 0.
"""
import json, os, sys

out = sys.argv[1]
ring = int(sys.argv[2]) if len(sys.argv) > 2 else 65537
os.makedirs(out, exist_ok=True)

def ip(a):
    return "".join("%02x" % int(x) for x in a.split("."))

def write(name, entries):
    with open(os.path.join(out, name), "w") as f:
        json.dump({"entries": entries}, f, separators=(",", ":"))
        f.write("\n")

# struct vip_definition: 16-byte address union, __u16 port, __u8 proto, pad.
write("katran_vip_map.json", [
    {"key": ip("10.1.0.1") + "00" * 12 + "0050" + "06" + "00", "value": "00000000" + "00000000"},
])
write("katran_ch_rings.json", [{"key": i, "value": 1 + i % 3} for i in range(ring)])
# struct real_definition: 16-byte address union, __u8 flags, pad to 20.
write("katran_reals.json", [
    {"key": r, "value": ip("192.168.1.%d" % r) + "00" * 12 + "00" + "000000"} for r in (1, 2, 3)
])
write("katran_ctl_array.json", [{"key": 0, "value": "0200000000fe" + "0000"}])
# GUE_ENCAP builds (balancer_full) take the outer source address from
# pckt_srcs[V4_SRC_INDEX = 0].
write("katran_pckt_srcs.json", [{"key": 0, "value": ip("172.16.0.1") + "00" * 12 + "00" + "000000"}])
write("katran_lru_mapping.json", [
    {"key": c, "inner": {"entries": []}} for c in (0, 1)
])

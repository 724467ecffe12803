//! Programs the bench carries itself, so that two figures are always
//! measured the same way on every backend:
//!
//! - `floor`: `r0 = XDP_PASS; exit`. Its time is what a backend charges per
//!   run before the program does anything (frame set-up, entry, result),
//!   the *per-run floor*. Every `xdpqual bench` also measures it on each
//!   selected backend and records it in the JSON (`floor`).
//! - `parse`: a map-free, helper-free parser every backend can run (rbpf
//!   included): Ethernet, one optional 802.1Q tag, IPv4 without options,
//!   the L4 ports, and a multiply-xor hash over the 32 bytes after the
//!   8-byte L4 header. 55 or 56 instructions on a full-size IPv4 frame.
//!   `xdpqual bench builtin:parse CAPTURE` runs it.
//!
//! Both are written in the assembler's syntax (bpf_conformance's, see
//! [`crate::isa::asm`]) and checked by the kernel's verifier when the kernel
//! rows load them; they use nothing the verifier refuses to a privileged
//! loader (packet bounds are checked before every packet access).

use crate::program::{Object, ObjectBtf, Program};

/// The prefix that names a built-in program on the command line.
pub const PREFIX: &str = "builtin:";

/// `r0 = 2 (XDP_PASS); exit`.
pub const FLOOR: &str = "\
mov %r0, 2
exit
";

/// The parser. Registers: r2 data, r3 data_end, r6 the L3 header, r9 the
/// hash. Ethertypes and protocol numbers are compared as the little-endian
/// reading of the network-order bytes (0x0800 reads as 0x0008).
pub const PARSE: &str = "\
ldxw %r2, [%r1+0]
ldxw %r3, [%r1+4]
mov %r0, 2
mov %r4, %r2
add %r4, 14
jgt %r4, %r3, out
ldxh %r5, [%r2+12]
mov %r6, %r4
jne %r5, 0x81, untagged
mov %r4, %r2
add %r4, 18
jgt %r4, %r3, out
ldxh %r5, [%r2+16]
mov %r6, %r4
untagged:
jne %r5, 0x8, out
mov %r4, %r6
add %r4, 60
jgt %r4, %r3, out
ldxb %r7, [%r6+0]
jne %r7, 0x45, out
ldxb %r8, [%r6+9]
ldxw %r9, [%r6+12]
ldxw %r1, [%r6+16]
xor %r9, %r1
lsh %r9, 8
or %r9, %r8
jeq %r8, 6, ports
jne %r8, 17, payload
ports:
ldxh %r1, [%r6+20]
ldxh %r7, [%r6+22]
lsh %r1, 16
or %r1, %r7
xor %r9, %r1
payload:
ldxdw %r7, [%r6+28]
xor %r9, %r7
mul %r9, 0x1b873593
mov %r7, %r9
rsh %r7, 29
xor %r9, %r7
ldxdw %r7, [%r6+36]
xor %r9, %r7
mul %r9, 0x1b873593
mov %r7, %r9
rsh %r7, 29
xor %r9, %r7
ldxdw %r7, [%r6+44]
xor %r9, %r7
mul %r9, 0x1b873593
mov %r7, %r9
rsh %r7, 29
xor %r9, %r7
ldxdw %r7, [%r6+52]
xor %r9, %r7
mul %r9, 0x1b873593
mov %r7, %r9
rsh %r7, 29
xor %r9, %r7
and %r9, 0xff
jne %r9, 0, out
mov %r0, 1
out:
exit
";

/// The built-in programs by name.
pub const ALL: [(&str, &str); 2] = [("floor", FLOOR), ("parse", PARSE)];

/// The object of built-in program `name` (without the prefix), or an error
/// that lists the names.
pub fn object(name: &str) -> Result<Object, String> {
    let Some((_, src)) = ALL.iter().find(|(n, _)| *n == name) else {
        let names: Vec<String> = ALL.iter().map(|(n, _)| format!("{PREFIX}{n}")).collect();
        return Err(format!(
            "no built-in program named '{name}' (built-in programs: {})",
            names.join(", ")
        ));
    };
    let insns = crate::isa::asm::assemble(src)
        .map_err(|e| format!("built-in program '{name}' does not assemble: {e}"))?;
    Ok(Object {
        path: format!("{PREFIX}{name}").into(),
        programs: vec![Program {
            name: name.to_string(),
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
        ksyms: Default::default(),
        btf: ObjectBtf::None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Engine, EngineConfig, Outcome, PacketIn};

    fn run(name: &str, frame: &[u8]) -> (u64, u64) {
        let obj = object(name).unwrap();
        let mut e = Engine::new(&obj, None, EngineConfig::default()).unwrap();
        let r =
            e.run_xdp(&PacketIn { data: frame, ts_ns: 0, ingress_ifindex: 1, rx_queue_index: 0 });
        match r.outcome {
            Outcome::Exit { r0 } => (r0, r.insns),
            other => panic!("{name}: {other:?}"),
        }
    }

    /// An untagged IPv4/UDP frame with a 32-byte payload of `fill`.
    fn udp_frame(fill: u8) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 8 + 32];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[14 + 9] = 17;
        f[14 + 20 + 8..].fill(fill);
        f
    }

    #[test]
    fn floor_passes_in_two_instructions() {
        assert_eq!(run("floor", &[0u8; 64]), (2, 2));
    }

    #[test]
    fn parse_takes_the_whole_path_on_a_full_udp_frame() {
        // Counted from PARSE: 28 instructions to `payload` on the untagged
        // UDP path through `ports` (the VLAN block skipped), 24 of hashing,
        // then and/jne, and exit (plus `mov r0, 1` when the low byte is 0).
        let (v, n) = run("parse", &udp_frame(0));
        assert!(v == 1 || v == 2, "verdict {v}");
        let expected = 28 + 24 + 2 + 1 + u64::from(v == 1);
        assert_eq!(n, expected);
        // A 14-byte frame of zeros: the Ethernet check passes, ethertype 0
        // is neither VLAN nor IPv4, so it exits after 11 instructions.
        assert_eq!(run("parse", &[0u8; 14]), (2, 11));
    }

    #[test]
    fn unknown_name_lists_the_builtins() {
        let e = object("nope").unwrap_err();
        assert!(e.contains("builtin:floor") && e.contains("builtin:parse"), "{e}");
    }
}

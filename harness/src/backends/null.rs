//! Backend `null`, for tests only: every packet is XDP_PASS with its bytes
//! unchanged, and every map of the object is there and empty. It shows what
//! adding a backend takes (this module and one line in
//! [`super::registry::REGISTRY`]) and gives the diff a backend whose
//! disagreements with a program can be worked out by hand.

use super::kind::{BackendKind, Registration};
use super::{
    Backend, Description, MapContents, MapsCompared, Opened, PacketResult, PacketSource, Ran,
    Released,
};
use crate::verdict::{Verdict, XdpAction};

pub struct NullBackend {
    maps: Vec<String>,
}

impl Backend for NullBackend {
    fn describe(&self) -> Description {
        Description {
            label: "null".into(),
            kernel: None,
            xlated: None,
            maps: MapsCompared::AtEnd,
            maps_side: "null".into(),
        }
    }
    fn run(&mut self, pkt: &PacketSource) -> Ran {
        Ran::plain(PacketResult {
            verdict: Verdict::Action { action: XdpAction::Pass },
            output: pkt.data.clone(),
            events: vec![],
            redirect: None,
            insns: None,
            duration_ns: None,
        })
    }
    fn dump_maps(&self) -> Vec<MapContents> {
        self.maps
            .iter()
            .map(|name| MapContents { name: name.clone(), percpu: false, entries: Ok(vec![]) })
            .collect()
    }
    fn release(self: Box<Self>) -> Released {
        Released::default()
    }
}

pub const REGISTRATION: Registration = Registration {
    // Hidden: not in the "known backends" list.
    syntax: None,
    parse: |s| (s == "null").then_some(Ok(BackendKind::Named("null"))),
    open: |k, ctx| {
        (*k == BackendKind::Named("null")).then(|| {
            let maps = ctx.obj.maps.iter().map(|m| m.name.clone()).collect();
            Ok(Opened::Ready(Box::new(NullBackend { maps })))
        })
    },
};

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use crate::capture::writer::{write_pcap, TsPrecision};
    use crate::diff::{self, BackendKind, DiffOptions};
    use crate::isa::asm::assemble;
    use crate::isa::opcode::PSEUDO_MAP_FD;
    use crate::program::{LineTable, MapDef, MapOrigin, MapType, Object, Program};
    use crate::verdict::{Verdict, XdpAction};

    /// Counts every packet in `counters[0]`, then drops frames longer than
    /// 60 bytes and passes the others, unchanged.
    fn program() -> Object {
        let mut insns = assemble(
            "ldxw %r6, [%r1]
             ldxw %r7, [%r1+4]
             mov %r2, 0
             stxw [%r10-4], %r2
             mov %r2, %r10
             add %r2, -4
             lddw %r1, 0
             call 1
             jeq %r0, 0, +3
             ldxdw %r3, [%r0]
             add %r3, 1
             stxdw [%r0], %r3
             mov %r8, %r7
             sub %r8, %r6
             jgt %r8, 60, +2
             mov %r0, 2
             exit
             mov %r0, 1
             exit",
        )
        .expect("assembles");
        // The lddw names map 0 (the form the loader gives map references).
        let at = insns.iter().position(|i| i.is_lddw()).expect("lddw");
        insns[at].src = PSEUDO_MAP_FD;
        Object {
            path: "<null backend test>".into(),
            programs: vec![Program {
                name: "drop_long".into(),
                section: "xdp".into(),
                frags: false,
                insns,
                lines: LineTable::default(),
                functions: vec![],
            }],
            maps: vec![MapDef {
                name: "counters".into(),
                map_type: MapType::Array,
                key_size: 4,
                value_size: 8,
                max_entries: 1,
                flags: 0,
                origin: MapOrigin::BtfMaps,
                initial_data: None,
                read_only: false,
                inner: None,
                init_slots: Vec::new(),
            }],
            license: "GPL".into(),
            byte_order: Default::default(),
            kfuncs: Default::default(),
            ksyms: Default::default(),
            btf: Default::default(),
        }
    }

    #[test]
    fn null_is_named_but_not_listed() {
        assert_eq!("null".parse::<BackendKind>(), Ok(BackendKind::Named("null")));
        assert_eq!(
            "nul".parse::<BackendKind>(),
            Err("unknown backend 'nul' (known: vm, rbpf, host, nic:PROFILE, live:IFACE[:skb|drv|hw])"
                .to_string())
        );
        assert_eq!(serde_json::to_string(&BackendKind::Named("null")).unwrap(), "\"null\"");
    }

    /// The diff against `null` disagrees exactly where the program does
    /// something other than pass the frame unchanged: the frames longer
    /// than 60 bytes, which it drops; and its map, which `null` leaves
    /// empty while the engine counts every packet.
    #[test]
    fn diff_with_null_disagrees_where_the_program_drops() {
        let obj = program();
        let lens = [14usize, 60, 61, 100, 64, 42];
        let frames: Vec<Vec<u8>> =
            lens.iter().map(|&n| (0..n).map(|b| b as u8).collect()).collect();
        let dir: PathBuf =
            std::env::temp_dir().join(format!("xdpqual-null-backend-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pcap = dir.join("frames.pcap");
        write_pcap(&pcap, TsPrecision::Microsecond, frames.iter().map(|f| (0u64, f))).unwrap();
        let opts = DiffOptions {
            backends: vec!["vm".parse().unwrap(), "null".parse().unwrap()],
            maps: vec![],
            rx_queue_index: 0,
            max_reported: 10,
            fib: None,
            conntrack: None,
        };
        let report = diff::run(&obj, &obj.programs[0], std::slice::from_ref(&pcap), &opts).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();

        assert_eq!(report.backends, vec![BackendKind::Vm, BackendKind::Named("null")]);
        assert!(report.skipped.is_empty(), "{:?}", report.skipped);
        assert_eq!(report.packets, 6);
        // 14, 60 and 42 bytes pass unchanged on both; 61, 100 and 64 are dropped.
        assert_eq!(report.tally.agreed, 3);
        assert_eq!(report.tally.mismatch_count, 3);
        assert_eq!(report.tally.nondeterministic, 0);
        let at: Vec<u64> = report.mismatches.iter().map(|m| m.index).collect();
        assert_eq!(at, vec![2, 3, 4]);
        let drop = Verdict::Action { action: XdpAction::Drop };
        let pass = Verdict::Action { action: XdpAction::Pass };
        for m in &report.mismatches {
            let first = m.detail.lines().next().unwrap();
            assert_eq!(first, format!("vm vs null: verdict {drop} vs {pass}"));
            assert_eq!(m.results["vm"].verdict, drop);
            assert_eq!(m.results["null"].verdict, pass);
            assert_eq!(m.results["null"].output, frames[m.index as usize]);
        }
        // One ARRAY entry (key 0) holding 6 in the engine; none in null.
        assert_eq!(
            report.map_mismatches,
            vec!["map counters: 1 entries in the engine, 0 in null; 1 engine entries differ or are missing in null, 0 the other way".to_string()]
        );
        assert!(!report.agrees());
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["backends"], serde_json::json!(["vm", "null"]));
        assert_eq!(json["mismatch_count"], 3);
        assert_eq!(json["agreed"], 3);
    }
}

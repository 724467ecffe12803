//! `--trace N`: one packet's instruction trace, with source lines.

use std::fmt::Write;

use crate::backends::PacketResult;
use crate::engine::{Engine, Recorder};
use crate::isa::disasm::{disasm_insn, Context};
use crate::program::Object;

pub fn render(
    engine: &Engine,
    obj: &Object,
    program: &str,
    rec: &Recorder,
    result: &PacketResult,
) -> String {
    let mut out = String::new();
    let names: Vec<&str> = engine.program_names().collect();
    let mut last_line = None;
    let map_names: Vec<String> = obj.maps.iter().map(|m| m.name.clone()).collect();
    let _ = writeln!(out, "trace of {program}: {} instructions", rec.steps.len());
    for s in &rec.steps {
        let pname = names.get(s.prog).copied().unwrap_or("?");
        let Some(prog) = obj.programs.iter().find(|p| p.name == pname) else { continue };
        if let Some(l) = prog.lines.lookup(s.pc) {
            let key = (pname, l.file.clone(), l.line);
            if last_line.as_ref() != Some(&key) {
                let _ = writeln!(out, "; {}  ({}:{})", l.text.trim(), l.file, l.line);
                last_line = Some(key);
            }
        }
        let ctx = Context { map_names: &map_names, functions: &prog.functions };
        let text = disasm_insn(&prog.insns, s.pc, &ctx);
        let used: Vec<String> = s.regs[..10]
            .iter()
            .enumerate()
            .filter(|(_, v)| **v != 0)
            .map(|(i, v)| format!("r{i}={v:#x}"))
            .collect();
        let _ = writeln!(out, "{:>6}: {:<40} {}", s.pc, text, used.join(" "));
        for a in &s.accesses {
            // Packet offsets as the program counts them: from `data`
            // (`data-4` is metadata), not from the page with its headroom.
            let at = match a.from_data {
                Some(d) if d < 0 => format!("packet data-{}", d.unsigned_abs()),
                Some(d) => format!("packet data+{d}"),
                None => format!("{} offset {}", a.region, a.offset),
            };
            let _ = writeln!(
                out,
                "        {} {} bytes at {at}",
                if a.write { "store" } else { "load" },
                a.size,
            );
        }
    }
    let _ = writeln!(out, "result: {}", result.verdict);
    out
}

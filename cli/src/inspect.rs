//! `xdpqual inspect PROG.o`: what the loader made of an object.

use serde::Serialize;
use std::fmt::Write as _;
use std::path::PathBuf;
use xdpqual::isa::disasm::{disasm_insn, Context};
use xdpqual::loader::{inspect_object_with, LoadOptions, Loaded, TargetBtf};
use xdpqual::program::{MapDef, Program, SourceLine};
use xdpqual::util::escape::{terminal as t, terminal_block};

use crate::output::{Format, OutputFile};

/// Exit statuses and examples, shown by `xdpqual inspect --help`.
const AFTER_HELP: &str = "\
Examples:
  xdpqual inspect corpus/build/firewall.v3.o
  xdpqual inspect prog.o --program xdp_main --btf fleet-vmlinux.btf
  xdpqual inspect prog.o --format json --output prog.json

Exit status:
  0  the object was read and listed
  2  usage error, an unreadable or malformed object, or no program named
     by --program";

#[derive(clap::Args, Debug)]
#[command(after_help = AFTER_HELP)]
pub struct Args {
    /// The BPF ELF object (clang -target bpf -g -c).
    pub object: PathBuf,
    /// Disassemble only this program (by name or section).
    #[arg(long)]
    pub program: Option<String>,
    /// Load code sections whose name declares no program type (`xdp1`, `xdp_prog`, ...) as
    /// this type, as `bpftool prog load ... type xdp` does. `--program SECTION` does the same
    /// for the section it names.
    #[arg(long = "type", value_enum)]
    pub prog_type: Option<xdpqual::loader::ProgType>,
    /// Set a map's max_entries before use, NAME=N (repeatable), as the
    /// project's own loader does at run time.
    #[arg(long = "map-size", value_name = "NAME=N", value_parser = crate::load_args::parse_map_size)]
    pub map_size: Vec<(String, u32)>,
    /// Output format: text, or json (schema xdpqual.inspect/1).
    #[arg(long, default_value = "text", value_parser = Format::parser(&[Format::Text, Format::Json]))]
    pub format: Format,
    #[command(flatten)]
    pub output: OutputFile,
    /// Deprecated: use --format json.
    #[arg(long, hide = true, conflicts_with = "format")]
    pub json: bool,
    /// Resolve CO-RE relocations against this kernel BTF file instead of
    /// the running kernel's /sys/kernel/btf/vmlinux.
    #[arg(long, value_name = "FILE")]
    pub btf: Option<PathBuf>,
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let format = crate::output::with_json_alias(args.format, args.json);
    // Loader errors name the file themselves.
    let opts = LoadOptions {
        prog_type: args.prog_type,
        select: args.program.clone(),
        list_unknown: true,
        target_btf: args.btf.clone().map_or(TargetBtf::Host, TargetBtf::File),
        map_sizes: args.map_size.clone(),
        kconfig: xdpqual::kconfig::host_kernel_config(),
    };
    let loaded = inspect_object_with(&args.object, &opts)?;
    if let Some(want) = &args.program {
        if loaded.object.program(Some(want)).is_none() {
            let names: Vec<&str> = loaded.object.programs.iter().map(|p| p.name.as_str()).collect();
            anyhow::bail!(
                "{} has no XDP program or section named `{}` (XDP programs: {})",
                args.object.display(),
                t(want),
                if names.is_empty() { "none".to_string() } else { names.join(", ") }
            );
        }
    }
    let out = if format == Format::Json {
        crate::output::json(&json(&loaded, args.program.as_deref()))?
    } else {
        // Names, paths and source lines come from the object: no control
        // character of theirs reaches the terminal (JSON escapes its own).
        terminal_block(&text(&loaded, args.program.as_deref()))
    };
    args.output.emit(&out)
}

fn selected<'a>(
    loaded: &'a Loaded,
    want: Option<&'a str>,
) -> impl Iterator<Item = &'a Program> + 'a {
    loaded
        .object
        .programs
        .iter()
        .filter(move |p| want.is_none_or(|w| p.name == w || p.section == w))
}

fn map_names(loaded: &Loaded) -> Vec<String> {
    loaded.object.maps.iter().map(|m| m.name.clone()).collect()
}

fn origin(m: &MapDef) -> &'static str {
    match m.origin {
        xdpqual::program::MapOrigin::BtfMaps => ".maps (BTF)",
        xdpqual::program::MapOrigin::Legacy => "maps (legacy bpf_map_def)",
        xdpqual::program::MapOrigin::GlobalData => "global data",
    }
}

fn text(loaded: &Loaded, want: Option<&str>) -> String {
    let o = &loaded.object;
    let mut s = String::new();
    let order = match o.byte_order {
        xdpqual::isa::ByteOrder::Little => "",
        xdpqual::isa::ByteOrder::Big => ", big-endian bpfeb",
    };
    let _ = writeln!(
        s,
        "object {} (license \"{}\"{order})",
        t(&o.path.display().to_string()),
        t(&o.license)
    );
    let _ = writeln!(s, "\nprograms:");
    for p in &o.programs {
        let funcs: Vec<String> =
            p.functions.iter().map(|(at, n)| format!("{}@{at}", t(n))).collect();
        let _ = writeln!(
            s,
            "  {:<20} section {:<12} type {}  {:>6} insns  functions: {}",
            t(&p.name),
            t(&p.section),
            xdpqual::loader::sections::xdp_label(&p.section, p.frags),
            p.insns.len(),
            funcs.join(", ")
        );
    }
    for p in &loaded.other_programs {
        let not_run = if p.kind == xdpqual::loader::sections::UNKNOWN_HINT {
            ""
        } else {
            "  not run: xdpqual runs XDP programs only"
        };
        let _ = writeln!(
            s,
            "  {:<20} section {:<12} type {}{not_run}",
            t(&p.name),
            t(&p.section),
            t(&p.kind)
        );
    }
    if o.programs.is_empty() && loaded.other_programs.is_empty() {
        let _ = writeln!(s, "  (none)");
    }
    let _ = writeln!(s, "\nmaps:");
    if o.maps.is_empty() {
        let _ = writeln!(s, "  (none)");
    } else {
        let _ = writeln!(
            s,
            "  {:>3}  {:<20} {:<20} {:>5} {:>7} {:>11} {:>10}  origin",
            "#", "name", "type", "key", "value", "max_entries", "flags"
        );
    }
    for (i, m) in o.maps.iter().enumerate() {
        let _ = writeln!(
            s,
            "  {:>3}  {:<20} {:<20} {:>5} {:>7} {:>11} {:>#10x}  {}{}",
            i,
            t(&m.name),
            m.map_type.name(),
            m.key_size,
            m.value_size,
            m.max_entries,
            m.flags,
            origin(m),
            if m.read_only { ", read-only" } else { "" }
        );
        // Map-in-map: the inner-map template every inner map must match.
        if let Some(inner) = &m.inner {
            let _ = writeln!(
                s,
                "       {:<20} {:<20} {:>5} {:>7} {:>11} {:>#10x}  inner-map template",
                "",
                inner.map_type.name(),
                inner.key_size,
                inner.value_size,
                inner.max_entries,
                inner.flags
            );
        }
        if !m.init_slots.is_empty() {
            let slots: Vec<String> =
                m.init_slots.iter().map(|(i, n)| format!("[{i}] = {}", t(n))).collect();
            let _ = writeln!(s, "       initialised slots: {}", slots.join(", "));
        }
    }
    if !loaded.core_relocations.is_empty() {
        let _ = writeln!(
            s,
            "\nCO-RE relocations ({}, resolved against {}):",
            loaded.core_relocations.len(),
            t(&loaded.core_target.display().to_string())
        );
        for r in &loaded.core_relocations {
            let _ = writeln!(s, "  {}", t(&r.to_string()));
        }
    }
    let kfuncs = kfunc_calls(loaded);
    if !kfuncs.is_empty() {
        let _ = writeln!(
            s,
            "\nkfuncs ({}, BTF ids of {}):",
            kfuncs.len(),
            t(&loaded.core_target.display().to_string())
        );
        for k in &kfuncs {
            let sites: Vec<String> =
                k.calls.iter().map(|(p, pc)| format!("{}@{pc}", t(p))).collect();
            let _ = writeln!(
                s,
                "  {:<32} btf id {:<7} {}  called at {}",
                t(k.name),
                k.btf_id,
                if k.modelled { "modelled by the engine" } else { "NOT modelled by the engine" },
                sites.join(", ")
            );
        }
    }
    if !loaded.object.ksyms.is_empty() {
        let _ = writeln!(
            s,
            "\n__ksym variables ({}; typed ones by BTF id of {}):",
            loaded.object.ksyms.len(),
            t(&loaded.core_target.display().to_string())
        );
        // The verifier also looks a typed variable up in kallsyms
        // (kernel/bpf/verifier.c __check_pseudo_btf_id); a kernel without
        // CONFIG_KALLSYMS_ALL lists no data symbols there. Checked only
        // when the target is this machine's kernel.
        let host_target = loaded.core_target.as_path() == TargetBtf::Host.path();
        let kallsyms = if host_target {
            std::fs::read_to_string(xdpqual::loader::ksyms::KALLSYMS).ok()
        } else {
            None
        };
        let listed = |name: &str| {
            kallsyms
                .as_deref()
                .is_none_or(|k| k.lines().any(|l| l.split_ascii_whitespace().nth(2) == Some(name)))
        };
        for k in &loaded.object.ksyms {
            use xdpqual::program::KsymKind;
            let what = match &k.kind {
                KsymKind::Typed { btf_id, type_name, size, percpu: true } => format!(
                    "btf id {btf_id:<7} per-CPU {type_name} ({size} bytes; through \
                     bpf_per_cpu_ptr/bpf_this_cpu_ptr)"
                ),
                KsymKind::Typed { btf_id, type_name, size, percpu: false } => {
                    format!("btf id {btf_id:<7} {type_name} ({size} bytes, read-only)")
                }
                KsymKind::Untyped { addr } => format!("untyped, kallsyms address {addr:#x}"),
                KsymKind::Absent => "weak, absent from the kernel: loads 0".into(),
            };
            let warn = match k.kind {
                KsymKind::Typed { .. } if !listed(&k.name) => {
                    "\n    this kernel's kallsyms does not list it: its verifier will refuse the \
                     program (built without CONFIG_KALLSYMS_ALL?)"
                }
                _ => "",
            };
            let _ = writeln!(s, "  {:<32} {}{warn}", t(&k.name), t(&what));
        }
    }
    let names = map_names(loaded);
    for p in selected(loaded, want) {
        let _ = writeln!(s, "\ndisassembly of {} (section {}):", t(&p.name), t(&p.section));
        let ctx = Context { map_names: &names, functions: &p.functions };
        let mut last: Option<&SourceLine> = None;
        let mut pc = 0;
        while pc < p.insns.len() {
            if let Some((_, f)) = p.functions.iter().find(|(at, _)| *at == pc) {
                let _ = writeln!(s, "{}:", t(f));
            }
            if let Some(l) = p.lines.lookup(pc) {
                if last.is_none_or(|prev| (prev.line, &prev.file) != (l.line, &l.file)) {
                    let _ = writeln!(s, "; {}  ({}:{})", t(&l.text), t(&l.file), l.line);
                    last = Some(l);
                }
            }
            let _ = writeln!(
                s,
                "{pc:>6}: ({:02x}) {}",
                p.insns[pc].code,
                disasm_insn(&p.insns, pc, &ctx)
            );
            pc += if p.insns[pc].is_lddw() { 2 } else { 1 };
        }
    }
    s
}

#[derive(Serialize)]
struct JsonObject<'a> {
    schema: &'static str,
    path: String,
    license: &'a str,
    /// "little" or "big".
    byte_order: xdpqual::isa::ByteOrder,
    programs: Vec<JsonProgram<'a>>,
    other_programs: &'a [xdpqual::loader::OtherProgram],
    maps: &'a [MapDef],
    core_relocations: &'a [xdpqual::loader::CoreRelocation],
    kfuncs: Vec<KfuncUse<'a>>,
    /// `__ksym` variables, as resolved.
    ksyms: &'a [xdpqual::program::KsymVar],
}

/// A kfunc the object calls: its name, the target BTF id in its calls, and
/// where it is called (program, instruction).
#[derive(Serialize)]
struct KfuncUse<'a> {
    name: &'a str,
    btf_id: i32,
    modelled: bool,
    calls: Vec<(&'a str, usize)>,
}

fn kfunc_calls(loaded: &Loaded) -> Vec<KfuncUse<'_>> {
    loaded
        .object
        .kfuncs
        .iter()
        .map(|(id, name)| KfuncUse {
            name,
            btf_id: *id,
            modelled: xdpqual::engine::helpers::kfuncs::id_of(name).is_some(),
            calls: loaded
                .object
                .programs
                .iter()
                .flat_map(|p| {
                    p.insns.iter().enumerate().filter_map(move |(pc, i)| {
                        (i.code == xdpqual::isa::opcode::JMP | xdpqual::isa::opcode::CALL
                            && i.src == xdpqual::isa::opcode::PSEUDO_KFUNC_CALL
                            && i.imm == *id)
                            .then_some((p.name.as_str(), pc))
                    })
                })
                .collect(),
        })
        .collect()
}

#[derive(Serialize)]
struct JsonProgram<'a> {
    name: &'a str,
    section: &'a str,
    /// The type it is loaded as (`sections::xdp_label`).
    #[serde(rename = "type")]
    prog_type: String,
    frags: bool,
    insn_count: usize,
    functions: Vec<JsonFunction<'a>>,
    /// Present for the programs selected for disassembly.
    #[serde(skip_serializing_if = "Option::is_none")]
    disassembly: Option<Vec<JsonInsn<'a>>>,
}

#[derive(Serialize)]
struct JsonFunction<'a> {
    name: &'a str,
    start: usize,
}

#[derive(Serialize)]
struct JsonInsn<'a> {
    pc: usize,
    opcode: u8,
    text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'a SourceLine>,
}

fn json<'a>(loaded: &'a Loaded, want: Option<&'a str>) -> JsonObject<'a> {
    let names = map_names(loaded);
    let programs = loaded
        .object
        .programs
        .iter()
        .map(|p| {
            let ctx = Context { map_names: &names, functions: &p.functions };
            let chosen = want.is_none_or(|w| p.name == w || p.section == w);
            let disassembly = chosen.then(|| {
                xdpqual::isa::disasm::disasm_program(&p.insns, &ctx)
                    .into_iter()
                    .map(|(pc, text)| JsonInsn {
                        pc,
                        opcode: p.insns[pc].code,
                        text,
                        source: p.lines.lookup(pc),
                    })
                    .collect()
            });
            JsonProgram {
                name: &p.name,
                section: &p.section,
                prog_type: xdpqual::loader::sections::xdp_label(&p.section, p.frags),
                frags: p.frags,
                insn_count: p.insns.len(),
                functions: p
                    .functions
                    .iter()
                    .map(|(start, name)| JsonFunction { name, start: *start })
                    .collect(),
                disassembly,
            }
        })
        .collect();
    JsonObject {
        schema: "xdpqual.inspect/1",
        path: loaded.object.path.display().to_string(),
        license: &loaded.object.license,
        byte_order: loaded.object.byte_order,
        programs,
        other_programs: &loaded.other_programs,
        core_relocations: &loaded.core_relocations,
        kfuncs: kfunc_calls(loaded),
        ksyms: &loaded.object.ksyms,
        maps: &loaded.object.maps,
    }
}

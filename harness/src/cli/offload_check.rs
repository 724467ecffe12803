//! `xdpqual offload-check PROG.o --profile P`

use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::loader::load_object;
use crate::program::{MapOrigin, Object, Program};
use crate::replay::split_target;

/// Check whether a program can be offloaded to a NIC profile, and if not,
/// which instruction breaks which rule. Exit 0 compatible, 1 not.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// PROG.o[:SECTION]
    pub program: String,
    /// nfp-corenic, nfp-agilio-ebpf, netdevsim, hxdp, or a profile TOML file.
    #[arg(long, default_value = "nfp-corenic")]
    pub profile: String,
    /// Output format: text, json or markdown.
    #[arg(long, default_value = "text")]
    pub format: String,
}

/// The NIC model's view of one of our programs.
pub fn spec(obj: &Object, p: &Program) -> nic_model::ProgramSpec {
    nic_model::ProgramSpec {
        name: p.name.clone(),
        section: p.section.clone(),
        insns: p.insns.iter().map(|i| nic_model::Insn { code: i.code, dst: i.dst, src: i.src, off: i.off, imm: i.imm }).collect(),
        maps: obj
            .maps
            .iter()
            .map(|m| nic_model::MapSpec {
                name: m.name.clone(),
                map_type: m.map_type.uapi(),
                key_size: m.key_size,
                value_size: m.value_size,
                max_entries: m.max_entries,
                flags: m.flags,
                is_global_data: m.origin == MapOrigin::GlobalData,
            })
            .collect(),
        lines: Some(p.lines.entries.iter().map(|(i, l)| (*i, format!("{}:{}", l.file, l.line))).collect()),
    }
}

pub fn run(args: Args) -> Result<ExitCode> {
    let (path, section) = split_target(&args.program);
    let obj = load_object(&path)?;
    let p = obj.program(section.as_deref()).with_context(|| format!("{}: no such XDP program", path.display()))?;
    let profile = nic_model::Profile::load(&args.profile)?;
    let report = nic_model::check(&spec(&obj, p), &profile);
    match args.format.as_str() {
        "json" => println!("{}", serde_json::to_string_pretty(&report)?),
        "markdown" | "md" => print!("{}", report.to_markdown()),
        "text" => print!("{}", report.to_text()),
        f => anyhow::bail!("unknown --format '{f}' (text, json, markdown)"),
    }
    Ok(ExitCode::from(report.verdict.exit_code() as u8))
}

//! `kernel:<matrix cell>` cells in xdpqual.toml: the program must load in
//! that QEMU kernel and agree with the engine. The run needs QEMU and the
//! cached kernels, so it runs when XDPQUAL_MATRIX=1 (set by .ci/run); the
//! configuration check always runs.

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn qualify(cfg: &str, tag: &str) -> (i32, String, String) {
    let dir = std::env::temp_dir().join(format!("xdpqual-kcell-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("q.toml");
    std::fs::write(&path, cfg).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_xdpqual"))
        .args(["qualify", "--no-history", "--config"])
        .arg(&path)
        .arg("--out")
        .arg(dir.join("out"))
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

#[test]
fn unknown_kernel_cell_is_a_config_error_with_its_line() {
    let r = root();
    let cfg = format!(
        "captures = [\"{}\"]\ncells = [\"vm\", \"kernel:4.4-x86_64\"]\n[[program]]\nobject = \"{}\"\n",
        r.join("pcaps/firewall-2k.pcap").display(),
        r.join("corpus/build/firewall.v3.o").display()
    );
    let (code, _, err) = qualify(&cfg, "bad");
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("line 2")
            && err.contains("unknown kernel cell 'kernel:4.4-x86_64'")
            && err.contains("kernel:6.1-x86_64"),
        "{err}"
    );
}

#[test]
fn kernel_cells_gate_on_load_and_agreement() {
    if std::env::var_os("XDPQUAL_MATRIX").is_none() {
        xdpqual::util::skip(format_args!(
            "set XDPQUAL_MATRIX=1 to boot QEMU kernels (.ci/run does)"
        ));
        return;
    }
    let r = root();
    // counters.v3 uses atomic fetch-or/xor (cpu v3 atomics), which 5.10's
    // verifier refuses ("reserved fields"; those atomics arrived in 5.12);
    // 6.1 accepts it. So the 6.1 cell must pass and the 5.10 cell must fail.
    let cfg = format!(
        "captures = [\"{}\"]\ncells = [\"vm\", \"kernel:6.1-x86_64\", \"kernel:5.10-x86_64\"]\noptional = [\"kernel:6.1-x86_64\", \"kernel:5.10-x86_64\"]\n[[program]]\nobject = \"{}\"\n",
        r.join("pcaps/firewall-2k.pcap").display(),
        r.join("corpus/build/counters.v3.o").display()
    );
    let (code, stdout, err) = qualify(&cfg, "run");
    // Per-check lines go to stderr, the summary and failures to stdout.
    let out = format!("{stdout}{err}");
    if out.contains("SKIP") && !out.contains("PASS") {
        xdpqual::util::skip(format_args!("kernel cells could not run here:\n{out}{err}"));
        return;
    }
    assert_eq!(code, 1, "{out}");
    let line = |cell: &str| {
        out.lines().find(|l| l.contains(&format!("kernel {cell} (QEMU)"))).unwrap_or("").to_string()
    };
    assert!(line("6.1-x86_64").starts_with("PASS"), "{out}");
    assert!(line("5.10-x86_64").contains("refused by the 5.10-x86_64 verifier"), "{out}");
}

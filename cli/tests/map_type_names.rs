//! Issue 18 item 4: map types have names everywhere, also the ones the
//! engine does not model: `inspect` says SOCKMAP and QUEUE (text) and
//! `sockmap`, `queue` (JSON, bpftool's spelling), never "map type 15".

use std::path::PathBuf;
use std::process::Command;

fn clang() -> Option<&'static str> {
    ["clang-19", "clang"]
        .into_iter()
        .find(|c| Command::new(c).arg("--version").output().is_ok_and(|o| o.status.success()))
}

/// Two BTF-defined maps of types xdpqual does not model. The numbers are
/// UAPI `enum bpf_map_type` (include/uapi/linux/bpf.h): 15 is
/// BPF_MAP_TYPE_SOCKMAP, 22 BPF_MAP_TYPE_QUEUE; written as numbers so the
/// test needs no kernel headers.
const SRC: &str = r#"
struct xdp_md { unsigned int data; };
#define SEC(n) __attribute__((section(n), used))
struct {
	int (*type)[15];
	int (*key_size)[4];
	int (*value_size)[4];
	int (*max_entries)[8];
} socks SEC(".maps");
struct {
	int (*type)[22];
	int (*value_size)[4];
	int (*max_entries)[8];
} q SEC(".maps");
SEC("xdp") int prog(struct xdp_md *ctx) { return 2; }
char _license[] SEC("license") = "GPL";
"#;

#[test]
fn inspect_names_unmodelled_map_types() {
    let Some(cc) = clang() else {
        xdpqual::util::skip(format_args!("clang is not installed"));
        return;
    };
    let dir: PathBuf =
        std::env::temp_dir().join(format!("xdpqual-maptypes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (c, o) = (dir.join("m.c"), dir.join("m.o"));
    std::fs::write(&c, SRC).unwrap();
    let st = Command::new(cc)
        .args(["-O2", "-g", "-target", "bpf", "-c"])
        .arg(&c)
        .arg("-o")
        .arg(&o)
        .status()
        .unwrap();
    assert!(st.success(), "clang failed");
    let run = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_xdpqual"))
            .arg("inspect")
            .arg(&o)
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let text = run(&[]);
    let row = |name: &str| {
        text.lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name))
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(row("socks").split_whitespace().nth(2), Some("SOCKMAP"), "{text}");
    assert_eq!(row("q").split_whitespace().nth(2), Some("QUEUE"), "{text}");
    assert!(!text.contains("map type"), "{text}");
    let v: serde_json::Value = serde_json::from_str(&run(&["--format", "json"])).unwrap();
    let types: Vec<(String, String)> = v["maps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["name"].as_str().unwrap().to_string(), m["map_type"].to_string()))
        .collect();
    assert!(types.contains(&("socks".into(), "\"sockmap\"".into())), "{types:?}");
    assert!(types.contains(&("q".into(), "\"queue\"".into())), "{types:?}");
}

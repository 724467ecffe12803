//! Expected output frames in xdpqual.toml (`outputs = { "N" = "hex" }`).
//! The expectations are worked out from truncate.c's specification (frames
//! longer than 256 bytes come back as their first 256 bytes with XDP_TX),
//! applied to the capture's own bytes, never from an engine run.

use std::path::PathBuf;
use std::process::Command;

use xdpqual::capture::CaptureReader;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(cfg: &str, tag: &str) -> (i32, String) {
    let dir = std::env::temp_dir().join(format!("xdpqual-outputs-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("q.toml"), cfg).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_xdpqual"))
        .args(["qualify", "--no-history", "--config"])
        .arg(dir.join("q.toml"))
        .arg("--out")
        .arg(dir.join("out"))
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)),
    )
}

#[test]
fn output_frames_are_checked() {
    let cap = root().join("pcaps/mixed-2k.pcap");
    let (index, frame) = CaptureReader::open(&cap)
        .unwrap()
        .map(|p| p.unwrap())
        .find(|p| p.data.len() > 256 && p.data.len() <= 3520)
        .map(|p| (p.index, p.data))
        .expect("a frame between 257 and 3520 bytes");
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let cfg = |want: &[u8]| {
        format!(
            "captures = [\"{}\"]\ncells = [\"vm\"]\n[[program]]\nobject = \"{}\"\nexpect = {{ \"{}\" = {{ outputs = {{ \"{index}\" = \"{}\" }} }} }}\n",
            cap.display(),
            root().join("corpus/build/truncate.v3.o").display(),
            cap.display(),
            hex(want)
        )
    };
    let (code, out) = run(&cfg(&frame[..256]), "good");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("expected verdicts"), "{out}");
    let (code, out) = run(&cfg(&frame), "bad");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("packet {index}: output differs from byte 256")), "{out}");
}

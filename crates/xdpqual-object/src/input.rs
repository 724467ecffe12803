//! Opening the files a user names (objects, captures, map files, configs,
//! reports to merge) without trusting what they are.
//!
//! Every input is checked with `stat` before it is opened: a FIFO, a
//! device, a socket or a directory is refused with a message that says what
//! it is, so `xdpqual inspect /dev/zero` fails at once instead of reading
//! gigabytes, and a FIFO never blocks the process in `open`. The file is
//! then opened with `O_NONBLOCK` (which does nothing to a regular file) and
//! checked again through the descriptor, so a path swapped for a FIFO
//! between the two steps is still refused and still cannot block. Inputs
//! that are read whole also have a size cap, checked before the first read
//! and enforced while reading (a file that grows is cut off, not followed).

use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Size cap for a BPF ELF object: 64 MiB.
///
/// The kernel loads at most BPF_COMPLEXITY_LIMIT_INSNS = 1,000,000
/// instructions per program (include/linux/bpf.h), 8 bytes each (`struct
/// bpf_insn`, include/uapi/linux/bpf.h): 8 MB of code. A BTF blob is
/// refused above BTF_MAX_SIZE = 16 MiB (kernel/bpf/btf.c). The rest of an
/// object grows with its code: `.BTF.ext` line info (16 bytes per record,
/// `struct bpf_line_info`) and relocations (16 bytes per `Elf64_Rel`), so at
/// most about another 32 MB for a 1M-instruction program, plus symbols and
/// strings. 64 MiB holds all of that with room for several programs; an
/// object above it holds something the kernel would never load.
pub const MAX_OBJECT_BYTES: u64 = 64 << 20;

/// Size cap for xdpqual.toml and corpus/expect files: 16 MiB, far above
/// any hand-written configuration (the shipped one is a few KiB).
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// Size cap for a `--map NAME=FILE.json` file and for a report to merge:
/// 256 MiB. A map the kernel allows holds at most a few million entries of
/// a few hundred bytes each, which as JSON hex is of this order; the engine's
/// process-wide memory budget would refuse more anyway.
pub const MAX_DATA_BYTES: u64 = 256 << 20;

/// What kind of non-regular file `m` is, in words, or `None` for a
/// regular file.
fn non_regular(m: &Metadata) -> Option<&'static str> {
    let t = m.file_type();
    if t.is_file() {
        None
    } else if t.is_dir() {
        Some("a directory")
    } else if t.is_fifo() {
        Some("a FIFO (named pipe)")
    } else if t.is_char_device() {
        Some("a character device")
    } else if t.is_block_device() {
        Some("a block device")
    } else if t.is_socket() {
        Some("a socket")
    } else {
        Some("not a regular file")
    }
}

fn refuse(kind: &str, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "it is {kind}, not a regular file; xdpqual reads a {what} only from a regular file"
        ),
    )
}

fn too_big(size: u64, limit: u64, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "it is {size} bytes; a {what} above {limit} bytes ({} MiB) is refused (see MAX_*_BYTES in crates/xdpqual-object/src/input.rs for where the limit comes from)",
            limit >> 20
        ),
    )
}

/// Checks `path` (following symlinks) is a regular file, then opens it for
/// reading without blocking, and checks the opened file again. `what` names
/// the input in messages ("BPF object", "capture"). The error carries no
/// path: callers wrap it with theirs.
pub fn open_regular(path: &Path, what: &str) -> io::Result<(File, Metadata)> {
    let m = std::fs::metadata(path)?;
    if let Some(kind) = non_regular(&m) {
        return Err(refuse(kind, what));
    }
    let f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)?;
    let m = f.metadata()?;
    if let Some(kind) = non_regular(&m) {
        return Err(refuse(kind, what));
    }
    Ok((f, m))
}

/// Reads a whole regular file of at most `limit` bytes.
pub fn read_limited(path: &Path, what: &str, limit: u64) -> io::Result<Vec<u8>> {
    let (f, m) = open_regular(path, what)?;
    if m.len() > limit {
        return Err(too_big(m.len(), limit, what));
    }
    let mut out = Vec::with_capacity(m.len() as usize);
    f.take(limit + 1).read_to_end(&mut out)?;
    if out.len() as u64 > limit {
        return Err(too_big(out.len() as u64, limit, what));
    }
    Ok(out)
}

/// [`read_limited`] for UTF-8 text.
pub fn read_text_limited(path: &Path, what: &str, limit: u64) -> io::Result<String> {
    String::from_utf8(read_limited(path, what, limit)?)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("not UTF-8 text: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_directories_and_fifos_are_refused_without_blocking() {
        let e = read_limited(Path::new("/dev/zero"), "BPF object", MAX_OBJECT_BYTES).unwrap_err();
        assert!(e.to_string().contains("character device"), "{e}");
        let e = read_limited(Path::new("/"), "capture", 10).unwrap_err();
        assert!(e.to_string().contains("a directory"), "{e}");
        let dir = std::env::temp_dir().join(format!("xdpqual-input-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        // No writer ever opens it: a blocking open would hang this test.
        let e = open_regular(&fifo, "capture").unwrap_err();
        assert!(e.to_string().contains("FIFO"), "{e}");
        let big = dir.join("big");
        std::fs::write(&big, [0u8; 100]).unwrap();
        let e = read_limited(&big, "configuration", 99).unwrap_err();
        assert!(e.to_string().contains("100 bytes"), "{e}");
        assert_eq!(read_limited(&big, "configuration", 100).unwrap().len(), 100);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! The kernel layer: every `bpf(2)`, netlink, packet-socket and interface
//! system call xdpqual makes, and the host-kernel backend built on them.
//!
//! This crate owns:
//! - [`sys`]: the one typed `bpf(2)` layer (map create/lookup/update/
//!   delete/get-next-key/freeze, BTF load, program load with the verifier
//!   log or bound to a device, test-run including live frames, object info,
//!   id walks, fd-by-id, run statistics, tracing attach), each attribute
//!   struct checked against the UAPI header by a layout test, plus the
//!   other system calls the backends need about the kernel itself
//!   (`capget`, `uname`, `if_nametoindex`);
//! - [`net`]: NETLINK_ROUTE sockets, packet sockets, interface ioctls and
//!   network namespaces, for the live backend;
//! - [`signal`]: deferring SIGINT/SIGTERM while a program is attached;
//! - [`cpu`]: pinning a thread to a CPU (per-CPU map slots and
//!   `bpf_get_smp_processor_id` line up with the engine's CPU);
//! - [`host`]: the host-kernel backend proper — kernel maps from the
//!   loader's `MapDef`s, program load and verifier rejections, test-run,
//!   BTF, the capability check — shared unchanged by the harness and the
//!   QEMU guest agent (`crates/xdpqual-agent`), which runs it against each guest
//!   kernel.
//!
//! It is the only crate of the workspace with `unsafe` around `bpf(2)` and
//! netlink/socket system calls. Everything `nix` wraps safely (sockets and
//! their options, `recvmsg`, `poll`, `setns`, `sched_setaffinity`, `uname`,
//! `sysconf`) goes through it; raw `libc` is left for what nix lacks:
//! `bpf(2)` and `capget(2)` in [`sys`], the ethtool ioctl and building a
//! packet-socket address in [`net`]. Within the crate only [`sys`], [`net`]
//! and [`signal`] (`sigaction`, which nix marks unsafe) have `unsafe`, each
//! block with a `// SAFETY:` comment. (The rbpf backend's sandbox in the harness,
//! `backends/rbpf/sandbox`, keeps its own `fork`/seccomp calls: they belong
//! to that sandbox, not to talking to the kernel's BPF subsystem.)
//!
//! It depends on `xdpqual-isa` and `xdpqual-object` (the linked program it
//! loads) and on nothing else of ours: not the engine, the loader, the
//! diff or the CLI, and no C library beyond libc (`nix` is Rust over libc),
//! so it builds as a static
//! musl binary for every guest architecture (`cargo build -p
//! xdpqual-agent --target x86_64-unknown-linux-musl`).

pub mod cpu;
pub mod host;
pub mod net;
pub mod rtnl;
pub mod signal;
pub mod sys;

use xdpqual_isa as isa;
use xdpqual_object as program;

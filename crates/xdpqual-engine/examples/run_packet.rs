//! The engine as a library: load an XDP object, run one packet through its
//! first program in the sandbox, print the verdict and what the program did.
//!
//! ```sh
//! cargo run --release -p xdpqual-engine --example run_packet -- corpus/build/firewall.v3.o
//! ```
//!
//! The whole API used here: `xdpqual_object::loader::load_object` (ELF to a
//! linked program), `Engine::new` (prepare: every check that would refuse
//! the program happens here, never half-way through a run) and
//! `Engine::run_xdp` (one packet; faults are results, not panics).

use std::path::Path;

use xdpqual_engine::{Engine, EngineConfig, Outcome, PacketIn};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: run_packet OBJECT.o")?;
    let obj = xdpqual_object::loader::load_object(Path::new(&path))?;
    let mut engine = Engine::new(&obj, None, EngineConfig::default())?;

    // Ethernet (IPv4) + IPv4 (UDP, 10.0.0.1 -> 10.0.0.2, no options) + UDP
    // (port 1234 -> 53), 8 payload bytes. Checksums are left zero: the
    // engine runs what it is given, as the kernel's test-run does.
    let mut frame = vec![0u8; 14 + 20 + 8 + 8];
    frame[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
    frame[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    frame[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    frame[14] = 0x45;
    frame[16..18].copy_from_slice(&36u16.to_be_bytes());
    frame[22] = 64;
    frame[23] = 17;
    frame[26..30].copy_from_slice(&[10, 0, 0, 1]);
    frame[30..34].copy_from_slice(&[10, 0, 0, 2]);
    frame[34..36].copy_from_slice(&1234u16.to_be_bytes());
    frame[36..38].copy_from_slice(&53u16.to_be_bytes());
    frame[38..40].copy_from_slice(&16u16.to_be_bytes());

    let packet = PacketIn { data: &frame, ts_ns: 0, ingress_ifindex: 1, rx_queue_index: 0 };
    let result = engine.run_xdp(&packet);
    match &result.outcome {
        Outcome::Exit { r0 } => {
            let verdict = match *r0 as u32 {
                0 => "XDP_ABORTED",
                1 => "XDP_DROP",
                2 => "XDP_PASS",
                3 => "XDP_TX",
                4 => "XDP_REDIRECT",
                _ => "an unknown action (the kernel treats it as XDP_ABORTED)",
            };
            println!("{verdict} after {} instructions", result.insns);
        }
        Outcome::Fault(fault) => println!("stopped by the sandbox: {fault:?}"),
        Outcome::NotRun { reason } => println!("not run: {reason:?}"),
    }
    if result.output != frame {
        println!("the program rewrote the frame ({} bytes out)", result.output.len());
    }
    Ok(())
}

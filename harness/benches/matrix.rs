//! Timings of the QEMU matrix (numbers, not assertions):
//! - one cell under TCG: boot, load, 1,000 packets, power-off;
//! - the whole default matrix, warm (kernels and initramfs cached).
//!
//! `cargo bench -p xdpqual --bench matrix` (needs QEMU; the first run
//! downloads the kernels, so run it twice and read the second).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use xdpqual::loader::load_object;
use xdpqual::matrix::run::{render, AccelChoice};
use xdpqual::matrix::{self, spec, Options};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let obj = load_object(&root.join("corpus/build/firewall.v3.o")).expect("corpus object");
    let program = obj.programs[0].clone();
    let captures: Vec<PathBuf> = vec![root.join("pcaps/firewall-2k.pcap")];
    let opts = |cells: Vec<spec::Cell>, accel| Options {
        cells,
        cache: matrix::cache_dir(),
        mirror: None,
        refresh: false,
        jobs: None,
        timeout: Duration::from_secs(180),
        agent_dir: None,
        maps: Vec::new(),
        rx_queue_index: 0,
        max_packets: Some(1000),
        accel,
        load: Default::default(),
    };
    // Warm-up: builds the agents and fills the caches.
    let all = spec::default_cells();
    matrix::run(&obj, &program, &captures, &opts(all.clone(), AccelChoice::Tcg))
        .expect("warm-up run");

    for name in ["6.1-x86_64", "6.12-aarch64"] {
        let cell = spec::select(all.clone(), &[name.to_string()]).expect("default cell");
        let t = Instant::now();
        let r = matrix::run(&obj, &program, &captures, &opts(cell, AccelChoice::Tcg))
            .expect("one cell");
        let c = &r.cells[0];
        println!(
            "one cell {name} (TCG, 1000 packets): total {:.2}s, boot to /init {:.2}s, QEMU wall {:.2}s, status {:?}",
            t.elapsed().as_secs_f64(),
            c.boot_s.unwrap_or(f64::NAN),
            c.wall_s,
            c.status
        );
    }
    let t = Instant::now();
    let r = matrix::run(&obj, &program, &captures, &opts(all, AccelChoice::Auto)).expect("matrix");
    print!("{}", render(&r));
    println!(
        "default matrix warm ({} cells, 1000 packets each): {:.2}s",
        r.cells.len(),
        t.elapsed().as_secs_f64()
    );
}

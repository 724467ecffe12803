//! The corpora committed under `pcaps/` are exactly what the generator
//! makes; see pcaps/README.md. To rewrite them after a deliberate
//! generator change: `XDPQUAL_BLESS_PCAPS=1 cargo test -p xdpqual-cli --test committed_pcaps`
//! (and say why in the commit).

use std::path::Path;

use xdpqual::capture::TsPrecision;
use xdpqual::pcapgen::{write_profile_pcap, Profile};

const CORPORA: [(&str, Profile, u64, u64); 2] =
    [("mixed-2k.pcap", Profile::Mixed, 2000, 1), ("firewall-2k.pcap", Profile::Firewall, 2000, 2)];

#[test]
fn committed_pcaps_match_the_generator() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../pcaps");
    let bless = std::env::var_os("XDPQUAL_BLESS_PCAPS").is_some();
    let scratch =
        std::env::temp_dir().join(format!("xdpqual-committed-pcaps-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    for (name, profile, n, seed) in CORPORA {
        let committed = dir.join(name);
        if bless {
            write_profile_pcap(&committed, profile, n, seed, TsPrecision::Microsecond).unwrap();
            continue;
        }
        let fresh = scratch.join(name);
        write_profile_pcap(&fresh, profile, n, seed, TsPrecision::Microsecond).unwrap();
        let want = std::fs::read(&fresh).unwrap();
        let got =
            std::fs::read(&committed).unwrap_or_else(|e| panic!("{}: {e}", committed.display()));
        assert_eq!(got.len(), want.len(), "{name}: length differs from a fresh `gen-pcap` run");
        assert!(
            got == want,
            "{name}: bytes differ from a fresh `gen-pcap` run (profile {profile}, seed {seed})"
        );
    }
    std::fs::remove_dir_all(&scratch).unwrap();
}

//! Profile loading: built-ins, user files, error messages, sources.

use nic_model::profile::{CodeLimits, Family};
use nic_model::{Profile, ProfileError};

#[test]
fn builtins_load_and_cite_every_constant() {
    for name in Profile::builtin_names() {
        let p = Profile::builtin(name).unwrap();
        assert_eq!(p.profile.name, name);
        let sources = p.sources();
        assert!(sources.len() > 10, "{name}: {} sourced constants", sources.len());
        for (key, src) in sources {
            assert!(!src.trim().is_empty(), "{name}: {key} has no source");
        }
    }
}

#[test]
fn builtin_values_match_the_spec() {
    let c = Profile::builtin("nfp-corenic").unwrap();
    assert_eq!(c.profile.family, Family::Nfp);
    assert_eq!(c.stack.max_bytes.value, 512);
    assert_eq!(c.packet.split_boundary.as_ref().unwrap().value, 30 * 64 - 32);
    assert_eq!(c.helpers.firmware.as_ref().unwrap().value, vec![1, 7, 44, 65]);
    let CodeLimits::Nfp { max_insns, .. } = &c.code else { panic!("nfp code limits") };
    assert_eq!(max_insns.value, 2560);
    assert_eq!(c.maps.max_total_entries.as_ref().unwrap().value, 2_048_000);
    let a = Profile::builtin("nfp-agilio-ebpf").unwrap();
    assert!(a.profile.assumption, "the Agilio eBPF profile must be marked as an assumption");
    assert!(a.helpers.firmware.as_ref().unwrap().assumption);
    let h = Profile::builtin("hxdp").unwrap();
    let CodeLimits::Vliw { max_rows, lanes, .. } = &h.code else { panic!("vliw") };
    assert_eq!((max_rows.value, lanes.value), (256, 4));
    assert_eq!(h.perf.as_ref().unwrap().clock_mhz.as_ref().unwrap().value, 156.25);
    let n = Profile::builtin("netdevsim").unwrap();
    assert_eq!(n.maps.max_entries_per_map.as_ref().unwrap().value, 2);
}

#[test]
fn unknown_builtin_lists_the_known_ones() {
    let e = Profile::builtin("nfp-9000").unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("nfp-9000") && msg.contains("nfp-corenic") && msg.contains("hxdp"),
        "{msg}"
    );
}

#[test]
fn unknown_key_error_names_file_key_and_line() {
    let text = include_str!("../profiles/netdevsim.toml")
        .replace("[stack]\n", "[stack]\nmax_byts = { value = 1, source = \"typo\" }\n");
    let line = text.lines().position(|l| l.starts_with("max_byts")).unwrap() + 1;
    let e = Profile::parse(&text, "my-nic.toml").unwrap_err();
    let ProfileError::Parse { file, line: got, key, message } = &e else { panic!("{e}") };
    assert_eq!(file, "my-nic.toml");
    assert_eq!(*got, line);
    assert_eq!(key.as_deref(), Some("stack.max_byts"));
    assert!(message.contains("max_byts"), "{message}");
    let shown = e.to_string();
    assert!(shown.contains("my-nic.toml") && shown.contains(&format!("line {line}")), "{shown}");
}

#[test]
fn missing_source_is_rejected() {
    let text = include_str!("../profiles/netdevsim.toml").replace(
        "max_entries_per_map = { value = 2, source = \"netdevsim/bpf.c NSIM_BPF_MAX_KEYS 2 (offload-rules.md §2.1)\" }",
        "max_entries_per_map = { value = 2 }",
    );
    assert!(Profile::parse(&text, "x.toml").is_err());
    let text = include_str!("../profiles/netdevsim.toml").replace(
        "source = \"netdevsim/bpf.c NSIM_BPF_MAX_KEYS 2 (offload-rules.md §2.1)\"",
        "source = \" \"",
    );
    let e = Profile::parse(&text, "x.toml").unwrap_err();
    assert!(e.to_string().contains("maps.max_entries_per_map"), "{e}");
}

#[test]
fn user_profile_from_path() {
    let dir = std::env::temp_dir().join(format!("nic-model-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("mine.toml");
    let text = include_str!("../profiles/nfp-corenic.toml")
        .replace("name = \"nfp-corenic\"", "name = \"mine\"")
        .replace("max_bytes = { value = 512,", "max_bytes = { value = 256,");
    std::fs::write(&path, text).unwrap();
    let p = Profile::load(path.to_str().unwrap()).unwrap();
    assert_eq!(p.profile.name, "mine");
    assert_eq!(p.stack.max_bytes.value, 256);
    let e = Profile::from_path(&dir.join("absent.toml")).unwrap_err();
    assert!(e.to_string().contains("absent.toml"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

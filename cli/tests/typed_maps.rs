//! Map files with typed fields, laid out from the object's BTF.

use std::path::Path;

use xdpqual::engine::{Engine, EngineConfig};
use xdpqual::loader::btf_types::object_map_layouts;
use xdpqual::loader::load_object;
use xdpqual::mapfile::{self, MapInit};

fn corpus(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus/build").join(name)
}

#[test]
fn layouts_follow_the_c_definitions() {
    // firewall.c: struct port_key { __u16 port; __u8 proto; __u8 pad; }.
    let l = object_map_layouts(&std::fs::read(corpus("firewall.v3.o")).unwrap()).unwrap();
    let (key, value) = &l["blocked_ports"];
    assert_eq!(key.size(), 4);
    assert_eq!(value.size(), 1);
    let k = mapfile::encode(&serde_json::json!({"port": 0x1234, "proto": 6}), key, "key").unwrap();
    assert_eq!(k, vec![0x34, 0x12, 6, 0], "host-order u16 then u8, pad zeroed");
    // lpm_filter.c: struct lpm_v4_key { __u32 prefixlen; __u8 addr[4]; }.
    let l = object_map_layouts(&std::fs::read(corpus("lpm_filter.v3.o")).unwrap()).unwrap();
    let (key, _) = &l["src_prefixes"];
    let k = mapfile::encode(&serde_json::json!({"prefixlen": 24, "addr": "192.0.2.0"}), key, "key")
        .unwrap();
    assert_eq!(k, vec![24, 0, 0, 0, 192, 0, 2, 0]);
    let k =
        mapfile::encode(&serde_json::json!({"prefixlen": 8, "addr": [10, 0, 0, 0]}), key, "key")
            .unwrap();
    assert_eq!(k, vec![8, 0, 0, 0, 10, 0, 0, 0]);
    assert!(
        mapfile::encode(&serde_json::json!({"prefixlen": 1u64 << 32}), key, "key").is_err(),
        "range checked"
    );
    assert!(
        mapfile::encode(&serde_json::json!({"nope": 1}), key, "key").is_err(),
        "unknown field refused"
    );
}

#[test]
fn typed_entries_fill_the_engine_map() {
    let path = corpus("firewall.v3.o");
    let obj = load_object(&path).unwrap();
    let mut engine = Engine::new(&obj, None, EngineConfig::default()).unwrap();
    let dir = std::env::temp_dir().join(format!("xdpqual-typed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("ports.json");
    std::fs::write(
        &file,
        r#"{"entries":[{"key":{"port":23,"proto":6},"value":1},{"key":"17000600","value":"01"}]}"#,
    )
    .unwrap();
    mapfile::apply(&mut engine, &obj, &[MapInit { map: "blocked_ports".into(), file }]).unwrap();
    let m = engine.maps_mut().by_name("blocked_ports").unwrap();
    let keys: Vec<Vec<u8>> = m.entries().into_iter().map(|e| e.key).collect();
    // Port 23 (0x17) TCP given typed and as hex is the same key: one entry.
    assert_eq!(keys, vec![vec![0x17, 0, 6, 0]]);
}

fn xdpqual(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_xdpqual"))
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run xdpqual")
}

fn dumped<'a>(d: &'a serde_json::Value, map: &str) -> &'a serde_json::Value {
    let m = d["maps"].as_array().unwrap().iter().find(|m| m["name"] == map).unwrap();
    &m["entries"]
}

/// `--dump-maps` writes keys and values typed from BTF, in the form a
/// `--map` file takes, so a dumped map fed back gives the same dump;
/// `--raw` keeps hex. Expected values from firewall.c's types: `struct
/// port_key { __u16 port; __u8 proto; __u8 pad; }` to `__u8`, and the
/// PERCPU_ARRAY `stats` of `__u64` (one value per CPU; this is a
/// one-thread replay, so one CPU).
#[test]
fn dumps_are_typed_and_feed_back_as_map_files() {
    let dir = std::env::temp_dir().join(format!("xdpqual-typed-dump-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ports = dir.join("ports.json");
    std::fs::write(&ports, r#"{"entries":[{"key":{"port":23,"proto":6},"value":1}]}"#).unwrap();
    let run = |map_file: &Path, dump: &Path, raw: bool| {
        let map = format!("blocked_ports={}", map_file.display());
        let mut args = vec![
            "replay",
            "corpus/build/firewall.v3.o",
            "pcaps/edges.pcap",
            "--threads",
            "1",
            "--map",
            &map,
            "--dump-maps",
            dump.to_str().unwrap(),
        ];
        if raw {
            args.push("--raw");
        }
        let o = xdpqual(&args);
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice::<serde_json::Value>(&std::fs::read(dump).unwrap()).unwrap()
    };
    let d = run(&ports, &dir.join("dump.json"), false);
    assert_eq!(d["schema"], "xdpqual.maps/2");
    assert_eq!(
        dumped(&d, "blocked_ports"),
        &serde_json::json!([{"key": {"port": 23, "proto": 6, "pad": 0}, "value": 1}])
    );
    let stats = dumped(&d, "stats").as_array().unwrap();
    assert_eq!(stats.len(), 5, "all five counters, zero or not: {stats:?}");
    for (i, e) in stats.iter().enumerate() {
        assert_eq!(e["key"], i as u64);
        assert_eq!(e["value"].as_array().map(Vec::len), Some(1), "one CPU: {e}");
    }

    // Fed back as a map file, the dumped entries give the same dump.
    let again = dir.join("again.json");
    std::fs::write(&again, serde_json::json!({"entries": dumped(&d, "blocked_ports")}).to_string())
        .unwrap();
    let d2 = run(&again, &dir.join("dump2.json"), false);
    assert_eq!(dumped(&d2, "blocked_ports"), dumped(&d, "blocked_ports"));

    // --raw: hex in memory order, as before (0x17 = 23, TCP = 6).
    let r = run(&ports, &dir.join("raw.json"), true);
    assert_eq!(r["schema"], "xdpqual.maps/1");
    assert_eq!(
        dumped(&r, "blocked_ports"),
        &serde_json::json!([{"key": "17000600", "values": ["01"]}])
    );
    std::fs::remove_dir_all(&dir).ok();
}

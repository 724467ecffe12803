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

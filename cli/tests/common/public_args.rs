//! The `.args` files beside a public object's map fixtures: one
//! `KEY=VALUE` per line, read by every test that runs the public corpus
//! (`--map-size=NAME=N`, `--fib=FILE`, `MAP=FILE`).

use std::path::PathBuf;

/// Where the fixtures live: the shared corpus first, then the copies the
/// repository carries.
fn fixture_dirs() -> [PathBuf; 2] {
    let root = super::repo_root();
    [root.join("../shared/public-xdp/maps"), root.join("corpus/public/maps")]
}

/// The `.args` lines of `object` (`NAME.o`) split at the first `=`, with
/// the directory that relative file values are under. `None` when no
/// fixture directory has an `.args` file for it.
pub(crate) fn public_args(object: &str) -> Option<(PathBuf, Vec<(String, String)>)> {
    let stem = object.trim_end_matches(".o");
    fixture_dirs().into_iter().find_map(|dir| {
        let text = std::fs::read_to_string(dir.join(format!("{stem}.args"))).ok()?;
        let pairs = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Some((dir, pairs))
    })
}

//! The whole bpf_conformance suite against the engine.
//!
//! Every `.data` file in `../shared/conformance/bpf_conformance/tests/` is
//! assembled, run, and its final r0 compared with the file's `-- result`.
//! Files the engine is known not to pass are listed, each with its reason,
//! in `tests/data/engine-conformance-exceptions.txt`; the test fails on any
//! unexpected result in either direction (a listed file that now passes
//! must be taken off the list).

use std::collections::BTreeMap;
use std::path::PathBuf;

use xdpqual::engine::{Engine, Outcome};
use xdpqual_testkit::conformance::{data_files, ConformanceTest};

fn suite() -> Option<PathBuf> {
    xdpqual::util::shared_dir("conformance/bpf_conformance/tests")
}

fn exceptions() -> BTreeMap<String, String> {
    let text = include_str!("data/engine-conformance-exceptions.txt");
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (name, reason) = l.split_once(char::is_whitespace).unwrap_or((l, ""));
            (name.to_string(), reason.trim().to_string())
        })
        .collect()
}

/// Runs one file; Ok(()) when the engine produced the expected result.
fn run(test: &ConformanceTest, file: &std::path::Path) -> Result<(), String> {
    let insns = test.program(file).map_err(|e| format!("cannot assemble: {e}"))?;
    let mut engine = match Engine::conformance(insns) {
        Ok(e) => e,
        Err(e) => {
            return if test.error.is_some() { Ok(()) } else { Err(format!("refused: {e}")) };
        }
    };
    let mut mem = test.mem.clone();
    let (outcome, _) = engine.run_raw(&mut mem);
    match (outcome, test.result, &test.error) {
        (Outcome::Exit { r0 }, Some(want), _) if r0 == want => Ok(()),
        (Outcome::Exit { r0 }, Some(want), _) => Err(format!("r0 = {r0:#x}, expected {want:#x}")),
        (Outcome::Fault(_), _, Some(_)) => Ok(()),
        (Outcome::Fault(f), _, None) => Err(format!("fault: {f}")),
        (o, None, _) => Err(format!("no expected result in file; got {o:?}")),
        (o, _, _) => Err(format!("unexpected outcome {o:?}")),
    }
}

#[test]
fn bpf_conformance_suite_on_the_engine() {
    let Some(dir) = suite() else {
        xdpqual::util::skip(format_args!(
            "../shared/conformance/bpf_conformance/tests not found next to the checkout"
        ));
        return;
    };
    let files = data_files(&dir).expect("list conformance files");
    assert!(files.len() >= 300, "expected the full suite, found {} files", files.len());
    let known = exceptions();
    let (mut passed, mut failed_as_known) = (0, 0);
    let mut unexpected = Vec::new();
    for file in &files {
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        let test = ConformanceTest::load(file).unwrap_or_else(|e| panic!("{e}"));
        let result = std::panic::catch_unwind(|| run(&test, file))
            .unwrap_or_else(|_| Err("engine panicked".to_string()));
        match (result, known.get(&name)) {
            (Ok(()), None) => passed += 1,
            (Ok(()), Some(_)) => {
                unexpected.push(format!("{name}: passes now, remove it from the exceptions list"))
            }
            (Err(_), Some(_)) => failed_as_known += 1,
            (Err(why), None) => unexpected.push(format!("{name}: {why}")),
        }
    }
    xdpqual::util::count(format_args!(
        "bpf_conformance on the engine: {passed} passed, {failed_as_known} known exceptions, {} unexpected, of {} files",
        unexpected.len(),
        files.len()
    ));
    assert!(unexpected.is_empty(), "unexpected conformance results:\n{}", unexpected.join("\n"));
}

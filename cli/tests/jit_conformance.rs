//! All bpf_conformance files through the JIT and the interpreter: same
//! outcome (r0 or fault at the same pc), same instruction count, same
//! final test memory.

use xdpqual::engine::{Engine, ExecMode};
use xdpqual_testkit::conformance::{data_files, ConformanceTest};

#[test]
fn jit_matches_interpreter_on_conformance_suite() {
    let Some(dir) = xdpqual::util::shared_dir("conformance/bpf_conformance/tests") else {
        xdpqual::util::skip(format_args!(
            "shared/conformance/bpf_conformance/tests not found (set XDPQUAL_SHARED_DIR)"
        ));
        return;
    };
    let files = data_files(&dir).unwrap();
    assert!(files.len() >= 300, "expected the full suite, found {}", files.len());
    let (mut compared, mut refused, mut unassembled) = (0, 0, 0);
    for file in &files {
        let test = ConformanceTest::load(file).unwrap();
        let Ok(insns) = test.program(file) else {
            unassembled += 1;
            continue;
        };
        let Ok(mut interp) = Engine::conformance(insns.clone()) else {
            refused += 1;
            continue;
        };
        let mut jit = Engine::conformance(insns).unwrap().with_jit(true);
        assert_eq!(jit.exec_mode(), &ExecMode::Jit, "{}", file.display());
        let (mut ma, mut mb) = (test.mem.clone(), test.mem.clone());
        let a = interp.run_raw(&mut ma);
        let b = jit.run_raw(&mut mb);
        assert_eq!(a, b, "{}: (outcome, insns)", file.display());
        assert_eq!(ma, mb, "{}: memory", file.display());
        compared += 1;
    }
    xdpqual::util::count(format_args!("conformance JIT == interpreter: {compared} compared, {refused} refused by both, {unassembled} not assembled, of {}", files.len()));
    assert!(compared >= 280, "only {compared} files compared");
}

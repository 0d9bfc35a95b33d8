//! The differential catalogue: every case of every `cdylib-tests/diff/*.c` file runs in a
//! fresh process natively and greenified, and everything observable must match: stdout
//! (return values, errno names, data, timing classes), exit status and terminating signal.
//!
//! A difference that is known and documented in the README is listed in
//! [`KNOWN_DIFFERENCES`] with its reason; the test then asserts that the case *does*
//! differ, so that fixing it (or breaking it differently) is noticed.
//!
//! Run: `cargo test --release -p cdylib-tests --test differential` (builds the library).

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use cdylib_tests::*;

/// Cases that behave differently greenified, with the reason (see the README's limits).
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[];

/// The catalogue must keep at least this many cases.
const MIN_CASES: usize = 300;

/// Cases run at once (most of them sleep or wait; the machine has 2 cores).
const PARALLEL: usize = 6;

const CASE_TIMEOUT: Duration = Duration::from_secs(30);

struct Case {
    file: String,
    name: String,
    program: PathBuf,
}

/// Compiles every catalogue file and lists its cases.
fn catalogue() -> Vec<Case> {
    let dir = workspace_root().join("cdylib-tests/diff");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("cdylib-tests/diff")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "c"))
        .collect();
    files.sort();
    let mut cases = Vec::new();
    for file in files {
        let stem = file.file_stem().unwrap().to_string_lossy().to_string();
        let source = std::fs::read_to_string(&file).expect("readable case file");
        // Compile from the diff directory so `#include "case.h"` resolves.
        let include = format!("-I{}", dir.display());
        let program = compile_c_source(
            &format!("diff-{stem}"),
            &source,
            &[
                "-O2", "-Wall", "-Wextra", "-Werror", "-pthread", &include, "-lrt",
            ],
        );
        let list = Cmd::new(&program).arg("--list").timeout(CASE_TIMEOUT).run();
        list.assert_success();
        for name in list.stdout.lines() {
            cases.push(Case {
                file: stem.clone(),
                name: name.to_string(),
                program: program.clone(),
            });
        }
    }
    cases
}

/// What a run showed, for comparison.
fn observed(out: &Output) -> String {
    format!(
        "status={:?} signal={:?}\n{}",
        out.status.code(),
        out.status.signal(),
        out.stdout
    )
}

#[test]
fn catalogue_matches_native() {
    let _g = exclusive();
    let cases = catalogue();
    let next = Mutex::new(0usize);
    let results: Mutex<BTreeMap<String, (String, String, String)>> = Mutex::new(BTreeMap::new());
    thread::scope(|scope| {
        for _ in 0..PARALLEL {
            scope.spawn(|| loop {
                let i = {
                    let mut n = next.lock().unwrap();
                    *n += 1;
                    *n - 1
                };
                let Some(case) = cases.get(i) else { break };
                // A run that times out is an outcome like any other (and never the
                // native one's), not a reason to stop the whole catalogue.
                let run = |mode| {
                    match Cmd::new(&case.program)
                        .arg(&case.name)
                        .mode(mode)
                        .timeout(CASE_TIMEOUT)
                        .spawn()
                        .wait_bounded()
                    {
                        Ok(out) => out,
                        Err(mut out) => {
                            out.stdout.push_str("<timed out>\n");
                            out
                        }
                    }
                };
                let native = run(Mode::Native);
                let green = run(Mode::Greenified);
                let key = format!("{}::{}", case.file, case.name);
                results.lock().unwrap().insert(
                    key,
                    (observed(&native), observed(&green), green.stderr.clone()),
                );
            });
        }
    });
    let results = results.into_inner().unwrap();
    let mut failures = Vec::new();
    let mut matched = 0;
    for (key, (native, green, green_stderr)) in &results {
        let case = key.split("::").nth(1).unwrap();
        let known = KNOWN_DIFFERENCES.iter().find(|(name, _)| *name == case);
        match (native == green, known) {
            (true, None) => matched += 1,
            (false, Some(_)) => {}
            (true, Some((_, why))) => failures.push(format!(
                "{key}: listed as a known difference ({why}) but now matches native: \
                 remove it from KNOWN_DIFFERENCES and the README"
            )),
            (false, None) => failures.push(format!(
                "{key}: differs\n--- native ---\n{native}--- greenified ---\n{green}--- greenified stderr ---\n{}",
                clip(green_stderr)
            )),
        }
    }
    eprintln!(
        "differential catalogue: {} cases, {matched} match native, {} known differences",
        results.len(),
        KNOWN_DIFFERENCES.len()
    );
    assert!(
        failures.is_empty(),
        "{}\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn catalogue_is_large_enough() {
    let _g = shared();
    let count = catalogue().len();
    assert!(
        count >= MIN_CASES,
        "the differential catalogue has {count} cases, fewer than {MIN_CASES}"
    );
}

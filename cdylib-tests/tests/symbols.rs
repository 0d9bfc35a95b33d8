//! The whole surface: every name under which libc exports a function greenify hooks is
//! exported by greenify too.
//!
//! glibc gives many functions several names at one address (`fcntl64` is `fcntl`, `__read`
//! is `read`), `64` twins (`sendfile64`), and `_FORTIFY_SOURCE` twins (`__read_chk`).
//! A program linked against a name greenify does not export calls glibc directly, bypassing
//! the hook of that family (a program built with 64-bit file offsets calls `fcntl64` and
//! then saw greenify's O_NONBLOCK). This test reads libc's dynamic symbol table (of the libc
//! the test programs run with) and greenify's exports and names every missing one.
//!
//! Names whose only version is GLIBC_PRIVATE are not checked: programs cannot link them
//! (the static linker refuses a private version), only glibc's own libraries do.
//!
//! Run: `cargo test --release -p cdylib-tests --test symbols` (builds the library).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use cdylib_tests::*;

/// One dynamic symbol of a library: its address and the version it is bound to.
struct Symbol {
    name: String,
    address: String,
    version: String,
}

/// The defined function symbols of `lib` (`nm -D --defined-only`: `ADDR TYPE NAME@VER`).
fn functions(lib: &Path) -> Vec<Symbol> {
    let out = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(lib)
        .output()
        .expect("nm (binutils) runs");
    assert!(
        out.status.success(),
        "nm -D {}: {}",
        lib.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("nm prints text")
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (address, kind, name) = (fields.next()?, fields.next()?, fields.next()?);
            // Text (strong or weak) and indirect functions: what a call can bind to.
            if !matches!(kind, "T" | "W" | "i") {
                return None;
            }
            let (name, version) = match name.split_once('@') {
                Some((n, v)) => (n, v.trim_start_matches('@')),
                None => (name, ""),
            };
            Some(Symbol {
                name: name.to_string(),
                address: address.to_string(),
                version: version.to_string(),
            })
        })
        .collect()
}

/// The libc the test programs are linked with, as the dynamic linker resolves it.
fn libc_path() -> PathBuf {
    let program = compile_c_source("symbols-probe", "int main(void) { return 0; }\n", &[]);
    let out = Command::new("ldd")
        .arg(&program)
        .output()
        .expect("ldd runs");
    let listing = String::from_utf8_lossy(&out.stdout);
    let found = listing.lines().find_map(|line| {
        let (name, rest) = line.trim().split_once(" => ")?;
        let path = rest.split_whitespace().next()?;
        name.starts_with("libc.so").then(|| PathBuf::from(path))
    });
    found.unwrap_or_else(|| PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"))
}

#[test]
fn every_libc_name_of_a_hooked_function_is_hooked() {
    let libc = libc_path();
    let libc_symbols = functions(&libc);
    let exported: BTreeSet<String> = functions(lib_path()).into_iter().map(|s| s.name).collect();

    // libc's names that a program can link (some version other than GLIBC_PRIVATE), and
    // the names at each address.
    let public: BTreeSet<&str> = libc_symbols
        .iter()
        .filter(|s| s.version != "GLIBC_PRIVATE")
        .map(|s| s.name.as_str())
        .collect();
    let mut at: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut addresses: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for s in &libc_symbols {
        at.entry(&s.address).or_default().insert(&s.name);
        addresses.entry(&s.name).or_default().insert(&s.address);
    }

    // Each missing name, with why it belongs (the first reason found).
    let mut missing = BTreeMap::new();
    let mut hooked = 0;
    for name in exported
        .iter()
        .filter(|n| addresses.contains_key(n.as_str()))
    {
        hooked += 1;
        let aliases = addresses[name.as_str()]
            .iter()
            .flat_map(|a| at[a].iter().copied())
            .map(|alias| (alias.to_string(), "libc's other name"));
        let twins = [
            (format!("{name}64"), "the 64-bit twin"),
            (format!("__{name}_chk"), "the _FORTIFY_SOURCE twin"),
        ];
        for (alias, why) in aliases.chain(twins) {
            if public.contains(alias.as_str()) && !exported.contains(&alias) {
                missing
                    .entry(alias)
                    .or_insert_with(|| format!("{why} of hooked {name}"));
            }
        }
    }

    // The comparison must have seen the hooks (a parse that found nothing proves nothing).
    assert!(
        hooked > 100 && exported.contains("fcntl") && public.contains("fcntl64"),
        "only {hooked} of greenify's exports found in {}'s dynamic symbols",
        libc.display()
    );
    assert!(
        missing.is_empty(),
        "libc ({}) exports these names of functions greenify hooks, but greenify does not \
         (a program linked against one bypasses the hook; add it to src/hooks/aliases.rs):\n  {}",
        libc.display(),
        missing
            .iter()
            .map(|(alias, why)| format!("{alias} ({why})"))
            .collect::<Vec<_>>()
            .join("\n  ")
    );
}

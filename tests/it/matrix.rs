//! The version matrix's marker (see main.rs): `scripts/test-matrix` runs the tests under
//! `every_server` on each other supported PostgreSQL, so a test outside it must sit in a
//! top-level module that says why one server is enough — or it would silently drop out of the
//! matrix.

use std::{collections::BTreeSet, process::Command};

/// main.rs, where the test modules are declared.
const MAIN_RS: &str = include_str!("main.rs");

/// The top-level modules of main.rs (`mod x;`, `pub mod x;`, `mod x {`) whose doc lines
/// include a `/// Once: <why>` line.
fn modules_that_say_why_they_run_once() -> BTreeSet<&'static str> {
    let lines: Vec<&str> = MAIN_RS.lines().collect();
    let mut explained = BTreeSet::new();
    for (index, line) in lines.iter().enumerate() {
        let declaration = line.strip_prefix("pub ").unwrap_or(line);
        let Some(rest) = declaration.strip_prefix("mod ") else { continue };
        let name = rest.trim_end_matches(';').trim_end_matches('{').trim();
        let mut docs = lines[..index].iter().rev().take_while(|l| l.starts_with("///"));
        if docs.any(|doc| doc.strip_prefix("/// Once: ").is_some_and(|why| why.trim().len() > 10)) {
            explained.insert(name);
        }
    }
    explained
}

#[test]
fn every_test_outside_every_server_is_in_a_module_that_says_why_it_runs_once() {
    // Arrange: this binary's own list of tests, as libtest filters them.
    let listed = Command::new(std::env::current_exe().unwrap()).arg("--list").output().unwrap();
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    let names: Vec<String> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .filter_map(|line| line.strip_suffix(": test"))
        .map(str::to_owned)
        .collect();
    let explained = modules_that_say_why_they_run_once();

    // Act
    let in_the_matrix = names.iter().filter(|name| name.starts_with("every_server::")).count();
    let unexplained: Vec<&String> = names
        .iter()
        .filter(|name| !name.starts_with("every_server::"))
        .filter(|name| !explained.contains(name.split("::").next().unwrap()))
        .collect();

    // Assert
    assert!(names.len() > 100 && explained.contains("panel"), "the list or main.rs was not read: {names:?}");
    assert!(
        MAIN_RS.contains("\nmod every_server {\n") && in_the_matrix > 50,
        "the marker is gone: {in_the_matrix}"
    );
    assert!(
        unexplained.is_empty(),
        "these tests run on one server only but their module says nowhere why (add a `/// Once: <why>` line \
         above it in main.rs, or move them under every_server): {unexplained:#?}"
    );
}

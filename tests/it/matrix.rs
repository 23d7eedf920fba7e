//! The version matrix's marker (see main.rs): `scripts/test-matrix` runs the tests under
//! `every_server` on each other supported PostgreSQL, so a test module outside it must say why
//! one server is enough — or it would silently drop out of the matrix.

/// main.rs, where the test modules are declared.
const MAIN_RS: &str = include_str!("main.rs");

#[test]
fn every_module_outside_every_server_says_why_it_runs_once() {
    // Arrange: the top-level `mod` lines with the doc lines right above each.
    let lines: Vec<&str> = MAIN_RS.lines().collect();
    let mut checked = Vec::new();
    let mut unexplained = Vec::new();

    // Act
    for (index, line) in lines.iter().enumerate() {
        let Some(name) = line.strip_prefix("mod ").and_then(|rest| rest.strip_suffix(';')) else { continue };
        let docs = lines[..index].iter().rev().take_while(|l| l.starts_with("///"));
        if !docs.clone().any(|doc| doc.starts_with("/// Once: ") && doc.len() > "/// Once: ".len() + 10) {
            unexplained.push(name);
        }
        checked.push(name);
    }

    // Assert
    assert!(checked.contains(&"panel") && checked.contains(&"matrix"), "main.rs was not read: {checked:?}");
    assert!(
        MAIN_RS.contains("\nmod every_server {\n"),
        "the marker module is gone: scripts/test-matrix would test nothing"
    );
    assert!(
        unexplained.is_empty(),
        "these modules run on one server only but say nowhere why (add a `/// Once: <why>` line, or move their \
         version-dependent tests under every_server): {unexplained:?}"
    );
}

//! The layer map in docs/ARCHITECTURE.md, held against the code: every `crate::…` path (and the
//! binary's `cabinet_db::…`) in `src/` names a module of a lower layer, or of its own module.
//! A module that reaches up or sideways fails here with the file, the line and the rule.

use std::{collections::BTreeMap, path::Path};

/// The layer map: module → layer number (1 is the top), read from the table that follows the
/// `## Layers` heading (`| 1 | entry | `main` | … |`).
fn layer_map(architecture: &str) -> BTreeMap<String, usize> {
    let section = architecture
        .split("\n## ")
        .find(|s| s.starts_with("Layers"))
        .expect("docs/ARCHITECTURE.md has a `## Layers` section");
    let mut layers = BTreeMap::new();
    for row in section.lines().filter(|l| l.starts_with('|')) {
        let cells: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
        let Some(Ok(layer)) = cells.first().map(|c| c.parse::<usize>()) else { continue };
        let modules = cells.get(2).expect("a row is | layer | name | modules | …");
        for module in modules.split(',').map(|m| m.trim().trim_matches('`')) {
            assert!(
                layers.insert(module.to_owned(), layer).is_none(),
                "{module} is in two layers of the map"
            );
        }
    }
    layers
}

/// The top-level module a source file belongs to: `src/backup/run.rs` → `backup`.
fn module_of(relative: &Path) -> String {
    let first = relative.components().next().unwrap().as_os_str().to_str().unwrap();
    first.trim_end_matches(".rs").to_owned()
}

/// Every top-level module the code names through `crate::` (or `cabinet_db::` in the binary),
/// with the byte offset where it is named; groups count, over several lines too: `use
/// crate::{db::X, models::{Y}}` names `db` and `models`.
fn named_modules(code: &str, root: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let mut offset = 0;
    while let Some(at) = code[offset..].find(root) {
        let start = offset + at;
        offset = start + root.len();
        let preceded_by_identifier =
            code[..start].chars().next_back().is_some_and(|c| c.is_alphanumeric() || c == '_');
        if preceded_by_identifier {
            continue;
        }
        let rest = &code[offset..];
        if let Some(group) = rest.strip_prefix('{') {
            // A group: each top-level entry's first segment.
            let mut depth = 0usize;
            let mut entry_start = true;
            let mut word = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => entry_start = true,
                    c if entry_start && (c.is_alphanumeric() || c == '_') => word.push(c),
                    _ if entry_start && !word.is_empty() => {
                        found.push((start, std::mem::take(&mut word)));
                        entry_start = false;
                    }
                    _ => {}
                }
            }
            if !word.is_empty() {
                found.push((start, word));
            }
        } else {
            let word: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if !word.is_empty() {
                found.push((start, word));
            }
        }
    }
    found
}

fn source_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            source_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without comments and string literals, up to its unit tests (`#[cfg(test)]
/// mod …`, which may reach anywhere in the crate); lines keep their numbers.
fn code_of(text: &str) -> String {
    let mut kept = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]")
            && lines.peek().is_some_and(|next| next.trim_start().starts_with("mod "))
        {
            break;
        }
        let code = trimmed.split("//").next().unwrap_or("");
        // Drop string literals: a message may quote a path.
        let mut in_string = false;
        let mut previous = ' ';
        for c in code.chars() {
            if c == '"' && previous != '\\' {
                in_string = !in_string;
            } else if !in_string {
                kept.push(c);
            }
            previous = c;
        }
        kept.push('\n');
    }
    kept
}

#[test]
fn no_module_imports_from_its_own_layer_or_one_above() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let layers = layer_map(&std::fs::read_to_string(root.join("docs/ARCHITECTURE.md")).unwrap());
    let mut files = Vec::new();
    source_files(&root.join("src"), &mut files);
    let mut problems = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(root.join("src")).unwrap();
        if relative == Path::new("lib.rs") {
            continue;
        }
        let module = module_of(relative);
        let Some(&own) = layers.get(&module) else {
            problems.push(format!("src/{}: module `{module}` is in no layer of the map", relative.display()));
            continue;
        };
        let prefix = if module == "main" { "cabinet_db::" } else { "crate::" };
        let code = code_of(&std::fs::read_to_string(file).unwrap());
        for (at, named) in named_modules(&code, prefix) {
            let number = code[..at].matches('\n').count() + 1;
            {
                if named == module {
                    continue;
                }
                match layers.get(&named) {
                    None => problems.push(format!(
                        "src/{}:{number}: `{named}` is in no layer of the map",
                        relative.display()
                    )),
                    Some(&theirs) if theirs <= own => problems.push(format!(
                        "src/{}:{number}: `{module}` (layer {own}) imports `{named}` (layer {theirs}): a module may \
                         import only from layers below its own; move the shared name down, or the map is wrong",
                        relative.display()
                    )),
                    Some(_) => {}
                }
            }
        }
    }
    assert!(problems.is_empty(), "the layer map is broken:\n{}", problems.join("\n"));
}

#[test]
fn the_layer_check_reads_groups_paths_and_not_strings() {
    let names = |code: &str| named_modules(code, "crate::").into_iter().map(|(_, n)| n).collect::<Vec<_>>();
    assert_eq!(names("use crate::{db::X, models::{Y, Z}, sites};"), ["db", "models", "sites"]);
    assert_eq!(names("use crate::{\n    db::X,\n    models::{Y, Z},\n};"), ["db", "models"]);
    assert_eq!(names("let x = crate::history::Actor::new(a);"), ["history"]);
    assert_eq!(names("my_crate::foo()"), Vec::<String>::new());
    let code = code_of(
        "let a = \"crate::panel\"; // crate::cli\nuse crate::db;\n#[cfg(test)]\nmod tests {\nuse crate::cli;\n}",
    );
    assert_eq!(names(&code), ["db"]);
    let map = layer_map(
        "# A\n\n## Layers\n\n| layer | name | modules |\n|---|---|---|\n| 1 | top | `main` |\n| 2 | low | `db`, `models` |\n\n## Next\n| 9 | x | `y` |",
    );
    assert_eq!(
        map.into_iter().collect::<Vec<_>>(),
        [("db".into(), 2), ("main".into(), 1), ("models".into(), 2)]
    );
}

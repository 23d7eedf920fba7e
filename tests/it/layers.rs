//! The layer map in docs/ARCHITECTURE.md, held against the code. Every path in `src/` that
//! names a module of the crate — `crate::…`, `super::…`, `self::super::…`, in `use` groups,
//! expressions and macro bodies alike (read as Rust tokens, so spacing, comments and strings
//! cannot hide one) — must name a module of a lower layer or of its own; and the files import
//! each other without a loop (a `mod.rs` that uses a child is not used by it: what several
//! files share sits in a file of its own). `#[path]`, a glob of the crate root and `extern
//! crate self` would let a path escape this reading, so they are refused outright.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    str::FromStr,
};

use proc_macro2::{Delimiter, Spacing, TokenStream, TokenTree};

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

/// A path the code names, from the crate root, with the line it is on.
#[derive(Debug, PartialEq)]
struct Named {
    line: usize,
    /// Segments from the crate root: `["panel", "state", "PanelState"]`; empty for the root.
    segments: Vec<String>,
    /// `…::*`
    glob: bool,
    /// `… as name`: a second name, through which later paths are not followed.
    aliased: bool,
    /// Written from the current module without `crate`, `super` or `self` (`server::version`):
    /// a path into a child module when its first segment is one, else another crate's or a
    /// type's (`std::fs`, `Verdict::Pass`).
    relative: bool,
}

/// What a file's code names, and the constructs that would hide a path from this reading.
#[derive(Debug, Default)]
struct Reading {
    named: Vec<Named>,
    refused: Vec<(usize, String)>,
}

fn is_ident(tree: Option<&TokenTree>, name: &str) -> bool {
    matches!(tree, Some(TokenTree::Ident(i)) if i == name)
}

fn is_path_separator(trees: &[TokenTree], at: usize) -> bool {
    matches!(
        (trees.get(at), trees.get(at + 1)),
        (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b)))
            if a.as_char() == ':' && a.spacing() == Spacing::Joint && b.as_char() == ':'
    )
}

/// The group's content if `tree` is a `#[…]`'s bracket.
fn attribute(trees: &[TokenTree], at: usize) -> Option<Vec<TokenTree>> {
    match (trees.get(at), trees.get(at + 1)) {
        (Some(TokenTree::Punct(p)), Some(TokenTree::Group(g)))
            if p.as_char() == '#' && g.delimiter() == Delimiter::Bracket =>
        {
            Some(g.stream().into_iter().collect())
        }
        _ => None,
    }
}

fn is_cfg_test(attribute: &[TokenTree]) -> bool {
    is_ident(attribute.first(), "cfg")
        && matches!(attribute.get(1), Some(TokenTree::Group(g))
            if g.stream().into_iter().any(|t| matches!(&t, TokenTree::Ident(i) if i == "test")))
}

/// Whether an attribute says `path = …` anywhere (`#[path]`, or inside `#[cfg_attr(…)]`).
fn names_a_path(trees: &[TokenTree]) -> bool {
    trees.windows(2).any(|w| {
        matches!((&w[0], &w[1]), (TokenTree::Ident(i), TokenTree::Punct(p)) if i == "path" && p.as_char() == '=')
    }) || trees.iter().any(|t| matches!(t, TokenTree::Group(g) if names_a_path(&g.stream().into_iter().collect::<Vec<_>>())))
}

/// Reads `trees` (the items of module `module`, a path from the crate root) into `reading`.
fn read(trees: &[TokenTree], module: &[String], reading: &mut Reading) {
    let mut skip_next_item = false;
    let mut at = 0;
    while at < trees.len() {
        if let Some(content) = attribute(trees, at) {
            let line = trees[at].span().start().line;
            let names_a_path = names_a_path(&content);
            if names_a_path {
                reading
                    .refused
                    .push((line, "a `path =` attribute (a module file outside its folder)".into()));
            }
            if is_cfg_test(&content) {
                skip_next_item = true;
            } else {
                // An attribute's arguments are code too (`#[error("{}", crate::x::f(.0))]`),
                // and a string in one may name a path (`#[serde(with = "crate::x")]`).
                read(&content, module, reading);
                read_path_strings(&content, module, reading);
            }
            // `#![…]`: the `!` sits between; handled as an ordinary punct below.
            at += 2;
            continue;
        }
        if skip_next_item {
            // An item compiled for unit tests only (they may reach anywhere): its tokens up to
            // its end — a `;` or `,`, or its body.
            match &trees[at] {
                TokenTree::Punct(p) if p.as_char() == ';' || p.as_char() == ',' => skip_next_item = false,
                TokenTree::Group(g) if g.delimiter() == Delimiter::Brace => skip_next_item = false,
                _ => {}
            }
            at += 1;
            continue;
        }
        match &trees[at] {
            TokenTree::Ident(i)
                if i == "include"
                    && matches!(trees.get(at + 1), Some(TokenTree::Punct(p)) if p.as_char() == '!')
                    && !matches!(trees.get(at + 2), Some(TokenTree::Group(g)) if g.to_string().contains("\"OUT_DIR\"")) =>
            {
                // build.rs's output (the embedded migrations' list) is generated, not source.
                reading.refused.push((i.span().start().line, "`include!` (code from another file)".into()));
            }
            TokenTree::Ident(i) if (i == "crate" || i == "super") && is_ident(trees.get(at + 1), "as") => {
                reading
                    .refused
                    .push((i.span().start().line, format!("an alias of `{i}` (a second name for a module)")));
            }
            TokenTree::Ident(i) if i == "mod" => {
                if let (Some(TokenTree::Ident(name)), Some(TokenTree::Group(body))) =
                    (trees.get(at + 1), trees.get(at + 2))
                    && body.delimiter() == Delimiter::Brace
                {
                    let mut inner = module.to_vec();
                    inner.push(name.to_string());
                    read(&body.stream().into_iter().collect::<Vec<_>>(), &inner, reading);
                    at += 3;
                    continue;
                }
            }
            TokenTree::Ident(i)
                if i == "extern"
                    && is_ident(trees.get(at + 1), "crate")
                    && is_ident(trees.get(at + 2), "self") =>
            {
                reading.refused.push((
                    i.span().start().line,
                    "`extern crate self` (a second name for the crate)".into(),
                ));
            }
            TokenTree::Ident(i)
                if (i == "crate" || i == "super" || i == "self") && is_path_separator(trees, at + 1) =>
            {
                let preceded_by_separator = at >= 2 && is_path_separator(trees, at - 2);
                if !preceded_by_separator {
                    at = read_path(trees, at, module, reading);
                    continue;
                }
            }
            TokenTree::Ident(_)
                if is_path_separator(trees, at + 1) && !(at >= 2 && is_path_separator(trees, at - 2)) =>
            {
                let line = trees[at].span().start().line;
                let mut relative = Reading::default();
                at = read_rest(trees, at, module.to_vec(), line, &mut relative);
                reading.named.extend(relative.named.into_iter().map(|n| Named { relative: true, ..n }));
                continue;
            }
            TokenTree::Group(g) => read(&g.stream().into_iter().collect::<Vec<_>>(), module, reading),
            _ => {}
        }
        at += 1;
    }
}

/// Paths written as strings inside an attribute (`with = "crate::x"`), read as code.
fn read_path_strings(trees: &[TokenTree], module: &[String], reading: &mut Reading) {
    for tree in trees {
        match tree {
            TokenTree::Literal(literal) => {
                let text = literal.to_string();
                let inner = text.trim_matches('"');
                if ["crate::", "super::", "self::"].iter().any(|root| inner.starts_with(root))
                    && let Ok(tokens) = TokenStream::from_str(inner)
                {
                    let line = literal.span().start().line;
                    let mut found = Reading::default();
                    read(&tokens.into_iter().collect::<Vec<_>>(), module, &mut found);
                    reading.named.extend(found.named.into_iter().map(|n| Named { line, ..n }));
                    reading.refused.extend(found.refused);
                }
            }
            TokenTree::Group(g) => {
                read_path_strings(&g.stream().into_iter().collect::<Vec<_>>(), module, reading)
            }
            _ => {}
        }
    }
}

/// Reads the path that starts at `trees[at]` (`crate`, `super` or `self`); returns the index
/// after it.
fn read_path(trees: &[TokenTree], mut at: usize, module: &[String], reading: &mut Reading) -> usize {
    let line = trees[at].span().start().line;
    let mut base: Vec<String> = module.to_vec();
    // The leading `crate`, `self` and `super`s.
    loop {
        match &trees[at] {
            TokenTree::Ident(i) if i == "crate" => base.clear(),
            TokenTree::Ident(i) if i == "self" => {}
            TokenTree::Ident(i) if i == "super" => {
                base.pop();
            }
            _ => break,
        }
        if !is_path_separator(trees, at + 1) {
            reading.named.push(Named { line, segments: base, glob: false, relative: false, aliased: false });
            return at + 1;
        }
        at += 3;
        if !matches!(&trees.get(at), Some(TokenTree::Ident(i)) if *i == "super" || *i == "self" || *i == "crate")
        {
            break;
        }
    }
    read_rest(trees, at, base, line, reading)
}

/// The segments after a path's root, into every branch of a `{…}` group.
fn read_rest(
    trees: &[TokenTree],
    mut at: usize,
    mut segments: Vec<String>,
    line: usize,
    reading: &mut Reading,
) -> usize {
    loop {
        match trees.get(at) {
            Some(TokenTree::Ident(i)) => {
                segments.push(i.to_string());
                if is_path_separator(trees, at + 1) {
                    at += 3;
                    continue;
                }
                let aliased = is_ident(trees.get(at + 1), "as");
                reading.named.push(Named { line, segments, glob: false, relative: false, aliased });
                return at + 1;
            }
            Some(TokenTree::Punct(p)) if p.as_char() == '*' => {
                reading.named.push(Named { line, segments, glob: true, relative: false, aliased: false });
                return at + 1;
            }
            Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Brace => {
                let inner: Vec<TokenTree> = g.stream().into_iter().collect();
                let mut start = 0;
                while start < inner.len() {
                    let end = (start..inner.len())
                        .find(|&k| matches!(&inner[k], TokenTree::Punct(p) if p.as_char() == ','))
                        .unwrap_or(inner.len());
                    let entry = &inner[start..end];
                    match entry.first() {
                        Some(TokenTree::Ident(i)) if i == "self" => reading.named.push(Named {
                            line,
                            segments: segments.clone(),
                            glob: false,
                            relative: false,
                            aliased: is_ident(entry.get(1), "as"),
                        }),
                        Some(_) => {
                            read_rest(entry, 0, segments.clone(), line, reading);
                        }
                        None => {}
                    }
                    start = end + 1;
                }
                return at + 1;
            }
            _ => {
                reading.named.push(Named { line, segments, glob: false, relative: false, aliased: false });
                return at;
            }
        }
    }
}

fn source_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            source_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module a file is: `backup/run.rs` → `["backup", "run"]`, `backup/mod.rs` → `["backup"]`.
fn module_of(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_str().unwrap().trim_end_matches(".rs").to_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

/// How far `segments` name modules that are files or folders under `src`: the module part.
fn module_part(src: &Path, segments: &[String]) -> usize {
    let mut dir = src.to_path_buf();
    for (depth, segment) in segments.iter().enumerate() {
        let as_file = dir.join(format!("{segment}.rs"));
        let as_dir = dir.join(segment);
        if as_file.is_file() || as_dir.join("mod.rs").is_file() {
            dir = as_dir;
        } else {
            return depth;
        }
    }
    segments.len()
}

/// The first line of the crate root's code that is not an attribute or a `mod NAME;`.
fn not_only_declarations(text: &str) -> Option<usize> {
    let trees: Vec<TokenTree> = TokenStream::from_str(text).ok()?.into_iter().collect();
    let mut at = 0;
    while at < trees.len() {
        if let (Some(TokenTree::Punct(p)), Some(TokenTree::Group(_))) = (trees.get(at), trees.get(at + 1))
            && p.as_char() == '#'
        {
            at += 2;
            continue;
        }
        if let (Some(TokenTree::Punct(p)), Some(TokenTree::Punct(bang)), Some(TokenTree::Group(_))) =
            (trees.get(at), trees.get(at + 1), trees.get(at + 2))
            && p.as_char() == '#'
            && bang.as_char() == '!'
        {
            at += 3;
            continue;
        }
        let mut item = at;
        if is_ident(trees.get(item), "pub") {
            item += 1;
            if matches!(trees.get(item), Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Parenthesis)
            {
                item += 1;
            }
        }
        let declaration = is_ident(trees.get(item), "mod")
            && matches!(trees.get(item + 1), Some(TokenTree::Ident(_)))
            && matches!(trees.get(item + 2), Some(TokenTree::Punct(p)) if p.as_char() == ';');
        if !declaration {
            return Some(trees[at].span().start().line);
        }
        at = item + 3;
    }
    None
}

/// The file that holds module `modules` (a path from the crate root).
fn file_of(src: &Path, modules: &[String]) -> PathBuf {
    if modules.is_empty() {
        return src.join("lib.rs");
    }
    let as_file = src.join(format!("{}.rs", modules.join("/")));
    if as_file.is_file() { as_file } else { src.join(modules.join("/")).join("mod.rs") }
}

/// Every problem of `src`'s code against the layer map.
fn problems(src: &Path, layers: &BTreeMap<String, usize>) -> Vec<String> {
    let mut files = Vec::new();
    source_files(src, &mut files);
    files.sort();
    let mut problems = Vec::new();
    // file → (file it imports → the first line that does)
    let mut imports: BTreeMap<PathBuf, BTreeMap<PathBuf, usize>> = BTreeMap::new();
    for file in &files {
        let relative = file.strip_prefix(src).unwrap();
        let shown = format!("src/{}", relative.display());
        let text = std::fs::read_to_string(file).unwrap();
        let binary = relative == Path::new("main.rs");
        // The binary names the library `cabinet_db::`; read it as the crate root.
        let text = if binary { text.replace("cabinet_db::", "crate::") } else { text };
        let tokens = TokenStream::from_str(&text).unwrap_or_else(|e| panic!("{shown} does not lex: {e}"));
        let module = if binary { vec!["main".to_owned()] } else { module_of(relative) };
        let mut reading = Reading::default();
        read(&tokens.into_iter().collect::<Vec<_>>(), &module, &mut reading);
        for (line, what) in reading.refused {
            problems
                .push(format!("{shown}:{line}: {what} would hide imports from the layer check; remove it"));
        }
        let Some(own_top) = module.first() else {
            // lib.rs: module declarations only (a macro or an item there would reach every
            // module unseen).
            if let Some(line) = not_only_declarations(&text) {
                problems.push(format!("{shown}:{line}: the crate root holds module declarations only"));
            }
            continue;
        };
        let Some(&own) = layers.get(own_top) else {
            problems.push(format!("{shown}: module `{own_top}` is in no layer of the map"));
            continue;
        };
        for named in reading.named {
            let line = named.line;
            if named.relative && module_part(src, &named.segments) <= module.len() {
                continue;
            }
            let Some(top) = named.segments.first() else {
                let what =
                    if named.glob { "a glob of the crate root" } else { "a second name for the crate root" };
                problems.push(format!(
                    "{shown}:{line}: {what} would hide the paths through it; name them in full"
                ));
                continue;
            };
            if named.aliased && !named.relative && module_part(src, &named.segments) == named.segments.len() {
                problems.push(format!(
                    "{shown}:{line}: an alias of module `{}` would hide the paths through it; name them in full",
                    named.segments.join("::")
                ));
            }
            if top != own_top {
                match layers.get(top) {
                    None => problems.push(format!("{shown}:{line}: `{top}` is in no layer of the map")),
                    Some(&theirs) if theirs <= own => problems.push(format!(
                        "{shown}:{line}: `{own_top}` (layer {own}) imports `{top}` (layer {theirs}): a module may import \
                         only from layers below its own; move the shared name down, or the map is wrong"
                    )),
                    Some(_) => {}
                }
                continue;
            }
            if binary {
                continue;
            }
            let target = file_of(src, &named.segments[..module_part(src, &named.segments)]);
            if &target != file && target.is_file() {
                imports.entry(file.clone()).or_default().entry(target).or_insert(line);
            }
        }
    }
    for cycle in cycles(&imports) {
        let steps: Vec<String> = cycle
            .windows(2)
            .map(|w| {
                let line = imports[&w[0]][&w[1]];
                format!("{}:{line}", w[0].strip_prefix(src).unwrap().display())
            })
            .collect();
        problems.push(format!(
            "files import each other in a loop: {} (each named with the line that imports the next); move what \
             they share into a file of its own",
            steps.join(" → ")
        ));
    }
    problems
}

/// Each loop of the import graph once, as files from the first back to it.
fn cycles(imports: &BTreeMap<PathBuf, BTreeMap<PathBuf, usize>>) -> Vec<Vec<PathBuf>> {
    fn visit(
        at: &PathBuf,
        imports: &BTreeMap<PathBuf, BTreeMap<PathBuf, usize>>,
        path: &mut Vec<PathBuf>,
        done: &mut std::collections::BTreeSet<PathBuf>,
        found: &mut Vec<Vec<PathBuf>>,
    ) {
        if let Some(start) = path.iter().position(|p| p == at) {
            let mut cycle = path[start..].to_vec();
            cycle.push(at.clone());
            found.push(cycle);
            return;
        }
        if done.contains(at) {
            return;
        }
        path.push(at.clone());
        for next in imports.get(at).into_iter().flat_map(|m| m.keys()) {
            visit(next, imports, path, done, found);
        }
        path.pop();
        done.insert(at.clone());
    }
    let mut found = Vec::new();
    let mut done = std::collections::BTreeSet::new();
    for start in imports.keys() {
        visit(start, imports, &mut Vec::new(), &mut done, &mut found);
    }
    found
}

fn map() -> BTreeMap<String, usize> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    layer_map(&std::fs::read_to_string(root.join("docs/ARCHITECTURE.md")).unwrap())
}

#[test]
fn no_module_imports_from_its_own_layer_or_one_above() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let problems = problems(&src, &map());
    assert!(problems.is_empty(), "the layer map is broken:\n{}", problems.join("\n"));
}

/// A copy of `src` with `code` added to `file` (outside any test module), judged.
fn judged_with(file: &str, code: &str) -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let copy = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("cp").arg("-r").arg(&src).arg(copy.path()).status().unwrap();
    assert!(status.success());
    let copied = copy.path().join("src");
    let target = copied.join(file);
    let text = std::fs::read_to_string(&target).unwrap();
    std::fs::write(&target, format!("{code}\n{text}")).unwrap();
    problems(&copied, &map())
}

#[test]
fn upward_imports_are_found_however_they_are_written() {
    let sneaky = [
        "use crate::panel as _;",
        "use crate::{\n    db::quote_ident as _,\n    panel::start as _,\n};",
        "use crate :: panel as _;",
        "use crate::\n    panel as _;",
        "use super::super::panel as _;",
        "use self::super::super::panel as _;",
        "const U: &str = \"http://x\"; use crate::panel as _;",
        "const Q: char = '\"'; use crate::panel as _;",
        "const R: &str = r#\"a\"b\"#; use crate::panel as _;",
        "#[cfg(test)]\nmod t {}\nuse crate::panel as _;",
        "macro_rules! m { () => { crate::panel::start::serve }; }",
        "fn f(x: u8) -> u8 { match x { #[cfg(test)] 0 => 1, _ => { let _ = crate::panel::html::urlencode; 2 } } }",
        "enum E { #[cfg(test)] A, B { p: crate::panel::state::PanelState } }",
        "#[derive(Debug, thiserror::Error)]\n#[error(\"{}\", crate::panel::html::urlencode(.0))]\nstruct X(String);",
        "#[derive(serde::Serialize)]\nstruct Y { #[serde(serialize_with = \"crate::panel::html::urlencode\")] y: String }",
        "fn f() { let _ = crate::panel::html::urlencode(\"x\"); }",
    ];
    for code in sneaky {
        let found = judged_with("models/values.rs", code);
        assert!(found.iter().any(|p| p.contains("imports `panel`")), "not caught: {code:?}\n{found:?}");
    }
    for refused in [
        "use crate::*;",
        "#[path = \"../panel/html.rs\"]\nmod sneaky;",
        "#[cfg_attr(all(), path = \"../panel/html.rs\")]\nmod sneaky;",
        "extern crate self as me;",
        "use crate as c;",
        "use crate::{self as c};",
        "use super::super as root;",
        "use crate::panel as p;",
        "include!(\"../panel/html.rs\");",
    ] {
        let found = judged_with("models/values.rs", refused);
        assert!(!found.is_empty(), "not refused: {refused:?}");
    }
    // Two files of one module that import each other: audit/mod.rs runs the server checks.
    let found = judged_with("audit/server.rs", "use super::audit as _;");
    assert!(found.iter().any(|p| p.contains("in a loop") && p.contains("audit/server.rs")), "{found:?}");
    // What is allowed stays allowed: a lower layer, a sibling file, unit tests anywhere.
    assert_eq!(
        judged_with("panel/start.rs", "use crate::models::Site as _;\nuse super::html::urlencode as _;"),
        Vec::<String>::new()
    );
    assert_eq!(
        judged_with("models/values.rs", "#[cfg(test)]\nmod t { use crate::panel as _; }"),
        Vec::<String>::new()
    );
    assert_eq!(judged_with("models/values.rs", "#[cfg(test)]\nuse crate::panel as _;"), Vec::<String>::new());
    // The crate root declares modules and nothing else.
    let found = judged_with("lib.rs", "macro_rules! up { () => { crate::panel::html::urlencode(\"x\") }; }");
    assert!(found.iter().any(|p| p.contains("module declarations only")), "{found:?}");
}

#[test]
fn the_layer_map_is_read_from_its_table_only() {
    let map = layer_map(
        "# A\n\n## Layers\n\n| layer | name | modules |\n|---|---|---|\n| 1 | top | `main` |\n| 2 | low | `db`, `models` |\n\n## Next\n| 9 | x | `y` |",
    );
    assert_eq!(
        map.into_iter().collect::<Vec<_>>(),
        [("db".into(), 2), ("main".into(), 1), ("models".into(), 2)]
    );
}

//! Embeds `migrations/*.sql` into the binary.
//!
//! Why not `sqlx::migrate!`: it drops the file names, and every error about a migration
//! (an edited checksum, a bad name) must name the file. The generated list is parsed at
//! run time by the same code that reads `--migrations-dir`, so both paths share one parser.

use std::{env, fs, path::Path};

fn main() {
    let manifest_dir = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = Path::new(&manifest_dir).join("migrations");
    println!("cargo:rerun-if-changed={}", dir.display());

    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("readable directory entry").file_name())
        .map(|name| name.into_string().expect("migration file names are UTF-8"))
        .filter(|name| name.ends_with(".sql"))
        .collect();
    names.sort();

    let mut generated = String::from("&[\n");
    for name in &names {
        let path = dir.join(name);
        println!("cargo:rerun-if-changed={}", path.display());
        generated.push_str(&format!(
            "    EmbeddedFile {{ name: {name:?}, sql: include_str!({:?}) }},\n",
            path.display().to_string()
        ));
    }
    generated.push_str("]\n");

    let out = Path::new(&env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("embedded_migrations.rs");
    fs::write(&out, generated).unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
}

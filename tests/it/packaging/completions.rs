//! What a package installs besides the binary, generated from the same clap definition as
//! `--help`: shell completions that complete (bash, driven as bash drives it) and man pages
//! that render.

use std::process::Command;

use cabinet_db::cli::Cli;
use clap::CommandFactory;

use crate::harness::{binary, stderr, stdout};

fn completions(shell: &str) -> String {
    let out = binary().args(["completions", shell]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

/// What bash offers for `words` (the last one being completed), with the generated script.
fn bash_offers(script: &std::path::Path, words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let (cur, prev) = (words[words.len() - 1], words[words.len() - 2]);
    let program = format!(
        "source {}; COMP_WORDS=({}); COMP_CWORD={}; _cabinet__db cabinet-db '{cur}' '{prev}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        quoted.join(" "),
        words.len() - 1
    );
    let out = Command::new("bash").args(["-c", &program]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).lines().map(str::to_owned).collect()
}

#[test]
fn bash_completes_commands_subcommands_and_their_options() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("cabinet-db.bash");
    std::fs::write(&script, completions("bash")).unwrap();
    assert_eq!(bash_offers(&script, &["cabinet-db", "ba"]), ["backup"]);
    // Past the first word too (clap_complete's own script stops there for hyphenated names).
    assert_eq!(bash_offers(&script, &["cabinet-db", "backup", "r"]), ["run", "restore"]);
    assert_eq!(bash_offers(&script, &["cabinet-db", "backup", "setup-repo-host", "--db"]), ["--db-host"]);
    assert!(bash_offers(&script, &["cabinet-db", "cluster", "status", "--"]).contains(&"--etcd".to_owned()));
    // Loadable where /bin/sh is bash in POSIX mode.
    let posix =
        Command::new("bash").arg("--posix").arg("-c").arg(format!("source {}", script.display())).output();
    assert!(posix.unwrap().status.success());
}

#[test]
fn zsh_and_fish_scripts_cover_every_command() {
    let (zsh, fish) = (completions("zsh"), completions("fish"));
    assert!(zsh.starts_with("#compdef cabinet-db"), "{}", &zsh[..80.min(zsh.len())]);
    for command in Cli::command().get_subcommands().filter(|c| !c.is_hide_set()) {
        let name = command.get_name();
        assert!(zsh.contains(&format!("'{name}:")), "zsh lacks {name}");
        assert!(fish.contains(&format!("-a \"{name}\"")), "fish lacks {name}");
    }
    let refused = binary().args(["completions", "powershell"]).output().unwrap();
    assert_eq!(refused.status.code(), Some(2));
}

/// (`cabinet-db-backup-run`, `cabinet-db backup run`), … for every visible command.
pub(super) fn pages(
    command: &clap::Command,
    page: &str,
    invocation: &str,
    found: &mut Vec<(String, String)>,
) {
    found.push((page.to_owned(), invocation.to_owned()));
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
        let name = sub.get_name();
        pages(sub, &format!("{page}-{name}"), &format!("{invocation} {name}"), found);
    }
}

#[test]
fn every_command_has_a_man_page_that_renders_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let out = binary().args(["manpages", "--out"]).arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let mut expected = Vec::new();
    pages(&Cli::command(), "cabinet-db", "cabinet-db", &mut expected);
    expected.sort();
    let mut written: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().trim_end_matches(".1").to_owned())
        .collect();
    written.sort();
    assert_eq!(written, expected.iter().map(|(page, _)| page.clone()).collect::<Vec<_>>());
    assert!(!written.iter().any(|p| p.contains("manpages")), "the hidden command has no page");
    for (page, invocation) in &expected {
        let file = dir.path().join(format!("{page}.1"));
        let rendered =
            Command::new("man").args(["--warnings", "-l"]).arg(&file).env("MANWIDTH", "80").output().unwrap();
        assert!(rendered.status.success() && stderr(&rendered).is_empty(), "{page}: {}", stderr(&rendered));
        // Justified text: words are what count, not the spaces between them.
        let text = stdout(&rendered).split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            text.contains(&format!("SYNOPSIS {invocation} ")),
            "{page} does not show `{invocation}`: {text}"
        );
    }
}

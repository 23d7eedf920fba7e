use clap::Args as ClapArgs;
use serde::Serialize;

use crate::cli::output::outln;
use crate::{
    cli::{outcome::Outcome, output},
    migrations::{MigrationSet, ledger::hex},
};

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {}

#[derive(Serialize)]
struct Entry<'a> {
    version: i64,
    name: &'a str,
    up: &'a str,
    down: &'a str,
    no_transaction: bool,
    checksum: String,
}

pub(crate) fn run(_args: Args, set: &MigrationSet, json: bool) -> anyhow::Result<Outcome> {
    let entries: Vec<Entry> = set
        .iter()
        .map(|m| Entry {
            version: m.version,
            name: &m.name,
            up: &m.up.file,
            down: &m.down.file,
            no_transaction: m.up.no_transaction,
            checksum: hex(&m.up.checksum),
        })
        .collect();
    if json {
        output::print_json(&entries)?;
    } else {
        let rows: Vec<Vec<String>> = entries
            .iter()
            .map(|e| {
                vec![
                    format!("{:04}", e.version),
                    e.name.to_owned(),
                    if e.no_transaction { "no".into() } else { "yes".into() },
                    e.checksum[..16].to_owned(),
                ]
            })
            .collect();
        output::print_table(&["version", "name", "transaction", "checksum"], &rows)?;
        outln!("({} migrations, {})", entries.len(), set.origin())?;
    }
    Ok(Outcome::Success)
}

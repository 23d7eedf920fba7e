use std::{io::Write, path::PathBuf};

use anyhow::Context;
use clap::Args as ClapArgs;

use crate::{
    atomic_file::{AtomicFile, PUBLIC_MODE},
    cli::{outcome::Outcome, output},
    migrations::MigrationSet,
    models::{
        json_schema,
        sqlalchemy::{self, Origin},
    },
};

/// The schema as SQLAlchemy 2.0 typed declarative models: `sites` and `users` as ORM classes,
/// the history tables as read-only Core tables, every named constraint and index. Alembic's
/// comparison with a database at the same migration finds nothing (docs/python.md).
///
/// Examples:
///   cabinet-db models export --sqlalchemy --out models.py
///   cabinet-db models export --sqlalchemy > app/db/models.py
///   cabinet-db models export --json-schema --out cabinet-db.schema.json
#[derive(Debug, ClapArgs)]
#[command(verbatim_doc_comment)]
pub(crate) struct Args {
    /// SQLAlchemy 2.0 models (`DeclarativeBase`, `Mapped[...]`, `mapped_column`).
    #[arg(long, required_unless_present = "json_schema", conflicts_with = "json_schema")]
    pub(crate) sqlalchemy: bool,
    /// JSON Schema (2020-12) for a site and a user (`#/$defs/site`, `#/$defs/user`), patterns
    /// taken from the constraints, for clients that validate before they write.
    #[arg(long)]
    pub(crate) json_schema: bool,
    /// Write to this file (replaced whole) instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,
}

pub(crate) fn run(args: Args) -> anyhow::Result<Outcome> {
    let text = if args.json_schema {
        json_schema::render()
    } else {
        let set = MigrationSet::embedded()?;
        let head = set.get(set.head()).map(|m| format!("{:04}_{}", m.version, m.name)).unwrap_or_default();
        sqlalchemy::render(&Origin { version: env!("CARGO_PKG_VERSION"), head })?
    };
    match &args.out {
        Some(path) => {
            let mut file = AtomicFile::create(path, PUBLIC_MODE)
                .with_context(|| format!("cannot write {}", path.display()))?;
            file.write_all(text.as_bytes()).with_context(|| format!("cannot write {}", path.display()))?;
            file.commit().with_context(|| format!("cannot write {}", path.display()))?;
        }
        None => output::stdout().write_all(text.as_bytes())?,
    }
    Ok(Outcome::Success)
}

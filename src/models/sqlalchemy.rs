//! `models export --sqlalchemy`: the schema as SQLAlchemy 2.0 typed declarative models for the
//! Python side (the main project, the RAG service, scripts). Rendered from the same model the
//! migrations are checked against, so Alembic's comparison with a migrated database finds
//! nothing (tests/it/every_server/python.rs runs it). Pure text: the same model gives the same file.
//!
//! `sites` and `users` are ORM classes; the history tables are Core `Table`s in the same
//! metadata — readable with `select()`, with no class a session could add, change or delete
//! rows through (the database refuses such writes anyway).

use std::fmt::Write as _;

use super::schema::{ColumnDef, ConstraintDef, IndexDef, TABLES, TableDef, TableKind};

/// Why the model cannot be written as Python (a type or clause this renderer does not know:
/// a new migration's, caught by the unit test over every table).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExportError {
    #[error("table {table}, column {column}: no SQLAlchemy type for {sql_type:?}")]
    UnknownType { table: &'static str, column: &'static str, sql_type: &'static str },
    #[error("table {table}, constraint {constraint}: cannot render {definition:?}")]
    UnknownConstraint { table: &'static str, constraint: &'static str, definition: &'static str },
}

/// Which schema the file was generated from, for its header.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    /// cabinet-db's version.
    pub(crate) version: &'static str,
    /// The newest migration, e.g. `0007_users_user_id_prefix_index`.
    pub(crate) head: String,
}

/// The ORM class of each record table.
fn class_name(table: &str) -> Option<&'static str> {
    match table {
        "sites" => Some("Site"),
        "users" => Some("User"),
        _ => None,
    }
}

/// SQLAlchemy's type and the Python annotation for a column type of the model.
fn column_type(sql_type: &str) -> Option<(&'static str, &'static str)> {
    Some(match sql_type {
        "text" => ("Text", "str"),
        "timestamptz" => ("DateTime(timezone=True)", "datetime.datetime"),
        "bigint" => ("BigInteger", "int"),
        "jsonb" => ("JSONB", "Any"),
        "inet" => ("INET", "str"),
        "xid8" => ("XID8()", "int"),
        "text[]" => ("ARRAY(Text)", "list[str]"),
        _ => return None,
    })
}

/// A Python string literal (double-quoted) for any text: backslashes, quotes and every
/// character outside printable ASCII escaped, so the file is ASCII and means exactly the SQL.
pub(crate) fn python_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            ' '..='~' => out.push(c),
            c if (c as u32) <= 0xffff => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// The default as PostgreSQL prints it back (`'en'::text`), which is what Alembic compares.
fn server_default(column: &ColumnDef) -> Option<String> {
    column
        .default
        .map(|d| if d.starts_with('\'') { format!("{d}::{}", column.sql_type) } else { d.to_owned() })
}

/// `a, b` → `"a", "b"`.
fn quoted_list(columns: &str) -> String {
    columns.split(',').map(|c| python_string(c.trim())).collect::<Vec<_>>().join(", ")
}

fn constraint(table: &TableDef, c: &ConstraintDef) -> Result<String, ExportError> {
    let name = python_string(c.name);
    let inner = |prefix: &str| c.definition.strip_prefix(prefix).and_then(|r| r.strip_suffix(')'));
    if let Some(columns) = inner("PRIMARY KEY (") {
        Ok(format!("PrimaryKeyConstraint({}, name={name})", quoted_list(columns)))
    } else if let Some(columns) = inner("UNIQUE (") {
        Ok(format!("UniqueConstraint({}, name={name})", quoted_list(columns)))
    } else if let Some(expression) = inner("CHECK (") {
        Ok(format!("CheckConstraint({}, name={name})", python_string(expression)))
    } else {
        Err(ExportError::UnknownConstraint {
            table: table.name,
            constraint: c.name,
            definition: c.definition,
        })
    }
}

/// `(lower(email) text_pattern_ops)`, `(user_id text_pattern_ops)`, `(changed_at)`.
fn index(index: &IndexDef) -> String {
    let keys = index.keys.trim_start_matches('(').trim_end_matches(')');
    let (key, operator_class) = match keys.rsplit_once(' ') {
        Some((key, class)) if class.ends_with("_ops") => (key, Some(class)),
        _ => (keys, None),
    };
    let name = python_string(index.name);
    let unique = if index.unique { ", unique=True" } else { "" };
    // An expression key is labelled so that its operator class can name it.
    let (rendered, label) = match key.split_once('(') {
        Some((function, argument)) => {
            let argument = argument.trim_end_matches(')');
            let label = format!("{function}_{argument}");
            (
                format!(
                    "func.{function}(literal_column({})).label({})",
                    python_string(argument),
                    python_string(&label)
                ),
                label,
            )
        }
        None => (python_string(key), key.to_owned()),
    };
    let ops = operator_class
        .map(|class| format!(", postgresql_ops={{{}: {}}}", python_string(&label), python_string(class)))
        .unwrap_or_default();
    format!("Index({name}, {rendered}{unique}{ops})")
}

/// `Text, nullable=False, server_default=text("now()")` and the Python annotation.
fn column_arguments(table: &TableDef, column: &ColumnDef) -> Result<(String, &'static str), ExportError> {
    let (sa_type, annotation) = column_type(column.sql_type).ok_or(ExportError::UnknownType {
        table: table.name,
        column: column.name,
        sql_type: column.sql_type,
    })?;
    let mut arguments = vec![sa_type.to_owned()];
    arguments.push(format!("nullable={}", if column.not_null { "False" } else { "True" }));
    if let Some(default) = server_default(column) {
        arguments.push(format!("server_default=text({})", python_string(&default)));
    }
    Ok((arguments.join(", "), annotation))
}

fn orm_class(out: &mut String, table: &TableDef, class: &str) -> Result<(), ExportError> {
    let _ = writeln!(out, "\n\nclass {class}(Base):");
    let _ = writeln!(
        out,
        "    \"\"\"A row of `{}` (history is written by the database's triggers).\"\"\"\n",
        table.name
    );
    let _ = writeln!(out, "    __tablename__ = {}", python_string(table.name));
    let _ = writeln!(out, "    __table_args__ = (");
    for c in table.constraints {
        let _ = writeln!(out, "        {},", constraint(table, c)?);
    }
    for i in table.indexes {
        let _ = writeln!(out, "        {},", index(i));
    }
    let _ = writeln!(out, "    )\n");
    for column in table.columns {
        let (arguments, annotation) = column_arguments(table, column)?;
        let annotation =
            if column.not_null { annotation.to_owned() } else { format!("Optional[{annotation}]") };
        let _ = writeln!(out, "    {}: Mapped[{annotation}] = mapped_column({arguments})", column.name);
    }
    Ok(())
}

fn core_table(out: &mut String, table: &TableDef) -> Result<(), ExportError> {
    let _ = writeln!(
        out,
        "\n\n# Read-only: rows are written by the database's history triggers and never changed or deleted\n\
         # (append-only). A Core table, no ORM class: read it with select({}).",
        table.name
    );
    let _ = writeln!(out, "{} = Table(", table.name);
    let _ = writeln!(out, "    {},", python_string(table.name));
    let _ = writeln!(out, "    Base.metadata,");
    for column in table.columns {
        let (arguments, _) = column_arguments(table, column)?;
        let _ = writeln!(out, "    Column({}, {arguments}),", python_string(column.name));
    }
    for c in table.constraints {
        let _ = writeln!(out, "    {},", constraint(table, c)?);
    }
    for i in table.indexes {
        let _ = writeln!(out, "    {},", index(i));
    }
    let _ = writeln!(out, ")");
    Ok(())
}

/// The whole `models.py`.
pub(crate) fn render(origin: &Origin) -> Result<String, ExportError> {
    let mut out = format!(
        "# models.py: AI Cabinet's main database (sites, users and their change history) for SQLAlchemy 2.0.
#
# GENERATED by cabinet-db {version} from the schema at migration {head}. Do not edit: cabinet-db
# owns this schema and migrates the database itself; regenerate after upgrading it with
#   cabinet-db models export --sqlalchemy --out models.py
# Never run `alembic upgrade` against this database. `alembic check` (with include_name below)
# finds no difference on a database at {head}; see docs/python.md.
from __future__ import annotations

import datetime
from typing import Any, Iterable, NamedTuple, Optional

from sqlalchemy import (
    ARRAY,
    Connection,
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    func,
    literal_column,
    text,
)
from sqlalchemy.dialects.postgresql import INET, JSONB
from sqlalchemy.dialects.postgresql import base as postgresql_base
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.types import UserDefinedType

SCHEMA_HEAD = {head_literal}
\"\"\"The migration this file describes; `cabinet-db migrate status` says where a database is.\"\"\"

MIGRATIONS_TABLE = {migrations_table}
\"\"\"cabinet-db's own bookkeeping table: not part of these models.\"\"\"


def include_name(name: str | None, type_: str, parent_names: dict[str, Any]) -> bool:
    \"\"\"For Alembic's `include_name`: compare everything but cabinet-db's bookkeeping table.\"\"\"
    return not (type_ == \"table\" and name == MIGRATIONS_TABLE)


class XID8(UserDefinedType[int]):
    \"\"\"PostgreSQL's 64-bit transaction id (`xid8`), which SQLAlchemy has no type for.\"\"\"

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return \"XID8\"


# Reflection (Alembic's comparison) reads xid8 columns as XID8 instead of warning that it does
# not know the type; a SQLAlchemy that learns xid8 itself keeps its own.
postgresql_base.ischema_names.setdefault(\"xid8\", XID8)


class Base(DeclarativeBase):
    metadata = MetaData()
",
        version = origin.version,
        head = origin.head,
        head_literal = python_string(&origin.head),
        migrations_table = python_string(super::schema::MIGRATIONS_TABLE),
    );
    for table in TABLES {
        match (table.kind, class_name(table.name)) {
            (TableKind::Record, Some(class)) => orm_class(&mut out, table, class)?,
            _ => core_table(&mut out, table)?,
        }
    }
    out.push_str(ACTIVITY_HELPERS);
    Ok(out)
}

/// Typed calls of the database's activity functions (src/models/activity.rs): the main
/// application records sign-ins through them as `cabinet_app`, which may not write `users`.
const ACTIVITY_HELPERS: &str = r#"

DEFAULT_DEBOUNCE = datetime.timedelta(seconds=60)
"""Sightings this close to the stored last_seen (with the same e-mail) write nothing."""


class SeenReport(NamedTuple):
    """What `record_seen_many` did: distinct users, and how many rows it inserted, updated or left alone."""

    users: int
    inserted: int
    updated: int
    unchanged: int


def _checked(user_id: str, email: str | None, seen_at: datetime.datetime) -> datetime.datetime:
    if not isinstance(user_id, str):
        raise TypeError(f"user_id must be a str (Zitadel's sub), not {type(user_id).__name__}")
    if email is not None and not isinstance(email, str):
        raise TypeError(f"email must be a str or None, not {type(email).__name__}")
    if not isinstance(seen_at, datetime.datetime):
        raise TypeError(f"seen_at must be a datetime.datetime, not {type(seen_at).__name__}")
    if seen_at.tzinfo is None or seen_at.utcoffset() is None:
        raise ValueError(
            f"seen_at {seen_at.isoformat()} has no time zone: pass an aware datetime, "
            "e.g. datetime.datetime.now(datetime.timezone.utc)"
        )
    return seen_at


def _debounce(debounce: datetime.timedelta) -> datetime.timedelta:
    if not isinstance(debounce, datetime.timedelta):
        raise TypeError(f"debounce must be a datetime.timedelta, not {type(debounce).__name__}")
    return debounce


def record_seen(
    session: Session | Connection,
    user_id: str,
    email: str | None,
    seen_at: datetime.datetime,
    debounce: datetime.timedelta = DEFAULT_DEBOUNCE,
) -> str:
    """Records one sighting of a user (a sign-in, a request) through the database's
    `cabinet_record_seen`: first_seen stays the earliest, last_seen the latest, the newest
    e-mail wins, and a sighting within `debounce` of last_seen writes nothing. A time more than
    five minutes ahead of the database server's clock is refused (DataError); a naive datetime
    is a ValueError, a value of another type a TypeError, before the round trip. Returns
    'inserted', 'updated' or 'unchanged'; the caller commits."""
    statement = text(
        "SELECT cabinet_record_seen(CAST(:user_id AS text), CAST(:email AS text), "
        "CAST(:seen_at AS timestamptz), CAST(:debounce AS interval))"
    )
    values = {
        "user_id": user_id,
        "email": email,
        "seen_at": _checked(user_id, email, seen_at),
        "debounce": _debounce(debounce),
    }
    return str(session.execute(statement, values).scalar_one())


def record_seen_many(
    session: Session | Connection,
    sightings: Iterable[tuple[str, str | None, datetime.datetime]],
    debounce: datetime.timedelta = DEFAULT_DEBOUNCE,
) -> SeenReport:
    """Records a batch of (user_id, email or None, seen_at) in one statement through
    `cabinet_record_seen_many`, with the rules of `record_seen`; of two sightings of one user at
    the same instant the later one in the batch wins the e-mail. The caller commits."""
    statement = text(
        "SELECT * FROM cabinet_record_seen_many(CAST(:user_ids AS text[]), CAST(:emails AS text[]), "
        "CAST(:seen_at AS timestamptz[]), CAST(:debounce AS interval))"
    )
    sightings = list(sightings)
    values = {
        "user_ids": [user_id for user_id, _, _ in sightings],
        "emails": [email for _, email, _ in sightings],
        "seen_at": [_checked(user_id, email, seen_at) for user_id, email, seen_at in sightings],
        "debounce": _debounce(debounce),
    }
    row = session.execute(statement, values).one()
    return SeenReport(int(row.users), int(row.inserted), int(row.updated), int(row.unchanged))
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_strings_escape_what_python_would_read_differently() {
        assert_eq!(python_string(r"a\u0009b"), r#""a\\u0009b""#);
        assert_eq!(python_string("say \"hi\""), r#""say \"hi\"""#);
        assert_eq!(python_string("\u{202e}é😀"), r#""\u202e\u00e9\U0001f600""#);
    }

    #[test]
    fn every_table_of_the_model_renders() {
        let text = render(&Origin { version: "0.0.0", head: "0001_test".into() }).unwrap();
        for table in TABLES {
            assert!(text.contains(&format!("\"{}\"", table.name)), "{}", table.name);
            for c in table.constraints {
                assert!(text.contains(&python_string(c.name)), "{}", c.name);
            }
        }
        assert!(text.is_ascii());
    }

    #[test]
    fn indexes_keep_their_expression_and_operator_class() {
        let rendered = index(&IndexDef { name: "i", unique: false, keys: "(lower(email) text_pattern_ops)" });
        assert_eq!(
            rendered,
            r#"Index("i", func.lower(literal_column("email")).label("lower_email"), postgresql_ops={"lower_email": "text_pattern_ops"})"#
        );
        let plain = index(&IndexDef { name: "j", unique: true, keys: "(changed_at)" });
        assert_eq!(plain, r#"Index("j", "changed_at", unique=True)"#);
    }
}

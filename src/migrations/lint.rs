//! `migrate lint`: squawk's rules over every migration, plus ours.
//!
//! squawk's `require-lock-timeout` and `require-statement-timeout` are switched off: the
//! runner sets both for every migration (`--ddl-lock-timeout`, `--statement-timeout`), so
//! repeating `SET` lines in each file would only be noise that could disagree with it.
//! A finding can be silenced in the file with `-- squawk-ignore <rule>` above the statement.

use serde::Serialize;
use squawk_linter::{Linter, Rule, Version};
use squawk_syntax::SourceFile;

use super::source::{MigrationSet, Script};

/// The oldest server we support, for version-dependent rules.
const MIN_PG_VERSION: &str = "14";

/// Our own rule's name, in squawk's style.
pub(crate) const ONE_STATEMENT_RULE: &str = "no-transaction-single-statement";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Finding {
    pub(crate) file: String,
    pub(crate) line: usize,
    pub(crate) column: usize,
    pub(crate) rule: String,
    pub(crate) message: String,
    pub(crate) help: Option<String>,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}: {}: {}", self.file, self.line, self.column, self.rule, self.message)?;
        if let Some(help) = &self.help {
            write!(f, "\n    help: {help}")?;
        }
        Ok(())
    }
}

/// Every finding in every up and down script, in file order.
pub(crate) fn lint(set: &MigrationSet) -> Vec<Finding> {
    let mut findings = Vec::new();
    for migration in set.iter() {
        findings.extend(lint_script(&migration.up));
        findings.extend(lint_script(&migration.down));
    }
    findings
}

pub(crate) fn lint_script(script: &Script) -> Vec<Finding> {
    let finding = |offset: usize, rule: &str, message: String, help: Option<String>| {
        let (line, column) = line_and_column(&script.sql, offset);
        Finding { file: script.file.clone(), line, column, rule: rule.to_owned(), message, help }
    };
    let parse = SourceFile::parse(&script.sql);
    let errors = parse.errors();
    if !errors.is_empty() {
        return errors
            .iter()
            .map(|e| finding(usize::from(e.range().start()), "syntax-error", e.message().to_owned(), None))
            .collect();
    }

    let mut linter = Linter::with_rules(&[], &[Rule::RequireLockTimeout, Rule::RequireStatementTimeout]);
    linter.settings.pg_version = MIN_PG_VERSION.parse::<Version>().expect("a valid version literal");
    linter.settings.assume_in_transaction = !script.no_transaction;
    let mut findings: Vec<Finding> = linter
        .lint(&parse, &script.sql)
        .into_iter()
        .map(|v| finding(usize::from(v.text_range.start()), &v.code.to_string(), v.message, v.help))
        .collect();

    if script.no_transaction {
        let statements: Vec<_> = parse.tree().stmts().collect();
        if statements.len() != 1 {
            let offset = statements
                .get(1)
                .map_or(0, |s| usize::from(squawk_syntax::ast::AstNode::syntax(s).text_range().start()));
            findings.push(finding(
                offset,
                ONE_STATEMENT_RULE,
                format!(
                    "a -- no-transaction migration must hold exactly one statement, this one has {}: PostgreSQL runs several statements sent at once in an implicit transaction, which defeats the marker (CREATE INDEX CONCURRENTLY then fails)",
                    statements.len()
                ),
                Some("move the other statements into a migration of their own".to_owned()),
            ));
        }
    }
    findings.sort_by_key(|f| (f.line, f.column));
    findings
}

/// Byte offset → 1-based line and column (in characters).
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(files: &[(&str, &str)]) -> MigrationSet {
        MigrationSet::from_files(
            files.iter().map(|(n, s)| (n.to_string(), s.to_string())).collect(),
            "t".into(),
        )
        .unwrap()
    }

    #[test]
    fn the_embedded_migrations_pass_the_lint() {
        let findings = lint(&MigrationSet::embedded().unwrap());
        assert!(
            findings.is_empty(),
            "{}",
            findings.iter().map(|f| f.to_string()).collect::<Vec<_>>().join("\n")
        );
    }

    #[test]
    fn a_no_transaction_migration_with_two_statements_is_flagged() {
        let s = set(&[
            (
                "0001_a.up.sql",
                "-- no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS a_idx ON t (a);\nCREATE INDEX CONCURRENTLY IF NOT EXISTS b_idx ON t (b);\n",
            ),
            ("0001_a.down.sql", "-- no-transaction\nDROP INDEX CONCURRENTLY IF EXISTS b_idx;\n"),
        ]);
        let findings = lint(&s);
        let ours: Vec<_> = findings.iter().filter(|f| f.rule == ONE_STATEMENT_RULE).collect();
        assert_eq!(ours.len(), 1, "{findings:?}");
        assert_eq!((ours[0].file.as_str(), ours[0].line), ("0001_a.up.sql", 3));
    }

    #[test]
    fn squawk_flags_a_blocking_index_build_with_its_position() {
        let s = set(&[
            ("0001_a.up.sql", "-- adds an index\nCREATE INDEX a_idx ON sites (domain);\n"),
            ("0001_a.down.sql", "DROP INDEX IF EXISTS a_idx;\n"),
        ]);
        let findings = lint(&s);
        let f = findings
            .iter()
            .find(|f| f.rule == "require-concurrent-index-creation")
            .unwrap_or_else(|| panic!("{findings:?}"));
        assert_eq!((f.file.as_str(), f.line, f.column), ("0001_a.up.sql", 2, 1));
    }
}

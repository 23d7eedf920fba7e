//! What differs between the PostgreSQL versions we support (14 to 18), in one place. Code
//! elsewhere asks these functions instead of comparing version numbers itself.
//!
//! Differences that need no code, for the record: `pg_hba_file_rules` gains `rule_number` and
//! `file_name` in 16 (we select columns by name); PostgreSQL 18 lists NOT NULL constraints in
//! `pg_constraint` as contype `n` (the schema snapshot reads nullability from the columns
//! and skips them); PUBLIC's CREATE on schema `public` is revoked by default only from 15
//! (`roles apply` revokes it everywhere, the audit checks it everywhere).

use sqlx::PgConnection;

use crate::db::quote_ident;

/// `server_version_num` of the connected server, e.g. 150018.
pub async fn server_version_num(conn: &mut PgConnection) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar("SELECT current_setting('server_version_num')::int").fetch_one(conn).await
}

/// Privileges `has_table_privilege` knows on every supported version (MAINTAIN, from 17, is
/// checked separately by the audit).
pub(crate) const TABLE_PRIVILEGES: [&str; 7] =
    ["SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"];

/// The table privileges `has_table_privilege` knows on this version: MAINTAIN exists from 17.
pub(crate) fn table_privileges(server_version_num: i32) -> Vec<&'static str> {
    let mut privileges = TABLE_PRIVILEGES.to_vec();
    if server_version_num >= 170_000 {
        privileges.push("MAINTAIN");
    }
    privileges
}

/// `REVOKE role FROM member`: from 16 a membership can be granted several times by different
/// grantors, and a revoke removes only the grant of the grantor it names.
pub(crate) fn revoke_membership_sql(
    server_version_num: i32,
    role: &str,
    member: &str,
    grantor: &str,
) -> String {
    let base = format!("REVOKE {} FROM {}", quote_ident(role), quote_ident(member));
    if server_version_num >= 160_000 { format!("{base} GRANTED BY {}", quote_ident(grantor)) } else { base }
}

/// The first pgBackRest release that supports each PostgreSQL major version we support
/// (upstream release notes: 16 in 2.46, 17 in 2.53, 18 in 2.55). Debian 12 ships 2.45.
const PGBACKREST_FIRST_SUPPORTING: [(u32, (u32, u32)); 5] =
    [(14, (2, 33)), (15, (2, 41)), (16, (2, 46)), (17, (2, 53)), (18, (2, 55))];

/// Whether pgBackRest `major.minor` can back up a server of `server_major`; `Err` carries the
/// oldest pgBackRest release that can (as `2.55`).
pub fn pgbackrest_supports(pgbackrest: (u32, u32), server_major: u32) -> Result<(), String> {
    let needed = PGBACKREST_FIRST_SUPPORTING
        .iter()
        .find(|(major, _)| *major == server_major)
        .map(|(_, version)| *version)
        .unwrap_or((u32::MAX, 0));
    if pgbackrest >= needed {
        Ok(())
    } else if needed.0 == u32::MAX {
        Err(format!("a pgBackRest release that knows PostgreSQL {server_major}"))
    } else {
        Err(format!("{}.{}", needed.0, needed.1))
    }
}

#[cfg(test)]
mod tests {
    use super::{pgbackrest_supports, table_privileges};

    #[test]
    fn pgbackrest_2_45_covers_14_and_15_only() {
        assert!(pgbackrest_supports((2, 45), 14).is_ok());
        assert!(pgbackrest_supports((2, 45), 15).is_ok());
        assert_eq!(pgbackrest_supports((2, 45), 16), Err("2.46".to_owned()));
        assert_eq!(pgbackrest_supports((2, 45), 18), Err("2.55".to_owned()));
        assert!(pgbackrest_supports((2, 55), 18).is_ok());
    }

    #[test]
    fn maintain_exists_from_17() {
        assert!(!table_privileges(160_004).contains(&"MAINTAIN"));
        assert!(table_privileges(170_000).contains(&"MAINTAIN"));
    }
}

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

/// The table privileges `has_table_privilege` knows on this version: MAINTAIN exists from 17.
pub fn table_privileges(server_version_num: i32) -> Vec<&'static str> {
    let mut privileges = crate::roles::TABLE_PRIVILEGES.to_vec();
    if server_version_num >= 170_000 {
        privileges.push("MAINTAIN");
    }
    privileges
}

/// `REVOKE role FROM member`: from 16 a membership can be granted several times by different
/// grantors, and a revoke removes only the grant of the grantor it names.
pub fn revoke_membership_sql(server_version_num: i32, role: &str, member: &str, grantor: &str) -> String {
    let base = format!("REVOKE {} FROM {}", quote_ident(role), quote_ident(member));
    if server_version_num >= 160_000 { format!("{base} GRANTED BY {}", quote_ident(grantor)) } else { base }
}

#[cfg(test)]
mod tests {
    use super::table_privileges;

    #[test]
    fn maintain_exists_from_17() {
        assert!(!table_privileges(160_004).contains(&"MAINTAIN"));
        assert!(table_privileges(170_000).contains(&"MAINTAIN"));
    }
}

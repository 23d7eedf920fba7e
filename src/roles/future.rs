//! Privileges granted ahead of time (`ALTER DEFAULT PRIVILEGES`, `pg_default_acl`): what a role
//! will get on objects not created yet. The model grants none; the audit names each, `roles
//! apply` takes each back.

use sqlx::PgConnection;

/// One privilege granted ahead of time (`pg_default_acl`): `grantor`'s future objects of a kind,
/// in one schema or in every one, give `grantee` this privilege.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FutureGrant {
    pub(crate) grantor: String,
    /// Empty: the global entry (every schema).
    pub(crate) schema: String,
    /// `pg_default_acl.defaclobjtype`: r, S, f, T, n, L.
    pub(crate) object_type: String,
    /// A role name, or PUBLIC.
    pub(crate) grantee: String,
    pub(crate) privilege: String,
}

impl FutureGrant {
    /// The objects' kind as `ALTER DEFAULT PRIVILEGES` names it.
    pub(crate) fn objects(&self) -> &'static str {
        match self.object_type.as_str() {
            "r" => "TABLES",
            "S" => "SEQUENCES",
            "f" => "FUNCTIONS",
            "T" => "TYPES",
            "n" => "SCHEMAS",
            "L" => "LARGE OBJECTS",
            _ => "OBJECTS",
        }
    }

    pub(crate) fn describe(&self) -> String {
        let place = if self.schema.is_empty() {
            "in every schema".to_owned()
        } else {
            format!("in schema {}", self.schema)
        };
        format!(
            "{} gives {} {} on the {} it creates next {place}",
            self.grantor,
            self.grantee,
            self.privilege,
            self.objects().to_lowercase()
        )
    }
}

/// Every privilege granted ahead of time to anyone but the creating role itself (whose own
/// rights on what it creates are no grant), in this database.
pub(crate) async fn grants(conn: &mut PgConnection) -> Result<Vec<FutureGrant>, sqlx::Error> {
    let rows: Vec<(String, String, String, String, String)> = sqlx::query_as(
        "SELECT pg_get_userbyid(d.defaclrole) AS grantor, coalesce(n.nspname, '') AS schema,
                d.defaclobjtype::text AS object_type,
                CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END AS grantee,
                a.privilege_type AS privilege
           FROM pg_default_acl d
           LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace,
                aclexplode(d.defaclacl) a
          WHERE a.grantee <> d.defaclrole
          ORDER BY 1, 2, 3, 4, 5",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(grantor, schema, object_type, grantee, privilege)| FutureGrant {
            grantor,
            schema,
            object_type,
            grantee,
            privilege,
        })
        .collect())
}

use std::net::IpAddr;

use sqlx::PgConnection;

use super::check::{Check, is_permission_denied};
use crate::tailnet::is_tailnet_address;

pub(crate) async fn version(conn: &mut PgConnection) -> Result<Check, sqlx::Error> {
    // `db::connect` already refused anything older than 14; this records what it is.
    let version: String =
        sqlx::query_scalar("SELECT current_setting('server_version')").fetch_one(&mut *conn).await?;
    Ok(Check::pass("server.version", format!("PostgreSQL {version} (14 or newer required)")))
}

/// `listen_addresses` as running, and as the configuration files will set it at the next
/// restart (an `ALTER SYSTEM SET listen_addresses = '*'` waiting for a restart is caught).
pub(crate) async fn listen_addresses(
    conn: &mut PgConnection,
    node_ips: Option<&[String]>,
) -> Result<Vec<Check>, sqlx::Error> {
    let running: String =
        sqlx::query_scalar("SELECT setting FROM pg_settings WHERE name = 'listen_addresses'")
            .fetch_one(&mut *conn)
            .await?;
    let mut checks = vec![judge_listen("listen_addresses.running", &running, node_ips)];
    // The last value in the files wins. `pg_file_settings` marks one waiting for a restart
    // "setting could not be applied": exactly the one that takes effect next, so it counts.
    let on_disk: Result<Option<String>, sqlx::Error> = sqlx::query_scalar(
        "SELECT setting FROM pg_file_settings
          WHERE name = 'listen_addresses'
          ORDER BY seqno DESC LIMIT 1",
    )
    .fetch_optional(&mut *conn)
    .await;
    match on_disk {
        Ok(Some(value)) => checks.push(judge_listen("listen_addresses.configured", &value, node_ips)),
        Ok(None) => {}
        Err(e) if is_permission_denied(&e) => {
            checks.push(Check::needs_superuser("listen_addresses.configured", "pg_file_settings"))
        }
        Err(e) => return Err(e),
    }
    Ok(checks)
}

fn judge_listen(id: &'static str, value: &str, node_ips: Option<&[String]>) -> Check {
    let remedy = "set listen_addresses = 'localhost,<this node's Tailscale IPs>' (cabinet-db tailnet render writes it) and restart PostgreSQL";
    let mut problems = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        match entry {
            "*" | "0.0.0.0" | "::" => problems.push(format!("{entry} listens on every interface")),
            "localhost" => {}
            other => match other.parse::<IpAddr>() {
                Ok(ip) if ip.is_loopback() => {}
                Ok(ip) if is_tailnet_address(ip) => {
                    if let Some(ips) = node_ips
                        && !ips.iter().any(|n| n.parse::<IpAddr>().ok() == Some(ip))
                    {
                        problems.push(format!(
                            "{ip} is a tailnet address, but not this node's ({})",
                            ips.join(", ")
                        ));
                    }
                }
                Ok(ip) => problems.push(format!("{ip} is neither loopback nor a Tailscale address")),
                Err(_) => problems
                    .push(format!("{other} is a host name; use addresses so it cannot resolve elsewhere")),
            },
        }
    }
    if problems.is_empty() {
        Check::pass(id, format!("listen_addresses = '{value}'"))
    } else {
        Check::fail(id, format!("listen_addresses = '{value}': {}", problems.join("; ")), remedy)
    }
}

pub(crate) async fn passwords(conn: &mut PgConnection) -> Result<Vec<Check>, sqlx::Error> {
    let encryption: String =
        sqlx::query_scalar("SELECT current_setting('password_encryption')").fetch_one(&mut *conn).await?;
    let mut checks = vec![if encryption == "scram-sha-256" {
        Check::pass("password.encryption", "password_encryption = scram-sha-256")
    } else {
        Check::fail(
            "password.encryption",
            format!("password_encryption = {encryption}"),
            "set password_encryption = 'scram-sha-256' and reload",
        )
    }];
    let md5: Result<Vec<String>, sqlx::Error> =
        sqlx::query_scalar("SELECT rolname FROM pg_authid WHERE rolpassword LIKE 'md5%' ORDER BY rolname")
            .fetch_all(&mut *conn)
            .await;
    checks.push(match md5 {
        Ok(roles) if roles.is_empty() => Check::pass("password.md5_hashes", "no role has an md5 password hash"),
        Ok(roles) => Check::fail(
            "password.md5_hashes",
            format!("md5 password hashes (replayable, and refused by scram rules): {}", roles.join(", ")),
            "set a new password for each (cabinet-db roles rotate ROLE, or \\password in psql) with password_encryption = scram-sha-256",
        ),
        Err(e) if is_permission_denied(&e) => Check::needs_superuser("password.md5_hashes", "pg_authid"),
        Err(e) => return Err(e),
    });
    Ok(checks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_are_judged() {
        assert_eq!(
            judge_listen("x", "localhost,100.101.102.103", None).verdict,
            super::super::check::Verdict::Pass
        );
        assert_eq!(judge_listen("x", "*", None).verdict, super::super::check::Verdict::Fail);
        assert_eq!(
            judge_listen("x", "localhost,192.168.1.5", None).verdict,
            super::super::check::Verdict::Fail
        );
        let not_ours = judge_listen("x", "100.100.1.2", Some(&["100.101.102.103".to_owned()]));
        assert_eq!(not_ours.verdict, super::super::check::Verdict::Fail);
    }
}

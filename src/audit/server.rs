use std::net::IpAddr;

use sqlx::{PgConnection, Row};

use super::{Check, NEEDS_SUPERUSER, is_permission_denied};
use crate::tailnet::{is_tailnet_address, is_tailnet_network};

pub async fn version(conn: &mut PgConnection) -> Result<Check, sqlx::Error> {
    // `db::connect` already refused anything older than 14; this records what it is.
    let version: String =
        sqlx::query_scalar("SELECT current_setting('server_version')").fetch_one(&mut *conn).await?;
    Ok(Check::pass("server.version", format!("PostgreSQL {version} (14 or newer required)")))
}

/// `listen_addresses` as running, and as the configuration files will set it at the next
/// restart (an `ALTER SYSTEM SET listen_addresses = '*'` waiting for a restart is caught).
pub async fn listen_addresses(
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
        Err(e) if is_permission_denied(&e) => checks.push(Check::warn(
            "listen_addresses.configured",
            "could not read pg_file_settings",
            NEEDS_SUPERUSER,
        )),
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

/// One `pg_hba_file_rules` row.
struct HbaRule {
    line: i32,
    kind: String,
    address: Option<String>,
    netmask: Option<String>,
    method: Option<String>,
    error: Option<String>,
}

/// What a rule's address covers.
#[derive(Debug, PartialEq, Eq)]
enum Reach {
    Loopback,
    Tailnet,
    EveryV4,
    EveryV6,
    Everything,
    Other(String),
}

fn reach(address: Option<&str>, netmask: Option<&str>) -> Reach {
    let Some(address) = address else { return Reach::Other("no address".into()) };
    match address {
        "all" => return Reach::Everything,
        "samehost" | "samenet" => {
            return Reach::Other(format!("{address} (this host's or its LAN's addresses)"));
        }
        _ => {}
    }
    let Ok(ip) = address.parse::<IpAddr>() else {
        return Reach::Other(format!("host name {address}"));
    };
    let prefix = match netmask.and_then(|m| m.parse::<IpAddr>().ok()) {
        Some(IpAddr::V4(m)) => u32::from(m).count_ones() as u8,
        Some(IpAddr::V6(m)) => u128::from(m).count_ones() as u8,
        None => {
            if ip.is_ipv4() {
                32
            } else {
                128
            }
        }
    };
    match ip {
        _ if prefix == 0 && ip.is_ipv4() => Reach::EveryV4,
        _ if prefix == 0 => Reach::EveryV6,
        IpAddr::V4(v4) if v4.octets()[0] == 127 && prefix >= 8 => Reach::Loopback,
        IpAddr::V6(v6) if v6.is_loopback() && prefix == 128 => Reach::Loopback,
        _ if is_tailnet_network(ip, prefix) => Reach::Tailnet,
        _ => Reach::Other(format!("{ip}/{prefix}")),
    }
}

pub async fn pg_hba(conn: &mut PgConnection) -> Result<Vec<Check>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT line_number, type, address, netmask, auth_method, error
           FROM pg_hba_file_rules ORDER BY line_number",
    )
    .fetch_all(&mut *conn)
    .await;
    let rows = match rows {
        Ok(rows) => rows,
        Err(e) if is_permission_denied(&e) => {
            return Ok(vec![Check::warn(
                "pg_hba.rules",
                "could not read pg_hba_file_rules",
                NEEDS_SUPERUSER,
            )]);
        }
        Err(e) => return Err(e),
    };
    let rules: Vec<HbaRule> = rows
        .iter()
        .map(|r| {
            Ok(HbaRule {
                line: r.try_get("line_number")?,
                kind: r.try_get::<Option<String>, _>("type")?.unwrap_or_default(),
                address: r.try_get("address")?,
                netmask: r.try_get("netmask")?,
                method: r.try_get("auth_method")?,
                error: r.try_get("error")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;

    let mut checks = Vec::new();
    let errors: Vec<String> =
        rules.iter().filter_map(|r| r.error.as_ref().map(|e| format!("line {}: {e}", r.line))).collect();
    checks.push(if errors.is_empty() {
        Check::pass("pg_hba.errors", "every rule parses")
    } else {
        Check::fail("pg_hba.errors", errors.join("; "), "fix the lines named, then SELECT pg_reload_conf()")
    });

    let host_rules: Vec<&HbaRule> = rules.iter().filter(|r| r.kind.starts_with("host")).collect();
    let mut problems = Vec::new();
    for rule in &host_rules {
        let method = rule.method.as_deref().unwrap_or("");
        if method == "reject" {
            continue;
        }
        if matches!(method, "trust" | "password" | "md5") {
            problems.push(format!("line {} allows {method}", rule.line));
        }
        match reach(rule.address.as_deref(), rule.netmask.as_deref()) {
            Reach::Loopback | Reach::Tailnet => {}
            Reach::EveryV4 | Reach::EveryV6 | Reach::Everything => {
                problems.push(format!("line {} admits every address", rule.line))
            }
            Reach::Other(what) => problems.push(format!("line {} admits {what}", rule.line)),
        }
    }
    checks.push(if problems.is_empty() {
        Check::pass("pg_hba.host_rules", "host rules admit only loopback and tailnet addresses, with scram-sha-256")
    } else {
        Check::fail(
            "pg_hba.host_rules",
            problems.join("; "),
            "allow only 127.0.0.1/32, ::1/128 and tailnet addresses (100.64.0.0/10, fd7a:115c:a1e0::/48) with scram-sha-256 (cabinet-db tailnet render writes such a file)",
        )
    });

    // The last permissive host rule must be followed by rejects covering both families.
    let last_permissive =
        host_rules.iter().rposition(|r| r.method.as_deref() != Some("reject")).map_or(0, |i| i + 1);
    let tail = &host_rules[last_permissive..];
    let covers = |wanted: &Reach| {
        tail.iter().any(|r| {
            let reach = reach(r.address.as_deref(), r.netmask.as_deref());
            reach == Reach::Everything || reach == *wanted
        })
    };
    checks.push(if covers(&Reach::EveryV4) && covers(&Reach::EveryV6) {
        Check::pass("pg_hba.final_reject", "the last host rules reject 0.0.0.0/0 and ::/0")
    } else {
        Check::fail(
            "pg_hba.final_reject",
            "no final `reject` for 0.0.0.0/0 and ::/0 after the last permissive host rule",
            "end pg_hba.conf with `host all all 0.0.0.0/0 reject` and `host all all ::/0 reject`",
        )
    });
    Ok(checks)
}

pub async fn passwords(conn: &mut PgConnection) -> Result<Vec<Check>, sqlx::Error> {
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
        Err(e) if is_permission_denied(&e) => {
            Check::warn("password.md5_hashes", "could not read pg_authid", NEEDS_SUPERUSER)
        }
        Err(e) => return Err(e),
    });
    Ok(checks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hba_addresses_are_classified() {
        assert_eq!(reach(Some("127.0.0.1"), Some("255.255.255.255")), Reach::Loopback);
        assert_eq!(reach(Some("::1"), Some("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")), Reach::Loopback);
        assert_eq!(reach(Some("100.64.0.0"), Some("255.192.0.0")), Reach::Tailnet);
        assert_eq!(reach(Some("100.88.1.2"), Some("255.255.255.255")), Reach::Tailnet);
        assert_eq!(reach(Some("0.0.0.0"), Some("0.0.0.0")), Reach::EveryV4);
        assert_eq!(reach(Some("::"), Some("::")), Reach::EveryV6);
        assert_eq!(reach(Some("all"), None), Reach::Everything);
        assert!(matches!(reach(Some("192.168.0.0"), Some("255.255.0.0")), Reach::Other(_)));
        assert!(
            matches!(reach(Some("100.0.0.0"), Some("255.0.0.0")), Reach::Other(_)),
            "wider than the tailnet"
        );
        assert!(matches!(reach(Some("samenet"), None), Reach::Other(_)));
    }

    #[test]
    fn listen_addresses_are_judged() {
        assert_eq!(judge_listen("x", "localhost,100.101.102.103", None).verdict, super::super::Verdict::Pass);
        assert_eq!(judge_listen("x", "*", None).verdict, super::super::Verdict::Fail);
        assert_eq!(judge_listen("x", "localhost,192.168.1.5", None).verdict, super::super::Verdict::Fail);
        let not_ours = judge_listen("x", "100.100.1.2", Some(&["100.101.102.103".to_owned()]));
        assert_eq!(not_ours.verdict, super::super::Verdict::Fail);
    }
}

//! Client authentication, as the design has it: SCRAM passwords everywhere, from loopback and
//! tailnet addresses only, a final reject; on the unix socket only the OS superuser may log
//! in without a password (`peer`). Every rule is judged, `local` ones included, and the file
//! must be the one in force: one edited after the last reload is not what the server uses.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Row};

use super::check::{Check, or_needs_superuser};
use crate::{
    roles::{RoleKind, Roles},
    tailnet::is_tailnet_network,
};

/// One `pg_hba_file_rules` row.
struct HbaRule {
    line: i32,
    kind: String,
    users: Vec<String>,
    address: Option<String>,
    netmask: Option<String>,
    method: Option<String>,
    /// `map=…` and the like.
    options: Vec<String>,
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

/// `local DB <admin> peer map=panel`: the one passwordless socket login the design has besides
/// the superuser's (`host apply` renders it for cabinet-db-serve.service).
fn is_the_panels_peer_rule(rule: &HbaRule, roles: &Roles) -> bool {
    let map = crate::tailnet::render::PANEL_PEER_MAP;
    rule.users == [roles.name(RoleKind::Admin)] && rule.options == [format!("map={map}")]
}

/// Why a method other than `scram-sha-256` and `reject` is wrong here, or `None`.
fn weak_method(method: &str) -> Option<&'static str> {
    match method {
        "trust" => Some("lets anyone in without a password"),
        "password" => Some("sends the password in clear text"),
        "md5" => Some("accepts replayable md5 hashes"),
        "ident" => Some("trusts the client host's ident server"),
        "ldap" | "radius" | "pam" | "bsd" => {
            Some("checks passwords elsewhere, outside the roles' SCRAM verifiers")
        }
        "cert" | "gss" | "sspi" => Some("uses an authentication the design does not provision"),
        _ => None,
    }
}

pub(crate) async fn checks(conn: &mut PgConnection, roles: &Roles) -> Result<Vec<Check>, sqlx::Error> {
    let mut checks = or_needs_superuser("pg_hba.rules", "pg_hba_file_rules", rules(conn, roles).await)?;
    checks.extend(or_needs_superuser(
        "pg_hba.loaded",
        "the pg_hba.conf file's timestamp",
        loaded(conn).await,
    )?);
    Ok(checks)
}

async fn rules(conn: &mut PgConnection, roles: &Roles) -> Result<Vec<Check>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT line_number, type, coalesce(user_name, '{}') AS user_name, address, netmask, auth_method,
                coalesce(options, '{}') AS options, error
           FROM pg_hba_file_rules ORDER BY line_number",
    )
    .fetch_all(&mut *conn)
    .await?;
    let bootstrap: String =
        sqlx::query_scalar("SELECT rolname::text FROM pg_roles WHERE oid = 10").fetch_one(&mut *conn).await?;
    let rules: Vec<HbaRule> = rows
        .iter()
        .map(|r| {
            Ok(HbaRule {
                line: r.try_get("line_number")?,
                kind: r.try_get::<Option<String>, _>("type")?.unwrap_or_default(),
                users: r.try_get("user_name")?,
                address: r.try_get("address")?,
                netmask: r.try_get("netmask")?,
                method: r.try_get("auth_method")?,
                options: r.try_get("options")?,
                error: r.try_get("error")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;

    let mut checks = Vec::new();
    let errors: Vec<String> =
        rules.iter().filter_map(|r| r.error.as_ref().map(|e| format!("line {}: {e}", r.line))).collect();
    checks.push(Check::from_problems(
        "pg_hba.errors",
        errors,
        "every rule parses",
        "fix the lines named, then SELECT pg_reload_conf()",
    ));

    let host_rules: Vec<&HbaRule> = rules.iter().filter(|r| r.kind.starts_with("host")).collect();
    let mut problems = Vec::new();
    for rule in &host_rules {
        let method = rule.method.as_deref().unwrap_or("");
        if method == "reject" {
            continue;
        }
        if let Some(why) = weak_method(method) {
            problems.push(format!("line {} allows {method} ({why})", rule.line));
        }
        match reach(rule.address.as_deref(), rule.netmask.as_deref()) {
            Reach::Loopback | Reach::Tailnet => {}
            Reach::EveryV4 | Reach::EveryV6 | Reach::Everything => {
                problems.push(format!("line {} admits every address", rule.line))
            }
            Reach::Other(what) => problems.push(format!("line {} admits {what}", rule.line)),
        }
    }
    checks.push(Check::from_problems(
        "pg_hba.host_rules",
        problems,
        "host rules admit only loopback and tailnet addresses, with scram-sha-256",
        "allow only 127.0.0.1/32, ::1/128 and tailnet addresses (100.64.0.0/10, fd7a:115c:a1e0::/48) with scram-sha-256 (cabinet-db tailnet render writes such a file)",
    ));

    // The unix socket: passwords, except the OS superuser over peer (`sudo -u postgres psql`).
    let mut fails = Vec::new();
    let mut warnings = Vec::new();
    for rule in rules.iter().filter(|r| r.kind == "local") {
        let method = rule.method.as_deref().unwrap_or("");
        if let Some(why) = weak_method(method) {
            fails.push(format!("line {} (local) allows {method} ({why})", rule.line));
        } else if method == "peer" && is_the_panels_peer_rule(rule, roles) {
            // The packaged panel (OS user cabinet-db) as the admin role, through its own map.
        } else if method == "peer" && !rule.users.iter().all(|u| u == "postgres" || *u == bootstrap) {
            warnings.push(format!(
                "line {} lets OS users log in as the database role of the same name without a password (peer for {})",
                rule.line,
                rule.users.join(",")
            ));
        }
    }
    let remedy = "on the socket, keep `local all postgres peer` and give every other role scram-sha-256";
    checks.push(if !fails.is_empty() {
        Check::fail("pg_hba.local_rules", fails.join("; "), remedy)
    } else if !warnings.is_empty() {
        Check::warn("pg_hba.local_rules", warnings.join("; "), remedy)
    } else {
        Check::pass(
            "pg_hba.local_rules",
            "socket rules need a SCRAM password (peer only for the OS superuser)",
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

/// `pg_hba_file_rules` reads the file as it is now; the server uses what it last loaded. A
/// file changed since then is not what is in force — whatever it says.
///
/// The server reports the file's time in whole seconds. When the audit runs on the database
/// host and sees the same file, its own `stat` gives the time to the nanosecond; otherwise a
/// change in the same second as the reload cannot be placed before or after it, and says so.
async fn loaded(conn: &mut PgConnection) -> Result<Vec<Check>, sqlx::Error> {
    let (path, size, changed, loaded_at): (String, i64, DateTime<Utc>, DateTime<Utc>) = sqlx::query_as(
        "SELECT current_setting('hba_file'), (f).size, (f).modification, pg_conf_load_time()
           FROM (SELECT pg_stat_file(current_setting('hba_file')) AS f) s",
    )
    .fetch_one(&mut *conn)
    .await?;
    let local = std::fs::metadata(&path).ok().and_then(|m| {
        let modified: DateTime<Utc> = m.modified().ok()?.into();
        (m.len() as i64 == size && modified.timestamp() == changed.timestamp()).then_some(modified)
    });
    let pending = match local {
        Some(modified) => Some(modified > loaded_at),
        None if changed.timestamp() > loaded_at.timestamp() => Some(true),
        None if changed.timestamp() == loaded_at.timestamp() => None,
        None => Some(false),
    };
    let changed = local.unwrap_or(changed);
    Ok(vec![match pending {
        Some(true) => Check::fail(
            "pg_hba.loaded",
            format!(
                "{path} changed at {changed}, after the server last loaded it ({loaded_at}): reload pending, so the rules in force are not the ones checked here"
            ),
            "SELECT pg_reload_conf() (then audit again)",
        ),
        None => Check::warn(
            "pg_hba.loaded",
            format!(
                "{path} changed in the same second as the last reload ({loaded_at}): cannot tell which came first"
            ),
            "SELECT pg_reload_conf() (or run the audit on the database host)",
        ),
        Some(false) => {
            Check::pass("pg_hba.loaded", format!("the rules checked are the ones loaded at {loaded_at}"))
        }
    }])
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
    fn only_scram_and_reject_are_strong_enough() {
        for weak in ["trust", "password", "md5", "ident", "ldap", "radius", "pam", "cert"] {
            assert!(weak_method(weak).is_some(), "{weak}");
        }
        for fine in ["scram-sha-256", "reject", "peer"] {
            assert!(weak_method(fine).is_none(), "{fine}");
        }
    }
}

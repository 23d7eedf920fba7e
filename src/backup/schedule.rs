//! The schedule that keeps backups true: systemd units and timers for a daily full backup, an
//! hourly incremental one and a weekly drill, running as the server's user, and a daily audit
//! (as root: it reads pg_hba, the firewall and the secrets), each failure logged to the journal
//! as an error (and the unit left failed, so `systemctl --failed` shows it). Pure text: the
//! same input gives the same files.
//!
//! Two flavours: for a host without the package, the settings go into the units
//! (`Environment=`); the Debian package's units carry none, so the commands read
//! /etc/cabinet-db/cabinet-db.toml like any other (an `Environment=` would beat the file).

use std::path::PathBuf;

use super::secrets::include_dir;
use crate::{db::DatabaseUrl, tailnet::render::RenderedFile};

/// Debian's pgBackRest.
const PGBACKREST: &str = "/usr/bin/pgbackrest";

#[derive(Debug, Clone)]
pub(crate) struct ScheduleInput {
    /// The installed binary (`/usr/bin/cabinet-db` from the package).
    pub(crate) binary: PathBuf,
    /// pgBackRest's configuration.
    pub(crate) config: PathBuf,
    /// The server's OS user (runs pgBackRest and the drill).
    pub(crate) user: String,
    /// Where the commands find their settings.
    pub(crate) settings: UnitSettings,
}

/// Where the scheduled commands find the database and pgBackRest's configuration.
#[derive(Debug, Clone)]
pub(crate) enum UnitSettings {
    /// In the units (`Environment=`). The drill's and audit's connection is the superuser over
    /// the socket by peer, so no password sits in a unit file.
    InUnits { database_url: DatabaseUrl },
    /// In the configuration file (the package's units).
    ConfigurationFile,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ScheduleError {
    #[error(
        "the drill's database URL carries a password, which would end up in a unit file; use the socket and peer instead, e.g. postgres:///cabinet?host=/var/run/postgresql&user=postgres"
    )]
    PasswordInUrl,
    #[error("{0:?} is not a user name a unit file can carry")]
    BadUser(String),
}

pub(crate) fn render(input: &ScheduleInput) -> Result<Vec<RenderedFile>, ScheduleError> {
    if let UnitSettings::InUnits { database_url } = &input.settings
        && crate::config::has_password(database_url.expose())
    {
        return Err(ScheduleError::PasswordInUrl);
    }
    if input.user.is_empty() || !input.user.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)) {
        return Err(ScheduleError::BadUser(input.user.clone()));
    }
    let binary = input.binary.display();
    let config = input.config.display();
    let user = &input.user;
    let file = |name: &str, contents: String| RenderedFile { path: PathBuf::from(name), contents };
    let (header, config_env, url_env) = match &input.settings {
        UnitSettings::InUnits { database_url } => (
            "# cabinet-db: rendered by `cabinet-db backup schedule`; install into /etc/systemd/system/\n# then `systemctl daemon-reload && systemctl enable --now <the timers>`.\n",
            vec![format!("CABINET_BACKUP_CONFIG={config}")],
            vec![format!("DATABASE_URL={}", database_url.expose().replace('%', "%%"))],
        ),
        UnitSettings::ConfigurationFile => (
            "# cabinet-db: installed by the cabinet-db package; the commands read /etc/cabinet-db/cabinet-db.toml.\n# `cabinet-db host apply` enables the timers (or: systemctl enable --now <the timers>).\n",
            Vec::new(),
            Vec::new(),
        ),
    };
    let config_env: Vec<&str> = config_env.iter().map(String::as_str).collect();
    let drill_env: Vec<&str> = config_env.iter().copied().chain(url_env.iter().map(String::as_str)).collect();
    Ok(vec![
        file(
            "cabinet-db-backup@.service",
            oneshot(
                header,
                "%i backup of the database (pgBackRest)",
                Some(user),
                &config_env,
                &format!("{binary} backup run --type %i"),
            ),
        ),
        file(
            "cabinet-db-backup-full.timer",
            timer(header, "daily full backup", "*-*-* 02:15:00", Some("15min"), Some("cabinet-db-backup@full.service")),
        ),
        file(
            "cabinet-db-backup-incr.timer",
            timer(header, "hourly incremental backup", "*-*-* *:45:00", None, Some("cabinet-db-backup@incr.service")),
        ),
        file(
            "cabinet-db-drill.service",
            oneshot(
                header,
                "restore drill (restore, compare every table, record the result)",
                Some(user),
                &drill_env,
                &format!("{binary} backup drill"),
            ),
        ),
        file(
            "cabinet-db-backup-server.service",
            format!(
                "{header}# Only with a repository host (backup setup --repo-host / setup-repo-host): enable it on both\n# hosts. It listens on the tailnet address in the configuration and admits only the peer.\n[Unit]
Description=cabinet-db: pgBackRest server for the other host (repository host link)
After=network-online.target tailscaled.service
Wants=network-online.target
OnFailure=cabinet-db-failed@%n.service

[Service]
User={user}
Group={user}
ExecStart={PGBACKREST} --config={config} --config-include-path={include} server
Restart=always
RestartSec=5s

[Install]
WantedBy=multi-user.target
",
                include = include_dir(&input.config).display(),
            ),
        ),
        file("cabinet-db-drill.timer", timer(header, "weekly restore drill", "Sun *-*-* 04:30:00", Some("30min"), None)),
        file(
            "cabinet-db-audit.service",
            oneshot(
                header,
                "audit (exposure, privileges, contents, backups; exit 1 fails the unit)",
                None,
                &drill_env,
                &format!("{binary} audit --record"),
            ),
        ),
        file("cabinet-db-audit.timer", timer(header, "daily audit", "*-*-* 06:00:00", Some("15min"), None)),
        file(
            "cabinet-db-metrics.service",
            oneshot(
                header,
                "store a scrape of the metrics (pgBackRest's listing, the records, the cluster) for serve's /metrics",
                None,
                &drill_env,
                &format!("{binary} metrics --out {}", crate::records::STORED_SCRAPE),
            )
            // A scrape that hangs (a database that accepts and never answers) is stopped before
            // the next one is due: the stored scrape then grows old, and CabinetDbMetricsStale says so.
            .replace(
                "[Service]\n",
                "[Service]\nStateDirectory=cabinet-db/metrics\nStateDirectoryMode=0755\nTimeoutStartSec=50s\n",
            ),
        ),
        file("cabinet-db-metrics.timer", timer(header, "a scrape of the metrics each minute", "*-*-* *:*:00", None, None)),
        file(
            "cabinet-db-failed@.service",
            format!(
                "{header}[Unit]
Description=cabinet-db: report that %i failed

[Service]
Type=oneshot
ExecStart=/usr/bin/logger --tag cabinet-db --priority daemon.err \"%i failed: journalctl -u %i says why; cabinet-db audit will fail until it succeeds\"
"
            ),
        ),
    ])
}

/// A one-shot service as the server's user (or root), reporting its failure.
fn oneshot(header: &str, description: &str, user: Option<&str>, environment: &[&str], exec: &str) -> String {
    let environment: String = environment.iter().map(|e| format!("Environment={e}\n")).collect();
    let user = user.map(|u| format!("User={u}\nGroup={u}\n")).unwrap_or_default();
    format!(
        "{header}[Unit]
Description=cabinet-db: {description}
After=postgresql.service
OnFailure=cabinet-db-failed@%n.service

[Service]
Type=oneshot
{user}{environment}ExecStart={exec}
"
    )
}

/// A timer; without `unit` it starts the service of its own name.
fn timer(
    header: &str,
    description: &str,
    calendar: &str,
    spread: Option<&str>,
    unit: Option<&str>,
) -> String {
    let spread = spread.map(|s| format!("RandomizedDelaySec={s}\n")).unwrap_or_default();
    let unit = unit.map(|u| format!("Unit={u}\n")).unwrap_or_default();
    format!(
        "{header}[Unit]
Description=cabinet-db: {description}

[Timer]
OnCalendar={calendar}
{spread}Persistent=true
{unit}
[Install]
WantedBy=timers.target
"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> ScheduleInput {
        ScheduleInput {
            binary: "/usr/bin/cabinet-db".into(),
            config: "/etc/cabinet-db/pgbackrest.conf".into(),
            user: "postgres".into(),
            settings: UnitSettings::InUnits {
                database_url: DatabaseUrl::new("postgres:///cabinet?host=/var/run/postgresql&user=postgres"),
            },
        }
    }

    #[test]
    fn units_run_as_the_server_user_and_refuse_a_password() {
        let files = render(&input()).unwrap();
        let backup = &files.iter().find(|f| f.path.ends_with("cabinet-db-backup@.service")).unwrap().contents;
        assert!(
            backup.contains("User=postgres") && backup.contains("OnFailure=cabinet-db-failed@%n.service")
        );
        let with_password = ScheduleInput {
            settings: UnitSettings::InUnits {
                database_url: DatabaseUrl::new("postgres://postgres:secret@localhost/cabinet"),
            },
            ..input()
        };
        assert!(matches!(render(&with_password), Err(ScheduleError::PasswordInUrl)));
        assert!(render(&ScheduleInput { user: "postgres\nExecStart=/bin/sh".into(), ..input() }).is_err());
    }

    #[test]
    fn the_packages_units_leave_every_setting_to_the_configuration_file() {
        let files = render(&ScheduleInput { settings: UnitSettings::ConfigurationFile, ..input() }).unwrap();
        for file in &files {
            assert!(!file.contents.contains("Environment="), "{}", file.path.display());
        }
        let audit = &files.iter().find(|f| f.path.ends_with("cabinet-db-audit.service")).unwrap().contents;
        assert!(audit.contains("ExecStart=/usr/bin/cabinet-db audit") && !audit.contains("User="), "{audit}");
    }
}

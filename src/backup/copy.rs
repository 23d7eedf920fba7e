//! The restored copy as a running cluster: its own settings (loopback, a private socket, never
//! archiving, a log in English), the `restore_command` that keeps a short segment out of
//! recovery, starting it and waiting for it to promote, and stopping it.
//!
//! A segment the repository holds whole-looking but short (a zstd file of only its first
//! half: pgBackRest's `archive-get` decompresses it without complaint) makes PostgreSQL stop
//! dead at startup (`FATAL: archive file … has wrong size`), copy and all: no way to get the
//! copy up to the hole. So the copy's `restore_command` is pgBackRest's own followed by a size
//! check that refuses such a file (saying so in the log, in PostgreSQL's words): for
//! PostgreSQL it is then a segment not in the archive, recovery ends before it, as at a
//! missing segment, and `reached` finds the hole.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use sqlx::{ConnectOptions, Connection, postgres::PgConnectOptions};

use super::{BackupError, restore_error::RestoreError};
use crate::{
    db::DatabaseUrl,
    local_cluster::{LocalCluster, RunAs, local_pg_hba},
};

/// How long a restored copy may take to reach its target and promote.
const PROMOTE_TIMEOUT: Duration = Duration::from_secs(300);
/// PostgreSQL's default WAL segment size, for a copy whose control file cannot be read.
pub(crate) const DEFAULT_SEGMENT_SIZE_BYTES: u64 = 16 << 20;

/// The copy's own configuration: loopback and a private socket, nothing from production's
/// (which, on Debian, lives outside the data directory anyway); and the size-checking
/// `restore_command` around the one pgBackRest wrote.
pub(crate) fn write_settings(
    cluster: &LocalCluster,
    superuser: &str,
    segment_size: u64,
) -> Result<(), BackupError> {
    let conf = format!(
        "# A copy restored by cabinet-db: loopback only, never archiving.\n\
         listen_addresses = '127.0.0.1'\n\
         port = {}\n\
         unix_socket_directories = '{}'\n\
         archive_mode = off\n\
         # Its log is read for where recovery stopped: English, times in UTC.\n\
         lc_messages = 'C'\n\
         timezone = 'UTC'\n\
         log_timezone = 'UTC'\n\
         password_encryption = 'scram-sha-256'\n",
        cluster.port,
        cluster.socket_dir().display()
    );
    let ident = match &cluster.run_as {
        // The superuser over the socket: the server's OS user, and root (who runs cabinet-db).
        RunAs::User { name, .. } => format!("server {name} {superuser}\nserver root {superuser}\n"),
        RunAs::CurrentUser => format!("server {} {superuser}\n", cluster.run_as.user_name()),
    };
    for (name, contents) in
        [("postgresql.conf", conf), ("pg_hba.conf", local_pg_hba(superuser)), ("pg_ident.conf", ident)]
    {
        let path = cluster.pgdata().join(name);
        std::fs::write(&path, contents).map_err(BackupError::io(format!("write {}", path.display())))?;
        cluster.run_as.hand_over(&path)?;
    }
    // Production's settings for the old layout would override ours.
    let _ = std::fs::remove_file(cluster.pgdata().join("cabinet.conf"));
    guard_restore_command(cluster, segment_size)
}

/// Appends to `postgresql.auto.conf` (pgBackRest's recovery settings; the last line for a
/// setting wins) a `restore_command` that runs pgBackRest's and then refuses a segment of the
/// wrong size. pgBackRest's own line is kept as written: it names the copy's data directory,
/// which `archive-get` reads, and works when the production one is gone.
fn guard_restore_command(cluster: &LocalCluster, segment_size: u64) -> Result<(), BackupError> {
    let path = cluster.pgdata().join("postgresql.auto.conf");
    let text = std::fs::read_to_string(&path).map_err(BackupError::io(format!("read {}", path.display())))?;
    let Some(fetch) = setting(&text, "restore_command") else {
        // Nothing to guard (pgBackRest wrote none); PostgreSQL's own check remains.
        return Ok(());
    };
    let guarded = guarded_restore_command(&fetch, segment_size);
    let line = format!(
        "# cabinet-db: a segment of the wrong size ends recovery before it (instead of stopping the copy).\nrestore_command = '{}'\n",
        quote_setting(&guarded)
    );
    let mut out = text;
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&line);
    std::fs::write(&path, out).map_err(BackupError::io(format!("write {}", path.display())))
}

/// `fetch`, then for a segment (a name without a dot: not a `.history`, `.partial` or
/// `.backup` file) a size check. The refusal is worded as PostgreSQL words its own FATAL
/// (`reached` reads either); exit 1 means "not in the archive" to PostgreSQL. No `%` but
/// PostgreSQL's placeholders.
pub(crate) fn guarded_restore_command(fetch: &str, segment_size: u64) -> String {
    format!(
        "{fetch} && case \"%f\" in *.*) ;; *) s=$(wc -c <\"%p\") && [ \"$s\" -eq {segment_size} ] || {{ echo \"cabinet-db: archive file \\\"%f\\\" has wrong size: $s instead of {segment_size} bytes; recovery ends before it\" >&2; rm -f \"%p\"; exit 1; }} ;; esac"
    )
}

/// A value for a PostgreSQL configuration file: quoted, with `'` doubled and `\` escaped (the
/// file's parser reads backslash escapes inside quotes).
fn quote_setting(value: &str) -> String {
    value.replace('\\', "\\\\").replace('\'', "''")
}

/// The last value of `name` in a PostgreSQL configuration file's text, unquoted as the
/// server reads it (`''` and `\'` are a quote, `\\` a backslash; pgBackRest writes no other
/// escapes).
fn setting(text: &str, name: &str) -> Option<String> {
    text.lines()
        .filter_map(|line| {
            let (key, value) = line.split_once('=')?;
            (key.trim() == name).then(|| value.trim())
        })
        .filter_map(|value| {
            let inner = value.strip_prefix('\'')?.strip_suffix('\'')?;
            let mut out = String::new();
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => out.extend(chars.next()),
                    '\'' => {
                        out.push('\'');
                        chars.next();
                    }
                    c => out.push(c),
                }
            }
            Some(out)
        })
        .next_back()
}

/// The restored data's WAL segment size, from its control file (`pg_controldata`, in English);
/// PostgreSQL's default when it cannot be read (the restore failed before writing it).
pub(crate) fn wal_segment_size(cluster: &LocalCluster) -> u64 {
    let out = cluster
        .run_as
        .command(&cluster.binaries.tool("pg_controldata"))
        .arg(cluster.pgdata())
        .env("LC_ALL", "C")
        .output();
    out.ok()
        .filter(|o| o.status.success())
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .find_map(|l| l.strip_prefix("Bytes per WAL segment:").map(|v| v.trim().parse().ok()))
                .flatten()
        })
        .unwrap_or(DEFAULT_SEGMENT_SIZE_BYTES)
}

/// Starts the copy and waits until it has reached its target and promoted; its timeline.
pub(crate) async fn start(cluster: &LocalCluster, superuser: &str) -> Result<i64, BackupError> {
    if let Err(e) = cluster.start() {
        return Err(RestoreError::DidNotStart { reason: Some(e.to_string()), log: log_tail(cluster) }.into());
    }
    let options = socket_options(cluster, superuser, "postgres");
    let deadline = Instant::now() + PROMOTE_TIMEOUT;
    loop {
        if let Ok(mut conn) = options.connect().await {
            let state: Result<(bool, i64), _> = sqlx::query_as(
                "SELECT pg_is_in_recovery(), (SELECT timeline_id::bigint FROM pg_control_checkpoint())",
            )
            .fetch_one(&mut conn)
            .await;
            conn.close().await.ok();
            if let Ok((false, timeline)) = state {
                return Ok(timeline);
            }
        }
        if !cluster.is_running() || Instant::now() > deadline {
            let reason = if cluster.is_running() { "it did not promote in time" } else { "it stopped" };
            return Err(RestoreError::DidNotStart {
                reason: Some(reason.to_owned()),
                log: log_tail(cluster),
            }
            .into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) fn socket_options(cluster: &LocalCluster, user: &str, database: &str) -> PgConnectOptions {
    PgConnectOptions::new()
        .socket(cluster.socket_dir())
        .port(cluster.port)
        .username(user)
        .database(database)
        .disable_statement_logging()
}

/// `postgres://<superuser>@localhost:<port>/<db>?host=<socket dir>`.
pub fn socket_url(cluster: &LocalCluster, superuser: &str, database: &str) -> DatabaseUrl {
    DatabaseUrl::new(format!(
        "postgres://{superuser}@localhost:{}/{database}?host={}",
        cluster.port,
        cluster.socket_dir().display()
    ))
}

/// The command that stops the copy, as whoever runs cabinet-db can type it: as root,
/// `pg_ctl` must run as the server's user, as the copy was started (`runuser` is util-linux,
/// on every Debian host; `sudo` may be absent).
pub(crate) fn stop_command(cluster: &LocalCluster) -> String {
    let pg_ctl = cluster.binaries.tool("pg_ctl");
    let stop = format!("{} -D {} stop", quote(&pg_ctl), quote(&cluster.pgdata()));
    match &cluster.run_as {
        RunAs::User { name, .. } => format!("runuser -u {name} -- {stop}"),
        RunAs::CurrentUser => stop,
    }
}

/// A path as a shell word (quoted only when it needs it).
fn quote(path: &Path) -> String {
    let text = path.display().to_string();
    if text.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+:@".contains(c)) {
        text
    } else {
        super::config::shell_quote(&text)
    }
}

pub(crate) fn log_tail(cluster: &LocalCluster) -> String {
    let text = std::fs::read_to_string(cluster.log_file()).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Stops a restored copy and deletes it.
pub fn stop_and_remove(cluster: &LocalCluster) {
    if cluster.is_running() {
        let _ = cluster.stop("immediate");
    }
    let _ = std::fs::remove_dir_all(&cluster.root);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_restore_command_keeps_pgbackrests_and_refuses_only_a_segment_of_the_wrong_size() {
        let auto = "# Recovery settings generated by pgBackRest restore on 2026-12-03 15:33:11\n\
                    restore_command = 'pgbackrest --config=/etc/it''s.conf --stanza=cabinet archive-get %f \"%p\"'\n";
        let fetch = setting(auto, "restore_command").unwrap();
        assert_eq!(fetch, "pgbackrest --config=/etc/it's.conf --stanza=cabinet archive-get %f \"%p\"");
        assert_eq!(
            setting("restore_command = 'a'\nrestore_command = 'b'\n", "restore_command").as_deref(),
            Some("b")
        );
        let guarded = guarded_restore_command(&fetch, 1024);
        let written = format!("restore_command = '{}'\n", quote_setting(&guarded));
        assert_eq!(setting(&written, "restore_command"), Some(guarded), "read back as the server reads it");

        // Run it as PostgreSQL would (placeholders replaced, through /bin/sh) on a fake fetch.
        let dir = std::env::temp_dir().join(format!("cabinet-copy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let run = |file: &str, bytes: usize| {
            let source = dir.join("source");
            std::fs::write(&source, vec![0u8; bytes]).unwrap();
            let target = dir.join("RECOVERYXLOG");
            let fetch = format!("cp {} \"%p\"", source.display());
            let command = guarded_restore_command(&fetch, 1024)
                .replace("%f", file)
                .replace("%p", target.to_str().unwrap());
            let out = std::process::Command::new("/bin/sh").arg("-c").arg(command).output().unwrap();
            (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned(), target.exists())
        };
        assert_eq!(run("000000010000000000000007", 1024), (Some(0), String::new(), true));
        let (code, said, kept) = run("000000010000000000000007", 512);
        assert_eq!((code, kept), (Some(1), false), "{said}");
        let short = crate::backup::reached::wrong_size(&said).unwrap();
        assert_eq!(
            (short.segment.as_str(), short.size, short.expected),
            ("000000010000000000000007", 512, 1024)
        );
        assert_eq!(run("00000002.history", 40).0, Some(0), "not a segment: no size to check");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

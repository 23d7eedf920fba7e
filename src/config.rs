//! The host's configuration file, `/etc/cabinet-db/cabinet-db.toml` (another with
//! `--config-file PATH` or `CABINET_CONFIG`; `backup --config` is pgBackRest's file).
//!
//! Every setting in it is one that a command-line option already has, and is read through
//! that option: a value from the file becomes the option's default. So the precedence is
//! clap's own — a flag beats the environment variable, which beats the file, which beats the
//! built-in default — for every command at once, with no second parser of values: each value
//! in the file is checked by the option's own parser when the file is read, and a bad one is
//! reported with the file's line and column.
//!
//! Environment variables read here: `CABINET_CONFIG` (the file). Each setting's own variable
//! is listed in `SETTINGS`.

use std::{
    ffi::OsStr,
    fmt,
    io::ErrorKind,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use serde::Deserialize;
use toml::Spanned;

/// Where a Debian host keeps the file (a conffile of the package).
pub(crate) const DEFAULT_PATH: &str = "/etc/cabinet-db/cabinet-db.toml";
/// The variable naming another file.
pub(crate) const PATH_ENV: &str = "CABINET_CONFIG";

/// One setting of the file: its key, and the environment variable that the options taking
/// it read (the file's value becomes those options' default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Setting {
    /// `section.name`, or `name` at the top.
    pub(crate) key: &'static str,
    pub(crate) env: &'static str,
    /// Only the options of this subcommand (its path, e.g. `serve`) take it.
    pub(crate) only_in: Option<&'static str>,
    /// A list in the file (`["a", "b"]`), a repeatable option on the command line.
    pub(crate) list: bool,
}

const fn one(key: &'static str, env: &'static str) -> Setting {
    Setting { key, env, only_in: None, list: false }
}

const fn list(key: &'static str, env: &'static str) -> Setting {
    Setting { key, env, only_in: None, list: true }
}

/// Every key the file may hold, in the order `config show` prints them.
pub(crate) const SETTINGS: &[Setting] = &[
    one("database_url", "DATABASE_URL"),
    one("secrets_dir", "CABINET_SECRETS_DIR"),
    one("tailscale_socket", "TAILSCALE_SOCKET"),
    one("role_prefix", "CABINET_ROLE_PREFIX"),
    Setting { key: "panel.database_url", env: "DATABASE_URL", only_in: Some("serve"), list: false },
    list("panel.listen", "CABINET_PANEL_LISTEN"),
    one("panel.tls_cert", "CABINET_PANEL_TLS_CERT"),
    one("panel.tls_key", "CABINET_PANEL_TLS_KEY"),
    one("backup.config", "CABINET_BACKUP_CONFIG"),
    one("backup.repo", "CABINET_BACKUP_REPO"),
    one("backup.repo_host", "CABINET_BACKUP_REPO_HOST"),
    one("backup.state_dir", "CABINET_BACKUP_STATE_DIR"),
    one("backup.tls_ca", "CABINET_BACKUP_TLS_CA"),
    one("backup.tls_cert", "CABINET_BACKUP_TLS_CERT"),
    one("backup.tls_key", "CABINET_BACKUP_TLS_KEY"),
    one("backup.tls_listen", "CABINET_BACKUP_TLS_LISTEN"),
    one("backup.s3_endpoint", "CABINET_BACKUP_S3_ENDPOINT"),
    one("backup.s3_bucket", "CABINET_BACKUP_S3_BUCKET"),
    one("backup.s3_region", "CABINET_BACKUP_S3_REGION"),
    one("backup.s3_path", "CABINET_BACKUP_S3_PATH"),
    one("backup.s3_uri_style", "CABINET_BACKUP_S3_URI_STYLE"),
    one("backup.s3_ca_file", "CABINET_BACKUP_S3_CA_FILE"),
    one("backup.cipher_pass_file", "CABINET_BACKUP_CIPHER_PASS_FILE"),
    list("cluster.nodes", "CABINET_CLUSTER_NODES"),
    one("cluster.witness", "CABINET_CLUSTER_WITNESS"),
    list("cluster.members", "CABINET_CLUSTER_MEMBERS"),
    list("cluster.etcd", "CABINET_CLUSTER_ETCD"),
    one("host.cluster", "CABINET_HOST_CLUSTER"),
];

impl Setting {
    /// Database URLs may hold a password: shown redacted, and a file holding one must not be
    /// readable by others.
    pub(crate) fn is_database_url(&self) -> bool {
        self.env == "DATABASE_URL"
    }

    fn applies_to(&self, command_path: &str) -> bool {
        self.only_in.is_none_or(|only| only == command_path)
    }
}

/// The largest configuration file read: the full example is under 4 KiB.
pub(crate) const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Why the file could not be used. Nothing has run when this is returned.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Invalid { path: PathBuf, line: usize, column: usize, message: String },
    #[error(
        "{path} is larger than {limit} bytes (or has no end, like a device): a cabinet-db configuration is a few lines of TOML; check that --config-file names the right file",
        limit = MAX_CONFIG_BYTES
    )]
    TooLarge { path: PathBuf },
    #[error(
        "{path} holds a password in {key} but every user of this host may read it (mode {mode:o}): \
         chmod 0640 {path}, or keep the password in a passfile (PGPASSFILE) instead"
    )]
    SecretReadable { path: PathBuf, key: &'static str, mode: u32 },
}

/// The file as read: which settings it gives, and where.
#[derive(Clone, Default)]
pub struct ConfigFile {
    pub(crate) path: Option<PathBuf>,
    pub(crate) values: Vec<FileValue>,
}

/// One setting's value from the file.
#[derive(Clone)]
pub(crate) struct FileValue {
    pub(crate) setting: Setting,
    pub(crate) values: Vec<String>,
    pub(crate) line: usize,
    pub(crate) column: usize,
}

impl fmt::Debug for FileValue {
    // A database URL may hold a password: never in Debug output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: Vec<String> = if self.setting.is_database_url() {
            self.values.iter().map(|v| crate::db::DatabaseUrl::new(v.clone()).redacted()).collect()
        } else {
            self.values.clone()
        };
        f.debug_struct("FileValue")
            .field("key", &self.setting.key)
            .field("values", &shown)
            .field("line", &self.line)
            .finish()
    }
}

impl fmt::Debug for ConfigFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigFile").field("path", &self.path).field("values", &self.values).finish()
    }
}

/// Which file to read: `--config-file PATH` (or `--config-file=PATH`) among the arguments, else
/// `CABINET_CONFIG`, else the default path if it exists. A file named either way must exist.
pub(crate) fn locate(args: &[std::ffi::OsString], env: Option<std::ffi::OsString>) -> Option<PathBuf> {
    let mut named = None;
    let mut iter = args.iter().skip(1);
    while let Some(arg) = iter.next() {
        let Some(text) = arg.to_str() else { continue };
        if text == "--" {
            break;
        }
        if text == "--config-file" {
            named = iter.next().map(PathBuf::from);
        } else if let Some(path) = text.strip_prefix("--config-file=") {
            named = Some(PathBuf::from(path));
        }
    }
    named
        .or_else(|| env.filter(|e| !e.is_empty()).map(PathBuf::from))
        .or_else(|| Path::new(DEFAULT_PATH).exists().then(|| PathBuf::from(DEFAULT_PATH)))
}

impl ConfigFile {
    /// Reads and checks the file (its keys and the shape of each value; the values themselves
    /// are checked by [`ConfigFile::apply`] against the options that take them).
    pub(crate) fn load(path: &Path) -> Result<Self, ConfigError> {
        let read_error = |source| ConfigError::Read { path: path.to_owned(), source };
        // Bounded: /dev/zero, a FIFO or a log named by mistake must not be read without end.
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|file| {
                std::io::Read::read_to_end(&mut std::io::Read::take(file, MAX_CONFIG_BYTES + 1), &mut bytes)
            })
            .map_err(read_error)?;
        if bytes.len() as u64 > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooLarge { path: path.to_owned() });
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            let at = e.utf8_error().valid_up_to();
            invalid_at(path, &String::from_utf8_lossy(e.as_bytes()), at, "the file is not UTF-8".to_owned())
        })?;
        let file = Self::parse(path, &text)?;
        let with_password = file
            .values
            .iter()
            .find(|v| v.setting.is_database_url() && v.values.iter().any(|u| has_password(u)));
        if let Some(value) = with_password {
            let mode = std::fs::metadata(path).map_err(read_error)?.permissions().mode() & 0o7777;
            if mode & 0o004 != 0 {
                return Err(ConfigError::SecretReadable {
                    path: path.to_owned(),
                    key: value.setting.key,
                    mode,
                });
            }
        }
        Ok(file)
    }

    /// Parses the file's text: TOML with only the keys of `SETTINGS`.
    pub(crate) fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let document: Document = toml::from_str(text).map_err(|e| {
            let at = e.span().map_or(0, |s| s.start);
            invalid_at(path, text, at, e.message().trim().to_owned())
        })?;
        let mut values = Vec::new();
        for (key, value) in document.entries() {
            let Some(value) = value else { continue };
            let setting =
                *SETTINGS.iter().find(|s| s.key == key).expect("every key of Document is a setting");
            let at = value.span().start;
            let strings = match (value.get_ref(), setting.list) {
                (Value::One(v), false) => vec![v.clone()],
                (Value::List(v), true) => v.clone(),
                (Value::One(v), true) => vec![v.clone()],
                (Value::List(_), false) => {
                    return Err(invalid_at(path, text, at, format!("{key} takes one value, not a list")));
                }
            };
            let invisible = crate::models::characters::is_invisible_or_control;
            if let Some(bad) = strings.iter().find(|s| s.chars().any(invisible)) {
                let shown = crate::models::characters::escape_invisible(bad, false);
                return Err(invalid_at(
                    path,
                    text,
                    at,
                    format!(
                        "{key} holds a control or invisible character (\"{shown}\"); write the value plainly"
                    ),
                ));
            }
            if setting.is_database_url() {
                let url = crate::db::DatabaseUrl::new(strings[0].clone());
                if url.connect_options().is_err() {
                    return Err(invalid_at(
                        path,
                        text,
                        at,
                        format!(
                            "{key} is not a PostgreSQL URL the client can read; on this host write e.g. \
                             \"postgresql:///cabinet?host=/var/run/postgresql&user=postgres\""
                        ),
                    ));
                }
            }
            let (line, column) = line_and_column(text, at);
            values.push(FileValue { setting, values: strings, line, column });
        }
        Ok(ConfigFile { path: Some(path.to_owned()), values })
    }

    /// The file's value for a key.
    pub(crate) fn get(&self, key: &str) -> Option<&FileValue> {
        self.values.iter().find(|v| v.setting.key == key)
    }

    /// The command line with the file's values as the defaults of the options that take them,
    /// each checked by that option's parser.
    pub fn apply(&self, command: clap::Command) -> Result<clap::Command, ConfigError> {
        self.apply_at(command, "")
    }

    fn apply_at(&self, mut command: clap::Command, path: &str) -> Result<clap::Command, ConfigError> {
        // Later settings are the more specific (panel.database_url after database_url).
        for value in &self.values {
            if !value.setting.applies_to(path) {
                continue;
            }
            let ids: Vec<clap::Id> = command
                .get_arguments()
                .filter(|a| a.get_env() == Some(OsStr::new(value.setting.env)))
                .map(|a| a.get_id().clone())
                .collect();
            for id in ids {
                let arg = command.get_arguments().find(|a| *a.get_id() == id).expect("found above");
                for text in &value.values {
                    if let Err(e) = check_value(arg, text) {
                        return Err(self.invalid_value(value, text, &e));
                    }
                }
                let defaults: Vec<clap::builder::OsStr> =
                    value.values.iter().map(|v| clap::builder::OsStr::from(v.clone())).collect();
                command = command.mut_arg(id, |a| a.default_values(defaults));
            }
        }
        let names: Vec<String> = command.get_subcommands().map(|c| c.get_name().to_owned()).collect();
        for name in names {
            let sub_path = if path.is_empty() { name.clone() } else { format!("{path} {name}") };
            let mut failure = None;
            command = command.mut_subcommand(&name, |sub| match self.apply_at(sub.clone(), &sub_path) {
                Ok(applied) => applied,
                Err(e) => {
                    failure = Some(e);
                    sub
                }
            });
            if let Some(e) = failure {
                return Err(e);
            }
        }
        Ok(command)
    }

    fn invalid_value(&self, value: &FileValue, text: &str, error: &clap::Error) -> ConfigError {
        let rendered = error.to_string();
        let reason = rendered.lines().next().unwrap_or_default().trim_start_matches("error: ").to_owned();
        let shown = if value.setting.is_database_url() {
            crate::db::DatabaseUrl::new(text.to_owned()).redacted()
        } else {
            text.to_owned()
        };
        ConfigError::Invalid {
            path: self.path.clone().unwrap_or_default(),
            line: value.line,
            column: value.column,
            message: format!(
                "{} = \"{}\": {reason}",
                value.setting.key,
                crate::models::characters::escape_invisible(&shown, false)
            ),
        }
    }
}

/// Runs the option's own parser on a value from the file (clap keeps the parser's direct
/// call to itself, so a one-option command does it).
fn check_value(arg: &clap::Arg, text: &str) -> Result<(), clap::Error> {
    let probe = clap::Arg::new("value").long("value").value_parser(arg.get_value_parser().clone());
    clap::Command::new("cabinet-db")
        .no_binary_name(true)
        .arg(probe)
        .try_get_matches_from([format!("--value={text}")])
        .map(|_| ())
}

/// Whether a URL names a password (`scheme://user:password@…`): such a file must be private.
pub(crate) fn has_password(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    authority.rsplit_once('@').is_some_and(|(userinfo, _)| userinfo.contains(':'))
        || url.contains("password=")
}

fn invalid_at(path: &Path, text: &str, at: usize, message: String) -> ConfigError {
    let (line, column) = line_and_column(text, at);
    ConfigError::Invalid { path: path.to_owned(), line, column, message }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_and_column(text: &str, at: usize) -> (usize, usize) {
    let at = at.min(text.len());
    let before = text.get(..at).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or_default().chars().count() + 1;
    (line, column)
}

/// A value in the file: one string, or a list of strings.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Value {
    One(String),
    List(Vec<String>),
}

type Field = Option<Spanned<Value>>;

/// The file's shape: unknown keys are errors (with their line), by serde.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    database_url: Field,
    secrets_dir: Field,
    tailscale_socket: Field,
    role_prefix: Field,
    #[serde(default)]
    panel: Panel,
    #[serde(default)]
    backup: Backup,
    #[serde(default)]
    cluster: Cluster,
    #[serde(default)]
    host: HostSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HostSection {
    cluster: Field,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Panel {
    database_url: Field,
    listen: Field,
    tls_cert: Field,
    tls_key: Field,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Backup {
    config: Field,
    repo: Field,
    repo_host: Field,
    state_dir: Field,
    tls_ca: Field,
    tls_cert: Field,
    tls_key: Field,
    tls_listen: Field,
    s3_endpoint: Field,
    s3_bucket: Field,
    s3_region: Field,
    s3_path: Field,
    s3_uri_style: Field,
    s3_ca_file: Field,
    cipher_pass_file: Field,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cluster {
    nodes: Field,
    witness: Field,
    members: Field,
    etcd: Field,
}

impl Document {
    /// Every field with its key, in `SETTINGS`' order.
    fn entries(&self) -> Vec<(&'static str, Option<&Spanned<Value>>)> {
        let (p, b, c, h) = (&self.panel, &self.backup, &self.cluster, &self.host);
        vec![
            ("database_url", self.database_url.as_ref()),
            ("secrets_dir", self.secrets_dir.as_ref()),
            ("tailscale_socket", self.tailscale_socket.as_ref()),
            ("role_prefix", self.role_prefix.as_ref()),
            ("panel.database_url", p.database_url.as_ref()),
            ("panel.listen", p.listen.as_ref()),
            ("panel.tls_cert", p.tls_cert.as_ref()),
            ("panel.tls_key", p.tls_key.as_ref()),
            ("backup.config", b.config.as_ref()),
            ("backup.repo", b.repo.as_ref()),
            ("backup.repo_host", b.repo_host.as_ref()),
            ("backup.state_dir", b.state_dir.as_ref()),
            ("backup.tls_ca", b.tls_ca.as_ref()),
            ("backup.tls_cert", b.tls_cert.as_ref()),
            ("backup.tls_key", b.tls_key.as_ref()),
            ("backup.tls_listen", b.tls_listen.as_ref()),
            ("backup.s3_endpoint", b.s3_endpoint.as_ref()),
            ("backup.s3_bucket", b.s3_bucket.as_ref()),
            ("backup.s3_region", b.s3_region.as_ref()),
            ("backup.s3_path", b.s3_path.as_ref()),
            ("backup.s3_uri_style", b.s3_uri_style.as_ref()),
            ("backup.s3_ca_file", b.s3_ca_file.as_ref()),
            ("backup.cipher_pass_file", b.cipher_pass_file.as_ref()),
            ("cluster.nodes", c.nodes.as_ref()),
            ("cluster.witness", c.witness.as_ref()),
            ("cluster.members", c.members.as_ref()),
            ("cluster.etcd", c.etcd.as_ref()),
            ("host.cluster", h.cluster.as_ref()),
        ]
    }
}

/// Reads the file the arguments and environment name (see `locate`); none is no error.
pub fn load_for(args: &[std::ffi::OsString]) -> Result<ConfigFile, ConfigError> {
    match locate(args, std::env::var_os(PATH_ENV)) {
        None => Ok(ConfigFile::default()),
        Some(path) => read(&path),
    }
}

/// Reads a file; the default path may be absent (a host without the package), a named one not.
pub(crate) fn read(path: &Path) -> Result<ConfigFile, ConfigError> {
    match ConfigFile::load(path) {
        Err(ConfigError::Read { source, .. })
            if source.kind() == ErrorKind::NotFound && path == Path::new(DEFAULT_PATH) =>
        {
            Ok(ConfigFile::default())
        }
        other => other,
    }
}

/// Where a setting's value in effect comes from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Source {
    /// The environment variable.
    Environment { variable: &'static str },
    /// The file, at this line.
    File { path: PathBuf, line: usize },
    /// The option's built-in default.
    Default,
    /// Nothing: the options taking it have no default.
    Unset,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Environment { variable } => write!(f, "environment {variable}"),
            Source::File { path, line } => write!(f, "{}:{line}", path.display()),
            Source::Default => f.write_str("default"),
            Source::Unset => f.write_str("not set"),
        }
    }
}

/// A setting's value in effect (for commands given no flag for it), secrets redacted.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Effective {
    pub(crate) key: &'static str,
    pub(crate) env: &'static str,
    pub(crate) values: Vec<String>,
    pub(crate) source: Source,
}

/// Every setting's value in effect and where it comes from: the environment (as `lookup`
/// reads it), else the file, else the options' built-in default.
pub(crate) fn effective(
    file: &ConfigFile,
    command: &clap::Command,
    lookup: impl Fn(&str) -> Option<String>,
) -> Vec<Effective> {
    SETTINGS
        .iter()
        .map(|setting| {
            let (values, source) = if let Some(value) = lookup(setting.env).filter(|v| !v.is_empty()) {
                let values =
                    if setting.list { value.split(',').map(str::to_owned).collect() } else { vec![value] };
                (values, Source::Environment { variable: setting.env })
            } else if let Some(from_file) = file.get(setting.key) {
                let path = file.path.clone().unwrap_or_default();
                (from_file.values.clone(), Source::File { path, line: from_file.line })
            } else {
                match built_in_default(command, "", setting) {
                    Some(values) => (values, Source::Default),
                    None => (Vec::new(), Source::Unset),
                }
            };
            let values = if setting.is_database_url() {
                values.iter().map(|v| redact_url(v)).collect()
            } else {
                values
            };
            Effective { key: setting.key, env: setting.env, values, source }
        })
        .collect()
}

/// A database URL as `user@host:port/database`, saying so when a password was left out.
pub(crate) fn redact_url(url: &str) -> String {
    let shown = crate::db::DatabaseUrl::new(url.to_owned()).redacted();
    if has_password(url) { format!("{shown} (password hidden)") } else { shown }
}

/// The first built-in default among the options that read the setting.
fn built_in_default(command: &clap::Command, path: &str, setting: &Setting) -> Option<Vec<String>> {
    if setting.applies_to(path) {
        let found = command
            .get_arguments()
            .filter(|a| a.get_env() == Some(OsStr::new(setting.env)))
            .map(|a| a.get_default_values())
            .find(|d| !d.is_empty());
        if let Some(defaults) = found {
            return Some(defaults.iter().map(|d| d.to_string_lossy().into_owned()).collect());
        }
    }
    command.get_subcommands().find_map(|sub| {
        let sub_path =
            if path.is_empty() { sub.get_name().to_owned() } else { format!("{path} {}", sub.get_name()) };
        built_in_default(sub, &sub_path, setting)
    })
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn parse(text: &str) -> Result<ConfigFile, ConfigError> {
        ConfigFile::parse(Path::new("/etc/cabinet-db/cabinet-db.toml"), text)
    }

    #[test]
    fn every_key_of_the_file_is_a_setting_and_every_setting_a_key_in_order() {
        let keys: Vec<&str> = Document {
            database_url: None,
            secrets_dir: None,
            tailscale_socket: None,
            role_prefix: None,
            panel: Panel::default(),
            backup: Backup::default(),
            cluster: Cluster::default(),
            host: HostSection::default(),
        }
        .entries()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
        let settings: Vec<&str> = SETTINGS.iter().map(|s| s.key).collect();
        assert_eq!(keys, settings);
    }

    #[test]
    fn every_setting_is_read_by_some_option() {
        fn envs(command: &clap::Command, out: &mut Vec<String>) {
            out.extend(
                command.get_arguments().filter_map(|a| a.get_env()).map(|e| e.to_string_lossy().into_owned()),
            );
            for sub in command.get_subcommands() {
                envs(sub, out);
            }
        }
        let mut all = Vec::new();
        envs(&crate::cli::Cli::command(), &mut all);
        for setting in SETTINGS {
            assert!(
                all.iter().any(|e| e == setting.env),
                "no option reads {} ({})",
                setting.env,
                setting.key
            );
        }
    }

    #[test]
    fn an_unknown_key_is_an_error_with_its_line() {
        let error = parse("database_url = \"postgres:///cabinet\"\n\n[panel]\nlisten = []\nport = 8432\n")
            .unwrap_err();
        let text = error.to_string();
        assert!(text.starts_with("/etc/cabinet-db/cabinet-db.toml:5:1: unknown field `port`"), "{text}");
    }

    #[test]
    fn a_list_where_one_value_goes_is_an_error_with_its_line() {
        let text = parse("secrets_dir = [\"/a\", \"/b\"]\n").unwrap_err().to_string();
        assert!(text.contains(":1:15: secrets_dir takes one value"), "{text}");
    }

    #[test]
    fn a_control_character_in_a_value_is_refused() {
        let text = parse("[panel]\ntls_cert = \"/etc/x\\u001b[2J\"\n").unwrap_err().to_string();
        assert!(text.contains(":2:12: panel.tls_cert holds a control or invisible character"), "{text}");
    }

    #[test]
    fn a_value_the_option_refuses_is_an_error_with_its_line_and_nothing_runs() {
        let file = parse("role_prefix = \"Robert'); DROP TABLE sites;--\"\n").unwrap();
        let error = file.apply(crate::cli::Cli::command()).unwrap_err().to_string();
        assert!(error.starts_with("/etc/cabinet-db/cabinet-db.toml:1:15: role_prefix = "), "{error}");
    }

    #[test]
    fn the_file_is_the_default_a_variable_and_a_flag_override() {
        let file = parse(
            "role_prefix = \"acme_\"\n[cluster]\nmembers = [\"100.64.0.1:8008\", \"100.64.0.2:8008\"]\n",
        )
        .unwrap();
        let command = file.apply(crate::cli::Cli::command()).unwrap();
        let matches = command.clone().try_get_matches_from(["cabinet-db", "roles", "apply"]).unwrap();
        let (_, roles) = matches.subcommand().unwrap();
        let (_, apply) = roles.subcommand().unwrap();
        assert_eq!(apply.get_one::<crate::roles::Roles>("role_prefix").unwrap().prefix, "acme_");
        let matches = command
            .try_get_matches_from(["cabinet-db", "roles", "apply", "--role-prefix", "other_"])
            .unwrap();
        let (_, roles) = matches.subcommand().unwrap();
        let (_, apply) = roles.subcommand().unwrap();
        assert_eq!(apply.get_one::<crate::roles::Roles>("role_prefix").unwrap().prefix, "other_");
    }

    #[test]
    fn the_panel_database_url_is_the_panels_only() {
        let file = parse("database_url = \"postgres://postgres@localhost/cabinet\"\n[panel]\ndatabase_url = \"postgres://cabinet_admin@localhost/cabinet\"\n").unwrap();
        let command = file.apply(crate::cli::Cli::command()).unwrap();
        let serve = command.clone().try_get_matches_from(["cabinet-db", "serve"]).unwrap();
        let url = serve.subcommand().unwrap().1.get_one::<crate::db::DatabaseUrl>("database_url").unwrap();
        assert_eq!(url.expose(), "postgres://cabinet_admin@localhost/cabinet");
        let status = command.try_get_matches_from(["cabinet-db", "migrate", "status"]).unwrap();
        let url = status.subcommand().unwrap().1.subcommand().unwrap().1;
        assert_eq!(
            url.get_one::<crate::db::DatabaseUrl>("database_url").unwrap().expose(),
            "postgres://postgres@localhost/cabinet"
        );
    }

    #[test]
    fn the_packages_file_parses_and_names_every_setting_in_its_section() {
        let text = include_str!("../packaging/cabinet-db.toml");
        let file = parse(text).unwrap();
        assert!(file.values.iter().all(|v| !v.values.iter().any(|u| has_password(u))), "no password in it");
        // Each setting appears, set or commented out, under its section's header.
        let mut section = String::new();
        let mut named = Vec::new();
        for line in text.lines() {
            let line = line.trim_start_matches('#');
            if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = format!("{header}.");
            } else if let Some((key, _)) = line.split_once(" = ") {
                named.push(format!("{section}{key}"));
            }
        }
        let every: Vec<String> = SETTINGS.iter().map(|s| s.key.to_owned()).collect();
        assert_eq!(named, every);
        // The commented-out examples are valid too, once uncommented.
        let uncommented: String = text
            .lines()
            .map(|l| if l.starts_with('#') && l.contains(" = ") { &l[1..] } else { l })
            .collect::<Vec<_>>()
            .join("\n");
        let file = parse(&uncommented).unwrap();
        file.apply(crate::cli::Cli::command()).unwrap();
    }

    #[test]
    fn passwords_are_recognised_in_urls() {
        assert!(has_password("postgres://u:secret@host/db"));
        assert!(has_password("postgres://u@host/db?password=secret"));
        assert!(!has_password("postgres://u@/db?host=/var/run/postgresql"));
        assert!(!has_password("postgres:///cabinet"));
    }

    #[test]
    fn the_named_file_wins_over_the_variable() {
        let args: Vec<std::ffi::OsString> =
            ["cabinet-db", "--config-file=/tmp/a.toml", "audit"].map(Into::into).to_vec();
        assert_eq!(locate(&args, Some("/tmp/b.toml".into())), Some(PathBuf::from("/tmp/a.toml")));
        let args: Vec<std::ffi::OsString> = ["cabinet-db", "audit"].map(Into::into).to_vec();
        assert_eq!(locate(&args, Some("/tmp/b.toml".into())), Some(PathBuf::from("/tmp/b.toml")));
        let args: Vec<std::ffi::OsString> =
            ["cabinet-db", "--", "--config-file", "x"].map(Into::into).to_vec();
        assert_eq!(locate(&args, Some("/tmp/b.toml".into())).unwrap(), PathBuf::from("/tmp/b.toml"));
    }
}

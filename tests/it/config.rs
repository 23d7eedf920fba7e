//! The configuration file, read by the real binary: its values as every command's defaults,
//! the environment and flags above it, `config show`, and a bad file stopping everything.

use std::{os::unix::fs::PermissionsExt, path::Path};

use crate::harness::{TestDb, binary, stderr, stdout, table_exists};

fn write_config(dir: &Path, text: &str, mode: u32) -> std::path::PathBuf {
    let path = dir.join("cabinet-db.toml");
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

#[tokio::test]
async fn commands_take_the_database_from_the_file_and_the_environment_and_a_flag_override_it() {
    // Arrange: a file naming the test database; a variable naming a server that is not there.
    let db = TestDb::migrated().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &format!("database_url = \"{}\"\n", db.url.expose()), 0o600);
    let nowhere = "postgres://nobody@127.0.0.1:1/none";

    // Act + Assert: the file alone is enough.
    let from_file = binary().env("CABINET_CONFIG", &config).args(["migrate", "status"]).output().unwrap();
    assert!(from_file.status.success(), "{}", stderr(&from_file));

    // The environment beats the file …
    let from_env = binary()
        .env("CABINET_CONFIG", &config)
        .env("DATABASE_URL", nowhere)
        .args(["migrate", "status"])
        .output();
    let from_env = from_env.unwrap();
    assert_eq!(from_env.status.code(), Some(2));
    assert!(stderr(&from_env).contains("nobody@127.0.0.1:1/none"), "{}", stderr(&from_env));

    // … and a flag beats both (`--config-file` given as a flag too).
    let from_flag = binary()
        .env("DATABASE_URL", nowhere)
        .args([
            "--config-file",
            config.to_str().unwrap(),
            "migrate",
            "status",
            "--database-url",
            db.url.expose(),
        ])
        .output()
        .unwrap();
    assert!(from_flag.status.success(), "{}", stderr(&from_flag));
}

#[test]
fn config_show_says_where_each_value_comes_from_and_never_shows_a_password() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "# the host's settings\ndatabase_url = \"postgres://cabinet_owner:s3cr3t-pw@db.example.ts.net/cabinet\"\n\
         role_prefix = \"acme_\"\n\n[cluster]\nmembers = [\"100.64.0.1:8008\", \"100.64.0.2:8008\"]\n",
        0o600,
    );
    let out = binary()
        .env("CABINET_CONFIG", &config)
        .env("CABINET_ROLE_PREFIX", "other_")
        .args(["--json", "config", "show"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(!text.contains("s3cr3t-pw"), "{text}");
    let shown: serde_json::Value = serde_json::from_str(&text).unwrap();
    let setting = |key: &str| {
        shown["settings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == key)
            .unwrap_or_else(|| panic!("{key}"))
            .clone()
    };
    let url = setting("database_url");
    assert_eq!(url["values"][0], "cabinet_owner@db.example.ts.net:5432/cabinet (password hidden)");
    assert_eq!(url["source"]["kind"], "file");
    assert_eq!(url["source"]["line"], 2);
    assert_eq!(setting("role_prefix")["values"][0], "other_");
    assert_eq!(setting("role_prefix")["source"]["variable"], "CABINET_ROLE_PREFIX");
    assert_eq!(
        setting("cluster.members")["values"],
        serde_json::json!(["100.64.0.1:8008", "100.64.0.2:8008"])
    );
    assert_eq!(setting("cluster.members")["source"]["line"], 6);
    assert_eq!(setting("backup.repo")["source"]["kind"], "default");
    assert_eq!(setting("backup.repo")["values"][0], "/var/lib/pgbackrest");

    // The table for people says the same, with the file's line.
    let table = binary().env("CABINET_CONFIG", &config).args(["config", "show"]).output().unwrap();
    let table = stdout(&table);
    let line = table.lines().find(|l| l.starts_with("cluster.members")).unwrap();
    assert!(line.ends_with(&format!("{}:6", config.display())), "{line}");
    assert!(!table.contains("s3cr3t-pw"));
}

#[tokio::test]
async fn a_bad_file_stops_every_command_before_it_does_anything() {
    // Arrange: an empty database, and files a careless or hostile editor could leave.
    let db = TestDb::empty().await;
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("database_url = \"x\"\n\n[panel]\nport = 8432\n", "cabinet-db.toml:4:1: unknown field `port`"),
        ("role_prefix = \"x'; DROP ROLE postgres; --\"\n", "cabinet-db.toml:1:15: role_prefix = "),
        ("[cluster]\nmembers = \"100.64.0.1:8008\"\nmembers = []\n", "cabinet-db.toml:3:1: duplicate key"),
        (
            "[backup]\nrepo = \"/var/lib/\u{202e}pgbackrest\"\n",
            "cabinet-db.toml:2:8: backup.repo holds a control",
        ),
        ("database_url = ", "cabinet-db.toml:1:16:"),
    ];
    for (text, expected) in cases {
        let config = write_config(dir.path(), text, 0o600);
        // Act: the command that would create the schema.
        let out = binary()
            .env("CABINET_CONFIG", &config)
            .env("DATABASE_URL", db.url.expose())
            .args(["migrate", "up"])
            .output()
            .unwrap();
        // Assert: exit 2, the file's line and column, and nothing written.
        assert_eq!(out.status.code(), Some(2), "{text}");
        assert!(stderr(&out).contains(expected), "{text}: {}", stderr(&out));
        assert!(!table_exists(&db, "sites").await, "{text}: migrate ran");
    }
}

#[tokio::test]
async fn a_password_in_a_file_every_user_can_read_is_refused() {
    let db = TestDb::migrated().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &format!("database_url = \"{}\"\n", db.url.expose()), 0o644);
    let out = binary().env("CABINET_CONFIG", &config).args(["migrate", "status"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("every user of this host may read it (mode 644): chmod 0640"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains(db.url.expose()), "the refusal itself must not show the password");

    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o640)).unwrap();
    let out = binary().env("CABINET_CONFIG", &config).args(["migrate", "status"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_named_file_that_does_not_exist_is_an_error() {
    let out =
        binary().env("CABINET_CONFIG", "/nonexistent/cabinet-db.toml").args(["config", "show"]).output();
    let out = out.unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("cannot read the configuration file /nonexistent/cabinet-db.toml"));
}

#[test]
fn the_panels_tls_pair_may_come_half_from_the_file_and_half_from_the_environment_never_half_alone() {
    let dir = tempfile::tempdir().unwrap();
    let with_key = write_config(dir.path(), "[panel]\ntls_key = \"/nonexistent/panel.key\"\n", 0o600);
    // A database that is not there: start-up stops there, after the pair was judged.
    let nowhere = "postgres://nobody@127.0.0.1:1/none";
    let serve = |config: &Path, cert: Option<&str>| {
        let mut command = binary();
        command.env("CABINET_CONFIG", config).env("DATABASE_URL", nowhere).args([
            "serve",
            "--dev-identity",
            "dev@example.com=admin",
        ]);
        if let Some(cert) = cert {
            command.env("CABINET_PANEL_TLS_CERT", cert);
        }
        command.output().unwrap()
    };
    // The key from the file, the certificate from the environment: a pair.
    let paired = serve(&with_key, Some("/nonexistent/panel.crt"));
    assert_eq!(paired.status.code(), Some(2));
    assert!(!stderr(&paired).contains("needs its key"), "{}", stderr(&paired));
    assert!(!stderr(&paired).contains("not provided"), "{}", stderr(&paired));
    // Either half alone is refused, whichever way it came.
    let other = tempfile::tempdir().unwrap();
    let no_config = write_config(other.path(), "", 0o600);
    for (config, cert) in [(&with_key, None), (&no_config, Some("/nonexistent/panel.crt"))] {
        let alone = serve(config, cert);
        assert_eq!(alone.status.code(), Some(2));
        assert!(stderr(&alone).contains("needs its key and a key its certificate"), "{}", stderr(&alone));
    }
}

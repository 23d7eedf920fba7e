//! What a Debian host gets: shell completions and man pages generated from the command line's
//! definition, and the package itself installed, removed and purged on this machine (root).

/// Completions that complete (bash, driven as bash drives it) and man pages that render.
mod completions;
/// The .deb: contents, lintian, systemd's verdict on its units, install, remove, purge.
mod deb;
/// A Debian PostgreSQL cluster made with postgresql-common (`pg_createcluster`) on a spare port.
mod debian_cluster;
/// `host apply` from the installed package on a Debian cluster in a tailnet namespace.
mod host_apply;

/// One test at a time installs packages and writes /etc: dpkg has one lock, the host one /etc.
static HOST: std::sync::Mutex<()> = std::sync::Mutex::new(());

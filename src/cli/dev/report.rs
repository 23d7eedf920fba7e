//! How the development database's report prints.

use crate::cli::output::outln;

/// The report as people read it.
pub(super) fn print_report(report: &crate::dev::DevReport) -> std::io::Result<()> {
    for action in &report.actions {
        outln!("- {action}")?;
    }
    outln!("data dir:   {}", report.data_dir.display())?;
    outln!("server:     {} as user {}", report.server_binaries, report.server_user)?;
    if !report.running {
        outln!("state:      stopped (cabinet-db dev up starts it)")?;
        return Ok(());
    }
    if let Some(url) = &report.database_url {
        outln!("state:      running on 127.0.0.1:{}", report.port)?;
        outln!(
            "database:   {url} (password in {}/superuser.password; `cabinet-db dev url` prints the full URL)",
            report.data_dir.display()
        )?;
    }
    if !report.role_urls.is_empty() {
        let roles: Vec<&str> = report.role_urls.keys().map(String::as_str).collect();
        outln!(
            "roles:      {} (`cabinet-db dev url --role NAME`; passwords in {}/secrets)",
            roles.join(", "),
            report.data_dir.display()
        )?;
    }
    if let Some(config) = &report.backup_config {
        outln!("backups:    {} (eval \"$(cabinet-db dev env)\" for the backup commands)", config.display())?;
    }
    match report.migration_version {
        Some(v) => outln!("migrations: at {v:04} of {:04}", report.migration_head)?,
        None => outln!("migrations: none applied")?,
    }
    if !report.tables.is_empty() {
        outln!()?;
        let rows: Vec<Vec<String>> =
            report.tables.iter().map(|t| vec![t.table.clone(), t.rows.to_string()]).collect();
        crate::cli::output::print_table(&["table", "rows"], &rows)?;
    }
    if !report.sites.is_empty() {
        outln!()?;
        crate::cli::sites::print::print_sites(&report.sites)?;
    }
    Ok(())
}

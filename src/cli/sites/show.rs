use clap::Args as ClapArgs;

use crate::{
    cli::{args::ConnectionArgs, outcome::Outcome, output, output::outln},
    history,
    models::SiteId,
};

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) connection: ConnectionArgs,
    /// The site (also one that was deleted).
    pub(crate) site_id: String,
    /// The version to show (`sites history` lists them).
    #[arg(long, value_name = "N")]
    pub(crate) version: i64,
}

/// The row as that version left it (for a deletion: the row it removed).
pub(crate) async fn run(args: Args, json: bool) -> anyhow::Result<Outcome> {
    let site_id = SiteId::parse(&args.site_id)?;
    let mut conn = args.connection.connect("cabinet-db sites").await?;
    let Some((change, row)) = history::site_at_version(&mut conn, &site_id, args.version).await? else {
        anyhow::bail!(
            "site {:?} has no version {}; cabinet-db sites history {} lists them",
            args.site_id,
            args.version,
            args.site_id
        );
    };
    if json {
        output::print_json(
            &serde_json::json!({ "version": change.version, "operation": change.operation, "row": row }),
        )?;
        return Ok(Outcome::Success);
    }
    outln!(
        "version {} ({} by {} at {})",
        change.version,
        change.operation,
        output::terminal_safe(&change.actor, false),
        change.changed_at.format("%Y-%m-%d %H:%M:%S UTC")
    )?;
    if let Some(fields) = row.as_object() {
        for (name, value) in fields {
            let text = match value {
                serde_json::Value::Null => "(none)".to_owned(),
                serde_json::Value::String(s) => output::terminal_safe(s, true).into_owned(),
                other => other.to_string(),
            };
            outln!("{name}: {text}")?;
        }
    }
    Ok(Outcome::Success)
}

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
    /// The site.
    pub(crate) site_id: String,
    /// The version to put back (`sites history` lists them).
    #[arg(long, value_name = "N")]
    pub(crate) to: i64,
    /// Do it (without: show what would change and write nothing).
    #[arg(long)]
    pub(crate) yes: bool,
}

/// An ordinary update, recorded as a new version that names the one it restores.
pub(crate) async fn run(args: Args, json: bool) -> anyhow::Result<Outcome> {
    let site_id = SiteId::parse(&args.site_id)?;
    let mut conn = args.connection.connect("cabinet-db sites").await?;
    if !args.yes {
        let Some((_, row)) = history::site_at_version(&mut conn, &site_id, args.to).await? else {
            anyhow::bail!("site {:?} has no version {}", args.site_id, args.to);
        };
        outln!(
            "would put version {} of {} back (a new version); rerun with --yes to do it:",
            args.to,
            output::terminal_safe(&args.site_id, false)
        )?;
        for (name, value) in row.as_object().into_iter().flatten() {
            if name != "created_at" && name != "site_id" {
                let text = value.as_str().map(|s| output::terminal_safe(s, true).into_owned());
                outln!("  {name}: {}", text.unwrap_or_else(|| "(none)".to_owned()))?;
            }
        }
        return Ok(Outcome::CheckFailed);
    }
    let version = history::revert_site(&mut conn, None, &site_id, args.to, None).await?;
    if json {
        output::print_json(
            &serde_json::json!({ "site_id": args.site_id, "version": version, "restores_version": args.to }),
        )?;
    } else {
        outln!(
            "{} is now version {version}, restoring version {}",
            output::terminal_safe(&args.site_id, false),
            args.to
        )?;
    }
    Ok(Outcome::Success)
}

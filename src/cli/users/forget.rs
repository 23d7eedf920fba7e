use clap::Args as ClapArgs;

use crate::{
    cli::{args::ConnectionArgs, outcome::Outcome, output, output::outln, transfer::confirm},
    history,
    models::UserId,
};

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) connection: ConnectionArgs,
    /// The user who asked to be forgotten.
    pub(crate) user_id: String,
    /// Do not ask (required when not on a terminal).
    #[arg(long)]
    pub(crate) yes: bool,
}

/// Deletes the user and every e-mail address of theirs in the history.
pub(crate) async fn run(args: Args, json: bool) -> anyhow::Result<Outcome> {
    let user_id = UserId::parse(&args.user_id)?;
    let shown = output::terminal_safe(&args.user_id, false).into_owned();
    if !confirm(
        &format!("Forget user {shown}: delete it and its e-mail addresses from the history?"),
        args.yes,
    )? {
        outln!("kept user {shown}")?;
        return Ok(Outcome::Success);
    }
    let mut conn = args.connection.connect("cabinet-db users").await?;
    let report = history::forget_user(&mut conn, None, &user_id).await?;
    if report.is_empty() {
        anyhow::bail!("no user with user_id {:?} and no history of one: nothing to forget", args.user_id);
    }
    if json {
        output::print_json(&serde_json::json!({
            "user_id": args.user_id,
            "history_rows_scrubbed": report.history_rows_scrubbed(),
            "ids": report.ids,
        }))?;
        return Ok(Outcome::Success);
    }
    outln!(
        "forgot user {shown}: their addresses are gone from users, the users history and every actor field"
    )?;
    for id in &report.ids {
        let name = output::terminal_safe(&id.user_id, false);
        let row = if id.user_row_deleted { "user row deleted" } else { "no user row" };
        let renamed = if id.user_id == user_id.as_str() { "" } else { " (an id they had before a rename)" };
        outln!(
            "  {name}{renamed}: {row}, {} history rows and {} actor fields scrubbed",
            id.history_rows_scrubbed,
            id.actor_fields_scrubbed
        )?;
        if !id.sites_mentioning.is_empty() {
            let sites: Vec<String> =
                id.sites_mentioning.iter().map(|s| output::terminal_safe(s, false).into_owned()).collect();
            outln!(
                "  still mentioned in the content of site(s) {} (not changed: edit it if the address is theirs)",
                sites.join(", ")
            )?;
        }
    }
    Ok(Outcome::Success)
}

use clap::Args as ClapArgs;

use crate::{
    cli::{args::ConnectionArgs, outcome::Outcome, output, output::outln},
    history,
    models::UserId,
};

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) connection: ConnectionArgs,
    /// The user (also one that was deleted or forgotten).
    pub(crate) user_id: String,
}

pub(crate) async fn run(args: Args, json: bool) -> anyhow::Result<Outcome> {
    let user_id = UserId::parse(&args.user_id)?;
    let mut conn = args.connection.connect("cabinet-db users").await?;
    let changes = history::user_history(&mut conn, &user_id).await?;
    if changes.is_empty() {
        anyhow::bail!("no history for user {:?}", args.user_id);
    }
    if json {
        output::print_json(&changes)?;
        return Ok(Outcome::Success);
    }
    let safe = |v: &Option<String>| match v {
        Some(v) => output::terminal_safe(v, false).into_owned(),
        None => "(none)".to_owned(),
    };
    for change in &changes {
        outln!(
            "version {}  {}  {}  by {}  e-mail: {} → {}",
            change.version,
            change.changed_at.format("%Y-%m-%d %H:%M:%S UTC"),
            change.operation,
            output::terminal_safe(&change.actor, false),
            safe(&change.old_email),
            safe(&change.new_email)
        )?;
        if let Some(at) = change.forgotten_at {
            outln!(
                "  forgotten at {} by {}",
                at.format("%Y-%m-%d %H:%M:%S UTC"),
                safe(&change.forgotten_by)
            )?;
        }
    }
    Ok(Outcome::Success)
}

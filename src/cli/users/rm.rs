use anyhow::bail;
use clap::Args as ClapArgs;

use crate::cli::output::outln;
use crate::{
    cli::{args::ConnectionArgs, outcome::Outcome, output, transfer::confirm},
    models::UserId,
    users,
};

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) connection: ConnectionArgs,
    /// The user to delete.
    pub(crate) user_id: String,
    /// Do not ask (required when not on a terminal).
    #[arg(long)]
    pub(crate) yes: bool,
}

pub(crate) async fn run(args: Args, json: bool) -> anyhow::Result<Outcome> {
    let user_id = UserId::parse(&args.user_id)?;
    let mut conn = args.connection.connect("cabinet-db users").await?;
    let Some(user) = users::get(&mut conn, &user_id).await? else {
        bail!("no user with user_id {:?}", args.user_id);
    };
    let label = user.email.as_deref().unwrap_or("no e-mail");
    if !confirm(&format!("Delete user {} ({label})?", user.user_id), args.yes)? {
        outln!("kept user {}", user.user_id)?;
        return Ok(Outcome::Success);
    }
    let deleted = users::delete(&mut conn, None, &user_id).await?;
    if json {
        output::print_json(&serde_json::json!({ "deleted": deleted, "user_id": user_id }))?;
    } else {
        outln!("deleted user {user_id}")?;
    }
    Ok(Outcome::Success)
}

use anyhow::bail;
use clap::Args as ClapArgs;

use crate::{
    cli::{args::ConnectionArgs, outcome::Outcome, output},
    models::UserId,
    users,
};

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) connection: ConnectionArgs,
    /// The user_id (Zitadel sub).
    pub(crate) user_id: String,
}

pub(crate) async fn run(args: Args, json: bool) -> anyhow::Result<Outcome> {
    let mut conn = args.connection.connect("cabinet-db users").await?;
    let Some(user) = users::get(&mut conn, &UserId::parse(&args.user_id)?).await? else {
        bail!("no user with user_id {:?}", args.user_id);
    };
    if json {
        output::print_json(&user)?;
    } else {
        output::print_table(&super::table::USER_HEADERS, &[super::table::user_row(&user)])?;
    }
    Ok(Outcome::Success)
}

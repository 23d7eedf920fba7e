use clap::Args as ClapArgs;

use crate::cli::output::outln;
use crate::{
    cli::{
        args::{ConnectionArgs, parse_time},
        outcome::Outcome,
        output,
    },
    data::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE},
    users::{self, UserFilter},
};

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) connection: ConnectionArgs,
    /// Only the user with this e-mail (any case).
    #[arg(long)]
    pub(crate) email: Option<String>,
    /// Only users last seen at or after this time (RFC 3339).
    #[arg(long, value_parser = parse_time)]
    pub(crate) seen_after: Option<chrono::DateTime<chrono::Utc>>,
    /// Only users last seen before this time (RFC 3339).
    #[arg(long, value_parser = parse_time)]
    pub(crate) seen_before: Option<chrono::DateTime<chrono::Utc>>,
    /// Start after this user_id (the `next` of the previous page).
    #[arg(long)]
    pub(crate) after: Option<String>,
    /// Users per page.
    #[arg(long, default_value_t = DEFAULT_PAGE_SIZE, value_parser = clap::value_parser!(i64).range(1..=MAX_PAGE_SIZE))]
    pub(crate) limit: i64,
}

pub(crate) async fn run(args: Args, json: bool) -> anyhow::Result<Outcome> {
    let filter = UserFilter { email: args.email, seen_after: args.seen_after, seen_before: args.seen_before };
    let mut conn = args.connection.connect("cabinet-db users").await?;
    let page = users::list(&mut conn, &filter, args.after.as_deref(), args.limit).await?;
    if json {
        output::print_json(&page)?;
        return Ok(Outcome::Success);
    }
    let rows: Vec<Vec<String>> = page.items.iter().map(super::table::user_row).collect();
    output::print_table(&super::table::USER_HEADERS, &rows)?;
    if let Some(next) = page.next {
        outln!("more: --after {next:?}")?;
    }
    Ok(Outcome::Success)
}

use clap::Args as ClapArgs;

use crate::cli::args::parse_time;
use crate::cli::output::outln;
use crate::{
    cli::{
        args::{ConnectionArgs, DurationArg},
        outcome::Outcome,
        output,
    },
    models::{Email, UserId},
    users::{self, DEFAULT_DEBOUNCE, SeenEvent},
};

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) connection: ConnectionArgs,
    /// The user_id (Zitadel sub).
    pub(crate) user_id: String,
    /// The e-mail the user had at that time.
    #[arg(long)]
    pub(crate) email: Option<String>,
    /// When (RFC 3339) [default: now].
    #[arg(long, value_parser = parse_time)]
    pub(crate) at: Option<chrono::DateTime<chrono::Utc>>,
    /// Sightings this close to the stored last_seen (same e-mail) write nothing.
    #[arg(long, default_value_t = DurationArg(DEFAULT_DEBOUNCE), value_parser = crate::cli::args::parse_duration_arg)]
    pub(crate) debounce: DurationArg,
}

pub(crate) async fn run(args: Args, json: bool) -> anyhow::Result<Outcome> {
    let event = SeenEvent {
        user_id: UserId::parse(&args.user_id)?,
        email: args.email.as_deref().map(Email::parse).transpose()?,
        at: args.at.unwrap_or_else(chrono::Utc::now),
    };
    let mut conn = args.connection.connect("cabinet-db users").await?;
    let report = users::record_seen(&mut conn, std::slice::from_ref(&event), args.debounce.0).await?;
    if json {
        output::print_json(&report)?;
    } else if report.inserted == 1 {
        outln!("new user {}", event.user_id)?;
    } else if report.updated == 1 {
        outln!("updated user {}", event.user_id)?;
    } else {
        outln!("nothing to record for {} (within the debounce window, or older news)", event.user_id)?;
    }
    Ok(Outcome::Success)
}

use clap::Args as ClapArgs;

use crate::cli::output::outln;
use crate::{
    cli::{args::ConnectionArgs, outcome::Outcome, output},
    data::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE},
    models::LanguageTag,
    sites::{self, SiteFilter},
};

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) connection: ConnectionArgs,
    /// Only sites in this language (en, de, pt-BR, …).
    #[arg(long)]
    pub(crate) language: Option<String>,
    /// Only sites whose domain contains this text.
    #[arg(long)]
    pub(crate) domain_contains: Option<String>,
    /// Only sites whose id, domain or brand name contains this text (any case).
    #[arg(long)]
    pub(crate) search: Option<String>,
    /// Start after this site_id (the `next` of the previous page).
    #[arg(long)]
    pub(crate) after: Option<String>,
    /// Sites per page.
    #[arg(long, default_value_t = DEFAULT_PAGE_SIZE, value_parser = clap::value_parser!(i64).range(1..=MAX_PAGE_SIZE))]
    pub(crate) limit: i64,
}

pub(crate) async fn run(args: Args, json: bool) -> anyhow::Result<Outcome> {
    let filter = SiteFilter {
        language: args.language.as_deref().map(LanguageTag::parse).transpose()?,
        domain_contains: args.domain_contains,
        text_contains: args.search,
    };
    let mut conn = args.connection.connect("cabinet-db sites").await?;
    let page = sites::list(&mut conn, &filter, args.after.as_deref(), args.limit).await?;
    if json {
        output::print_json(&page)?;
        return Ok(Outcome::Success);
    }
    super::print::print_sites(&page.items)?;
    if let Some(next) = page.next {
        outln!("more: --after {next:?}")?;
    }
    Ok(Outcome::Success)
}

use std::path::PathBuf;

use clap::Args as ClapArgs;

use crate::{
    backup::tls::{self, DEFAULT_CERT_DAYS},
    cli::{outcome::Outcome, output, output::outln},
};

#[derive(Debug, ClapArgs)]
#[command(after_help = "Example (once per host; the CA is made on first use and kept in --dir):
  cabinet-db backup certs --dir /root/cabinet-db-pki --host db.tail0123.ts.net
  cabinet-db backup certs --dir /root/cabinet-db-pki --host backup.tail0123.ts.net
Copy ca.crt and each host's .crt and .key to that host (e.g. with scp over the tailnet); keep
ca.key off both hosts if you can.")]
pub(crate) struct Args {
    /// Where the CA and the certificates are kept (created 0700).
    #[arg(long)]
    pub(crate) dir: PathBuf,
    /// The host, as the other host reaches it: its MagicDNS name or tailnet address.
    #[arg(long)]
    pub(crate) host: String,
    /// Days the host certificate is valid.
    #[arg(long, default_value_t = DEFAULT_CERT_DAYS)]
    pub(crate) days: u32,
}

pub(crate) async fn run(args: Args, json: bool) -> anyhow::Result<Outcome> {
    let issued = tls::issue(&args.dir, &args.host, args.days)?;
    if json {
        output::print_json(&issued)?;
    } else {
        if issued.new_ca {
            outln!("made a CA: {} (its key next to it, 0600)", issued.ca.display())?;
        }
        outln!("issued {} and {} (0600) for {}", issued.cert.display(), issued.key.display(), args.host)?;
        outln!(
            "on {}: --tls-ca {} --tls-cert {} --tls-key {}",
            args.host,
            issued.ca.display(),
            issued.cert.display(),
            issued.key.display()
        )?;
    }
    Ok(Outcome::Success)
}

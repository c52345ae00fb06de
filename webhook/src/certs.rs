//! `sidecar-injector certs`: a CA and a serving certificate for the webhook.

#[derive(Debug, clap::Args)]
pub struct CertsArgs {}

pub fn run(args: CertsArgs) -> anyhow::Result<()> {
    let _ = args;
    anyhow::bail!("certs is not implemented yet")
}

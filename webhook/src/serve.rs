//! `sidecar-injector serve`: the HTTPS admission webhook.

use crate::config_args::ConfigArgs;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let _ = args;
    anyhow::bail!("serve is not implemented yet")
}

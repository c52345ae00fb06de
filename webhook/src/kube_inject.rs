//! `sidecar-injector kube-inject`: files and streams around `injector_engine::kube_inject`.

use std::path::PathBuf;

use crate::config_args::ConfigArgs;

#[derive(Debug, clap::Args)]
pub struct KubeInjectArgs {
    /// Manifest to inject (`-` for stdin): multi-document YAML, `kind: List` included.
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub filename: PathBuf,
    #[command(flatten)]
    pub config: ConfigArgs,
}

pub fn run(args: KubeInjectArgs) -> anyhow::Result<()> {
    let _ = args;
    anyhow::bail!("kube-inject is not implemented yet")
}

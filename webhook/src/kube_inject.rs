//! `sidecar-injector kube-inject`: files and streams around `injector_engine::kube_inject`.

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::Context;

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
    let KubeInjectArgs { filename, config } = args;
    let input = if filename.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read the manifest from stdin")?;
        text
    } else {
        std::fs::read_to_string(&filename)
            .with_context(|| format!("cannot read {}", filename.display()))?
    };
    let injector = config.injector()?;
    let env = config.environment()?;
    let output = injector_engine::kube_inject::inject_stream(&input, &injector, &env)
        .with_context(|| format!("cannot inject {}", filename.display()))?;
    let stderr = std::io::stderr();
    let mut err = stderr.lock();
    for warning in &output.warnings {
        writeln!(err, "{}", warning.trim_end())?;
    }
    std::io::stdout()
        .lock()
        .write_all(output.yaml.as_bytes())
        .context("cannot write the injected manifest")?;
    Ok(())
}

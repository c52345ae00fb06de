//! `--dry-run`: the real apply path driven by the recording runner, so the record shows
//! exactly what would run (Istio's golden format); needs no root and no namespace.

use super::command::Recorder;
use super::{ApplyError, run};
use crate::config::CaptureConfig;

/// The dry-run record: saves by name, restore inputs line by line (or the nft transaction).
pub fn record(cfg: &CaptureConfig) -> Result<String, ApplyError> {
    let recorder = Recorder::default();
    run(cfg, &recorder)?;
    Ok(recorder.record())
}

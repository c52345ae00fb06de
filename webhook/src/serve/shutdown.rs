//! The signals that end `serve`: SIGTERM from the kubelet, SIGINT from a terminal.

use tokio::signal::unix::{SignalKind, signal as unix_signal};

/// Waits for SIGTERM or SIGINT and names the one that came.
pub async fn signal() -> std::io::Result<&'static str> {
    let mut term = unix_signal(SignalKind::terminate())?;
    let mut int = unix_signal(SignalKind::interrupt())?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}

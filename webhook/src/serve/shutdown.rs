//! The signals that end `serve`: SIGTERM from the kubelet, SIGINT from a terminal.

use tokio::signal::unix::{Signal, SignalKind, signal};

/// Listeners for SIGTERM and SIGINT. Created before the server announces itself, so a signal
/// sent right after start-up is caught rather than killing the process outright.
pub struct Signals {
    term: Signal,
    int: Signal,
}

impl Signals {
    pub fn listen() -> std::io::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Waits for SIGTERM or SIGINT and names the one that came.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

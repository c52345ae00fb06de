//! Reload by polling: read the files every tick and act when their bytes change.
//!
//! Kubernetes updates a mounted ConfigMap or Secret by writing a new timestamped directory
//! and swapping the `..data` symlink; the files a watcher would watch are symlinks through
//! `..data` that never change themselves. Re-reading through the path and comparing bytes sees
//! every swap, costs a few small reads per second, and needs no platform watcher.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use super::metrics::Reload;
use super::tls::{CertFiles, LiveCert};
use super::{ConfigFiles, Shared, chain, load_injector, unix_now};

/// A set of files read together, and the bytes seen last time.
#[derive(Debug)]
pub struct Watched {
    paths: Vec<PathBuf>,
    seen: Option<Vec<Vec<u8>>>,
    last_error: Option<String>,
}

/// What one poll found.
#[derive(Debug)]
pub enum Poll {
    Unchanged,
    /// New contents, in the order of the paths.
    Changed(Vec<Vec<u8>>),
    /// A file could not be read; the first time a given error shows up, `new` is true so the
    /// caller logs it once rather than every tick (a missing file mid-swap is normal).
    Unreadable {
        error: io::Error,
        new: bool,
    },
}

impl Watched {
    pub fn new(paths: Vec<PathBuf>) -> Self {
        Watched {
            paths,
            seen: None,
            last_error: None,
        }
    }

    /// Reads every file now. The result also becomes "seen", so a later poll reports a change
    /// only if the files move away from it.
    pub fn read_now(&mut self) -> io::Result<Vec<Vec<u8>>> {
        let contents = self.read()?;
        self.seen = Some(contents.clone());
        Ok(contents)
    }

    /// Reads every file and compares with what was seen last. Contents that were reported as
    /// changed count as seen whether or not the caller could use them: a bad configuration is
    /// reported once, not on every tick until it is fixed.
    pub fn poll(&mut self) -> Poll {
        match self.read() {
            Err(error) => {
                let text = error.to_string();
                let new = self.last_error.as_deref() != Some(text.as_str());
                self.last_error = Some(text);
                Poll::Unreadable { error, new }
            }
            Ok(contents) => {
                self.last_error = None;
                if self.seen.as_ref() == Some(&contents) {
                    return Poll::Unchanged;
                }
                self.seen = Some(contents.clone());
                Poll::Changed(contents)
            }
        }
    }

    fn read(&self) -> io::Result<Vec<Vec<u8>>> {
        self.paths
            .iter()
            .map(|path| {
                std::fs::read(path)
                    .map_err(|err| io::Error::new(err.kind(), format!("{}: {err}", path.display())))
            })
            .collect()
    }
}

/// Keeps the configuration and the certificate fresh: polls their files, swaps in good new
/// contents, keeps serving the old ones when the new ones are bad.
pub struct Reloader {
    pub shared: Arc<Shared>,
    pub config: ConfigFiles,
    pub config_watch: Watched,
    pub tls: CertFiles,
    pub cert_watch: Watched,
    pub live: Arc<LiveCert>,
}

impl Reloader {
    pub async fn run(mut self, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await; // the first tick is immediate; both were just loaded
        loop {
            tick.tick().await;
            self.config_tick().await;
            self.cert_tick();
        }
    }

    async fn config_tick(&mut self) {
        let contents = match self.config_watch.poll() {
            Poll::Unchanged => return,
            Poll::Unreadable { error, new } => {
                if new {
                    warn!(%error, "cannot read the configuration; still serving the previous one");
                }
                return;
            }
            Poll::Changed(contents) => contents,
        };
        let metrics = &self.shared.metrics;
        match load_injector(&self.config, contents).await {
            Ok(injector) => {
                self.shared.replace_injector(injector);
                metrics.config_reload(Reload::Succeeded, unix_now());
                info!("configuration reloaded");
            }
            Err(err) => {
                metrics.config_reload(Reload::Failed, unix_now());
                warn!(
                    error = chain(&err),
                    "new configuration rejected; still serving the previous one"
                );
            }
        }
    }

    fn cert_tick(&mut self) {
        let pair = match self.cert_watch.poll() {
            Poll::Unchanged => return,
            Poll::Unreadable { error, new } => {
                if new {
                    warn!(%error, "cannot read the certificate; still serving the previous one");
                }
                return;
            }
            Poll::Changed(pair) => pair,
        };
        let metrics = &self.shared.metrics;
        match self.tls.parse(&pair[0], &pair[1]) {
            Ok(loaded) => {
                loaded.warn_if_expired(unix_now());
                self.live.replace(loaded.key);
                metrics.cert_reload(Reload::Succeeded, Some(loaded.not_after));
                info!(not_after = loaded.not_after, "serving certificate reloaded");
            }
            Err(err) => {
                metrics.cert_reload(Reload::Failed, None);
                warn!(
                    error = chain(&err),
                    "new certificate rejected; still serving the previous one"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_a_change_once_and_follows_a_swapped_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let (v1, v2) = (dir.path().join("..v1"), dir.path().join("..v2"));
        std::fs::create_dir(&v1).unwrap();
        std::fs::create_dir(&v2).unwrap();
        std::fs::write(v1.join("config"), "one").unwrap();
        std::fs::write(v2.join("config"), "two").unwrap();
        std::os::unix::fs::symlink("..v1", dir.path().join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/config", dir.path().join("config")).unwrap();

        let mut watched = Watched::new(vec![dir.path().join("config")]);
        assert_eq!(watched.read_now().unwrap(), vec![b"one".to_vec()]);
        assert!(matches!(watched.poll(), Poll::Unchanged));

        // What the kubelet does: a new symlink renamed over `..data` in one step.
        std::os::unix::fs::symlink("..v2", dir.path().join("..data_tmp")).unwrap();
        std::fs::rename(dir.path().join("..data_tmp"), dir.path().join("..data")).unwrap();
        match watched.poll() {
            Poll::Changed(contents) => assert_eq!(contents, vec![b"two".to_vec()]),
            other => panic!("expected a change, got {other:?}"),
        }
        assert!(matches!(watched.poll(), Poll::Unchanged));
    }

    #[test]
    fn an_unreadable_file_is_new_once_then_quiet() {
        let dir = tempfile::tempdir().unwrap();
        let mut watched = Watched::new(vec![dir.path().join("missing")]);
        assert!(matches!(watched.poll(), Poll::Unreadable { new: true, .. }));
        assert!(matches!(
            watched.poll(),
            Poll::Unreadable { new: false, .. }
        ));
        std::fs::write(dir.path().join("missing"), "now here").unwrap();
        assert!(matches!(watched.poll(), Poll::Changed(_)));
    }
}

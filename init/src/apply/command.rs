//! Running the firewall programs: the real ones, or a recorder for `--dry-run`.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Mutex;

use crate::plan::Family;

/// What a finished program reported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// Exit status; `None` when killed by a signal.
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }
}

/// Runs a program with arguments and optional stdin. The seam between apply and the system.
pub trait Runner {
    fn run(&self, program: &str, args: &[String], stdin: Option<&str>) -> std::io::Result<Output>;
    /// Whether this runner only records (dry run): nothing is probed or read back.
    fn is_dry_run(&self) -> bool {
        false
    }
    /// Whether this network namespace has legacy (x_tables) IPv4 tables: `Some(false)` means
    /// `iptables-legacy-save` would print nothing, so detection need not run it; `None` when
    /// unknown (then it runs).
    fn legacy_tables(&self) -> Option<bool> {
        None
    }
    /// The names of the nf_tables chains of `family` (what `iptables-nft-save` would list);
    /// `None` when unknown (then the save runs).
    fn nft_chain_names(&self, _family: Family) -> Option<Vec<String>> {
        None
    }
}

/// Runs real programs, from `bin_dir` when given, else from PATH.
pub struct System {
    pub bin_dir: Option<String>,
}

impl Runner for System {
    fn run(&self, program: &str, args: &[String], stdin: Option<&str>) -> std::io::Result<Output> {
        let path = match &self.bin_dir {
            Some(dir) => format!("{dir}/{program}"),
            None => program.to_string(),
        };
        let mut child = Command::new(path)
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            // A program that exits early closes the pipe; its stderr says why.
            let _ = pipe.write_all(text.as_bytes());
        }
        let out = child.wait_with_output()?;
        Ok(Output {
            status: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    fn legacy_tables(&self) -> Option<bool> {
        // The kernel lists the legacy tables of the reader's namespace here; the file is absent
        // while ip_tables is not loaded. Unreadable (no root, no /proc): unknown.
        match std::fs::read_to_string("/proc/self/net/ip_tables_names") {
            Ok(names) => Some(!names.trim().is_empty()),
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    && std::path::Path::new("/proc/self/net/dev").exists() =>
            {
                Some(false)
            }
            Err(_) => None,
        }
    }

    fn nft_chain_names(&self, family: Family) -> Option<Vec<String>> {
        super::nfnetlink::chain_names(family)
            .inspect_err(|e| tracing::debug!(error = %e, "cannot list the nf_tables chains"))
            .ok()
    }
}

/// Istio's dry-run dependency stub: records each save by program name and each restore by
/// its input lines, and answers every call with empty success (a clean namespace).
#[derive(Default)]
pub struct Recorder {
    lines: Mutex<Vec<String>>,
}

impl Recorder {
    /// The record, one item per line, in Istio's golden format.
    pub fn record(&self) -> String {
        let lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        if lines.is_empty() {
            return String::new();
        }
        let mut out = lines.join("\n");
        out.push('\n');
        out
    }
}

impl Runner for Recorder {
    fn run(&self, program: &str, args: &[String], stdin: Option<&str>) -> std::io::Result<Output> {
        let mut lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        match stdin {
            Some(text) => lines.extend(text.lines().map(String::from)),
            None if args.is_empty() => lines.push(program.to_string()),
            None => lines.push(format!("{program} {}", args.join(" "))),
        }
        Ok(Output {
            status: Some(0),
            ..Output::default()
        })
    }

    fn is_dry_run(&self) -> bool {
        true
    }
}

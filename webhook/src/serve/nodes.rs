//! `--native-sidecars auto` in a real cluster: the kubelet versions of the cluster's Nodes, as
//! istiod's `DetectNativeSidecar` reads them from its Node informer (spec §5.6).
//!
//! ```text
//! every --node-resync-interval (the first at once, in the background):
//!   list Nodes (paged) ─► name → status.nodeInfo.kubeletVersion ─► NativeSidecars::Auto
//!                       ─► swapped into the Environment the routes read
//!   unreachable / forbidden ─► one warning with the fix; the last known answer stays
//!                              (at start: not native). Readiness never waits for this.
//! ```
//!
//! Runs only when `auto` has nothing else to go on: `--kubelet-version` flags win, as do
//! `--native-sidecars true|false`. A re-list rather than a watch: kubelet versions change only
//! when nodes are upgraded or added, and a periodic list needs no resume logic.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use injector_engine::NativeSidecars;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};
use kube::config::{InferConfigError, KubeConfigOptions, Kubeconfig, KubeconfigError};
use tracing::{info, warn};

use super::Shared;
use crate::config_args::ConfigArgs;

/// Nodes asked for per page: a large cluster's Node list is megabytes (images, conditions).
const PAGE_SIZE: u32 = 250;

/// How the server reaches the API server to learn the Nodes' kubelet versions.
#[derive(Debug, Clone, clap::Args)]
pub struct NodeArgs {
    /// Kubeconfig for reading the Nodes' kubelet versions (`--native-sidecars auto` without
    /// --kubelet-version). Default: $KUBECONFIG, then ~/.kube/config, then the pod's service
    /// account. Needs RBAC `get`, `list` on `nodes`.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// How often the Nodes are listed again, so added or upgraded nodes change the decision.
    #[arg(long, env = "INJECTOR_NODE_RESYNC_INTERVAL", default_value = "60s",
          value_name = "DURATION", value_parser = super::duration)]
    pub node_resync_interval: Duration,
}

/// A background listing of the cluster's Nodes, when the configuration asks for one.
#[derive(Debug, Clone)]
pub struct NodeWatch {
    kubeconfig: Option<PathBuf>,
    every: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum NodesError {
    #[error("cannot read the kubeconfig {}", path.display())]
    Kubeconfig {
        path: PathBuf,
        #[source]
        source: KubeconfigError,
    },
    #[error("no API server configured (no kubeconfig, and not running in a pod)")]
    NoConfig(#[source] InferConfigError),
    #[error("cannot build a client for the API server")]
    Client(#[source] kube::Error),
    #[error("the API server refused to list Nodes: {code} {reason}: {message}")]
    Refused {
        code: u16,
        reason: String,
        message: String,
    },
    #[error("cannot list Nodes from the API server")]
    Unreachable(#[source] kube::Error),
}

/// What the side port reports about the listing.
#[derive(Debug, Default)]
pub struct Status {
    lists_ok: AtomicU64,
    lists_failed: AtomicU64,
    last_success: AtomicI64,
}

/// What one refresh outcome is worth telling the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Notice {
    /// A new kind of failure: warn, with the fix.
    Warn,
    /// Listing works after failing: say so once.
    Recovered,
}

/// Remembers the last failure so a problem that persists is logged once, not every interval.
#[derive(Debug, Default)]
struct Reporter {
    failing: Option<String>,
}

/// The kubelet version of every Node, by name. A node that reports none counts as too old, as
/// an unparsable version does in Istio.
pub fn kubelet_versions(nodes: impl IntoIterator<Item = Node>) -> BTreeMap<String, String> {
    nodes
        .into_iter()
        .map(|node| {
            let version = node
                .status
                .and_then(|s| s.node_info)
                .map(|info| info.kubelet_version)
                .unwrap_or_default();
            (node.metadata.name.unwrap_or_default(), version)
        })
        .collect()
}

/// `auto` with what the cluster reported. Named (`node=version`), so a pod already bound to a
/// node is decided by that node alone, as in Istio.
pub fn decision(versions: &BTreeMap<String, String>) -> NativeSidecars {
    NativeSidecars::Auto {
        kubelet_versions: versions
            .iter()
            .map(|(name, version)| format!("{name}={version}"))
            .collect(),
    }
}

impl NodeWatch {
    /// A watch when `auto` has no `--kubelet-version` to go on; `None` otherwise.
    pub fn wanted(nodes: &NodeArgs, config: &ConfigArgs) -> Option<NodeWatch> {
        let auto = config.native_sidecars == "auto" && config.kubelet_versions.is_empty();
        auto.then(|| NodeWatch {
            kubeconfig: nodes.kubeconfig.clone(),
            every: nodes.node_resync_interval,
        })
    }

    /// Lists Nodes now and every interval, updating `shared`'s environment; never returns.
    pub async fn run(self, shared: Arc<Shared>) {
        let mut tick = tokio::time::interval(self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut client = None;
        let mut reporter = Reporter::default();
        loop {
            tick.tick().await;
            let outcome = self.refresh(&mut client).await;
            let status = &shared.nodes;
            match &outcome {
                Ok(versions) => {
                    status.lists_ok.fetch_add(1, Relaxed);
                    status.last_success.store(super::unix_now(), Relaxed);
                    apply(&shared, versions);
                }
                Err(_) => {
                    status.lists_failed.fetch_add(1, Relaxed);
                }
            }
            let native = shared.environment().native_sidecars.enabled();
            match (reporter.observe(&outcome), &outcome) {
                (Some(Notice::Warn), Err(error)) => warn!(
                    error = %describe(error),
                    fix = error.fix(),
                    native_sidecars = native,
                    "cannot learn the nodes' kubelet versions for --native-sidecars auto; \
                     keeping the last known answer"
                ),
                (Some(Notice::Recovered), Ok(versions)) => {
                    info!(nodes = versions.len(), "listing nodes works again")
                }
                _ => {}
            }
        }
    }

    /// One listing; the client is built on first use and kept.
    async fn refresh(
        &self,
        client: &mut Option<kube::Client>,
    ) -> Result<BTreeMap<String, String>, NodesError> {
        let api = match client {
            Some(client) => client.clone(),
            None => client.insert(self.client().await?).clone(),
        };
        list(&Api::<Node>::all(api)).await
    }

    async fn client(&self) -> Result<kube::Client, NodesError> {
        let mut config = match &self.kubeconfig {
            Some(path) => {
                let at = |source| NodesError::Kubeconfig {
                    path: path.clone(),
                    source,
                };
                let file = Kubeconfig::read_from(path).map_err(at)?;
                kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
                    .await
                    .map_err(at)?
            }
            None => kube::Config::infer().await.map_err(NodesError::NoConfig)?,
        };
        // A black-holed API server must not hold a listing for kube's default of minutes.
        config.connect_timeout = Some(Duration::from_secs(5));
        config.read_timeout = Some(Duration::from_secs(30));
        kube::Client::try_from(config).map_err(NodesError::Client)
    }
}

/// Every Node, page by page.
async fn list(api: &Api<Node>) -> Result<BTreeMap<String, String>, NodesError> {
    let mut versions = BTreeMap::new();
    let mut params = ListParams::default().limit(PAGE_SIZE);
    loop {
        let page = api.list(&params).await.map_err(NodesError::from_list)?;
        let next = page.metadata.continue_.clone().filter(|c| !c.is_empty());
        versions.extend(kubelet_versions(page.items));
        match next {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(versions),
        }
    }
}

/// Swaps the new decision in, and says so when it flips.
fn apply(shared: &Shared, versions: &BTreeMap<String, String>) {
    let next = decision(versions);
    let before = shared.environment();
    if before.native_sidecars == next {
        return;
    }
    let (was, now) = (before.native_sidecars.enabled(), next.enabled());
    let mut environment = (*before).clone();
    environment.native_sidecars = next;
    shared.replace_environment(environment);
    if was != now {
        let oldest = oldest(versions);
        info!(
            nodes = versions.len(),
            oldest_kubelet = oldest,
            native_sidecars = now,
            "native sidecars {} (every node's kubelet must be v1.33 or newer)",
            if now { "on" } else { "off" }
        );
    }
}

/// The lowest kubelet version, for the log line (unparsable ones sort first).
fn oldest(versions: &BTreeMap<String, String>) -> &str {
    let key = |v: &str| {
        let mut parts = v.trim_start_matches('v').split(['.', '-', '+']);
        let mut next = || parts.next().and_then(|p| p.parse::<u64>().ok());
        (next(), next(), next())
    };
    versions
        .values()
        .min_by_key(|v| key(v))
        .map_or("", String::as_str)
}

impl NodesError {
    fn from_list(err: kube::Error) -> NodesError {
        match err {
            kube::Error::Api(status) => NodesError::Refused {
                code: status.code,
                reason: status.reason,
                message: status.message,
            },
            other => NodesError::Unreachable(other),
        }
    }

    /// What the operator can do about it.
    pub fn fix(&self) -> &'static str {
        match self {
            NodesError::Refused {
                code: 401 | 403, ..
            } => {
                "grant the injector's ServiceAccount a ClusterRole with `get`, `list` on \
                 `nodes`; or pass --kubelet-version, or set --native-sidecars true|false"
            }
            NodesError::NoConfig(_) | NodesError::Kubeconfig { .. } => {
                "run in a pod with a service account, or pass --kubeconfig; \
                 or pass --kubelet-version, or set --native-sidecars true|false"
            }
            NodesError::Client(_) | NodesError::Refused { .. } | NodesError::Unreachable(_) => {
                "check that the API server is reachable from the injector; or pass \
                 --kubelet-version, or set --native-sidecars true|false"
            }
        }
    }

    /// Failures of the same kind are one problem, however their details vary.
    fn kind(&self) -> String {
        match self {
            NodesError::Kubeconfig { .. } => "kubeconfig".into(),
            NodesError::NoConfig(_) => "no-config".into(),
            NodesError::Client(_) => "client".into(),
            NodesError::Refused { code, .. } => format!("refused-{code}"),
            NodesError::Unreachable(_) => "unreachable".into(),
        }
    }
}

impl Reporter {
    fn observe<T>(&mut self, outcome: &Result<T, NodesError>) -> Option<Notice> {
        match outcome {
            Ok(_) => self.failing.take().map(|_| Notice::Recovered),
            Err(error) => {
                let kind = error.kind();
                (self.failing.replace(kind.clone()).as_ref() != Some(&kind)).then_some(Notice::Warn)
            }
        }
    }
}

/// The error and its causes on one line. kube's errors repeat their causes in their own
/// messages, so a cause already said is not said again.
fn describe(error: &NodesError) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    text
}

/// The node gauges and listing counters, in Prometheus text.
pub fn render_metrics(shared: &Shared, out: &mut String) {
    let environment = shared.environment();
    let known = match &environment.native_sidecars {
        NativeSidecars::Auto { kubelet_versions } => kubelet_versions.len(),
        NativeSidecars::Enabled | NativeSidecars::Disabled => 0,
    };
    let status = &shared.nodes;
    let _ = writeln!(
        out,
        "# HELP sidecar_injector_nodes Nodes whose kubelet version the native sidecar decision knows.\n\
         # TYPE sidecar_injector_nodes gauge\n\
         sidecar_injector_nodes {known}\n\
         # HELP sidecar_injector_native_sidecars Whether injected proxies become native sidecars (1) or not (0), before pod annotations.\n\
         # TYPE sidecar_injector_native_sidecars gauge\n\
         sidecar_injector_native_sidecars {}\n\
         # HELP sidecar_injector_node_lists_total Listings of the cluster's Nodes, by result.\n\
         # TYPE sidecar_injector_node_lists_total counter\n\
         sidecar_injector_node_lists_total{{result=\"success\"}} {}\n\
         sidecar_injector_node_lists_total{{result=\"failure\"}} {}\n\
         # HELP sidecar_injector_node_list_last_success_timestamp_seconds When the Nodes were last listed (0: never).\n\
         # TYPE sidecar_injector_node_list_last_success_timestamp_seconds gauge\n\
         sidecar_injector_node_list_last_success_timestamp_seconds {}",
        u8::from(environment.native_sidecars.enabled()),
        status.lists_ok.load(Relaxed),
        status.lists_failed.load(Relaxed),
        status.last_success.load(Relaxed),
    );
}

#[cfg(test)]
mod tests;

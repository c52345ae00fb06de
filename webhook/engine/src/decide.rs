//! Inject or skip, with Istio's precedence (`injectRequired`, spec §2.2).

use crate::doc::Node;

use crate::config::{InjectorConfig, LabelSelector, Policy};

/// Namespaces Istio never injects into, whatever the labels say.
pub const IGNORED_NAMESPACES: [&str; 4] = [
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "local-path-storage",
];

const INJECT: &str = "sidecar.istio.io/inject";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Inject,
    Skip(SkipReason),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// `spec.hostNetwork: true`: iptables rules would land on the node.
    HostNetwork,
    /// One of Istio's system namespaces (`kube-system`, …).
    IgnoredNamespace(String),
    /// `sidecar.istio.io/inject: "false"` (label, else annotation).
    OptedOut,
    /// A `neverInjectSelector` matched the pod's labels.
    NeverInjectSelector,
    /// Policy `disabled` and nothing opted the pod in.
    PolicyDisabled,
    /// A policy other than `enabled`/`disabled`: Istio injects nothing.
    InvalidPolicy(String),
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipReason::HostNetwork => f.write_str("pod uses host networking"),
            SkipReason::IgnoredNamespace(ns) => write!(f, "namespace {ns} is never injected"),
            SkipReason::OptedOut => write!(f, "{INJECT}=false"),
            SkipReason::NeverInjectSelector => f.write_str("labels match neverInjectSelector"),
            SkipReason::PolicyDisabled => f.write_str("injection policy is disabled"),
            SkipReason::InvalidPolicy(p) => {
                write!(f, "injection policy {p:?} is not enabled/disabled")
            }
        }
    }
}

/// The pod's own choice: label `sidecar.istio.io/inject` wins over the annotation of that name;
/// only the exact strings `true`/`false` count.
fn explicit_choice(meta: &Node<'_>) -> Option<bool> {
    let value = match meta.at(&["labels", INJECT]) {
        Some(v) => v.as_str().unwrap_or(""),
        None => meta
            .at(&["annotations", INJECT])
            .and_then(Node::as_str)
            .unwrap_or(""),
    };
    match value {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// Decides for a pod in `namespace` (already defaulted from the request).
pub fn decide(pod: &Node<'_>, namespace: &str, config: &InjectorConfig) -> Decision {
    if pod.at(&["spec", "hostNetwork"]).and_then(Node::as_bool) == Some(true) {
        return Decision::Skip(SkipReason::HostNetwork);
    }
    if IGNORED_NAMESPACES.contains(&namespace) {
        return Decision::Skip(SkipReason::IgnoredNamespace(namespace.to_string()));
    }
    let empty = Node::Null;
    let meta = pod.get("metadata").unwrap_or(&empty);
    let labels = meta.get("labels").unwrap_or(&empty);
    let mut choice = explicit_choice(meta);
    if choice.is_none() && config.never_inject.iter().any(|s| s.matches(labels)) {
        choice = Some(false);
    }
    if choice.is_none() && config.always_inject.iter().any(|s| s.matches(labels)) {
        choice = Some(true);
    }
    match (&config.policy, choice) {
        (Policy::Other(p), _) => Decision::Skip(SkipReason::InvalidPolicy(p.clone())),
        (_, Some(true)) | (Policy::Enabled, None) => Decision::Inject,
        (Policy::Disabled, None) => Decision::Skip(SkipReason::PolicyDisabled),
        (_, Some(false)) => {
            if explicit_choice(meta) == Some(false) {
                Decision::Skip(SkipReason::OptedOut)
            } else {
                Decision::Skip(SkipReason::NeverInjectSelector)
            }
        }
    }
}

impl LabelSelector {
    /// Kubernetes label-selector semantics; an empty selector matches nothing here (Istio skips
    /// empty selectors rather than letting them match everything).
    pub fn matches(&self, labels: &Node<'_>) -> bool {
        if self.match_labels.is_empty() && self.match_expressions.is_empty() {
            return false;
        }
        let get = |k: &str| labels.get(k).and_then(Node::as_str);
        self.match_labels
            .iter()
            .all(|(k, v)| get(k) == Some(v.as_str()))
            && self.match_expressions.iter().all(|e| {
                let have = get(&e.key);
                match e.operator.as_str() {
                    "In" => have.is_some_and(|h| e.values.iter().any(|v| v == h)),
                    "NotIn" => have.is_none_or(|h| e.values.iter().all(|v| v != h)),
                    "Exists" => have.is_some(),
                    "DoesNotExist" => have.is_none(),
                    _ => false,
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doc::Node;
    use serde_json::json;

    fn config(policy: Policy) -> InjectorConfig {
        InjectorConfig {
            policy,
            ..InjectorConfig::default()
        }
    }

    fn selector(k: &str, v: &str) -> LabelSelector {
        LabelSelector {
            match_labels: [(k.to_string(), v.to_string())].into_iter().collect(),
            match_expressions: vec![],
        }
    }

    #[test]
    fn host_network_pods_are_skipped_even_when_opted_in() {
        let pod = json!({"metadata": {"labels": {INJECT: "true"}}, "spec": {"hostNetwork": true}});
        assert_eq!(
            decide(&Node::view(&pod), "ns", &config(Policy::Enabled)),
            Decision::Skip(SkipReason::HostNetwork)
        );
    }

    #[test]
    fn system_namespaces_are_skipped() {
        let pod = json!({"metadata": {}, "spec": {}});
        assert!(matches!(
            decide(&Node::view(&pod), "kube-system", &config(Policy::Enabled)),
            Decision::Skip(SkipReason::IgnoredNamespace(_))
        ));
    }

    #[test]
    fn label_wins_over_annotation() {
        let pod =
            json!({"metadata": {"labels": {INJECT: "true"}, "annotations": {INJECT: "false"}}});
        assert_eq!(
            decide(&Node::view(&pod), "ns", &config(Policy::Disabled)),
            Decision::Inject
        );
        let pod =
            json!({"metadata": {"labels": {INJECT: "false"}, "annotations": {INJECT: "true"}}});
        assert_eq!(
            decide(&Node::view(&pod), "ns", &config(Policy::Enabled)),
            Decision::Skip(SkipReason::OptedOut)
        );
    }

    #[test]
    fn odd_values_fall_back_to_the_policy() {
        let pod = json!({"metadata": {"annotations": {INJECT: "yes"}}});
        assert_eq!(
            decide(&Node::view(&pod), "ns", &config(Policy::Enabled)),
            Decision::Inject
        );
        assert_eq!(
            decide(&Node::view(&pod), "ns", &config(Policy::Disabled)),
            Decision::Skip(SkipReason::PolicyDisabled)
        );
    }

    #[test]
    fn never_selector_wins_over_always_selector() {
        let mut cfg = config(Policy::Disabled);
        cfg.never_inject = vec![selector("app", "x")];
        cfg.always_inject = vec![selector("app", "x")];
        let pod = json!({"metadata": {"labels": {"app": "x"}}});
        assert_eq!(
            decide(&Node::view(&pod), "ns", &cfg),
            Decision::Skip(SkipReason::NeverInjectSelector)
        );
        cfg.never_inject.clear();
        assert_eq!(decide(&Node::view(&pod), "ns", &cfg), Decision::Inject);
    }

    #[test]
    fn explicit_choice_wins_over_selectors() {
        let mut cfg = config(Policy::Enabled);
        cfg.never_inject = vec![selector("app", "x")];
        let pod = json!({"metadata": {"labels": {"app": "x", INJECT: "true"}}});
        assert_eq!(decide(&Node::view(&pod), "ns", &cfg), Decision::Inject);
    }

    #[test]
    fn unknown_policy_injects_nothing() {
        let pod = json!({"metadata": {"labels": {INJECT: "true"}}});
        assert!(matches!(
            decide(
                &Node::view(&pod),
                "ns",
                &config(Policy::Other("maybe".into()))
            ),
            Decision::Skip(SkipReason::InvalidPolicy(_))
        ));
    }

    #[test]
    fn empty_selectors_never_match() {
        let sel = LabelSelector::default();
        assert!(!sel.matches(&Node::from_value(json!({"a": "b"}))));
    }
}

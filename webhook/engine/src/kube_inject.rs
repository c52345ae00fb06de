//! `kube-inject`: a YAML stream of manifests in, the same stream with pod templates injected out.

use serde_json::{Value, json};

use crate::doc::Node;
use crate::inject::{self, Mode, Outcome, Owner};
use crate::render::Texts;
use crate::{Environment, Injector, SkipReason, chain};

/// The injected stream and the warnings to print on stderr.
#[derive(Debug, Clone, Default)]
pub struct Output {
    pub yaml: String,
    pub warnings: Vec<String>,
}

/// A document that could not be injected; names the document (index and kind/name) and why.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct KubeInjectError(pub String);

/// Splits a YAML stream on `---` separator lines, as Kubernetes' YAML reader does.
fn documents(input: &str) -> Vec<String> {
    let mut docs = Vec::new();
    let mut current = String::new();
    for line in input.split_inclusive('\n') {
        let bare = line.trim_end();
        if bare == "---" || (bare.starts_with("--- ") && bare[4..].trim().is_empty()) {
            docs.push(std::mem::take(&mut current));
            continue;
        }
        current.push_str(line);
    }
    docs.push(current);
    docs.into_iter()
        .filter(|d| {
            d.lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        })
        .collect()
}

/// Injects every workload in `input` (multi-document YAML, `kind: List` expanded); other kinds pass
/// through unchanged.
pub fn inject_stream(
    input: &str,
    injector: &Injector,
    env: &Environment,
) -> Result<Output, KubeInjectError> {
    let mut out = Output::default();
    for (index, text) in documents(input).into_iter().enumerate() {
        let doc: Value = serde_yaml_ng::from_str(&text)
            .map_err(|e| KubeInjectError(format!("document {}: not valid YAML: {e}", index + 1)))?;
        let describe = |d: &Value| {
            format!(
                "document {} ({} {:?})",
                index + 1,
                d["kind"].as_str().unwrap_or("?"),
                d.pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
            )
        };
        match inject_object(&doc, injector, env, &mut out.warnings) {
            Ok(Some(updated)) => {
                // Written the way `istioctl kube-inject` writes (sigs.k8s.io/yaml: sorted keys).
                let yaml = gotmpl::yaml::encode(&gotmpl::Value::from_json(&updated));
                out.yaml.push_str(&yaml);
            }
            Ok(None) => {
                out.yaml.push_str(&text);
                if !text.ends_with('\n') {
                    out.yaml.push('\n');
                }
            }
            Err(reason) => return Err(KubeInjectError(format!("{}: {reason}", describe(&doc)))),
        }
        out.yaml.push_str("---\n");
    }
    Ok(out)
}

/// Where a workload kind keeps its pod template's metadata and spec.
fn template_paths(kind: &str) -> Option<(&'static str, &'static str)> {
    Some(match kind {
        "Pod" => ("/metadata", "/spec"),
        // Istio injects a CronJob's labels and annotations into the job template's metadata.
        "CronJob" => (
            "/spec/jobTemplate/metadata",
            "/spec/jobTemplate/spec/template/spec",
        ),
        "Deployment"
        | "DaemonSet"
        | "StatefulSet"
        | "ReplicaSet"
        | "ReplicationController"
        | "Job"
        | "DeploymentConfig" => ("/spec/template/metadata", "/spec/template/spec"),
        _ => return None,
    })
}

/// `None` means: not a kind we handle, pass the document through as written.
fn inject_object(
    doc: &Value,
    injector: &Injector,
    env: &Environment,
    warnings: &mut Vec<String>,
) -> Result<Option<Value>, String> {
    let kind = doc["kind"].as_str().unwrap_or("");
    if kind == "List" {
        let mut out = doc.clone();
        if let Some(items) = out.get_mut("items").and_then(Value::as_array_mut) {
            for (i, item) in items.iter_mut().enumerate() {
                match inject_object(item, injector, env, warnings) {
                    Ok(Some(updated)) => *item = updated,
                    Ok(None) => {}
                    Err(e) => return Err(format!("item {i}: {e}")),
                }
            }
        }
        return Ok(Some(out));
    }
    let Some((meta_path, spec_path)) = template_paths(kind) else {
        return Ok(None);
    };
    let mut out = doc.clone();
    if kind == "ReplicationController" && out.pointer("/spec/template").is_none_or(Value::is_null) {
        return Err("spec.template is required value".into());
    }
    let metadata = out.pointer(meta_path).cloned().unwrap_or_else(|| json!({}));
    let spec = out.pointer(spec_path).cloned().unwrap_or_else(|| json!({}));
    let mut pod = json!({"metadata": metadata, "spec": spec});
    if pod["metadata"].is_null() {
        pod["metadata"] = json!({});
    }
    let owner = if kind == "Pod" {
        inject::owner_from_pod(&Node::view(&pod))
    } else {
        Owner {
            kind: kind.to_string(),
            api_version: doc["apiVersion"].as_str().unwrap_or("").to_string(),
            name: doc
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            namespace: doc
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        }
    };
    let name = pod["metadata"]["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .unwrap_or(&owner.name)
        .to_string();
    let full_name = if owner.namespace.is_empty() {
        name
    } else {
        format!("{}/{}", owner.namespace, name)
    };
    let texts = Texts::default();
    match inject::inject(
        Node::view(&pod),
        "",
        injector,
        env,
        &Mode::KubeInject { owner },
        &texts,
    ) {
        Ok(Outcome::Skipped(reason)) => {
            let why = match reason {
                SkipReason::HostNetwork => "has host networking enabled",
                _ => "has sidecar injection disabled",
            };
            warnings.push(format!(
                "===> Skipping injection because {kind} {full_name:?} {why}"
            ));
            Ok(Some(out))
        }
        Ok(Outcome::Injected { injected, .. }) => {
            set(
                &mut out,
                meta_path,
                injected
                    .get("metadata")
                    .map_or_else(|| json!({}), Node::to_value),
            );
            set(
                &mut out,
                spec_path,
                injected
                    .get("spec")
                    .map_or_else(|| json!({}), Node::to_value),
            );
            Ok(Some(out))
        }
        Err(err) => Err(chain(&err)),
    }
}

/// Writes `value` at a JSON pointer, creating the objects on the way.
fn set(doc: &mut Value, pointer: &str, value: Value) {
    let mut at = doc;
    let parts: Vec<&str> = pointer.split('/').skip(1).collect();
    for (i, part) in parts.iter().enumerate() {
        if !at.is_object() {
            *at = json!({});
        }
        let obj = at.as_object_mut().expect("just made an object");
        if i + 1 == parts.len() {
            obj.insert(part.to_string(), value);
            return;
        }
        at = obj.entry(part.to_string()).or_insert_with(|| json!({}));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_split_on_separator_lines_only() {
        let docs = documents("a: 1\n---\nb: '---'\n--- \n# only a comment\n---\nc: 3");
        assert_eq!(docs, ["a: 1\n", "b: '---'\n", "c: 3"]);
    }

    #[test]
    fn pointer_writes_create_parents() {
        let mut doc = json!({"spec": {}});
        set(&mut doc, "/spec/jobTemplate/metadata", json!({"a": 1}));
        assert_eq!(
            doc,
            json!({"spec": {"jobTemplate": {"metadata": {"a": 1}}}})
        );
    }
}

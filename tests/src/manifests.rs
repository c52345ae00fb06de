//! The `deploy/` kustomizations rendered into objects, for checks and for applying to a real
//! API server. kustomize itself is not available to the tests (and `kubectl` is not either), so
//! this renders the subset our kustomizations use, and refuses anything else:
//! `resources` (files and directories), `configMapGenerator` with `files`, `namespace`, and
//! `patches` with a `target` that are either JSON 6902 operations or a `$patch: delete`.
//! One difference is deliberate: generated ConfigMaps keep their plain name (kustomize adds a
//! content hash and renames the references with it).

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not valid YAML")]
    Yaml {
        path: PathBuf,
        #[source]
        source: serde_yaml_ng::Error,
    },
    #[error("{path}: {what}")]
    Unsupported { path: PathBuf, what: String },
    #[error("{path}: patch for {target} does not apply")]
    Patch {
        path: PathBuf,
        target: String,
        #[source]
        source: json_patch::PatchError,
    },
}

/// Kinds without a namespace among those we ship.
const CLUSTER_SCOPED: &[&str] = &[
    "Namespace",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
    "ClusterRole",
    "ClusterRoleBinding",
];

/// Every document of a YAML file, as JSON values (empty documents dropped).
pub fn read_yaml_documents(path: &Path) -> Result<Vec<Value>, ManifestError> {
    let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut docs = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(&text) {
        let value = serde::Deserialize::deserialize(doc).map_err(|source| ManifestError::Yaml {
            path: path.to_owned(),
            source,
        })?;
        if value != Value::Null {
            docs.push(value);
        }
    }
    Ok(docs)
}

/// The kustomization file of a directory, parsed.
pub fn kustomization(dir: &Path) -> Result<Value, ManifestError> {
    let path = dir.join("kustomization.yaml");
    let mut docs = read_yaml_documents(&path)?;
    match (docs.pop(), docs.is_empty()) {
        (Some(k), true) if k["kind"] == "Kustomization" => Ok(k),
        _ => Err(ManifestError::Unsupported {
            path,
            what: "expected exactly one Kustomization document".into(),
        }),
    }
}

/// Renders the kustomization in `dir` into the objects `kubectl apply -k dir` would send.
pub fn render(dir: &Path) -> Result<Vec<Value>, ManifestError> {
    let k = kustomization(dir)?;
    let kpath = dir.join("kustomization.yaml");
    let unsupported = |what: String| ManifestError::Unsupported {
        path: kpath.clone(),
        what,
    };
    let known = [
        "apiVersion",
        "kind",
        "resources",
        "configMapGenerator",
        "namespace",
        "patches",
    ];
    if let Some(field) = k
        .as_object()
        .and_then(|m| m.keys().find(|f| !known.contains(&f.as_str())))
    {
        return Err(unsupported(format!(
            "field {field} is not rendered by these tests"
        )));
    }

    let mut objects = Vec::new();
    for res in strings(&k["resources"]) {
        let path = dir.join(res);
        if path.is_dir() {
            objects.extend(render(&path)?);
        } else {
            objects.extend(read_yaml_documents(&path)?);
        }
    }
    for generator in k["configMapGenerator"].as_array().into_iter().flatten() {
        objects.push(generate_config_map(dir, generator).map_err(unsupported)?);
    }
    for patch in k["patches"].as_array().into_iter().flatten() {
        apply_patch(&kpath, patch, &mut objects)?;
    }
    if let Some(ns) = k["namespace"].as_str() {
        for obj in &mut objects {
            let kind = obj["kind"].as_str().unwrap_or_default();
            if !CLUSTER_SCOPED.contains(&kind) {
                obj["metadata"]["namespace"] = json!(ns);
            }
        }
    }
    Ok(objects)
}

fn strings(v: &Value) -> impl Iterator<Item = &str> {
    v.as_array().into_iter().flatten().filter_map(Value::as_str)
}

fn generate_config_map(dir: &Path, generator: &Value) -> Result<Value, String> {
    let name = generator["name"]
        .as_str()
        .ok_or("configMapGenerator without a name")?;
    let mut data = Map::new();
    for entry in strings(&generator["files"]) {
        let (key, file) = entry.split_once('=').unwrap_or((entry, entry));
        let text = std::fs::read_to_string(dir.join(file))
            .map_err(|e| format!("configMapGenerator {name}: cannot read {file}: {e}"))?;
        data.insert(key.to_owned(), json!(text));
    }
    let mut metadata = json!({ "name": name });
    if let Some(ns) = generator["namespace"].as_str() {
        metadata["namespace"] = json!(ns);
    }
    if let Some(labels) = generator["options"]["labels"].as_object() {
        metadata["labels"] = Value::Object(labels.clone());
    }
    Ok(json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data }))
}

fn apply_patch(kpath: &Path, patch: &Value, objects: &mut Vec<Value>) -> Result<(), ManifestError> {
    let unsupported = |what: &str| ManifestError::Unsupported {
        path: kpath.to_owned(),
        what: what.to_owned(),
    };
    let target = &patch["target"];
    let kind = target["kind"]
        .as_str()
        .ok_or_else(|| unsupported("patch without target.kind"))?;
    let name = target["name"].as_str();
    let selected =
        |obj: &Value| obj["kind"] == kind && name.is_none_or(|n| obj["metadata"]["name"] == n);
    let text = patch["patch"]
        .as_str()
        .ok_or_else(|| unsupported("only inline `patch:` text is rendered"))?;
    let body: Value = serde_yaml_ng::from_str(text).map_err(|source| ManifestError::Yaml {
        path: kpath.to_owned(),
        source,
    })?;
    if !objects.iter().any(selected) {
        return Err(unsupported(&format!(
            "patch target {kind}/{} matches nothing",
            name.unwrap_or("*")
        )));
    }
    if body["$patch"] == "delete" {
        objects.retain(|obj| !selected(obj));
        return Ok(());
    }
    let ops: json_patch::Patch = serde_json::from_value(body)
        .map_err(|_| unsupported("a patch is neither JSON 6902 operations nor `$patch: delete`"))?;
    for obj in objects.iter_mut().filter(|o| selected(o)) {
        json_patch::patch(obj, &ops).map_err(|source| ManifestError::Patch {
            path: kpath.to_owned(),
            target: format!("{kind}/{}", obj["metadata"]["name"].as_str().unwrap_or("?")),
            source,
        })?;
    }
    Ok(())
}

/// The one object of `kind` (and `name`, if given) among `objects`.
pub fn find<'a>(objects: &'a [Value], kind: &str, name: Option<&str>) -> Option<&'a Value> {
    let mut it = objects
        .iter()
        .filter(|o| o["kind"] == kind && name.is_none_or(|n| o["metadata"]["name"] == n));
    let first = it.next();
    if it.next().is_some() {
        return None;
    }
    first
}

//! Strategic merge patch for `corev1.Pod`, as Kubernetes applies it: lists with a merge key are
//! merged item by item (the patch's items first, in patch order, then the items only the
//! original has — `normalizeElementOrder`), other lists and scalars are replaced, maps merge
//! recursively, `null` deletes, and the `$patch` directives `replace`/`delete`/`merge` work in
//! maps and lists.

use serde_json::{Map, Value};

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("{path}: the patch has {found} where the pod has a {expected}")]
    Shape {
        path: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error("{path}: unknown $patch directive {value:?}")]
    Directive { path: String, value: String },
}

/// Where in a Pod a value sits: decides which lists merge and by what key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Pod,
    ObjectMeta,
    PodSpec,
    Container,
    /// Anything else: maps merge, lists are replaced.
    Plain,
}

/// The merge key of a list field and the type of its items, or `None` for an atomic list.
fn list_strategy(ty: Ty, field: &str) -> Option<(Option<&'static str>, Ty)> {
    match (ty, field) {
        (Ty::ObjectMeta, "ownerReferences") => Some((Some("uid"), Ty::Plain)),
        (Ty::ObjectMeta, "finalizers") => Some((None, Ty::Plain)),
        (Ty::PodSpec, "containers" | "initContainers" | "ephemeralContainers") => {
            Some((Some("name"), Ty::Container))
        }
        (Ty::PodSpec, "volumes" | "imagePullSecrets" | "schedulingGates" | "resourceClaims") => {
            Some((Some("name"), Ty::Plain))
        }
        (Ty::PodSpec, "hostAliases") => Some((Some("ip"), Ty::Plain)),
        (Ty::PodSpec, "topologySpreadConstraints") => Some((Some("topologyKey"), Ty::Plain)),
        (Ty::Container, "env") => Some((Some("name"), Ty::Plain)),
        (Ty::Container, "ports") => Some((Some("containerPort"), Ty::Plain)),
        (Ty::Container, "volumeMounts") => Some((Some("mountPath"), Ty::Plain)),
        (Ty::Container, "volumeDevices") => Some((Some("devicePath"), Ty::Plain)),
        _ => None,
    }
}

fn field_ty(ty: Ty, field: &str) -> Ty {
    match (ty, field) {
        (Ty::Pod, "metadata") => Ty::ObjectMeta,
        (Ty::Pod, "spec") => Ty::PodSpec,
        _ => Ty::Plain,
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

const DIRECTIVE: &str = "$patch";

/// Merges `patch` (a partial Pod) onto `original` (a Pod).
pub fn merge_pod(original: &Value, patch: &Value) -> Result<Value, MergeError> {
    let mut out = original.clone();
    if out.is_null() {
        out = Value::Object(Map::new());
    }
    match patch {
        Value::Null => Ok(out),
        Value::Object(p) => {
            let Value::Object(o) = &mut out else {
                return Err(MergeError::Shape {
                    path: "/".into(),
                    expected: kind(original),
                    found: "a mapping",
                });
            };
            match merge_map(o, p, Ty::Pod, "")? {
                Some(()) => Ok(out),
                None => Ok(Value::Object(Map::new())),
            }
        }
        other => Err(MergeError::Shape {
            path: "/".into(),
            expected: "mapping",
            found: kind(other),
        }),
    }
}

/// Merges `patch` into `target`; `None` means the map itself was deleted (`$patch: delete`).
fn merge_map(
    target: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    ty: Ty,
    path: &str,
) -> Result<Option<()>, MergeError> {
    match patch.get(DIRECTIVE).map(|d| d.as_str().unwrap_or("")) {
        None | Some("merge") => {}
        Some("replace") => {
            *target = patch
                .iter()
                .filter(|(k, _)| *k != DIRECTIVE)
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect();
            return Ok(Some(()));
        }
        Some("delete") => return Ok(None),
        Some(other) => {
            return Err(MergeError::Directive {
                path: path.to_string(),
                value: other.to_string(),
            });
        }
    }
    for (key, pv) in patch {
        if key == DIRECTIVE || key.starts_with("$setElementOrder/") || key == "$retainKeys" {
            continue;
        }
        let child_path = format!("{path}/{key}");
        if pv.is_null() {
            target.remove(key);
            continue;
        }
        match (target.get_mut(key), pv) {
            (Some(Value::Object(tm)), Value::Object(pm)) => {
                if merge_map(tm, pm, field_ty(ty, key), &child_path)?.is_none() {
                    target.remove(key);
                }
            }
            (Some(Value::Array(ta)), Value::Array(pa)) => {
                let merged = match list_strategy(ty, key) {
                    Some((merge_key, item_ty)) => {
                        merge_list(ta, pa, merge_key, item_ty, &child_path)?
                    }
                    None => replace_list(pa),
                };
                *ta = merged;
            }
            (_, Value::Object(pm)) => {
                let mut fresh = Map::new();
                if merge_map(&mut fresh, pm, field_ty(ty, key), &child_path)?.is_some() {
                    target.insert(key.clone(), Value::Object(fresh));
                }
            }
            (_, Value::Array(pa)) => {
                let merged = match list_strategy(ty, key) {
                    Some((merge_key, item_ty)) => {
                        merge_list(&[], pa, merge_key, item_ty, &child_path)?
                    }
                    None => replace_list(pa),
                };
                target.insert(key.clone(), Value::Array(merged));
            }
            (_, scalar) => {
                target.insert(key.clone(), scalar.clone());
            }
        }
    }
    Ok(Some(()))
}

/// An atomic list: the patch wins, minus any `$patch: replace` marker item.
fn replace_list(patch: &[Value]) -> Vec<Value> {
    patch
        .iter()
        .filter(|v| !is_directive_item(v, "replace"))
        .map(strip_directives)
        .collect()
}

fn is_directive_item(v: &Value, which: &str) -> bool {
    v.as_object()
        .is_some_and(|m| m.len() == 1 && m.get(DIRECTIVE).and_then(Value::as_str) == Some(which))
}

/// Removes `$patch` keys from a value that is being inserted as-is.
fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

fn key_of<'a>(item: &'a Value, merge_key: &str) -> Option<&'a Value> {
    item.as_object().and_then(|m| m.get(merge_key))
}

fn merge_list(
    original: &[Value],
    patch: &[Value],
    merge_key: Option<&str>,
    item_ty: Ty,
    path: &str,
) -> Result<Vec<Value>, MergeError> {
    if patch.iter().any(|v| is_directive_item(v, "replace")) {
        return Ok(replace_list(patch));
    }
    let Some(merge_key) = merge_key else {
        // A set of scalars: union, original order first, duplicates dropped.
        let mut out: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
        for v in original.iter().chain(patch) {
            if !out.contains(v) {
                out.push(v.clone());
            }
        }
        return Ok(out);
    };
    let mut merged: Vec<Value> = original.to_vec();
    // Items present in the patch, in patch order (after merging), and their original index.
    let mut patch_items: Vec<(Option<usize>, Value)> = Vec::new();
    let mut touched = vec![false; merged.len()];
    let mut deleted = vec![false; merged.len()];
    for item in patch {
        let key = key_of(item, merge_key);
        let idx = key.and_then(|k| merged.iter().position(|m| key_of(m, merge_key) == Some(k)));
        let is_delete = item.get(DIRECTIVE).and_then(Value::as_str) == Some("delete");
        if is_delete {
            if let Some(i) = idx {
                deleted[i] = true;
            }
            continue;
        }
        let child_path = format!("{path}/{}", key.map(Value::to_string).unwrap_or_default());
        match (idx, item) {
            (Some(i), Value::Object(pm)) => {
                let Value::Object(tm) = &mut merged[i] else {
                    merged[i] = strip_directives(item);
                    touched[i] = true;
                    continue;
                };
                if merge_map(tm, pm, item_ty, &child_path)?.is_none() {
                    deleted[i] = true;
                } else {
                    touched[i] = true;
                }
            }
            (None, Value::Object(pm)) => {
                let mut fresh = Map::new();
                if merge_map(&mut fresh, pm, item_ty, &child_path)?.is_some() {
                    patch_items.push((None, Value::Object(fresh)));
                }
            }
            (_, other) => patch_items.push((None, other.clone())),
        }
        if let Some(i) = idx
            && touched[i]
            && !deleted[i]
        {
            patch_items.push((Some(i), Value::Null));
        }
    }
    // Resolve placeholders for merged originals, keeping patch order.
    let right: Vec<(Option<usize>, Value)> = patch_items
        .into_iter()
        .map(|(i, v)| match i {
            Some(i) => (Some(i), merged[i].clone()),
            None => (None, v),
        })
        .collect();
    let left: Vec<(usize, &Value)> = merged
        .iter()
        .enumerate()
        .filter(|(i, _)| !touched[*i] && !deleted[*i])
        .collect();
    // mergeSortedSlice: take the server-only item when it precedes the patch item in server
    // order; a patch item new to the list goes first.
    let mut out = Vec::with_capacity(left.len() + right.len());
    let (mut i, mut j) = (0, 0);
    while i < left.len() || j < right.len() {
        if i >= left.len() {
            out.push(right[j].1.clone());
            j += 1;
        } else if j >= right.len() {
            out.push(left[i].1.clone());
            i += 1;
        } else {
            match right[j].0 {
                Some(ri) if left[i].0 < ri => {
                    out.push(left[i].1.clone());
                    i += 1;
                }
                _ => {
                    out.push(right[j].1.clone());
                    j += 1;
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn new_containers_go_first_and_existing_ones_merge_by_name() {
        let pod = json!({"spec": {"containers": [{"name": "app", "image": "a", "env": [{"name": "X", "value": "1"}]}]}});
        let patch = json!({"spec": {"containers": [
            {"name": "istio-proxy", "image": "p"},
            {"name": "app", "env": [{"name": "Y", "value": "2"}]}
        ]}});
        let out = merge_pod(&pod, &patch).unwrap();
        assert_eq!(
            out["spec"]["containers"],
            json!([
                {"name": "istio-proxy", "image": "p"},
                {"name": "app", "image": "a", "env": [{"name": "Y", "value": "2"}, {"name": "X", "value": "1"}]}
            ])
        );
    }

    #[test]
    fn patching_an_existing_item_keeps_the_original_order() {
        let pod = json!({"spec": {"volumes": [{"name": "a"}, {"name": "b", "emptyDir": {}}]}});
        let patch = json!({"spec": {"volumes": [{"name": "a", "csi": {"driver": "x"}}]}});
        let out = merge_pod(&pod, &patch).unwrap();
        assert_eq!(
            out["spec"]["volumes"],
            json!([{"name": "a", "csi": {"driver": "x"}}, {"name": "b", "emptyDir": {}}])
        );
    }

    #[test]
    fn lists_without_a_merge_key_are_replaced() {
        let pod = json!({"spec": {"containers": [{"name": "c", "args": ["a", "b"]}]}});
        let patch = json!({"spec": {"containers": [{"name": "c", "args": ["z"]}]}});
        let out = merge_pod(&pod, &patch).unwrap();
        assert_eq!(out["spec"]["containers"][0]["args"], json!(["z"]));
    }

    #[test]
    fn ports_merge_by_container_port() {
        let pod = json!({"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80, "name": "http"}]}]}});
        let patch = json!({"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80, "protocol": "TCP"}]}]}});
        let out = merge_pod(&pod, &patch).unwrap();
        assert_eq!(
            out["spec"]["containers"][0]["ports"],
            json!([{"containerPort": 80, "name": "http", "protocol": "TCP"}])
        );
    }

    #[test]
    fn patch_directives_replace_and_delete() {
        let pod = json!({"spec": {"securityContext": {"runAsUser": 1, "fsGroup": 2}, "volumes": [{"name": "a"}, {"name": "b"}]}});
        let patch = json!({"spec": {
            "securityContext": {"$patch": "replace", "runAsUser": 5},
            "volumes": [{"name": "a", "$patch": "delete"}]
        }});
        let out = merge_pod(&pod, &patch).unwrap();
        assert_eq!(out["spec"]["securityContext"], json!({"runAsUser": 5}));
        assert_eq!(out["spec"]["volumes"], json!([{"name": "b"}]));
    }

    #[test]
    fn null_deletes_and_unknown_fields_survive() {
        let pod = json!({"spec": {"x-unknown": {"keep": true}, "nodeName": "n"}});
        let out = merge_pod(&pod, &json!({"spec": {"nodeName": null}})).unwrap();
        assert_eq!(out, json!({"spec": {"x-unknown": {"keep": true}}}));
    }

    #[test]
    fn finalizers_are_a_set() {
        let pod = json!({"metadata": {"finalizers": ["a", "b"]}});
        let out = merge_pod(&pod, &json!({"metadata": {"finalizers": ["b", "c"]}})).unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["a", "b", "c"]));
    }
}

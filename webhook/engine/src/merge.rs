//! Strategic merge patch for `corev1.Pod`, as Kubernetes applies it: lists with a merge key are
//! merged item by item (the patch's items first, in patch order, then the items only the
//! original has — `normalizeElementOrder`), other lists and scalars are replaced, maps merge
//! recursively, `null` deletes, and the `$patch` directives `replace`/`delete`/`merge` work in
//! maps and lists.

use crate::doc::{Members, Node};

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

fn kind(v: &Node<'_>) -> &'static str {
    match v {
        Node::Null => "null",
        Node::Bool(_) => "a boolean",
        Node::Number(_) => "a number",
        Node::String(_) => "a string",
        Node::Array(_) => "a list",
        Node::Object(_) => "a mapping",
    }
}

const DIRECTIVE: &str = "$patch";

/// Where the merge is, spelled out only for error messages.
enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Item(&'a Path<'a>, Option<&'a Node<'a>>),
}

impl Path<'_> {
    fn render(&self) -> String {
        match self {
            Path::Root => String::new(),
            Path::Key(parent, key) => format!("{}/{key}", parent.render()),
            Path::Item(parent, Some(key)) => format!("{}/{key}", parent.render()),
            Path::Item(parent, None) => format!("{}/-", parent.render()),
        }
    }
}

/// Merges `patch` (a partial Pod) onto the pod `target`, in place, moving the patch's values
/// into the pod.
pub fn merge_owned<'a>(target: &mut Node<'a>, patch: Node<'a>) -> Result<(), MergeError> {
    if target.is_null() {
        *target = Node::object();
    }
    match patch {
        Node::Null => Ok(()),
        Node::Object(p) => {
            let found = kind(target);
            let Node::Object(o) = target else {
                return Err(MergeError::Shape {
                    path: "/".into(),
                    expected: found,
                    found: "a mapping",
                });
            };
            if merge_map(o, p, Ty::Pod, &Path::Root)?.is_none() {
                *target = Node::object();
            }
            Ok(())
        }
        other => Err(MergeError::Shape {
            path: "/".into(),
            expected: "mapping",
            found: kind(&other),
        }),
    }
}

/// Merges `patch` into `target`; `None` means the map itself was deleted (`$patch: delete`).
fn merge_map<'a>(
    target: &mut Members<'a>,
    mut patch: Members<'a>,
    ty: Ty,
    path: &Path<'_>,
) -> Result<Option<()>, MergeError> {
    match patch.get(DIRECTIVE).map(|d| d.as_str().unwrap_or("")) {
        None | Some("merge") => {}
        Some("replace") => {
            patch.shift_remove(DIRECTIVE);
            *target = patch
                .into_iter()
                .filter_map(|(k, v)| fresh(v).map(|v| (k, v)))
                .collect();
            return Ok(Some(()));
        }
        Some("delete") => return Ok(None),
        Some(other) => {
            return Err(MergeError::Directive {
                path: path.render(),
                value: other.to_string(),
            });
        }
    }
    for (key, pv) in patch {
        if key == DIRECTIVE || key.starts_with("$setElementOrder/") || key == "$retainKeys" {
            continue;
        }
        if pv.is_null() {
            target.shift_remove(&key);
            continue;
        }
        let child_path = Path::Key(path, &key);
        match (target.get_mut(&key), pv) {
            (Some(Node::Object(tm)), Node::Object(pm)) => {
                if merge_map(tm, pm, field_ty(ty, &key), &child_path)?.is_none() {
                    target.shift_remove(&key);
                }
            }
            (Some(Node::Array(ta)), Node::Array(pa)) => match list_strategy(ty, &key) {
                Some((merge_key, item_ty)) => merge_list(ta, pa, merge_key, item_ty, &child_path)?,
                None => *ta = replace_list(pa),
            },
            (_, pv @ (Node::Object(_) | Node::Array(_))) => {
                if let Some(v) = fresh(pv) {
                    target.insert(key, v);
                }
            }
            (_, scalar) => {
                target.insert(key, scalar);
            }
        }
    }
    Ok(Some(()))
}

/// An atomic list: the patch wins, minus any `$patch: replace` marker item.
fn replace_list(patch: Vec<Node<'_>>) -> Vec<Node<'_>> {
    patch
        .into_iter()
        .filter(|v| !is_directive_item(v, "replace"))
        .filter_map(fresh)
        .collect()
}

fn is_directive_item(v: &Node<'_>, which: &str) -> bool {
    v.as_object()
        .is_some_and(|m| m.len() == 1 && m.get(DIRECTIVE).and_then(Node::as_str) == Some(which))
}

/// A patch value inserted where the target has nothing: the directives applied to nothing
/// (`$patch: delete` drops, markers and `$` keys vanish).
fn fresh(v: Node<'_>) -> Option<Node<'_>> {
    // What templates render is nearly always clean: one look, no rebuilding.
    if !needs_cleaning(&v) {
        return Some(v);
    }
    match v {
        Node::Object(m) => {
            if m.get(DIRECTIVE).and_then(Node::as_str) == Some("delete") {
                return None;
            }
            Some(Node::Object(
                m.into_iter()
                    .filter(|(k, _)| !k.starts_with('$'))
                    .filter_map(|(k, v)| fresh(v).map(|v| (k, v)))
                    .collect(),
            ))
        }
        Node::Array(a) => Some(Node::Array(
            a.into_iter()
                .filter(|v| !is_directive_item(v, "replace"))
                .filter_map(fresh)
                .collect(),
        )),
        Node::Null => None,
        other => Some(other),
    }
}

/// Whether a value holds a directive or a null somewhere (what [`fresh`] would change).
fn needs_cleaning(v: &Node<'_>) -> bool {
    // One pass over each collection's members, calling down only into collections: this
    // walks every rendered pod whole.
    let below = |v: &Node<'_>| match v {
        Node::Null => true,
        Node::Object(_) | Node::Array(_) => needs_cleaning(v),
        _ => false,
    };
    match v {
        Node::Null => true,
        Node::Object(m) => m.iter().any(|(k, v)| k.starts_with('$') || below(v)),
        Node::Array(a) => a.iter().any(below),
        _ => false,
    }
}

fn key_of<'n, 'a>(item: &'n Node<'a>, merge_key: &str) -> Option<&'n Node<'a>> {
    item.get(merge_key)
}

/// Merges a list with a merge key in place (or a set of scalars without one).
fn merge_list<'a>(
    target: &mut Vec<Node<'a>>,
    patch: Vec<Node<'a>>,
    merge_key: Option<&str>,
    item_ty: Ty,
    path: &Path<'_>,
) -> Result<(), MergeError> {
    if patch.iter().any(|v| is_directive_item(v, "replace")) {
        *target = replace_list(patch);
        return Ok(());
    }
    let Some(merge_key) = merge_key else {
        // A set of scalars: union, original order first, duplicates dropped.
        for v in patch {
            if !target.contains(&v) {
                target.push(v);
            }
        }
        return Ok(());
    };
    let mut original: Vec<Option<Node<'a>>> =
        std::mem::take(target).into_iter().map(Some).collect();
    let n = original.len();
    let (mut touched, mut deleted) = (vec![false; n], vec![false; n]);
    // Items the patch names, in patch order: an original (merged in place) or a new item.
    let mut right: Vec<(Option<usize>, Option<Node<'a>>)> = Vec::new();
    for item in patch {
        let idx = key_of(&item, merge_key).and_then(|k| {
            original
                .iter()
                .position(|m| m.as_ref().and_then(|m| key_of(m, merge_key)) == Some(k))
        });
        if item.get(DIRECTIVE).and_then(Node::as_str) == Some("delete") {
            if let Some(i) = idx {
                deleted[i] = true;
            }
            continue;
        }
        let key = key_of(&item, merge_key).cloned();
        let child_path = Path::Item(path, key.as_ref());
        match (idx, item) {
            (Some(i), Node::Object(pm)) => {
                let slot = original[i].as_mut().expect("originals stay until the end");
                let Node::Object(tm) = slot else {
                    *slot = fresh(Node::Object(pm)).unwrap_or(Node::Null);
                    if !touched[i] {
                        right.push((Some(i), None));
                    }
                    touched[i] = true;
                    continue;
                };
                if merge_map(tm, pm, item_ty, &child_path)?.is_none() {
                    deleted[i] = true;
                } else if !touched[i] {
                    touched[i] = true;
                    right.push((Some(i), None));
                }
            }
            (None, item @ Node::Object(_)) => {
                if let Some(v) = fresh(item) {
                    right.push((None, Some(v)));
                }
            }
            (_, other) => right.push((None, Some(other))),
        }
    }
    let right: Vec<(Option<usize>, Option<Node<'a>>)> = right
        .into_iter()
        .filter(|(i, _)| i.is_none_or(|i| !deleted[i]))
        .collect();
    let left: Vec<usize> = (0..n).filter(|i| !touched[*i] && !deleted[*i]).collect();
    // mergeSortedSlice: take the server-only item when it precedes the patch item in server
    // order; a patch item new to the list goes first.
    let mut out = Vec::with_capacity(left.len() + right.len());
    let mut right = right.into_iter().peekable();
    let mut left = left.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some((Some(r), _))) => l < r,
            (Some(_), Some((None, _))) => false,
        };
        if take_left {
            let i = left.next().expect("peeked");
            out.extend(original[i].take());
        } else {
            match right.next().expect("peeked") {
                (Some(i), _) => out.extend(original[i].take()),
                (None, Some(v)) => out.push(v),
                (None, None) => {}
            }
        }
    }
    *target = out;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn merge_pod(pod: &Value, patch: &Value) -> Result<Value, MergeError> {
        let mut out = Node::view(pod);
        merge_owned(&mut out, Node::view(patch))?;
        Ok(out.to_value())
    }

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

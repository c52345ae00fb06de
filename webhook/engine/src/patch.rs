//! The JSON patch (RFC 6902) from the pod we were given to the injected pod: objects diffed key
//! by key, arrays aligned on item identity (a `name`, else the whole value) with a
//! longest-common-subsequence walk, so inserting the proxy in front of a large container costs
//! one `add`, not a replace of every later element.

use std::fmt::Write;

use serde::Serialize;
use serde_json::{Map, Value};

/// Past this many cells the LCS table is not worth it: the unmatched middle is replaced.
const LCS_BUDGET: usize = 250_000;

/// One RFC 6902 operation; the value is borrowed from the target document, so building the
/// patch copies nothing but paths.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Op<'a> {
    pub op: &'static str,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<&'a Value>,
}

impl<'a> Op<'a> {
    fn new(op: &'static str, path: &str, value: Option<&'a Value>) -> Op<'a> {
        Op {
            op,
            path: path.to_string(),
            value,
        }
    }
}

/// The operations turning `from` into `to`.
pub fn diff<'a>(from: &Value, to: &'a Value) -> Vec<Op<'a>> {
    let mut ops = Vec::new();
    diff_into(from, to, &mut String::new(), &mut ops);
    ops
}

/// Appends `/key` to `path`, escaped as RFC 6901 says (`~` → `~0`, `/` → `~1`).
fn push_key(path: &mut String, key: &str) {
    path.push('/');
    if !key.contains(['~', '/']) {
        path.push_str(key);
        return;
    }
    for c in key.chars() {
        match c {
            '~' => path.push_str("~0"),
            '/' => path.push_str("~1"),
            c => path.push(c),
        }
    }
}

/// Diffs two values at `path`. Equal subtrees produce no operations; nothing is compared twice
/// (no equality pre-check before descending).
fn diff_into<'a>(from: &Value, to: &'a Value, path: &mut String, ops: &mut Vec<Op<'a>>) {
    match (from, to) {
        (Value::Object(a), Value::Object(b)) => diff_objects(a, b, path, ops),
        (Value::Array(a), Value::Array(b)) => diff_arrays(a, b, path, ops),
        _ if from == to => {}
        _ => ops.push(Op::new("replace", path, Some(to))),
    }
}

/// `a == b`, but objects whose keys come in the same order (the usual case: the injected pod
/// keeps the original's order) are compared pairwise instead of by hashed look-ups.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            if x.len() != y.len() {
                return false;
            }
            for ((ka, va), (kb, vb)) in x.iter().zip(y) {
                if ka != kb {
                    return x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)));
                }
                if !same(va, vb) {
                    return false;
                }
            }
            true
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| same(v, w))
        }
        _ => a == b,
    }
}

/// Whether two values are equal scalars, which need no path to be written to know it.
fn equal_scalars(a: &Value, b: &Value) -> bool {
    !matches!(
        (a, b),
        (Value::Object(_), Value::Object(_)) | (Value::Array(_), Value::Array(_))
    ) && a == b
}

fn diff_member<'a>(
    key: &str,
    from: &Value,
    to: &'a Value,
    path: &mut String,
    ops: &mut Vec<Op<'a>>,
) {
    if equal_scalars(from, to) {
        return;
    }
    let len = path.len();
    push_key(path, key);
    diff_into(from, to, path, ops);
    path.truncate(len);
}

fn diff_objects<'a>(
    a: &Map<String, Value>,
    b: &'a Map<String, Value>,
    path: &mut String,
    ops: &mut Vec<Op<'a>>,
) {
    // The usual case: the target keeps the source's keys in order and appends new ones. Walk
    // both in step (no hashing); the operations come out as the general walk below gives them.
    let common = a.keys().zip(b.keys()).take_while(|(x, y)| x == y).count();
    if common == a.len() {
        for ((k, av), bv) in a.iter().zip(b.values()) {
            diff_member(k, av, bv, path, ops);
        }
        let len = path.len();
        for (k, bv) in b.iter().skip(common) {
            push_key(path, k);
            ops.push(Op::new("add", path, Some(bv)));
            path.truncate(len);
        }
        return;
    }
    let len = path.len();
    for (k, av) in a {
        match b.get(k) {
            Some(bv) => diff_member(k, av, bv, path, ops),
            None => {
                push_key(path, k);
                ops.push(Op::new("remove", path, None));
                path.truncate(len);
            }
        }
    }
    for (k, bv) in b {
        if !a.contains_key(k) {
            push_key(path, k);
            ops.push(Op::new("add", path, Some(bv)));
            path.truncate(len);
        }
    }
}

/// What makes two array items "the same item" for alignment.
fn identity(v: &Value) -> Identity<'_> {
    // Items are small maps, `name` usually first: a scan is cheaper than hashing the key.
    match v
        .as_object()
        .and_then(|m| m.iter().find(|(k, _)| *k == "name"))
        .and_then(|(_, name)| name.as_str())
    {
        Some(name) => Identity::Name(name),
        None => Identity::Whole(v),
    }
}

#[derive(PartialEq)]
enum Identity<'a> {
    Name(&'a str),
    Whole(&'a Value),
}

enum Edit {
    Keep(usize, usize),
    Delete(usize),
    Insert(usize),
}

fn diff_arrays<'a>(a: &[Value], b: &'a [Value], path: &mut String, ops: &mut Vec<Op<'a>>) {
    // Most arrays come through unchanged (a container's env, ports, …): one ordered walk says
    // so before any alignment work.
    if a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y)) {
        return;
    }
    let prefix = a
        .iter()
        .zip(b)
        .take_while(|(x, y)| identity(x) == identity(y))
        .count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| identity(x) == identity(y))
        .count();
    let (am, bm) = (&a[prefix..a.len() - suffix], &b[prefix..b.len() - suffix]);
    let mut edits: Vec<Edit> = (0..prefix).map(|i| Edit::Keep(i, i)).collect();
    edits.extend(align(am, bm).into_iter().map(|e| match e {
        Edit::Keep(i, j) => Edit::Keep(i + prefix, j + prefix),
        Edit::Delete(i) => Edit::Delete(i + prefix),
        Edit::Insert(j) => Edit::Insert(j + prefix),
    }));
    let (sa, sb) = (a.len() - suffix, b.len() - suffix);
    edits.extend((0..suffix).map(|k| Edit::Keep(sa + k, sb + k)));

    let len = path.len();
    let mut at = 0usize;
    for edit in edits {
        if let Edit::Keep(i, j) = edit
            && same(&a[i], &b[j])
        {
            at += 1;
            continue;
        }
        path.truncate(len);
        path.push('/');
        // Writing into a String cannot fail.
        let _ = write!(path, "{at}");
        match edit {
            Edit::Keep(i, j) => {
                diff_into(&a[i], &b[j], path, ops);
                at += 1;
            }
            Edit::Delete(_) => ops.push(Op::new("remove", path, None)),
            Edit::Insert(j) => {
                ops.push(Op::new("add", path, Some(&b[j])));
                at += 1;
            }
        }
    }
    path.truncate(len);
}

/// Aligns two slices on identity with an LCS table (or, past the budget, deletes the old middle
/// and inserts the new one).
fn align(a: &[Value], b: &[Value]) -> Vec<Edit> {
    let (n, m) = (a.len(), b.len());
    if n == 0 || m == 0 || n * m > LCS_BUDGET {
        let mut out: Vec<Edit> = (0..n).map(Edit::Delete).collect();
        out.extend((0..m).map(Edit::Insert));
        return out;
    }
    let ia: Vec<Identity> = a.iter().map(identity).collect();
    let ib: Vec<Identity> = b.iter().map(identity).collect();
    // lcs[i][j] = LCS length of a[i..] and b[j..].
    let mut lcs = vec![0u32; (n + 1) * (m + 1)];
    let at = |i: usize, j: usize| i * (m + 1) + j;
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[at(i, j)] = if ia[i] == ib[j] {
                lcs[at(i + 1, j + 1)] + 1
            } else {
                lcs[at(i + 1, j)].max(lcs[at(i, j + 1)])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(n.max(m));
    while i < n && j < m {
        if ia[i] == ib[j] {
            out.push(Edit::Keep(i, j));
            i += 1;
            j += 1;
        } else if lcs[at(i + 1, j)] >= lcs[at(i, j + 1)] {
            out.push(Edit::Delete(i));
            i += 1;
        } else {
            out.push(Edit::Insert(j));
            j += 1;
        }
    }
    out.extend((i..n).map(Edit::Delete));
    out.extend((j..m).map(Edit::Insert));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use serde_json::json;

    fn apply(from: &Value, ops: &[Op<'_>]) -> Value {
        let patch: json_patch::Patch =
            serde_json::from_value(serde_json::to_value(ops).unwrap()).unwrap();
        let mut doc = from.clone();
        json_patch::patch(&mut doc, &patch).unwrap();
        doc
    }

    #[test]
    fn inserting_in_front_of_a_big_container_is_one_add() {
        let env: Vec<Value> = (0..2000)
            .map(|i| json!({"name": format!("VAR_{i}"), "value": format!("value-{i}")}))
            .collect();
        let from = json!({"spec": {"containers": [{"name": "app", "env": env}]}});
        let mut to = from.clone();
        to["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .insert(0, json!({"name": "istio-proxy", "image": "proxy"}));
        let ops = diff(&from, &to);
        assert_eq!(ops.len(), 1, "{ops:?}");
        assert!(serde_json::to_vec(&ops).unwrap().len() < 200);
        assert_eq!(apply(&from, &ops), to);
    }

    #[test]
    fn changed_items_are_patched_in_place() {
        let from = json!({"a": [{"name": "x", "v": 1}, {"name": "y", "v": 2}], "k/e~y": 1});
        let to = json!({"a": [{"name": "y", "v": 3}, {"name": "z"}], "k/e~y": 2});
        let ops = diff(&from, &to);
        assert_eq!(apply(&from, &ops), to);
        assert!(ops.iter().any(|o| o.path == "/k~1e~0y"));
    }

    #[test]
    fn key_order_does_not_make_a_difference() {
        let from: Value = serde_json::from_str(
            r#"{"a": {"x": 1, "y": [1, {"name": "n", "p": 2, "q": 3}]}, "b/c~": 1}"#,
        )
        .unwrap();
        let reordered: Value = serde_json::from_str(
            r#"{"b/c~": 1, "a": {"y": [1, {"q": 3, "p": 2, "name": "n"}], "x": 1}}"#,
        )
        .unwrap();
        assert!(diff(&from, &reordered).is_empty());
        let changed: Value = serde_json::from_str(
            r#"{"b/c~": 2, "a": {"y": [1, {"q": 4, "p": 2, "name": "n"}], "x": 1}}"#,
        )
        .unwrap();
        let ops = diff(&from, &changed);
        let paths: Vec<&str> = ops.iter().map(|o| o.path.as_str()).collect();
        assert_eq!(paths, ["/a/y/1/q", "/b~1c~0"]);
        assert_eq!(apply(&from, &ops), changed);
    }

    #[test]
    fn scalar_arrays_align_by_value() {
        let from = json!(["-p", "15001", "-u", "1337", "-m", "REDIRECT"]);
        let to = json!(["-p", "15001", "-u", "1000", "-m", "REDIRECT"]);
        let ops = diff(&from, &to);
        assert_eq!(apply(&from, &ops), to);
        assert_eq!(ops.len(), 2);
    }

    #[test]
    fn random_edits_round_trip() {
        // A deterministic shuffle of edits over a list of named items.
        let mk = |names: &[u32]| -> Value {
            Value::Array(
                names
                    .iter()
                    .map(|n| json!({"name": n.to_string(), "n": n}))
                    .collect(),
            )
        };
        let mut seed = 7u64;
        for _ in 0..200 {
            let mut next = || {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (seed >> 33) as u32
            };
            let a: Vec<u32> = (0..next() % 12).map(|_| next() % 15).collect();
            let b: Vec<u32> = (0..next() % 12).map(|_| next() % 15).collect();
            let (from, to) = (mk(&a), mk(&b));
            assert_eq!(apply(&from, &diff(&from, &to)), to, "{a:?} -> {b:?}");
        }
    }
}

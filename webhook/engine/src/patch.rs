//! The JSON patch (RFC 6902) from the pod we were given to the injected pod: objects diffed key
//! by key, arrays aligned on item identity (a `name`, else the whole value) with a
//! longest-common-subsequence walk, so inserting the proxy in front of a large container costs
//! one `add`, not a replace of every later element.

use serde::Serialize;

use crate::doc::{Lookup, Members, Node};

/// Past this many cells the LCS table is not worth it: the unmatched middle is replaced.
const LCS_BUDGET: usize = 250_000;

/// One RFC 6902 operation; the value is borrowed from the target document, so building the
/// patch copies nothing but paths.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Op<'a> {
    pub op: &'static str,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<&'a Node<'a>>,
}

impl<'a> Op<'a> {
    fn new(op: &'static str, path: &str, value: Option<&'a Node<'a>>) -> Op<'a> {
        Op {
            op,
            path: path.to_string(),
            value,
        }
    }
}

/// `ops` as a JSON array: the bytes `serde_json::to_vec(ops)` gives (members in order, strings
/// escaped alike), written directly instead of through serde's serializer, whose per-byte
/// string escaping was most of the cost.
pub fn to_json(ops: &[Op<'_>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 * ops.len());
    out.push(b'[');
    for (i, op) in ops.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"op\":");
        write_json_str(&mut out, op.op);
        out.extend_from_slice(b",\"path\":");
        write_json_str(&mut out, &op.path);
        if let Some(value) = op.value {
            out.extend_from_slice(b",\"value\":");
            write_json(&mut out, value);
        }
        out.push(b'}');
    }
    out.push(b']');
    out
}

/// Appends `value` as compact JSON, as serde_json writes it.
fn write_json(out: &mut Vec<u8>, value: &Node<'_>) {
    match value {
        Node::Null => out.extend_from_slice(b"null"),
        Node::Bool(true) => out.extend_from_slice(b"true"),
        Node::Bool(false) => out.extend_from_slice(b"false"),
        // Numbers are few: serde_json's own formatting (itoa, ryu) keeps them exact.
        Node::Number(n) => {
            serde_json::to_writer(&mut *out, n).expect("writing into memory cannot fail")
        }
        Node::String(s) => write_json_str(out, s),
        Node::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json(out, item);
            }
            out.push(b']');
        }
        Node::Object(members) => {
            out.push(b'{');
            for (i, (key, item)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json_str(out, key);
                out.push(b':');
                write_json(out, item);
            }
            out.push(b'}');
        }
    }
}

/// Appends `text` as a JSON string literal, escaped as serde_json escapes: `"`, `\\` and the
/// control characters below U+0020 (`\b \t \n \f \r`, the rest as `\u00xx`); everything
/// else, `<>&` and non-ASCII included, is copied as it is.
#[inline]
pub(crate) fn write_json_str(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    // Most strings (keys, names, images) need no escape: one check, one copy.
    if has_escape(bytes) {
        write_escaped(out, bytes);
    } else {
        out.extend_from_slice(bytes);
    }
    out.push(b'"');
}

/// Whether any byte of `bytes` must be escaped, checked a word at a time: eight-byte words,
/// the last one overlapping the one before, and a short string as two overlapping halves.
fn has_escape(bytes: &[u8]) -> bool {
    // Every chunk handed to these has the length asked for; a missing one reads as all
    // NULs, which sends the string to the exact (slow) path.
    let word = |b: &[u8]| b.first_chunk::<8>().map_or(0, |w| u64::from_le_bytes(*w));
    let half = |b: &[u8]| b.first_chunk::<4>().map_or(0, |w| u32::from_le_bytes(*w));
    let n = bytes.len();
    match n {
        0..4 => bytes.iter().any(|&b| escape(b).is_some()),
        4..8 => {
            let halves = u64::from(half(bytes)) | u64::from(half(&bytes[n - 4..])) << 32;
            escape_flags(halves) != 0
        }
        _ => {
            bytes.chunks_exact(8).any(|w| escape_flags(word(w)) != 0)
                || escape_flags(word(&bytes[n - 8..])) != 0
        }
    }
}

/// Copies the runs between the bytes to escape, and the escapes.
fn write_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut copied = 0;
    while let Some(at) = find_escape(bytes, copied) {
        out.extend_from_slice(&bytes[copied..at]);
        let byte = bytes[at];
        let letter = escape(byte).unwrap_or(b'u');
        out.extend_from_slice(&[b'\\', letter]);
        if letter == b'u' {
            let hex = |nibble: u8| b"0123456789abcdef"[usize::from(nibble)];
            out.extend_from_slice(&[b'0', b'0', hex(byte >> 4), hex(byte & 0xf)]);
        }
        copied = at + 1;
    }
    out.extend_from_slice(&bytes[copied..]);
}

/// The letter after the backslash when `byte` must be escaped (`u` for `\u00xx`).
fn escape(byte: u8) -> Option<u8> {
    match byte {
        b'"' | b'\\' => Some(byte),
        b'\x08' => Some(b'b'),
        b'\t' => Some(b't'),
        b'\n' => Some(b'n'),
        b'\x0c' => Some(b'f'),
        b'\r' => Some(b'r'),
        0..0x20 => Some(b'u'),
        _ => None,
    }
}

/// The index of the first byte at or after `from` that must be escaped. Eight bytes at a time:
/// most strings have nothing to escape, and the long ones (JSON inside annotations and env
/// values) have long runs between escapes.
fn find_escape(bytes: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(word) = bytes.get(at..).and_then(<[u8]>::first_chunk::<8>) {
        let flags = escape_flags(u64::from_le_bytes(*word));
        if flags != 0 {
            // The lowest flag is the first such byte in memory.
            return Some(at + flags.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    let tail = bytes.get(at..)?;
    tail.iter()
        .position(|&b| escape(b).is_some())
        .map(|k| at + k)
}

/// The high bit of each byte of `word` that is `"`, `\\` or below 0x20, by the classic
/// "has a zero byte" trick: a set bit may be spurious only above a truly flagged byte, so the
/// lowest one is always right.
fn escape_flags(word: u64) -> u64 {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    let zero_bytes = |w: u64| w.wrapping_sub(ONES) & !w & HIGHS;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
    let quote = zero_bytes(word ^ (ONES * u64::from(b'"')));
    let backslash = zero_bytes(word ^ (ONES * u64::from(b'\\')));
    below_space | quote | backslash
}

/// The operations turning `from` (the pod as it was given) into `to`.
pub fn diff<'a>(from: &Node<'_>, to: &'a Node<'a>) -> Vec<Op<'a>> {
    let mut ops = Vec::new();
    diff_into(from, to, &mut String::new(), &mut ops);
    ops
}

/// Appends `/key` to `path`, escaped as RFC 6901 says (`~` → `~0`, `/` → `~1`).
fn push_key(path: &mut String, key: &str) {
    path.push('/');
    // Copies the runs between the two (ASCII) characters to escape; most keys have neither.
    let mut copied = 0;
    for (at, byte) in key.bytes().enumerate() {
        let escaped = match byte {
            b'~' => "~0",
            b'/' => "~1",
            _ => continue,
        };
        path.push_str(&key[copied..at]);
        path.push_str(escaped);
        copied = at + 1;
    }
    path.push_str(&key[copied..]);
}

/// Appends `/at`, spelled without the formatting machinery.
fn push_index(path: &mut String, at: usize) {
    path.push('/');
    path.push_str(itoa::Buffer::new().format(at));
}

/// Diffs two values at `path`. Equal subtrees produce no operations; nothing is compared twice
/// (no equality pre-check before descending).
fn diff_into<'a>(from: &Node<'_>, to: &'a Node<'a>, path: &mut String, ops: &mut Vec<Op<'a>>) {
    match (from, to) {
        (Node::Object(a), Node::Object(b)) => diff_objects(a, b, path, ops),
        (Node::Array(a), Node::Array(b)) => diff_arrays(a, b, path, ops),
        _ if from == to => {}
        _ => ops.push(Op::new("replace", path, Some(to))),
    }
}

/// Whether two values are equal scalars, which need no path to be written to know it.
fn equal_scalars(a: &Node<'_>, b: &Node<'_>) -> bool {
    !matches!(
        (a, b),
        (Node::Object(_), Node::Object(_)) | (Node::Array(_), Node::Array(_))
    ) && a == b
}

fn diff_member<'a>(
    key: &str,
    from: &Node<'_>,
    to: &'a Node<'a>,
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

fn diff_objects<'a>(a: &Members<'_>, b: &'a Members<'a>, path: &mut String, ops: &mut Vec<Op<'a>>) {
    // The usual case: the target keeps the source's keys in order and appends new ones. Walk
    // both in step (no look-ups); the operations come out as the general walk below gives them.
    let common = a
        .iter()
        .zip(b.iter())
        .take_while(|((x, _), (y, _))| x == y)
        .count();
    if common == a.len() {
        for ((k, av), (_, bv)) in a.iter().zip(b.iter()) {
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
    // Keys out of step: look each up in the other object (indexed when large).
    let len = path.len();
    let (in_a, in_b) = (Lookup::new(a), Lookup::new(b));
    for (k, av) in a.iter() {
        match in_b.get(k) {
            Some(bv) => diff_member(k, av, bv, path, ops),
            None => {
                push_key(path, k);
                ops.push(Op::new("remove", path, None));
                path.truncate(len);
            }
        }
    }
    for (k, bv) in b.iter() {
        if in_a.get(k).is_none() {
            push_key(path, k);
            ops.push(Op::new("add", path, Some(bv)));
            path.truncate(len);
        }
    }
}

/// What makes two array items "the same item" for alignment: a `name`, else the whole value.
enum Identity<'n, 'a> {
    Name(&'n str),
    Whole(&'n Node<'a>),
}

fn identity<'n, 'a>(v: &'n Node<'a>) -> Identity<'n, 'a> {
    match v.get("name").and_then(Node::as_str) {
        Some(name) => Identity::Name(name),
        None => Identity::Whole(v),
    }
}

fn same_item(a: &Identity<'_, '_>, b: &Identity<'_, '_>) -> bool {
    match (a, b) {
        (Identity::Name(x), Identity::Name(y)) => x == y,
        (Identity::Whole(x), Identity::Whole(y)) => x == y,
        _ => false,
    }
}

enum Edit {
    Keep(usize, usize),
    Delete(usize),
    Insert(usize),
}

fn diff_arrays<'a>(a: &[Node<'_>], b: &'a [Node<'a>], path: &mut String, ops: &mut Vec<Op<'a>>) {
    // Most arrays come through unchanged (a container's env, ports, …): one ordered walk says
    // so before any alignment work.
    if a == b {
        return;
    }
    let prefix = a
        .iter()
        .zip(b)
        .take_while(|(x, y)| same_item(&identity(x), &identity(y)))
        .count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| same_item(&identity(x), &identity(y)))
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
            && a[i] == b[j]
        {
            at += 1;
            continue;
        }
        path.truncate(len);
        push_index(path, at);
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
fn align(a: &[Node<'_>], b: &[Node<'_>]) -> Vec<Edit> {
    let (n, m) = (a.len(), b.len());
    if n == 0 || m == 0 || n * m > LCS_BUDGET {
        let mut out: Vec<Edit> = (0..n).map(Edit::Delete).collect();
        out.extend((0..m).map(Edit::Insert));
        return out;
    }
    let ia: Vec<_> = a.iter().map(identity).collect();
    let ib: Vec<_> = b.iter().map(identity).collect();
    // lcs[i][j] = LCS length of a[i..] and b[j..].
    let mut lcs = vec![0u32; (n + 1) * (m + 1)];
    let at = |i: usize, j: usize| i * (m + 1) + j;
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[at(i, j)] = if same_item(&ia[i], &ib[j]) {
                lcs[at(i + 1, j + 1)] + 1
            } else {
                lcs[at(i + 1, j)].max(lcs[at(i, j + 1)])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(n.max(m));
    while i < n && j < m {
        if same_item(&ia[i], &ib[j]) {
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
    use serde_json::{Map, Value, json};

    use crate::lcg;

    fn apply(from: &Value, ops: &[Op<'_>]) -> Value {
        let patch: json_patch::Patch =
            serde_json::from_value(serde_json::to_value(ops).unwrap()).unwrap();
        let mut doc = from.clone();
        json_patch::patch(&mut doc, &patch).unwrap();
        doc
    }

    /// Strings that exercise every escape class, at every offset within an 8-byte word.
    fn awkward_strings() -> Vec<String> {
        let mut out: Vec<String> = [
            "",
            "plain ascii text longer than one word",
            "quote\" backslash\\ slash/ <tag> & amp",
            "tab\t nl\n cr\r bs\u{8} ff\u{c} nul\u{0} us\u{1f} del\u{7f}",
            "non-ASCII: é ü 日本語 🚀 \u{2028}\u{2029}",
        ]
        .map(String::from)
        .into();
        out.push((0u8..0x80).map(char::from).collect());
        for special in ['"', '\\', '\n', '\u{1}', 'é', ' '] {
            for at in 0..17 {
                let mut s = "x".repeat(at);
                s.push(special);
                s.push_str(&"y".repeat(17 - at));
                out.push(s);
            }
        }
        out
    }

    #[test]
    fn json_strings_are_escaped_as_serde_json_escapes_them() {
        for s in awkward_strings() {
            let mut out = Vec::new();
            write_json_str(&mut out, &s);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(&s).unwrap()
            );
        }
        // Random mixes of the byte classes, each as one string.
        let alphabet = [
            'a', 'Z', ' ', '"', '\\', '\u{0}', '\u{1f}', '\t', '\u{7f}', 'é', '€', '😀',
        ];
        let mut next = lcg(11);
        for _ in 0..2000 {
            let len = next() % 40;
            let s: String = (0..len)
                .map(|_| alphabet[next() % alphabet.len()])
                .collect();
            let mut out = Vec::new();
            write_json_str(&mut out, &s);
            assert_eq!(out, serde_json::to_vec(&s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn patch_json_is_the_bytes_serde_json_writes() {
        let strings = awkward_strings();
        let object: Map<String, Value> = strings
            .iter()
            .map(|s| (s.clone(), Value::String(s.clone())))
            .collect();
        let values = [
            json!(null),
            json!(true),
            json!(false),
            json!(0),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(-1),
            json!(0.1),
            json!(-0.0),
            json!(1e300),
            json!(2.5e-8),
            json!(15020.0),
            json!([]),
            json!({}),
            json!([[], {}, [null, 1, "a"], {"k": {"n": [1.5, -2]}}]),
            Value::Object(object),
            Value::Array(strings.iter().cloned().map(Value::String).collect()),
        ];
        let nodes: Vec<Node> = values.iter().map(Node::view).collect();
        let mut ops: Vec<Op<'_>> = nodes
            .iter()
            .zip(["add", "replace"].into_iter().cycle())
            .map(|(v, op)| Op::new(op, "/spec/containers/0", Some(v)))
            .collect();
        ops.push(Op::new("remove", "/metadata/annotations/a~1b\"c", None));
        for ops in [&ops[..], &ops[..1], &[]] {
            assert_eq!(
                String::from_utf8(to_json(ops)).unwrap(),
                serde_json::to_string(ops).unwrap()
            );
        }
    }

    #[test]
    fn large_objects_out_of_order_diff_key_by_key() {
        // 50,000 keys in reverse order, one changed, one gone, one new: three operations (a
        // scan per key would be 2.5 billion comparisons; the index keeps it linear).
        let n = 50_000;
        let from: Map<String, Value> = (0..n).map(|i| (format!("k{i}"), json!(i))).collect();
        let mut to: Map<String, Value> =
            (0..n).rev().map(|i| (format!("k{i}"), json!(i))).collect();
        to.insert("k7".into(), json!("changed"));
        to.shift_remove("k8");
        to.insert("new".into(), json!(true));
        let (from, to) = (
            json!({"spec": {"nodeSelector": from}}),
            json!({"spec": {"nodeSelector": to}}),
        );
        let target = Node::view(&to);
        let ops = diff(&Node::view(&from), &target);
        assert_eq!(ops.len(), 3, "{:?}", &ops[..ops.len().min(5)]);
        assert_eq!(apply(&from, &ops), to);
        assert!(Node::view(&from) != Node::view(&to));
        assert!(Node::view(&to) == target);
        let reversed: Map<String, Value> =
            (0..n).rev().map(|i| (format!("k{i}"), json!(i))).collect();
        let (from, reversed) = (&from["spec"]["nodeSelector"], Value::Object(reversed));
        assert!(
            Node::view(from) == Node::view(&reversed),
            "equal in any order"
        );
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
        let target = Node::view(&to);
        let ops = diff(&Node::view(&from), &target);
        assert_eq!(ops.len(), 1, "{ops:?}");
        assert!(serde_json::to_vec(&ops).unwrap().len() < 200);
        assert_eq!(apply(&from, &ops), to);
    }

    #[test]
    fn changed_items_are_patched_in_place() {
        let from = json!({"a": [{"name": "x", "v": 1}, {"name": "y", "v": 2}], "k/e~y": 1});
        let to = json!({"a": [{"name": "y", "v": 3}, {"name": "z"}], "k/e~y": 2});
        let target = Node::view(&to);
        let ops = diff(&Node::view(&from), &target);
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
        assert!(diff(&Node::view(&from), &Node::view(&reordered)).is_empty());
        let changed: Value = serde_json::from_str(
            r#"{"b/c~": 2, "a": {"y": [1, {"q": 4, "p": 2, "name": "n"}], "x": 1}}"#,
        )
        .unwrap();
        let target = Node::view(&changed);
        let ops = diff(&Node::view(&from), &target);
        let paths: Vec<&str> = ops.iter().map(|o| o.path.as_str()).collect();
        assert_eq!(paths, ["/a/y/1/q", "/b~1c~0"]);
        assert_eq!(apply(&from, &ops), changed);
    }

    #[test]
    fn array_indexes_are_spelled_in_decimal() {
        let from = Value::Array((0..1200).map(|i| json!({"name": i.to_string()})).collect());
        let mut to = from.clone();
        for i in [0, 9, 10, 105, 1000, 1199] {
            to[i]["v"] = json!(i);
        }
        let target = Node::view(&to);
        let ops = diff(&Node::view(&from), &target);
        let paths: Vec<&str> = ops.iter().map(|o| o.path.as_str()).collect();
        assert_eq!(
            paths,
            ["/0/v", "/9/v", "/10/v", "/105/v", "/1000/v", "/1199/v"]
        );
        assert_eq!(apply(&from, &ops), to);
    }

    #[test]
    fn scalar_arrays_align_by_value() {
        let from = json!(["-p", "15001", "-u", "1337", "-m", "REDIRECT"]);
        let to = json!(["-p", "15001", "-u", "1000", "-m", "REDIRECT"]);
        let target = Node::view(&to);
        let ops = diff(&Node::view(&from), &target);
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
        let mut next = lcg(7);
        for _ in 0..200 {
            let a: Vec<u32> = (0..next() % 12).map(|_| (next() % 15) as u32).collect();
            let b: Vec<u32> = (0..next() % 12).map(|_| (next() % 15) as u32).collect();
            let (from, to) = (mk(&a), mk(&b));
            assert_eq!(
                apply(&from, &diff(&Node::view(&from), &Node::view(&to))),
                to,
                "{a:?} -> {b:?}"
            );
        }
    }
}

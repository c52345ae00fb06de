//! The JSON tree a pod goes through injection as: the request's pod, the working copy, every
//! rendered partial pod, and the patch's two sides.
//!
//! The webhook reads the request's pod once into a [`Node`] tree whose keys and strings borrow
//! from the request body; the working pod is a copy of it, whose strings stay borrowed until
//! something changes them. Objects are vectors of members searched by comparing keys: a pod's
//! objects are small, and this costs no hashing and one allocation per object, where a
//! `serde_json::Value` hashes every key into an `IndexMap` (its build, copy and drop cost
//! about twice as many instructions as this tree's).
//!
//! The tree means what the `Value` means: a repeated key keeps its first place and its last
//! value (what `Map::insert` does), removal follows `Map::remove` or `shift_remove` as asked,
//! and objects compare equal regardless of member order.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// One JSON value of the original document.
#[derive(Debug, Clone, PartialEq)]
pub enum Node<'a> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    Array(Vec<Node<'a>>),
    Object(Members<'a>),
}

/// An object's members in order, each key once; read through `Deref` as a slice. Changed with
/// `serde_json::Map`'s meanings: `insert` keeps a present key's place, `swap_remove` is what
/// `Map::remove` does with `preserve_order`, `shift_remove` keeps the others' order.
#[derive(Debug, Clone, Default)]
pub struct Members<'a> {
    items: Vec<(Cow<'a, str>, Node<'a>)>,
}

impl<'a> std::ops::Deref for Members<'a> {
    type Target = [(Cow<'a, str>, Node<'a>)];
    fn deref(&self) -> &Self::Target {
        &self.items
    }
}

/// Equal when the same keys hold equal values, in any order (as `Value`'s objects compare).
impl PartialEq for Members<'_> {
    fn eq(&self, other: &Self) -> bool {
        if self.len() != other.len() {
            return false;
        }
        for (i, ((ka, va), (kb, vb))) in self.iter().zip(other.iter()).enumerate() {
            if ka != kb {
                let other = Lookup::new(other);
                return self[i..]
                    .iter()
                    .all(|(k, v)| other.get(k).is_some_and(|w| v == w));
            }
            if va != vb {
                return false;
            }
        }
        true
    }
}

impl<'a> IntoIterator for Members<'a> {
    type Item = (Cow<'a, str>, Node<'a>);
    type IntoIter = std::vec::IntoIter<(Cow<'a, str>, Node<'a>)>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

/// Members from pairs, a repeated key keeping its first place and its last value.
impl<'a, K: Into<Cow<'a, str>>> FromIterator<(K, Node<'a>)> for Members<'a> {
    fn from_iter<I: IntoIterator<Item = (K, Node<'a>)>>(pairs: I) -> Self {
        let mut items: Vec<_> = pairs.into_iter().map(|(k, v)| (k.into(), v)).collect();
        if has_repeated_key(&items) {
            keep_last_values(&mut items);
        }
        Members { items }
    }
}

impl<'a> Members<'a> {
    /// Members known to have distinct keys (a parsed object, a filtered copy of one).
    pub(crate) fn from_distinct(items: Vec<(Cow<'a, str>, Node<'a>)>) -> Members<'a> {
        Members { items }
    }

    /// Members from pairs, or `None` when a key repeats.
    pub(crate) fn distinct(items: Vec<(Cow<'a, str>, Node<'a>)>) -> Option<Members<'a>> {
        (!has_repeated_key(&items)).then_some(Members { items })
    }

    pub fn get(&self, key: &str) -> Option<&Node<'a>> {
        self.items.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node<'a>> {
        self.items
            .iter_mut()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key`: in place when present (the old value returned), else appended.
    pub fn insert(&mut self, key: impl Into<Cow<'a, str>>, value: Node<'a>) -> Option<Node<'a>> {
        let key = key.into();
        match self.items.iter_mut().find(|(k, _)| *k == key) {
            Some((_, old)) => Some(std::mem::replace(old, value)),
            None => {
                self.items.push((key, value));
                None
            }
        }
    }

    /// The member `key`, appended from `make` when missing.
    pub fn entry(&mut self, key: &str, make: impl FnOnce() -> Node<'a>) -> &mut Node<'a> {
        let at = match self.items.iter().position(|(k, _)| k == key) {
            Some(at) => at,
            None => {
                self.items.push((Cow::Owned(key.to_owned()), make()));
                self.items.len() - 1
            }
        };
        &mut self.items[at].1
    }

    /// `Map::remove` with `preserve_order`: the last member takes the removed one's place.
    pub fn swap_remove(&mut self, key: &str) -> Option<Node<'a>> {
        let at = self.items.iter().position(|(k, _)| k == key)?;
        Some(self.items.swap_remove(at).1)
    }

    /// Removes `key`, keeping the order of the rest.
    pub fn shift_remove(&mut self, key: &str) -> Option<Node<'a>> {
        let at = self.items.iter().position(|(k, _)| k == key)?;
        Some(self.items.remove(at).1)
    }

    pub fn retain(&mut self, mut keep: impl FnMut(&str, &mut Node<'a>) -> bool) {
        self.items.retain_mut(|(k, v)| keep(k, v));
    }

    pub fn iter_mut(&mut self) -> std::slice::IterMut<'_, (Cow<'a, str>, Node<'a>)> {
        self.items.iter_mut()
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.items.iter().map(|(k, _)| &**k)
    }

    pub fn values(&self) -> impl Iterator<Item = &Node<'a>> {
        self.items.iter().map(|(_, v)| v)
    }
}

/// Many look-ups in one object: a scan while it is small, a hash index built once when it is
/// large, so that comparing or diffing two large objects stays linear in their size.
pub struct Lookup<'m, 'a> {
    members: &'m Members<'a>,
    index: Option<HashMap<&'m str, usize>>,
}

impl<'m, 'a> Lookup<'m, 'a> {
    pub fn new(members: &'m Members<'a>) -> Lookup<'m, 'a> {
        let index = (members.len() > crate::LINEAR_LOOKUP).then(|| {
            members
                .iter()
                .enumerate()
                .map(|(at, (k, _))| (&**k, at))
                .collect()
        });
        Lookup { members, index }
    }

    pub fn get(&self, key: &str) -> Option<&'m Node<'a>> {
        match &self.index {
            Some(index) => index.get(key).map(|&at| &self.members[at].1),
            None => self.members.get(key),
        }
    }
}

/// Objects up to this size are checked for repeated keys pairwise; larger ones by sorting.
const PAIRWISE: usize = 16;

impl<'a> Node<'a> {
    /// A tree over `value`, borrowing its keys and strings.
    pub fn view(value: &'a Value) -> Node<'a> {
        match value {
            Value::Null => Node::Null,
            Value::Bool(b) => Node::Bool(*b),
            Value::Number(n) => Node::Number(n.clone()),
            Value::String(s) => Node::String(Cow::Borrowed(s)),
            Value::Array(items) => Node::Array(items.iter().map(Node::view).collect()),
            Value::Object(members) => Node::Object(Members::from_distinct(
                members
                    .iter()
                    .map(|(k, v)| (Cow::Borrowed(k.as_str()), Node::view(v)))
                    .collect(),
            )),
        }
    }

    /// `value` as a tree of its own, its strings moved rather than copied.
    pub fn from_value(value: Value) -> Node<'static> {
        match value {
            Value::Null => Node::Null,
            Value::Bool(b) => Node::Bool(b),
            Value::Number(n) => Node::Number(n),
            Value::String(s) => Node::String(Cow::Owned(s)),
            Value::Array(items) => Node::Array(items.into_iter().map(Node::from_value).collect()),
            Value::Object(members) => Node::Object(Members::from_distinct(
                members
                    .into_iter()
                    .map(|(k, v)| (Cow::Owned(k), Node::from_value(v)))
                    .collect(),
            )),
        }
    }

    /// The same tree owning all of its strings.
    pub fn into_owned(self) -> Node<'static> {
        match self {
            Node::Null => Node::Null,
            Node::Bool(b) => Node::Bool(b),
            Node::Number(n) => Node::Number(n),
            Node::String(s) => Node::String(Cow::Owned(s.into_owned())),
            Node::Array(items) => Node::Array(items.into_iter().map(Node::into_owned).collect()),
            Node::Object(members) => Node::Object(Members::from_distinct(
                members
                    .items
                    .into_iter()
                    .map(|(k, v)| (Cow::Owned(k.into_owned()), v.into_owned()))
                    .collect(),
            )),
        }
    }

    /// Reads one JSON document, borrowing every string that has no escape from `text`.
    pub fn parse(text: &'a str) -> Result<Node<'a>, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_str(text);
        let node = Seed(&mut Scratch::default()).deserialize(&mut de)?;
        de.end()?;
        Ok(node)
    }

    /// The same document as an owned `Value`.
    pub fn to_value(&self) -> Value {
        match self {
            Node::Null => Value::Null,
            Node::Bool(b) => Value::Bool(*b),
            Node::Number(n) => Value::Number(n.clone()),
            Node::String(s) => Value::String(String::from(&**s)),
            Node::Array(items) => Value::Array(items.iter().map(Node::to_value).collect()),
            Node::Object(members) => Value::Object(
                members
                    .iter()
                    .map(|(k, v)| (String::from(&**k), v.to_value()))
                    .collect(),
            ),
        }
    }

    /// An empty object.
    pub fn object() -> Node<'a> {
        Node::Object(Members::default())
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Node::Number(n) => n.as_i64(),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Node::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Node<'a>]> {
        match self {
            Node::Array(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_array_mut(&mut self) -> Option<&mut Vec<Node<'a>>> {
        match self {
            Node::Array(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&Members<'a>> {
        match self {
            Node::Object(members) => Some(members),
            _ => None,
        }
    }

    pub fn as_object_mut(&mut self) -> Option<&mut Members<'a>> {
        match self {
            Node::Object(members) => Some(members),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Node::Null)
    }

    pub fn is_object(&self) -> bool {
        matches!(self, Node::Object(_))
    }

    pub fn is_array(&self) -> bool {
        matches!(self, Node::Array(_))
    }

    /// The member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Node<'a>> {
        self.as_object()?.get(key)
    }

    /// [`Node::get`], mutably.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node<'a>> {
        self.as_object_mut()?.get_mut(key)
    }

    /// The value under `keys` (object members only).
    pub fn at(&self, keys: &[&str]) -> Option<&Node<'a>> {
        keys.iter().try_fold(self, |node, key| node.get(key))
    }

    /// [`Node::at`], mutably.
    pub fn at_mut(&mut self, keys: &[&str]) -> Option<&mut Node<'a>> {
        keys.iter().try_fold(self, |node, key| node.get_mut(key))
    }

    /// The `name` member ("" when there is none): what identifies a container or volume.
    pub fn name(&self) -> &str {
        self.get("name").and_then(Node::as_str).unwrap_or("")
    }

    /// The pod's `spec.<field>` list (empty when absent or not a list).
    pub fn list(&self, field: &str) -> &[Node<'a>] {
        self.at(&["spec", field])
            .and_then(Node::as_array)
            .unwrap_or(&[])
    }

    /// The pod's `spec.<field>` list, mutably, when it is one.
    pub fn list_mut(&mut self, field: &str) -> Option<&mut Vec<Node<'a>>> {
        self.at_mut(&["spec", field])?.as_array_mut()
    }

    /// A metadata value as text: strings as they are, null as empty, anything else as JSON.
    pub fn text(&self) -> Cow<'_, str> {
        match self {
            Node::String(s) => Cow::Borrowed(s),
            Node::Null => Cow::Borrowed(""),
            other => Cow::Owned(other.to_value().to_string()),
        }
    }

    /// Sets member `key` of an object: in place when present, else appended (`Map::insert`).
    pub fn insert(&mut self, key: impl Into<Cow<'a, str>>, value: Node<'a>) {
        if let Node::Object(members) = self {
            members.insert(key, value);
        }
    }

    /// Removes member `key` of an object as `Map::remove` does with `preserve_order`: the last
    /// member takes its place.
    pub fn remove(&mut self, key: &str) -> Option<Node<'a>> {
        self.as_object_mut()?.swap_remove(key)
    }

    /// The object member `key`, made an empty object when it is missing or not an object.
    pub fn object_member(&mut self, key: &str) -> &mut Members<'a> {
        let members = match self {
            Node::Object(members) => members,
            other => {
                *other = Node::object();
                other.as_object_mut().expect("just made an object")
            }
        };
        let member = members.entry(key, Node::object);
        if !member.is_object() {
            *member = Node::object();
        }
        member.as_object_mut().expect("just made an object")
    }

    /// `self == value` with `Value`'s meaning. Objects whose keys come in the same order (the
    /// usual case: the injected pod keeps the original's order) are compared pairwise instead
    /// of by look-ups.
    pub fn eq_value(&self, value: &Value) -> bool {
        match (self, value) {
            (Node::Null, Value::Null) => true,
            (Node::Bool(a), Value::Bool(b)) => a == b,
            (Node::Number(a), Value::Number(b)) => a == b,
            (Node::String(a), Value::String(b)) => **a == **b,
            (Node::Array(a), Value::Array(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.eq_value(y))
            }
            (Node::Object(a), Value::Object(b)) => {
                if a.len() != b.len() {
                    return false;
                }
                for ((ka, va), (kb, vb)) in a.iter().zip(b) {
                    if **ka != **kb {
                        return members_eq(a, b);
                    }
                    if !va.eq_value(vb) {
                        return false;
                    }
                }
                true
            }
            _ => false,
        }
    }
}

/// JSON text, as `Value` prints it (for messages).
impl std::fmt::Display for Node<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.to_value().fmt(f)
    }
}

/// An object from pairs, a repeated key keeping its first place and its last value.
impl<'a, K: Into<Cow<'a, str>>> FromIterator<(K, Node<'a>)> for Node<'a> {
    fn from_iter<I: IntoIterator<Item = (K, Node<'a>)>>(pairs: I) -> Self {
        Node::Object(pairs.into_iter().collect())
    }
}

/// Templates read the pod straight from the tree.
impl gotmpl::Json for Node<'_> {
    fn kind(&self) -> gotmpl::JsonKind<'_, Self> {
        use gotmpl::JsonKind;
        match self {
            Node::Null => JsonKind::Null,
            Node::Bool(b) => JsonKind::Bool(*b),
            Node::Number(n) => JsonKind::Number(n),
            Node::String(s) => JsonKind::String(s),
            Node::Array(items) => JsonKind::Array(items),
            Node::Object(_) => JsonKind::Object,
        }
    }

    fn members(&self) -> impl Iterator<Item = (&str, &Self)> {
        let members: &[_] = match self {
            Node::Object(members) => members,
            _ => &[],
        };
        members.iter().map(|(k, v)| (&**k, v))
    }
}

impl serde::Serialize for Node<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Null => s.serialize_unit(),
            Node::Bool(b) => s.serialize_bool(*b),
            Node::Number(n) => n.serialize(s),
            Node::String(text) => s.serialize_str(text),
            Node::Array(items) => s.collect_seq(items),
            Node::Object(members) => s.collect_map(members.iter().map(|(k, v)| (&**k, v))),
        }
    }
}

impl From<i64> for Node<'_> {
    fn from(n: i64) -> Self {
        Node::Number(n.into())
    }
}

impl From<bool> for Node<'_> {
    fn from(b: bool) -> Self {
        Node::Bool(b)
    }
}

impl From<String> for Node<'_> {
    fn from(s: String) -> Self {
        Node::String(Cow::Owned(s))
    }
}

impl<'a> From<&'a str> for Node<'a> {
    fn from(s: &'a str) -> Self {
        Node::String(Cow::Borrowed(s))
    }
}

impl<'a> From<Vec<Node<'a>>> for Node<'a> {
    fn from(items: Vec<Node<'a>>) -> Self {
        Node::Array(items)
    }
}

/// Equal objects of the same size, in any order.
fn members_eq(a: &[(Cow<'_, str>, Node<'_>)], b: &Map<String, Value>) -> bool {
    a.iter()
        .all(|(k, v)| crate::member(b, k).is_some_and(|w| v.eq_value(w)))
}

impl<'de> de::Deserialize<'de> for Node<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Seed(&mut Scratch::default()).deserialize(deserializer)
    }
}

/// Members read but not yet placed in their object, and items not yet in their array: one
/// stack for the whole document, so each object and array is allocated once, at its size.
#[derive(Default)]
struct Scratch<'a> {
    members: Vec<(Cow<'a, str>, Node<'a>)>,
    items: Vec<Node<'a>>,
}

struct Seed<'s, 'a>(&'s mut Scratch<'a>);

impl<'de> DeserializeSeed<'de> for Seed<'_, 'de> {
    type Value = Node<'de>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Node<'de>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_, 'de> {
    type Value = Node<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any valid JSON value")
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Node<'de>, E> {
        Ok(Node::Bool(b))
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Node<'de>, E> {
        Ok(Node::Number(n.into()))
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Node<'de>, E> {
        Ok(Node::Number(n.into()))
    }
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Node<'de>, E> {
        // As serde_json: a float with no JSON spelling (never produced by its parser) is null.
        Ok(Number::from_f64(n).map_or(Node::Null, Node::Number))
    }
    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Node<'de>, E> {
        Ok(Node::String(Cow::Borrowed(s)))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Node<'de>, E> {
        Ok(Node::String(Cow::Owned(s.to_owned())))
    }
    fn visit_string<E: de::Error>(self, s: String) -> Result<Node<'de>, E> {
        Ok(Node::String(Cow::Owned(s)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node<'de>, E> {
        Ok(Node::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Node<'de>, E> {
        Ok(Node::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Node<'de>, A::Error> {
        let scratch = self.0;
        let start = scratch.items.len();
        while let Some(item) = items.next_element_seed(Seed(&mut *scratch))? {
            scratch.items.push(item);
        }
        Ok(Node::Array(scratch.items.drain(start..).collect()))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut members: A) -> Result<Node<'de>, A::Error> {
        let scratch = self.0;
        let start = scratch.members.len();
        while let Some(Key(key)) = members.next_key()? {
            let value = members.next_value_seed(Seed(&mut *scratch))?;
            scratch.members.push((key, value));
        }
        let mut object: Vec<_> = scratch.members.drain(start..).collect();
        if has_repeated_key(&object) {
            keep_last_values(&mut object);
        }
        Ok(Node::Object(Members::from_distinct(object)))
    }
}

/// An object key, borrowed from the text when it has no escape.
struct Key<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a string key")
    }
    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Borrowed(s)))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Owned(s.to_owned())))
    }
    fn visit_string<E: de::Error>(self, s: String) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Owned(s)))
    }
}

/// Whether a key appears twice: pairwise in a small object, through a set in a large one (so
/// a crafted object of many keys costs linear time, not quadratic).
fn has_repeated_key(members: &[(Cow<'_, str>, Node<'_>)]) -> bool {
    if members.len() <= PAIRWISE {
        members
            .iter()
            .enumerate()
            .any(|(i, (k, _))| members[..i].iter().any(|(j, _)| j == k))
    } else {
        let mut seen = HashSet::with_capacity(members.len());
        !members.iter().all(|(k, _)| seen.insert(&**k))
    }
}

/// Folds repeated keys as `Map::insert` does: the first place, the last value.
fn keep_last_values(members: &mut Vec<(Cow<'_, str>, Node<'_>)>) {
    let mut kept: Vec<(Cow<'_, str>, Node<'_>)> = Vec::with_capacity(members.len());
    let mut place = std::collections::HashMap::with_capacity(members.len());
    for (key, value) in members.drain(..) {
        match place.get(&key) {
            Some(&at) => {
                let slot: &mut (Cow<'_, str>, Node<'_>) = &mut kept[at];
                slot.1 = value;
            }
            None => {
                place.insert(key.clone(), kept.len());
                kept.push((key, value));
            }
        }
    }
    *members = kept;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsed_documents_mean_what_serde_json_reads() {
        let docs = [
            r#"{"a": 1, "b": [1, -2, 3.5, 1.7976931348623157e308, 5e-324, -0.0, 18446744073709551615, -9223372036854775808], "c": null}"#,
            r#"{"k": 1, "j": {"x": [], "y": {}}, "k": 2, "z": [[[]], [{}], {"q": [true, false]}], "j": 3}"#,
            r#"[{"name": "a\"b\\c\u00e9\ud83d\ude80\n", "n\u0061me": "escaped key"}, "", [], {}, 0]"#,
            r#""just a string""#,
            "17",
            "null",
            r#"{"deep": [[[[[[[[[[[[[[{"x": [1, {"y": 2}]}]]]]]]]]]]]]]]}"#,
        ];
        for doc in docs {
            let want: Value = serde_json::from_str(doc).unwrap();
            let node = Node::parse(doc).unwrap();
            // Same text: same members, same order, same numbers.
            assert_eq!(node.to_value().to_string(), want.to_string(), "{doc}");
            assert!(node.eq_value(&want), "{doc}");
            assert_eq!(Node::view(&want), node, "{doc}");
        }
    }

    #[test]
    fn strings_without_escapes_are_borrowed() {
        let node = Node::parse(r#"{"name": "web", "note": "a\tb"}"#).unwrap();
        let Node::Object(members) = &node else {
            panic!("an object")
        };
        assert!(matches!(members[0].0, Cow::Borrowed("name")));
        assert!(matches!(members[0].1, Node::String(Cow::Borrowed("web"))));
        assert!(matches!(&members[1].1, Node::String(Cow::Owned(s)) if s == "a\tb"));
    }

    #[test]
    fn repeated_keys_keep_first_place_and_last_value_in_objects_of_any_size() {
        let small = r#"{"a": 1, "b": 2, "a": 3}"#;
        let mut large = String::from("{");
        for i in 0..100 {
            large.push_str(&format!("\"k{}\": {i},", i % 60));
        }
        large.push_str("\"end\": true}");
        for doc in [small, &large] {
            let want: Value = serde_json::from_str(doc).unwrap();
            assert_eq!(
                Node::parse(doc).unwrap().to_value().to_string(),
                want.to_string()
            );
        }
    }

    #[test]
    fn a_changed_view_builds_the_changed_value() {
        let value = serde_json::json!({
            "metadata": {"name": "p", "managedFields": [{"manager": "m"}]},
            "spec": {"containers": [{"name": "app", "securityContext": {"runAsUser": 1}}]},
        });
        let mut node = Node::view(&value);
        assert_eq!(
            node.to_value(),
            value,
            "unchanged: the mirrored maps, copied"
        );
        let meta = node.get_mut("metadata").unwrap();
        meta.remove("managedFields");
        meta.insert("namespace", Node::String("ns".into()));
        if let Some(Node::Array(containers)) =
            node.get_mut("spec").and_then(|s| s.get_mut("containers"))
        {
            containers[0]
                .get_mut("securityContext")
                .unwrap()
                .remove("runAsUser");
        }
        let want = serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "spec": {"containers": [{"name": "app", "securityContext": {}}]},
        });
        assert_eq!(node.to_value().to_string(), want.to_string());
        assert!(node.eq_value(&want));
    }

    /// Random JSON text: every kind of value, escapes in keys and strings, keys drawn from a
    /// small set so objects repeat them, and now and then an object large enough for the set.
    fn random_doc(next: &mut impl FnMut() -> usize, depth: usize, out: &mut String) {
        const KEYS: [&str; 6] = ["name", "a", r"n\u0061me", "image", r"k\\", "env"];
        const TEXTS: [&str; 6] = [
            "",
            "web",
            r#"tab\tquote\""#,
            r"\u00e9\ud83d\ude80",
            "a/b",
            "9",
        ];
        const NUMBERS: [&str; 6] = ["0", "-1", "18446744073709551615", "-0.0", "1.5e300", "80"];
        match next() % if depth == 0 { 4 } else { 6 } {
            0 => out.push_str(["null", "true", "false"][next() % 3]),
            1 => out.push_str(NUMBERS[next() % NUMBERS.len()]),
            2 | 3 => {
                out.push('"');
                out.push_str(TEXTS[next() % TEXTS.len()]);
                out.push('"');
            }
            4 => {
                out.push('[');
                for i in 0..next() % 4 {
                    if i > 0 {
                        out.push(',');
                    }
                    random_doc(next, depth - 1, out);
                }
                out.push(']');
            }
            _ => {
                let large = next().is_multiple_of(8);
                let members = if large { 20 + next() % 30 } else { next() % 7 };
                out.push('{');
                for i in 0..members {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push('"');
                    out.push_str(KEYS[next() % KEYS.len()]);
                    if large {
                        out.push_str(&(next() % 25).to_string());
                    }
                    out.push_str("\":");
                    random_doc(next, depth - 1, out);
                }
                out.push('}');
            }
        }
    }

    #[test]
    fn random_documents_read_as_serde_json_reads_them() {
        let mut next = crate::lcg(7);
        for _ in 0..2000 {
            let mut text = String::new();
            random_doc(&mut next, 4, &mut text);
            let want: Value = serde_json::from_str(&text).unwrap();
            let node = Node::parse(&text).unwrap();
            assert_eq!(node.to_value().to_string(), want.to_string(), "{text}");
            assert!(node.eq_value(&want), "{text}");
            assert!(
                crate::patch::diff(&node, &Node::view(&want)).is_empty(),
                "{text}"
            );
        }
    }

    #[test]
    fn errors_are_serde_jsons() {
        for doc in [
            r#"{"a": [1, 2"#,
            r#"{"a" 1}"#,
            "[1,]",
            r#"{"a": nul}"#,
            "1 2",
            "",
        ] {
            let want = serde_json::from_str::<Value>(doc).unwrap_err().to_string();
            assert_eq!(Node::parse(doc).unwrap_err().to_string(), want, "{doc}");
        }
    }

    #[test]
    fn equality_ignores_member_order_as_values_do() {
        let node = Node::parse(r#"{"a": {"x": 1, "y": [1, {"p": 2, "q": 3}]}, "b": "s"}"#).unwrap();
        let same: Value =
            serde_json::from_str(r#"{"b": "s", "a": {"y": [1, {"q": 3, "p": 2}], "x": 1}}"#)
                .unwrap();
        let other: Value =
            serde_json::from_str(r#"{"b": "s", "a": {"y": [{"q": 3, "p": 2}, 1], "x": 1}}"#)
                .unwrap();
        assert!(node.eq_value(&same));
        assert!(!node.eq_value(&other));
        assert!(!node.eq_value(&serde_json::json!({"b": "s"})));
    }
}

//! The data a template sees: a small dynamic model of Go values.
//!
//! Go templates walk arbitrary Go values through reflection. We model the kinds Istio's
//! templates meet: `map[string]any` (from JSON), `map[string]string` (labels, annotations),
//! slices, scalars and structs whose fields are found by their Go names.

use std::any::Any;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::format;
use crate::funcs::Func;

/// A Go value as the template sees it. Cloning is cheap: containers sit behind `Arc`.
///
/// A word-sized tag keeps moves to aligned word copies: with a byte tag, the code moving
/// results between the evaluator's functions copied the 23 bytes after the tag with overlapping
/// unaligned loads, which stall store forwarding (a tenth of template execution in profiles).
#[derive(Clone, Default)]
#[repr(u64)]
pub enum Value {
    /// A nil interface, nil pointer or missing map entry.
    #[default]
    Nil,
    Bool(bool),
    /// Any Go integer kind (typed struct fields, template constants, `len`).
    Int(i64),
    /// float64, as every JSON number decoded into `any` is.
    Float(f64),
    String(Arc<str>),
    List(Arc<Vec<Value>>),
    Map(Arc<Map>),
    Struct(Arc<Struct>),
    /// A function value, only useful with the `call` builtin.
    Func(Func),
}

/// A Go map with string keys; Go iterates and prints maps in key order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Map {
    pub entries: BTreeMap<Arc<str>, Value>,
    /// Element type, which decides what `index` returns for a missing key.
    pub elem: MapElem,
}

/// The element type of a [`Map`]. `index` on a missing key yields the element's zero value:
/// `""` for `map[string]string`, nil for `map[string]any`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MapElem {
    #[default]
    Any,
    String,
}

/// A Go struct. Fields are stored under their JSON names, in declaration order (which
/// `toJson` keeps); templates name them the Go way (`.ContainerPort` finds `containerPort`).
#[derive(Default)]
pub struct Struct {
    /// Go type name used in error messages, e.g. `*inject.SidecarTemplateData`.
    pub type_name: Cow<'static, str>,
    /// Field names are mostly the program's own (static) text: a converted document would
    /// otherwise hold a copy of `name` for every object that has one.
    pub fields: Vec<(Cow<'static, str>, Value)>,
    /// A strict struct reports unknown fields as errors (Go's behaviour for every struct);
    /// a lenient one treats them as absent `omitempty` fields and yields nil.
    pub strict: bool,
    /// What the embedding program worked out about this value ahead of time for its own
    /// functions (say, the encoding of a configuration message, computed once at load and
    /// shared by every render). Templates never see it; it is not compared or printed, and
    /// a copy (what `Arc::make_mut` makes before changing a shared struct) starts without it,
    /// since it would describe the old fields.
    pub attachment: Option<Arc<dyn Any + Send + Sync>>,
}

impl Clone for Struct {
    fn clone(&self) -> Struct {
        Struct {
            type_name: self.type_name.clone(),
            fields: self.fields.clone(),
            strict: self.strict,
            attachment: None,
        }
    }
}

impl PartialEq for Struct {
    fn eq(&self, other: &Struct) -> bool {
        self.type_name == other.type_name
            && self.fields == other.fields
            && self.strict == other.strict
    }
}

impl fmt::Debug for Struct {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Struct")
            .field("type_name", &self.type_name)
            .field("fields", &self.fields)
            .field("strict", &self.strict)
            .finish_non_exhaustive()
    }
}

/// How [`Value::structure_with`] reads a JSON document as Go structs. Any
/// `Fn(&[&str]) -> Shape` is a schema that only decides shapes.
pub trait Schema {
    /// What the JSON object found at `path` (the object keys leading to it) is.
    fn shape(&self, path: &[&str]) -> Shape;

    /// The program's own copy of a field name, when it has one; fields named by it share
    /// that text instead of each holding a copy.
    fn field_name(&self, _json_name: &str) -> Option<&'static str> {
        None
    }
}

impl<F: Fn(&[&str]) -> Shape> Schema for F {
    fn shape(&self, path: &[&str]) -> Shape {
        self(path)
    }
}

/// A JSON document that templates can read: `serde_json::Value`, or a program's own tree.
pub trait Json: Sized {
    fn kind(&self) -> JsonKind<'_, Self>;
    /// An object's members in order (nothing for anything else).
    fn members(&self) -> impl Iterator<Item = (&str, &Self)>;
}

/// One JSON value, seen through [`Json`].
pub enum JsonKind<'j, J> {
    Null,
    Bool(bool),
    Number(&'j serde_json::Number),
    String(&'j str),
    Array(&'j [J]),
    Object,
}

impl Json for serde_json::Value {
    fn kind(&self) -> JsonKind<'_, Self> {
        match self {
            serde_json::Value::Null => JsonKind::Null,
            serde_json::Value::Bool(b) => JsonKind::Bool(*b),
            serde_json::Value::Number(n) => JsonKind::Number(n),
            serde_json::Value::String(s) => JsonKind::String(s),
            serde_json::Value::Array(items) => JsonKind::Array(items),
            serde_json::Value::Object(_) => JsonKind::Object,
        }
    }

    fn members(&self) -> impl Iterator<Item = (&str, &Self)> {
        self.as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v))
    }
}

/// How [`Value::structure_with`] converts the JSON object found at a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// A Go struct: fields by Go name, nested objects are asked about again.
    Struct,
    /// `map[string]any`: everything below is plain JSON data.
    Map,
    /// `map[string]string`.
    StringMap,
}

/// Result of looking a field up on a struct.
pub(crate) enum FieldLookup<'a> {
    Found(&'a Value),
    /// Not present; the zero value (nil) applies.
    Absent,
    /// Not a field of a strict struct.
    Unknown,
}

impl Value {
    pub fn string(s: impl Into<Arc<str>>) -> Value {
        Value::String(s.into())
    }

    pub fn list(items: impl IntoIterator<Item = Value>) -> Value {
        Value::List(Arc::new(items.into_iter().collect()))
    }

    /// A `map[string]any`.
    pub fn map<K: Into<Arc<str>>>(entries: impl IntoIterator<Item = (K, Value)>) -> Value {
        Value::Map(Arc::new(Map {
            entries: entries.into_iter().map(|(k, v)| (k.into(), v)).collect(),
            elem: MapElem::Any,
        }))
    }

    /// A `map[string]string` (labels, annotations, proxy metadata).
    pub fn string_map<K: Into<Arc<str>>, V: Into<Arc<str>>>(
        entries: impl IntoIterator<Item = (K, V)>,
    ) -> Value {
        Value::Map(Arc::new(Map {
            entries: entries
                .into_iter()
                .map(|(k, v)| (k.into(), Value::String(v.into())))
                .collect(),
            elem: MapElem::String,
        }))
    }

    /// A lenient struct from `(json name, value)` fields in declaration order.
    pub fn structure<K: Into<Cow<'static, str>>>(
        type_name: &'static str,
        fields: impl IntoIterator<Item = (K, Value)>,
    ) -> Value {
        Value::Struct(Arc::new(Struct {
            type_name: type_name.into(),
            fields: fields.into_iter().map(|(k, v)| (k.into(), v)).collect(),
            strict: false,
            attachment: None,
        }))
    }

    /// Like [`Value::structure`], but unknown fields are execution errors naming the field.
    pub fn strict_structure<K: Into<Cow<'static, str>>>(
        type_name: &'static str,
        fields: impl IntoIterator<Item = (K, Value)>,
    ) -> Value {
        Value::Struct(Arc::new(Struct {
            type_name: type_name.into(),
            fields: fields.into_iter().map(|(k, v)| (k.into(), v)).collect(),
            strict: true,
            attachment: None,
        }))
    }

    /// Decodes JSON the way Go's `encoding/json` fills an `any`: objects become
    /// `map[string]any`, every number a float64.
    pub fn from_json<J: Json>(json: &J) -> Value {
        match json.kind() {
            JsonKind::Null => Value::Nil,
            JsonKind::Bool(b) => Value::Bool(b),
            JsonKind::Number(n) => Value::Float(n.as_f64().unwrap_or(0.0)),
            JsonKind::String(s) => Value::String(s.into()),
            JsonKind::Array(items) => {
                Value::List(Arc::new(items.iter().map(Value::from_json).collect()))
            }
            JsonKind::Object => Value::Map(Arc::new(Map {
                entries: json
                    .members()
                    .map(|(k, v)| (Arc::from(k), Value::from_json(v)))
                    .collect(),
                elem: MapElem::Any,
            })),
        }
    }

    /// Decodes JSON into Go-struct-like values, as if unmarshalled into typed Go structs.
    /// `schema` is asked, for every JSON object, what it is, given the path of object keys
    /// leading to it (list indices are not part of the path; the root is `[]`).
    /// Inside structs, integral numbers become `Int` (typed Go integer fields print as
    /// integers), other numbers `Float`.
    pub fn structure_with<J: Json>(json: &J, schema: &dyn Schema) -> Value {
        let mut path = Vec::new();
        structure_at(json, schema, &mut path)
    }

    /// Converts to JSON the way Go's `encoding/json` marshals the value: maps with sorted
    /// keys, structs in field order. Functions become null.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Nil | Value::Func(_) => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::String(s) => serde_json::Value::String(String::from(&**s)),
            Value::List(items) => {
                serde_json::Value::Array(items.iter().map(Value::to_json).collect())
            }
            Value::Map(m) => serde_json::Value::Object(
                m.entries
                    .iter()
                    .map(|(k, v)| (String::from(&**k), v.to_json()))
                    .collect(),
            ),
            Value::Struct(s) => serde_json::Value::Object(
                s.fields
                    .iter()
                    .map(|(k, v)| (String::from(&**k), v.to_json()))
                    .collect(),
            ),
        }
    }

    /// Go's template truth: false, 0, nil, and empty strings, lists and maps are false.
    pub fn is_true(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::String(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.entries.is_empty(),
            Value::Struct(_) | Value::Func(_) => true,
        }
    }

    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The Go type name, as Go's error messages and `printf`'s `%T` spell it.
    pub fn type_name(&self) -> &str {
        match self {
            Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::String(_) => "string",
            Value::List(_) => "[]interface {}",
            Value::Map(m) => match m.elem {
                MapElem::Any => "map[string]interface {}",
                MapElem::String => "map[string]string",
            },
            Value::Struct(s) => &s.type_name,
            Value::Func(_) => "func",
        }
    }

    /// Looks a key up in a map value (exact key).
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(m) => m.entries.get(key),
            Value::Struct(s) => s.fields.iter().find(|(k, _)| &**k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The [`Struct::attachment`] of a struct value, if it is a `A`.
    pub fn attachment<A: Any>(&self) -> Option<&A> {
        match self {
            Value::Struct(s) => s.attachment.as_deref()?.downcast_ref(),
            _ => None,
        }
    }
}

impl Struct {
    /// Finds a field by its Go name: the JSON name that equals it, else the one equal to it
    /// with the first letter lower-cased, else one equal ignoring case (`APIVersion`).
    pub(crate) fn field(&self, go_name: &str) -> FieldLookup<'_> {
        // This runs for every `.Field` step of every render: one pass, no allocation. All
        // three ways of matching need equal lengths, so most fields cost one comparison.
        let mut best: Option<(u8, &Value)> = None;
        for (k, v) in &self.fields {
            if k.len() != go_name.len() {
                continue;
            }
            if **k == *go_name {
                return FieldLookup::Found(v);
            }
            // Once a first-lowered match is found, only an exact one can do better.
            if best.is_some_and(|(r, _)| r == 1) {
                continue;
            }
            let rank = if first_lowered_eq(k, go_name) {
                1
            } else if k.eq_ignore_ascii_case(go_name) {
                2
            } else {
                continue;
            };
            // The first field of the best kind wins, as with one scan per kind.
            if best.is_none_or(|(r, _)| rank < r) {
                best = Some((rank, v));
            }
        }
        match best {
            Some((_, v)) => FieldLookup::Found(v),
            None if self.strict => FieldLookup::Unknown,
            None => FieldLookup::Absent,
        }
    }
}

/// `json == go` with the first letter of `go` lower-cased (`ContainerPort` ~ `containerPort`).
fn first_lowered_eq(json: &str, go: &str) -> bool {
    let (j, g) = (json.as_bytes(), go.as_bytes());
    if j.len() != g.len() || j.is_empty() {
        return false;
    }
    if g[0].is_ascii() {
        return g[0].is_ascii_uppercase() && j[0] == g[0].to_ascii_lowercase() && j[1..] == g[1..];
    }
    let (mut jc, mut gc) = (json.chars(), go.chars());
    match (jc.next(), gc.next()) {
        (Some(a), Some(b)) if b.is_uppercase() && b.to_lowercase().eq(std::iter::once(a)) => {
            jc.as_str() == gc.as_str()
        }
        _ => false,
    }
}

fn structure_at<'j, J: Json>(json: &'j J, schema: &dyn Schema, path: &mut Vec<&'j str>) -> Value {
    match json.kind() {
        JsonKind::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(0.0)),
        },
        JsonKind::Array(items) => Value::List(Arc::new(
            items
                .iter()
                .map(|v| structure_at(v, schema, path))
                .collect(),
        )),
        JsonKind::Object => match schema.shape(path) {
            Shape::Map => Value::from_json(json),
            Shape::StringMap => Value::Map(Arc::new(Map {
                entries: json
                    .members()
                    .map(|(k, v)| {
                        let s = match v.kind() {
                            JsonKind::String(s) => Value::String(s.into()),
                            _ => Value::from_json(v),
                        };
                        (Arc::from(k), s)
                    })
                    .collect(),
                elem: MapElem::String,
            })),
            Shape::Struct => {
                let fields = json
                    .members()
                    .map(|(k, v)| {
                        path.push(k);
                        let v = structure_at(v, schema, path);
                        path.pop();
                        let name = match schema.field_name(k) {
                            Some(known) => Cow::Borrowed(known),
                            None => Cow::Owned(k.to_owned()),
                        };
                        (name, v)
                    })
                    .collect();
                Value::Struct(Arc::new(Struct {
                    type_name: Cow::Borrowed("struct"),
                    fields,
                    strict: false,
                    attachment: None,
                }))
            }
        },
        _ => Value::from_json(json),
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Nil, Value::Nil) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Float(a), Value::Float(b)) => a == b,
            (Value::String(a), Value::String(b)) => a == b,
            (Value::List(a), Value::List(b)) => a == b,
            (Value::Map(a), Value::Map(b)) => a == b,
            (Value::Struct(a), Value::Struct(b)) => a == b,
            (Value::Func(a), Value::Func(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Nil => f.write_str("Nil"),
            Value::Bool(b) => write!(f, "Bool({b})"),
            Value::Int(i) => write!(f, "Int({i})"),
            Value::Float(x) => write!(f, "Float({x})"),
            Value::String(s) => write!(f, "String({s:?})"),
            Value::List(l) => f.debug_list().entries(l.iter()).finish(),
            Value::Map(m) => f.debug_map().entries(m.entries.iter()).finish(),
            Value::Struct(s) => {
                let mut d = f.debug_struct(&s.type_name);
                for (k, v) in &s.fields {
                    d.field(k, v);
                }
                d.finish()
            }
            Value::Func(_) => f.write_str("Func"),
        }
    }
}

/// `fmt.Sprint` of the value (Go's `%v`).
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        format::write_value(&mut s, self);
        f.write_str(&s)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(s.into())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::String(s.into())
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Value {
        Value::Float(f)
    }
}

impl From<Vec<Value>> for Value {
    fn from(v: Vec<Value>) -> Value {
        Value::List(Arc::new(v))
    }
}

//! The function registry and Go's built-in template functions.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::format;
use crate::value::{MapElem, Value};

/// A template function. Arguments arrive evaluated; nil/missing values arrive as `Value::Nil`.
pub type Func = Arc<dyn Fn(&[Value]) -> Result<Value, FuncError> + Send + Sync>;

/// Why a function failed; Go reports it as `error calling NAME: MESSAGE`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FuncError(pub String);

impl FuncError {
    pub fn new(msg: impl Into<String>) -> FuncError {
        FuncError(msg.into())
    }
}

/// How a name in a template resolves. `and`/`or` evaluate their arguments lazily, so they
/// are not plain functions.
#[derive(Clone)]
pub(crate) enum FuncEntry {
    Plain(Func),
    /// sprig's `set`/`unset`, which mutate the map they are given. Our maps are shared
    /// values, so the executor re-binds a variable passed as the map to the result.
    Mutating(Func),
    And,
    Or,
}

impl fmt::Debug for FuncEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FuncEntry::Plain(_) => f.write_str("Plain"),
            FuncEntry::Mutating(_) => f.write_str("Mutating"),
            FuncEntry::And => f.write_str("And"),
            FuncEntry::Or => f.write_str("Or"),
        }
    }
}

/// Name → function, fixed when a template is parsed (Go: an unknown function is a parse
/// error). Later insertions override earlier ones, so user functions replace built-ins.
#[derive(Clone, Default)]
pub struct Funcs {
    map: HashMap<String, FuncEntry>,
}

impl Funcs {
    /// No functions at all (not even Go's built-ins).
    pub fn empty() -> Funcs {
        Funcs::default()
    }

    /// Go's built-in functions only.
    pub fn go_builtins() -> Funcs {
        let mut f = Funcs::empty();
        f.map.insert("and".into(), FuncEntry::And);
        f.map.insert("or".into(), FuncEntry::Or);
        f.insert("not", |a| Ok(Value::Bool(!one(a, "not")?.is_true())));
        f.insert("len", length);
        f.insert("index", index);
        f.insert("slice", slice);
        f.insert("print", |a| Ok(Value::from(format::sprint(a))));
        f.insert("println", |a| Ok(Value::from(format::sprintln(a))));
        f.insert("printf", printf);
        f.insert("eq", eq);
        f.insert("ne", |a| {
            if a.len() != 2 {
                return Err(arg_count("ne", 2, a.len()));
            }
            Ok(Value::Bool(!equal(&a[0], &a[1])?))
        });
        f.insert("lt", |a| cmp2("lt", a, |o| o.is_lt()));
        f.insert("le", |a| cmp2("le", a, |o| o.is_le()));
        f.insert("gt", |a| cmp2("gt", a, |o| o.is_gt()));
        f.insert("ge", |a| cmp2("ge", a, |o| o.is_ge()));
        f.insert("html", |a| Ok(Value::from(html_escape(&eval_args(a)))));
        f.insert("js", |a| Ok(Value::from(js_escape(&eval_args(a)))));
        f.insert("urlquery", |a| Ok(Value::from(query_escape(&eval_args(a)))));
        f.insert("call", call);
        f
    }

    /// Go's built-ins plus the sprig functions (the set Helm and Istio templates expect).
    pub fn builtin() -> Funcs {
        let mut f = Funcs::go_builtins();
        crate::sprig::register(&mut f);
        f
    }

    /// Adds or replaces a function.
    pub fn insert(
        &mut self,
        name: &str,
        f: impl Fn(&[Value]) -> Result<Value, FuncError> + Send + Sync + 'static,
    ) -> &mut Funcs {
        self.map.insert(name.into(), FuncEntry::Plain(Arc::new(f)));
        self
    }

    /// Adds or replaces a function given as a shared [`Func`].
    pub fn insert_func(&mut self, name: &str, f: Func) -> &mut Funcs {
        self.map.insert(name.into(), FuncEntry::Plain(f));
        self
    }

    pub(crate) fn insert_mutating(
        &mut self,
        name: &str,
        f: impl Fn(&[Value]) -> Result<Value, FuncError> + Send + Sync + 'static,
    ) {
        self.map
            .insert(name.into(), FuncEntry::Mutating(Arc::new(f)));
    }

    /// Every registered name, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.map.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }

    pub fn contains(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    /// The function registered under `name`, unless it is one of the lazy built-ins.
    pub fn get(&self, name: &str) -> Option<Func> {
        match self.map.get(name)? {
            FuncEntry::Plain(f) | FuncEntry::Mutating(f) => Some(f.clone()),
            _ => None,
        }
    }

    pub(crate) fn lookup(&self, name: &str) -> Option<FuncEntry> {
        self.map.get(name).cloned()
    }
}

pub(crate) fn arg_count(name: &str, want: usize, got: usize) -> FuncError {
    FuncError(format!(
        "wrong number of args for {name}: want {want} got {got}"
    ))
}

fn one<'a>(a: &'a [Value], name: &str) -> Result<&'a Value, FuncError> {
    match a {
        [v] => Ok(v),
        _ => Err(arg_count(name, 1, a.len())),
    }
}

/// Go's `evalArgs` for html/js/urlquery: a lone string as is, else `fmt.Sprint`.
fn eval_args(a: &[Value]) -> String {
    match a {
        [Value::String(s)] => String::from(&**s),
        _ => format::sprint(a),
    }
}

fn length(a: &[Value]) -> Result<Value, FuncError> {
    let n = match one(a, "len")? {
        Value::String(s) => s.len(),
        Value::List(l) => l.len(),
        Value::Map(m) => m.entries.len(),
        // Our nil often stands for a typed nil map or slice (an absent struct field).
        Value::Nil => 0,
        other => return Err(FuncError(format!("len of type {}", other.type_name()))),
    };
    Ok(Value::Int(n as i64))
}

fn to_index(v: &Value, cap: usize) -> Result<usize, FuncError> {
    let Value::Int(i) = v else {
        return Err(FuncError(match v {
            Value::Nil => "cannot index slice/array with nil".into(),
            other => format!("cannot index slice/array with type {}", other.type_name()),
        }));
    };
    if *i < 0 || *i as u64 > cap as u64 {
        return Err(FuncError(format!("index out of range: {i}")));
    }
    Ok(*i as usize)
}

/// `index x 1 2 3` is `x[1][2][3]`; a missing map key yields the element type's zero value.
fn index(a: &[Value]) -> Result<Value, FuncError> {
    let Some((first, keys)) = a.split_first() else {
        return Err(FuncError::new(
            "wrong number of args for index: want at least 1 got 0",
        ));
    };
    let mut item = first.clone();
    for key in keys {
        item = match &item {
            Value::List(l) => {
                let i = to_index(key, l.len())?;
                l.get(i)
                    .cloned()
                    .ok_or_else(|| FuncError(format!("index out of range: {i}")))?
            }
            Value::String(s) => {
                let i = to_index(key, s.len())?;
                s.as_bytes()
                    .get(i)
                    .map(|b| Value::Int(*b as i64))
                    .ok_or_else(|| FuncError(format!("index out of range: {i}")))?
            }
            Value::Map(m) => match key {
                Value::String(k) => match m.entries.get(&**k) {
                    Some(v) => v.clone(),
                    None if m.elem == MapElem::String => Value::from(""),
                    None => Value::Nil,
                },
                Value::Nil => return Err(FuncError::new("value is nil; should be of type string")),
                other => {
                    return Err(FuncError(format!(
                        "value has type {}; should be string",
                        other.type_name()
                    )));
                }
            },
            // A typed nil map (an absent struct field) indexes to nil.
            Value::Nil if matches!(key, Value::String(_)) => Value::Nil,
            Value::Nil => return Err(FuncError::new("index of untyped nil")),
            other => {
                return Err(FuncError(format!(
                    "can't index item of type {}",
                    other.type_name()
                )));
            }
        };
    }
    Ok(item)
}

/// `slice x 1 2` is `x[1:2]` (strings by byte, lists by element).
fn slice(a: &[Value]) -> Result<Value, FuncError> {
    let Some((item, idx)) = a.split_first() else {
        return Err(FuncError::new(
            "wrong number of args for slice: want at least 1 got 0",
        ));
    };
    if idx.len() > 3 {
        return Err(FuncError(format!("too many slice indexes: {}", idx.len())));
    }
    let len = match item {
        Value::String(s) => {
            if idx.len() == 3 {
                return Err(FuncError::new("cannot 3-index slice a string"));
            }
            s.len()
        }
        Value::List(l) => l.len(),
        Value::Nil => return Err(FuncError::new("slice of untyped nil")),
        other => {
            return Err(FuncError(format!(
                "can't slice item of type {}",
                other.type_name()
            )));
        }
    };
    let mut bounds = [0, len, len];
    for (i, v) in idx.iter().enumerate() {
        bounds[i] = to_index(v, len)?;
    }
    if bounds[0] > bounds[1] {
        return Err(FuncError(format!(
            "invalid slice index: {} > {}",
            bounds[0], bounds[1]
        )));
    }
    match item {
        Value::String(s) => s
            .get(bounds[0]..bounds[1])
            .map(Value::from)
            .ok_or_else(|| FuncError::new("slice splits a UTF-8 sequence")),
        Value::List(l) => Ok(Value::list(l[bounds[0]..bounds[1]].iter().cloned())),
        _ => Ok(Value::Nil),
    }
}

fn printf(a: &[Value]) -> Result<Value, FuncError> {
    let Some((fmt, rest)) = a.split_first() else {
        return Err(FuncError::new(
            "wrong number of args for printf: want at least 1 got 0",
        ));
    };
    let Value::String(fmt) = fmt else {
        return Err(FuncError(format!(
            "wrong type for value; expected string; got {}",
            fmt.type_name()
        )));
    };
    Ok(Value::from(format::sprintf(fmt, rest)))
}

fn call(a: &[Value]) -> Result<Value, FuncError> {
    match a.split_first() {
        Some((Value::Func(f), rest)) => f(rest),
        Some((Value::Nil, _)) => Err(FuncError::new("call of nil")),
        Some((other, _)) => Err(FuncError(format!(
            "non-function of type {}",
            other.type_name()
        ))),
        None => Err(FuncError::new(
            "wrong number of args for call: want at least 1 got 0",
        )),
    }
}

/// The basic kinds Go's comparison functions distinguish.
#[derive(PartialEq, Eq, Clone, Copy)]
enum Kind {
    Invalid,
    Bool,
    Int,
    Float,
    String,
    Other,
}

fn kind(v: &Value) -> Kind {
    match v {
        Value::Nil => Kind::Invalid,
        Value::Bool(_) => Kind::Bool,
        Value::Int(_) => Kind::Int,
        Value::Float(_) => Kind::Float,
        Value::String(_) => Kind::String,
        _ => Kind::Other,
    }
}

/// Go's `eq` for one pair: basic kinds compare by value; different kinds are an error
/// unless one side is nil (then simply unequal); int vs float is an error, as in Go.
fn equal(a: &Value, b: &Value) -> Result<bool, FuncError> {
    let (ka, kb) = (kind(a), kind(b));
    if ka != kb {
        if ka == Kind::Invalid || kb == Kind::Invalid {
            return Ok(false);
        }
        return Err(FuncError::new("incompatible types for comparison"));
    }
    Ok(match (a, b) {
        (Value::Nil, Value::Nil) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::String(x), Value::String(y)) => x == y,
        (Value::List(_) | Value::Map(_) | Value::Func(_), _) => {
            return Err(FuncError(format!(
                "non-comparable type {}: {}",
                a,
                a.type_name()
            )));
        }
        _ => a == b,
    })
}

/// `eq a b c` is `a == b || a == c`.
fn eq(a: &[Value]) -> Result<Value, FuncError> {
    let Some((first, rest)) = a.split_first() else {
        return Err(FuncError::new(
            "wrong number of args for eq: want at least 1 got 0",
        ));
    };
    if rest.is_empty() {
        return Err(FuncError::new("missing argument for comparison"));
    }
    for b in rest {
        if equal(first, b)? {
            return Ok(Value::Bool(true));
        }
    }
    Ok(Value::Bool(false))
}

fn cmp2(name: &str, a: &[Value], pick: fn(std::cmp::Ordering) -> bool) -> Result<Value, FuncError> {
    let [x, y] = a else {
        return Err(arg_count(name, 2, a.len()));
    };
    let ord = match (x, y) {
        (Value::Int(p), Value::Int(q)) => p.cmp(q),
        (Value::Float(p), Value::Float(q)) => match p.partial_cmp(q) {
            Some(o) => o,
            None => return Ok(Value::Bool(false)),
        },
        (Value::String(p), Value::String(q)) => p.cmp(q),
        _ => {
            let (kx, ky) = (kind(x), kind(y));
            if kx == Kind::Invalid || ky == Kind::Invalid {
                return Err(FuncError::new("invalid type for comparison"));
            }
            if kx != ky {
                return Err(FuncError::new("incompatible types for comparison"));
            }
            return Err(FuncError::new("invalid type for comparison"));
        }
    };
    Ok(Value::Bool(pick(ord)))
}

/// `template.HTMLEscapeString`.
pub(crate) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\0' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// `template.JSEscapeString`.
pub(crate) fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c if !format::is_printable(c) => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// `url.QueryEscape`.
pub(crate) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

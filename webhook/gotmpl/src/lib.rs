//! Go `text/template`, in Rust, with the sprig functions Helm and Istio templates use.
//!
//! Istio's sidecar injector is driven by Go templates; this crate parses such a template
//! once ([`Template::parse`]) and renders it many times ([`Template::execute`]) with output
//! byte-identical to Go's for the features those templates use: actions with whitespace
//! trimming, pipelines, variables, `if`/`with`/`range`/`define`/`template`/`block`,
//! Go's printing rules, Go's built-in functions and sprig's.
//!
//! Data is a [`Value`]: JSON-like maps and lists plus struct values whose fields are found
//! by Go name. Functions live in a [`Funcs`] registry that must be complete at parse time,
//! because Go rejects unknown functions while parsing.
//!
//! How Go's types map onto [`Value`] (the places where the caller chooses):
//!
//! - `map[string]any` is [`Value::map`] / [`Value::from_json`] (numbers are float64, as
//!   `encoding/json` decodes them: `15020` prints `15020`, `1000000` prints `1e+06`, and
//!   `eq` refuses to compare them with template integers, like Go).
//! - `map[string]string` is [`Value::string_map`]: `index` of a missing key gives `""`.
//! - Structs are [`Value::structure`] (lenient: an absent field is nil, which suits
//!   `omitempty` JSON) or [`Value::strict_structure`] (an unknown field is Go's
//!   `can't evaluate field` error). Go prints an unset string field as `""` and compares it
//!   equal to `""`; a lenient struct cannot know the field's type, so put the zero values
//!   the templates compare or print into the struct. `GetFoo` reads field `Foo` nil-safely
//!   (proto getters), `.String` on a string is the string (proto enums), `.GetValue` on a
//!   scalar is the scalar (proto wrapper types arrive as plain JSON scalars).
//! - Nil stands for nil interfaces, missing map entries and typed nil maps/slices: `index`
//!   and `len` of nil give nil and 0, `range` over it runs the `else` branch, and printing it
//!   gives `<no value>`. Walking a field of a map entry that holds nil is Go's
//!   `nil pointer evaluating interface {}.X` error; walking past a missing entry is not.
//!
//! Limits: `{{template}}` calls, if/with/range and parenthesised pipelines may nest 300
//! levels at run time (Go allows 100000 template calls; we keep within a 2 MiB stack), and
//! 100 levels in the text. Sprig's regular-expression, date, random, crypto-key and
//! semver functions are not provided.
//!
//! ```
//! use gotmpl::{Funcs, Template, Value};
//! let t = Template::parse("t", "{{ range $k, $v := . }}{{ $k }}={{ $v | quote }} {{ end }}", &Funcs::builtin()).unwrap();
//! let data = Value::from_json(&serde_json::json!({"b": 2, "a": "x"}));
//! assert_eq!(t.execute(&data).unwrap(), r#"a="x" b="2" "#);
//! ```

use std::collections::HashMap;
use std::sync::Arc;

mod exec;
pub mod format;
mod funcs;
pub mod json;
mod lex;
mod memo;
mod parse;
mod sprig;
mod value;
pub mod yaml;

pub use funcs::{Func, FuncError, Funcs};
pub use value::{Json, JsonKind, Map, MapElem, Schema, Shape, Struct, Value};

use parse::List;

/// A parse or execution failure, worded like Go's `text/template` errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The text is not a valid template (or names an unknown function).
    #[error("template: {name}:{line}: {message}")]
    Parse {
        name: String,
        line: usize,
        message: String,
    },
    /// Execution failed at an expression.
    #[error(
        "template: {name}:{line}:{col}: executing {} at <{context}>: {message}",
        format::quote(template)
    )]
    Exec {
        /// The top-level template the text came from.
        name: String,
        line: usize,
        /// Byte offset within the line, from 0 (as Go counts).
        col: usize,
        /// The (possibly `define`d) template being executed.
        template: String,
        /// The expression, as Go prints it.
        context: String,
        message: String,
    },
    /// `execute_named` with a name this template does not define.
    #[error(
        "template: no template {} associated with template {}",
        format::quote(wanted),
        format::quote(name)
    )]
    NoTemplate { name: String, wanted: String },
}

/// One parsed top-level template with the templates it `define`s. Parse once, execute
/// many times, from any thread.
#[derive(Debug)]
pub struct Template {
    name: String,
    text: Arc<str>,
    /// Every named tree: the main body under `name`, and each define/block.
    trees: HashMap<String, Arc<List>>,
}

impl Template {
    /// Parses `text` as the template `name`. Its `define`s are visible only to itself, as
    /// with Go's `template.New(name).Funcs(funcs).Parse(text)`.
    pub fn parse(name: &str, text: &str, funcs: &Funcs) -> Result<Template, Error> {
        let parsed = parse::parse(name, text, funcs).map_err(|e| Error::Parse {
            name: name.to_string(),
            line: line_of(text, e.pos),
            message: e.msg,
        })?;
        let mut trees = parsed.defined;
        // Go: an empty main body does not replace a define of the same name.
        let keep_define = trees
            .get(name)
            .is_some_and(|d| !parse::is_empty_tree(d) && parse::is_empty_tree(&parsed.main));
        if !keep_define {
            trees.insert(name.to_string(), Arc::new(parsed.main));
        }
        Ok(Template {
            name: name.to_string(),
            text: text.into(),
            trees,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Names of every template in this set (main and defined), sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.trees.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }

    /// Renders the main template with `data` as dot and `$`.
    pub fn execute(&self, data: &Value) -> Result<String, Error> {
        self.execute_named(&self.name, data)
    }

    /// Renders one template of the set (the main one or a `define`d one).
    pub fn execute_named(&self, name: &str, data: &Value) -> Result<String, Error> {
        let mut out = String::with_capacity(self.text.len());
        self.execute_named_into(name, data, &mut out)?;
        Ok(out)
    }

    /// Like [`Template::execute_named`], appending to `out` (reuse one buffer across
    /// renders). On error, `out` holds whatever was written before the failure.
    pub fn execute_named_into(
        &self,
        name: &str,
        data: &Value,
        out: &mut String,
    ) -> Result<(), Error> {
        let Some((key, tree)) = self.trees.get_key_value(name) else {
            return Err(Error::NoTemplate {
                name: self.name.clone(),
                wanted: name.to_string(),
            });
        };
        exec::execute(self, key, tree, data, out)
    }

    pub(crate) fn tree(&self, name: &str) -> Option<&List> {
        self.trees.get(name).map(|t| &**t)
    }

    /// Line (from 1) and byte column (from 0) of a byte offset, as Go's `ErrorContext`.
    pub(crate) fn line_col(&self, pos: usize) -> (usize, usize) {
        let before = self.text.get(..pos).unwrap_or(&self.text);
        let line = 1 + before.bytes().filter(|b| *b == b'\n').count();
        let col = before
            .rfind('\n')
            .map_or(before.len(), |i| before.len() - i - 1);
        (line, col)
    }
}

pub(crate) fn line_of(text: &str, pos: usize) -> usize {
    let before = text.get(..pos.min(text.len())).unwrap_or(text);
    1 + before.bytes().filter(|b| *b == b'\n').count()
}

#[cfg(test)]
mod tests;

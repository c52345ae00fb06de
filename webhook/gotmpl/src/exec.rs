//! Execution: walks a parsed tree over a [`Value`], writing into one `String`.

use std::fmt::Display;

use crate::format;
use crate::funcs::FuncEntry;
use crate::memo::Path;
use crate::parse::{Arg, Branch, Cmd, List, Node, Pipe};
use crate::value::{FieldLookup, MapElem, Struct, Value};
use crate::{Error, Template};

/// How many nested evaluations (template calls, if/with/range, parenthesised pipelines)
/// may be active at once. Go allows 100000 template calls; we bound everything so that no
/// template exhausts a 2 MiB thread stack, even in a debug build (about 5 KiB a level
/// there, under 1 KiB in release). Real templates nest a few levels deep.
pub(crate) const MAX_NESTED: usize = 300;

/// Whether a list ran to its end or hit `{{break}}` / `{{continue}}`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flow {
    Normal,
    Break,
    Continue,
}

pub(crate) struct State<'t> {
    tmpl: &'t Template,
    /// Name of the tree being executed (`executing "NAME"` in errors).
    exec_name: &'t str,
    out: String,
    vars: Vec<(&'t str, Value)>,
    /// Arguments of the function calls in progress, reused to avoid an allocation per call.
    args: Vec<Value>,
    /// Active nested evaluations, see [`MAX_NESTED`].
    nested: usize,
}

/// Errors are boxed inside the evaluator: every evaluation step returns an `R`, and a result
/// the size of a value moves in registers where one the size of `Error` goes through memory.
type R<T> = Result<T, Box<Error>>;

/// Runs `tree` (named `name`) of `tmpl` with `data` as dot and `$`, appending to `out`.
pub(crate) fn execute<'t>(
    tmpl: &'t Template,
    name: &'t str,
    tree: &'t List,
    data: &Value,
    out: &mut String,
) -> Result<(), Error> {
    let mut s = State {
        tmpl,
        exec_name: name,
        out: std::mem::take(out),
        vars: {
            // Templates declare a few dozen variables: grow once, not five times.
            let mut vars = Vec::with_capacity(32);
            vars.push(("$", data.clone()));
            vars
        },
        args: Vec::with_capacity(16),
        nested: 0,
    };
    let result = s.walk(data, tree);
    *out = s.out;
    result.map(|_| ()).map_err(|e| *e)
}

impl<'t> State<'t> {
    fn error(&self, pos: usize, context: &dyn Display, msg: impl Into<String>) -> Box<Error> {
        let (line, col) = self.tmpl.line_col(pos);
        Box::new(Error::Exec {
            name: self.tmpl.name.clone(),
            line,
            col,
            template: self.exec_name.to_string(),
            context: context.to_string(),
            message: msg.into(),
        })
    }

    fn walk(&mut self, dot: &Value, list: &'t List) -> R<Flow> {
        for node in list {
            let flow = self.walk_node(dot, node)?;
            if flow != Flow::Normal {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    fn walk_node(&mut self, dot: &Value, node: &'t Node) -> R<Flow> {
        match node {
            Node::Text(t) => {
                self.out.push_str(t);
                Ok(Flow::Normal)
            }
            Node::Action(pipe) => {
                let v = self.eval_pipeline(dot, pipe)?;
                if pipe.decl.is_empty() {
                    self.print(pipe, &v)?;
                }
                Ok(Flow::Normal)
            }
            Node::If(b) => self.walk_if_or_with(dot, b, false),
            Node::With(b) => self.walk_if_or_with(dot, b, true),
            Node::Range(b) => self.walk_range(dot, b),
            Node::Template { pos, name, pipe } => {
                self.walk_template(dot, *pos, name, pipe.as_ref())?;
                Ok(Flow::Normal)
            }
            Node::Break => Ok(Flow::Break),
            Node::Continue => Ok(Flow::Continue),
        }
    }

    /// Counts one more active nested evaluation, or fails if there are too many.
    fn enter(&mut self, at: &Pipe) -> R<()> {
        if self.nested >= MAX_NESTED {
            return Err(self.error(
                at.pos,
                at,
                format!("exceeded maximum nesting depth ({MAX_NESTED})"),
            ));
        }
        self.nested += 1;
        Ok(())
    }

    fn print(&mut self, pipe: &Pipe, v: &Value) -> R<()> {
        match v {
            Value::Nil => self.out.push_str("<no value>"),
            Value::Func(_) => {
                return Err(self.error(pipe.pos, pipe, format!("can't print {pipe} of type func")));
            }
            v => format::write_value(&mut self.out, v),
        }
        Ok(())
    }

    fn walk_if_or_with(&mut self, dot: &Value, b: &'t Branch, with: bool) -> R<Flow> {
        self.enter(&b.pipe)?;
        let flow = self.if_or_with(dot, b, with);
        self.nested -= 1;
        flow
    }

    fn if_or_with(&mut self, dot: &Value, b: &'t Branch, with: bool) -> R<Flow> {
        let mark = self.vars.len();
        let val = self.eval_pipeline(dot, &b.pipe)?;
        let flow = if val.is_true() {
            if with {
                self.walk(&val, &b.list)?
            } else {
                self.walk(dot, &b.list)?
            }
        } else if let Some(else_list) = &b.else_list {
            self.walk(dot, else_list)?
        } else {
            Flow::Normal
        };
        self.vars.truncate(mark);
        Ok(flow)
    }

    fn walk_range(&mut self, dot: &Value, b: &'t Branch) -> R<Flow> {
        self.enter(&b.pipe)?;
        let flow = self.range(dot, b);
        self.nested -= 1;
        flow
    }

    fn range(&mut self, dot: &Value, b: &'t Branch) -> R<Flow> {
        let mark = self.vars.len();
        let val = self.eval_cmds(dot, &b.pipe)?;
        let mut ran = false;
        match &val {
            Value::List(items) => {
                for (i, item) in items.iter().enumerate() {
                    ran = true;
                    if self.iteration(b, Value::Int(i as i64), item)? == Flow::Break {
                        break;
                    }
                }
            }
            Value::Map(m) => {
                for (k, v) in &m.entries {
                    ran = true;
                    if self.iteration(b, Value::String(k.clone()), v)? == Flow::Break {
                        break;
                    }
                }
            }
            Value::Int(n) => {
                if b.pipe.decl.len() > 1 {
                    return Err(self.error(
                        b.pipe.pos,
                        &b.pipe,
                        format!("can't use {n} to iterate over more than one variable"),
                    ));
                }
                for i in 0..*n {
                    ran = true;
                    if self.iteration(b, Value::Int(i), &Value::Int(i))? == Flow::Break {
                        break;
                    }
                }
            }
            Value::Nil => {}
            other => {
                return Err(self.error(
                    b.pipe.pos,
                    &b.pipe,
                    format!("range can't iterate over {other}"),
                ));
            }
        }
        let flow = match (&b.else_list, ran) {
            (Some(else_list), false) => self.walk(dot, else_list)?,
            _ => Flow::Normal,
        };
        self.vars.truncate(mark);
        // The else branch belongs to the enclosing range's loop body (Go parses it outside
        // this range), but Go's walkRange swallows a {{break}} from it; {{continue}} goes on
        // to the enclosing range.
        Ok(match flow {
            Flow::Break => Flow::Normal,
            other => other,
        })
    }

    /// One range iteration: set the loop variables, run the body, drop its variables.
    fn iteration(&mut self, b: &'t Branch, key: Value, elem: &Value) -> R<Flow> {
        let mark = self.vars.len();
        let decl = &b.pipe.decl;
        if b.pipe.is_assign {
            match decl.as_slice() {
                [e] => self.set_var(&b.pipe, e, elem.clone())?,
                [k, e] => {
                    self.set_var(&b.pipe, k, key)?;
                    self.set_var(&b.pipe, e, elem.clone())?;
                }
                _ => {}
            }
        } else {
            match decl.as_slice() {
                [e] => self.vars.push((e, elem.clone())),
                [k, e] => {
                    self.vars.push((k, key));
                    self.vars.push((e, elem.clone()));
                }
                _ => {}
            }
        }
        let flow = self.walk(elem, &b.list);
        self.vars.truncate(mark);
        Ok(match flow? {
            Flow::Break => Flow::Break,
            Flow::Continue | Flow::Normal => Flow::Normal,
        })
    }

    fn walk_template(
        &mut self,
        dot: &Value,
        pos: usize,
        name: &'t str,
        pipe: Option<&'t Pipe>,
    ) -> R<()> {
        let context = TemplateContext { name, pipe };
        let Some(tree) = self.tmpl.tree(name) else {
            return Err(self.error(
                pos,
                &context,
                format!("template {} not defined", format::quote(name)),
            ));
        };
        if self.nested >= MAX_NESTED {
            return Err(self.error(
                pos,
                &context,
                format!("exceeded maximum template depth ({MAX_NESTED})"),
            ));
        }
        let new_dot = match pipe {
            Some(p) => self.eval_pipeline(dot, p)?,
            None => Value::Nil,
        };
        // No dynamic scoping: the called template sees only `$`, set to its dot.
        let saved_vars = std::mem::replace(&mut self.vars, vec![("$", new_dot.clone())]);
        let saved_name = std::mem::replace(&mut self.exec_name, name);
        self.nested += 1;
        let result = self.walk(&new_dot, tree);
        self.nested -= 1;
        self.exec_name = saved_name;
        self.vars = saved_vars;
        result.map(|_| ())
    }

    fn set_var(&mut self, pipe: &Pipe, name: &str, value: Value) -> R<()> {
        match self.vars.iter_mut().rev().find(|(n, _)| *n == name) {
            Some(slot) => {
                slot.1 = value;
                Ok(())
            }
            None => Err(self.error(pipe.pos, pipe, format!("undefined variable: {name}"))),
        }
    }

    /// Re-binds an existing variable (no error if it is gone).
    fn set_var_quiet(&mut self, name: &str, value: Value) {
        if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| *n == name) {
            slot.1 = value;
        }
    }

    fn var(&self, pos: usize, context: &dyn Display, name: &str) -> R<&Value> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
            .ok_or_else(|| self.error(pos, context, format!("undefined variable: {name}")))
    }

    /// Runs the commands of a pipeline, without its declarations.
    fn eval_cmds(&mut self, dot: &Value, pipe: &'t Pipe) -> R<Value> {
        let mut value: Option<Value> = None;
        for cmd in &pipe.cmds {
            value = Some(self.eval_command(dot, cmd, value)?);
        }
        Ok(value.unwrap_or_default())
    }

    fn eval_pipeline(&mut self, dot: &Value, pipe: &'t Pipe) -> R<Value> {
        let value = self.eval_cmds(dot, pipe)?;
        for name in &pipe.decl {
            if pipe.is_assign {
                self.set_var(pipe, name, value.clone())?;
            } else {
                self.vars.push((name, value.clone()));
            }
        }
        Ok(value)
    }

    fn not_a_function(&self, cmd: &Cmd, final_: &Option<Value>) -> R<()> {
        if cmd.args.len() > 1 || final_.is_some() {
            let first = &cmd.args[0];
            return Err(self.error(
                first.pos(),
                first,
                format!("can't give argument to non-function {first}"),
            ));
        }
        Ok(())
    }

    fn eval_command(&mut self, dot: &Value, cmd: &'t Cmd, final_: Option<Value>) -> R<Value> {
        let Some(first) = cmd.args.first() else {
            return Ok(Value::Nil);
        };
        let has_args = cmd.args.len() > 1 || final_.is_some();
        match first {
            Arg::Field { pos, idents } => self.fields(dot, *pos, first, idents, has_args),
            Arg::Chain { pos, node, idents } => {
                let v = self.eval_arg(dot, node)?;
                self.fields(&v, *pos, first, idents, has_args)
            }
            Arg::Variable { pos, name, idents } => {
                let v = self.var(*pos, first, name)?;
                if idents.is_empty() {
                    self.not_a_function(cmd, &final_)?;
                    return Ok(v.clone());
                }
                self.fields(v, *pos, first, idents, has_args)
            }
            Arg::Func { name, func, .. } => {
                self.call(dot, func, name, cmd.pos, cmd, &cmd.args[1..], final_)
            }
            Arg::Pipe(p) => {
                self.not_a_function(cmd, &final_)?;
                self.eval_pipeline(dot, p)
            }
            Arg::Nil(pos) => Err(self.error(*pos, first, "nil is not a command")),
            Arg::Dot(_) => {
                self.not_a_function(cmd, &final_)?;
                Ok(dot.clone())
            }
            Arg::Const { value, .. } => {
                self.not_a_function(cmd, &final_)?;
                Ok(value.clone())
            }
        }
    }

    fn eval_arg(&mut self, dot: &Value, arg: &'t Arg) -> R<Value> {
        match arg {
            Arg::Field { pos, idents } => self.fields(dot, *pos, arg, idents, false),
            Arg::Variable { pos, name, idents } => {
                let v = self.var(*pos, arg, name)?;
                if idents.is_empty() {
                    return Ok(v.clone());
                }
                self.fields(v, *pos, arg, idents, false)
            }
            Arg::Chain { pos, node, idents } => {
                let v = self.eval_arg(dot, node)?;
                self.fields(&v, *pos, arg, idents, false)
            }
            Arg::Dot(_) => Ok(dot.clone()),
            Arg::Nil(_) => Ok(Value::Nil),
            Arg::Const { value, .. } => Ok(value.clone()),
            Arg::Func { pos, name, func } => self.call(dot, func, name, *pos, arg, &[], None),
            Arg::Pipe(p) => {
                self.enter(p)?;
                let v = self.eval_pipeline(dot, p);
                self.nested -= 1;
                v
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn call(
        &mut self,
        dot: &Value,
        func: &'t FuncEntry,
        name: &str,
        pos: usize,
        context: &dyn Display,
        args: &'t [Arg],
        final_: Option<Value>,
    ) -> R<Value> {
        match func {
            FuncEntry::And | FuncEntry::Or => {
                let want = matches!(func, FuncEntry::Or);
                if args.is_empty() && final_.is_none() {
                    return Err(self.error(
                        pos,
                        context,
                        format!("wrong number of args for {name}: want at least 1 got 0"),
                    ));
                }
                let mut v = Value::Nil;
                for a in args {
                    v = self.eval_arg(dot, a)?;
                    if v.is_true() == want {
                        return Ok(v);
                    }
                }
                Ok(final_.unwrap_or(v))
            }
            FuncEntry::Plain(f) | FuncEntry::Mutating(f) => {
                let base = self.args.len();
                for a in args {
                    match self.eval_arg(dot, a) {
                        Ok(v) => self.args.push(v),
                        Err(e) => {
                            self.args.truncate(base);
                            return Err(e);
                        }
                    }
                }
                if let Some(v) = final_ {
                    self.args.push(v);
                }
                let result = f(&self.args[base..]);
                self.args.truncate(base);
                if let (FuncEntry::Mutating(_), Ok(v), Some(Arg::Variable { name, idents, .. })) =
                    (func, &result, args.first())
                    && idents.is_empty()
                    && name != "$"
                {
                    self.set_var_quiet(name, v.clone());
                }
                result.map_err(|e| {
                    // Go checks argument count and types before calling, and reports those
                    // failures without "error calling".
                    let msg = if is_argument_error(&e.0) {
                        e.0
                    } else {
                        format!("error calling {name}: {}", e.0)
                    };
                    self.error(pos, context, msg)
                })
            }
        }
    }

    /// Walks `.A.B.C` from `receiver`.
    fn fields(
        &self,
        receiver: &Value,
        pos: usize,
        context: &dyn Display,
        idents: &Path,
        has_args: bool,
    ) -> R<Value> {
        // None: an invalid value (missing map key, nil data), through which Go yields
        // the zero value without complaint.
        let mut cur: Option<&Value> = if receiver.is_nil() {
            None
        } else {
            Some(receiver)
        };
        // A map entry explicitly holding nil: Go's "nil pointer evaluating interface {}.X".
        let mut nil_entry = false;
        // The container whose steps the chain's memo covers: a map receiver (a variable or
        // `with` holding part of `.Values`), else what the first step reached.
        let memo_at = usize::from(!matches!(receiver, Value::Map(_)));
        let mut key: Option<&Value> = None;
        for (i, name) in idents.iter().enumerate() {
            let last = i + 1 == idents.len();
            let Some(v) = cur else {
                return Ok(Value::Nil);
            };
            if i == memo_at {
                if let Some(known) = idents.recall(v) {
                    return Ok(known.clone());
                }
                key = Some(v);
            }
            match v {
                Value::Struct(s) => {
                    let found = match idents.slot(i, s) {
                        Some(x) => Ok(Some(x)),
                        None => struct_field(s, name),
                    };
                    let Ok(lookup) = found else {
                        return Err(self.error(
                            pos,
                            context,
                            format!("can't evaluate field {name} in type {}", s.type_name),
                        ));
                    };
                    if last && has_args {
                        return Err(self.error(
                            pos,
                            context,
                            format!("{name} has arguments but cannot be invoked as function"),
                        ));
                    }
                    nil_entry = false;
                    cur = lookup.filter(|x| !x.is_nil());
                }
                Value::Map(m) => {
                    if last && has_args {
                        return Err(self.error(
                            pos,
                            context,
                            format!("{name} is not a method but has arguments"),
                        ));
                    }
                    let entry = m.entries.get(name.as_str());
                    nil_entry = m.elem == MapElem::Any && entry.is_some_and(Value::is_nil);
                    cur = entry;
                }
                Value::Nil if nil_entry => {
                    return Err(self.error(
                        pos,
                        context,
                        format!("nil pointer evaluating interface {{}}.{name}"),
                    ));
                }
                Value::Nil => return Ok(Value::Nil),
                // Proto enums print through their String method; protobuf wrapper values
                // (BoolValue, UInt32Value...) arrive as plain scalars, read with GetValue.
                Value::String(_) if name == "String" => nil_entry = false,
                Value::Bool(_) | Value::Int(_) | Value::Float(_) | Value::String(_)
                    if name == "GetValue" =>
                {
                    nil_entry = false
                }
                other => {
                    return Err(self.error(
                        pos,
                        context,
                        format!("can't evaluate field {name} in type {}", other.type_name()),
                    ));
                }
            }
        }
        let found = cur.cloned().unwrap_or_default();
        if let Some(container) = key {
            idents.remember(container, &found);
        }
        Ok(found)
    }
}

fn is_argument_error(msg: &str) -> bool {
    msg.starts_with("wrong type for value")
        || msg.starts_with("invalid value; expected")
        || msg.starts_with("wrong number of args")
}

/// A struct field by Go name; `GetFoo` works as the proto getter of `Foo` (nil-safe).
/// `Err` means a strict struct has no such field.
fn struct_field<'v>(s: &'v Struct, name: &str) -> Result<Option<&'v Value>, ()> {
    let direct = s.field(name);
    if let FieldLookup::Found(x) = direct {
        return Ok(Some(x));
    }
    if let Some(f) = name.strip_prefix("Get").filter(|f| !f.is_empty()) {
        match s.field(f) {
            FieldLookup::Found(x) => return Ok(Some(x)),
            FieldLookup::Absent => return Ok(None),
            FieldLookup::Unknown => {}
        }
    }
    match direct {
        FieldLookup::Unknown => Err(()),
        _ => Ok(None),
    }
}

/// `{{template "name" pipeline}}` as Go prints it in error contexts.
struct TemplateContext<'a> {
    name: &'a str,
    pipe: Option<&'a Pipe>,
}

impl Display for TemplateContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.pipe {
            Some(p) => write!(f, "{{{{template {} {p}}}}}", format::quote(self.name)),
            None => write!(f, "{{{{template {}}}}}", format::quote(self.name)),
        }
    }
}

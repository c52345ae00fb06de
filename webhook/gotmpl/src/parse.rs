//! The parser: builds the tree Go's `text/template/parse` builds, with functions resolved
//! at parse time (an unknown function is a parse error, as in Go).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::funcs::{FuncEntry, Funcs};
use crate::lex::{Keyword, Tok, Token, lex};
use crate::memo::Path;
use crate::value::Value;

/// How deeply parentheses and if/with/range may nest (real templates stay below 20).
pub(crate) const MAX_NESTING: usize = 100;

/// A list of nodes (a template body or a branch).
pub(crate) type List = Vec<Node>;

#[derive(Debug)]
pub(crate) enum Node {
    Text(Box<str>),
    Action(Pipe),
    If(Branch),
    With(Branch),
    Range(Branch),
    Template {
        pos: usize,
        name: String,
        pipe: Option<Pipe>,
    },
    Break,
    Continue,
}

#[derive(Debug)]
pub(crate) struct Branch {
    pub pipe: Pipe,
    pub list: List,
    pub else_list: Option<List>,
}

#[derive(Debug)]
pub(crate) struct Pipe {
    pub pos: usize,
    pub decl: Vec<String>,
    pub is_assign: bool,
    pub cmds: Vec<Cmd>,
}

#[derive(Debug)]
pub(crate) struct Cmd {
    pub pos: usize,
    pub args: Vec<Arg>,
}

#[derive(Debug)]
pub(crate) enum Arg {
    /// `.A.B` (never empty).
    Field {
        pos: usize,
        idents: Path,
    },
    /// `$x.A.B`: name, then fields.
    Variable {
        pos: usize,
        name: String,
        idents: Path,
    },
    Dot(usize),
    Nil(usize),
    /// A constant: bool, number, string; `text` is how it was written.
    Const {
        pos: usize,
        value: Value,
        text: String,
    },
    Func {
        pos: usize,
        name: String,
        func: FuncEntry,
    },
    Pipe(Box<Pipe>),
    /// `(pipe).A.B`.
    Chain {
        pos: usize,
        node: Box<Arg>,
        idents: Path,
    },
}

/// A parse failure: message and the byte offset of the offending token.
#[derive(Debug)]
pub(crate) struct ParseError {
    pub msg: String,
    pub pos: usize,
}

/// The trees of one parsed text: the main one and every `define`/`block`.
pub(crate) struct Trees {
    pub main: List,
    pub defined: HashMap<String, Arc<List>>,
}

struct Parser<'f> {
    toks: Vec<Token>,
    i: usize,
    funcs: &'f Funcs,
    vars: Vec<String>,
    range_depth: usize,
    /// Open parentheses and control structures, bounded so that no input exhausts the stack.
    nesting: usize,
    defined: HashMap<String, Arc<List>>,
}

type PResult<T> = Result<T, ParseError>;

/// Parses `text` into its trees.
pub(crate) fn parse(name: &str, text: &str, funcs: &Funcs) -> PResult<Trees> {
    let toks = lex(text).map_err(|e| {
        // Go names the line an unfinished action started on, when it differs.
        let mut msg = e.msg;
        if let Some(start) = e.action_start {
            let started = crate::line_of(text, start);
            if started != crate::line_of(text, e.pos) {
                let sep = if msg.ends_with(" action") {
                    ""
                } else {
                    " in action"
                };
                msg = format!("{msg}{sep} started at {name}:{started}");
            }
        }
        ParseError { msg, pos: e.pos }
    })?;
    let mut p = Parser {
        toks,
        i: 0,
        funcs,
        vars: vec!["$".into()],
        range_depth: 0,
        nesting: 0,
        defined: HashMap::new(),
    };
    let main = p.top_level()?;
    if let Some(existing) = p.defined.get(name)
        && !is_empty_tree(existing)
        && !is_empty_tree(&main)
    {
        return Err(ParseError {
            msg: format!("template: multiple definition of template {name:?}"),
            pos: 0,
        });
    }
    Ok(Trees {
        main,
        defined: p.defined,
    })
}

/// Go's `parse.IsEmptyTree`: only whitespace text and comments.
pub(crate) fn is_empty_tree(list: &List) -> bool {
    list.iter().all(|n| match n {
        Node::Text(t) => t.trim().is_empty(),
        _ => false,
    })
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        // The token list always ends with Eof, and we never advance past it.
        &self.toks[self.i.min(self.toks.len() - 1)]
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        self.i += 1;
        t
    }

    fn skip_space(&mut self) {
        while self.peek().kind == Tok::Space {
            self.i += 1;
        }
    }

    fn peek_non_space(&mut self) -> &Token {
        self.skip_space();
        self.peek()
    }

    fn next_non_space(&mut self) -> Token {
        self.skip_space();
        self.next()
    }

    fn err<T>(&self, pos: usize, msg: impl Into<String>) -> PResult<T> {
        Err(ParseError {
            msg: msg.into(),
            pos,
        })
    }

    fn unexpected<T>(&self, tok: &Token, context: &str) -> PResult<T> {
        self.err(
            tok.pos,
            format!("unexpected {} in {context}", describe(&tok.kind)),
        )
    }

    fn expect_right_delim(&mut self, context: &str) -> PResult<Token> {
        let t = self.next_non_space();
        if t.kind != Tok::RightDelim {
            return self.unexpected(&t, context);
        }
        Ok(t)
    }

    fn top_level(&mut self) -> PResult<List> {
        let mut list = Vec::new();
        loop {
            if self.peek().kind == Tok::Eof {
                return Ok(list);
            }
            if self.peek().kind == Tok::LeftDelim {
                let save = self.i;
                self.next();
                if self.next_non_space().kind == Tok::Keyword(Keyword::Define) {
                    self.definition()?;
                    continue;
                }
                self.i = save;
            }
            match self.text_or_action()? {
                Item::Node(n) => list.push(n),
                Item::Skip => {}
                Item::End(pos) => return self.err(pos, "unexpected {{end}}"),
                Item::Else(pos) => return self.err(pos, "unexpected {{else}}"),
            }
        }
    }

    /// `{{define "name"}} ... {{end}}`: a fresh variable scope, added to the set.
    fn definition(&mut self) -> PResult<()> {
        let (name, _) = self.template_name("define clause")?;
        self.expect_right_delim("define clause")?;
        let saved_vars = std::mem::replace(&mut self.vars, vec!["$".into()]);
        let saved_depth = std::mem::take(&mut self.range_depth);
        let (list, end) = self.item_list()?;
        self.vars = saved_vars;
        self.range_depth = saved_depth;
        if let Item::Else(pos) = end {
            return self.err(pos, "unexpected {{else}} in define clause");
        }
        self.add_tree(name, list)
    }

    /// Go's `treeSet` rule: an empty tree never replaces another; two non-empty ones clash.
    fn add_tree(&mut self, name: String, list: List) -> PResult<()> {
        match self.defined.get(&name) {
            Some(existing) if !is_empty_tree(existing) => {
                if !is_empty_tree(&list) {
                    return self.err(
                        self.peek().pos,
                        format!("template: multiple definition of template {name:?}"),
                    );
                }
            }
            _ => {
                self.defined.insert(name, Arc::new(list));
            }
        }
        Ok(())
    }

    /// The quoted name after define/template/block, and its position.
    fn template_name(&mut self, context: &str) -> PResult<(String, usize)> {
        let t = self.next_non_space();
        match &t.kind {
            Tok::String(s) => unquote(s)
                .map(|name| (name, t.pos))
                .map_err(|msg| ParseError { msg, pos: t.pos }),
            _ => self.unexpected(&t, context),
        }
    }

    /// Nodes up to `{{end}}` or `{{else}}`, which is returned separately.
    fn item_list(&mut self) -> PResult<(List, Item)> {
        let mut list = Vec::new();
        loop {
            if self.peek_non_space().kind == Tok::Eof {
                return self.err(self.peek().pos, "unexpected EOF");
            }
            match self.text_or_action()? {
                Item::Node(n) => list.push(n),
                Item::Skip => {}
                end @ (Item::End(_) | Item::Else(_)) => return Ok((list, end)),
            }
        }
    }

    fn text_or_action(&mut self) -> PResult<Item> {
        let t = self.next_non_space();
        match t.kind {
            Tok::Text(s) => Ok(Item::Node(Node::Text(s.into()))),
            Tok::Comment => Ok(Item::Skip),
            Tok::LeftDelim => self.action(),
            _ => self.unexpected(&t, "input"),
        }
    }

    fn action(&mut self) -> PResult<Item> {
        let t = self.next_non_space();
        match t.kind {
            Tok::Keyword(Keyword::Block) => self.block(),
            Tok::Keyword(Keyword::Break) => self.loop_control(t.pos, "break", Node::Break),
            Tok::Keyword(Keyword::Continue) => self.loop_control(t.pos, "continue", Node::Continue),
            Tok::Keyword(Keyword::Else) => {
                // "{{else if" / "{{else with" leave the keyword pending for the caller.
                let k = &self.peek_non_space().kind;
                if !matches!(k, Tok::Keyword(Keyword::If | Keyword::With)) {
                    self.expect_right_delim("else")?;
                }
                Ok(Item::Else(t.pos))
            }
            Tok::Keyword(Keyword::End) => {
                self.expect_right_delim("end")?;
                Ok(Item::End(t.pos))
            }
            Tok::Keyword(Keyword::If) => Ok(Item::Node(Node::If(self.control("if")?))),
            Tok::Keyword(Keyword::With) => Ok(Item::Node(Node::With(self.control("with")?))),
            Tok::Keyword(Keyword::Range) => Ok(Item::Node(Node::Range(self.control("range")?))),
            Tok::Keyword(Keyword::Template) => {
                let (name, pos) = self.template_name("template clause")?;
                let pipe = if self.peek_non_space().kind == Tok::RightDelim {
                    self.next();
                    None
                } else {
                    Some(self.pipeline("template clause", Tok::RightDelim)?)
                };
                Ok(Item::Node(Node::Template { pos, name, pipe }))
            }
            _ => {
                self.i -= 1;
                // Variables declared here persist until the enclosing {{end}}.
                Ok(Item::Node(Node::Action(
                    self.pipeline("command", Tok::RightDelim)?,
                )))
            }
        }
    }

    fn loop_control(&mut self, pos: usize, word: &str, node: Node) -> PResult<Item> {
        let t = self.next_non_space();
        if t.kind != Tok::RightDelim {
            return self.err(
                t.pos,
                format!("unexpected {} in {{{{{word}}}}}", describe(&t.kind)),
            );
        }
        if self.range_depth == 0 {
            return self.err(pos, format!("{{{{{word}}}}} outside {{{{range}}}}"));
        }
        Ok(Item::Node(node))
    }

    /// `{{block "name" pipeline}} body {{end}}`: defines `name` and calls it.
    fn block(&mut self) -> PResult<Item> {
        let (name, pos) = self.template_name("block clause")?;
        let pipe = self.pipeline("block clause", Tok::RightDelim)?;
        let saved_vars = std::mem::replace(&mut self.vars, vec!["$".into()]);
        let saved_depth = std::mem::take(&mut self.range_depth);
        let (list, end) = self.item_list()?;
        self.vars = saved_vars;
        self.range_depth = saved_depth;
        if let Item::Else(p) = end {
            return self.err(p, "unexpected {{else}} in block clause");
        }
        self.add_tree(name.clone(), list)?;
        Ok(Item::Node(Node::Template {
            pos,
            name,
            pipe: Some(pipe),
        }))
    }

    /// if/with/range: pipeline, body, optional else (with `else if`/`else with` chains).
    fn control(&mut self, context: &str) -> PResult<Branch> {
        self.enter()?;
        let branch = self.control_inner(context);
        self.nesting -= 1;
        branch
    }

    /// Counts one more level of nesting, refusing absurd depths.
    fn enter(&mut self) -> PResult<()> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return self.err(self.peek().pos, "max expression depth exceeded");
        }
        Ok(())
    }

    fn control_inner(&mut self, context: &str) -> PResult<Branch> {
        let vars_mark = self.vars.len();
        let pipe = self.pipeline(context, Tok::RightDelim)?;
        if context == "range" {
            self.range_depth += 1;
        }
        let (list, next) = self.item_list()?;
        if context == "range" {
            self.range_depth -= 1;
        }
        let else_list = match next {
            Item::End(_) => None,
            Item::Else(_) => {
                let k = self.peek_non_space().kind.clone();
                if context == "if" && k == Tok::Keyword(Keyword::If) {
                    self.next();
                    Some(vec![Node::If(self.control("if")?)])
                } else if context == "with" && k == Tok::Keyword(Keyword::With) {
                    self.next();
                    Some(vec![Node::With(self.control("with")?)])
                } else {
                    let (list, next) = self.item_list()?;
                    if let Item::Else(pos) = next {
                        return self.err(pos, "expected end; found {{else}}");
                    }
                    Some(list)
                }
            }
            Item::Node(_) | Item::Skip => None,
        };
        self.vars.truncate(vars_mark);
        Ok(Branch {
            pipe,
            list,
            else_list,
        })
    }

    fn pipeline(&mut self, context: &str, end: Tok) -> PResult<Pipe> {
        self.enter()?;
        let pipe = self.pipeline_inner(context, end);
        self.nesting -= 1;
        pipe
    }

    fn pipeline_inner(&mut self, context: &str, end: Tok) -> PResult<Pipe> {
        let pos = self.peek_non_space().pos;
        let mut pipe = Pipe {
            pos,
            decl: Vec::new(),
            is_assign: false,
            cmds: Vec::new(),
        };
        self.declarations(&mut pipe, context)?;
        loop {
            let t = self.next_non_space();
            if t.kind == end {
                break;
            }
            match t.kind {
                Tok::Bool(_)
                | Tok::CharConstant(_)
                | Tok::Dot
                | Tok::Field(_)
                | Tok::Identifier(_)
                | Tok::Number(_)
                | Tok::Nil
                | Tok::String(_)
                | Tok::Variable(_)
                | Tok::LeftParen => {
                    self.i -= 1;
                    let cmd = self.command()?;
                    pipe.cmds.push(cmd);
                }
                _ => return self.unexpected(&t, context),
            }
        }
        if pipe.cmds.is_empty() {
            return self.err(pos, format!("missing value for {context}"));
        }
        for (i, c) in pipe.cmds.iter().enumerate().skip(1) {
            if matches!(
                c.args.first(),
                Some(Arg::Const { .. } | Arg::Dot(_) | Arg::Nil(_))
            ) {
                return self.err(
                    c.pos,
                    format!("non executable command in pipeline stage {}", i + 1),
                );
            }
        }
        Ok(pipe)
    }

    /// `$x :=`, `$x =`, and `$i, $e :=` in range.
    fn declarations(&mut self, pipe: &mut Pipe, context: &str) -> PResult<()> {
        loop {
            let save = self.i;
            let Tok::Variable(name) = self.peek_non_space().kind.clone() else {
                return Ok(());
            };
            let vpos = self.peek().pos;
            self.next();
            match self.peek_non_space().kind {
                Tok::Declare | Tok::Assign => {
                    pipe.is_assign = self.peek().kind == Tok::Assign;
                    self.next();
                    pipe.decl.push(name.clone());
                    self.vars.push(name);
                    return Ok(());
                }
                Tok::Char(',') => {
                    self.next();
                    pipe.decl.push(name.clone());
                    self.vars.push(name);
                    if context == "range" && pipe.decl.len() < 2 {
                        match self.peek_non_space().kind {
                            Tok::Variable(_) | Tok::RightDelim | Tok::RightParen => continue,
                            _ => return self.err(vpos, "range can only initialize variables"),
                        }
                    }
                    return self.err(vpos, format!("too many declarations in {context}"));
                }
                _ => {
                    self.i = save;
                    return Ok(());
                }
            }
        }
    }

    fn command(&mut self) -> PResult<Cmd> {
        let pos = self.peek_non_space().pos;
        let mut cmd = Cmd {
            pos,
            args: Vec::new(),
        };
        loop {
            self.skip_space();
            if let Some(arg) = self.operand()? {
                cmd.args.push(arg);
            }
            let t = self.next();
            match t.kind {
                Tok::Space => continue,
                Tok::RightDelim | Tok::RightParen => self.i -= 1,
                Tok::Pipe => {}
                _ => return self.unexpected(&t, "operand"),
            }
            break;
        }
        if cmd.args.is_empty() {
            return self.err(pos, "empty command");
        }
        Ok(cmd)
    }

    fn operand(&mut self) -> PResult<Option<Arg>> {
        let Some(node) = self.term()? else {
            return Ok(None);
        };
        let mut fields = Vec::new();
        let chain_pos = self.peek().pos;
        while let Tok::Field(f) = &self.peek().kind {
            fields.push(f.clone());
            self.next();
        }
        if fields.is_empty() {
            return Ok(Some(node));
        }
        Ok(Some(match node {
            Arg::Field { pos, mut idents } => {
                idents.extend(fields);
                Arg::Field { pos, idents }
            }
            Arg::Variable {
                pos,
                name,
                mut idents,
            } => {
                idents.extend(fields);
                Arg::Variable { pos, name, idents }
            }
            Arg::Const { .. } | Arg::Nil(_) | Arg::Dot(_) => {
                return self.err(
                    chain_pos,
                    format!("unexpected . after term {:?}", node.to_string()),
                );
            }
            other => Arg::Chain {
                pos: chain_pos,
                node: Box::new(other),
                idents: Path::from(fields),
            },
        }))
    }

    fn term(&mut self) -> PResult<Option<Arg>> {
        let t = self.next_non_space();
        let pos = t.pos;
        Ok(Some(match t.kind {
            Tok::Identifier(name) => {
                let Some(func) = self.funcs.lookup(&name) else {
                    return self.err(pos, format!("function {name:?} not defined"));
                };
                Arg::Func { pos, name, func }
            }
            Tok::Dot => Arg::Dot(pos),
            Tok::Nil => Arg::Nil(pos),
            Tok::Variable(name) => {
                if !self.vars.contains(&name) {
                    return self.err(pos, format!("undefined variable {name:?}"));
                }
                Arg::Variable {
                    pos,
                    name,
                    idents: Path::default(),
                }
            }
            Tok::Field(f) => Arg::Field {
                pos,
                idents: Path::from(vec![f]),
            },
            Tok::Bool(b) => Arg::Const {
                pos,
                value: Value::Bool(b),
                text: b.to_string(),
            },
            Tok::Number(text) | Tok::CharConstant(text) => {
                let value = number(&text).map_err(|msg| ParseError { msg, pos })?;
                Arg::Const { pos, value, text }
            }
            Tok::String(text) => {
                let s = unquote(&text).map_err(|msg| ParseError { msg, pos })?;
                Arg::Const {
                    pos,
                    value: Value::String(s.into()),
                    text,
                }
            }
            Tok::LeftParen => Arg::Pipe(Box::new(
                self.pipeline("parenthesized pipeline", Tok::RightParen)?,
            )),
            _ => {
                self.i -= 1;
                return Ok(None);
            }
        }))
    }
}

enum Item {
    Node(Node),
    /// A comment: nothing to execute.
    Skip,
    End(usize),
    Else(usize),
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Text(s) => format!("{s:?}"),
        Tok::LeftDelim => "\"{{\"".into(),
        Tok::RightDelim => "\"}}\"".into(),
        Tok::Comment => "comment".into(),
        Tok::Space => "space".into(),
        Tok::Pipe => "\"|\"".into(),
        Tok::LeftParen => "\"(\"".into(),
        Tok::RightParen => "\")\"".into(),
        Tok::Declare => "\":=\"".into(),
        Tok::Assign => "\"=\"".into(),
        Tok::Char(c) => format!("{:?}", c.to_string()),
        Tok::Field(f) => format!("<.{f}>"),
        Tok::Dot => "<.>".into(),
        Tok::Variable(v) => format!("{v:?}"),
        Tok::Identifier(v) => format!("{v:?}"),
        Tok::Bool(b) => format!("\"{b}\""),
        Tok::Nil => "<nil>".into(),
        Tok::Number(n) | Tok::CharConstant(n) | Tok::String(n) => format!("{n:?}"),
        Tok::Keyword(k) => format!("<{}>", format!("{k:?}").to_lowercase()),
        Tok::Eof => "EOF".into(),
    }
}

/// Go's constant rules: text with `.`, `e` or `p` (not hex) is a float64; other numbers and
/// character constants are ints.
fn number(text: &str) -> Result<Value, String> {
    let bad = || format!("bad number syntax: {text:?}");
    if text.starts_with('\'') {
        let inner = &text[1..text.len().saturating_sub(1).max(1)];
        let s = unescape(inner, '\'')?;
        let mut chars = s.chars();
        return match (chars.next(), chars.next()) {
            (Some(c), None) => Ok(Value::Int(c as i64)),
            _ => Err(format!("malformed character constant: {text}")),
        };
    }
    let clean: String = text.chars().filter(|c| *c != '_').collect();
    let (neg, body) = match clean.as_bytes().first() {
        Some(b'-') => (true, &clean[1..]),
        Some(b'+') => (false, &clean[1..]),
        _ => (false, &clean[..]),
    };
    let lower = body.to_ascii_lowercase();
    let is_hex = lower.starts_with("0x");
    if !is_hex && (lower.contains('.') || lower.contains('e')) || is_hex && lower.contains('p') {
        if is_hex {
            return Err(bad());
        }
        let f: f64 = body.parse().map_err(|_| bad())?;
        return Ok(Value::Float(if neg { -f } else { f }));
    }
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, &lower[..])
    };
    let magnitude = u64::from_str_radix(digits, radix).map_err(|_| bad())?;
    let v = if neg {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    };
    v.map(Value::Int)
        .ok_or_else(|| format!("{text} overflows int"))
}

/// `strconv.Unquote` for a string token (double-quoted or raw).
fn unquote(text: &str) -> Result<String, String> {
    if let Some(raw) = text.strip_prefix('`').and_then(|t| t.strip_suffix('`')) {
        return Ok(raw.replace('\r', ""));
    }
    match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(inner) if text.len() >= 2 => unescape(inner, '"'),
        _ => Err("invalid syntax".into()),
    }
}

/// Go escape sequences inside a quoted literal delimited by `quote`.
fn unescape(s: &str, quote: char) -> Result<String, String> {
    let bad = || "invalid syntax".to_string();
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == quote {
            return Err(bad());
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        let e = chars.next().ok_or_else(bad)?;
        match e {
            'a' => out.push('\x07'),
            'b' => out.push('\x08'),
            'f' => out.push('\x0c'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\x0b'),
            '\\' => out.push('\\'),
            c if c == quote => out.push(c),
            'x' | 'u' | 'U' => {
                let n = match e {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let hex: String = chars.by_ref().take(n).collect();
                if hex.len() != n {
                    return Err(bad());
                }
                let v = u32::from_str_radix(&hex, 16).map_err(|_| bad())?;
                if e == 'x' {
                    // A \x escape is one byte; only ASCII keeps the result valid UTF-8.
                    if v > 0x7f {
                        return Err(bad());
                    }
                    out.push(v as u8 as char);
                } else {
                    out.push(char::from_u32(v).ok_or_else(bad)?);
                }
            }
            '0'..='7' => {
                let rest: String = chars.by_ref().take(2).collect();
                let v = u32::from_str_radix(&format!("{e}{rest}"), 8).map_err(|_| bad())?;
                if rest.len() != 2 || v > 0x7f {
                    return Err(bad());
                }
                out.push(v as u8 as char);
            }
            _ => return Err(bad()),
        }
    }
    Ok(out)
}

/// Node spellings as Go's `String()` methods write them (used in error contexts).
impl fmt::Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arg::Field { idents, .. } => {
                for i in idents.iter() {
                    write!(f, ".{i}")?;
                }
                Ok(())
            }
            Arg::Variable { name, idents, .. } => {
                f.write_str(name)?;
                for i in idents.iter() {
                    write!(f, ".{i}")?;
                }
                Ok(())
            }
            Arg::Dot(_) => f.write_str("."),
            Arg::Nil(_) => f.write_str("nil"),
            Arg::Const { text, .. } => f.write_str(text),
            Arg::Func { name, .. } => f.write_str(name),
            Arg::Pipe(p) => write!(f, "({p})"),
            Arg::Chain { node, idents, .. } => {
                match &**node {
                    Arg::Pipe(p) => write!(f, "({p})")?,
                    other => write!(f, "{other}")?,
                }
                for i in idents.iter() {
                    write!(f, ".{i}")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{a}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.decl.is_empty() {
            f.write_str(&self.decl.join(", "))?;
            f.write_str(if self.is_assign { " = " } else { " := " })?;
        }
        for (i, c) in self.cmds.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

impl Arg {
    pub(crate) fn pos(&self) -> usize {
        match self {
            Arg::Field { pos, .. }
            | Arg::Variable { pos, .. }
            | Arg::Dot(pos)
            | Arg::Nil(pos)
            | Arg::Const { pos, .. }
            | Arg::Func { pos, .. }
            | Arg::Chain { pos, .. } => *pos,
            Arg::Pipe(p) => p.pos,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_follow_go_constant_rules() {
        assert_eq!(number("42").unwrap(), Value::Int(42));
        assert_eq!(number("-7").unwrap(), Value::Int(-7));
        assert_eq!(number("0x1F").unwrap(), Value::Int(31));
        assert_eq!(number("0o17").unwrap(), Value::Int(15));
        assert_eq!(number("017").unwrap(), Value::Int(15));
        assert_eq!(number("0b101").unwrap(), Value::Int(5));
        assert_eq!(number("1_000").unwrap(), Value::Int(1000));
        assert_eq!(number("1.5").unwrap(), Value::Float(1.5));
        assert_eq!(number("1e3").unwrap(), Value::Float(1000.0));
        assert_eq!(number("'a'").unwrap(), Value::Int(97));
        assert_eq!(number("'\\n'").unwrap(), Value::Int(10));
        assert!(number("12ab").is_err());
        assert!(number("99999999999999999999").is_err());
    }

    #[test]
    fn strings_unquote_like_go() {
        assert_eq!(unquote(r#""a\tb\"\u00e9\x41""#).unwrap(), "a\tb\"éA");
        assert_eq!(unquote("`a\\n`").unwrap(), "a\\n");
        assert!(unquote(r#""\q""#).is_err());
    }
}

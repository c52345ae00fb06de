//! A fast reader for the block-style YAML injection templates produce, with `serde_yaml_ng` as
//! the authority: anything outside the plain subset (anchors, tags, folded or multi-line
//! quoted scalars, unusual numbers, duplicate keys, …) returns `None` and the caller falls back
//! to the full parser. Reading the rendered sidecar template is the largest single cost of an
//! injection, and this subset covers what templates write.
//!
//! Speed comes from touching each byte few times: lines are split and measured once, the
//! entries of a mapping or sequence are gathered on a stack shared by the whole parse so each
//! `Map`/`Vec` is allocated once at its final size, and keys and scalars without escapes are
//! borrowed from the input.

use std::borrow::Cow;

use crate::doc::{Members, Node};

/// What the reader builds: a tree borrowing the text's strings where it can.
type Tree<'t> = Node<'t>;

/// Parses `text` as one YAML document, or `None` when it is outside the supported subset.
pub fn parse(text: &str) -> Option<Tree<'_>> {
    if text.starts_with('%') {
        return None;
    }
    let mut p = Parser {
        src: text,
        next: 0,
        consumed: 0,
        line: None,
        invalid: false,
        virt: None,
        stack: Stack::new(),
    };
    p.fill();
    let v = match p.line {
        None => Node::Null,
        Some(_) => p.node(0)?,
    };
    (p.line.is_none() && p.virt.is_none() && !p.invalid).then_some(v)
}

/// One line of `src` from byte `at`: the line, and where the next one starts (past the end of
/// `src` after the last line).
fn split_line(src: &str, at: usize) -> (Line<'_>, usize) {
    let rest = &src[at..];
    let (raw, next) = match find(rest.as_bytes(), [b'\n']) {
        Some(i) => (&rest[..i], at + i + 1),
        None => (rest, src.len() + 1),
    };
    let raw = raw.strip_suffix('\r').unwrap_or(raw);
    let indent = indentation(raw.as_bytes());
    let text = trim_end(&raw[indent..]);
    (Line { raw, indent, text }, next)
}

/// The number of leading spaces, eight at a time (indentation is mostly 2 to 10 spaces).
fn indentation(b: &[u8]) -> usize {
    const SPACES: u64 = u64::from_ne_bytes([b' '; 8]);
    let mut n = 0;
    for chunk in b.chunks_exact(8) {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let other = u64::from_le_bytes(word) ^ SPACES;
        if other != 0 {
            return n + other.trailing_zeros() as usize / 8;
        }
        n += 8;
    }
    n + b[n..].iter().take_while(|&&c| c == b' ').count()
}

/// Whether the full parser must judge a line: tab indentation (not YAML; it says so) and
/// document markers.
fn is_unsupported(line: &Line<'_>) -> bool {
    line.raw.as_bytes().get(line.indent) == Some(&b'\t')
        || (line.indent == 0 && (line.text == "---" || line.text == "..."))
}

/// `str::trim_end`, without decoding characters when the end is ASCII.
fn trim_end(s: &str) -> &str {
    let b = s.as_bytes();
    let mut n = b.len();
    // Tab, line feed, vertical tab, form feed, carriage return and space.
    while n > 0 && matches!(b[n - 1], b'\t'..=b'\r' | b' ') {
        n -= 1;
    }
    if n > 0 && !b[n - 1].is_ascii() {
        // Unicode white space (U+00A0, U+3000, …) trims too.
        return s.trim_end();
    }
    &s[..n]
}

struct Line<'a> {
    /// The line without its line break.
    raw: &'a str,
    indent: usize,
    /// The line without its indentation and trailing white space.
    text: &'a str,
}

/// Entries and items of the collections being read, innermost last. A collection pushes its
/// children here and moves them into a `Map`/`Vec` of the right size when it ends, which
/// avoids growing every collection one element at a time.
struct Stack<'t> {
    entries: Vec<(Cow<'t, str>, Tree<'t>)>,
    items: Vec<Tree<'t>>,
}

impl<'t> Stack<'t> {
    fn new() -> Self {
        // Room for the deepest nesting of a rendered sidecar without growing.
        Stack {
            entries: Vec::with_capacity(64),
            items: Vec::with_capacity(32),
        }
    }

    /// The entries pushed since `base` as a mapping; `None` on a duplicate key.
    fn map_from(&mut self, base: usize) -> Option<Tree<'t>> {
        // `split_off` moves the entries in one copy; `drain(..).collect()` moves them one by one.
        let members = Members::distinct(self.entries.split_off(base))?;
        Some(Node::Object(members))
    }

    fn seq_from(&mut self, base: usize) -> Tree<'t> {
        Node::Array(self.items.split_off(base))
    }
}

struct Parser<'a> {
    src: &'a str,
    /// Where the line after `line` starts.
    next: usize,
    /// Where the line after the last one consumed starts: a literal block's first line.
    consumed: usize,
    /// The current line (never blank or a comment), `None` at the end. Lines are split as the
    /// reader reaches them, and blank ones skipped once.
    line: Option<(usize, &'a str)>,
    /// A line only the full parser handles was met.
    invalid: bool,
    /// The rest of a `- ` item line, read as if it were its own line at this indent.
    virt: Option<(usize, &'a str)>,
    stack: Stack<'a>,
}

fn is_blank(text: &str) -> bool {
    text.is_empty() || text.starts_with('#')
}

fn is_item(text: &str) -> bool {
    text == "-" || text.starts_with("- ")
}

impl<'a> Parser<'a> {
    /// Moves `line` to the next line that is not blank or a comment.
    fn fill(&mut self) {
        self.consumed = self.next;
        while self.next <= self.src.len() {
            let (line, next) = split_line(self.src, self.next);
            self.next = next;
            if is_unsupported(&line) {
                self.invalid = true;
            }
            if !is_blank(line.text) {
                self.line = Some((line.indent, line.text));
                return;
            }
        }
        self.line = None;
    }

    /// The current line (indent, text), virtual first.
    fn peek(&self) -> Option<(usize, &'a str)> {
        self.virt.or(self.line)
    }

    fn advance(&mut self) {
        if self.virt.take().is_none() {
            self.fill();
        }
    }

    /// A block node whose lines are indented at least `min`.
    fn node(&mut self, min: usize) -> Option<Tree<'a>> {
        let (indent, text) = self.peek()?;
        if indent < min {
            return None;
        }
        if is_item(text) {
            return self.sequence(indent);
        }
        if let Some(first) = split_key(text) {
            return self.mapping(indent, first);
        }
        // A lone scalar or flow collection.
        self.advance();
        self.inline_value(text, indent)
    }

    fn sequence(&mut self, indent: usize) -> Option<Tree<'a>> {
        let base = self.stack.items.len();
        while let Some((i, text)) = self.peek() {
            if i != indent || !is_item(text) {
                break;
            }
            let rest = text[1..].trim_start_matches(' ');
            let item = if rest.is_empty() || rest.starts_with('#') {
                self.advance();
                match self.peek() {
                    Some((j, _)) if j > indent => self.node(j)?,
                    _ => Node::Null,
                }
            } else {
                let offset = indent + (text.len() - rest.len());
                let key = if is_item(rest) { None } else { split_key(rest) };
                if is_item(rest) || key.is_some() {
                    // The rest is read as its own line; continuation lines follow. A virtual
                    // line (`- - a`) has already moved past its real line.
                    if self.virt.replace((offset, rest)).is_none() {
                        self.fill();
                    }
                    match key {
                        Some(first) => self.mapping(offset, first)?,
                        None => self.sequence(offset)?,
                    }
                } else {
                    self.advance();
                    self.inline_value(rest, offset)?
                }
            };
            self.stack.items.push(item);
        }
        Some(self.stack.seq_from(base))
    }

    /// A block mapping at `indent` whose first line (the current one) splits into `first`.
    fn mapping(&mut self, indent: usize, first: KeyAndRest<'a>) -> Option<Tree<'a>> {
        let base = self.stack.entries.len();
        let mut entry = first;
        loop {
            let (key, rest) = entry;
            self.advance();
            let value = if rest.is_empty() || rest.starts_with('#') {
                match self.peek() {
                    Some((j, _)) if j > indent => self.node(j)?,
                    // Sequences may sit at the key's own indent.
                    Some((j, t)) if j == indent && is_item(t) => self.sequence(j)?,
                    _ => Node::Null,
                }
            } else {
                self.inline_value(rest, indent)?
            };
            self.stack.entries.push((key, value));
            entry = match self.peek() {
                Some((i, text)) if i == indent => split_key(text)?,
                Some((i, _)) if i > indent => return None,
                _ => break,
            };
        }
        self.stack.map_from(base)
    }

    /// A value written after `key: ` or `- `: a scalar, a flow collection (which may run over
    /// several lines) or a literal block scalar.
    fn inline_value(&mut self, text: &'a str, parent_indent: usize) -> Option<Tree<'a>> {
        match *text.as_bytes().first()? {
            b'|' => self.literal_block(text, parent_indent),
            b'{' | b'[' => self.flow(text),
            b'"' => {
                let (s, rest) = double_quoted(text)?;
                trailing_ok(rest).then_some(Node::String(s))
            }
            b'\'' => {
                let (s, rest) = single_quoted(text)?;
                trailing_ok(rest).then_some(Node::String(s))
            }
            b'>' | b'&' | b'*' | b'!' | b'%' | b'@' | b'`' | b'?' => None,
            _ => {
                let s = plain_text(text)?;
                // A plain scalar continued on the next line is folded: not supported here.
                if let Some((j, t)) = self.peek()
                    && j > parent_indent
                    && !is_item(t)
                    && self.virt.is_none()
                {
                    return None;
                }
                plain(s)
            }
        }
    }

    fn literal_block(&mut self, header: &str, parent_indent: usize) -> Option<Tree<'a>> {
        let chomp = match strip_comment(&header[1..]) {
            "" => Chomp::Clip,
            "-" => Chomp::Strip,
            _ => return None,
        };
        if self.virt.is_some() {
            return None;
        }
        // Lines belong to the block while blank or indented past the parent. They are read
        // from the text again: the cursor has skipped blank lines, which are content here.
        let mut block_indent = None;
        let mut body: Vec<&str> = Vec::new();
        let mut at = self.consumed;
        while at <= self.src.len() {
            let (line, next) = split_line(self.src, at);
            if is_unsupported(&line) {
                return None;
            }
            if line.text.is_empty() {
                // Spaces past the block's indentation are content, even on a blank line.
                match block_indent {
                    Some(bi) if line.raw.len() > bi => body.push(&line.raw[bi..]),
                    None if line.raw.len() > parent_indent + 1 => return None,
                    _ => body.push(""),
                }
                at = next;
                continue;
            }
            let bi = *block_indent.get_or_insert(line.indent);
            if line.indent <= parent_indent || line.indent < bi {
                break;
            }
            body.push(&line.raw[bi..]);
            at = next;
        }
        self.next = at;
        self.fill();
        // Trailing blank lines go with chomping (clip and strip both drop them).
        while body.last() == Some(&"") {
            body.pop();
        }
        if body.is_empty() {
            return Some(Node::from(String::new()));
        }
        let mut s = body.join("\n");
        match chomp {
            Chomp::Strip => {}
            Chomp::Clip => s.push('\n'),
        }
        Some(Node::from(s))
    }

    /// A flow collection starting in `text`, possibly continued on following lines.
    fn flow(&mut self, text: &'a str) -> Option<Tree<'a>> {
        let line = strip_comment(text);
        // Nearly all flow values fit on their line: read them without measuring first.
        if let Some(v) = read_flow(line, &mut self.stack) {
            return Some(v);
        }
        if depth(line)? == 0 {
            return None;
        }
        // The lines are joined into a buffer of this call's, so what is read from it is
        // copied out.
        let mut joined = line.to_string();
        while depth(&joined)? > 0 {
            if self.virt.is_some() {
                return None;
            }
            let (_, text) = self.line?;
            joined.push(' ');
            joined.push_str(strip_comment(text));
            self.fill();
        }
        read_flow(&joined, &mut Stack::new()).map(Node::into_owned)
    }
}

/// `text` as exactly one flow collection. On failure the stack is as it was: a collection
/// that broke off part-way must not leave its entries to the one around it.
fn read_flow<'t>(text: &'t str, stack: &mut Stack<'t>) -> Option<Tree<'t>> {
    let (entries, items) = (stack.entries.len(), stack.items.len());
    let mut f = Flow {
        s: text,
        i: 0,
        stack,
    };
    let v = f.value().filter(|_| {
        f.ws();
        f.i == f.s.len()
    });
    if v.is_none() {
        stack.entries.truncate(entries);
        stack.items.truncate(items);
    }
    v
}

/// Open brackets minus closed ones, outside quotes; `None` if it goes negative.
fn depth(text: &str) -> Option<i32> {
    let mut d = 0i32;
    let mut quote: Option<u8> = None;
    for &c in text.as_bytes() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') => quote = Some(c),
            (None, b'{' | b'[') => d += 1,
            (None, b'}' | b']') => {
                d -= 1;
                if d < 0 {
                    return None;
                }
            }
            _ => {}
        }
    }
    Some(d)
}

enum Chomp {
    Clip,
    Strip,
}

fn trailing_ok(rest: &str) -> bool {
    let r = rest.trim_start();
    r.is_empty() || (r.starts_with('#') && rest.starts_with([' ', '\t']))
}

/// Whether a plain key cannot start with this byte: an indicator (a `-` can, when it is not
/// a sequence entry).
fn starts_with_indicator(text: &str) -> bool {
    match text.as_bytes().first() {
        Some(b'-') => is_item(text),
        Some(b'[' | b'{' | b'#' | b'&' | b'*' | b'!' | b'|' | b'>' | b'%' | b'@' | b'`' | b'?') => {
            true
        }
        _ => false,
    }
}

/// A mapping entry's key, and the text after its `: `.
type KeyAndRest<'a> = (Cow<'a, str>, &'a str);

/// `key: rest` (plain, single- or double-quoted key); `None` when the line is not a mapping
/// entry. Keys without escapes are borrowed, so classifying a line costs no allocation.
fn split_key(text: &str) -> Option<KeyAndRest<'_>> {
    let (key, after) = match text.as_bytes().first() {
        // Quoted sequence items (`- "-p"`) come here too, and are read twice when they hold
        // escapes: rare enough not to matter.
        Some(b'"') => double_quoted(text)?,
        Some(b'\'') => single_quoted(text)?,
        _ => {
            if starts_with_indicator(text) {
                return None;
            }
            // `find_colon` has checked the `: ` (or the `:` ending the line).
            let end = find_colon(text)?;
            let key = Cow::Borrowed(trim_end(&text[..end]));
            return Some((key, skip_spaces(&text[end + 1..])));
        }
    };
    let rest = after.strip_prefix(':')?;
    if !(rest.is_empty() || rest.starts_with(' ')) {
        return None;
    }
    Some((key, skip_spaces(rest)))
}

fn skip_spaces(text: &str) -> &str {
    let n = text.bytes().take_while(|&b| b == b' ').count();
    &text[n..]
}

/// A quoted scalar that needs no unescaping (no `\\` in double quotes, no `''` in single
/// ones), borrowed, and the text after it; `None` when unescaping is needed or it is unclosed.
fn plain_quoted(text: &str, quote: u8) -> Option<(&str, &str)> {
    let body = &text[1..];
    let b = body.as_bytes();
    let end = if quote == b'"' {
        find(b, [b'"', b'\\']).filter(|&i| b[i] == b'"')?
    } else {
        memchr::memchr(b'\'', b).filter(|&i| b.get(i + 1) != Some(&b'\''))?
    };
    Some((&body[..end], &body[end + 1..]))
}

/// The first of `needles` in `b`. Lines, keys and values are a few dozen bytes, too short for
/// memchr's vector loops to repay their set-up: this reads eight bytes at a time as a plain
/// integer.
fn find<const N: usize>(b: &[u8], needles: [u8; N]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    // The high bit of each zero byte of `v`, and possibly of bytes after the first zero (from
    // the borrow): so the lowest set bit, of any of the needles, is always a true match.
    let zeros = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
    let spread = needles.map(|n| ONES * u64::from(n));
    let mut chunks = b.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let v = u64::from_le_bytes(word);
        let hits = spread.iter().fold(0, |hits, &n| hits | zeros(v ^ n));
        if hits != 0 {
            return Some(at + hits.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    let tail = chunks.remainder();
    tail.iter()
        .position(|c| needles.contains(c))
        .map(|i| at + i)
}

/// The position of the `:` ending a plain key (`: ` or `:` at the end, outside a comment).
fn find_colon(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    let mut from = 0;
    loop {
        let i = from + find(&b[from..], [b':', b'#'])?;
        match b[i] {
            b':' if matches!(b.get(i + 1), None | Some(b' ')) => return Some(i),
            b'#' if i > 0 && b[i - 1] == b' ' => return None,
            _ => {}
        }
        from = i + 1;
    }
}

fn strip_comment(text: &str) -> &str {
    let b = text.as_bytes();
    for i in memchr::memchr_iter(b'#', b) {
        if i > 0 && (b[i - 1] == b' ' || b[i - 1] == b'\t') {
            return trim_end(&text[..i]);
        }
    }
    trim_end(text)
}

/// A block plain scalar without its comment, or `None` when it holds `: ` (a mapping the
/// reader does not take on one line).
fn plain_text(text: &str) -> Option<&str> {
    let b = text.as_bytes();
    let mut from = 0;
    while let Some(i) = find(&b[from..], [b':', b'#']).map(|i| from + i) {
        from = i + 1;
        match b[i] {
            b'#' if i > 0 && (b[i - 1] == b' ' || b[i - 1] == b'\t') => {
                return Some(trim_end(&text[..i]));
            }
            b':' if b.get(i + 1) == Some(&b' ') => return None,
            _ => {}
        }
    }
    Some(trim_end(text))
}

fn double_quoted(text: &str) -> Option<(Cow<'_, str>, &str)> {
    if let Some((s, rest)) = plain_quoted(text, b'"') {
        return Some((Cow::Borrowed(s), rest));
    }
    let body = &text[1..];
    let mut out = String::with_capacity(body.len());
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((Cow::Owned(out), &body[i + 1..])),
            '\\' => {
                let (_, e) = chars.next()?;
                match e {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    '0' => out.push('\0'),
                    '"' => out.push('"'),
                    '\\' => out.push('\\'),
                    '/' => out.push('/'),
                    ' ' => out.push(' '),
                    'u' | 'x' | 'U' => {
                        let n = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let mut code = 0u32;
                        for _ in 0..n {
                            code = code * 16 + chars.next()?.1.to_digit(16)?;
                        }
                        out.push(char::from_u32(code)?);
                    }
                    _ => return None,
                }
            }
            _ => out.push(c),
        }
    }
    None
}

fn single_quoted(text: &str) -> Option<(Cow<'_, str>, &str)> {
    if let Some((s, rest)) = plain_quoted(text, b'\'') {
        return Some((Cow::Borrowed(s), rest));
    }
    let mut out = String::new();
    let b = text.as_bytes();
    let mut i = 1;
    let mut start = 1;
    while i < b.len() {
        if b[i] == b'\'' {
            out.push_str(&text[start..i]);
            if b.get(i + 1) == Some(&b'\'') {
                out.push('\'');
                i += 2;
                start = i;
                continue;
            }
            return Some((Cow::Owned(out), &text[i + 1..]));
        }
        i += 1;
    }
    None
}

/// A plain scalar, resolved as serde_yaml_ng resolves it, or `None` when unsure. The caller
/// has ruled out `: ` inside it.
fn plain(s: &str) -> Option<Tree<'_>> {
    // Most scalars start with a letter that begins no null, boolean or number.
    if let Some(b'a'..=b'e' | b'g'..=b'm' | b'o'..=b's' | b'u'..=b'z' | b'/' | b'$') =
        s.as_bytes().first()
        && !s.ends_with(':')
    {
        return Some(Node::from(s));
    }
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Some(Node::Null),
        "true" | "True" | "TRUE" => return Some(Node::Bool(true)),
        "false" | "False" | "FALSE" => return Some(Node::Bool(false)),
        _ => {}
    }
    if s.ends_with(':') {
        return None;
    }
    let b = s.as_bytes();
    let numeric_start = b[0].is_ascii_digit() || matches!(b[0], b'-' | b'+' | b'.');
    if !numeric_start {
        return Some(Node::from(s));
    }
    if s == "-" || (s.starts_with('-') && s.len() > 1 && !b[1].is_ascii_digit() && b[1] != b'.') {
        // `-foo` style strings are fine; `--domain` too.
        return Some(Node::from(s));
    }
    let digits = s.strip_prefix('-').unwrap_or(s);
    let simple_int = !digits.is_empty()
        && digits.bytes().all(|c| c.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    if simple_int {
        if let Ok(i) = s.parse::<i64>() {
            return Some(Node::Number(i.into()));
        }
        if let Ok(u) = s.parse::<u64>() {
            return Some(Node::Number(u.into()));
        }
        return None;
    }
    // Anything else that starts like a number: only obvious non-numbers are taken as strings.
    let looks_numeric = s.bytes().all(|c| {
        c.is_ascii_digit() || matches!(c, b'.' | b'-' | b'+' | b'e' | b'E' | b'_' | b'x' | b'o')
    });
    if looks_numeric || s.starts_with('.') {
        return None;
    }
    Some(Node::from(s))
}

/// The bytes that end or rule out a plain scalar inside a flow collection.
const FLOW_STOPS: [bool; 256] = {
    let mut t = [false; 256];
    let mut k = 0;
    let stops = b",}]:#[{";
    while k < stops.len() {
        t[stops[k] as usize] = true;
        k += 1;
    }
    t
};

/// A flow collection (`{a: b, c: [d]}`) on one logical line.
struct Flow<'b, 't> {
    s: &'t str,
    i: usize,
    stack: &'b mut Stack<'t>,
}

impl<'t> Flow<'_, 't> {
    fn byte(&self) -> Option<u8> {
        self.s.as_bytes().get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.byte(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn value(&mut self) -> Option<Tree<'t>> {
        self.ws();
        match self.byte()? {
            b'{' => self.map(),
            b'[' => self.seq(),
            q @ (b'"' | b'\'') => {
                let text = &self.s[self.i..];
                let (v, rest) = if q == b'"' {
                    double_quoted(text)?
                } else {
                    single_quoted(text)?
                };
                self.i = self.s.len() - rest.len();
                Some(Node::String(v))
            }
            _ => {
                let b = self.s.as_bytes();
                let start = self.i;
                // A local index and one table look-up per byte: this loop reads every byte
                // of every flow scalar.
                let mut i = start;
                while let Some(&c) = b.get(i) {
                    if FLOW_STOPS[usize::from(c)] {
                        match c {
                            b',' | b'}' | b']' => break,
                            b':' if matches!(
                                b.get(i + 1),
                                None | Some(b' ' | b',' | b'}' | b']')
                            ) =>
                            {
                                break;
                            }
                            b':' => {}
                            // `#`, `[`, `{`: comments and nesting inside a scalar.
                            _ => return None,
                        }
                    }
                    i += 1;
                }
                self.i = i;
                // Stops are ASCII, so both ends are character boundaries. Spaces and tabs
                // were skipped; other white space is trimmed as before.
                let mut text = self.s.get(start..i)?;
                let first = *text.as_bytes().first()?;
                if !first.is_ascii() || first.is_ascii_whitespace() {
                    text = text.trim_start();
                }
                let text = trim_end(text);
                if text.is_empty() {
                    return None;
                }
                plain(text)
            }
        }
    }

    fn map(&mut self) -> Option<Tree<'t>> {
        self.i += 1;
        let base = self.stack.entries.len();
        loop {
            self.ws();
            match self.byte() {
                None => return None,
                Some(b'}') => {
                    self.i += 1;
                    return self.stack.map_from(base);
                }
                _ => {}
            }
            let key = match self.value()? {
                Node::String(s) => s,
                _ => return None,
            };
            self.ws();
            if self.byte() != Some(b':') {
                return None;
            }
            self.i += 1;
            self.ws();
            let v = match self.byte() {
                Some(b',' | b'}') => Node::Null,
                _ => self.value()?,
            };
            self.stack.entries.push((key, v));
            self.ws();
            match self.byte() {
                Some(b',') => self.i += 1,
                Some(b'}') => {}
                _ => return None,
            }
        }
    }

    fn seq(&mut self) -> Option<Tree<'t>> {
        self.i += 1;
        let base = self.stack.items.len();
        loop {
            self.ws();
            match self.byte() {
                None => return None,
                Some(b']') => {
                    self.i += 1;
                    return Some(self.stack.seq_from(base));
                }
                _ => {}
            }
            let v = self.value()?;
            self.stack.items.push(v);
            self.ws();
            match self.byte() {
                Some(b',') => self.i += 1,
                Some(b']') => {}
                _ => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse;
    use serde_json::Value;

    /// The fast reader agrees with serde_yaml_ng, and takes the fast path for template shapes.
    fn same(text: &str) {
        let fast = parse(text).unwrap_or_else(|| panic!("fell back on:\n{text}"));
        let full: Value = serde_yaml_ng::from_str(text).unwrap();
        assert_eq!(fast.to_value(), full, "{text}");
    }

    #[test]
    fn template_shapes_read_like_serde_yaml() {
        same(
            "metadata:\n  labels:\n    security.istio.io/tlsMode: \"istio\"\n    a: 'it''s'\n  annotations: {\n    istio.io/rev: \"default\",\n    x: \"y\",\n  }\nspec:\n  initContainers:\n  - name: istio-init\n    args:\n    - istio-iptables\n    - \"-p\"\n    - \"15001\"\n    - -x\n    - \"\"\n    resources:\n      limits:\n        cpu: 2000m\n    securityContext:\n      runAsUser: 0\n      privileged: false\n  containers:\n  - name: istio-proxy\n    env:\n    - name: PROXY_CONFIG\n      value: |\n             {}\n    - name: PODS\n      value: |-\n        [\n            {\"name\":\"http\",\"containerPort\":80}\n        ]\n    # a comment\n    ports:\n    - containerPort: 15090 # trailing comment\n      protocol: TCP\n  volumes:\n  - emptyDir:\n    name: workload-socket\n  - emptyDir: {}\n    name: istio-data\n",
        );
        same("a:\n- 1\n- -2\n- 0\n- x: [1, \"two\", three]\n  y: ~\n- true\n- null\n");
        same("key: $(POD_NAMESPACE).svc.cluster.local\nurl: http://x:80/y\n");
    }

    /// A flow collection continued on the next lines, whose first line already holds entries
    /// (the first try, on that line alone, fails part-way) and nested ones.
    #[test]
    fn flow_collections_over_several_lines_read_like_serde_yaml() {
        same("a:\n  b: {x: 1,\n    y: [2,\n      3]}\n  c: 3\n");
        same("- {x: [a, b], y: {z: 1},\n  w: 2}\n- q\n");
        same("a: [1, {b: 2,\n  c: 3}, 4]\nd: e\n");
    }

    /// `- - ` items nest sequences on one line; the lines after them still belong to them.
    #[test]
    fn items_nested_on_one_line_keep_their_following_lines() {
        same("- - a\n  - b\n- c\n");
        same("a:\n- - x\n  - y\n- z\n");
        same("- - - a\n    - b\n  - c\n- d\n");
        same("x:\n  - - a: 1\n      b: 2\n    - c\n");
    }

    #[test]
    fn unusual_yaml_falls_back() {
        for text in [
            "a: &x 1\nb: *x\n",
            "a: !!str 1\n",
            "a: >\n  folded\n",
            "a: 010\n",
            "a: 1e3\n",
            "a: \"multi\n  line\"\n",
            "a: 1\na: 2\n",
            "a: plain\n  continued\n",
            "---\na: 1\n",
        ] {
            assert!(parse(text).is_none(), "{text}");
        }
    }

    /// No input makes the reader panic, and whatever it accepts it reads like serde_yaml_ng.
    #[test]
    fn every_prefix_is_read_safely() {
        let text = "metadata:\n  annotations: {\n    a: \"b\",\n  }\nspec:\n  containers:\n  - name: c\n    args: [\"-x\", '']\n    env:\n    - name: A\n      value: |-\n        line one\n          indented\n    ports:\n    - containerPort: 80\n";
        for end in 0..=text.len() {
            let prefix = &text[..end];
            if let Some(fast) = parse(prefix)
                && let Ok(full) = serde_yaml_ng::from_str::<Value>(prefix)
            {
                assert_eq!(fast.to_value(), full, "{prefix:?}");
            }
        }
    }
}

/// Documents nested at random from the shapes templates write (a fixed-seed generator, so a
/// failure reproduces): whatever the reader accepts, it must read as serde_yaml_ng does.
#[cfg(test)]
mod generated {
    use super::parse;
    use serde_json::Value;

    struct Gen(u64);

    impl Gen {
        fn below(&mut self, n: u64) -> u64 {
            // xorshift64*
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) % n
        }

        fn scalar(&mut self) -> &'static str {
            const SCALARS: &[&str] = &[
                "plain",
                "\"quoted\"",
                "'single'",
                "42",
                "-7",
                "true",
                "null",
                "~",
                "\"\"",
                "$(POD_NAMESPACE).svc",
                "http://x:80/y",
                "2000m",
                "\"a\\\"b\"",
                "'it''s'",
                "-x",
                "--flag=1",
                "a b c",
                "0",
                "x # comment",
                "\"15001\"",
                "[]",
                "{}",
                "[NET_ADMIN, NET_RAW]",
                "{path: /healthz/ready, port: 15021}",
                "{a: {b: [1, \"two\", three]}}",
            ];
            SCALARS[self.below(SCALARS.len() as u64) as usize]
        }

        fn pad(out: &mut String, col: usize) {
            out.extend(std::iter::repeat_n(' ', col));
        }

        /// Sometimes a blank or comment line between entries.
        fn filler(&mut self, out: &mut String, col: usize) {
            match self.below(12) {
                0 => out.push('\n'),
                1 => {
                    Self::pad(out, col);
                    out.push_str("# note\n");
                }
                _ => {}
            }
        }

        /// A mapping at column `col`; `inline` when its first line is already indented.
        fn mapping(&mut self, out: &mut String, col: usize, depth: u32, inline: bool) {
            for k in 0..1 + self.below(3) {
                if k > 0 || !inline {
                    self.filler(out, col);
                    Self::pad(out, col);
                }
                if self.below(6) == 0 {
                    out.push_str(&format!("\"q{k}\":"));
                } else {
                    out.push_str(&format!("k{k}:"));
                }
                self.value(out, col, depth);
            }
        }

        /// What follows `key:` at column `col`.
        fn value(&mut self, out: &mut String, col: usize, depth: u32) {
            match (self.below(7), depth) {
                (0, 1..) => {
                    out.push('\n');
                    self.mapping(out, col + 2, depth - 1, false);
                }
                (6, _) => {
                    // A flow collection continued on the next lines, entries on every line.
                    const IN_FLOW: &[&str] = &["x", "\"q, r\"", "'s'", "42", "[]", "{a: [b]}"];
                    let mut pick = || IN_FLOW[self.below(IN_FLOW.len() as u64) as usize];
                    out.push_str(&format!(" {{f: {},\n", pick()));
                    Self::pad(out, col + 2);
                    out.push_str("g: [1,\n");
                    Self::pad(out, col + 4);
                    out.push_str(&format!("{}]}}\n", pick()));
                }
                (1, 1..) => {
                    out.push('\n');
                    let at = col + 2 * self.below(2) as usize;
                    self.sequence(out, at, depth - 1, false);
                }
                (2, _) => {
                    out.push_str(" |\n");
                    Self::pad(out, col + 2);
                    out.push_str("line one\n");
                    Self::pad(out, col + 4);
                    out.push_str("indented\n");
                }
                (3, _) => out.push('\n'),
                _ => {
                    out.push(' ');
                    out.push_str(self.scalar());
                    out.push('\n');
                }
            }
        }

        /// A sequence at column `col`; `inline` when its first line is already indented.
        fn sequence(&mut self, out: &mut String, col: usize, depth: u32, inline: bool) {
            for k in 0..1 + self.below(3) {
                if k > 0 || !inline {
                    self.filler(out, col);
                    Self::pad(out, col);
                }
                out.push('-');
                match (self.below(5), depth) {
                    (0, 1..) => {
                        out.push(' ');
                        self.mapping(out, col + 2, depth - 1, true);
                    }
                    (1, 1..) => {
                        out.push(' ');
                        self.sequence(out, col + 2, depth - 1, true);
                    }
                    (2, 1..) => {
                        out.push('\n');
                        self.mapping(out, col + 2, depth - 1, false);
                    }
                    _ => {
                        out.push(' ');
                        out.push_str(self.scalar());
                        out.push('\n');
                    }
                }
            }
        }
    }

    #[test]
    fn generated_documents_read_like_serde_yaml() {
        let mut g = Gen(0x9E37_79B9_7F4A_7C15);
        let mut read = 0;
        for _ in 0..3000 {
            let mut doc = String::new();
            if g.below(2) == 0 {
                g.mapping(&mut doc, 0, 4, false);
            } else {
                g.sequence(&mut doc, 0, 4, false);
            }
            let full: Value = serde_yaml_ng::from_str(&doc)
                .unwrap_or_else(|e| panic!("the generator wrote invalid YAML ({e}):\n{doc}"));
            if let Some(fast) = parse(&doc) {
                assert_eq!(fast.to_value(), full, "{doc}");
                read += 1;
            }
        }
        // The generator writes the supported subset, so most documents take the fast path.
        assert!(read > 2000, "only {read} of 3000 read without falling back");
    }
}

#[cfg(test)]
mod key_tests {
    use std::borrow::Cow;

    use super::{parse, split_key};
    use crate::doc::Node;

    /// Keys and scalars are borrowed from the text unless unescaping changed them; those
    /// are read into strings of their own.
    #[test]
    fn strings_without_escapes_borrow_the_text() {
        let text = "name: app\n\"x-q\": 'a''b'\nimage: \"a\\tb\"\nargs: [\"-p\", '1', x]\n";
        let doc = parse(text).unwrap();
        let Node::Object(members) = &doc else {
            panic!("a mapping")
        };
        let inside = |s: &str| text.as_bytes().as_ptr_range().contains(&s.as_ptr());
        let borrowed = |c: &Cow<'_, str>| matches!(c, Cow::Borrowed(s) if inside(s));
        fn string<'t>(n: &Node<'t>) -> Cow<'t, str> {
            match n {
                Node::String(c) => c.clone(),
                other => panic!("not a string: {other:?}"),
            }
        }
        let keys: Vec<_> = members.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["name", "x-q", "image", "args"]);
        assert!(keys.iter().all(|k| borrowed(k)));
        let value = |k: &str| doc.get(k).map(string).unwrap();
        assert!(borrowed(&value("name")) && value("name") == "app");
        assert!(matches!(value("x-q"), Cow::Owned(s) if s == "a'b"));
        assert!(matches!(value("image"), Cow::Owned(s) if s == "a\tb"));
        let args = doc.get("args").and_then(Node::as_array).unwrap();
        let args: Vec<_> = args.iter().map(string).collect();
        assert_eq!(args, ["-p", "1", "x"]);
        assert!(args.iter().all(borrowed));
    }

    /// The word-at-a-time search finds what a byte loop finds, whatever surrounds the match
    /// (bytes next to the needles' values, high bytes, a match in a word's last byte or the
    /// tail after the whole words).
    #[test]
    fn find_agrees_with_a_byte_loop() {
        let fillers = [
            0x00, 0x01, b' ', b'9', b';', b'"', b'$', 0x7f, 0x80, 0xba, 0xa3, 0xff,
        ];
        for len in 0..40 {
            for filler in fillers {
                let mut hay = vec![filler; len];
                let naive = |h: &[u8]| h.iter().position(|&c| c == b':' || c == b'#');
                assert_eq!(super::find(&hay, [b':', b'#']), naive(&hay), "{hay:?}");
                for at in 0..len {
                    for needle in [b':', b'#'] {
                        hay[at] = needle;
                        assert_eq!(super::find(&hay, [b':', b'#']), Some(at), "{hay:?}");
                        assert_eq!(super::find(&hay, [needle]), Some(at), "{hay:?}");
                        // A second match later does not move the first.
                        if at + 3 < len {
                            hay[at + 3] = b':';
                            assert_eq!(super::find(&hay, [b':', b'#']), Some(at), "{hay:?}");
                            hay[at + 3] = filler;
                        }
                        hay[at] = filler;
                    }
                }
            }
        }
    }

    #[test]
    fn indentation_counts_leading_spaces_only() {
        for len in 0..20 {
            for spaces in 0..=len {
                for after in [b'a', b'\t', 0x00, 0xa0] {
                    let mut line = vec![b' '; spaces];
                    line.resize(len, after);
                    assert_eq!(super::indentation(&line), spaces, "{line:?}");
                }
            }
        }
    }

    #[test]
    fn lines_split_into_key_and_rest_only_when_they_are_mapping_entries() {
        for (line, expected) in [
            ("name: istio-proxy", Some(("name", "istio-proxy"))),
            ("name:", Some(("name", ""))),
            ("name:   # comment", Some(("name", "# comment"))),
            ("-flag: 1", Some(("-flag", "1"))),
            ("--x: y", Some(("--x", "y"))),
            ("\"quoted key\": v", Some(("quoted key", "v"))),
            ("'it''s': v", Some(("it's", "v"))),
            ("url: http://a:b", Some(("url", "http://a:b"))),
            ("spaced  : v", Some(("spaced", "v"))),
            ("- name: x", None),
            ("-", None),
            ("\"unterminated: v", None),
            ("http://a:b", None),
            ("key:value", None),
            ("a # b: c", None),
            ("[a, b]", None),
            ("{a: b}", None),
            ("? complex", None),
            ("&anchor key: v", None),
            ("plain text", None),
            ("", None),
        ] {
            let got = split_key(line);
            let got = got.as_ref().map(|(k, rest)| (k.as_ref(), *rest));
            assert_eq!(got, expected, "{line:?}");
        }
    }
}

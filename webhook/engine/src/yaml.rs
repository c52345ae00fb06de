//! A fast reader for the block-style YAML injection templates produce, with `serde_yaml_ng` as
//! the authority: anything outside the plain subset (anchors, tags, folded or multi-line
//! quoted scalars, unusual numbers, duplicate keys, …) returns `None` and the caller falls back
//! to the full parser. Reading the rendered sidecar template is the largest single cost of an
//! injection, and this subset covers what templates write.

use serde_json::{Map, Number, Value};

/// Parses `text` as one YAML document, or `None` when it is outside the supported subset.
pub fn parse(text: &str) -> Option<Value> {
    let mut lines: Vec<Line<'_>> = Vec::new();
    for raw in text.split('\n') {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let content = raw.trim_start_matches(' ');
        if content.starts_with('\t') {
            // Tabs in indentation are not YAML; let the full parser say so.
            return None;
        }
        lines.push(Line {
            raw,
            indent: raw.len() - content.len(),
            text: content.trim_end(),
        });
    }
    if text.starts_with("%")
        || lines
            .iter()
            .any(|l| l.indent == 0 && (l.text == "---" || l.text == "..."))
    {
        return None;
    }
    let mut p = Parser {
        lines: &lines,
        pos: 0,
        virt: None,
    };
    p.skip_blank();
    if p.pos >= lines.len() {
        return Some(Value::Null);
    }
    let v = p.node(0)?;
    p.skip_blank();
    (p.pos >= lines.len() && p.virt.is_none()).then_some(v)
}

struct Line<'a> {
    raw: &'a str,
    indent: usize,
    text: &'a str,
}

struct Parser<'a> {
    lines: &'a [Line<'a>],
    pos: usize,
    /// The rest of a `- ` item line, read as if it were its own line at this indent.
    virt: Option<(usize, &'a str)>,
}

fn is_blank(text: &str) -> bool {
    text.is_empty() || text.starts_with('#')
}

impl<'a> Parser<'a> {
    fn skip_blank(&mut self) {
        if self.virt.is_some() {
            return;
        }
        while self.pos < self.lines.len() && is_blank(self.lines[self.pos].text) {
            self.pos += 1;
        }
    }

    /// The current line (indent, text), virtual first.
    fn peek(&mut self) -> Option<(usize, &'a str)> {
        self.skip_blank();
        if let Some(v) = self.virt {
            return Some(v);
        }
        self.lines.get(self.pos).map(|l| (l.indent, l.text))
    }

    fn advance(&mut self) {
        if self.virt.take().is_none() {
            self.pos += 1;
        }
    }

    /// A block node whose lines are indented at least `min`.
    fn node(&mut self, min: usize) -> Option<Value> {
        let (indent, text) = self.peek()?;
        if indent < min {
            return None;
        }
        if text == "-" || text.starts_with("- ") {
            return self.sequence(indent);
        }
        if is_key(text) {
            return self.mapping(indent);
        }
        // A lone scalar or flow collection.
        self.advance();
        let v = self.inline_value(text, indent)?;
        Some(v)
    }

    fn sequence(&mut self, indent: usize) -> Option<Value> {
        let mut items = Vec::new();
        while let Some((i, text)) = self.peek() {
            if i != indent || !(text == "-" || text.starts_with("- ")) {
                break;
            }
            let rest = text[1..].trim_start_matches(' ');
            if rest.is_empty() || rest.starts_with('#') {
                self.advance();
                match self.peek() {
                    Some((j, _)) if j > indent => items.push(self.node(j)?),
                    _ => items.push(Value::Null),
                }
                continue;
            }
            let offset = indent + (text.len() - rest.len());
            if rest.starts_with("- ") || rest == "-" || is_key(rest) {
                self.virt = Some((offset, rest));
                // The virtual line is consumed by node(); continuation lines follow.
                if self.virt.is_some() && self.pos < self.lines.len() {
                    self.pos += 1;
                }
                items.push(self.node(offset)?);
            } else {
                self.advance();
                items.push(self.inline_value(rest, offset)?);
            }
        }
        Some(Value::Array(items))
    }

    fn mapping(&mut self, indent: usize) -> Option<Value> {
        let mut map = Map::new();
        while let Some((i, text)) = self.peek() {
            if i != indent {
                if i > indent {
                    return None;
                }
                break;
            }
            let (key, rest) = split_key(text)?;
            self.advance();
            let value = if rest.is_empty() || rest.starts_with('#') {
                match self.peek() {
                    Some((j, t)) if j > indent => {
                        let _ = t;
                        self.node(j)?
                    }
                    // Sequences may sit at the key's own indent.
                    Some((j, t)) if j == indent && (t == "-" || t.starts_with("- ")) => {
                        self.sequence(j)?
                    }
                    _ => Value::Null,
                }
            } else {
                self.inline_value(rest, indent)?
            };
            if map.insert(key, value).is_some() {
                return None;
            }
        }
        Some(Value::Object(map))
    }

    /// A value written after `key: ` or `- `: a scalar, a flow collection (which may run over
    /// several lines) or a literal block scalar.
    fn inline_value(&mut self, text: &'a str, parent_indent: usize) -> Option<Value> {
        let first = text.chars().next()?;
        match first {
            '|' => self.literal_block(text, parent_indent),
            '{' | '[' => self.flow(text),
            '"' => {
                let (s, rest) = double_quoted(text)?;
                trailing_ok(rest).then_some(Value::String(s))
            }
            '\'' => {
                let (s, rest) = single_quoted(text)?;
                trailing_ok(rest).then_some(Value::String(s))
            }
            '>' | '&' | '*' | '!' | '%' | '@' | '`' | '?' => None,
            _ => {
                let s = strip_comment(text);
                // A plain scalar continued on the next line is folded: not supported here.
                if let Some((j, t)) = self.peek()
                    && j > parent_indent
                    && !(t.starts_with("- ") || t == "-")
                    && self.virt.is_none()
                {
                    return None;
                }
                plain(s)
            }
        }
    }

    fn literal_block(&mut self, header: &str, parent_indent: usize) -> Option<Value> {
        let chomp = match strip_comment(&header[1..]) {
            "" => Chomp::Clip,
            "-" => Chomp::Strip,
            _ => return None,
        };
        if self.virt.is_some() {
            return None;
        }
        // Lines belong to the block while blank or indented past the parent.
        let mut block_indent = None;
        let mut body: Vec<&str> = Vec::new();
        while let Some(line) = self.lines.get(self.pos) {
            if line.text.is_empty() {
                // Spaces past the block's indentation are content, even on a blank line.
                match block_indent {
                    Some(bi) if line.raw.len() > bi => body.push(&line.raw[bi..]),
                    None if line.raw.len() > parent_indent + 1 => return None,
                    _ => body.push(""),
                }
                self.pos += 1;
                continue;
            }
            let bi = *block_indent.get_or_insert(line.indent);
            if line.indent <= parent_indent || line.indent < bi {
                break;
            }
            body.push(&line.raw[bi..]);
            self.pos += 1;
        }
        // Trailing blank lines go with chomping (clip and strip both drop them).
        while body.last() == Some(&"") {
            body.pop();
        }
        if body.is_empty() {
            return Some(Value::String(String::new()));
        }
        let mut s = body.join("\n");
        match chomp {
            Chomp::Strip => {}
            Chomp::Clip => s.push('\n'),
        }
        Some(Value::String(s))
    }

    /// A flow collection starting in `text`, possibly continued on following lines.
    fn flow(&mut self, text: &'a str) -> Option<Value> {
        let mut buf = strip_comment(text).to_string();
        while depth(&buf)? > 0 {
            if self.virt.is_some() {
                return None;
            }
            let line = self.lines.get(self.pos)?;
            buf.push(' ');
            buf.push_str(strip_comment(line.text));
            self.pos += 1;
        }
        let mut f = Flow {
            s: buf.as_bytes(),
            i: 0,
        };
        let v = f.value()?;
        f.ws();
        (f.i == f.s.len()).then_some(v)
    }
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

/// `key: rest` (plain, single- or double-quoted key); `None` when the line is not a mapping
/// entry.
fn split_key(text: &str) -> Option<(String, &str)> {
    let (key, after) = if text.starts_with('"') {
        let (k, rest) = double_quoted(text)?;
        (k, rest)
    } else if text.starts_with('\'') {
        let (k, rest) = single_quoted(text)?;
        (k, rest)
    } else {
        // Indicators cannot start a plain key; a `-` can when it is not a sequence entry.
        let indicator = text.starts_with([
            '[', '{', '#', '&', '*', '!', '|', '>', '%', '@', '`', '?', '-',
        ]);
        let dash_word = text.starts_with('-') && !text.starts_with("- ") && text != "-";
        if indicator && !dash_word {
            return None;
        }
        let end = find_colon(text)?;
        (text[..end].trim_end().to_string(), &text[end..])
    };
    let rest = after.strip_prefix(':')?;
    if !(rest.is_empty() || rest.starts_with(' ')) {
        return None;
    }
    Some((key, rest.trim_start_matches(' ')))
}

/// Whether `text` is a mapping entry: [`split_key`] without building the key, for the many
/// lines that are only being classified.
fn is_key(text: &str) -> bool {
    if text.starts_with(['"', '\'']) {
        return split_key(text).is_some();
    }
    let indicator = text.starts_with([
        '[', '{', '#', '&', '*', '!', '|', '>', '%', '@', '`', '?', '-',
    ]);
    let dash_word = text.starts_with('-') && !text.starts_with("- ") && text != "-";
    // find_colon only stops at a `:` followed by a space or the end, as split_key requires.
    (!indicator || dash_word) && find_colon(text).is_some()
}

/// The position of the `:` ending a plain key (`: ` or `:` at the end, outside a comment).
fn find_colon(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    for i in 0..b.len() {
        if b[i] == b'#' && i > 0 && b[i - 1] == b' ' {
            return None;
        }
        if b[i] == b':' && (i + 1 == b.len() || b[i + 1] == b' ') {
            return Some(i);
        }
    }
    None
}

fn strip_comment(text: &str) -> &str {
    let b = text.as_bytes();
    for i in 0..b.len() {
        if b[i] == b'#' && i > 0 && (b[i - 1] == b' ' || b[i - 1] == b'\t') {
            return text[..i].trim_end();
        }
    }
    text.trim_end()
}

fn double_quoted(text: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = text[1..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &text[i + 2..])),
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

fn single_quoted(text: &str) -> Option<(String, &str)> {
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
            return Some((out, &text[i + 1..]));
        }
        i += 1;
    }
    None
}

/// A plain scalar, resolved as serde_yaml_ng resolves it, or `None` when unsure.
fn plain(s: &str) -> Option<Value> {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Some(Value::Null),
        "true" | "True" | "TRUE" => return Some(Value::Bool(true)),
        "false" | "False" | "FALSE" => return Some(Value::Bool(false)),
        _ => {}
    }
    if s.contains(": ") || s.ends_with(':') {
        return None;
    }
    let b = s.as_bytes();
    let numeric_start = b[0].is_ascii_digit() || matches!(b[0], b'-' | b'+' | b'.');
    if !numeric_start {
        return Some(Value::String(s.to_string()));
    }
    if s == "-" || (s.starts_with('-') && s.len() > 1 && !b[1].is_ascii_digit() && b[1] != b'.') {
        // `-foo` style strings are fine; `--domain` too.
        return Some(Value::String(s.to_string()));
    }
    let digits = s.strip_prefix('-').unwrap_or(s);
    let simple_int = !digits.is_empty()
        && digits.bytes().all(|c| c.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    if simple_int {
        if let Ok(i) = s.parse::<i64>() {
            return Some(Value::Number(i.into()));
        }
        if let Ok(u) = s.parse::<u64>() {
            return Some(Value::Number(u.into()));
        }
        return None;
    }
    // Anything else that starts like a number: only obvious non-numbers are taken as strings.
    let looks_numeric = s.bytes().all(|c| {
        c.is_ascii_digit() || matches!(c, b'.' | b'-' | b'+' | b'e' | b'E' | b'_' | b'x' | b'o')
    });
    if looks_numeric {
        return None;
    }
    if s.starts_with('.') {
        return None;
    }
    let _ = Number::from(0);
    Some(Value::String(s.to_string()))
}

struct Flow<'b> {
    s: &'b [u8],
    i: usize,
}

impl Flow<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t') {
            self.i += 1;
        }
    }

    fn value(&mut self) -> Option<Value> {
        self.ws();
        match *self.s.get(self.i)? {
            b'{' => self.map(),
            b'[' => self.seq(),
            b'"' | b'\'' => {
                let text = std::str::from_utf8(&self.s[self.i..]).ok()?;
                let (v, rest) = if self.s[self.i] == b'"' {
                    double_quoted(text)?
                } else {
                    single_quoted(text)?
                };
                self.i = self.s.len() - rest.len();
                Some(Value::String(v))
            }
            _ => {
                let start = self.i;
                while self.i < self.s.len() {
                    let c = self.s[self.i];
                    if matches!(c, b',' | b'}' | b']') {
                        break;
                    }
                    if c == b':'
                        && matches!(
                            self.s.get(self.i + 1),
                            None | Some(b' ') | Some(b',') | Some(b'}') | Some(b']')
                        )
                    {
                        break;
                    }
                    if c == b'#' || matches!(c, b'[' | b'{') {
                        return None;
                    }
                    self.i += 1;
                }
                let text = std::str::from_utf8(&self.s[start..self.i]).ok()?.trim();
                if text.is_empty() {
                    return None;
                }
                plain(text)
            }
        }
    }

    fn map(&mut self) -> Option<Value> {
        self.i += 1;
        let mut m = Map::new();
        loop {
            self.ws();
            match self.s.get(self.i) {
                None => return None,
                Some(b'}') => {
                    self.i += 1;
                    return Some(Value::Object(m));
                }
                _ => {}
            }
            let key = match self.value()? {
                Value::String(s) => s,
                _ => return None,
            };
            self.ws();
            if self.s.get(self.i) != Some(&b':') {
                return None;
            }
            self.i += 1;
            self.ws();
            let v = match self.s.get(self.i) {
                Some(b',') | Some(b'}') => Value::Null,
                _ => self.value()?,
            };
            if m.insert(key, v).is_some() {
                return None;
            }
            self.ws();
            match self.s.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b'}') => {}
                _ => return None,
            }
        }
    }

    fn seq(&mut self) -> Option<Value> {
        self.i += 1;
        let mut items = Vec::new();
        loop {
            self.ws();
            match self.s.get(self.i) {
                None => return None,
                Some(b']') => {
                    self.i += 1;
                    return Some(Value::Array(items));
                }
                _ => {}
            }
            items.push(self.value()?);
            self.ws();
            match self.s.get(self.i) {
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
        assert_eq!(fast, full, "{text}");
    }

    #[test]
    fn template_shapes_read_like_serde_yaml() {
        same(
            "metadata:\n  labels:\n    security.istio.io/tlsMode: \"istio\"\n    a: 'it''s'\n  annotations: {\n    istio.io/rev: \"default\",\n    x: \"y\",\n  }\nspec:\n  initContainers:\n  - name: istio-init\n    args:\n    - istio-iptables\n    - \"-p\"\n    - \"15001\"\n    - -x\n    - \"\"\n    resources:\n      limits:\n        cpu: 2000m\n    securityContext:\n      runAsUser: 0\n      privileged: false\n  containers:\n  - name: istio-proxy\n    env:\n    - name: PROXY_CONFIG\n      value: |\n             {}\n    - name: PODS\n      value: |-\n        [\n            {\"name\":\"http\",\"containerPort\":80}\n        ]\n    # a comment\n    ports:\n    - containerPort: 15090 # trailing comment\n      protocol: TCP\n  volumes:\n  - emptyDir:\n    name: workload-socket\n  - emptyDir: {}\n    name: istio-data\n",
        );
        same("a:\n- 1\n- -2\n- 0\n- x: [1, \"two\", three]\n  y: ~\n- true\n- null\n");
        same("key: $(POD_NAMESPACE).svc.cluster.local\nurl: http://x:80/y\n");
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
                assert_eq!(fast, full, "{prefix:?}");
            }
        }
    }
}

#[cfg(test)]
mod key_tests {
    use super::{is_key, split_key};

    #[test]
    fn classifying_a_line_agrees_with_splitting_it() {
        for line in [
            "name: istio-proxy",
            "name:",
            "- name: x",
            "-",
            "-flag: 1",
            "--x: y",
            "\"quoted key\": v",
            "'single': v",
            "\"unterminated: v",
            "url: http://a:b",
            "http://a:b",
            "key:value",
            "a # b: c",
            "[a, b]",
            "{a: b}",
            "? complex",
            "&anchor key: v",
            "plain text",
            "",
        ] {
            assert_eq!(is_key(line), split_key(line).is_some(), "{line:?}");
        }
    }
}

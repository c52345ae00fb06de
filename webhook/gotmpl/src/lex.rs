//! The lexer: splits template text into text runs and action tokens, applying the
//! `{{-` / `-}}` whitespace trimming the way Go's `text/template/parse` lexer does.

/// One token. `pos` is a byte offset into the template text.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Token {
    pub kind: Tok,
    pub pos: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok {
    /// Literal text between actions, already trimmed.
    Text(String),
    LeftDelim,
    RightDelim,
    /// A whole `{{/* */}}` comment action.
    Comment,
    Space,
    Pipe,
    LeftParen,
    RightParen,
    Declare,
    Assign,
    /// Any other ASCII punctuation inside an action (`,` in `range $i, $e`).
    Char(char),
    /// `.Name` (stored without the dot).
    Field(String),
    Dot,
    /// `$name`, or `$` alone.
    Variable(String),
    Identifier(String),
    Bool(bool),
    Nil,
    Number(String),
    /// `'x'` (original text, quotes included).
    CharConstant(String),
    /// A quoted or raw string: original text, quotes included.
    String(String),
    Keyword(Keyword),
    Eof,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Keyword {
    Block,
    Break,
    Continue,
    Define,
    Else,
    End,
    If,
    Range,
    Template,
    With,
}

/// A lexing failure: message and byte offset.
#[derive(Debug)]
pub(crate) struct LexError {
    pub msg: String,
    pub pos: usize,
    /// Where the enclosing action began, when the error is inside one.
    pub action_start: Option<usize>,
}

const LEFT: &str = "{{";
const RIGHT: &str = "}}";

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    out: Vec<Token>,
    paren_depth: usize,
    action_start: Option<usize>,
}

/// Splits `src` into tokens, ending with `Tok::Eof`.
pub(crate) fn lex(src: &str) -> Result<Vec<Token>, LexError> {
    let mut l = Lexer {
        src,
        pos: 0,
        out: Vec::new(),
        paren_depth: 0,
        action_start: None,
    };
    l.run()?;
    Ok(l.out)
}

impl<'a> Lexer<'a> {
    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn emit(&mut self, kind: Tok, pos: usize) {
        self.out.push(Token { kind, pos });
    }

    fn err<T>(&self, msg: impl Into<String>) -> Result<T, LexError> {
        Err(LexError {
            msg: msg.into(),
            pos: self.pos,
            action_start: self.action_start,
        })
    }

    fn run(&mut self) -> Result<(), LexError> {
        let mut trim_next_text = false;
        loop {
            let start = self.pos;
            let text_end = self
                .rest()
                .find(LEFT)
                .map_or(self.src.len(), |i| self.pos + i);
            let mut text = &self.src[start..text_end];
            if trim_next_text {
                text = text.trim_start_matches([' ', '\t', '\r', '\n']);
            }
            let after = &self.src[text_end..];
            let left_trim =
                after.len() > 3 && after.as_bytes()[2] == b'-' && is_space(after.as_bytes()[3]);
            if left_trim {
                text = text.trim_end_matches([' ', '\t', '\r', '\n']);
            }
            if !text.is_empty() {
                let pos = text.as_ptr() as usize - self.src.as_ptr() as usize;
                self.emit(Tok::Text(text.to_string()), pos);
            }
            if text_end == self.src.len() {
                self.pos = text_end;
                self.emit(Tok::Eof, self.pos);
                return Ok(());
            }
            self.pos = text_end;
            self.action_start = Some(text_end);
            trim_next_text = self.action(left_trim)?;
            self.action_start = None;
        }
    }

    /// Lexes one action starting at `{{`; returns whether it ended with a trim marker.
    fn action(&mut self, left_trim: bool) -> Result<bool, LexError> {
        let delim_pos = self.pos;
        self.pos += LEFT.len();
        if left_trim {
            self.pos += 2;
        }
        if self.rest().starts_with("/*") {
            return self.comment(delim_pos);
        }
        self.emit(Tok::LeftDelim, delim_pos);
        self.paren_depth = 0;
        loop {
            if let Some(trim) = self.at_right_delim() {
                if self.paren_depth > 0 {
                    return self.err("unclosed left paren");
                }
                let pos = self.pos;
                self.pos += if trim { 2 + RIGHT.len() } else { RIGHT.len() };
                self.emit(Tok::RightDelim, pos);
                return Ok(trim);
            }
            let Some(c) = self.rest().chars().next() else {
                return self.err("unclosed action");
            };
            let start = self.pos;
            match c {
                ' ' | '\t' | '\r' | '\n' => {
                    while self.rest().as_bytes().first().is_some_and(|b| is_space(*b)) {
                        // A space followed by "-}}" belongs to the closing trim marker.
                        if self.rest().starts_with(" -}}")
                            || self.rest().starts_with("\t-}}")
                            || self.rest().starts_with("\r-}}")
                            || self.rest().starts_with("\n-}}")
                        {
                            break;
                        }
                        self.pos += 1;
                    }
                    if self.pos > start {
                        self.emit(Tok::Space, start);
                    }
                }
                '=' => {
                    self.pos += 1;
                    self.emit(Tok::Assign, start);
                }
                ':' => {
                    if !self.rest().starts_with(":=") {
                        return self.err("expected :=");
                    }
                    self.pos += 2;
                    self.emit(Tok::Declare, start);
                }
                '|' => {
                    self.pos += 1;
                    self.emit(Tok::Pipe, start);
                }
                '"' => self.quoted(start)?,
                '`' => self.raw(start)?,
                '\'' => self.char_constant(start)?,
                '$' => self.variable(start)?,
                '.' => {
                    let next = self.src.as_bytes().get(self.pos + 1);
                    if next.is_some_and(|b| b.is_ascii_digit()) {
                        self.number(start)?;
                    } else {
                        self.field(start)?;
                    }
                }
                '+' | '-' | '0'..='9' => self.number(start)?,
                '(' => {
                    self.pos += 1;
                    self.paren_depth += 1;
                    self.emit(Tok::LeftParen, start);
                }
                ')' => {
                    if self.paren_depth == 0 {
                        return self.err("unexpected right paren");
                    }
                    self.pos += 1;
                    self.paren_depth -= 1;
                    self.emit(Tok::RightParen, start);
                }
                c if is_alnum(c) => self.identifier(start)?,
                c if c.is_ascii() && !c.is_ascii_control() => {
                    self.pos += 1;
                    self.emit(Tok::Char(c), start);
                }
                c => {
                    return self.err(format!(
                        "unrecognized character in action: U+{:04X}",
                        c as u32
                    ));
                }
            }
        }
    }

    /// At `}}` or ` -}}`? Returns Some(trim).
    fn at_right_delim(&self) -> Option<bool> {
        let r = self.rest().as_bytes();
        if r.len() >= 4 && is_space(r[0]) && r[1] == b'-' && &r[2..4] == b"}}" {
            return Some(true);
        }
        if r.starts_with(b"}}") {
            return Some(false);
        }
        None
    }

    fn comment(&mut self, delim_pos: usize) -> Result<bool, LexError> {
        let Some(end) = self.rest().find("*/") else {
            return self.err("unclosed comment");
        };
        self.pos += end + 2;
        let Some(trim) = self.at_right_delim() else {
            return self.err("comment ends before closing delimiter");
        };
        self.pos += if trim { 2 + RIGHT.len() } else { RIGHT.len() };
        self.emit(Tok::Comment, delim_pos);
        Ok(trim)
    }

    fn quoted(&mut self, start: usize) -> Result<(), LexError> {
        let bytes = self.src.as_bytes();
        let mut i = self.pos + 1;
        loop {
            match bytes.get(i) {
                None | Some(b'\n') => {
                    self.pos = i;
                    return self.err("unterminated quoted string");
                }
                Some(b'\\') => i += 2,
                Some(b'"') => break,
                Some(_) => i += 1,
            }
        }
        let text = self.src.get(start..=i).unwrap_or_default().to_string();
        self.pos = i + 1;
        self.emit(Tok::String(text), start);
        Ok(())
    }

    fn raw(&mut self, start: usize) -> Result<(), LexError> {
        let Some(end) = self.src[self.pos + 1..].find('`') else {
            return self.err("unterminated raw quoted string");
        };
        let end = self.pos + 1 + end;
        self.emit(Tok::String(self.src[start..=end].to_string()), start);
        self.pos = end + 1;
        Ok(())
    }

    fn char_constant(&mut self, start: usize) -> Result<(), LexError> {
        let bytes = self.src.as_bytes();
        let mut i = self.pos + 1;
        loop {
            match bytes.get(i) {
                None | Some(b'\n') => {
                    self.pos = i;
                    return self.err("unterminated character constant");
                }
                Some(b'\\') => i += 2,
                Some(b'\'') => break,
                Some(_) => i += 1,
            }
        }
        let text = self.src.get(start..=i).unwrap_or_default().to_string();
        self.pos = i + 1;
        self.emit(Tok::CharConstant(text), start);
        Ok(())
    }

    /// Scans alphanumerics after the current position; returns the word.
    fn word(&mut self) -> &'a str {
        let start = self.pos;
        let len = self
            .rest()
            .char_indices()
            .find(|(_, c)| !is_alnum(*c))
            .map_or(self.rest().len(), |(i, _)| i);
        self.pos += len;
        &self.src[start..self.pos]
    }

    /// Go requires a word to be followed by a space, delimiter, `.`, `,`, `|`, `:`, `(`, `)`.
    fn check_terminator(&self) -> Result<(), LexError> {
        match self.rest().chars().next() {
            None => Ok(()),
            Some(' ' | '\t' | '\r' | '\n' | '.' | ',' | '|' | ':' | ')' | '(') => Ok(()),
            Some(_) if self.rest().starts_with(RIGHT) => Ok(()),
            Some(c) => self.err(format!("bad character U+{:04X} '{c}'", c as u32)),
        }
    }

    fn variable(&mut self, start: usize) -> Result<(), LexError> {
        self.pos += 1;
        let name = self.word();
        self.check_terminator()?;
        self.emit(Tok::Variable(format!("${name}")), start);
        Ok(())
    }

    fn field(&mut self, start: usize) -> Result<(), LexError> {
        self.pos += 1;
        let name = self.word();
        if name.is_empty() {
            self.check_terminator()?;
            self.emit(Tok::Dot, start);
        } else {
            self.check_terminator()?;
            self.emit(Tok::Field(name.to_string()), start);
        }
        Ok(())
    }

    fn identifier(&mut self, start: usize) -> Result<(), LexError> {
        let word = self.word();
        self.check_terminator()?;
        let kind = match word {
            "true" => Tok::Bool(true),
            "false" => Tok::Bool(false),
            "nil" => Tok::Nil,
            "block" => Tok::Keyword(Keyword::Block),
            "break" => Tok::Keyword(Keyword::Break),
            "continue" => Tok::Keyword(Keyword::Continue),
            "define" => Tok::Keyword(Keyword::Define),
            "else" => Tok::Keyword(Keyword::Else),
            "end" => Tok::Keyword(Keyword::End),
            "if" => Tok::Keyword(Keyword::If),
            "range" => Tok::Keyword(Keyword::Range),
            "template" => Tok::Keyword(Keyword::Template),
            "with" => Tok::Keyword(Keyword::With),
            w => Tok::Identifier(w.to_string()),
        };
        self.emit(kind, start);
        Ok(())
    }

    fn number(&mut self, start: usize) -> Result<(), LexError> {
        let bytes = self.src.as_bytes();
        let mut i = self.pos;
        if matches!(bytes.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let hex = bytes.get(i) == Some(&b'0') && matches!(bytes.get(i + 1), Some(b'x' | b'X'));
        while let Some(&b) = bytes.get(i) {
            let exp_sign = matches!(b, b'+' | b'-')
                && i > start
                && if hex {
                    matches!(bytes[i - 1], b'p' | b'P')
                } else {
                    matches!(bytes[i - 1], b'e' | b'E')
                };
            if b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || exp_sign {
                i += 1;
            } else {
                break;
            }
        }
        self.pos = i;
        let text = &self.src[start..i];
        if text == "+" || text == "-" {
            return self.err(format!("bad number syntax: {text:?}"));
        }
        self.emit(Tok::Number(text.to_string()), start);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<Tok> {
        lex(src).unwrap().into_iter().map(|t| t.kind).collect()
    }

    #[test]
    fn trim_markers_remove_all_surrounding_whitespace() {
        assert_eq!(
            kinds("a \n\t{{- 3 -}} \n b"),
            vec![
                Tok::Text("a".into()),
                Tok::LeftDelim,
                Tok::Number("3".into()),
                Tok::RightDelim,
                Tok::Text("b".into()),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn a_minus_without_space_is_a_negative_number() {
        assert_eq!(
            kinds("{{-3}}"),
            vec![
                Tok::LeftDelim,
                Tok::Number("-3".into()),
                Tok::RightDelim,
                Tok::Eof
            ]
        );
    }

    #[test]
    fn fields_and_variables_chain() {
        assert_eq!(
            kinds("{{$x.A.B}}"),
            vec![
                Tok::LeftDelim,
                Tok::Variable("$x".into()),
                Tok::Field("A".into()),
                Tok::Field("B".into()),
                Tok::RightDelim,
                Tok::Eof
            ]
        );
    }

    #[test]
    fn comments_with_trim_markers() {
        assert_eq!(
            kinds("a  {{- /* c */ -}}  b"),
            vec![
                Tok::Text("a".into()),
                Tok::Comment,
                Tok::Text("b".into()),
                Tok::Eof
            ]
        );
        assert!(lex("{{/* c */ x}}").is_err());
        assert!(lex("{{/* c ").is_err());
    }

    #[test]
    fn unclosed_actions_fail() {
        assert_eq!(lex("{{ .A").unwrap_err().msg, "unclosed action");
        assert!(lex("{{ (.A }}").is_err());
        assert!(lex("{{ .A) }}").is_err());
        assert!(lex("{{ \"abc }}").is_err());
    }
}

//! Go's `encoding/json` spelling of a [`Value`]: map keys sorted, structs in field order,
//! `<`, `>`, `&` escaped as `\u003c`… (HTML-safe, as `json.Marshal` does), floats as Go
//! writes them.

use std::fmt::Write;

use crate::format::float_json;
use crate::value::Value;

/// `json.Marshal(v)`; `html_safe: false` is sprig's `toRawJson` (no HTML escaping).
pub fn encode(v: &Value, html_safe: bool) -> String {
    let mut out = String::new();
    write(&mut out, v, html_safe, None, 0);
    out
}

/// `json.MarshalIndent(v, "", "  ")`.
pub fn encode_pretty(v: &Value) -> String {
    let mut out = String::new();
    write(&mut out, v, true, Some("  "), 0);
    out
}

/// Where JSON text is appended: a `String`, or the bytes of one.
pub trait Out {
    fn put(&mut self, text: &str);
}

impl Out for String {
    fn put(&mut self, text: &str) {
        self.push_str(text);
    }
}

impl Out for Vec<u8> {
    fn put(&mut self, text: &str) {
        self.extend_from_slice(text.as_bytes());
    }
}

/// Appends a JSON string literal the way Go escapes it: `\n`-style escapes where Go has
/// them (including `\b` and `\f`), other control characters, U+2028 and U+2029 as `\u00XX`
/// and `\u2028`, and with `html_safe` (what `json.Marshal` does) `<`, `>` and `&` too.
pub fn write_string<O: Out + ?Sized>(out: &mut O, s: &str, html_safe: bool) {
    out.put("\"");
    // Every character to escape is ASCII except U+2028/U+2029 (E2 80 A8/A9), so the scan
    // goes by bytes and only stops on a character boundary; the runs between are copied whole.
    let bytes = s.as_bytes();
    let stops = if html_safe { &STOPS_HTML } else { &STOPS };
    let (mut run, mut at) = (0, 0);
    while let Some(&b) = bytes.get(at) {
        if !stops[usize::from(b)] {
            at += 1;
            continue;
        }
        let (code, len) = match b {
            0xe2 => match (bytes.get(at + 1), bytes.get(at + 2)) {
                (Some(0x80), Some(&last @ (0xa8 | 0xa9))) => (0x2000 + u32::from(last - 0x80), 3),
                _ => {
                    at += 1;
                    continue;
                }
            },
            _ => (u32::from(b), 1),
        };
        out.put(&s[run..at]);
        let mut buf = [0u8; 6];
        out.put(match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            _ => unicode_escape(code, &mut buf),
        });
        at += len;
        run = at;
    }
    out.put(&s[run..]);
    out.put("\"");
}

/// Bytes that may start an escape: the ASCII ones Go escapes, and the lead byte of U+2028/9.
const STOPS: [bool; 256] = stops(false);
/// [`STOPS`] with `<`, `>` and `&`.
const STOPS_HTML: [bool; 256] = stops(true);

const fn stops(html_safe: bool) -> [bool; 256] {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table[0xe2] = true;
    if html_safe {
        table[b'<' as usize] = true;
        table[b'>' as usize] = true;
        table[b'&' as usize] = true;
    }
    table
}

/// `\uXXXX` (lowercase hex, as Go writes it) for a character below U+10000.
fn unicode_escape(code: u32, buf: &mut [u8; 6]) -> &str {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    buf[0] = b'\\';
    buf[1] = b'u';
    for (i, shift) in [12, 8, 4, 0].into_iter().enumerate() {
        buf[2 + i] = HEX[((code >> shift) & 0xf) as usize];
    }
    std::str::from_utf8(buf).unwrap_or("\\ufffd")
}

fn newline(out: &mut String, indent: Option<&str>, depth: usize) {
    if let Some(ind) = indent {
        out.push('\n');
        for _ in 0..depth {
            out.push_str(ind);
        }
    }
}

fn write(out: &mut String, v: &Value, html_safe: bool, indent: Option<&str>, depth: usize) {
    match v {
        Value::Nil | Value::Func(_) => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => out.push_str(&float_json(*f)),
        Value::String(s) => write_string(out, s, html_safe),
        Value::List(items) => {
            out.push('[');
            if !items.is_empty() {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    newline(out, indent, depth + 1);
                    write(out, item, html_safe, indent, depth + 1);
                }
                newline(out, indent, depth);
            }
            out.push(']');
        }
        Value::Map(m) => write_object(
            out,
            m.entries.iter().map(|(k, v)| (&**k, v)),
            html_safe,
            indent,
            depth,
        ),
        Value::Struct(s) => write_object(
            out,
            s.fields.iter().map(|(k, v)| (&**k, v)),
            html_safe,
            indent,
            depth,
        ),
    }
}

fn write_object<'a>(
    out: &mut String,
    entries: impl ExactSizeIterator<Item = (&'a str, &'a Value)>,
    html_safe: bool,
    indent: Option<&str>,
    depth: usize,
) {
    out.push('{');
    let empty = entries.len() == 0;
    for (i, (k, v)) in entries.enumerate() {
        if i > 0 {
            out.push(',');
        }
        newline(out, indent, depth + 1);
        write_string(out, k, html_safe);
        out.push(':');
        if indent.is_some() {
            out.push(' ');
        }
        write(out, v, html_safe, indent, depth + 1);
    }
    if !empty {
        newline(out, indent, depth);
    }
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_go_marshal() {
        let v = Value::from_json(&serde_json::json!({
            "b": [1, 2.5, "x<y>&z"], "a": null, "c": {}, "d": 1e21, "e": true
        }));
        assert_eq!(
            encode(&v, true),
            r#"{"a":null,"b":[1,2.5,"x\u003cy\u003e\u0026z"],"c":{},"d":1e+21,"e":true}"#
        );
        assert_eq!(encode(&Value::from("a<b"), false), r#""a<b""#);
    }

    #[test]
    fn strings_are_escaped_as_go_writes_them_into_either_output() {
        for (given, html, raw) in [
            ("a\"b\\c", r#""a\"b\\c""#, r#""a\"b\\c""#),
            ("\t\n\r\u{8}\u{c}", r#""\t\n\r\b\f""#, r#""\t\n\r\b\f""#),
            ("\u{1}x\u{1f}", r#""\u0001x\u001f""#, r#""\u0001x\u001f""#),
            ("<&>", r#""\u003c\u0026\u003e""#, r#""<&>""#),
            (
                "a\u{2028}b\u{2029}",
                r#""a\u2028b\u2029""#,
                r#""a\u2028b\u2029""#,
            ),
            ("é✓🚀", "\"é✓🚀\"", "\"é✓🚀\""),
            ("", r#""""#, r#""""#),
        ] {
            for (html_safe, want) in [(true, html), (false, raw)] {
                let mut text = String::new();
                write_string(&mut text, given, html_safe);
                assert_eq!(text, want, "{given:?}");
                let mut bytes = Vec::new();
                write_string(&mut bytes, given, html_safe);
                assert_eq!(bytes, want.as_bytes(), "{given:?}");
            }
        }
    }

    #[test]
    fn pretty_prints_like_marshal_indent() {
        let v = Value::from_json(&serde_json::json!({"a": [1], "b": {}, "c": []}));
        assert_eq!(
            encode_pretty(&v),
            "{\n  \"a\": [\n    1\n  ],\n  \"b\": {},\n  \"c\": []\n}"
        );
    }

    #[test]
    fn structs_keep_field_order() {
        let v = Value::structure("T", [("z", Value::Int(1)), ("a", Value::from("q\n"))]);
        assert_eq!(encode(&v, true), r#"{"z":1,"a":"q\n"}"#);
    }

    #[test]
    fn encoded_json_parses_back_to_the_same_data() {
        let strings = [
            "",
            "a\"b",
            "\\",
            "\u{1}\u{1f}",
            "<&>",
            "\u{2028}",
            "é✓",
            "\t\n\r\u{8}\u{c}",
        ];
        for s in strings {
            let v = Value::map([(
                s,
                Value::list([Value::from(s), Value::Float(0.1), Value::Int(-7)]),
            )]);
            for text in [encode(&v, true), encode(&v, false), encode_pretty(&v)] {
                let back: serde_json::Value = serde_json::from_str(&text).unwrap();
                assert_eq!(back, v.to_json(), "{text}");
            }
        }
    }
}

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

/// Appends a JSON string literal the way Go escapes it.
pub fn write_string(out: &mut String, s: &str, html_safe: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '<' | '>' | '&' if html_safe => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
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

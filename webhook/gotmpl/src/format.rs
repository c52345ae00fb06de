//! Go's `fmt` and `strconv` spellings: `%v` of every value, float layout, `strconv.Quote`,
//! and the `printf` verbs templates use.

use std::fmt::Write;

use crate::value::Value;

/// Appends `fmt.Sprint(v)` (the `%v` verb).
pub fn write_value(out: &mut String, v: &Value) {
    match v {
        Value::Nil => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) if f.fract() == 0.0 && f.abs() < 1e6 && !f.is_sign_negative() => {
            let _ = write!(out, "{}", *f as i64);
        }
        Value::Float(f) => out.push_str(&float_g(*f)),
        Value::String(s) => out.push_str(s),
        Value::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Map(m) => {
            out.push_str("map[");
            for (i, (k, v)) in m.entries.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                write_value(out, v);
            }
            out.push(']');
        }
        Value::Struct(s) => {
            out.push('{');
            for (i, (_, v)) in s.fields.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_value(out, v);
            }
            out.push('}');
        }
        Value::Func(f) => {
            let _ = write!(out, "{:p}", std::sync::Arc::as_ptr(f) as *const ());
        }
    }
}

/// The shortest decimal digits that round-trip `f` (which must be finite and non-zero),
/// and the decimal point position: value = 0.DIGITS × 10^dp.
fn shortest_digits(f: f64) -> (Vec<u8>, i32) {
    let s = format!("{:e}", f.abs());
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let digits: Vec<u8> = mant.bytes().filter(u8::is_ascii_digit).collect();
    let exp: i32 = exp.parse().unwrap_or(0);
    (digits, exp + 1)
}

/// Lays digits out in `%e` style with `frac` digits after the point (Go: at least two
/// exponent digits, explicit sign).
fn layout_e(out: &mut String, digits: &[u8], dp: i32, frac: usize) {
    out.push(digits.first().map_or('0', |d| *d as char));
    if frac > 0 {
        out.push('.');
        for i in 1..=frac {
            out.push(digits.get(i).map_or('0', |d| *d as char));
        }
    }
    let exp = if digits.iter().all(|d| *d == b'0') {
        0
    } else {
        dp - 1
    };
    out.push('e');
    out.push(if exp < 0 { '-' } else { '+' });
    let _ = write!(out, "{:02}", exp.abs());
}

/// Lays digits out in `%f` style with `frac` digits after the point.
fn layout_f(out: &mut String, digits: &[u8], dp: i32, frac: usize) {
    if dp <= 0 {
        out.push('0');
    } else {
        for i in 0..dp as usize {
            out.push(digits.get(i).map_or('0', |d| *d as char));
        }
    }
    if frac > 0 {
        out.push('.');
        for i in 0..frac as i32 {
            let idx = dp + i;
            let c = if idx < 0 {
                '0'
            } else {
                digits.get(idx as usize).map_or('0', |d| *d as char)
            };
            out.push(c);
        }
    }
}

fn special(f: f64, plus: bool) -> Option<String> {
    if f.is_nan() {
        Some("NaN".into())
    } else if f.is_infinite() {
        Some(if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        })
    } else if f == 0.0 {
        let neg = f.is_sign_negative();
        Some(match (neg, plus) {
            (true, _) => "-0".into(),
            (false, true) => "+0".into(),
            (false, false) => "0".into(),
        })
    } else {
        None
    }
}

/// `strconv.FormatFloat(f, 'g', -1, 64)`, which is also `fmt`'s `%v`: `1e+06`, `15020`, `1.12`.
pub fn float_g(f: f64) -> String {
    // JSON numbers are floats, and most are small integers (ports, counts): print those
    // directly. Below 1e6 'g' never switches to an exponent.
    if f.fract() == 0.0 && f.abs() < 1e6 && !(f == 0.0 && f.is_sign_negative()) {
        return (f as i64).to_string();
    }
    if let Some(s) = special(f, false) {
        return s;
    }
    let (digits, dp) = shortest_digits(f);
    let mut out = String::new();
    if f < 0.0 {
        out.push('-');
    }
    let exp = dp - 1;
    if !(-4..6).contains(&exp) {
        // Shortest 'g' switches to an exponent from 1e+06 on (eprec 6) and below 1e-4.
        layout_e(&mut out, &digits, dp, digits.len().saturating_sub(1));
    } else {
        let frac = (digits.len() as i32 - dp).max(0) as usize;
        layout_f(&mut out, &digits, dp, frac);
    }
    out
}

/// Go's `encoding/json` float spelling: plain decimal, exponent only beyond [1e-6, 1e21).
pub fn float_json(f: f64) -> String {
    if !f.is_finite() {
        return "null".into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let (digits, dp) = shortest_digits(f);
    let mut out = String::new();
    if f < 0.0 {
        out.push('-');
    }
    let abs = f.abs();
    if !(1e-6..1e21).contains(&abs) {
        layout_e(&mut out, &digits, dp, digits.len().saturating_sub(1));
        // Go trims "e-07" to "e-7".
        let n = out.len();
        let b = out.as_bytes();
        if n >= 4 && b[n - 4] == b'e' && b[n - 3] == b'-' && b[n - 2] == b'0' {
            out.remove(n - 2);
        }
    } else {
        let frac = (digits.len() as i32 - dp).max(0) as usize;
        layout_f(&mut out, &digits, dp, frac);
    }
    out
}

/// Rounds `f` to `prec` decimals in `%f` style (`strconv 'f'` with a precision).
fn float_fixed(f: f64, prec: usize) -> String {
    if let Some(s) = special(f, false) {
        if f == 0.0 {
            let mut s = s;
            if prec > 0 {
                s.push('.');
                s.extend(std::iter::repeat_n('0', prec));
            }
            return s;
        }
        return s;
    }
    format!("{f:.prec$}")
}

/// `%e` with a precision.
fn float_exp(f: f64, prec: usize) -> String {
    if let Some(s) = special(f, false) {
        if f == 0.0 {
            let mut s = s;
            if prec > 0 {
                s.push('.');
                s.extend(std::iter::repeat_n('0', prec));
            }
            s.push_str("e+00");
            return s;
        }
        return s;
    }
    let s = format!("{:.prec$e}", f);
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    format!("{mant}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
}

/// `%g` with a precision (significant digits).
fn float_g_prec(f: f64, prec: usize) -> String {
    if let Some(s) = special(f, false) {
        return s;
    }
    let prec = prec.max(1);
    let s = format!("{:.*e}", prec - 1, f.abs());
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut digits: Vec<u8> = mant.bytes().filter(u8::is_ascii_digit).collect();
    while digits.len() > 1 && digits.last() == Some(&b'0') {
        digits.pop();
    }
    let mut out = String::new();
    if f < 0.0 {
        out.push('-');
    }
    let mut eprec = prec as i32;
    if eprec > digits.len() as i32 && digits.len() as i32 > exp {
        eprec = digits.len() as i32;
    }
    if exp < -4 || exp >= eprec {
        layout_e(&mut out, &digits, exp + 1, digits.len() - 1);
    } else {
        let frac = (digits.len() as i32 - (exp + 1)).max(0) as usize;
        layout_f(&mut out, &digits, exp + 1, frac);
    }
    out
}

/// `strconv.Quote`: a double-quoted Go string literal.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let mut rest = s;
    // Copy runs of printable ASCII other than `"` and `\` whole; escape the rest one by one.
    while let Some(i) = rest
        .bytes()
        .position(|b| !(b' '..=b'~').contains(&b) || b == b'"' || b == b'\\')
    {
        out.push_str(&rest[..i]);
        let mut chars = rest[i..].chars();
        if let Some(c) = chars.next() {
            quote_char(&mut out, c, '"');
        }
        rest = chars.as_str();
    }
    out.push_str(rest);
    out.push('"');
    out
}

fn quote_char(out: &mut String, c: char, delim: char) {
    match c {
        '\x07' => out.push_str("\\a"),
        '\x08' => out.push_str("\\b"),
        '\x0c' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\x0b' => out.push_str("\\v"),
        '\\' => out.push_str("\\\\"),
        c if c == delim => {
            out.push('\\');
            out.push(c);
        }
        c if (c as u32) < 0x20 || c as u32 == 0x7f => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if is_printable(c) => out.push(c),
        c if (c as u32) < 0x10000 => {
            let _ = write!(out, "\\u{:04x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\U{:08x}", c as u32);
        }
    }
}

/// An approximation of Go's `strconv.IsPrint` for the characters we meet.
pub(crate) fn is_printable(c: char) -> bool {
    if c.is_ascii() {
        return !c.is_ascii_control();
    }
    let u = c as u32;
    // Not printable in Go: controls, format characters (Cf), separators other than the
    // ASCII space (Zs, Zl, Zp), private use and noncharacters.
    !(c.is_control()
        || matches!(
            u,
            0xa0 | 0xad | 0x61c | 0x6dd | 0x70f | 0x1680 | 0x180e | 0x202f | 0x205f
        )
        || matches!(u, 0x3000 | 0xfeff | 0x110bd | 0xe0001)
        || (0x600..=0x605).contains(&u)
        || (0x2000..=0x200f).contains(&u)
        || (0x2028..=0x202e).contains(&u)
        || (0x2060..=0x206f).contains(&u)
        || (0xfff9..=0xfffb).contains(&u)
        || (0xe000..=0xf8ff).contains(&u)
        || (0xfdd0..=0xfdef).contains(&u)
        || (u & 0xfffe) == 0xfffe
        || (0x1bca0..=0x1bca3).contains(&u)
        || (0x1d173..=0x1d17a).contains(&u)
        || (0xe0020..=0xe007f).contains(&u)
        || u >= 0xf0000)
}

/// Go's `%q` of a rune: `'a'`.
fn quote_rune(i: i64) -> String {
    let c = u32::try_from(i)
        .ok()
        .and_then(char::from_u32)
        .unwrap_or('\u{fffd}');
    let mut out = String::from("'");
    quote_char(&mut out, c, '\'');
    out.push('\'');
    out
}

/// Parsed flags, width and precision of one verb.
#[derive(Default)]
struct Spec {
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

impl Spec {
    /// No flags, width or precision: a verb prints its value as it is.
    fn is_plain(&self) -> bool {
        !(self.minus || self.plus || self.sharp || self.space || self.zero)
            && self.width.is_none()
            && self.prec.is_none()
    }
}

/// Go's `fmt.Sprintf` for the verbs templates use: `%v %s %d %q %t %f %e %g %x %X %o %b %c
/// %T %%`, flags, width and precision. Mismatches are spelled like Go (`%!d(string=x)`).
pub fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::with_capacity(format.len() + 16);
    let mut argi = 0;
    // Explicit argument indexes (`%[2]d`) turn off the EXTRA report, as in Go.
    let mut reordered = false;
    // Indexes are relative to `format[base..]`, where the iterator was last started.
    let mut base = 0;
    let mut chars = format.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '%' {
            // Text up to the next verb is copied whole.
            let start = base + i;
            let end = format[start..]
                .find('%')
                .map_or(format.len(), |k| start + k);
            out.push_str(&format[start..end]);
            base = end;
            chars = format[end..].char_indices().peekable();
            continue;
        }
        let mut spec = Spec::default();
        while let Some(&(_, f)) = chars.peek() {
            match f {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                '#' => spec.sharp = true,
                ' ' => spec.space = true,
                '0' => spec.zero = true,
                _ => break,
            }
            chars.next();
        }
        let mut bad_index = !read_index(&mut chars, args, &mut argi, &mut reordered);
        spec.width = read_num(&mut chars, args, &mut argi);
        if let Some(&(_, '.')) = chars.peek() {
            chars.next();
            bad_index |= !read_index(&mut chars, args, &mut argi, &mut reordered);
            spec.prec = Some(read_num(&mut chars, args, &mut argi).unwrap_or(0));
        }
        bad_index |= !read_index(&mut chars, args, &mut argi, &mut reordered);
        let Some((_, verb)) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        if bad_index {
            let _ = write!(out, "%!{verb}(BADINDEX)");
            continue;
        }
        let Some(arg) = args.get(argi) else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        argi += 1;
        match arg {
            // The common `%s` of a string needs neither a copy nor padding.
            Value::String(s) if matches!(verb, 's' | 'v') && spec.is_plain() => out.push_str(s),
            _ => pad(&mut out, &format_arg(verb, &spec, arg), &spec, verb),
        }
    }
    if !reordered && argi < args.len() {
        out.push_str("%!(EXTRA ");
        for (i, a) in args[argi..].iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            let _ = write!(out, "{}={}", a.type_name(), a);
        }
        out.push(')');
    }
    out
}

/// An explicit argument index `[n]` (1-based): moves to that argument. False if malformed.
fn read_index(
    chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
    args: &[Value],
    argi: &mut usize,
    reordered: &mut bool,
) -> bool {
    if !matches!(chars.peek(), Some(&(_, '['))) {
        return true;
    }
    chars.next();
    *reordered = true;
    let mut n: usize = 0;
    let mut digits = 0;
    while let Some(&(_, c)) = chars.peek() {
        chars.next();
        match c.to_digit(10) {
            Some(d) => {
                n = n.saturating_mul(10).saturating_add(d as usize);
                digits += 1;
            }
            None if c == ']' && digits > 0 && (1..=args.len()).contains(&n) => {
                *argi = n - 1;
                return true;
            }
            None => return false,
        }
    }
    false
}

fn read_num(
    chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
    args: &[Value],
    argi: &mut usize,
) -> Option<usize> {
    if let Some(&(_, '*')) = chars.peek() {
        chars.next();
        let n = match args.get(*argi) {
            Some(Value::Int(i)) => usize::try_from(*i).ok(),
            _ => None,
        };
        *argi += 1;
        return n;
    }
    let mut n: Option<usize> = None;
    while let Some(&(_, d)) = chars.peek() {
        let Some(v) = d.to_digit(10) else { break };
        n = Some(
            n.unwrap_or(0)
                .saturating_mul(10)
                .saturating_add(v as usize)
                .min(1_000_000),
        );
        chars.next();
    }
    n
}

fn pad(out: &mut String, body: &str, spec: &Spec, verb: char) {
    let len = body.chars().count();
    let width = spec.width.unwrap_or(0);
    if len >= width {
        out.push_str(body);
        return;
    }
    let fill = width - len;
    if spec.minus {
        out.push_str(body);
        out.extend(std::iter::repeat_n(' ', fill));
    } else if spec.zero && matches!(verb, 'd' | 'f' | 'F' | 'e' | 'g' | 'x' | 'X' | 'o' | 'b') {
        // Zero padding goes after the sign.
        let (sign, rest) = match body.as_bytes().first() {
            Some(b'-' | b'+' | b' ') => body.split_at(1),
            _ => ("", body),
        };
        out.push_str(sign);
        out.extend(std::iter::repeat_n('0', fill));
        out.push_str(rest);
    } else {
        out.extend(std::iter::repeat_n(' ', fill));
        out.push_str(body);
    }
}

fn bad_verb(verb: char, arg: &Value) -> String {
    match arg {
        Value::Nil => format!("%!{verb}(<nil>)"),
        _ => format!("%!{verb}({}={})", arg.type_name(), arg),
    }
}

fn sign(s: String, spec: &Spec, negative: bool) -> String {
    if negative {
        s
    } else if spec.plus {
        format!("+{s}")
    } else if spec.space {
        format!(" {s}")
    } else {
        s
    }
}

fn format_int(verb: char, spec: &Spec, i: i64) -> Option<String> {
    let neg = i < 0;
    let abs = i.unsigned_abs();
    let digits = match verb {
        'd' | 'v' => abs.to_string(),
        'x' => format!("{abs:x}"),
        'X' => format!("{abs:X}"),
        'o' => format!("{abs:o}"),
        'b' => format!("{abs:b}"),
        'c' => return Some(quote_rune(i).trim_matches('\'').to_string()),
        'q' => return Some(quote_rune(i)),
        _ => return None,
    };
    let mut digits = match spec.prec {
        Some(p) if digits.len() < p => format!("{}{digits}", "0".repeat(p - digits.len())),
        _ => digits,
    };
    if spec.sharp {
        match verb {
            'x' => digits = format!("0x{digits}"),
            'X' => digits = format!("0X{digits}"),
            'o' => digits = format!("0{digits}"),
            _ => {}
        }
    }
    let s = if neg { format!("-{digits}") } else { digits };
    Some(sign(s, spec, neg))
}

fn format_float(verb: char, spec: &Spec, f: f64) -> Option<String> {
    let s = match (verb, spec.prec) {
        ('v', _) | ('g', None) => float_g(f),
        ('g', Some(p)) => float_g_prec(f, p),
        ('f' | 'F', p) => float_fixed(f, p.unwrap_or(6)),
        ('e', p) => float_exp(f, p.unwrap_or(6)),
        ('E', p) => float_exp(f, p.unwrap_or(6)).to_uppercase(),
        _ => return None,
    };
    let neg = s.starts_with('-');
    Some(sign(s, spec, neg))
}

fn hex_string(s: &str, upper: bool) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for b in s.bytes() {
        if upper {
            let _ = write!(out, "{b:02X}");
        } else {
            let _ = write!(out, "{b:02x}");
        }
    }
    out
}

fn format_arg(verb: char, spec: &Spec, arg: &Value) -> String {
    if verb == 'T' {
        return arg.type_name().to_string();
    }
    match arg {
        Value::String(s) => match verb {
            'v' | 's' => match spec.prec {
                Some(p) => s.chars().take(p).collect(),
                None => s.to_string(),
            },
            'q' => {
                if spec.sharp && !s.contains('`') {
                    format!("`{s}`")
                } else {
                    quote(s)
                }
            }
            'x' => hex_string(s, false),
            'X' => hex_string(s, true),
            _ => bad_verb(verb, arg),
        },
        Value::Int(i) => format_int(verb, spec, *i).unwrap_or_else(|| bad_verb(verb, arg)),
        Value::Float(f) => format_float(verb, spec, *f).unwrap_or_else(|| bad_verb(verb, arg)),
        Value::Bool(b) => match verb {
            'v' | 't' => b.to_string(),
            _ => bad_verb(verb, arg),
        },
        Value::Nil => match verb {
            'v' => "<nil>".into(),
            _ => bad_verb(verb, arg),
        },
        Value::List(items) => {
            // Go applies the verb to each element.
            let mut out = String::from("[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(&format_arg(verb, spec, item));
            }
            out.push(']');
            out
        }
        Value::Map(m) => {
            let mut out = String::from("map[");
            for (i, (k, v)) in m.entries.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(&format_arg(verb, spec, &Value::String(k.clone())));
                out.push(':');
                out.push_str(&format_arg(verb, spec, v));
            }
            out.push(']');
            out
        }
        Value::Struct(s) => {
            let mut out = String::from("{");
            for (i, (k, v)) in s.fields.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                if spec.plus {
                    out.push_str(k);
                    out.push(':');
                }
                out.push_str(&format_arg(verb, spec, v));
            }
            out.push('}');
            out
        }
        Value::Func(_) => match verb {
            'v' | 'p' => arg.to_string(),
            _ => bad_verb(verb, arg),
        },
    }
}

/// `fmt.Sprint`: operands joined, with a space between two operands when neither is a string.
pub fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !matches!(a, Value::String(_)) && !matches!(args[i - 1], Value::String(_)) {
            out.push(' ');
        }
        write_value(&mut out, a);
    }
    out
}

/// `fmt.Sprintln`: operands always space-separated, then a newline.
pub fn sprintln(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        write_value(&mut out, a);
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_go_percent_v() {
        // Expected values are Go's fmt.Sprint output.
        assert_eq!(float_g(1000000.0), "1e+06");
        assert_eq!(float_g(15020.0), "15020");
        assert_eq!(float_g(1.12), "1.12");
        assert_eq!(float_g(123456.0), "123456");
        assert_eq!(float_g(12345678.0), "1.2345678e+07");
        assert_eq!(float_g(0.0001), "0.0001");
        assert_eq!(float_g(0.00001), "1e-05");
        assert_eq!(float_g(-2.5), "-2.5");
        assert_eq!(float_g(1e21), "1e+21");
        assert_eq!(float_g(0.0), "0");
        assert_eq!(float_g(f64::INFINITY), "+Inf");
    }

    #[test]
    fn floats_encode_like_go_json() {
        assert_eq!(float_json(1000000.0), "1000000");
        assert_eq!(float_json(1e21), "1e+21");
        assert_eq!(float_json(1.5e-7), "1.5e-7");
        assert_eq!(float_json(0.5), "0.5");
        assert_eq!(float_json(15020.0), "15020");
    }

    #[test]
    fn sprintf_handles_common_verbs() {
        let s = |f: &str, a: &[Value]| sprintf(f, a);
        assert_eq!(s("%s-%d", &["a".into(), Value::Int(3)]), "a-3");
        assert_eq!(s("%t", &[Value::Bool(true)]), "true");
        assert_eq!(s("%q", &["a\"b\n".into()]), r#""a\"b\n""#);
        assert_eq!(
            s("%5d|%-4s|", &[Value::Int(42), "ab".into()]),
            "   42|ab  |"
        );
        assert_eq!(s("%05d", &[Value::Int(-42)]), "-0042");
        assert_eq!(s("%.2f", &[Value::Float(1.23456)]), "1.23");
        assert_eq!(s("%f", &[Value::Float(1.0)]), "1.000000");
        assert_eq!(s("%x", &[Value::Int(255)]), "ff");
        assert_eq!(s("%x", &["hi".into()]), "6869");
        assert_eq!(s("%v", &[Value::Float(1e6)]), "1e+06");
        assert_eq!(s("%d", &["x".into()]), "%!d(string=x)");
        assert_eq!(s("%d %d", &[Value::Int(1)]), "1 %!d(MISSING)");
        assert_eq!(s("%d", &[Value::Int(1), "x".into()]), "1%!(EXTRA string=x)");
        assert_eq!(s("100%%", &[]), "100%");
        assert_eq!(s("%[2]d %[1]d", &[Value::Int(1), Value::Int(2)]), "2 1");
        assert_eq!(s("%[3]d", &[Value::Int(1)]), "%!d(BADINDEX)");
        assert_eq!(s("%e", &[Value::Float(1234.5678)]), "1.234568e+03");
        assert_eq!(s("%g", &[Value::Float(0.5)]), "0.5");
        assert_eq!(s("%.3g", &[Value::Float(1234.5678)]), "1.23e+03");
        assert_eq!(s("%c", &[Value::Int(65)]), "A");
        assert_eq!(s("%q", &[Value::Int(65)]), "'A'");
        assert_eq!(
            s("%v", &[Value::list(["a".into(), Value::Int(1)])]),
            "[a 1]"
        );
        assert_eq!(s("%T", &[Value::Float(1.0)]), "float64");
    }

    #[test]
    fn sprint_spaces_only_between_non_strings() {
        assert_eq!(sprint(&[Value::Int(1), Value::Int(2)]), "1 2");
        assert_eq!(sprint(&["a".into(), Value::Int(1), "b".into()]), "a1b");
        assert_eq!(sprint(&["a".into(), "b".into()]), "ab");
        assert_eq!(sprintln(&["a".into(), "b".into()]), "a b\n");
    }

    #[test]
    fn quote_escapes_like_strconv() {
        assert_eq!(quote("a\tb\\c\u{1}"), r#""a\tb\\c\x01""#);
        assert_eq!(quote("héllo"), "\"héllo\"");
        assert_eq!(quote("\u{2028}"), r#""\u2028""#);
        assert_eq!(quote("a\u{a0}b\u{200d}c✓"), r#""a\u00a0b\u200dc✓""#);
    }
}

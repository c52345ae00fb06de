//! The sprig functions (github.com/Masterminds/sprig), with sprig's argument orders:
//! the value a pipeline feeds in is the last argument (`contains substr str`,
//! `default def val`, `trimAll cutset str`).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::format;
use crate::funcs::{FuncError, Funcs, arg_count};
use crate::value::{Map, MapElem, Value};
use crate::{json, yaml};

type R = Result<Value, FuncError>;

/// The most items `until`, `untilStep` and `seq` generate: far beyond any real template,
/// and small enough that a typo cannot make one render allocate gigabytes.
const MAX_GENERATED: usize = 1 << 16;

/// Registers every sprig function we provide.
pub(crate) fn register(f: &mut Funcs) {
    strings(f);
    defaults(f);
    lists(f);
    dicts(f);
    math(f);
    encodings(f);
    types(f);
    extras(f);
}

/// Less common sprig functions, and the `must*` variants of those that report errors
/// (ours always do).
fn extras(f: &mut Funcs) {
    for (alias, name) in [
        ("mustAppend", "append"),
        ("mustPush", "push"),
        ("mustPrepend", "prepend"),
        ("mustFirst", "first"),
        ("mustLast", "last"),
        ("mustRest", "rest"),
        ("mustInitial", "initial"),
        ("mustReverse", "reverse"),
        ("mustUniq", "uniq"),
        ("mustCompact", "compact"),
        ("mustWithout", "without"),
        ("mustHas", "has"),
        ("mustToJson", "toJson"),
        ("mustToRawJson", "toRawJson"),
        ("mustToPrettyJson", "toPrettyJson"),
        ("mustMerge", "merge"),
        ("mustMergeOverwrite", "mergeOverwrite"),
        ("tuple", "list"),
    ] {
        if let Some(func) = f.get(name) {
            f.insert_func(alias, func);
        }
    }
    f.insert("trimall", |a| {
        s2(a, "trimall", |cut, s| {
            s.trim_matches(|c| cut.contains(c)).into()
        })
    });
    f.insert("mustFromJson", |a| {
        let s = str_arg(one(a, "mustFromJson")?)?;
        serde_json::from_str::<serde_json::Value>(s)
            .map(|j| Value::from_json(&j))
            .map_err(|e| FuncError(e.to_string()))
    });
    f.insert("dig", |a| {
        // dig "k1" "k2" default dict
        if a.len() < 3 {
            return Err(FuncError::new("dig needs at least three arguments"));
        }
        let (dict, rest) = a.split_last().expect("checked length");
        let (default, keys) = rest.split_last().expect("checked length");
        let mut cur = dict.clone();
        for k in keys {
            let next = match &cur {
                Value::Map(m) => m.entries.get(str_arg(k)?).cloned(),
                _ => None,
            };
            match next {
                Some(v) => cur = v,
                None => return Ok(default.clone()),
            }
        }
        Ok(cur)
    });
    f.insert("chunk", |a| {
        let [size, l] = a else {
            return Err(arg_count("chunk", 2, a.len()));
        };
        let size = int_arg(size)?;
        if size <= 0 {
            return Err(FuncError::new("chunk size must be positive"));
        }
        let l = must_list(l, "chunk")?;
        Ok(Value::list(
            l.chunks(size as usize)
                .map(|c| Value::list(c.iter().cloned())),
        ))
    });
    f.insert("seq", |a| {
        let n: Vec<i64> = a.iter().map(to_int64).collect();
        let (start, step, end) = match n.as_slice() {
            [end] => (1, 1, *end),
            [start, end] => (*start, if end >= start { 1 } else { -1 }, *end),
            [start, step, end] => (*start, *step, *end),
            _ => return Ok("".into()),
        };
        if step == 0 || (step > 0) != (end >= start) && start != end {
            return Ok("".into());
        }
        let mut out = Vec::new();
        let mut i = start;
        while (step > 0 && i <= end) || (step < 0 && i >= end) {
            if out.len() >= MAX_GENERATED {
                return Err(FuncError::new("seq too long"));
            }
            out.push(i.to_string());
            match i.checked_add(step) {
                Some(n) => i = n,
                None => break,
            }
        }
        Ok(out.join(" ").into())
    });
    f.insert("addf", |a| Ok(Value::Float(a.iter().map(to_float64).sum())));
    f.insert("add1f", |a| {
        Ok(Value::Float(to_float64(one(a, "add1f")?) + 1.0))
    });
    f.insert("subf", |a| {
        let Some((first, rest)) = a.split_first() else {
            return Err(arg_count("subf", 2, 0));
        };
        Ok(Value::Float(
            rest.iter()
                .fold(to_float64(first), |x, y| x - to_float64(y)),
        ))
    });
    f.insert("mulf", |a| {
        Ok(Value::Float(a.iter().map(to_float64).product()))
    });
    f.insert("divf", |a| {
        let Some((first, rest)) = a.split_first() else {
            return Err(arg_count("divf", 2, 0));
        };
        Ok(Value::Float(
            rest.iter()
                .fold(to_float64(first), |x, y| x / to_float64(y)),
        ))
    });
    f.insert("maxf", |a| {
        Ok(Value::Float(
            a.iter().map(to_float64).fold(f64::NEG_INFINITY, f64::max),
        ))
    });
    f.insert("minf", |a| {
        Ok(Value::Float(
            a.iter().map(to_float64).fold(f64::INFINITY, f64::min),
        ))
    });
    f.insert("round", |a| {
        let (x, places) = match a {
            [x, p] => (to_float64(x), to_int64(p)),
            [x, p, _] => (to_float64(x), to_int64(p)),
            _ => return Err(arg_count("round", 2, a.len())),
        };
        let m = 10f64.powi(places.clamp(-300, 300) as i32);
        Ok(Value::Float((x * m).round() / m))
    });
    f.insert("toDecimal", |a| {
        let s = strval(one(a, "toDecimal")?);
        Ok(Value::Int(i64::from_str_radix(&s, 8).unwrap_or(0)))
    });
    f.insert("splitn", |a| {
        let [sep, n, s] = a else {
            return Err(arg_count("splitn", 3, a.len()));
        };
        let (sep, n, s) = (str_arg(sep)?, int_arg(n)?, str_arg(s)?);
        let parts: Vec<&str> = match n {
            0 => Vec::new(),
            n if n < 0 || sep.is_empty() => s.split(sep).collect(),
            n => s.splitn(n as usize, sep).collect(),
        };
        Ok(Value::map(
            parts
                .into_iter()
                .enumerate()
                .map(|(i, p)| (format!("_{i}"), Value::from(p))),
        ))
    });
    f.insert("initials", |a| {
        s1(a, "initials", |s| {
            s.split_whitespace()
                .filter_map(|w| w.chars().next())
                .collect::<String>()
                .into()
        })
    });
    f.insert("abbrev", |a| {
        let [w, s] = a else {
            return Err(arg_count("abbrev", 2, a.len()));
        };
        let (w, s) = (int_arg(w)?, str_arg(s)?);
        let n = s.chars().count() as i64;
        if w < 4 || n <= w {
            return Ok(s.into());
        }
        let kept: String = s.chars().take((w - 3) as usize).collect();
        Ok(format!("{kept}...").into())
    });
    f.insert("plural", |a| {
        let [one_, many, n] = a else {
            return Err(arg_count("plural", 3, a.len()));
        };
        let n = int_arg(n)?;
        Ok(if n == 1 { one_.clone() } else { many.clone() })
    });
    f.insert("deepCopy", |a| Ok(one(a, "deepCopy")?.clone()));
    f.insert("typeIsLike", |a| {
        let [t, v] = a else {
            return Err(arg_count("typeIsLike", 2, a.len()));
        };
        let t = str_arg(t)?;
        let name = v.type_name();
        Ok(Value::Bool(t == name || t.strip_prefix('*') == Some(name)))
    });
    f.insert("sha256sum", |a| {
        Ok(hex(&sha256(str_arg(one(a, "sha256sum")?)?.as_bytes())).into())
    });
    f.insert("adler32sum", |a| {
        let s = str_arg(one(a, "adler32sum")?)?;
        let (mut x, mut y) = (1u32, 0u32);
        for b in s.bytes() {
            x = (x + b as u32) % 65521;
            y = (y + x) % 65521;
        }
        Ok(((y << 16) | x).to_string().into())
    });
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 (FIPS 180-4), for sprig's `sha256sum`.
fn sha256(data: &[u8]) -> [u8; 32] {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut msg = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_be_bytes());
    for block in msg.chunks(64) {
        let mut w = [0u32; 64];
        for (i, word) in block.chunks(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let mut v = h;
        for i in 0..64 {
            let s1 = v[4].rotate_right(6) ^ v[4].rotate_right(11) ^ v[4].rotate_right(25);
            let ch = (v[4] & v[5]) ^ (!v[4] & v[6]);
            let t1 = v[7]
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = v[0].rotate_right(2) ^ v[0].rotate_right(13) ^ v[0].rotate_right(22);
            let maj = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
            let t2 = s0.wrapping_add(maj);
            v = [
                t1.wrapping_add(t2),
                v[0],
                v[1],
                v[2],
                v[3].wrapping_add(t1),
                v[4],
                v[5],
                v[6],
            ];
        }
        for (a, b) in h.iter_mut().zip(v) {
            *a = a.wrapping_add(b);
        }
    }
    let mut out = [0u8; 32];
    for (i, word) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&word.to_be_bytes());
    }
    out
}

fn strings(f: &mut Funcs) {
    f.insert("trim", |a| s1(a, "trim", |s| s.trim().into()));
    f.insert("trimAll", |a| {
        s2(a, "trimAll", |cut, s| {
            s.trim_matches(|c| cut.contains(c)).into()
        })
    });
    f.insert("trimPrefix", |a| {
        s2(a, "trimPrefix", |p, s| {
            s.strip_prefix(p).unwrap_or(s).into()
        })
    });
    f.insert("trimSuffix", |a| {
        s2(a, "trimSuffix", |p, s| {
            s.strip_suffix(p).unwrap_or(s).into()
        })
    });
    f.insert("upper", |a| s1(a, "upper", |s| s.to_uppercase().into()));
    f.insert("lower", |a| s1(a, "lower", |s| s.to_lowercase().into()));
    f.insert("title", |a| s1(a, "title", |s| title(s).into()));
    f.insert("untitle", |a| s1(a, "untitle", |s| untitle(s).into()));
    f.insert("nospace", |a| {
        s1(a, "nospace", |s| {
            s.chars()
                .filter(|c| !c.is_whitespace())
                .collect::<String>()
                .into()
        })
    });
    f.insert("replace", |a| {
        let [old, new, s] = a else {
            return Err(arg_count("replace", 3, a.len()));
        };
        Ok(str_arg(s)?.replace(str_arg(old)?, str_arg(new)?).into())
    });
    f.insert("repeat", |a| {
        let [n, s] = a else {
            return Err(arg_count("repeat", 2, a.len()));
        };
        let n = int_arg(n)?;
        let s = str_arg(s)?;
        if n < 0 {
            return Err(FuncError::new("strings: negative Repeat count"));
        }
        if (n as usize).saturating_mul(s.len()) > 1 << 24 {
            return Err(FuncError::new("strings: Repeat output length overflow"));
        }
        Ok(s.repeat(n as usize).into())
    });
    f.insert("substr", |a| {
        let [start, end, s] = a else {
            return Err(arg_count("substr", 3, a.len()));
        };
        Ok(substr(int_arg(start)?, int_arg(end)?, str_arg(s)?).into())
    });
    f.insert("trunc", |a| {
        let [n, s] = a else {
            return Err(arg_count("trunc", 2, a.len()));
        };
        Ok(trunc(int_arg(n)?, str_arg(s)?).into())
    });
    f.insert("contains", |a| b2(a, "contains", |sub, s| s.contains(sub)));
    f.insert("hasPrefix", |a| b2(a, "hasPrefix", |p, s| s.starts_with(p)));
    f.insert("hasSuffix", |a| b2(a, "hasSuffix", |p, s| s.ends_with(p)));
    f.insert("quote", |a| match a {
        [Value::String(s)] => Ok(format::quote(s).into()),
        a => Ok(quote_all(a, |s| format::quote(&s)).into()),
    });
    f.insert("squote", |a| Ok(quote_all(a, |s| format!("'{s}'")).into()));
    f.insert("cat", |a| {
        let parts: Vec<String> = a.iter().filter(|v| !v.is_nil()).map(strval).collect();
        Ok(parts.join(" ").into())
    });
    f.insert("indent", |a| {
        let [n, s] = a else {
            return Err(arg_count("indent", 2, a.len()));
        };
        Ok(indent(int_arg(n)?, str_arg(s)?).into())
    });
    f.insert("nindent", |a| {
        let [n, s] = a else {
            return Err(arg_count("nindent", 2, a.len()));
        };
        Ok(format!("\n{}", indent(int_arg(n)?, str_arg(s)?)).into())
    });
    f.insert("split", |a| {
        let [sep, s] = a else {
            return Err(arg_count("split", 2, a.len()));
        };
        let parts = go_split(str_arg(s)?, str_arg(sep)?);
        Ok(Value::map(
            parts
                .into_iter()
                .enumerate()
                .map(|(i, p)| (format!("_{i}"), Value::from(p))),
        ))
    });
    f.insert("splitList", |a| {
        let [sep, s] = a else {
            return Err(arg_count("splitList", 2, a.len()));
        };
        Ok(Value::list(
            go_split(str_arg(s)?, str_arg(sep)?)
                .into_iter()
                .map(Value::from),
        ))
    });
    f.insert("join", |a| {
        let [sep, v] = a else {
            return Err(arg_count("join", 2, a.len()));
        };
        let sep = str_arg(sep)?;
        Ok(match v {
            Value::List(items) => items
                .iter()
                .filter(|v| !v.is_nil())
                .map(strval)
                .collect::<Vec<_>>()
                .join(sep)
                .into(),
            Value::Nil => "".into(),
            other => strval(other).into(),
        })
    });
    f.insert("toString", |a| Ok(strval(one(a, "toString")?).into()));
    f.insert("toStrings", |a| {
        Ok(Value::list(
            list_of(one(a, "toStrings")?)
                .iter()
                .map(|v| strval(v).into()),
        ))
    });
}

fn defaults(f: &mut Funcs) {
    f.insert("default", |a| {
        let Some((def, given)) = a.split_first() else {
            return Err(FuncError::new(
                "wrong number of args for default: want at least 1 got 0",
            ));
        };
        Ok(match given.first() {
            Some(v) if !empty(v) => v.clone(),
            _ => def.clone(),
        })
    });
    f.insert("empty", |a| Ok(Value::Bool(empty(one(a, "empty")?))));
    f.insert("coalesce", |a| {
        Ok(a.iter().find(|v| !empty(v)).cloned().unwrap_or_default())
    });
    f.insert("all", |a| Ok(Value::Bool(a.iter().all(|v| !empty(v)))));
    f.insert("any", |a| Ok(Value::Bool(a.iter().any(|v| !empty(v)))));
    f.insert("ternary", |a| {
        let [t, fv, cond] = a else {
            return Err(arg_count("ternary", 3, a.len()));
        };
        let Value::Bool(c) = cond else {
            return Err(wrong_type("bool", cond));
        };
        Ok(if *c { t.clone() } else { fv.clone() })
    });
    f.insert("fail", |a| {
        Err(FuncError(str_arg(one(a, "fail")?)?.to_string()))
    });
    f.insert("required", |a| {
        let [msg, v] = a else {
            return Err(arg_count("required", 2, a.len()));
        };
        match v {
            Value::Nil => Err(FuncError(str_arg(msg)?.to_string())),
            Value::String(s) if s.is_empty() => Err(FuncError(str_arg(msg)?.to_string())),
            v => Ok(v.clone()),
        }
    });
}

fn lists(f: &mut Funcs) {
    f.insert("list", |a| Ok(Value::list(a.iter().cloned())));
    let append = |a: &[Value]| {
        let [l, v] = a else {
            return Err(arg_count("append", 2, a.len()));
        };
        let mut items = must_list(l, "append")?;
        items.push(v.clone());
        Ok(Value::from(items))
    };
    f.insert("append", append);
    f.insert("push", append);
    f.insert("prepend", |a| {
        let [l, v] = a else {
            return Err(arg_count("prepend", 2, a.len()));
        };
        let mut items = vec![v.clone()];
        items.extend(must_list(l, "prepend")?);
        Ok(Value::from(items))
    });
    f.insert("concat", |a| {
        let mut items = Vec::new();
        for l in a {
            items.extend(must_list(l, "concat")?);
        }
        Ok(Value::from(items))
    });
    f.insert("first", |a| {
        Ok(must_list(one(a, "first")?, "first")?
            .into_iter()
            .next()
            .unwrap_or_default())
    });
    f.insert("last", |a| {
        Ok(must_list(one(a, "last")?, "last")?
            .pop()
            .unwrap_or_default())
    });
    f.insert("rest", |a| {
        let l = must_list(one(a, "rest")?, "rest")?;
        Ok(if l.is_empty() {
            Value::Nil
        } else {
            Value::list(l.into_iter().skip(1))
        })
    });
    f.insert("initial", |a| {
        let mut l = must_list(one(a, "initial")?, "initial")?;
        if l.is_empty() {
            return Ok(Value::Nil);
        }
        l.pop();
        Ok(Value::from(l))
    });
    f.insert("reverse", |a| {
        let mut l = must_list(one(a, "reverse")?, "reverse")?;
        l.reverse();
        Ok(Value::from(l))
    });
    f.insert("uniq", |a| {
        let mut out: Vec<Value> = Vec::new();
        for v in must_list(one(a, "uniq")?, "uniq")? {
            if !out.contains(&v) {
                out.push(v);
            }
        }
        Ok(Value::from(out))
    });
    f.insert("compact", |a| {
        let l = must_list(one(a, "compact")?, "compact")?;
        Ok(Value::list(l.into_iter().filter(|v| !empty(v))))
    });
    f.insert("without", |a| {
        let Some((l, drop)) = a.split_first() else {
            return Err(arg_count("without", 2, 0));
        };
        let l = must_list(l, "without")?;
        Ok(Value::list(l.into_iter().filter(|v| !drop.contains(v))))
    });
    f.insert("has", |a| {
        let [needle, hay] = a else {
            return Err(arg_count("has", 2, a.len()));
        };
        Ok(Value::Bool(match hay {
            Value::Nil => false,
            l => must_list(l, "has")?.contains(needle),
        }))
    });
    f.insert("sortAlpha", |a| {
        let mut l: Vec<String> = list_of(one(a, "sortAlpha")?).iter().map(strval).collect();
        l.sort();
        Ok(Value::list(l.into_iter().map(Value::from)))
    });
    f.insert("until", |a| {
        let n = int_arg(one(a, "until")?)?;
        range_list(0, n, if n < 0 { -1 } else { 1 })
    });
    f.insert("untilStep", |a| {
        let [start, stop, step] = a else {
            return Err(arg_count("untilStep", 3, a.len()));
        };
        range_list(int_arg(start)?, int_arg(stop)?, int_arg(step)?)
    });
}

fn dicts(f: &mut Funcs) {
    f.insert("dict", |a| {
        let mut m = BTreeMap::new();
        for pair in a.chunks(2) {
            let k: Arc<str> = strval(&pair[0]).into();
            m.insert(k, pair.get(1).cloned().unwrap_or(Value::from("")));
        }
        Ok(Value::Map(Arc::new(Map {
            entries: m,
            elem: MapElem::Any,
        })))
    });
    f.insert("get", |a| {
        let [d, k] = a else {
            return Err(arg_count("get", 2, a.len()));
        };
        let d = must_map(d, "get")?;
        Ok(d.entries
            .get(str_arg(k)?)
            .cloned()
            .unwrap_or(Value::from("")))
    });
    f.insert("hasKey", |a| {
        let [d, k] = a else {
            return Err(arg_count("hasKey", 2, a.len()));
        };
        Ok(Value::Bool(
            must_map(d, "hasKey")?.entries.contains_key(str_arg(k)?),
        ))
    });
    f.insert_mutating("set", |a| {
        let [d, k, v] = a else {
            return Err(arg_count("set", 3, a.len()));
        };
        let mut m = must_map(d, "set")?.clone();
        m.entries.insert(str_arg(k)?.into(), v.clone());
        Ok(Value::Map(Arc::new(m)))
    });
    f.insert_mutating("unset", |a| {
        let [d, k] = a else {
            return Err(arg_count("unset", 2, a.len()));
        };
        let mut m = must_map(d, "unset")?.clone();
        m.entries.remove(str_arg(k)?);
        Ok(Value::Map(Arc::new(m)))
    });
    f.insert("keys", |a| {
        let mut keys: Vec<Arc<str>> = Vec::new();
        for d in a {
            keys.extend(must_map(d, "keys")?.entries.keys().cloned());
        }
        Ok(Value::list(keys.into_iter().map(Value::String)))
    });
    f.insert("values", |a| {
        let d = must_map(one(a, "values")?, "values")?;
        Ok(Value::list(d.entries.values().cloned()))
    });
    f.insert("pluck", |a| {
        let Some((k, ds)) = a.split_first() else {
            return Err(arg_count("pluck", 2, 0));
        };
        let k = str_arg(k)?;
        let mut out = Vec::new();
        for d in ds {
            if let Some(v) = must_map(d, "pluck")?.entries.get(k) {
                out.push(v.clone());
            }
        }
        Ok(Value::from(out))
    });
    f.insert("pick", |a| {
        let Some((d, ks)) = a.split_first() else {
            return Err(arg_count("pick", 2, 0));
        };
        let d = must_map(d, "pick")?;
        let mut m = Map::default();
        for k in ks {
            let k = str_arg(k)?;
            if let Some((key, v)) = d.entries.get_key_value(k) {
                m.entries.insert(key.clone(), v.clone());
            }
        }
        Ok(Value::Map(Arc::new(m)))
    });
    f.insert("omit", |a| {
        let Some((d, ks)) = a.split_first() else {
            return Err(arg_count("omit", 2, 0));
        };
        let mut m = must_map(d, "omit")?.clone();
        m.elem = MapElem::Any;
        for k in ks {
            m.entries.remove(str_arg(k)?);
        }
        Ok(Value::Map(Arc::new(m)))
    });
    f.insert("merge", |a| merge(a, false));
    f.insert("mergeOverwrite", |a| merge(a, true));
}

fn math(f: &mut Funcs) {
    f.insert("add", |a| {
        Ok(Value::Int(
            a.iter().map(to_int64).fold(0i64, i64::wrapping_add),
        ))
    });
    f.insert("add1", |a| {
        Ok(Value::Int(to_int64(one(a, "add1")?).wrapping_add(1)))
    });
    f.insert("sub", |a| {
        let [x, y] = a else {
            return Err(arg_count("sub", 2, a.len()));
        };
        Ok(Value::Int(to_int64(x).wrapping_sub(to_int64(y))))
    });
    f.insert("mul", |a| {
        Ok(Value::Int(
            a.iter().map(to_int64).fold(1i64, i64::wrapping_mul),
        ))
    });
    f.insert("div", |a| {
        let [x, y] = a else {
            return Err(arg_count("div", 2, a.len()));
        };
        match to_int64(y) {
            0 => Err(FuncError::new("runtime error: integer divide by zero")),
            d => Ok(Value::Int(to_int64(x).wrapping_div(d))),
        }
    });
    f.insert("mod", |a| {
        let [x, y] = a else {
            return Err(arg_count("mod", 2, a.len()));
        };
        match to_int64(y) {
            0 => Err(FuncError::new("runtime error: integer divide by zero")),
            d => Ok(Value::Int(to_int64(x).wrapping_rem(d))),
        }
    });
    f.insert("max", |a| {
        let Some((first, rest)) = a.split_first() else {
            return Err(arg_count("max", 1, 0));
        };
        Ok(Value::Int(
            rest.iter().map(to_int64).fold(to_int64(first), i64::max),
        ))
    });
    f.insert("min", |a| {
        let Some((first, rest)) = a.split_first() else {
            return Err(arg_count("min", 1, 0));
        };
        Ok(Value::Int(
            rest.iter().map(to_int64).fold(to_int64(first), i64::min),
        ))
    });
    f.insert("floor", |a| {
        Ok(Value::Float(to_float64(one(a, "floor")?).floor()))
    });
    f.insert("ceil", |a| {
        Ok(Value::Float(to_float64(one(a, "ceil")?).ceil()))
    });
    f.insert("int", |a| Ok(Value::Int(to_int64(one(a, "int")?))));
    f.insert("int64", |a| Ok(Value::Int(to_int64(one(a, "int64")?))));
    f.insert("float64", |a| {
        Ok(Value::Float(to_float64(one(a, "float64")?)))
    });
    f.insert("atoi", |a| {
        let s = str_arg(one(a, "atoi")?)?;
        Ok(Value::Int(s.parse().unwrap_or(0)))
    });
}

fn encodings(f: &mut Funcs) {
    f.insert("toJson", |a| {
        Ok(json::encode(one(a, "toJson")?, true).into())
    });
    f.insert("toRawJson", |a| {
        Ok(json::encode(one(a, "toRawJson")?, false).into())
    });
    f.insert("toPrettyJson", |a| {
        Ok(json::encode_pretty(one(a, "toPrettyJson")?).into())
    });
    f.insert("fromJson", |a| {
        let s = str_arg(one(a, "fromJson")?)?;
        Ok(serde_json::from_str::<serde_json::Value>(s)
            .map(|j| Value::from_json(&j))
            .unwrap_or_default())
    });
    f.insert("toYaml", |a| {
        let y = yaml::encode(one(a, "toYaml")?);
        Ok(y.strip_suffix('\n').unwrap_or(&y).into())
    });
    f.insert("fromYaml", |a| {
        let s = str_arg(one(a, "fromYaml")?)?;
        Ok(yaml::decode(s).unwrap_or_else(|e| Value::map([("Error", Value::from(e))])))
    });
    f.insert("b64enc", |a| {
        Ok(base64_encode(str_arg(one(a, "b64enc")?)?.as_bytes()).into())
    });
    f.insert("b64dec", |a| {
        let s = str_arg(one(a, "b64dec")?)?;
        Ok(match base64_decode(s) {
            Some(bytes) => String::from_utf8_lossy(&bytes).into_owned().into(),
            None => "illegal base64 data at input byte 0".into(),
        })
    });
}

fn types(f: &mut Funcs) {
    f.insert("typeOf", |a| Ok(one(a, "typeOf")?.type_name().into()));
    f.insert("kindOf", |a| Ok(kind_of(one(a, "kindOf")?).into()));
    f.insert("kindIs", |a| {
        let [k, v] = a else {
            return Err(arg_count("kindIs", 2, a.len()));
        };
        Ok(Value::Bool(str_arg(k)? == kind_of(v)))
    });
    f.insert("typeIs", |a| {
        let [t, v] = a else {
            return Err(arg_count("typeIs", 2, a.len()));
        };
        Ok(Value::Bool(str_arg(t)? == v.type_name()))
    });
    f.insert("deepEqual", |a| {
        let [x, y] = a else {
            return Err(arg_count("deepEqual", 2, a.len()));
        };
        Ok(Value::Bool(x == y))
    });
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Nil => "invalid",
        Value::Bool(_) => "bool",
        Value::Int(_) => "int",
        Value::Float(_) => "float64",
        Value::String(_) => "string",
        Value::List(_) => "slice",
        Value::Map(_) => "map",
        Value::Struct(_) => "struct",
        Value::Func(_) => "func",
    }
}

// ---- argument helpers ----

fn one<'a>(a: &'a [Value], name: &str) -> Result<&'a Value, FuncError> {
    match a {
        [v] => Ok(v),
        _ => Err(arg_count(name, 1, a.len())),
    }
}

fn wrong_type(want: &str, got: &Value) -> FuncError {
    match got {
        Value::Nil => FuncError(format!("invalid value; expected {want}")),
        v => FuncError(format!(
            "wrong type for value; expected {want}; got {}",
            v.type_name()
        )),
    }
}

/// A `string` parameter: Go rejects anything else.
fn str_arg(v: &Value) -> Result<&str, FuncError> {
    match v {
        Value::String(s) => Ok(s),
        other => Err(wrong_type("string", other)),
    }
}

/// An `int` parameter: Go rejects floats (JSON numbers) and everything else.
fn int_arg(v: &Value) -> Result<i64, FuncError> {
    match v {
        Value::Int(i) => Ok(*i),
        other => Err(wrong_type("int", other)),
    }
}

fn s1(a: &[Value], name: &str, f: impl Fn(&str) -> Value) -> R {
    Ok(f(str_arg(one(a, name)?)?))
}

fn s2(a: &[Value], name: &str, f: impl Fn(&str, &str) -> Value) -> R {
    let [x, y] = a else {
        return Err(arg_count(name, 2, a.len()));
    };
    Ok(f(str_arg(x)?, str_arg(y)?))
}

fn b2(a: &[Value], name: &str, f: impl Fn(&str, &str) -> bool) -> R {
    let [x, y] = a else {
        return Err(arg_count(name, 2, a.len()));
    };
    Ok(Value::Bool(f(str_arg(x)?, str_arg(y)?)))
}

/// sprig's `strval`: strings as they are, everything else through `%v`.
pub(crate) fn strval(v: &Value) -> String {
    match v {
        Value::String(s) => String::from(&**s),
        other => crate::format::sprint(std::slice::from_ref(other)),
    }
}

/// sprig's `empty`: like template truth, except that structs are never empty.
pub(crate) fn empty(v: &Value) -> bool {
    match v {
        Value::Struct(_) => false,
        v => !v.is_true(),
    }
}

/// cast.ToInt64 as sprig uses it: unparsable input becomes 0.
fn to_int64(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        Value::Float(f) => *f as i64,
        Value::Bool(b) => *b as i64,
        Value::String(s) => parse_go_int(s).unwrap_or(0),
        _ => 0,
    }
}

fn to_float64(v: &Value) -> f64 {
    match v {
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        Value::Bool(b) => *b as i64 as f64,
        Value::String(s) => s.parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

/// `strconv.ParseInt(s, 0, 64)`, also accepting a zero decimal part ("8.0"), as cast does.
fn parse_go_int(s: &str) -> Option<i64> {
    let s = s.strip_suffix(".0").unwrap_or(s);
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
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
    let v = i64::from_str_radix(digits, radix).ok()?;
    Some(if neg { -v } else { v })
}

/// Lists (or nil) for sprig's list functions, which reject anything else.
fn must_list(v: &Value, name: &str) -> Result<Vec<Value>, FuncError> {
    match v {
        Value::List(l) => Ok(l.to_vec()),
        Value::Nil => Ok(Vec::new()),
        other => Err(FuncError(format!(
            "Cannot {name} on type {}",
            other.type_name()
        ))),
    }
}

/// sprig's `strslice` input: a list (its nil items dropped), nothing, or one value.
fn list_of(v: &Value) -> Vec<Value> {
    match v {
        Value::List(l) => l.iter().filter(|v| !v.is_nil()).cloned().collect(),
        Value::Nil => Vec::new(),
        other => vec![other.clone()],
    }
}

fn must_map<'a>(v: &'a Value, name: &str) -> Result<&'a Map, FuncError> {
    static EMPTY: std::sync::OnceLock<Map> = std::sync::OnceLock::new();
    match v {
        Value::Map(m) => Ok(m),
        Value::Nil => Ok(EMPTY.get_or_init(Map::default)),
        other => Err(FuncError(format!(
            "wrong type for value; expected map[string]interface {{}}; got {} (in {name})",
            other.type_name()
        ))),
    }
}

fn range_list(start: i64, stop: i64, step: i64) -> R {
    let mut out = Vec::new();
    if step == 0 {
        return Ok(Value::from(out));
    }
    let mut i = start;
    while (step > 0 && i < stop) || (step < 0 && i > stop) {
        if out.len() >= MAX_GENERATED {
            return Err(FuncError::new("range too long"));
        }
        out.push(Value::Int(i));
        match i.checked_add(step) {
            Some(n) => i = n,
            None => break,
        }
    }
    Ok(Value::from(out))
}

/// sprig merge: keys missing from the destination come from later dicts, recursively.
fn merge(a: &[Value], overwrite: bool) -> R {
    let Some((dst, srcs)) = a.split_first() else {
        return Err(arg_count("merge", 2, 0));
    };
    let mut out = must_map(dst, "merge")?.clone();
    for src in srcs {
        merge_into(&mut out, must_map(src, "merge")?, overwrite);
    }
    Ok(Value::Map(Arc::new(out)))
}

fn merge_into(dst: &mut Map, src: &Map, overwrite: bool) {
    for (k, v) in &src.entries {
        match (dst.entries.get_mut(k), v) {
            (Some(Value::Map(d)), Value::Map(s)) => merge_into(Arc::make_mut(d), s, overwrite),
            (Some(existing), v) => {
                if overwrite || empty(existing) {
                    *existing = v.clone();
                }
            }
            (None, v) => {
                dst.entries.insert(k.clone(), v.clone());
            }
        }
    }
}

// ---- string helpers ----

fn quote_all(a: &[Value], q: impl Fn(String) -> String) -> String {
    // The common case, `x | quote`: one value, no joining.
    if let [v] = a {
        return if v.is_nil() {
            String::new()
        } else {
            q(strval(v))
        };
    }
    a.iter()
        .filter(|v| !v.is_nil())
        .map(|v| q(strval(v)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// sprig indent: every line, including the first, gets `n` spaces.
fn indent(n: i64, s: &str) -> String {
    let pad = " ".repeat(n.clamp(0, 10_000) as usize);
    let mut out = String::with_capacity(s.len() + pad.len() * 4);
    for (i, line) in s.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&pad);
        out.push_str(line);
    }
    out
}

/// Go's `strings.Split`: an empty separator splits into characters.
fn go_split(s: &str, sep: &str) -> Vec<String> {
    if sep.is_empty() {
        return s.chars().map(String::from).collect();
    }
    s.split(sep).map(String::from).collect()
}

/// sprig trunc: positive keeps the first n bytes, negative the last -n.
fn trunc(n: i64, s: &str) -> String {
    let len = s.len() as i64;
    let cut = |i: i64| -> usize {
        let mut i = i.clamp(0, len) as usize;
        while !s.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    if n < 0 && len + n > 0 {
        return s[cut(len + n)..].to_string();
    }
    if n >= 0 && len > n {
        return s[..cut(n)].to_string();
    }
    s.to_string()
}

/// sprig substr: bytes `start..end`; negative start means 0, negative end means the end.
fn substr(start: i64, end: i64, s: &str) -> String {
    let len = s.len() as i64;
    let start = start.max(0);
    let end = if end < 0 || end > len { len } else { end };
    if start > end {
        return String::new();
    }
    s.get(start as usize..end as usize)
        .unwrap_or_default()
        .to_string()
}

/// Go's (deprecated) `strings.Title`: upper-case the first letter of each word.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_sep = true;
    for c in s.chars() {
        if prev_sep {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_sep = !(c.is_alphanumeric() || c == '_');
    }
    out
}

fn untitle(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_space = true;
    for c in s.chars() {
        if prev_space {
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
        prev_space = c.is_whitespace();
    }
    out
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.as_bytes();
    if !s.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    for (ci, chunk) in s.chunks(4).enumerate() {
        let last = ci + 1 == s.len() / 4;
        let mut n = 0u32;
        let mut pads = 0;
        for (i, &c) in chunk.iter().enumerate() {
            let v = if c == b'=' && last && i >= 2 {
                pads += 1;
                0
            } else if pads > 0 {
                return None;
            } else {
                B64.iter().position(|&x| x == c)? as u32
            };
            n = n << 6 | v;
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pads]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for s in ["", "f", "fo", "foo", "foob", "fooba", "foobar"] {
            assert_eq!(
                base64_decode(&base64_encode(s.as_bytes())).unwrap(),
                s.as_bytes()
            );
        }
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert!(base64_decode("Zm9=v").is_none());
    }

    #[test]
    fn trunc_and_substr_follow_sprig() {
        assert_eq!(trunc(5, "hello world"), "hello");
        assert_eq!(trunc(-5, "hello world"), "world");
        assert_eq!(trunc(50, "hello"), "hello");
        assert_eq!(substr(0, 5, "hello world"), "hello");
        assert_eq!(substr(6, -1, "hello world"), "world");
    }

    #[test]
    fn sha256_matches_known_digests() {
        assert_eq!(
            hex(&sha256(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let long = vec![b'a'; 1000];
        assert_eq!(
            hex(&sha256(&long)),
            "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3"
        );
    }

    #[test]
    fn title_capitalises_words() {
        assert_eq!(title("hello wide-world"), "Hello Wide-World");
    }

    #[test]
    fn go_int_parsing_accepts_prefixes() {
        assert_eq!(parse_go_int("0x10"), Some(16));
        assert_eq!(parse_go_int("-12"), Some(-12));
        assert_eq!(parse_go_int("8.0"), Some(8));
        assert_eq!(parse_go_int("abc"), None);
    }
}

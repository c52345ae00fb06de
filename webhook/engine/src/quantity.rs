//! Kubernetes resource quantities in canonical form (`2000m` → `2`, `1024Mi` → `1Gi`): what a
//! typed `corev1.Pod` round trip prints, so injected resources read as Istio's do.

use std::ops::{Div, Rem, Shr};

use crate::doc::Node;

const BINARY: [(&str, u32); 6] = [
    ("Ki", 1),
    ("Mi", 2),
    ("Gi", 3),
    ("Ti", 4),
    ("Pi", 5),
    ("Ei", 6),
];
const DECIMAL: [(&str, i32); 10] = [
    ("n", -9),
    ("u", -6),
    ("m", -3),
    ("", 0),
    ("k", 3),
    ("M", 6),
    ("G", 9),
    ("T", 12),
    ("P", 15),
    ("E", 18),
];

/// The canonical spelling of `text`, or `None` if it is not a quantity.
pub fn canonical(text: &str) -> Option<String> {
    // Nearly every quantity a pod holds is digits and a suffix whose value fits 64 bits:
    // those skip the 128-bit arithmetic, whose multiplications and divisions are library
    // calls.
    canonical_u64(text).or_else(|| canonical_wide(text))
}

/// [`canonical`] for a plain unsigned integer and a unit suffix whose value in nano-units fits
/// a `u64`; `None` for anything else, which [`canonical_wide`] handles.
fn canonical_u64(text: &str) -> Option<String> {
    let num_end = text
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(text.len());
    let (num, suffix) = text.split_at(num_end);
    if num.is_empty() || num.len() > 19 {
        return None;
    }
    let mantissa: u64 = num.parse().ok()?;
    if let Some((_, b)) = BINARY.iter().find(|(name, _)| *name == suffix) {
        let bytes = mantissa.checked_mul(1024u64.checked_pow(*b)?)?;
        // Like the wide path's nano-units, which must fit: 1e9 per byte.
        bytes.checked_mul(1_000_000_000)?;
        if bytes == 0 {
            return Some("0".into());
        }
        return Some(binary_spelling("", bytes, bytes.trailing_zeros()));
    }
    let (_, e) = DECIMAL.iter().find(|(name, _)| *name == suffix)?;
    let nanos = mantissa.checked_mul(10u64.checked_pow((e + 9) as u32)?)?;
    if nanos == 0 {
        return Some("0".into());
    }
    Some(decimal_spelling("", nanos))
}

/// [`canonical`] in 128-bit arithmetic: signs, fractions, exponents, large values.
fn canonical_wide(text: &str) -> Option<String> {
    let s = text.trim();
    let num_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(num_end);
    let (negative, num) = match num.strip_prefix('-') {
        Some(n) => (true, n),
        None => (false, num.strip_prefix('+').unwrap_or(num)),
    };
    if num.is_empty() || num == "." || num.contains(['+', '-']) {
        return None;
    }
    let (int_part, frac_part) = num.split_once('.').unwrap_or((num, ""));
    if frac_part.contains('.') {
        return None;
    }
    // The digits of both parts as one integer (no intermediate string: this runs for every
    // resource quantity of every render).
    let mantissa = int_part
        .bytes()
        .chain(frac_part.bytes())
        .try_fold(0i128, |m, b| {
            b.is_ascii_digit()
                .then_some(())
                .and(m.checked_mul(10)?.checked_add(i128::from(b - b'0')))
        })?;
    let mut exp10 = -(frac_part.len() as i32);
    let mut binary = None;
    if let Some((_, b)) = BINARY.iter().find(|(name, _)| *name == suffix) {
        binary = Some(*b);
    } else if let Some((_, e)) = DECIMAL.iter().find(|(name, _)| *name == suffix) {
        exp10 += e;
    } else if let Some(rest) = suffix.strip_prefix(['e', 'E']) {
        exp10 += rest.parse::<i32>().ok()?;
    } else {
        return None;
    }
    // The value in nano-units, exactly (rounded up past nano precision, as Kubernetes does).
    let mut nanos = mantissa.checked_mul(1024i128.checked_pow(binary.unwrap_or(0))?)?;
    let shift = exp10 + 9;
    if shift >= 0 {
        nanos = nanos.checked_mul(10i128.checked_pow(shift as u32)?)?;
    } else {
        let div = 10i128.checked_pow((-shift) as u32)?;
        nanos = (nanos + div - 1) / div;
    }
    if nanos == 0 {
        return Some("0".into());
    }
    let sign = if negative { "-" } else { "" };
    if binary.is_some() && nanos % 1_000_000_000 == 0 {
        let bytes = nanos / 1_000_000_000;
        return Some(binary_spelling(sign, bytes, bytes.trailing_zeros()));
    }
    Some(decimal_spelling(sign, nanos))
}

/// `bytes` with the largest binary suffix dividing them: 1024^p divides n exactly when n has
/// at least 10·p trailing zero bits (`trailing_zeros`).
fn binary_spelling<T>(sign: &str, bytes: T, trailing_zeros: u32) -> String
where
    T: Shr<u32, Output = T> + itoa::Integer,
{
    let p = (trailing_zeros / 10).min(6);
    let name = match p {
        0 => "",
        p => BINARY[p as usize - 1].0,
    };
    spell(sign, bytes >> (10 * p), name)
}

/// Non-zero `nanos` nano-units with the largest decimal suffix dividing them: 10^(e+9) for e a
/// multiple of 3.
fn decimal_spelling<T>(sign: &str, nanos: T) -> String
where
    T: Copy + PartialEq + Rem<Output = T> + Div<Output = T> + From<u16> + itoa::Integer,
{
    let (thousand, zero) = (T::from(1000), T::from(0));
    let (mut value, mut zeros) = (nanos, 0);
    while zeros < 27 && value % thousand == zero {
        value = value / thousand;
        zeros += 3;
    }
    let name = DECIMAL
        .iter()
        .find(|(_, e)| e + 9 == zeros)
        .map_or("n", |(n, _)| *n);
    spell(sign, value, name)
}

/// `{sign}{value}{suffix}` without the formatting machinery (this runs for every quantity of
/// every render).
fn spell(sign: &str, value: impl itoa::Integer, suffix: &str) -> String {
    [sign, itoa::Buffer::new().format(value), suffix].concat()
}

/// Canonicalises every quantity under `resources.{limits,requests,claims…}` maps in place.
pub fn canonicalize_resources(resources: &mut Node<'_>) {
    let Some(obj) = resources.as_object_mut() else {
        return;
    };
    for key in ["limits", "requests"] {
        if let Some(Node::Object(m)) = obj.get_mut(key) {
            for (_, v) in m.iter_mut() {
                let canonical = match v {
                    Node::String(s) => canonical(s),
                    Node::Number(n) => canonical(&n.to_string()),
                    _ => continue,
                };
                match canonical {
                    Some(c) if v.as_str() != Some(c.as_str()) => *v = Node::from(c),
                    _ => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{canonical, canonical_u64, canonical_wide};

    /// The 64-bit path spells every quantity it takes as the general one does.
    #[test]
    fn narrow_path_agrees_with_the_wide_one() {
        let suffixes = ["", "n", "u", "m", "k", "M", "G", "T", "P", "E"]
            .into_iter()
            .chain(["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]);
        let mut taken = 0;
        for suffix in suffixes {
            for digits in [
                "0", "1", "7", "10", "999", "1000", "1024", "1536", "2000", "4096",
            ]
            .into_iter()
            .map(String::from)
            .chain((0..20).map(|n| format!("1{}", "0".repeat(n))))
            .chain((0..7).map(|n| (1u64 << (10 * n)).to_string()))
            {
                let text = format!("{digits}{suffix}");
                if let Some(narrow) = canonical_u64(&text) {
                    taken += 1;
                    assert_eq!(Some(narrow), canonical_wide(&text), "{text}");
                }
            }
        }
        assert!(taken > 150, "only {taken} quantities took the narrow path");
        // Digits alone (no suffix) are plain quantities too.
        assert_eq!(canonical_u64("2000").as_deref(), Some("2k"));
    }

    #[test]
    fn quantities_print_as_kubernetes_prints_them() {
        for (given, want) in [
            ("2000m", "2"),
            ("1024Mi", "1Gi"),
            ("128Mi", "128Mi"),
            ("100m", "100m"),
            ("0.5", "500m"),
            ("1000", "1k"),
            ("1500m", "1500m"),
            ("1.5Gi", "1536Mi"),
            ("0", "0"),
            ("0m", "0"),
            ("2", "2"),
            ("1Ki", "1Ki"),
            ("2048Ki", "2Mi"),
            ("1025Ki", "1025Ki"),
            ("1073741824", "1073741824"),
            ("1024", "1024"),
            ("1Ei", "1Ei"),
            ("1048576Ei", "1048576Ei"),
            ("1n", "1n"),
            ("1000n", "1u"),
            ("1500000000000000000000", "1500E"),
            ("-2000m", "-2"),
            ("12e3", "12k"),
            ("0.000000001", "1n"),
            ("0.0000000001", "1n"),
        ] {
            assert_eq!(canonical(given).as_deref(), Some(want), "{given}");
        }
        assert_eq!(canonical("lots"), None);
        assert_eq!(canonical("1.2.3"), None);
        assert_eq!(canonical("1x5"), None);
        assert_eq!(canonical(".5"), Some("500m".into()));
        // Past i128: not a quantity we can print exactly.
        assert_eq!(canonical(&"9".repeat(60)), None);
    }
}

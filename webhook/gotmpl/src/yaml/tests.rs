//! Expected texts are what go-yaml v2 (through sigs.k8s.io/yaml) writes.

use serde_json::json;

use super::*;

fn y(v: serde_json::Value) -> String {
    encode(&Value::from_json(&v))
}

#[test]
/// (YAML 1.1 reads a plain `n` as false, so go-yaml v2 quotes that key.)
fn nests_maps_indented_and_sequences_flush() {
    assert_eq!(
        y(json!({"c": [1, {"d": "x", "e": [true]}], "a": {"b": 1}, "e": [], "f": {}, "n": null})),
        "a:\n  b: 1\nc:\n- 1\n- d: x\n  e:\n  - true\ne: []\nf: {}\n\"n\": null\n"
    );
    assert_eq!(y(json!([[1, 2], [3]])), "- - 1\n  - 2\n- - 3\n");
    assert_eq!(y(json!({})), "{}\n");
    assert_eq!(y(json!("x")), "x\n");
}

#[test]
fn quotes_strings_only_when_needed() {
    let cases = [
        ("plain", "plain"),
        ("it's", "it's"),
        ("a-b", "a-b"),
        ("", r#""""#),
        ("true", r#""true""#),
        ("yes", r#""yes""#),
        ("Off", r#""Off""#),
        ("null", r#""null""#),
        ("~", r#""~""#),
        ("123", r#""123""#),
        ("1.5", r#""1.5""#),
        ("0x10", r#""0x10""#),
        ("08", r#""08""#),
        ("1e3", r#""1e3""#),
        (".5", r#"".5""#),
        ("1:20", r#""1:20""#),
        ("2024-01-01", r#""2024-01-01""#),
        ("a: b", "'a: b'"),
        ("- x", "'- x'"),
        ("-", "'-'"),
        ("x #y", "'x #y'"),
        ("*", "'*'"),
        ("@x", "'@x'"),
        ("'q", "'''q'"),
        (" lead", "' lead'"),
        ("tab\there", r#""tab\there""#),
        ("100m", "100m"),
        ("1Gi", "1Gi"),
    ];
    for (input, want) in cases {
        assert_eq!(
            y(json!({ "k": input })),
            format!("k: {want}\n"),
            "{input:?}"
        );
    }
}

#[test]
fn writes_multiline_strings_as_literal_blocks() {
    assert_eq!(y(json!({"k": "a\nb"})), "k: |-\n  a\n  b\n");
    assert_eq!(y(json!({"k": "a\n"})), "k: |\n  a\n");
    assert_eq!(y(json!({"k": "a\n\n"})), "k: |+\n  a\n\n");
    assert_eq!(y(json!({"k": "a\n\nb"})), "k: |-\n  a\n\n  b\n");
    assert_eq!(y(json!({"k": " a\nb"})), "k: |2-\n   a\n  b\n");
    assert_eq!(y(json!({"l": ["x\ny"]})), "l:\n- |-\n  x\n  y\n");
    // Trailing spaces on a line rule out a block: double quotes instead.
    assert_eq!(y(json!({"k": "a \nb"})), "k: \"a \\nb\"\n");
}

#[test]
fn numbers_go_through_json_first() {
    assert_eq!(
        y(json!({"a": 1.5, "b": 1000000.0, "c": 0.00001, "d": -3})),
        "a: 1.5\nb: 1000000\nc: 1e-05\nd: -3\n"
    );
    // Beyond uint64 the integer JSON wrote reads back as a float.
    assert_eq!(
        y(json!({"a": 1e19, "b": 2e19, "c": 1e21})),
        "a: 10000000000000000000\nb: 2e+19\nc: 1e+21\n"
    );
}

#[test]
fn orders_keys_like_go_yaml() {
    let v = json!({"b": 1, "a10": 1, "a9": 1, "A": 1, "1": 1});
    assert_eq!(y(v), "\"1\": 1\nA: 1\na9: 1\na10: 1\nb: 1\n");
}

#[test]
fn sorts_many_keys() {
    let keys: Vec<String> = (0..3000).rev().map(|i| format!("k{i}")).collect();
    let doc: serde_json::Map<String, serde_json::Value> =
        keys.iter().map(|k| (k.clone(), json!(1))).collect();
    let text = y(serde_json::Value::Object(doc));
    let order: Vec<&str> = text.lines().map(|l| l.split(':').next().unwrap()).collect();
    let want: Vec<String> = (0..3000).map(|i| format!("k{i}")).collect();
    assert_eq!(order, want.iter().map(String::as_str).collect::<Vec<_>>());
}

#[test]
fn folds_long_plain_lines_at_80_columns() {
    let words = ["abcdefghi"; 10].join(" ");
    let first = ["abcdefghi"; 8].join(" ");
    assert_eq!(
        y(json!({ "key": words })),
        format!("key: {first}\n  abcdefghi abcdefghi\n")
    );
}

#[test]
fn decodes_yaml_like_sigs_yaml() {
    let v = decode("a: 1\nb: [x, true]\n").unwrap();
    assert_eq!(v.get("a"), Some(&Value::Float(1.0)));
    assert!(decode("a: [").is_err());
}

/// Whatever we emit reads back as the same data (a YAML parser agrees with our quoting,
/// indentation and folding), over combinations of awkward fragments.
#[test]
fn emitted_yaml_reads_back_unchanged() {
    let fragments = [
        "",
        " ",
        "a",
        "true",
        "1",
        "0x1F",
        "1.5e3",
        "-",
        "- ",
        ":",
        ": ",
        "#",
        " #",
        "'",
        "\"",
        "\\",
        "\n",
        "\n\n",
        "\t",
        "é",
        "✓",
        "---",
        "{",
        "[x]",
        "*a",
        "&a",
        "!t",
        "%",
        "@",
        "`",
        "~",
        "null",
        "2024-01-02",
        "1:30",
        "a: b",
        "long word ",
    ];
    let mut n = 0;
    for a in fragments {
        for b in fragments {
            for c in ["", "x", " y", "\nz"] {
                let s = format!("{a}{b}{c}");
                let long = format!("{s} {}", "word ".repeat(20));
                let doc = json!({ s.clone(): [s.clone(), { "k": long }], "m": { "n": s } });
                let text = encode(&Value::from_json(&doc));
                let back: serde_json::Value = serde_yaml_ng::from_str(&text)
                    .unwrap_or_else(|e| panic!("{s:?} gave unparsable YAML {text:?}: {e}"));
                assert_eq!(back, doc, "{s:?} via {text:?}");
                n += 1;
            }
        }
    }
    assert!(n > 5000);
}

/// Istio's kube-inject goldens were written by sigs.k8s.io/yaml: reading each injected
/// document and writing it again must give the same bytes (90 documents: annotations with
/// JSON, quoted numbers, `'*'`, literal blocks, empty maps...).
#[test]
fn rewrites_istio_kube_inject_goldens_byte_for_byte() {
    let dir = std::env::var_os("ISTIO_INJECT_VECTORS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../../shared/conformance/istio-inject")
        })
        .join("testdata/inject");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!(
            "skipping: no conformance data at {} (set ISTIO_INJECT_VECTORS)",
            dir.display()
        );
        return;
    };
    let mut checked = 0;
    let mut failures = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("injected") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for doc in text.split("---\n").filter(|d| !d.trim().is_empty()) {
            let Ok(json) = serde_yaml_ng::from_str::<serde_json::Value>(doc) else {
                continue;
            };
            // Services pass through kube-inject as the input's own text.
            if json["kind"] == "Service" {
                continue;
            }
            checked += 1;
            let ours = encode(&Value::from_json(&json));
            if ours != doc {
                let line = ours.lines().zip(doc.lines()).position(|(a, b)| a != b);
                failures.push(format!(
                    "{}: first difference at line {line:?}",
                    path.display()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{checked} checked, {} differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(checked > 50);
}

//! Behaviour tests. Expected outputs are Go's (text/template + sprig), taken from Go's
//! documentation, golang/go `src/text/template/exec_test.go` and sprig's tests.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::*;

fn data() -> Value {
    Value::from_json(&json!({
        "name": "world",
        "empty": "",
        "zero": 0,
        "port": 15020,
        "big": 1000000,
        "frac": 1.12,
        "t": true,
        "f": false,
        "list": ["a", "b", "c"],
        "nums": [3, 1, 2],
        "nolist": [],
        "map": {"z": 1, "a": "x", "m": [1, 2]},
        "nomap": {},
        "nested": {"deep": {"value": "found"}},
        "nullv": null,
    }))
}

fn render_with(text: &str, data: &Value) -> Result<String, String> {
    let t = Template::parse("t", text, &Funcs::builtin()).map_err(|e| e.to_string())?;
    t.execute(data).map_err(|e| e.to_string())
}

fn render(text: &str) -> String {
    render_with(text, &data()).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn render_err(text: &str) -> String {
    match render_with(text, &data()) {
        Ok(out) => panic!("{text:?} rendered {out:?}, expected an error"),
        Err(e) => e,
    }
}

#[test]
fn prints_values_with_go_fmt_rules() {
    assert_eq!(render("{{.name}}"), "world");
    assert_eq!(render("{{.port}}"), "15020");
    assert_eq!(render("{{.big}}"), "1e+06");
    assert_eq!(render("{{.frac}}"), "1.12");
    assert_eq!(render("{{.t}} {{.f}}"), "true false");
    assert_eq!(render("{{.list}}"), "[a b c]");
    assert_eq!(render("{{.map}}"), "map[a:x m:[1 2] z:1]");
    assert_eq!(render("{{.missing}}"), "<no value>");
    assert_eq!(render("{{.nullv}}"), "<no value>");
    assert_eq!(render("{{print nil}}"), "<nil>");
    assert!(render_err("{{nil}}").contains("nil is not a command"));
    assert_eq!(
        render("{{1.0}} {{1e3}} {{0x10}} {{'a'}} {{-3}}"),
        "1 1000 16 97 -3"
    );
}

#[test]
fn trim_markers_eat_whitespace_and_newlines() {
    assert_eq!(render("a\n  {{- .name -}}  \n b"), "aworldb");
    assert_eq!(render("a {{- /* comment */ -}} b"), "ab");
    assert_eq!(render("x {{/* comment */}} y"), "x  y");
    assert_eq!(render("{{ 3 }} \n\t{{- 4 }}"), "34");
}

#[test]
fn if_else_chains_follow_go_truth() {
    let t =
        "{{if .empty}}A{{else if .zero}}B{{else if .nolist}}C{{else if .nomap}}D{{else}}E{{end}}";
    assert_eq!(render(t), "E");
    assert_eq!(render("{{if .list}}yes{{end}}"), "yes");
    assert_eq!(render("{{if .missing}}yes{{else}}no{{end}}"), "no");
    assert_eq!(render("{{if not .t}}a{{else}}b{{end}}"), "b");
}

#[test]
fn with_rebinds_dot_and_else_with_chains() {
    assert_eq!(render("{{with .nested.deep}}{{.value}}{{end}}"), "found");
    assert_eq!(
        render("{{with .missing}}x{{else with .name}}{{.}}{{end}}"),
        "world"
    );
    assert_eq!(render("{{with .empty}}x{{else}}none{{end}}"), "none");
    assert_eq!(
        render("{{with $x := .name}}{{$x}}{{.}}{{end}}"),
        "worldworld"
    );
}

#[test]
fn range_iterates_lists_maps_and_ints() {
    assert_eq!(render("{{range .list}}<{{.}}>{{end}}"), "<a><b><c>");
    assert_eq!(
        render("{{range $i, $e := .list}}{{$i}}={{$e}},{{end}}"),
        "0=a,1=b,2=c,"
    );
    assert_eq!(render("{{range $k, $v := .map}}{{$k}};{{end}}"), "a;m;z;");
    assert_eq!(render("{{range .nolist}}x{{else}}empty{{end}}"), "empty");
    assert_eq!(render("{{range .missing}}x{{else}}none{{end}}"), "none");
    assert_eq!(render("{{range 3}}{{.}}{{end}}"), "012");
    assert_eq!(render("{{range $e := .list}}{{$e}}{{end}}"), "abc");
}

#[test]
fn break_and_continue_stop_the_innermost_range() {
    assert_eq!(
        render("{{range .list}}{{if eq . \"b\"}}{{break}}{{end}}{{.}}{{end}}"),
        "a"
    );
    assert_eq!(
        render("{{range .list}}{{if eq . \"b\"}}{{continue}}{{end}}{{.}}{{end}}"),
        "ac"
    );
    assert!(render_err("{{break}}").contains("{{break}} outside {{range}}"));
    // A range's else branch is outside that range: {{break}} there needs an outer range.
    assert!(render_err("{{range .nolist}}{{else}}{{break}}{{end}}").contains("outside {{range}}"));
    assert_eq!(
        render("{{range .list}}{{.}}{{range $.nolist}}{{else}}{{continue}}{{end}}!{{end}}"),
        "abc"
    );
}

#[test]
fn variables_declare_assign_and_scope() {
    assert_eq!(render("{{$x := 1}}{{$x = 2}}{{$x}}"), "2");
    // Assignment inside a range updates the outer variable (Istio builds lists this way).
    assert_eq!(
        render("{{$l := list}}{{range .list}}{{$l = append $l .}}{{end}}{{join \",\" $l}}"),
        "a,b,c"
    );
    assert_eq!(
        render("{{range .list}}{{$.name}}{{end}}"),
        "worldworldworld"
    );
    assert!(
        render_err("{{if true}}{{$y := 1}}{{end}}{{$y}}").contains("undefined variable \"$y\"")
    );
}

#[test]
fn define_template_and_block() {
    assert_eq!(
        render(r#"{{define "T"}}[{{.}}]{{end}}{{template "T" .name}}"#),
        "[world]"
    );
    assert_eq!(
        render(r#"{{template "T"}}{{define "T"}}{{.}}{{end}}"#),
        "<no value>"
    );
    assert_eq!(render(r#"{{block "B" .name}}<{{.}}>{{end}}"#), "<world>");
    // A called template sees only its own dot as $.
    assert_eq!(
        render(r#"{{define "T"}}{{$}}{{end}}{{$x := 1}}{{template "T" 5}}"#),
        "5"
    );
    let e = render_err(r#"{{template "nope"}}"#);
    assert_eq!(
        e,
        r#"template: t:1:11: executing "t" at <{{template "nope"}}>: template "nope" not defined"#
    );
}

#[test]
fn defines_are_private_to_their_template_and_executable_by_name() {
    let funcs = Funcs::builtin();
    let a = Template::parse("a", r#"{{define "x"}}from-a {{.}}{{end}}main"#, &funcs).unwrap();
    let b = Template::parse("b", r#"{{template "x" 1}}"#, &funcs).unwrap();
    assert_eq!(a.execute_named("x", &Value::from("d")).unwrap(), "from-a d");
    assert!(
        b.execute(&Value::Nil)
            .unwrap_err()
            .to_string()
            .contains("\"x\" not defined")
    );
    assert_eq!(
        a.execute_named("y", &Value::Nil).unwrap_err().to_string(),
        r#"template: no template "y" associated with template "a""#
    );
}

#[test]
fn execute_into_appends_to_a_reused_buffer() {
    let t = Template::parse("t", "[{{.}}]", &Funcs::builtin()).unwrap();
    let mut out = String::from("a");
    t.execute_named_into("t", &Value::Int(1), &mut out).unwrap();
    t.execute_named_into("t", &Value::Int(2), &mut out).unwrap();
    assert_eq!(out, "a[1][2]");
    let t = Template::parse("t", "ok {{index . 5}}", &Funcs::builtin()).unwrap();
    let mut out = String::new();
    assert!(
        t.execute_named_into("t", &Value::list([]), &mut out)
            .is_err()
    );
    assert_eq!(out, "ok ");
}

#[test]
fn redefinition_rules_match_go() {
    let funcs = Funcs::builtin();
    let err = Template::parse(
        "t",
        r#"{{define "x"}}1{{end}}{{define "x"}}2{{end}}"#,
        &funcs,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("multiple definition of template \"x\""),
        "{err}"
    );
    // An empty redefinition does not replace a non-empty one.
    let t = Template::parse(
        "t",
        r#"{{define "x"}}1{{end}}{{define "x"}} {{end}}{{template "x"}}"#,
        &funcs,
    )
    .unwrap();
    assert_eq!(t.execute(&Value::Nil).unwrap(), "1");
}

#[test]
fn pipelines_pass_the_value_as_last_argument() {
    assert_eq!(
        render("{{.name | printf \"%s-%d\" \"x\" 3 | printf \"%q\"}}"),
        "\"x-3%!(EXTRA string=world)\""
    );
    assert_eq!(render("{{.name | printf \"%s!\"}}"), "world!");
    assert_eq!(render("{{(index .map \"m\") | len}}"), "2");
    assert_eq!(render("{{(.nested.deep).value}}"), "found");
    assert_eq!(render("{{(index .nested \"deep\").value}}"), "found");
}

#[test]
fn and_or_short_circuit_and_return_the_deciding_value() {
    assert_eq!(render("{{and 1 0 (fail \"not evaluated\")}}"), "0");
    assert_eq!(render("{{or 0 \"\" \"x\" (fail \"no\")}}"), "x");
    assert_eq!(render("{{or 0 \"\"}}"), "");
    assert_eq!(render("{{and 1 2}}"), "2");
    assert_eq!(render("{{.t | and 1}}"), "true");
}

#[test]
fn comparisons_follow_go_kinds() {
    assert_eq!(
        render("{{eq 1 1}} {{eq 1 2 3 1}} {{eq \"a\" \"a\"}}"),
        "true true true"
    );
    assert_eq!(
        render("{{eq .nullv \"x\"}} {{eq .missing \"x\"}}"),
        "false false"
    );
    assert_eq!(render("{{ne .name \"world\"}}"), "false");
    assert_eq!(
        render("{{lt 1 2}} {{le 2 2}} {{gt \"b\" \"a\"}} {{ge 1.5 2.5}}"),
        "true true true false"
    );
    // JSON numbers are floats; template integers are ints: Go refuses to compare them.
    assert!(render_err("{{eq .port 15020}}").contains("incompatible types for comparison"));
    assert_eq!(render("{{eq .port 15020.0}}"), "true");
}

#[test]
fn index_slice_and_len() {
    assert_eq!(render("{{index .list 1}}"), "b");
    assert_eq!(render("{{index .map \"a\"}}"), "x");
    assert_eq!(render("{{index .map \"nope\"}}"), "<no value>");
    assert_eq!(render("{{index .map \"m\" 1}}"), "2");
    assert_eq!(
        render("{{slice .list 1}} {{slice .list 1 2}} {{slice .name 1 3}}"),
        "[b c] [b] or"
    );
    assert_eq!(render("{{len .list}} {{len .name}} {{len .map}}"), "3 5 3");
    assert!(render_err("{{index .list 5}}").contains("error calling index: index out of range: 5"));
    // Nil stands for typed nil maps and slices (absent struct fields), which Go indexes and
    // measures without complaint.
    assert_eq!(
        render("{{index .missing \"a\"}} {{len .missing}}"),
        "<no value> 0"
    );
}

#[test]
fn argument_type_errors_are_reported_like_go() {
    let e = render_err("{{upper 1}}");
    assert!(
        e.ends_with("wrong type for value; expected string; got int"),
        "{e}"
    );
    let e = render_err("{{upper .missing}}");
    assert!(e.ends_with("invalid value; expected string"), "{e}");
    let e = render_err("{{indent .port \"x\"}}");
    assert!(
        e.ends_with("wrong type for value; expected int; got float64"),
        "{e}"
    );
    let e = render_err("{{quote}}{{trim \"a\" \"b\"}}");
    assert!(
        e.ends_with("wrong number of args for trim: want 1 got 2"),
        "{e}"
    );
}

#[test]
fn string_maps_yield_empty_strings_for_missing_keys() {
    let d = Value::map([("labels", Value::string_map([("app", "web")]))]);
    assert_eq!(render_with("[{{index .labels \"x\"}}]", &d).unwrap(), "[]");
    assert_eq!(
        render_with("{{index .labels \"x\" | quote}}", &d).unwrap(),
        "\"\""
    );
    assert_eq!(render_with("{{.labels.x}}", &d).unwrap(), "<no value>");
}

#[test]
fn missing_fields_and_nil_entries_behave_like_go() {
    // A missing key anywhere in the chain yields no value...
    assert_eq!(render("{{.missing.deeper.still}}"), "<no value>");
    // ...but walking into a key that holds nil is Go's nil pointer error.
    assert_eq!(
        render_err("{{.nullv.deeper}}"),
        "template: t:1:2: executing \"t\" at <.nullv.deeper>: nil pointer evaluating interface {}.deeper"
    );
    assert!(render_err("{{.name.deeper}}").contains("can't evaluate field deeper in type string"));
}

#[test]
fn structs_resolve_go_field_names() {
    let container = Value::structure(
        "v1.Container",
        [
            ("name", Value::from("app")),
            ("containerPort", Value::Int(8080)),
            ("apiVersion", Value::from("v1")),
        ],
    );
    let d = Value::strict_structure(
        "*inject.SidecarTemplateData",
        [
            ("Spec", container),
            (
                "ProxyConfig",
                Value::structure("ProxyConfig", [("tracing", Value::Nil)]),
            ),
        ],
    );
    assert_eq!(
        render_with(
            "{{.Spec.Name}} {{.Spec.ContainerPort}} {{.Spec.APIVersion}}",
            &d
        )
        .unwrap(),
        "app 8080 v1"
    );
    assert_eq!(render_with("{{.Spec.Absent}}", &d).unwrap(), "<no value>");
    assert_eq!(
        render_with("{{.ProxyConfig.GetTracing.GetTlsSettings}}", &d).unwrap(),
        "<no value>"
    );
    assert_eq!(render_with("{{.Spec.GetName}}", &d).unwrap(), "app");
    assert_eq!(render_with("{{.Spec.Name.String}}", &d).unwrap(), "app");
    let hold = Value::structure(
        "ProxyConfig",
        [("holdApplicationUntilProxyStarts", Value::Bool(true))],
    );
    assert_eq!(
        render_with(
            "{{.HoldApplicationUntilProxyStarts.GetValue}} {{.Other.GetValue}}",
            &hold
        )
        .unwrap(),
        "true <no value>"
    );
    assert_eq!(
        render_with("{{.Nope}}", &d).unwrap_err(),
        "template: t:1:2: executing \"t\" at <.Nope>: can't evaluate field Nope in type *inject.SidecarTemplateData"
    );
}

#[test]
fn structure_with_builds_typed_values() {
    let pod = json!({"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80}]}]}});
    let v = Value::structure_with(&pod, &|path: &[&str]| match path.last() {
        Some(&"labels") => Shape::StringMap,
        _ => Shape::Struct,
    });
    let t = "{{range .Spec.Containers}}{{.Name}}:{{range .Ports}}{{.ContainerPort}}{{end}}{{end}} {{index .Metadata.Labels \"no\" | quote}}";
    assert_eq!(render_with(t, &v).unwrap(), "c:80 \"\"");
}

#[test]
fn errors_name_template_line_column_and_expression() {
    assert_eq!(
        render_err("line1\n  {{index .list 7}}"),
        "template: t:2:4: executing \"t\" at <index .list 7>: error calling index: index out of range: 7"
    );
    assert_eq!(
        render_err("a\nb\n{{frob 1}}"),
        "template: t:3: function \"frob\" not defined"
    );
    assert_eq!(render_err("{{if .t}}x"), "template: t:1: unexpected EOF");
    assert_eq!(render_err("{{end}}"), "template: t:1: unexpected {{end}}");
    assert_eq!(render_err("{{.a"), "template: t:1: unclosed action");
    assert_eq!(
        render_err("x\n{{ if\n .a\n"),
        "template: t:4: unclosed action started at t:2"
    );
    assert_eq!(
        render_err("hello\n\n{{`unterminated\n\n\n\n}}\n some more\n\n"),
        "template: t:3: unterminated raw quoted string"
    );
    assert_eq!(
        render_err("{{}}"),
        "template: t:1: missing value for command"
    );
    assert_eq!(
        render_err("{{$x}}"),
        "template: t:1: undefined variable \"$x\""
    );
    assert_eq!(
        render_err("{{1 | 2}}"),
        "template: t:1: non executable command in pipeline stage 2"
    );
    assert!(render_err("{{.name 1}}").contains("name is not a method but has arguments"));
    assert!(render_err("{{range .name}}{{end}}").contains("range can't iterate over world"));
}

/// golang/go `TestExecError`: the error names the innermost template and the top-level line.
#[test]
fn nested_template_errors_name_the_executing_template() {
    let text = "line 1\nline 2\nline 3\n{{template \"one\" .}}\n{{define \"one\"}}{{template \"two\" .}}{{end}}\n{{define \"two\"}}{{template \"three\" .}}{{end}}\n{{define \"three\"}}{{index \"hi\" $}}{{end}}";
    let t = Template::parse("top", text, &Funcs::builtin()).unwrap();
    assert_eq!(
        t.execute(&Value::Int(5)).unwrap_err().to_string(),
        r#"template: top:7:20: executing "three" at <index "hi" $>: error calling index: index out of range: 5"#
    );
}

/// Cases from golang/go `text/template/exec_test.go` that our data model can express.
#[test]
fn go_exec_test_table() {
    let d = Value::map([
        ("I", Value::Int(17)),
        ("X", Value::from("x")),
        (
            "SI",
            Value::list([Value::Int(3), Value::Int(4), Value::Int(5)]),
        ),
        ("SIEmpty", Value::list([])),
        ("MSIone", Value::map([("one", Value::Int(1))])),
        (
            "U",
            Value::structure("*template.U", [("V", Value::from("v"))]),
        ),
    ]);
    let cases = [
        (
            "{{if $x := true}}{{with $y := .I}}{{$x}},{{$y}}{{end}}{{end}}",
            "true,17",
        ),
        (
            "{{if $x := true}}{{with $x := .I}}{{$x}},{{end}}{{$x}}{{end}}",
            "17,true",
        ),
        (
            "{{if eq 1 3}}1{{else if eq 2 3}}2{{else if eq 3 3}}3{{end}}",
            "3",
        ),
        ("{{with $x := $}}{{$y := $.U.V}}{{$y}}{{end}}", "v"),
        ("{{($).X}}", "x"),
        (
            "{{range $x, $y := .MSIone}}<{{$x}}={{$y}}>{{end}}",
            "<one=1>",
        ),
        (
            "{{range $x := .SI}}<{{$foo:=$x}}{{$x}}>{{end}}",
            "<3><4><5>",
        ),
        ("{{or .SI \"slice is empty\"}}", "[3 4 5]"),
        ("{{or .SIEmpty \"slice is empty\"}}", "slice is empty"),
        (
            "{{and false 0}} {{and 1 0}} {{and 0 true}} {{and 1 1}}",
            "false 0 0 1",
        ),
        (
            "{{or 0 0}} {{or 1 0}} {{or 0 true}} {{or 1 1}}",
            "0 1 true 1",
        ),
        (
            "{{if and true 1 `hi` | not}}TRUE{{else}}FALSE{{end}}",
            "FALSE",
        ),
        ("{{printf `%04x` 127}}", "007f"),
        ("{{printf `%g` 3.5}}", "3.5"),
        // Text between verbs (multi-byte too), `%%`, and strings with and without padding.
        (
            "{{printf `é %s, %% ü%-4s|%5s|%.2s` \"x\" \"y\" \"z\" \"abc\"}}",
            "é x, % üy   |    z|ab",
        ),
        ("{{printf `%d %s %g` 127 \"hello\" 1.5}}", "127 hello 1.5"),
        ("{{printf `%T` 0xef}}", "int"),
        ("{{print (.U).V}}", "v"),
        (
            "{{\"http://www.example.org/\"|urlquery}}",
            "http%3A%2F%2Fwww.example.org%2F",
        ),
        ("{{js `It'd be nice.`}}", "It\\'d be nice."),
        (
            "{{html \"<script>alert(\\\"XSS\\\");</script>\"}}",
            "&lt;script&gt;alert(&#34;XSS&#34;);&lt;/script&gt;",
        ),
        ("{{with .SI}}{{.}}{{else}}EMPTY{{end}}", "[3 4 5]"),
        ("{{with .MSIone}}{{.}}{{else}}EMPTY{{end}}", "map[one:1]"),
        ("{{with 1.5}}{{.}}{{else}}ZERO{{end}}", "1.5"),
        ("{{\"aaa\"|printf}}", "aaa"),
        ("{{eq (index `x` 0) 'x'}}", "true"),
        ("{{index .SI 1}}", "4"),
    ];
    for (text, want) in cases {
        assert_eq!(render_with(text, &d).as_deref(), Ok(want), "{text}");
    }
    for text in [
        "{{nil}}",
        "{{if nil}}TRUE{{end}}",
        "{{index .SI 10}}",
        "{{index .SI `hello`}}",
        "{{index .SI nil}}",
        "{{index nil 1}}",
        "{{len 3}}",
        "{{3 2}}",
        "{{$x := 1}}{{$x 2}}",
        "{{$x := 1}}{{3 | $x}}",
        "{{(nil).True}}",
        "{{$x := (1.0)}}{{$x.anything}}",
        "{{true|printf}}",
        "{{eq `xy` 1}}",
        "{{eq 2 2.0}}",
        "{{lt true true}}",
        "{{.MSIone.one 1}}",
    ] {
        assert!(render_with(text, &d).is_err(), "{text} should fail");
    }
}

#[test]
fn go_builtins_print_and_escape() {
    assert_eq!(render("{{print 1 2 \"a\" 3}}"), "1 2a3");
    assert_eq!(render("{{println \"a\" 1}}"), "a 1\n");
    assert_eq!(
        render("{{printf \"%5.1f|%-3d|%t|%v\" 3.14159 7 true .list}}"),
        "  3.1|7  |true|[a b c]"
    );
    assert_eq!(
        render("{{html \"<a href='x'>&\"}}"),
        "&lt;a href=&#39;x&#39;&gt;&amp;"
    );
    assert_eq!(render("{{js \"it's <b>\"}}"), "it\\'s \\u003Cb\\u003E");
    assert_eq!(render("{{urlquery \"a b&c\"}}"), "a+b%26c");
    assert_eq!(render("{{not 0}} {{not .list}}"), "true false");
}

#[test]
fn user_functions_override_builtins_and_must_exist_at_parse() {
    let mut funcs = Funcs::builtin();
    // Istio's `contains` takes (string, substring): the reverse of sprig's.
    funcs.insert("contains", |a| match a {
        [Value::String(s), Value::String(sub)] => Ok(Value::Bool(s.contains(&**sub))),
        _ => Err(FuncError::new("bad args")),
    });
    funcs.insert("fails", |_| Err(FuncError::new("boom")));
    let t = Template::parse("t", "{{contains \"haystack\" \"hay\"}}", &funcs).unwrap();
    assert_eq!(t.execute(&Value::Nil).unwrap(), "true");
    let t = Template::parse("t", "{{fails}}", &funcs).unwrap();
    assert_eq!(
        t.execute(&Value::Nil).unwrap_err().to_string(),
        "template: t:1:2: executing \"t\" at <fails>: error calling fails: boom"
    );
    assert!(Template::parse("t", "{{fails}}", &Funcs::builtin()).is_err());
}

#[test]
fn sprig_string_functions() {
    assert_eq!(
        render("{{.name | quote}} {{.name | squote}} {{quote .nullv}}|"),
        "\"world\" 'world' |"
    );
    assert_eq!(render("{{quote .port .t}}"), "\"15020\" \"true\"");
    assert_eq!(
        render(
            "{{trim \"  a \"}}|{{trimAll \"$\" \"$5.00$\"}}|{{trimPrefix \"-\" \"-x\"}}|{{trimSuffix \"-\" \"x-\"}}"
        ),
        "a|5.00|x|x"
    );
    assert_eq!(
        render("{{upper .name}} {{lower \"AbC\"}} {{title \"hello world\"}}"),
        "WORLD abc Hello World"
    );
    assert_eq!(render("{{replace \"a\" \"o\" \"banana\"}}"), "bonono");
    assert_eq!(
        render("{{contains \"or\" .name}} {{hasPrefix \"wo\" .name}} {{hasSuffix \"x\" .name}}"),
        "true true false"
    );
    assert_eq!(
        render("{{trunc 3 .name}} {{repeat 3 \"ab\"}} {{substr 1 3 .name}}"),
        "wor ababab or"
    );
    assert_eq!(
        render("{{splitList \",\" \"a,b,,c\"}} {{join \"-\" .list}} {{join \"-\" .nums}}"),
        "[a b  c] a-b-c 3-1-2"
    );
    assert_eq!(
        render("{{$p := split \"$\" \"foo$bar\"}}{{$p._0}}+{{$p._1}}"),
        "foo+bar"
    );
    assert_eq!(
        render("{{\"a\\nb\" | indent 2}}|{{\"a\\nb\" | nindent 2}}"),
        "  a\n  b|\n  a\n  b"
    );
    assert_eq!(render("{{cat \"a\" .nullv 1 \"b\"}}"), "a 1 b");
    assert_eq!(render("{{toString 1.5}} {{toString .list}}"), "1.5 [a b c]");
    assert_eq!(render("{{nospace \" a b \"}}"), "ab");
}

#[test]
fn sprig_defaults_and_logic() {
    assert_eq!(
        render("{{.missing | default \"d\"}} {{.empty | default \"e\"}} {{.name | default \"n\"}}"),
        "d e world"
    );
    assert_eq!(
        render("{{.zero | default 5}} {{.f | default \"yes\"}} {{.nolist | default \"l\"}}"),
        "5 yes l"
    );
    assert_eq!(
        render("{{empty .nomap}} {{empty .map}} {{empty 0}} {{empty .missing}}"),
        "true false true true"
    );
    assert_eq!(render("{{coalesce .missing .empty .name}}"), "world");
    assert_eq!(
        render(
            "{{ternary \"y\" \"n\" true}} {{true | ternary \"y\" \"n\"}} {{ternary \"y\" \"n\" false}}"
        ),
        "y y n"
    );
    assert!(
        render_err("{{required \"need x\" .missing}}").contains("error calling required: need x")
    );
    assert!(render_err("{{fail \"stop\"}}").contains("error calling fail: stop"));
}

#[test]
fn sprig_lists_and_dicts() {
    assert_eq!(render("{{list 1 \"a\" .t}}"), "[1 a true]");
    assert_eq!(
        render("{{append .list \"d\"}} {{prepend .list \"z\"}} {{concat .list .nums}}"),
        "[a b c d] [z a b c] [a b c 3 1 2]"
    );
    assert_eq!(
        render("{{first .list}} {{last .list}} {{rest .list}} {{initial .list}}"),
        "a c [b c] [a b]"
    );
    assert_eq!(
        render("{{has \"b\" .list}} {{has \"q\" .list}} {{has 1 .missing}}"),
        "true false false"
    );
    assert_eq!(
        render(
            "{{uniq (list 1 2 1)}} {{reverse .list}} {{sortAlpha (list \"b\" \"a\")}} {{without .list \"b\"}}"
        ),
        "[1 2] [c b a] [a b] [a c]"
    );
    assert_eq!(render("{{compact (list 1 0 \"\" \"x\")}}"), "[1 x]");
    assert_eq!(
        render(
            "{{$d := dict \"b\" 1 \"a\" \"x\"}}{{$d}} {{$d.a}} {{get $d \"b\"}} [{{get $d \"none\"}}]"
        ),
        "map[a:x b:1] x 1 []"
    );
    assert_eq!(
        render("{{hasKey .map \"a\"}} {{hasKey .map \"q\"}}"),
        "true false"
    );
    assert_eq!(
        render("{{$d := dict}}{{$_ := set $d \"k\" 1}}{{keys .map}}"),
        "[a m z]"
    );
    assert_eq!(
        render("{{set (dict \"a\" 1) \"b\" 2}} {{unset (dict \"a\" 1 \"b\" 2) \"a\"}}"),
        "map[a:1 b:2] map[b:2]"
    );
    assert_eq!(
        render("{{pick .map \"a\" \"z\"}} {{omit .map \"a\" \"z\"}} {{values (dict \"a\" 1)}}"),
        "map[a:x z:1] map[m:[1 2]] [1]"
    );
    assert_eq!(render("{{until 3}} {{untilStep 0 6 2}}"), "[0 1 2] [0 2 4]");
    assert_eq!(
        render("{{merge (dict \"a\" 1) (dict \"a\" 2 \"b\" 3)}}"),
        "map[a:1 b:3]"
    );
}

#[test]
fn sprig_math_and_conversions() {
    assert_eq!(
        render("{{add 1 2 3}} {{add .port 1}} {{sub 5 7}} {{mul 2 3 4}} {{div 7 2}} {{mod 7 3}}"),
        "6 15021 -2 24 3 1"
    );
    assert_eq!(
        render("{{max 1 9 3}} {{min 4 2 8}} {{add1 .zero}}"),
        "9 2 1"
    );
    assert_eq!(
        render("{{int \"42\"}} {{int64 3.9}} {{float64 \"1.5\"}} {{atoi \"12\"}} {{int \"x\"}}"),
        "42 3 1.5 12 0"
    );
    assert_eq!(render("{{floor 1.7}} {{ceil 1.2}}"), "1 2");
    assert!(render_err("{{div 1 0}}").contains("integer divide by zero"));
    assert_eq!(
        render("{{addf 1.5 2}} {{mulf 1.5 2}} {{divf 1 4}} {{round 3.14159 2}}"),
        "3.5 3 0.25 3.14"
    );
    assert_eq!(
        render("{{sha256sum \"abc\" | trunc 8}} {{adler32sum \"Wikipedia\"}}"),
        "ba7816bf 300286872"
    );
    assert_eq!(
        render(
            "{{abbrev 5 \"hello world\"}} {{initials \"First Try\"}} {{plural \"one\" \"many\" 2}}"
        ),
        "he... FT many"
    );
}

#[test]
fn sprig_encodings() {
    assert_eq!(render("{{toJson .map}}"), r#"{"a":"x","m":[1,2],"z":1}"#);
    assert_eq!(
        render("{{toJson \"<a>\"}} {{toRawJson \"<a>\"}}"),
        r#""\u003ca\u003e" "<a>""#
    );
    assert_eq!(
        render("{{toPrettyJson (dict \"a\" (list 1))}}"),
        "{\n  \"a\": [\n    1\n  ]\n}"
    );
    assert_eq!(render("{{(fromJson \"{\\\"a\\\": [1, 2]}\").a}}"), "[1 2]");
    assert_eq!(render("{{toYaml .map}}"), "a: x\nm:\n- 1\n- 2\nz: 1");
    assert_eq!(
        render("{{b64enc \"hello\"}} {{b64dec \"aGVsbG8=\"}}"),
        "aGVsbG8= hello"
    );
    assert_eq!(render("{{(fromYaml \"a: 1\\nb: [x]\").b}}"), "[x]");
    assert_eq!(
        render("{{typeOf .port}} {{kindOf .list}} {{kindIs \"map\" .map}}"),
        "float64 slice true"
    );
}

#[test]
fn template_recursion_is_bounded() {
    // On the default stack of a spawned thread (2 MiB), as in a server's worker threads.
    let t = r#"{{define "r"}}{{if true}}{{with 1}}{{range list 1}}{{template "r" .}}{{end}}{{end}}{{end}}{{end}}{{template "r" .}}"#;
    let err = std::thread::spawn(move || render_with(t, &Value::Nil))
        .join()
        .unwrap()
        .unwrap_err();
    assert!(
        err.contains("exceeded maximum") && err.contains("depth (300)"),
        "{err}"
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let deep = format!("{{{{{}1{}}}}}", "(".repeat(5000), ")".repeat(5000));
    assert!(render_err(&deep).contains("max expression depth exceeded"));
    let ifs = format!("{}x{}", "{{if 1}}".repeat(500), "{{end}}".repeat(500));
    assert!(render_err(&ifs).contains("max expression depth exceeded"));
    // Recursion with deep nesting inside each call stops at the combined budget.
    let nested = format!(
        "{}{{{{template \"r\" .}}}}{}",
        "{{with 1}}".repeat(99),
        "{{end}}".repeat(99)
    );
    let text = format!("{{{{define \"r\"}}}}{nested}{{{{end}}}}{{{{template \"r\" .}}}}");
    let out = std::thread::spawn(move || render_with(&text, &Value::Nil))
        .join()
        .unwrap();
    let err = out.unwrap_err();
    assert!(
        err.contains("exceeded maximum") && err.contains("depth (300)"),
        "{err}"
    );
    // Plain recursion stops at the same bound.
    let t = r#"{{define "r"}}{{template "r" .}}{{end}}{{template "r" .}}"#;
    let err = std::thread::spawn(move || render_with(t, &Value::Nil))
        .join()
        .unwrap()
        .unwrap_err();
    assert!(
        err.ends_with("exceeded maximum template depth (300)"),
        "{err}"
    );
}

#[test]
fn no_input_makes_the_parser_or_executor_panic() {
    let sources = [
        r#"{{define "T"}}{{range $i, $e := .list}}{{if eq $i 1}}{{break}}{{end}}{{$e | quote}}{{end}}{{end}}"#,
        r#"a {{- with $x := index .map "m" -}} {{ (index $x 0) | printf "%05d" }} {{- else -}} no {{- end }}"#,
        r#"{{ $v := dict "a" (list 1 2 "x") }}{{ toYaml $v | nindent 4 }}{{ block "b" . }}{{ .name }}{{ end }}"#,
        "{{/* c */}}{{ 'x' }}{{ `raw` }}{{ \"\\u00e9\" }}{{ (1) }}{{ .map.m }}",
    ];
    for src in sources {
        let bytes = src.as_bytes();
        for end in 0..=bytes.len() {
            let Ok(prefix) = std::str::from_utf8(&bytes[..end]) else {
                continue;
            };
            // Every prefix parses or fails with an error; none panics.
            let _ = render_with(prefix, &data());
            // So does every text with one byte removed.
            if end < bytes.len() {
                let mut cut = bytes.to_vec();
                cut.remove(end);
                if let Ok(s) = std::str::from_utf8(&cut) {
                    let _ = render_with(s, &data());
                }
            }
        }
    }
}

/// Every built-in and sprig function, called with every combination of up to three awkward
/// arguments, returns a value or an error; none panics.
#[test]
fn no_function_panics_on_any_arguments() {
    let samples = [
        Value::Nil,
        Value::Bool(true),
        Value::Int(0),
        Value::Int(-3),
        Value::Int(i64::MAX),
        Value::Int(i64::MIN),
        Value::Float(f64::NAN),
        Value::Float(-1.5),
        Value::from(""),
        Value::from("é,x"),
        Value::from("%!%[9]d%*d"),
        Value::list([Value::Nil, Value::Int(1)]),
        Value::map([("a", Value::Nil)]),
        Value::string_map([("k", "v")]),
        Value::structure("T", [("f", Value::Int(1))]),
    ];
    let funcs = Funcs::builtin();
    let names = funcs.names();
    assert!(names.len() > 100, "{} functions", names.len());
    for name in names {
        // Lazy and/or are evaluated by the executor, not callable here.
        let Some(f) = funcs.get(name) else { continue };
        let _ = f(&[]);
        for a in &samples {
            let _ = f(std::slice::from_ref(a));
            for b in &samples {
                let _ = f(&[a.clone(), b.clone()]);
                // Three arguments: a smaller set, so the test stays fast in debug builds.
                for c in samples.iter().step_by(2) {
                    let _ = f(&[a.clone(), b.clone(), c.clone()]);
                }
            }
        }
    }
}

#[test]
fn templates_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Template>();
    check::<Value>();
    check::<Funcs>();
}

/// Istio's injection vectors: `ISTIO_INJECT_VECTORS`, else `<workspace>/../shared/...`.
fn conformance() -> Option<PathBuf> {
    let dir = std::env::var_os("ISTIO_INJECT_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/istio-inject")
        });
    if dir.is_dir() {
        return Some(dir);
    }
    eprintln!(
        "skipping: no conformance data at {} (set ISTIO_INJECT_VECTORS)",
        dir.display()
    );
    None
}

/// Builtins + sprig + Istio's helper names as placeholders (the engine supplies the real ones).
fn istio_funcs() -> Funcs {
    let mut f = Funcs::builtin();
    for name in [
        "formatDuration",
        "isset",
        "excludeInboundPort",
        "includeInboundPorts",
        "kubevirtInterfaces",
        "excludeInterfaces",
        "applicationPorts",
        "annotation",
        "valueOrDefault",
        "toJSON",
        "fromJSON",
        "structToJSON",
        "protoToJSON",
        "toYaml",
        "indent",
        "directory",
        "contains",
        "toLower",
        "appendMultusNetwork",
        "env",
        "omit",
        "strdict",
        "toJsonMap",
        "mergeMaps",
        "omitNil",
        "otelResourceAttributes",
    ] {
        f.insert(name, |_| Ok(Value::Nil));
    }
    f
}

#[test]
fn parses_every_istio_template() {
    let Some(dir) = conformance() else {
        return;
    };
    let funcs = istio_funcs();
    let mut parsed = 0;
    let config: serde_yaml_ng::Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(dir.join("config/injector-config.yaml")).unwrap(),
    )
    .unwrap();
    let cases: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(dir.join("cases.yaml")).unwrap()).unwrap();
    let mut sets = vec![config["templates"].clone()];
    if let Some(list) = cases
        .get("cases")
        .and_then(|c| c.as_sequence())
        .or(cases.as_sequence())
    {
        for case in list {
            if let Some(t) = case.get("templates_add") {
                sets.push(t.clone());
            }
        }
    }
    for set in sets {
        let Some(map) = set.as_mapping() else {
            continue;
        };
        for (name, text) in map {
            let (Some(name), Some(text)) = (name.as_str(), text.as_str()) else {
                continue;
            };
            if let Err(e) = Template::parse(name, text, &funcs) {
                panic!("{name}: {e}");
            }
            parsed += 1;
        }
    }
    assert!(parsed >= 8, "only {parsed} templates found");
}

/// Mutations of Istio's real `sidecar` template (cut, duplicated and inserted fragments at
/// fixed pseudo-random places) parse or fail cleanly, and execute or fail cleanly.
#[test]
fn mutated_istio_templates_never_panic() {
    let Some(dir) = conformance() else {
        return;
    };
    let config: serde_yaml_ng::Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(dir.join("config/injector-config.yaml")).unwrap(),
    )
    .unwrap();
    let text = config["templates"]["sidecar"].as_str().unwrap().to_string();
    let funcs = istio_funcs();
    let inserts = [
        "{{", "}}", "{{-", " -}}", "(", ")", "|", "$", ".", "\"", "`", "end", "{{end}}",
        "{{else}}", "/*",
    ];
    let mut seed: u64 = 0x9e3779b97f4a7c15;
    let mut next = |n: usize| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as usize % n.max(1)
    };
    let mut parsed = 0;
    for round in 0..300 {
        let mut bytes = text.clone().into_bytes();
        let at = next(bytes.len());
        match round % 3 {
            0 => {
                let len = next(40).min(bytes.len() - at);
                bytes.drain(at..at + len);
            }
            1 => {
                let len = next(40).min(bytes.len() - at);
                let piece: Vec<u8> = bytes[at..at + len].to_vec();
                bytes.splice(at..at, piece);
            }
            _ => {
                let ins = inserts[next(inserts.len())].as_bytes().to_vec();
                bytes.splice(at..at, ins);
            }
        }
        let Ok(mutated) = String::from_utf8(bytes) else {
            continue;
        };
        if let Ok(t) = Template::parse("sidecar", &mutated, &funcs) {
            parsed += 1;
            let _ = t.execute(&data());
        }
    }
    assert!(parsed > 0);
}

/// A parsed template remembers what its field chains found in data shared between runs
/// (`memo.rs`); every run must still see the data it was given, whether that data is the
/// same map again, a new one, the same one changed, or a struct with its fields moved.
#[test]
fn field_chains_see_each_runs_data() {
    let t = Template::parse(
        "t",
        "{{ .Values.global.image }} {{ with .Values.global }}{{ .tag }}{{ end }} {{ .Name }}",
        &Funcs::builtin(),
    )
    .unwrap();
    let values =
        |image: &str, tag: &str| Value::from_json(&json!({"global": {"image": image, "tag": tag}}));
    let data = |values: &Value, name: &str, name_first: bool| {
        let mut fields = vec![("Values", values.clone()), ("Name", Value::string(name))];
        if !name_first {
            fields.reverse();
        }
        Value::structure("*inject.Data", fields)
    };
    let shared = values("proxyv2", "1.24");
    for run in 0..4 {
        let name = format!("pod-{run}");
        let out = t.execute(&data(&shared, &name, run % 2 == 0)).unwrap();
        assert_eq!(out, format!("proxyv2 1.24 {name}"));
    }
    let other = values("distroless", "1.25");
    assert_eq!(
        t.execute(&data(&other, "a", true)).unwrap(),
        "distroless 1.25 a"
    );
    assert_eq!(
        t.execute(&data(&shared, "b", false)).unwrap(),
        "proxyv2 1.24 b"
    );
    // The same map changed between runs (as a reload that edits values in place would).
    let mut changed = shared.clone();
    drop(shared);
    if let Value::Map(m) = &mut changed {
        let global = Arc::make_mut(m).entries.get_mut("global").unwrap();
        *global = Value::from_json(&json!({"image": "custom", "tag": "dev"}));
    }
    assert_eq!(
        t.execute(&data(&changed, "c", true)).unwrap(),
        "custom dev c"
    );
    assert_eq!(
        t.execute(&data(&changed, "d", true)).unwrap(),
        "custom dev d"
    );
}

/// Threads rendering one template at once (as the webhook's pool does) each see their own
/// data, while the chains' memos fill and are read concurrently.
#[test]
fn field_chains_see_each_runs_data_across_threads() {
    let t = Template::parse(
        "t",
        "{{ .Values.global.image }} {{ .Pod.Name }} {{ $v := .Values }}{{ $v.global.tag }}",
        &Funcs::builtin(),
    )
    .unwrap();
    let maps = [
        Value::from_json(&json!({"global": {"image": "proxyv2", "tag": "1.24"}})),
        Value::from_json(&json!({"global": {"image": "distroless", "tag": "1.25"}})),
    ];
    std::thread::scope(|scope| {
        for thread in 0..4 {
            let (t, maps) = (&t, &maps);
            scope.spawn(move || {
                for run in 0..500 {
                    // Threads 0 and 1 keep to one map; 2 and 3 alternate between both.
                    let which = if thread < 2 { thread } else { run % 2 };
                    let name = format!("pod-{thread}-{run}");
                    let pod = Value::structure("*corev1.Pod", [("Name", Value::string(&*name))]);
                    let data = Value::structure(
                        "*inject.Data",
                        [("Values", maps[which].clone()), ("Pod", pod)],
                    );
                    let (image, tag) = [("proxyv2", "1.24"), ("distroless", "1.25")][which];
                    assert_eq!(t.execute(&data).unwrap(), format!("{image} {name} {tag}"));
                }
            });
        }
    });
}

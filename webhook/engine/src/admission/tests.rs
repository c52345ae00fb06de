use super::*;
use crate::ConfigSources;
use base64::Engine as _;
use serde_json::json;

/// A configuration with one tiny template, enough to exercise the review plumbing without
/// depending on any shipped template.
fn injector() -> Injector {
    Injector::load(&ConfigSources {
        injector_config: Some("policy: enabled\ntemplates:\n  sidecar: |\n    spec:\n      containers:\n      - name: istio-proxy\n        image: proxy\n".into()),
        values: Some("{}".into()),
        mesh: None,
    })
    .unwrap()
}

fn review_body(api_version: &str, pod: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": api_version,
        "kind": "AdmissionReview",
        "request": {
            "uid": "0df28fbd-5f5f-11e8-bc74-36e6bb280816",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "default",
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": pod,
            "oldObject": null,
            "dryRun": false,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}
        }
    }))
    .unwrap()
}

fn pod() -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "web-", "labels": {"app": "web"}},
           "spec": {"containers": [{"name": "web", "image": "nginx"}]}})
}

#[test]
fn answers_in_the_request_api_version_and_echoes_the_uid() {
    for version in [V1, V1BETA1] {
        let answer = review(
            &review_body(version, pod()),
            &injector(),
            &Environment::default(),
            "",
        )
        .unwrap();
        let body: Value = serde_json::from_slice(&answer.body).unwrap();
        assert_eq!(body["apiVersion"], version);
        assert_eq!(body["kind"], "AdmissionReview");
        assert_eq!(
            body["response"]["uid"],
            "0df28fbd-5f5f-11e8-bc74-36e6bb280816"
        );
        assert_eq!(answer.name, "web-");
        assert_eq!(answer.namespace, "default");
    }
}

#[test]
fn skipped_pods_are_allowed_without_a_patch() {
    let mut p = pod();
    p["spec"]["hostNetwork"] = json!(true);
    let answer = review(
        &review_body(V1, p),
        &injector(),
        &Environment::default(),
        "",
    )
    .unwrap();
    let rsp = response_of(&answer.body).unwrap();
    assert_eq!(rsp["allowed"], true);
    assert!(!rsp.contains_key("patch"));
    assert!(matches!(answer.verdict, Verdict::Skipped(_)));
}

#[test]
fn bad_annotations_are_denied_with_the_reason() {
    let mut p = pod();
    p["metadata"]["annotations"] =
        json!({"traffic.sidecar.istio.io/includeOutboundIPRanges": "bad"});
    let answer = review(
        &review_body(V1, p),
        &injector(),
        &Environment::default(),
        "",
    )
    .unwrap();
    let rsp = response_of(&answer.body).unwrap();
    assert_eq!(rsp["allowed"], false);
    let msg = rsp["status"]["message"].as_str().unwrap();
    assert!(msg.contains("includeIPRanges invalid"), "{msg}");
}

#[test]
fn garbage_gets_a_refusal_not_an_error() {
    for body in [
        &b"{not json"[..],
        b"{}",
        b"[]",
        b"{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\"}",
    ] {
        let answer = review(body, &injector(), &Environment::default(), "").unwrap();
        let rsp = response_of(&answer.body).unwrap();
        assert_eq!(rsp["allowed"], false);
    }
    assert!(review(b"", &injector(), &Environment::default(), "").is_err());
}

#[test]
fn every_truncated_review_gets_an_answer() {
    let body = review_body(V1, pod());
    for end in 1..body.len() {
        let answer = review(&body[..end], &injector(), &Environment::default(), "").unwrap();
        let rsp = response_of(&answer.body).unwrap();
        assert_eq!(rsp["allowed"], false, "{end}-byte prefix was allowed");
    }
}

#[test]
fn url_path_parameters_become_env_vars() {
    let envs = path_envs("/cluster/c1/net/n1/foo/a--slash--b/odd");
    assert_eq!(envs["ISTIO_META_CLUSTER_ID"], "c1");
    assert_eq!(envs["ISTIO_META_NETWORK"], "n1");
    assert_eq!(envs["FOO"], "a/b");
    assert_eq!(envs.len(), 3);
    let legacy = path_envs("/:ENV:cluster=x:ENV:=bad:ENV:net=");
    assert_eq!(legacy["ISTIO_META_CLUSTER_ID"], "x");
    assert_eq!(legacy["ISTIO_META_NETWORK"], "");
    assert!(path_envs("").is_empty());
}

/// Istio's benchmark shape: inserting the sidecar next to a container with 2000 env vars must
/// give a patch of a few KB (targeted operations), and applying it gives the injected pod.
#[test]
fn a_pod_with_2000_env_vars_gets_a_small_patch() {
    let env: Vec<Value> = (0..2000)
        .map(|i| json!({"name": format!("VAR_{i}"), "value": format!("value-{i}")}))
        .collect();
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "big", "namespace": "bar"},
                     "spec": {"containers": [{"name": "app", "image": "app", "env": env}]}});
    let injector = Injector::builtin().unwrap();
    let answer = review(
        &review_body(V1, pod.clone()),
        &injector,
        &Environment::default(),
        "",
    )
    .unwrap();
    assert_eq!(answer.verdict, Verdict::Injected);
    let rsp = response_of(&answer.body).unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(rsp["patch"].as_str().unwrap())
        .unwrap();
    assert!(bytes.len() < 16 * 1024, "patch is {} bytes", bytes.len());
    let patch: json_patch::Patch = serde_json::from_slice(&bytes).unwrap();
    let mut patched = pod.clone();
    json_patch::patch(&mut patched, &patch).unwrap();
    let containers = patched["spec"]["containers"].as_array().unwrap();
    assert_eq!(containers[0]["env"].as_array().unwrap().len(), 2000);
    assert_eq!(containers[1]["name"], "istio-proxy");
}

/// The hand-written response bytes are exactly what serde_json writes for the same
/// AdmissionReview, escapes included.
#[test]
fn response_bodies_are_the_json_serde_writes() {
    use base64::Engine;
    let uid = "u-\"1\"\\\n\u{7f}é";
    let patch = br#"[{"op":"add","path":"/a","value":"x\"y"}]"#;
    let cases = [
        (
            response_body(Some(V1), uid, &Response::Allowed),
            json!({"apiVersion": V1, "kind": "AdmissionReview", "response": {"uid": uid, "allowed": true}}),
        ),
        (
            response_body(Some(V1BETA1), uid, &Response::Patch(patch)),
            json!({"apiVersion": V1BETA1, "kind": "AdmissionReview", "response": {"uid": uid, "allowed": true,
                "patch": base64::engine::general_purpose::STANDARD.encode(patch), "patchType": "JSONPatch"}}),
        ),
        (
            response_body(Some(V1), uid, &Response::Denied("bad \"thing\"\t\u{1}")),
            json!({"apiVersion": V1, "kind": "AdmissionReview", "response": {"uid": uid, "allowed": false,
                "status": {"message": "bad \"thing\"\t\u{1}"}}}),
        ),
        (
            response_body(None, "", &Response::Denied("no")),
            json!({"response": {"uid": "", "allowed": false, "status": {"message": "no"}}}),
        ),
    ];
    for (body, want) in cases {
        assert_eq!(
            String::from_utf8(body).unwrap(),
            serde_json::to_string(&want).unwrap()
        );
    }
    // Every padding length of the base64 patch.
    for len in 0..7 {
        let raw = vec![b'z'; len];
        let body = response_body(Some(V1), "u", &Response::Patch(&raw));
        let rsp = response_of(&body).unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rsp["patch"].as_str().unwrap())
            .unwrap();
        assert_eq!(decoded, raw);
    }
}

/// The review is read without building the fields the webhook ignores; a body that does not
/// parse as JSON is still refused with serde_json's own message for it, wherever the fault is.
#[test]
fn unreadable_bodies_are_refused_as_a_json_parser_reports_them() {
    let good = String::from_utf8(review_body(V1, pod())).unwrap();
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let mut bodies: Vec<Vec<u8>> = [
        good.replace("\"username\"", "\"big\": 1e999, \"username\""),
        good.replace("replicaset-controller", "bad \\x escape"),
        good.replace("replicaset-controller", "lone \\ud800 surrogate"),
        good.replace("replicaset-controller", "control \u{1} char"),
        good.replace("\"oldObject\":null", &format!("\"oldObject\":{deep}")),
        good.replace("\"oldObject\":null", "\"oldObject\":nul"),
        format!("{good} trailing"),
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect();
    let mut invalid_utf8 = review_body(V1, pod());
    let at = good.find("replicaset").unwrap();
    invalid_utf8[at] = 0xff;
    // A body that is not UTF-8 takes another path: its faults must still be reported in
    // document order, whichever comes first.
    for (fault, other) in [
        ("\"oldObject\":null", "\"oldObject\":nul"),
        ("\"uid\"", "\"uid\" 1"),
    ] {
        let mut both = String::from_utf8_lossy(&invalid_utf8)
            .replace(fault, other)
            .into_bytes();
        let at = both
            .windows(3)
            .position(|w| w == "\u{fffd}".as_bytes())
            .unwrap();
        both.splice(at..at + 3, [0xff]);
        bodies.push(both);
    }
    bodies.push(invalid_utf8);
    bodies.extend((1..good.len()).map(|end| good.as_bytes()[..end].to_vec()));
    for body in bodies {
        let want = serde_json::from_slice::<Value>(&body).unwrap_err();
        let answer = review(&body, &injector(), &Environment::default(), "").unwrap();
        assert_eq!(
            answer.verdict,
            Verdict::Denied(format!("could not decode body: {want}")),
            "{}",
            String::from_utf8_lossy(&body)
        );
    }
}

/// What a parsed `Value` would make of odd but valid JSON: the last of repeated keys counts,
/// and a request or review that is not an object is no request at all.
#[test]
fn odd_reviews_read_as_their_json_values() {
    let good = String::from_utf8(review_body(V1, pod())).unwrap();
    let repeated = good.replacen(
        "{\"apiVersion\"",
        "{\"apiVersion\": \"v0\", \"kind\": 1, \"request\": {\"uid\": \"first\"}, \"apiVersion\"",
        1,
    );
    let answer = review(
        repeated.as_bytes(),
        &injector(),
        &Environment::default(),
        "",
    )
    .unwrap();
    assert_eq!(answer.verdict, Verdict::Injected);
    assert_eq!(answer.uid, "0df28fbd-5f5f-11e8-bc74-36e6bb280816");

    let last_wins = good.replacen(
        "\"kind\":\"AdmissionReview\"",
        "\"kind\":\"AdmissionReview\",\"kind\":\"Pod\"",
        1,
    );
    let answer = review(
        last_wins.as_bytes(),
        &injector(),
        &Environment::default(),
        "",
    )
    .unwrap();
    assert!(matches!(answer.verdict, Verdict::Denied(m) if m.contains("got kind \"Pod\"")));

    for request in ["null", "[1, {\"a\": 2}]", "\"text\"", "7", "-1.5", "true"] {
        let body = format!(
            "{{\"apiVersion\":\"{V1}\",\"kind\":\"AdmissionReview\",\"request\":{request}}}"
        );
        let answer = review(body.as_bytes(), &injector(), &Environment::default(), "").unwrap();
        assert_eq!(
            answer.verdict,
            Verdict::Denied("AdmissionReview has no request".into()),
            "{body}"
        );
    }
    for body in ["[]", "\"AdmissionReview\"", "null", "0"] {
        let answer = review(body.as_bytes(), &injector(), &Environment::default(), "").unwrap();
        assert!(
            matches!(&answer.verdict, Verdict::Denied(m) if m.ends_with("got kind \"\" apiVersion \"\"")),
            "{body}: {:?}",
            answer.verdict
        );
    }
}

/// The whole answer to an injected review, byte for byte, is what the serde path writes for the
/// same review: the patch operations serialised by serde_json, base64-encoded, in a serde_json
/// AdmissionReview. The pod carries strings that need every kind of JSON escape.
#[test]
fn injected_answers_are_the_bytes_serde_json_writes() {
    use base64::Engine;
    let mut p = pod();
    p["metadata"]["annotations"] = json!({
        "note": "quote\" backslash\\ <b>&amp; tab\t nl\n \u{1} é 日本 🚀",
        "proxy.istio.io/config": "holdApplicationUntilProxyStarts: true\n",
    });
    p["spec"]["containers"][0]["env"] =
        json!([{"name": "A", "value": "x\"y\\z\r\n\u{7f}\u{1f}"}, {"name": "N", "value": "15"}]);
    p["spec"]["containers"][0]["readinessProbe"] =
        json!({"httpGet": {"path": "/ready?q=\"é\t\u{1}\"", "port": 8080}, "periodSeconds": 5});
    p["spec"]["containers"][0]["ports"] = json!([{"containerPort": 8080, "protocol": "TCP"}]);
    let body = review_body(V1, p);
    let injector = Injector::builtin().unwrap();
    let env = Environment::default();
    let answer = review(&body, &injector, &env, "/cluster/c1").unwrap();
    assert_eq!(answer.verdict, Verdict::Injected);

    let request: Value = serde_json::from_slice(&body).unwrap();
    let mode = Mode::Webhook {
        path_envs: path_envs("/cluster/c1"),
    };
    let texts = Texts::default();
    let Outcome::Injected { original, injected } = inject::inject(
        Node::view(&request["request"]["object"]),
        "default",
        &injector,
        &env,
        &mode,
        &texts,
    )
    .unwrap() else {
        panic!("the pod was not injected")
    };
    let patch = serde_json::to_vec(&patch::diff(&original, &injected)).unwrap();
    let want = serde_json::to_vec(&json!({
        "apiVersion": V1,
        "kind": "AdmissionReview",
        "response": {
            "uid": "0df28fbd-5f5f-11e8-bc74-36e6bb280816",
            "allowed": true,
            "patch": base64::engine::general_purpose::STANDARD.encode(&patch),
            "patchType": "JSONPatch",
        }
    }))
    .unwrap();
    assert_eq!(
        String::from_utf8(answer.body).unwrap(),
        String::from_utf8(want).unwrap()
    );
    // The probe's path reached the patch twice escaped (inside a JSON string in an env value).
    let text = String::from_utf8(patch).unwrap();
    assert!(text.contains(r#"/ready?q=\\\"é\\t\\u0001\\\""#), "{text}");
}

//! Replays Istio's sidecar-injection golden vectors (`../shared/conformance/istio-inject`, or
//! `$ISTIO_INJECT_VECTORS`) through the engine, in both of Istio's modes: `kube-inject` (the
//! injected stream, compared document by document) and the webhook (a real AdmissionReview,
//! the returned JSON patch applied to the pod). Comparison is semantic, as the vectors' README
//! describes. Every case counts: one the engine cannot do is a failure, never a skip.

use std::path::{Path, PathBuf};

use base64::Engine;
use injector_engine::admission::{self, Verdict};
use injector_engine::kube_inject::inject_stream;
use injector_engine::{ConfigSources, Environment, Injector, NativeSidecars, Platform, mesh};
use serde_json::{Map, Value, json};

/// Ratchet: raise as the engine passes more cases (the goal is all of them).
const MIN_PASSED: usize = 194;
/// Ratchet for the built-in-template run.
const MIN_PASSED_BUILTIN: usize = 125;

/// The templates our built-in configuration provides.
const BUILTIN_TEMPLATES: [&str; 4] = ["sidecar", "gateway", "grpc-simple", "grpc-agent"];

fn vectors() -> Option<PathBuf> {
    let dir = match std::env::var_os("ISTIO_INJECT_VECTORS") {
        Some(d) => PathBuf::from(d),
        None => {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/istio-inject")
        }
    };
    if dir.join("cases.yaml").is_file() {
        Some(dir)
    } else {
        eprintln!(
            "skipping conformance: no vectors at {} (set ISTIO_INJECT_VECTORS)",
            dir.display()
        );
        None
    }
}

fn read(dir: &Path, rel: &str) -> String {
    std::fs::read_to_string(dir.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn yaml(text: &str) -> Value {
    serde_yaml_ng::from_str(text).expect("vector YAML parses")
}

/// RFC 7386 JSON merge patch.
fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = json!({});
            }
            let t = target.as_object_mut().expect("just made an object");
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

struct Resolved {
    sources: ConfigSources,
    env: Environment,
}

/// The case's configuration (README "Resolving a case").
fn resolve(dir: &Path, case: &Value, builtin_templates: bool) -> Resolved {
    let mut config = yaml(&read(dir, "config/injector-config.yaml"));
    if let Some(add) = case.get("templates_add").and_then(Value::as_object) {
        let templates = config["templates"].as_object_mut().expect("templates map");
        for (k, v) in add {
            templates.insert(k.clone(), v.clone());
        }
    }
    let mut values: Value = serde_json::from_str(&read(dir, "config/values.json")).expect("values");
    if let Some(p) = case.get("values_patch") {
        merge_patch(&mut values, p);
    }
    let mut mesh_cfg = mesh::apply(
        &mesh::defaults(),
        &mesh::parse_mapping(&read(dir, "config/mesh.yaml")).unwrap(),
    )
    .expect("mesh.yaml applies");
    if let Some(Value::Object(p)) = case.get("mesh_patch") {
        mesh_cfg = mesh::apply(&mesh_cfg, p).expect("mesh_patch applies");
    }
    let environment = yaml(&read(dir, "config/environment.yaml"));
    let e = &case["environment"];
    let native = match e["native_sidecars"].as_str() {
        Some("disabled") => NativeSidecars::Disabled,
        Some("enabled") => NativeSidecars::Enabled,
        _ => NativeSidecars::Auto {
            kubelet_versions: e["nodes"]
                .as_array()
                .or(environment["nodes_default"].as_array())
                .into_iter()
                .flatten()
                .filter_map(|n| n["kubeletVersion"].as_str().map(str::to_string))
                .collect(),
        },
    };
    let namespaces = environment["namespaces"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|ns| {
            let anns = ns["annotations"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect();
            (ns["name"].as_str().unwrap_or("").to_string(), anns)
        })
        .collect();
    let config_text = serde_yaml_ng::to_string(&config).expect("config serialises");
    Resolved {
        sources: ConfigSources {
            injector_config: if builtin_templates {
                None
            } else {
                Some(config_text)
            },
            values: Some(values.to_string()),
            mesh: Some(serde_yaml_ng::to_string(&mesh_cfg).expect("mesh serialises")),
        },
        env: Environment {
            revision: String::new(),
            native_sidecars: native,
            platform: if e["platform"] == "openshift" {
                Platform::OpenShift
            } else {
                Platform::Kubernetes
            },
            namespaces,
            compliance_policy: e["compliance_policy"].as_str().unwrap_or("").to_string(),
            ..Environment::default()
        },
    }
}

/// YAML stream → documents (`---` lines separate; empty documents dropped).
fn documents(text: &str) -> Vec<Value> {
    let mut docs = Vec::new();
    let mut cur = String::new();
    for line in text.split_inclusive('\n') {
        if line.trim_end() == "---" {
            docs.push(std::mem::take(&mut cur));
        } else {
            cur.push_str(line);
        }
    }
    docs.push(cur);
    docs.iter()
        .filter_map(|d| serde_yaml_ng::from_str::<Value>(d).ok())
        .filter(|v| !v.is_null())
        .collect()
}

/// Drops nulls and empty maps/lists recursively; canonicalises resource quantities.
fn normalize(v: &Value) -> Option<Value> {
    match v {
        Value::Null => None,
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                if let Some(mut n) = normalize(v) {
                    if (k == "limits" || k == "requests")
                        && let Value::Object(q) = &mut n
                    {
                        for qv in q.values_mut() {
                            let text = match qv {
                                Value::String(s) => s.clone(),
                                Value::Number(n) => n.to_string(),
                                _ => continue,
                            };
                            if let Some(c) = injector_engine::quantity::canonical(&text) {
                                *qv = Value::String(c);
                            }
                        }
                    }
                    out.insert(k.clone(), n);
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
        Value::Array(a) => {
            let out: Vec<Value> = a
                .iter()
                .map(|x| normalize(x).unwrap_or(Value::Null))
                .collect();
            (!out.is_empty()).then_some(Value::Array(out))
        }
        other => Some(other.clone()),
    }
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Object(m) => m.values().all(is_zero),
        _ => false,
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 160 {
        format!(
            "{}…",
            &s[..s.char_indices().nth(160).map_or(s.len(), |(i, _)| i)]
        )
    } else {
        s
    }
}

/// The first difference between two normalized values, as `path: expected X, got Y`.
fn first_difference(expected: &Value, got: &Value, path: &str) -> Option<String> {
    match (expected, got) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, av) in a {
                let p = format!("{path}/{k}");
                match b.get(k) {
                    // Go's typed encoder prints non-pointer fields at their zero value (a
                    // workload's `status.replicas: 0`); absent means the same. Containers are
                    // exempt: there pointer fields (`privileged: false`) carry meaning.
                    None if is_zero(av) && !p.contains("ontainers/") => {}
                    None => return Some(format!("{p}: expected {}, got nothing", short(av))),
                    Some(bv) => {
                        if let Some(d) = first_difference(av, bv, &p) {
                            return Some(d);
                        }
                    }
                }
            }
            b.iter()
                .find(|(k, bv)| {
                    !a.contains_key(*k)
                        && (!is_zero(bv) || format!("{path}/{k}").contains("ontainers/"))
                })
                .map(|(k, bv)| format!("{path}/{k}: expected nothing, got {}", short(bv)))
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, (av, bv)) in a.iter().zip(b).enumerate() {
                if let Some(d) = first_difference(av, bv, &format!("{path}/{i}")) {
                    return Some(d);
                }
            }
            (a.len() != b.len())
                .then(|| format!("{path}: expected {} items, got {}", a.len(), b.len()))
        }
        (a, b) if a == b => None,
        (a, b) => Some(format!("{path}: expected {}, got {}", short(a), short(b))),
    }
}

fn compare(expected: &Value, got: &Value) -> Result<(), String> {
    let (e, g) = (
        normalize(expected).unwrap_or(Value::Null),
        normalize(got).unwrap_or(Value::Null),
    );
    match first_difference(&e, &g, "") {
        None => Ok(()),
        Some(d) => Err(format!("first difference at {d}")),
    }
}

fn run_kube_inject(
    dir: &Path,
    case: &Value,
    injector: &Injector,
    env: &Environment,
) -> Result<(), String> {
    let input = read(dir, case["input"].as_str().unwrap_or_default());
    let result = inject_stream(&input, injector, env);
    if let Some(want) = case["expected_error"].as_str() {
        return match result {
            Err(e) if e.to_string().to_lowercase().contains(want) => Ok(()),
            Err(e) => Err(format!(
                "error {:?} does not contain {want:?}",
                e.to_string()
            )),
            Ok(_) => Err(format!(
                "expected an error containing {want:?}, got success"
            )),
        };
    }
    let out = result.map_err(|e| format!("kube-inject failed: {e}"))?;
    if let Some(want) = case["expected_log"].as_str()
        && !out.warnings.iter().any(|w| w.contains(want))
    {
        return Err(format!(
            "no warning contains {want:?}; warnings: {:?}",
            out.warnings
        ));
    }
    let Some(expected) = case["expected"].as_str() else {
        return Ok(());
    };
    let (want, got) = (documents(&read(dir, expected)), documents(&out.yaml));
    if want.len() != got.len() {
        return Err(format!(
            "expected {} documents, got {}",
            want.len(),
            got.len()
        ));
    }
    for (i, (w, g)) in want.iter().zip(&got).enumerate() {
        compare(w, g).map_err(|e| format!("document {}: {e}", i + 1))?;
    }
    Ok(())
}

/// The pods the webhook mode derives from a document (README table), with their namespace.
fn derive_pods(doc: &Value, out: &mut Vec<(Value, String)>) {
    let kind = doc["kind"].as_str().unwrap_or("");
    let name = doc
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let ns = doc
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let template = match kind {
        "List" => {
            for item in doc["items"].as_array().into_iter().flatten() {
                derive_pods(item, out);
            }
            return;
        }
        "Pod" => {
            out.push((doc.clone(), ns));
            return;
        }
        "CronJob" => doc.pointer("/spec/jobTemplate/spec/template"),
        "Deployment"
        | "DaemonSet"
        | "ReplicaSet"
        | "ReplicationController"
        | "StatefulSet"
        | "Job"
        | "DeploymentConfig" => doc.pointer("/spec/template"),
        _ => return,
    };
    let template = template.cloned().unwrap_or_else(|| json!({}));
    let mut meta = template
        .get("metadata")
        .cloned()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    let (gen_name, owner) = match kind {
        "Deployment" => {
            meta["labels"] = meta
                .get("labels")
                .cloned()
                .filter(Value::is_object)
                .unwrap_or_else(|| json!({}));
            meta["labels"]["pod-template-hash"] = json!("fake");
            (
                format!("{name}-fake-"),
                json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("{name}-fake"), "controller": true}),
            )
        }
        "CronJob" => (
            name.clone(),
            json!({"apiVersion": "batch/v1", "kind": "CronJob", "name": name, "controller": true}),
        ),
        _ => (
            name.clone(),
            json!({"apiVersion": doc["apiVersion"], "kind": kind, "name": name, "controller": true}),
        ),
    };
    meta["generateName"] = json!(gen_name);
    meta["ownerReferences"] = json!([owner]);
    out.push((json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template.get("spec").cloned().unwrap_or(json!({}))}), ns));
}

fn strip_for_compare(pod: &mut Value, result: bool) {
    if let Some(a) = pod
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        a.remove("sidecar.istio.io/status");
    }
    if result {
        for field in ["containers", "initContainers"] {
            for c in pod
                .pointer_mut(&format!("/spec/{field}"))
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                for e in c
                    .get_mut("env")
                    .and_then(Value::as_array_mut)
                    .into_iter()
                    .flatten()
                {
                    if let Some(f) = e
                        .pointer_mut("/valueFrom/fieldRef")
                        .and_then(Value::as_object_mut)
                    {
                        f.remove("apiVersion");
                    }
                }
            }
        }
    }
}

fn run_webhook(
    dir: &Path,
    case: &Value,
    injector: &Injector,
    env: &Environment,
) -> Result<(), String> {
    let input = documents(&read(dir, case["input"].as_str().unwrap_or_default()));
    let expected = documents(&read(
        dir,
        case["expected"].as_str().ok_or("no expected file")?,
    ));
    let (mut pods, mut want) = (Vec::new(), Vec::new());
    input.iter().for_each(|d| derive_pods(d, &mut pods));
    expected.iter().for_each(|d| derive_pods(d, &mut want));
    if pods.len() != want.len() {
        return Err(format!(
            "{} pods in the input, {} in the expected file",
            pods.len(),
            want.len()
        ));
    }
    let mut env = env.clone();
    env.revision = "default".into();
    for (i, ((pod, ns), (want_pod, _))) in pods.iter().zip(&want).enumerate() {
        let review = json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": format!("uid-{i}"),
                "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
                "requestResource": {"group": "", "version": "v1", "resource": "pods"},
                "namespace": ns,
                "operation": "CREATE",
                "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
                "object": pod,
                "oldObject": null,
                "dryRun": false,
                "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}
            }
        });
        let answer = admission::review(review.to_string().as_bytes(), injector, &env, "")
            .map_err(|e| format!("pod {}: bad review: {e}", i + 1))?;
        let rsp = admission::response_of(&answer.body).ok_or("no response")?;
        if rsp.get("uid").and_then(Value::as_str) != Some(format!("uid-{i}").as_str()) {
            return Err(format!("pod {}: uid not echoed", i + 1));
        }
        let mut got = pod.clone();
        match &answer.verdict {
            Verdict::Denied(msg) => return Err(format!("pod {}: denied: {msg}", i + 1)),
            Verdict::Skipped(_) => {}
            Verdict::Injected => {
                let b64 = rsp.get("patch").and_then(Value::as_str).ok_or("no patch")?;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|e| e.to_string())?;
                let patch: json_patch::Patch =
                    serde_json::from_slice(&bytes).map_err(|e| format!("patch: {e}"))?;
                json_patch::patch(&mut got, &patch)
                    .map_err(|e| format!("pod {}: patch does not apply: {e}", i + 1))?;
            }
        }
        let mut want_pod = want_pod.clone();
        strip_for_compare(&mut got, true);
        strip_for_compare(&mut want_pod, false);
        compare(&want_pod, &got).map_err(|e| format!("pod {}: {e}", i + 1))?;
    }
    Ok(())
}

/// Runs every selected case in its modes; returns (passed, failed).
fn replay(builtin_templates: bool, select: impl Fn(&Value) -> bool) -> Option<(usize, usize)> {
    let dir = vectors()?;
    let cases = yaml(&read(&dir, "cases.yaml"));
    let (mut passed, mut failed) = (0, 0);
    for case in cases["cases"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| select(c))
    {
        let id = case["id"].as_str().unwrap_or("?");
        let resolved = resolve(&dir, case, builtin_templates);
        let injector = Injector::load(&resolved.sources);
        for mode in case["modes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if mode == "webhook" && case.get("expected_error").is_some() {
                continue;
            }
            let result = match &injector {
                Err(e) => Err(format!(
                    "configuration does not load: {}",
                    injector_engine::chain(e)
                )),
                Ok(inj) => match mode {
                    "kube-inject" => run_kube_inject(&dir, case, inj, &resolved.env),
                    "webhook" => run_webhook(&dir, case, inj, &resolved.env),
                    other => Err(format!("unknown mode {other}")),
                },
            };
            match result {
                Ok(()) => {
                    passed += 1;
                    println!("PASS {id} [{mode}]");
                }
                Err(e) => {
                    failed += 1;
                    println!("FAIL {id} [{mode}]: {e}");
                }
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    Some((passed, failed))
}

#[test]
fn istio_golden_vectors_with_istio_configuration() {
    let Some((passed, _)) = replay(false, |_| true) else {
        return;
    };
    assert!(
        passed >= MIN_PASSED,
        "{passed} passed, fewer than the ratchet {MIN_PASSED}"
    );
}

/// Cases in the default configuration whose input asks only for templates we ship.
fn builtin_case(dir: &Path, case: &Value) -> bool {
    if case["go_config"] != "defaults" {
        return false;
    }
    let input = read(dir, case["input"].as_str().unwrap_or_default());
    input
        .lines()
        .all(|line| match line.split_once("inject.istio.io/templates:") {
            None => true,
            Some((_, list)) => list
                .trim()
                .trim_matches(['"', '\''])
                .split(',')
                .all(|t| BUILTIN_TEMPLATES.contains(&t.trim())),
        })
}

#[test]
fn istio_golden_vectors_with_our_builtin_templates() {
    let Some(dir) = vectors() else { return };
    let Some((passed, _)) = replay(true, |c| builtin_case(&dir, c)) else {
        return;
    };
    assert!(
        passed >= MIN_PASSED_BUILTIN,
        "{passed} passed, fewer than the ratchet {MIN_PASSED_BUILTIN}"
    );
}

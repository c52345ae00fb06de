//! Our built-in templates (`webhook/engine/builtin/`) against Istio's.
//!
//! The built-in configuration promises the pods a default Istio installation produces. The
//! differential tests inject many pod variants twice through the same engine, once with Istio's
//! templates (read from the conformance vectors in `shared/`) and once with ours, under the same
//! values and mesh, and require identical output. Each variant exercises something a template
//! reads: an annotation, a values setting, the native/classic layout, a template name.
//!
//! The other tests need no shared data: they check what `Injector::builtin()` gives a user who
//! passes no configuration at all.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use injector_engine::admission::{Verdict, review};
use injector_engine::kube_inject::inject_stream;
use injector_engine::{ConfigSources, Environment, Injector, NativeSidecars, Platform};
use serde_json::{Map, Value, json};

/// The templates both configurations define; Istio's other templates (waypoint, kube-gateway, …)
/// are not part of the built-in set.
const TEMPLATES: [&str; 4] = ["sidecar", "gateway", "grpc-simple", "grpc-agent"];

/// Istio's golden vectors beside the repository, or `ISTIO_INJECT_VECTORS`.
fn vectors() -> Option<PathBuf> {
    let dir = match std::env::var_os("ISTIO_INJECT_VECTORS") {
        Some(dir) => PathBuf::from(dir),
        None => {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/istio-inject")
        }
    };
    if dir.join("config/injector-config.yaml").is_file() {
        return Some(dir);
    }
    eprintln!("skipping: no Istio injection vectors at {}", dir.display());
    None
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Istio's `config` key reduced to the templates we compare, so that the comparison does not
/// depend on the engine handling Istio's other templates.
fn istio_config(dir: &Path) -> String {
    let mut config: Value =
        serde_yaml_ng::from_str(&read(&dir.join("config/injector-config.yaml")))
            .expect("Istio's injector config is YAML");
    let templates = config["templates"]
        .as_object_mut()
        .expect("Istio's injector config has templates");
    templates.retain(|name, _| TEMPLATES.contains(&name.as_str()));
    assert_eq!(
        templates.len(),
        TEMPLATES.len(),
        "Istio's config lacks one of {TEMPLATES:?}"
    );
    serde_yaml_ng::to_string(&config).expect("config serialises")
}

/// RFC 7386 JSON merge patch, `null` removing the key.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let target = target.as_object_mut().expect("made an object above");
    for (key, value) in patch {
        if value.is_null() {
            target.remove(key);
        } else {
            merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// One pod shape to inject: what it carries and the configuration around it.
#[derive(Clone)]
struct Variant {
    name: String,
    annotations: Value,
    labels: Value,
    /// Merge patch onto the vectors' values.json.
    values: Value,
    /// The pod's containers; `None` for the default app container with a named port.
    containers: Option<Value>,
    native: bool,
    /// MeshConfig keys appended to the vectors' mesh.yaml.
    mesh: &'static str,
    openshift: bool,
    compliance_policy: &'static str,
    revision: &'static str,
}

impl Variant {
    fn new(name: &str) -> Variant {
        Variant {
            name: name.to_string(),
            annotations: json!({}),
            labels: json!({}),
            values: json!({}),
            containers: None,
            native: true,
            mesh: "",
            openshift: false,
            compliance_policy: "",
            revision: "",
        }
    }
    fn ann(mut self, annotations: Value) -> Variant {
        merge_patch(&mut self.annotations, &annotations);
        self
    }
    fn labels(mut self, labels: Value) -> Variant {
        merge_patch(&mut self.labels, &labels);
        self
    }
    fn values(mut self, values: Value) -> Variant {
        merge_patch(&mut self.values, &values);
        self
    }
    fn containers(mut self, containers: Value) -> Variant {
        self.containers = Some(containers);
        self
    }
    fn classic(mut self) -> Variant {
        self.native = false;
        self
    }
    fn mesh(mut self, mesh: &'static str) -> Variant {
        self.mesh = mesh;
        self
    }
    fn openshift(mut self) -> Variant {
        self.openshift = true;
        self
    }
    fn compliance(mut self, policy: &'static str) -> Variant {
        self.compliance_policy = policy;
        self
    }
    fn revision(mut self, revision: &'static str) -> Variant {
        self.revision = revision;
        self
    }

    /// The cluster around the pod: the `store` namespace carries OpenShift's uid range.
    fn environment(&self) -> Environment {
        let mut env = environment(self.native);
        if self.openshift {
            env.platform = Platform::OpenShift;
            env.namespaces.insert(
                "store".to_string(),
                [
                    ("openshift.io/sa.scc.uid-range", "1000620000/10000"),
                    (
                        "openshift.io/sa.scc.supplemental-groups",
                        "1000620000/10000",
                    ),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            );
        }
        env.compliance_policy = self.compliance_policy.to_string();
        env.revision = self.revision.to_string();
        env
    }

    /// A Deployment whose pod template carries this variant, asking for `template`.
    fn manifest(&self, template: &str) -> String {
        let mut annotations = self.annotations.clone();
        annotations["inject.istio.io/templates"] = json!(template);
        let mut labels = json!({"app": "shop", "version": "v2"});
        merge_patch(&mut labels, &self.labels);
        let containers = self.containers.clone().unwrap_or_else(|| {
            json!([
                {"name": "shop", "image": "example/shop:1", "ports": [{"name": "http", "containerPort": 8080}]},
                {"name": "cache", "image": "example/cache:1", "ports": [{"containerPort": 6379, "protocol": "TCP"}]},
            ])
        });
        let deployment = json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "shop", "namespace": "store"},
            "spec": {
                "selector": {"matchLabels": {"app": "shop"}},
                "template": {
                    "metadata": {"labels": labels, "annotations": annotations},
                    "spec": {"containers": containers},
                },
            },
        });
        serde_yaml_ng::to_string(&deployment).expect("manifest serialises")
    }
}

/// The pod of `manifest` as the API server sends it to the webhook: an AdmissionReview for a
/// Pod created from the Deployment's template in namespace `store`.
fn admission_review(manifest: &str) -> Vec<u8> {
    let deployment: Value = serde_yaml_ng::from_str(manifest).expect("manifest is YAML");
    let template = &deployment["spec"]["template"];
    let mut metadata = template["metadata"].clone();
    metadata["generateName"] = json!("shop-7d9c6b5f4-");
    metadata["namespace"] = json!("store");
    let pod =
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"]});
    let review = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "0d7f6a3e-5c1b-4e2a-9a4f-1b2c3d4e5f60",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "store",
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": pod,
            "dryRun": false,
        },
    });
    serde_json::to_vec(&review).expect("review serialises")
}

/// The webhook's answer to `body`: its verdict and the JSON patch, decoded.
fn webhook_answer(
    body: &[u8],
    injector: &Injector,
    env: &Environment,
) -> Result<(String, Value), String> {
    let answer = review(body, injector, env, "").map_err(|e| e.to_string())?;
    let response: Value = serde_json::from_slice(&answer.body).expect("the answer is JSON");
    let patch = match response["response"]["patch"].as_str() {
        Some(b64) => serde_json::from_slice(
            &base64::engine::general_purpose::STANDARD
                .decode(b64)
                .expect("the patch is base64"),
        )
        .expect("the patch is JSON"),
        None => Value::Null,
    };
    let verdict = match answer.verdict {
        Verdict::Injected => "injected".to_string(),
        Verdict::Skipped(why) => format!("skipped: {why}"),
        Verdict::Denied(why) => format!("denied: {why}"),
    };
    Ok((verdict, patch))
}

/// Every variant the differential test injects, each with each template.
fn variants() -> Vec<Variant> {
    let cni = json!({"pilot": {"cni": {"enabled": true, "provider": "default"}}});
    let traffic = json!({
        "traffic.sidecar.istio.io/includeOutboundIPRanges": "10.0.0.0/8,172.16.0.0/12",
        "traffic.sidecar.istio.io/excludeOutboundIPRanges": "10.96.0.1/32",
        "traffic.sidecar.istio.io/includeInboundPorts": "8080,9090",
        "traffic.sidecar.istio.io/excludeInboundPorts": "9000",
        "traffic.sidecar.istio.io/includeOutboundPorts": "443",
        "traffic.sidecar.istio.io/excludeOutboundPorts": "3306,5432",
        "traffic.sidecar.istio.io/excludeInterfaces": "eth1",
        "traffic.sidecar.istio.io/kubevirtInterfaces": "net1",
    });
    let resources = json!({
        "sidecar.istio.io/proxyCPU": "250m",
        "sidecar.istio.io/proxyMemory": "256Mi",
        "sidecar.istio.io/proxyCPULimit": "1",
        "sidecar.istio.io/proxyMemoryLimit": "512Mi",
    });
    let user_volumes = json!({
        "sidecar.istio.io/userVolume": r#"{"certs":{"secret":{"secretName":"shop-certs"}},"extra":{"configMap":{"name":"extra","items":[{"key":"k","path":"p"}]}}}"#,
        "sidecar.istio.io/userVolumeMount": r#"{"certs":{"mountPath":"/etc/shop","readOnly":true},"extra":{"mountPath":"/etc/extra"}}"#,
    });
    let globals = json!({"global": {
        "imagePullPolicy": "Always",
        "logAsJson": true,
        "network": "network1",
        "meshID": "mesh1",
        "mountMtlsCerts": true,
        "imagePullSecrets": ["pull-a", "pull-b"],
        "caAddress": "ca.example:15012",
        "sts": {"servicePort": 15463},
        "nativeNftables": true,
        "multiCluster": {"clusterName": "east"},
        "proxy": {
            "outlierLogPath": "/dev/stdout",
            "privileged": true,
            "seccompProfile": {"type": "RuntimeDefault"},
            "clusterDomain": "corp.example",
        },
        "proxy_init": {"forceApplyIptables": true},
    }});
    vec![
        Variant::new("defaults"),
        Variant::new("classic sidecar").classic(),
        Variant::new("native opted out").ann(json!({"sidecar.istio.io/nativeSidecar": "false"})),
        Variant::new("native opted in on a classic cluster")
            .ann(json!({"sidecar.istio.io/nativeSidecar": "true"}))
            .classic(),
        Variant::new("interception NONE").ann(json!({"sidecar.istio.io/interceptionMode": "NONE"})),
        Variant::new("interception NONE, classic")
            .ann(json!({"sidecar.istio.io/interceptionMode": "NONE"}))
            .classic(),
        Variant::new("interception TPROXY").ann(json!({"sidecar.istio.io/interceptionMode": "TPROXY"})),
        Variant::new("interception TPROXY from proxy.istio.io/config")
            .ann(json!({"proxy.istio.io/config": "interceptionMode: TPROXY"})),
        Variant::new("TPROXY with istio-cni")
            .ann(json!({"sidecar.istio.io/interceptionMode": "TPROXY"}))
            .values(cni.clone()),
        Variant::new("NET_BIND_SERVICE").ann(json!({"sidecar.istio.io/capNetBindService": "true"})),
        Variant::new("NET_BIND_SERVICE from values")
            .values(json!({"global": {"proxy": {"capNetBindService": true}}})),
        Variant::new("all four resource annotations").ann(resources.clone()),
        Variant::new("CPU request only").ann(json!({"sidecar.istio.io/proxyCPU": "300m"})),
        Variant::new("memory limit only").ann(json!({"sidecar.istio.io/proxyMemoryLimit": "3Gi"})),
        Variant::new("values resources with nulls").values(json!({"global": {"proxy": {
            "resources": {"requests": {"cpu": null, "memory": "64Mi"}, "limits": null},
        }}})),
        Variant::new("traffic annotations").ann(traffic.clone()),
        Variant::new("traffic annotations with istio-cni")
            .ann(traffic.clone())
            .ann(json!({"istio.io/reroute-virtual-interfaces": "net2"}))
            .values(cni.clone()),
        Variant::new("traffic settings from values").values(json!({"global": {"proxy": {
            "includeIPRanges": "127.0.0.1/24,10.96.0.1/24",
            "excludeIPRanges": "10.96.0.2/24",
            "excludeInboundPorts": "4,5,6",
            "includeOutboundPorts": "80",
            "excludeOutboundPorts": "81",
        }}})),
        Variant::new("istio-cni with multus")
            .ann(json!({"k8s.v1.cni.cncf.io/networks": "alpha, beta"}))
            .values(json!({"pilot": {"cni": {"enabled": true, "provider": "multus"}}})),
        Variant::new("status port and readiness annotations").ann(json!({
            "status.sidecar.istio.io/port": "15123",
            "readiness.status.sidecar.istio.io/initialDelaySeconds": "5",
            "readiness.status.sidecar.istio.io/periodSeconds": "6",
            "readiness.status.sidecar.istio.io/failureThreshold": "7",
        })),
        Variant::new("status port 0").ann(json!({"status.sidecar.istio.io/port": "0"})),
        Variant::new("status and readiness from values").values(json!({"global": {"proxy": {
            "statusPort": 15123,
            "readinessInitialDelaySeconds": 100,
            "readinessPeriodSeconds": 200,
            "readinessFailureThreshold": 300,
        }}})),
        Variant::new("proxy lifecycle from values").values(json!({"global": {"proxy": {
            "lifecycle": {
                "preStop": {"exec": {"command": ["sleep", "5"]}},
                "postStart": {"exec": {"command": ["pilot-agent", "wait", "--timeoutSeconds=30"]}},
            },
        }}})),
        Variant::new("startup probe off")
            .values(json!({"global": {"proxy": {"startupProbe": {"enabled": false}}}})),
        Variant::new("user volumes and mounts").ann(user_volumes.clone()),
        Variant::new("proxy image annotation").ann(json!({"sidecar.istio.io/proxyImage": "mirror.example/istio/proxyv2:1.30.3"})),
        Variant::new("images from values").values(json!({"global": {
            "proxy": {"image": "mirror.example/proxy:1"},
            "proxy_init": {"image": "mirror.example/init:2"},
        }})),
        Variant::new("log levels").ann(json!({
            "sidecar.istio.io/logLevel": "debug",
            "sidecar.istio.io/componentLogLevel": "upstream:debug",
            "sidecar.istio.io/agentLogLevel": "default:debug",
        })),
        Variant::new("global values").values(globals.clone()),
        Variant::new("global values, classic, istio-cni")
            .values(globals)
            .values(cni.clone())
            .classic(),
        Variant::new("revisioned istiod")
            .values(json!({"revision": "canary", "global": {"istioNamespace": "mesh-system"}})),
        Variant::new("GKE workload certificates")
            .values(json!({"global": {"caName": "GkeWorkloadCertificate", "pilotCertProvider": "kubernetes"}})),
        Variant::new("cluster trust bundle").values(json!({
            "pilot": {"env": {"ENABLE_CLUSTER_TRUST_BUNDLE_API": true}, "crlConfigMapName": "my-crl"},
            "global": {"trustBundleName": "my-bundle"},
        })),
        Variant::new("bootstrap override").ann(json!({"sidecar.istio.io/bootstrapOverride": "my-bootstrap"})),
        Variant::new("hold application from proxy.istio.io/config")
            .ann(json!({"proxy.istio.io/config": "holdApplicationUntilProxyStarts: true"}))
            .classic(),
        Variant::new("hold application, native")
            .ann(json!({"proxy.istio.io/config": "holdApplicationUntilProxyStarts: true"})),
        Variant::new("hold application from values")
            .values(json!({"global": {"proxy": {"holdApplicationUntilProxyStarts": true}}}))
            .classic(),
        Variant::new("proxy metadata, HBONE").ann(json!({"proxy.istio.io/config":
            "proxyMetadata:\n  ISTIO_META_ENABLE_HBONE: \"true\"\n  ISTIO_META_DNS_CAPTURE: \"true\"\n"})),
        Variant::new("iptables trace logging").ann(json!({"proxy.istio.io/config":
            "proxyMetadata:\n  IPTABLES_TRACE_LOGGING: \"true\"\n"})),
        Variant::new("drain duration").ann(json!({"proxy.istio.io/config": "drainDuration: 23s"})),
        Variant::new("datadog tracer")
            .ann(json!({"apm.datadoghq.com/env": r#"{"DD_ENV":"prod","DD_SERVICE":"shop"}"#}))
            .values(json!({"global": {"proxy": {"tracer": "datadog"}}})),
        Variant::new("lightstep tracer with TLS")
            .ann(json!({"proxy.istio.io/config": "tracing:\n  tlsSettings:\n    caCertificates: /etc/lightstep/ca.pem\n"}))
            .values(json!({"global": {"proxy": {"tracer": "lightstep"}}})),
        Variant::new("canonical labels, long name").labels(json!({
            "service.istio.io/canonical-name": format!("-{}", "x".repeat(70)),
            "service.istio.io/canonical-revision": "r2",
            "security.istio.io/tlsMode": "disabled",
            "service.istio.io/workload-name": "shop-workload",
        })),
        Variant::new("kubernetes recommended labels").labels(json!({
            "app": null,
            "version": null,
            "app.kubernetes.io/name": "shop-k8s",
            "app.kubernetes.io/version": "3.1",
        })),
        Variant::new("default container chosen by the user").ann(json!({
            "kubectl.kubernetes.io/default-container": "cache",
            "kubectl.kubernetes.io/default-logs-container": "cache",
        })),
        Variant::new("user istio-proxy container").containers(json!([
            {"name": "istio-proxy", "image": "auto", "ports": [{"containerPort": 15099}]},
            {"name": "shop", "image": "example/shop:1"},
        ])),
        Variant::new("no ports").containers(json!([{"name": "shop", "image": "example/shop:1"}])),
        Variant::new("gateway security context from values")
            .values(json!({"gateways": {"securityContext": {"runAsNonRoot": true, "sysctls": [{"name": "net.ipv4.ip_local_port_range", "value": "1024 65535"}]}}})),
        Variant::new("OpenShift with istio-cni")
            .openshift()
            .values(cni.clone()),
        Variant::new("OpenShift, TPROXY, classic")
            .openshift()
            .ann(json!({"sidecar.istio.io/interceptionMode": "TPROXY"}))
            .classic(),
        Variant::new("FIPS 140-3 compliance policy").compliance("fips-140-3"),
        Variant::new("another compliance policy").compliance("pqc"),
        Variant::new("canary revision").revision("canary"),
        Variant::new("localhost inbound traffic policy")
            .mesh("inboundTrafficPolicy:\n  mode: LOCALHOST\n"),
        Variant::new("mesh listener ports")
            .mesh("proxyListenPort: 15101\nproxyInboundListenPort: 15106\n"),
        Variant::new("OpenTelemetry semantic conventions")
            .mesh("extensionProviders:\n- name: otel\n  opentelemetry:\n    service: otel-collector.observability.svc.cluster.local\n    port: 4317\n    serviceAttributeEnrichment: OTEL_SEMANTIC_CONVENTIONS\n")
            .ann(json!({
                "resource.opentelemetry.io/service.namespace": "retail",
                "resource.opentelemetry.io/service.version": "2.0",
            })),
        Variant::new("a bit of everything")
            .ann(traffic)
            .ann(resources)
            .ann(user_volumes)
            .ann(json!({"sidecar.istio.io/interceptionMode": "TPROXY", "status.sidecar.istio.io/port": "15123"}))
            .values(cni)
            .classic(),
    ]
}

/// `count` variants that each combine two to four of `singles`, picked by a fixed-seed generator
/// (the same every run): settings that look independent may not be in the templates.
fn mixtures(singles: &[Variant], count: usize) -> Vec<Variant> {
    let mut state: u64 = 0x5eed_1e55_c0ff_ee00;
    let mut next = |bound: usize| {
        // Knuth's MMIX linear congruential generator; plenty for picking test inputs.
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as usize % bound
    };
    // Extra mesh keys could clash when joined; those variants stay single.
    let pool: Vec<&Variant> = singles.iter().filter(|v| v.mesh.is_empty()).collect();
    (0..count)
        .map(|_| {
            let parts: Vec<&Variant> = (0..2 + next(3)).map(|_| pool[next(pool.len())]).collect();
            let mut mix = Variant::new(
                &parts
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(" + "),
            );
            for part in parts {
                mix = mix
                    .ann(part.annotations.clone())
                    .labels(part.labels.clone())
                    .values(part.values.clone());
                mix.containers = part.containers.clone().or(mix.containers);
                mix.native &= part.native;
                mix.openshift |= part.openshift;
                if !part.compliance_policy.is_empty() {
                    mix.compliance_policy = part.compliance_policy;
                }
                if !part.revision.is_empty() {
                    mix.revision = part.revision;
                }
            }
            mix
        })
        .collect()
}

/// Where our templates render the evident intent instead of Istio's text (builtin/README.md,
/// "How our templates differ"); the tests at the end of this file cover what we render there.
fn known_difference(variant: &Variant, template: &str) -> bool {
    let has = |name: &str| variant.annotations.get(name).is_some();
    template == "grpc-agent"
        && variant.annotations["status.sidecar.istio.io/port"] == "0"
        && has("sidecar.istio.io/userVolumeMount")
}

/// The documents of a kube-inject output, parsed.
fn documents(yaml: &str) -> Vec<Value> {
    yaml.split("\n---")
        .filter(|doc| !doc.trim().is_empty() && doc.trim() != "---")
        .map(|doc| serde_yaml_ng::from_str(doc).expect("kube-inject output is YAML"))
        .collect()
}

/// Where two JSON values first differ, as `/path: ours X, Istio's Y`.
fn first_difference(ours: &Value, istio: &Value, path: &str) -> Option<String> {
    match (ours, istio) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<_> = a.keys().chain(b.keys()).collect();
            keys.into_iter().find_map(|k| {
                let here = format!("{path}/{k}");
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => first_difference(x, y, &here),
                    (x, y) => Some(format!("{here}: ours {x:?}, Istio's {y:?}")),
                }
            })
        }
        (Value::Array(a), Value::Array(b)) => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (x, y))| first_difference(x, y, &format!("{path}/{i}")))
            .or_else(|| {
                (a.len() != b.len())
                    .then(|| format!("{path}: ours has {} items, Istio's {}", a.len(), b.len()))
            }),
        _ => (ours != istio).then(|| format!("{path}: ours {ours}, Istio's {istio}")),
    }
}

fn environment(native: bool) -> Environment {
    Environment {
        native_sidecars: if native {
            NativeSidecars::Enabled
        } else {
            NativeSidecars::Disabled
        },
        ..Environment::default()
    }
}

fn load(config: Option<String>, values: &Value, mesh: &str) -> Injector {
    Injector::load(&ConfigSources {
        injector_config: config,
        values: Some(values.to_string()),
        mesh: Some(mesh.to_string()),
    })
    .unwrap_or_else(|e| panic!("configuration does not load: {e}"))
}

#[test]
fn builtin_templates_render_the_pods_istios_templates_render() {
    let Some(dir) = vectors() else { return };
    let istio = istio_config(&dir);
    let base_values: Value = serde_json::from_str(&read(&dir.join("config/values.json")))
        .expect("the vectors' values are JSON");
    let mesh = read(&dir.join("config/mesh.yaml"));

    let (mut compared, mut failures) = (0, Vec::new());
    // Loading parses every template; variants with the same values and mesh share the result.
    let mut loaded: HashMap<(String, String), (Injector, Injector)> = HashMap::new();
    let singles = variants();
    let mixed = mixtures(&singles, 24);
    for variant in singles.into_iter().chain(mixed) {
        let mut values = base_values.clone();
        merge_patch(&mut values, &variant.values);
        let mesh = format!("{mesh}\n{}", variant.mesh);
        let (ours, theirs) = loaded
            .entry((values.to_string(), mesh.clone()))
            .or_insert_with(|| {
                (
                    load(None, &values, &mesh),
                    load(Some(istio.clone()), &values, &mesh),
                )
            });
        let (ours, theirs) = (&*ours, &*theirs);
        let env = variant.environment();
        for template in TEMPLATES {
            let case = format!("{} [{template}]", variant.name);
            if known_difference(&variant, template) {
                println!("SKIP {case}: a deliberate difference (builtin/README.md)");
                continue;
            }
            let manifest = variant.manifest(template);
            let (a, b) = (
                inject_stream(&manifest, ours, &env),
                inject_stream(&manifest, theirs, &env),
            );
            compared += 1;
            let mut difference = match (&a, &b) {
                (Ok(a), Ok(b)) => {
                    first_difference(&json!(documents(&a.yaml)), &json!(documents(&b.yaml)), "")
                }
                (Err(a), Err(b)) if a.to_string() == b.to_string() => None,
                _ => Some(format!(
                    "ours {:?}, Istio's {:?}",
                    a.as_ref().map(|_| "injected").map_err(|e| e.to_string()),
                    b.as_ref().map(|_| "injected").map_err(|e| e.to_string()),
                )),
            };
            // The webhook path as well: it alone reads the namespace (OpenShift's uid range).
            // Mixtures skip it unless they need it, to keep the test's time in check.
            if difference.is_none() && (!variant.name.contains(" + ") || variant.openshift) {
                let body = admission_review(&manifest);
                let (a, b) = (
                    webhook_answer(&body, ours, &env),
                    webhook_answer(&body, theirs, &env),
                );
                difference = match (&a, &b) {
                    (Ok(a), Ok(b)) => {
                        first_difference(&json!([a.0, a.1]), &json!([b.0, b.1]), "webhook")
                    }
                    _ => Some(format!("webhook: ours {a:?}, Istio's {b:?}")),
                };
            }
            match difference {
                None => println!("SAME {case}"),
                Some(diff) => {
                    println!("DIFF {case}: {diff}");
                    failures.push(case);
                }
            }
        }
    }
    println!(
        "{} identical, {} different",
        compared - failures.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "our templates differ from Istio's for: {failures:#?}"
    );
}

/// With the vectors' own values and mesh swapped for ours (images aside), the built-in
/// configuration injects what the default Istio configuration injects.
#[test]
fn builtin_values_and_mesh_match_istios_defaults_apart_from_images() {
    let Some(dir) = vectors() else { return };
    let mut values: Value = serde_json::from_str(&read(&dir.join("config/values.json")))
        .expect("the vectors' values are JSON");
    let ours = Injector::builtin().expect("the built-in configuration loads");
    let (hub, tag) = builtin_image();
    merge_patch(&mut values, &json!({"global": {"hub": hub, "tag": tag}}));
    let istio = load(
        Some(istio_config(&dir)),
        &values,
        &read(&dir.join("config/mesh.yaml")),
    );
    for native in [true, false] {
        let env = environment(native);
        for template in TEMPLATES {
            let manifest = Variant::new("defaults").manifest(template);
            let a = inject_stream(&manifest, &ours, &env).expect("built-in injection works");
            let b = inject_stream(&manifest, &istio, &env).expect("Istio's injection works");
            let diff = first_difference(&json!(documents(&a.yaml)), &json!(documents(&b.yaml)), "");
            assert_eq!(diff, None, "template {template}, native {native}");
        }
    }
}

/// `global.hub` and `global.tag` of our values.json.
fn builtin_image() -> (String, String) {
    let values: Value = serde_json::from_str(include_str!("../builtin/values.json"))
        .expect("builtin/values.json is JSON");
    let field = |name: &str| {
        values["global"][name]
            .as_str()
            .unwrap_or_else(|| panic!("builtin values lack global.{name}"))
            .to_string()
    };
    (field("hub"), field("tag"))
}

/// The containers of the one injected pod template in `yaml`, init containers first.
fn injected_containers(yaml: &str) -> Vec<Value> {
    let docs = documents(yaml);
    assert_eq!(docs.len(), 1, "one document in, one out");
    let spec = &docs[0]["spec"]["template"]["spec"];
    ["initContainers", "containers"]
        .iter()
        .flat_map(|key| spec[key].as_array().cloned().unwrap_or_default())
        .collect()
}

fn container<'a>(containers: &'a [Value], name: &str) -> &'a Value {
    containers
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no container {name} in {containers:#?}"))
}

#[test]
fn builtin_configuration_injects_released_istio_images() {
    let (hub, tag) = builtin_image();
    assert_eq!(hub, "docker.io/istio");
    assert!(
        tag.split('.').count() == 3 && tag.split('.').all(|n| n.parse::<u32>().is_ok()),
        "the built-in tag should pin a released version, not {tag:?}"
    );
    let injector = Injector::builtin().expect("the built-in configuration loads");
    let out = inject_stream(
        &Variant::new("plain").manifest("sidecar"),
        &injector,
        &environment(true),
    )
    .expect("a plain Deployment injects");
    let containers = injected_containers(&out.yaml);
    let image = format!("docker.io/istio/proxyv2:{tag}");
    assert_eq!(container(&containers, "istio-proxy")["image"], json!(image));
    assert_eq!(container(&containers, "istio-init")["image"], json!(image));
}

#[test]
fn builtin_sidecar_captures_traffic_and_talks_to_istiod() {
    let injector = Injector::builtin().expect("the built-in configuration loads");
    let mut manifest: Value =
        serde_yaml_ng::from_str(&Variant::new("plain").manifest("sidecar")).unwrap();
    manifest["spec"]["template"]["metadata"]["annotations"]
        .as_object_mut()
        .unwrap()
        .remove("inject.istio.io/templates");
    let manifest = serde_yaml_ng::to_string(&manifest).unwrap();

    let classic = inject_stream(&manifest, &injector, &environment(false)).expect("injects");
    let docs = documents(&classic.yaml);
    let spec = &docs[0]["spec"]["template"]["spec"];
    // Classic layout: capture first-to-last among init containers, the proxy after the app.
    assert_eq!(spec["initContainers"][0]["name"], "istio-init");
    assert_eq!(
        spec["containers"].as_array().unwrap().last().unwrap()["name"],
        "istio-proxy"
    );
    let containers = injected_containers(&classic.yaml);
    let args = container(&containers, "istio-init")["args"].clone();
    let args: Vec<&str> = args
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(
        args[..9],
        [
            "istio-iptables",
            "-p",
            "15001",
            "-z",
            "15006",
            "-u",
            "1337",
            "-m",
            "REDIRECT"
        ]
    );
    assert!(
        args.contains(&"15090,15021,15020"),
        "status port excluded from capture: {args:?}"
    );

    let proxy = container(&containers, "istio-proxy");
    let env = |name: &str| {
        proxy["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .map(|e| e["value"].clone())
    };
    assert_eq!(env("CA_ADDR"), Some(json!("istiod.istio-system.svc:15012")));
    assert_eq!(env("TRUST_DOMAIN"), Some(json!("cluster.local")));
    assert_eq!(env("ISTIO_META_APP_CONTAINERS"), Some(json!("shop,cache")));
    assert_eq!(
        env("ISTIO_META_POD_PORTS"),
        Some(json!(
            "[\n    {\"name\":\"http\",\"containerPort\":8080}\n    ,{\"containerPort\":6379,\"protocol\":\"TCP\"}\n]"
        ))
    );
    assert_eq!(proxy["securityContext"]["runAsUser"], 1337);
    assert_eq!(proxy["readinessProbe"]["httpGet"]["port"], 15021);

    // Native layout: the proxy is a restartable init container that drains on shutdown.
    let native = inject_stream(&manifest, &injector, &environment(true)).expect("injects");
    let containers = injected_containers(&native.yaml);
    let proxy = container(&containers, "istio-proxy");
    assert_eq!(proxy["restartPolicy"], "Always");
    assert_eq!(proxy["lifecycle"]["preStop"]["exec"]["command"][4], "drain");
}

#[test]
fn builtin_templates_other_than_sidecar_are_available() {
    let injector = Injector::builtin().expect("the built-in configuration loads");
    let env = environment(true);
    let inject = |template: &str| {
        let out = inject_stream(&Variant::new("plain").manifest(template), &injector, &env)
            .unwrap_or_else(|e| panic!("template {template}: {e}"));
        injected_containers(&out.yaml)
    };

    let gateway = inject("gateway");
    assert_eq!(container(&gateway, "istio-proxy")["args"][1], "router");
    assert!(
        gateway.iter().all(|c| c["name"] != "istio-init"),
        "gateways capture nothing"
    );

    let simple = inject("grpc-simple");
    assert_eq!(
        container(&simple, "grpc-bootstrap-init")["image"],
        "busybox:1.28"
    );
    assert!(
        simple.iter().all(|c| c["name"] != "istio-proxy"),
        "proxyless gRPC has no proxy"
    );

    let agent = inject("grpc-agent");
    let proxy_env = container(&agent, "istio-proxy")["env"]
        .as_array()
        .unwrap()
        .clone();
    assert!(proxy_env.contains(&json!({"name": "DISABLE_ENVOY", "value": "true"})));
    let app_env = container(&agent, "shop")["env"].as_array().unwrap().clone();
    assert!(app_env.contains(
        &json!({"name": "GRPC_XDS_BOOTSTRAP", "value": "/etc/istio/proxy/grpc-bootstrap.json"})
    ));
}

/// The built-in values with `patch` merged in, and the built-in templates and mesh.
fn builtin_with_values(patch: Value) -> Injector {
    let mut values: Value = serde_json::from_str(include_str!("../builtin/values.json"))
        .expect("builtin/values.json is JSON");
    merge_patch(&mut values, &patch);
    Injector::load(&ConfigSources {
        injector_config: None,
        values: Some(values.to_string()),
        mesh: None,
    })
    .expect("the built-in templates load with these values")
}

/// Istio's grpc-agent text puts user mounts into the agent's env when the status port is off;
/// ours keeps them mounts (README: "How our templates differ").
#[test]
fn grpc_agent_keeps_user_mounts_as_mounts_with_the_status_port_off() {
    let injector = Injector::builtin().expect("the built-in configuration loads");
    let variant = Variant::new("status port off").ann(json!({
        "status.sidecar.istio.io/port": "0",
        "sidecar.istio.io/userVolume": r#"{"certs":{"secret":{"secretName":"shop-certs"}}}"#,
        "sidecar.istio.io/userVolumeMount": r#"{"certs":{"mountPath":"/etc/shop","readOnly":true}}"#,
    }));
    let out = inject_stream(
        &variant.manifest("grpc-agent"),
        &injector,
        &environment(true),
    )
    .expect("injects");
    let containers = injected_containers(&out.yaml);
    let agent = container(&containers, "istio-proxy");
    assert_eq!(
        agent["volumeMounts"],
        json!([{"name": "certs", "mountPath": "/etc/shop", "readOnly": true}]),
        "only the user's mount: the agent's own mounts go with the status port"
    );
    assert!(
        agent.get("readinessProbe").is_none(),
        "no status port, no probe"
    );
    let env = agent["env"].as_array().expect("the agent has env");
    assert!(
        env.iter().all(|e| e["name"] != "certs"),
        "no mount in env: {env:#?}"
    );
}

/// Istio writes the annotation value `<nil>` when values lack the key; we leave it out.
#[test]
fn cni_annotations_skip_outbound_port_exclusions_missing_from_values() {
    let injector = builtin_with_values(json!({
        "pilot": {"cni": {"enabled": true}},
        "global": {"proxy": {"excludeOutboundPorts": null}},
    }));
    let out = inject_stream(
        &Variant::new("plain").manifest("sidecar"),
        &injector,
        &environment(true),
    )
    .expect("injects");
    let docs = documents(&out.yaml);
    let annotations = &docs[0]["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(
        annotations["traffic.sidecar.istio.io/excludeInboundPorts"],
        "15020"
    );
    assert!(
        annotations
            .get("traffic.sidecar.istio.io/excludeOutboundPorts")
            .is_none(),
        "{annotations:#}"
    );

    let out = inject_stream(
        &Variant::new("annotated")
            .ann(json!({"traffic.sidecar.istio.io/excludeOutboundPorts": "3306"}))
            .manifest("sidecar"),
        &injector,
        &environment(true),
    )
    .expect("injects");
    let docs = documents(&out.yaml);
    let annotations = &docs[0]["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(
        annotations["traffic.sidecar.istio.io/excludeOutboundPorts"],
        "3306"
    );
}

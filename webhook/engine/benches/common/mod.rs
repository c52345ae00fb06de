//! Pods and reviews of the shapes the benchmarks measure, built in code so every size on a
//! scale curve has the same structure and only the measured dimension changes.

use std::path::{Path, PathBuf};

use injector_engine::data::{self, Input};
use injector_engine::doc::Node;
use injector_engine::render::{self, TmplValue};
use injector_engine::{ConfigSources, Injector};
use serde_json::{Value, json};

/// A container as a Deployment template spells it: a port, `env` entries, resources, volume
/// mounts and (optionally) HTTP readiness and liveness probes plus a TCP startup probe.
pub fn container(index: usize, envs: usize, probes: bool) -> Value {
    let port = 8080 + index as i64;
    let env: Vec<Value> = (0..envs)
        .map(|k| json!({"name": format!("APP_SETTING_{k}"), "value": format!("value-{index}-{k}")}))
        .collect();
    let mut c = json!({
        "name": format!("app-{index}"),
        "image": format!("registry.example.com/shop/app-{index}:1.4.2"),
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": format!("http-{index}"), "containerPort": port, "protocol": "TCP"}],
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"cpu": "500m", "memory": "256Mi"}
        },
        "volumeMounts": [{"name": "config", "mountPath": "/etc/app", "readOnly": true}],
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File"
    });
    if envs > 0 {
        c["env"] = Value::Array(env);
    }
    if probes {
        c["readinessProbe"] = json!({
            "httpGet": {"path": "/ready", "port": port, "scheme": "HTTP"},
            "initialDelaySeconds": 2, "periodSeconds": 5, "timeoutSeconds": 1,
            "successThreshold": 1, "failureThreshold": 3
        });
        c["livenessProbe"] = json!({
            "httpGet": {"path": "/healthz", "port": port, "scheme": "HTTP"},
            "periodSeconds": 10, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3
        });
        c["startupProbe"] = json!({
            "tcpSocket": {"port": port}, "periodSeconds": 2, "failureThreshold": 30
        });
    }
    c
}

/// A pod created by a Deployment's ReplicaSet (as the API server shows it to the webhook:
/// `generateName`, no `name`, a controller owner reference).
pub fn pod(containers: usize, envs_per_container: usize, probes: bool) -> Value {
    let list: Vec<Value> = (0..containers)
        .map(|i| container(i, envs_per_container, probes))
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "web-7d4b9c6f8d-",
            "namespace": "shop",
            "labels": {"app": "web", "version": "v1", "pod-template-hash": "7d4b9c6f8d"},
            "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-11-20T10:00:00Z"},
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d4b9c6f8d",
                "uid": "5b0c8a9e-8a53-4c1e-9a57-3f1f3b9a1c2d", "controller": true,
                "blockOwnerDeletion": true
            }]
        },
        "spec": {
            "serviceAccountName": "web",
            "containers": list,
            "volumes": [{"name": "config", "configMap": {"name": "web-config"}}],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "securityContext": {}
        }
    })
}

/// The smallest pod a user writes: one container, an image, nothing else.
pub fn minimal_pod() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "hello", "namespace": "default"},
        "spec": {"containers": [{"name": "hello", "image": "nginx"}]}
    })
}

/// The AdmissionReview the API server sends for `pod` (v1, CREATE).
pub fn review(pod: &Value) -> Vec<u8> {
    let body = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "0df28fbd-5f5f-11e8-bc74-36e6bb280816",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "shop",
            "operation": "CREATE",
            "userInfo": {
                "username": "system:serviceaccount:kube-system:replicaset-controller",
                "groups": ["system:serviceaccounts", "system:authenticated"]
            },
            "object": pod,
            "oldObject": null,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
        }
    });
    serde_json::to_vec(&body).expect("JSON values serialise")
}

/// The Deployment `kubectl apply` would send through `kube-inject`, as YAML.
pub fn deployment_yaml(containers: usize, envs_per_container: usize) -> String {
    let template = pod(containers, envs_per_container, true);
    let deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": template["metadata"]["labels"].clone()},
                "spec": template["spec"].clone()
            }
        }
    });
    serde_yaml_ng::to_string(&deployment).expect("JSON values serialise as YAML")
}

/// Istio's injector ConfigMap as the conformance vectors ship it (`$ISTIO_INJECT_VECTORS/config`,
/// default `<workspace>/../shared/conformance/istio-inject/config`), or why there is none.
pub fn istio_sources() -> Result<ConfigSources, String> {
    let dir = match std::env::var_os("ISTIO_INJECT_VECTORS") {
        Some(d) => PathBuf::from(d),
        None => {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/istio-inject")
        }
    }
    .join("config");
    let read = |name: &str| {
        std::fs::read_to_string(dir.join(name)).map_err(|e| {
            format!(
                "{}: {e} (set ISTIO_INJECT_VECTORS)",
                dir.join(name).display()
            )
        })
    };
    Ok(ConfigSources {
        injector_config: Some(read("injector-config.yaml")?),
        values: Some(read("values.json")?),
        mesh: Some(read("mesh.yaml")?),
    })
}

/// A configuration with what the webhook converts once at load and shares across renders.
pub struct Loaded {
    pub injector: Injector,
    values: TmplValue,
    mesh: TmplValue,
    proxy_image: String,
}

impl Loaded {
    pub fn new(injector: Injector) -> Loaded {
        let values = render::values_value(&injector.values);
        let mesh = data::mesh_value(&injector.mesh);
        let hub = injector.values["global"]["hub"].as_str().unwrap_or("");
        let tag = injector.values["global"]["tag"].as_str().unwrap_or("");
        Loaded {
            proxy_image: format!("{hub}/proxyv2:{tag}"),
            injector,
            values,
            mesh,
        }
    }

    /// The template data input for `pod`, created by a Deployment, in webhook mode with the
    /// mesh's default ProxyConfig.
    pub fn input<'a>(&'a self, pod: &'a Node<'a>) -> Input<'a> {
        Input {
            kind: "Deployment",
            api_version: "apps/v1",
            owner_name: "web",
            owner_namespace: "shop",
            pod,
            proxy_config: &self.injector.mesh["defaultConfig"],
            mesh: &self.injector.mesh,
            mesh_value: Some(&self.mesh),
            values: &self.values,
            revision: "",
            native_sidecars: false,
            proxy_image: self.proxy_image.clone(),
            proxy_init_image: self.proxy_image.clone(),
            proxy_uid: 1337,
            proxy_gid: 1337,
            inbound_traffic_policy_mode: "passthrough",
            compliance_policy: "",
        }
    }
}

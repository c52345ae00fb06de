//! JSON spelled the way Go's `encoding/json` spells Kubernetes structs: fields in struct
//! declaration order, empty `omitempty` fields dropped, `resources: {}` always present on a
//! container. Istio compares the JSON it stores in annotations and env vars as strings, so
//! the order is observable.

use serde_json::{Map, Value};

/// The Kubernetes struct a JSON object is, for ordering its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoType {
    Container,
    ContainerPort,
    EnvVar,
    EnvVarSource,
    ObjectFieldSelector,
    ResourceFieldSelector,
    VolumeMount,
    Resources,
    Probe,
    Lifecycle,
    LifecycleHandler,
    ExecAction,
    HttpGet,
    HttpHeader,
    TcpSocket,
    Grpc,
    SecurityContext,
    Capabilities,
    /// A type we do not model: keys sorted, as Go prints maps.
    Map,
}

fn fields(t: GoType) -> &'static [(&'static str, GoType)] {
    use GoType::*;
    match t {
        Container => &[
            ("name", Map),
            ("image", Map),
            ("command", Map),
            ("args", Map),
            ("workingDir", Map),
            ("ports", ContainerPort),
            ("envFrom", Map),
            ("env", EnvVar),
            ("resources", Resources),
            ("resizePolicy", Map),
            ("restartPolicy", Map),
            ("restartPolicyRules", Map),
            ("volumeMounts", VolumeMount),
            ("volumeDevices", Map),
            ("livenessProbe", Probe),
            ("readinessProbe", Probe),
            ("startupProbe", Probe),
            ("lifecycle", Lifecycle),
            ("terminationMessagePath", Map),
            ("terminationMessagePolicy", Map),
            ("imagePullPolicy", Map),
            ("securityContext", SecurityContext),
            ("stdin", Map),
            ("stdinOnce", Map),
            ("tty", Map),
        ],
        ContainerPort => &[
            ("name", Map),
            ("hostPort", Map),
            ("containerPort", Map),
            ("protocol", Map),
            ("hostIP", Map),
        ],
        EnvVar => &[("name", Map), ("value", Map), ("valueFrom", EnvVarSource)],
        EnvVarSource => &[
            ("fieldRef", ObjectFieldSelector),
            ("resourceFieldRef", ResourceFieldSelector),
            ("configMapKeyRef", Map),
            ("secretKeyRef", Map),
            ("fileKeyRef", Map),
        ],
        ObjectFieldSelector => &[("apiVersion", Map), ("fieldPath", Map)],
        ResourceFieldSelector => &[("containerName", Map), ("resource", Map), ("divisor", Map)],
        VolumeMount => &[
            ("name", Map),
            ("readOnly", Map),
            ("recursiveReadOnly", Map),
            ("mountPath", Map),
            ("subPath", Map),
            ("mountPropagation", Map),
            ("subPathExpr", Map),
        ],
        Resources => &[("limits", Map), ("requests", Map), ("claims", Map)],
        Probe => &[
            ("exec", ExecAction),
            ("httpGet", HttpGet),
            ("tcpSocket", TcpSocket),
            ("grpc", Grpc),
            ("initialDelaySeconds", Map),
            ("timeoutSeconds", Map),
            ("periodSeconds", Map),
            ("successThreshold", Map),
            ("failureThreshold", Map),
            ("terminationGracePeriodSeconds", Map),
        ],
        Lifecycle => &[
            ("postStart", LifecycleHandler),
            ("preStop", LifecycleHandler),
            ("stopSignal", Map),
        ],
        LifecycleHandler => &[
            ("exec", ExecAction),
            ("httpGet", HttpGet),
            ("tcpSocket", TcpSocket),
            ("sleep", Map),
        ],
        ExecAction => &[("command", Map)],
        HttpGet => &[
            ("path", Map),
            ("port", Map),
            ("host", Map),
            ("scheme", Map),
            ("httpHeaders", HttpHeader),
        ],
        HttpHeader => &[("name", Map), ("value", Map)],
        TcpSocket => &[("port", Map), ("host", Map)],
        Grpc => &[("port", Map), ("service", Map)],
        SecurityContext => &[
            ("capabilities", Capabilities),
            ("privileged", Map),
            ("seLinuxOptions", Map),
            ("windowsOptions", Map),
            ("runAsUser", Map),
            ("runAsGroup", Map),
            ("runAsNonRoot", Map),
            ("readOnlyRootFilesystem", Map),
            ("allowPrivilegeEscalation", Map),
            ("procMount", Map),
            ("seccompProfile", Map),
            ("appArmorProfile", Map),
        ],
        Capabilities => &[("add", Map), ("drop", Map)],
        Map => &[],
    }
}

/// Omitted by Go when empty: strings, zero numbers, false, empty lists and maps (pointer
/// fields are not modelled: a `false`/`0` pointer is kept only where the key is listed as
/// pointer-like below).
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

/// Fields that are pointers (or non-omitempty) in Kubernetes' Go types: zero values print.
const POINTER_FIELDS: &[&str] = &[
    "runAsUser",
    "runAsGroup",
    "runAsNonRoot",
    "privileged",
    "readOnlyRootFilesystem",
    "allowPrivilegeEscalation",
    "terminationGracePeriodSeconds",
    "containerPort",
    "port",
];

/// Orders (and prunes) `v` as Go would print a value of type `t`.
pub fn order(v: &Value, t: GoType) -> Value {
    match v {
        Value::Array(items) => Value::Array(items.iter().map(|i| order(i, t)).collect()),
        Value::Object(obj) if t != GoType::Map => {
            let mut out = Map::new();
            let known = fields(t);
            for (name, child) in known {
                match obj.get(*name) {
                    Some(fv) => {
                        let zero = matches!(fv, Value::Number(n) if n.as_f64() == Some(0.0))
                            || fv == &Value::Bool(false);
                        if is_empty(fv) || (zero && !POINTER_FIELDS.contains(name)) {
                            if *name == "resources" {
                                out.insert("resources".into(), Value::Object(Map::new()));
                            }
                            continue;
                        }
                        out.insert(name.to_string(), order(fv, *child));
                    }
                    // A struct, not a pointer: Go always prints a container's resources.
                    None if *name == "resources" => {
                        out.insert("resources".into(), Value::Object(Map::new()));
                    }
                    None => {}
                }
            }
            let mut rest: Vec<(&String, &Value)> = obj
                .iter()
                .filter(|(k, fv)| !known.iter().any(|(n, _)| n == k) && !is_empty(fv))
                .collect();
            rest.sort_by(|a, b| a.0.cmp(b.0));
            for (k, fv) in rest {
                out.insert(k.clone(), order(fv, GoType::Map));
            }
            Value::Object(out)
        }
        Value::Object(obj) => {
            let mut keys: Vec<&String> = obj.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), order(&obj[k], GoType::Map)))
                    .collect(),
            )
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn containers_print_in_go_field_order_with_resources() {
        let c = json!({"readinessProbe": {"httpGet": {"port": 80}}, "image": "i", "name": "n"});
        assert_eq!(
            order(&c, GoType::Container).to_string(),
            r#"{"name":"n","image":"i","resources":{},"readinessProbe":{"httpGet":{"port":80}}}"#
        );
        let c = json!({"securityContext": {"runAsGroup": 4321, "runAsUser": 1234}, "name": "istio-proxy"});
        assert_eq!(
            order(&c, GoType::Container).to_string(),
            r#"{"name":"istio-proxy","resources":{},"securityContext":{"runAsUser":1234,"runAsGroup":4321}}"#
        );
    }

    #[test]
    fn ports_print_like_go() {
        let p = json!({"containerPort": 80, "name": "http", "protocol": ""});
        assert_eq!(
            order(&p, GoType::ContainerPort).to_string(),
            r#"{"name":"http","containerPort":80}"#
        );
    }
}

//! JSON spelled the way Go's `encoding/json` spells Kubernetes structs: fields in struct
//! declaration order, empty `omitempty` fields dropped, `resources: {}` always present on a
//! container. Istio compares the JSON it stores in annotations and env vars as strings, so
//! the order is observable.

use gotmpl::{Json, JsonKind};

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
    /// A struct the program built itself in Go field order (say, the Prometheus scrape
    /// configuration): members print as they stand, all of them.
    Ordered,
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
        Map | Ordered => &[],
    }
}

/// Omitted by Go when empty: strings, zero numbers, false, empty lists and maps (pointer
/// fields are not modelled: a `false`/`0` pointer is kept only where the key is listed as
/// pointer-like below).
fn is_empty<J: Json>(v: &J) -> bool {
    match v.kind() {
        JsonKind::Null => true,
        JsonKind::String(s) => s.is_empty(),
        JsonKind::Array(a) => a.is_empty(),
        JsonKind::Object => v.members().next().is_none(),
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

/// `v` as Go's `encoding/json` prints a value of type `t`: struct fields in declaration order
/// (empty `omitempty` ones dropped), then fields we do not model and map keys, sorted. `v` is
/// a `serde_json::Value` or the pod's own tree.
pub fn to_string<J: Json>(v: &J, t: GoType) -> String {
    let mut out = Vec::new();
    write(v, t, &mut out);
    String::from_utf8(out).expect("JSON text is UTF-8")
}

/// [`to_string`], appended to `out`.
pub fn write<J: Json>(v: &J, t: GoType, out: &mut Vec<u8>) {
    match v.kind() {
        JsonKind::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(item, t, out);
            }
            out.push(b']');
        }
        JsonKind::Object if t == GoType::Ordered => {
            let mut object = Object::open(out);
            for (k, fv) in v.members() {
                object.key(k);
                write(fv, t, object.out);
            }
            object.close();
        }
        JsonKind::Object if t != GoType::Map => {
            let mut object = Object::open(out);
            let known = fields(t);
            for (name, child) in known {
                match v.members().find(|(k, _)| k == name) {
                    Some((_, fv)) if !omitted(name, fv) => {
                        object.key(name);
                        write(fv, *child, object.out);
                    }
                    // A struct, not a pointer: Go always prints a container's resources.
                    _ if *name == "resources" => {
                        object.key(name);
                        object.out.extend_from_slice(b"{}");
                    }
                    _ => {}
                }
            }
            let mut rest: Vec<(&str, &J)> = v
                .members()
                .filter(|(k, fv)| !known.iter().any(|(n, _)| n == k) && !is_empty(*fv))
                .collect();
            rest.sort_unstable_by(|a, b| a.0.cmp(b.0));
            for (k, fv) in rest {
                object.key(k);
                write(fv, GoType::Map, object.out);
            }
            object.close();
        }
        JsonKind::Object => {
            let mut entries: Vec<(&str, &J)> = v.members().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            let mut object = Object::open(out);
            for (k, fv) in entries {
                object.key(k);
                write(fv, GoType::Map, object.out);
            }
            object.close();
        }
        // Strings as `json.Marshal` escapes them (`<`, `>`, `&` included); numbers as
        // serde_json spells them, which is Go's spelling for the integers pods carry.
        JsonKind::String(s) => gotmpl::json::write_string(out, s, true),
        JsonKind::Number(n) => serde_json::to_writer(out, n).expect("a number serialises"),
        JsonKind::Bool(true) => out.extend_from_slice(b"true"),
        JsonKind::Bool(false) => out.extend_from_slice(b"false"),
        JsonKind::Null => out.extend_from_slice(b"null"),
    }
}

/// Whether Go leaves field `name` holding `v` out: empty, or a zero that is not a pointer.
fn omitted<J: Json>(name: &str, v: &J) -> bool {
    let zero = match v.kind() {
        JsonKind::Number(n) => n.as_f64() == Some(0.0),
        JsonKind::Bool(b) => !b,
        _ => false,
    };
    is_empty(v) || (zero && !zero_prints(name))
}

/// The JSON names of struct `t`'s fields, in the order Go prints them.
pub fn field_names(t: GoType) -> impl Iterator<Item = &'static str> {
    fields(t).iter().map(|(name, _)| *name)
}

/// Whether a zero number or `false` in field `name` still prints (a pointer or a field without
/// `omitempty`); other zero values are left out.
pub fn zero_prints(name: &str) -> bool {
    POINTER_FIELDS.contains(&name)
}

/// A JSON object being written: the commas between members and the closing brace.
pub struct Object<'a> {
    pub out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Object<'a> {
    pub fn open(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Object { out, first: true }
    }

    /// Writes the separator and `"key":`; the caller writes the value.
    pub fn key(&mut self, key: &str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        gotmpl::json::write_string(&mut *self.out, key, true);
        self.out.push(b':');
    }

    /// Whether no member has been written yet.
    pub fn is_empty(&self) -> bool {
        self.first
    }

    pub fn close(self) {
        self.out.push(b'}');
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
            to_string(&c, GoType::Container),
            r#"{"name":"n","image":"i","resources":{},"readinessProbe":{"httpGet":{"port":80}}}"#
        );
        let c = json!({"securityContext": {"runAsGroup": 4321, "runAsUser": 1234}, "name": "istio-proxy"});
        assert_eq!(
            to_string(&c, GoType::Container),
            r#"{"name":"istio-proxy","resources":{},"securityContext":{"runAsUser":1234,"runAsGroup":4321}}"#
        );
    }

    #[test]
    fn ports_print_like_go() {
        let p = json!({"containerPort": 80, "name": "http", "protocol": ""});
        assert_eq!(
            to_string(&p, GoType::ContainerPort),
            r#"{"name":"http","containerPort":80}"#
        );
    }
}

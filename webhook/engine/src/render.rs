//! Running the injection templates: Go `text/template` (the `gotmpl` crate) over the
//! `SidecarTemplateData`, then the rendered YAML read back as a partial Pod in the shape a typed
//! `corev1.Pod` round trip gives it (nulls and zero-valued `omitempty` fields gone, quantities
//! canonical).

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use serde_json::Value;

use crate::doc::{Members, Node};

/// The template engine's value type.
pub type TmplValue = gotmpl::Value;

impl From<gotmpl::Error> for RenderError {
    fn from(e: gotmpl::Error) -> Self {
        RenderError::Template(Box::new(e))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(transparent)]
    Template(Box<gotmpl::Error>),
    #[error("the rendered template is not valid YAML")]
    Yaml(#[source] serde_yaml_ng::Error),
    #[error("the rendered template is not a mapping (a partial Pod)")]
    NotAMapping,
}

/// The functions every template may call: Go's, sprig's, and Istio's (which win).
fn funcs() -> &'static gotmpl::Funcs {
    static FUNCS: OnceLock<gotmpl::Funcs> = OnceLock::new();
    FUNCS.get_or_init(|| {
        let mut f = gotmpl::Funcs::builtin();
        crate::funcs::register(&mut f);
        f
    })
}

/// One parsed template of the injector config.
pub struct Template {
    pub name: String,
    parsed: gotmpl::Template,
}

impl std::fmt::Debug for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Template")
            .field("name", &self.name)
            .finish()
    }
}

impl Template {
    pub fn parse(name: &str, text: &str) -> Result<Template, RenderError> {
        Ok(Template {
            name: name.to_string(),
            parsed: gotmpl::Template::parse(name, text, funcs())?,
        })
    }

    /// Executes the template and reads its output as a partial Pod, whose strings borrow the
    /// output kept in `texts`.
    pub fn render<'t>(
        &self,
        data: &TmplValue,
        vars: &Arc<BTreeMap<String, String>>,
        texts: &'t Texts,
    ) -> Result<Node<'t>, RenderError> {
        read_partial_pod(texts.keep(self.execute(data, vars)?))
    }

    /// The template's output text, before it is read as YAML.
    pub fn execute(
        &self,
        data: &TmplValue,
        vars: &Arc<BTreeMap<String, String>>,
    ) -> Result<String, RenderError> {
        Ok(crate::funcs::with_env(vars.clone(), || {
            self.parsed.execute(data)
        })?)
    }
}

/// The rendered texts of one injection, kept while the pods built from them borrow their
/// strings (most of a rendered sidecar's keys and values are never copied). Append-only.
#[derive(Default)]
pub struct Texts {
    text: OnceCell<String>,
    next: OnceCell<Box<Texts>>,
}

impl Texts {
    /// Keeps `text` for as long as `self` lives.
    pub fn keep(&self, mut text: String) -> &str {
        let mut slot = self;
        loop {
            match slot.text.set(text) {
                Ok(()) => return slot.text.get().map_or("", String::as_str),
                Err(back) => text = back,
            }
            slot = slot.next.get_or_init(Box::default);
        }
    }
}

/// Reads a template's output as a partial Pod, typed like a `corev1.Pod` round trip.
pub fn read_partial_pod(text: &str) -> Result<Node<'_>, RenderError> {
    let mut pod = if text.trim().is_empty() {
        Node::object()
    } else {
        read_yaml(text)?
    };
    if pod.is_null() {
        pod = Node::object();
    }
    if !pod.is_object() {
        return Err(RenderError::NotAMapping);
    }
    typed_pod(&mut pod);
    Ok(pod)
}

/// Drops and canonicalises what a `corev1.Pod` round trip would in an untyped partial Pod.
pub fn typed_pod(pod: &mut Node<'_>) {
    typed(pod, Ctx::Pod);
}

/// Reads rendered YAML: the fast subset reader when it can, `serde_yaml_ng` otherwise. Debug
/// builds check the two agree, so every test run is also a differential test of the fast path.
fn read_yaml(text: &str) -> Result<Node<'_>, RenderError> {
    match crate::yaml::parse(text) {
        Some(v) => {
            #[cfg(debug_assertions)]
            {
                let full: Result<Value, _> = serde_yaml_ng::from_str(text);
                if let Ok(full) = full {
                    assert!(v.eq_value(&full), "fast YAML reader disagrees on:\n{text}");
                }
            }
            Ok(v)
        }
        None => serde_yaml_ng::from_str(text)
            .map(Node::from_value)
            .map_err(RenderError::Yaml),
    }
}

/// Converts `.Values` once at load: Go decodes the values JSON into `map[string]any`.
pub fn values_value(values: &Value) -> TmplValue {
    gotmpl::Value::from_json(values)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Pod,
    Meta,
    /// A map whose keys are data (labels, annotations, resource lists, …).
    Data,
    Container,
    Resources,
    Probe,
    VolumeMount,
    Spec,
    Struct,
}

/// Non-pointer `omitempty` numbers and booleans of the pod types: Go drops their zero values.
fn zero_dropped(ctx: Ctx, key: &str) -> bool {
    match ctx {
        Ctx::Probe => matches!(
            key,
            "initialDelaySeconds"
                | "timeoutSeconds"
                | "periodSeconds"
                | "successThreshold"
                | "failureThreshold"
        ),
        Ctx::VolumeMount => key == "readOnly",
        Ctx::Container => matches!(key, "stdin" | "stdinOnce" | "tty"),
        Ctx::Spec => matches!(key, "hostNetwork" | "hostPID" | "hostIPC"),
        Ctx::Struct => key == "hostPort",
        _ => false,
    }
}

fn child_ctx(ctx: Ctx, key: &str) -> Ctx {
    match (ctx, key) {
        (Ctx::Pod, "metadata") => Ctx::Meta,
        (Ctx::Pod, "spec") => Ctx::Spec,
        (Ctx::Meta, "labels" | "annotations") => Ctx::Data,
        (Ctx::Spec, "containers" | "initContainers" | "ephemeralContainers") => Ctx::Container,
        (Ctx::Spec, "nodeSelector" | "overhead") => Ctx::Data,
        (Ctx::Spec, "resources") | (Ctx::Container, "resources") => Ctx::Resources,
        (Ctx::Resources, "limits" | "requests") => Ctx::Data,
        (Ctx::Container, "livenessProbe" | "readinessProbe" | "startupProbe") => Ctx::Probe,
        (Ctx::Container, "volumeMounts") => Ctx::VolumeMount,
        (_, "matchLabels" | "volumeAttributes" | "data") => Ctx::Data,
        _ => Ctx::Struct,
    }
}

/// Removes the members `dropped` picks. Rendered objects rarely hold any: look before moving.
fn drop_members(m: &mut Members<'_>, dropped: impl Fn(&str, &Node<'_>) -> bool) {
    if m.iter().any(|(k, v)| dropped(k, v)) {
        m.retain(|k, v| !dropped(k, v));
    }
}

/// Mimics decoding into `corev1.Pod` and encoding again.
fn typed(v: &mut Node<'_>, ctx: Ctx) {
    match v {
        Node::Object(m) if ctx == Ctx::Data => drop_members(m, |_, v| v.is_null()),
        Node::Object(m) => {
            drop_members(m, |k, v| match v {
                Node::Null => true,
                Node::String(s) => s.is_empty() && !k.starts_with('$'),
                Node::Number(n) => n.as_f64() == Some(0.0) && zero_dropped(ctx, k),
                Node::Bool(b) => !*b && zero_dropped(ctx, k),
                _ => false,
            });
            for (k, child) in m.iter_mut() {
                // Only collections have anything below them to drop.
                if matches!(child, Node::Object(_) | Node::Array(_)) {
                    typed(child, child_ctx(ctx, k));
                }
            }
            if ctx == Ctx::Resources {
                crate::quantity::canonicalize_resources(v);
            }
        }
        Node::Array(items) => {
            for item in items {
                if matches!(item, Node::Object(_) | Node::Array(_)) {
                    typed(item, ctx);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{self, Input};
    use serde_json::json;

    fn render(template: &str, pod: &Value, proxy_config: &Value) -> Result<Value, RenderError> {
        let values = values_value(&json!({"global": {"proxy": {"statusPort": 15020}}}));
        let mesh = crate::mesh::defaults();
        let input = Input {
            kind: "Deployment",
            api_version: "apps/v1",
            owner_name: "web",
            owner_namespace: "ns",
            pod: &Node::view(pod),
            proxy_config,
            mesh: &mesh,
            mesh_value: None,
            values: &values,
            revision: "",
            native_sidecars: false,
            proxy_image: "hub/proxyv2:1".into(),
            proxy_init_image: "hub/proxyv2:1".into(),
            proxy_uid: 1337,
            proxy_gid: 1337,
            inbound_traffic_policy_mode: "passthrough",
            compliance_policy: "",
        };
        Template::parse("t", template)?
            .render(
                &data::build(&input),
                &Arc::new(BTreeMap::new()),
                &Texts::default(),
            )
            .map(|pod| pod.to_value())
    }

    #[test]
    fn templates_see_istio_data_with_go_zero_values() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "app", "ports": [{"containerPort": 80, "name": "http"}]}]}});
        let out = render(
            r#"metadata:
  annotations:
    mode: {{ annotation .ObjectMeta `sidecar.istio.io/interceptionMode` .ProxyConfig.InterceptionMode | quote }}
    missing: "{{ index .ObjectMeta.Annotations `nope` }}"
    owner: "{{ .TypeMeta.Kind }}/{{ .DeploymentMeta.Name }}"
    ports: '{{ range .Spec.Containers }}{{ range .Ports }}{{ structToJSON . }}{{ end }}{{ end }}'
    status: "{{ excludeInboundPort .Values.global.proxy.statusPort `` }}"
    hold: "{{ .ProxyConfig.HoldApplicationUntilProxyStarts.GetValue }}"
    sa: "istio.{{ .Spec.ServiceAccountName }}"
"#,
            &pod,
            &json!({}),
        )
        .unwrap();
        let anns = &out["metadata"]["annotations"];
        assert_eq!(anns["mode"], "REDIRECT");
        assert_eq!(anns["missing"], "");
        assert_eq!(anns["owner"], "Deployment/web");
        assert_eq!(anns["ports"], r#"{"name":"http","containerPort":80}"#);
        assert_eq!(anns["status"], "15020");
        assert_eq!(anns["hold"], "<no value>");
        assert_eq!(anns["sa"], "istio.");
    }

    #[test]
    fn json_functions_escape_strings_as_go_marshal_does() {
        let pod = json!({"metadata": {"annotations": {"link": "https://x/?a=1&b=<2>"}}});
        let out = render(
            r#"metadata:
  annotations:
    json: '{{ toJSON .ObjectMeta.Annotations }}'
    map: '{{ toJsonMap .ObjectMeta.Annotations (dict "k" "v") }}'
"#,
            &pod,
            &json!({}),
        )
        .unwrap();
        let anns = &out["metadata"]["annotations"];
        assert_eq!(
            anns["json"],
            r#"{"link":"https://x/?a=1\u0026b=\u003c2\u003e"}"#
        );
        assert_eq!(
            anns["map"],
            r#"{"k":"v","link":"https://x/?a=1\u0026b=\u003c2\u003e"}"#
        );
    }

    #[test]
    fn proto_to_json_prints_only_what_differs_from_istio_defaults() {
        let pc = crate::mesh::merge_proxy_config(
            Some(&crate::mesh::defaults()["defaultConfig"]),
            &json!({"holdApplicationUntilProxyStarts": true}),
        );
        let out = render(
            "metadata:\n  annotations:\n    pc: '{{ protoToJSON .ProxyConfig }}'\n",
            &json!({}),
            &pc,
        )
        .unwrap();
        assert_eq!(
            out["metadata"]["annotations"]["pc"],
            r#"{"holdApplicationUntilProxyStarts":true}"#
        );
    }

    #[test]
    fn rendered_pods_look_like_typed_pods() {
        let out = render(
            r#"spec:
  containers:
  - name: istio-proxy
    env:
    - name: EMPTY
      value: ""
    readinessProbe:
      initialDelaySeconds: 0
      periodSeconds: 15
    resources:
      limits: {cpu: 2000m, memory: 1024Mi}
    volumeMounts:
    - name: v
      mountPath: /v
      readOnly: false
  volumes:
  - emptyDir:
    name: v
"#,
            &json!({}),
            &json!({}),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"spec": {
                "containers": [{
                    "name": "istio-proxy",
                    "env": [{"name": "EMPTY"}],
                    "readinessProbe": {"periodSeconds": 15},
                    "resources": {"limits": {"cpu": "2", "memory": "1Gi"}},
                    "volumeMounts": [{"name": "v", "mountPath": "/v"}]
                }],
                "volumes": [{"name": "v"}]
            }})
        );
    }

    #[test]
    fn errors_name_the_template_and_the_problem() {
        let err = Template::parse("custom", "{{ frobnicate . }}").unwrap_err();
        assert!(err.to_string().contains("custom"), "{err}");
        assert!(err.to_string().contains("frobnicate"), "{err}");
        let err = render("a: {{ .NoSuchField }}", &json!({}), &json!({})).unwrap_err();
        assert!(err.to_string().contains("NoSuchField"), "{err}");
        let err = render("- just a list", &json!({}), &json!({})).unwrap_err();
        assert!(matches!(err, RenderError::NotAMapping));
    }
}

//! `sidecar-injector certs`: a CA and a serving certificate for the webhook, the Secret that
//! carries them, and the CA bundle patched into a MutatingWebhookConfiguration.
//!
//! The API server calls the webhook through its Service, so the serving certificate names
//! `<service>`, `<service>.<namespace>`, `<service>.<namespace>.svc` and the cluster-local
//! name; the MutatingWebhookConfiguration's `caBundle` is the CA that signed it.

use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

#[derive(Debug, clap::Args)]
pub struct CertsArgs {
    /// Name of the webhook's Service.
    #[arg(long, default_value = "sidecar-injector")]
    pub service: String,
    /// Namespace of the Service and of the Secret.
    #[arg(long, default_value = "sidecar-injector")]
    pub namespace: String,
    /// The cluster's DNS domain, for the `<service>.<namespace>.svc.<domain>` name.
    #[arg(long, default_value = "cluster.local")]
    pub cluster_domain: String,
    /// More DNS names or IP addresses for the serving certificate (`localhost`, `127.0.0.1`
    /// to run the webhook outside the cluster). Repeat or separate with commas.
    #[arg(long = "extra-san", value_delimiter = ',', value_name = "NAME|IP")]
    pub extra_sans: Vec<String>,
    /// Directory to write `ca.crt`, `ca.key`, `tls.crt`, `tls.key` and `secret.yaml` into.
    #[arg(long, short = 'o', default_value = "certs/out", value_name = "DIR")]
    pub out_dir: PathBuf,
    /// Name of the `kubernetes.io/tls` Secret in `secret.yaml`.
    #[arg(long, default_value = "sidecar-injector-tls")]
    pub secret_name: String,
    /// Days the serving certificate is valid.
    #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..))]
    pub validity_days: u32,
    /// Days a new CA is valid.
    #[arg(long, default_value_t = 3650, value_parser = clap::value_parser!(u32).range(1..))]
    pub ca_validity_days: u32,
    /// Sign with this existing CA certificate instead of creating a CA, so a renewed serving
    /// certificate needs no new caBundle (needs --ca-key).
    #[arg(long, value_name = "FILE", requires = "ca_key")]
    pub ca_cert: Option<PathBuf>,
    /// Private key of --ca-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "ca_cert")]
    pub ca_key: Option<PathBuf>,
    /// MutatingWebhookConfiguration YAML whose webhooks get `clientConfig.caBundle`; edited in
    /// place (comments and layout kept) unless --webhook-config-out is given.
    #[arg(long, value_name = "FILE")]
    pub webhook_config: Option<PathBuf>,
    /// Where to write the patched --webhook-config instead of editing it in place.
    #[arg(long, value_name = "FILE", requires = "webhook_config")]
    pub webhook_config_out: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    #[error("cannot generate the {what}")]
    Generate {
        what: &'static str,
        #[source]
        source: rcgen::Error,
    },
    #[error("cannot use the CA in {cert} and {key}")]
    BadCa {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        source: rcgen::Error,
    },
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0:?} is not a valid DNS name for a certificate")]
    BadName(String),
    #[error("{path} has no `clientConfig:` to put a caBundle under")]
    NoWebhooks { path: PathBuf },
    #[error("the patched {path} does not parse as YAML")]
    PatchedYaml {
        path: PathBuf,
        #[source]
        source: serde_yaml_ng::Error,
    },
    #[error("the patched {path} still has a webhook without our caBundle; edit it by hand")]
    PatchIncomplete { path: PathBuf },
}

/// PEM texts of a CA and of a serving certificate it signed.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub ca_cert: String,
    pub ca_key: String,
    pub tls_cert: String,
    pub tls_key: String,
}

pub fn run(args: CertsArgs) -> anyhow::Result<()> {
    let CertsArgs {
        service,
        namespace,
        cluster_domain,
        extra_sans,
        out_dir,
        secret_name,
        validity_days,
        ca_validity_days,
        ca_cert,
        ca_key,
        webhook_config,
        webhook_config_out,
    } = args;
    let names = service_names(&service, &namespace, &cluster_domain, &extra_sans);
    let ca = match (ca_cert, ca_key) {
        (Some(cert), Some(key)) => Ca::Existing {
            cert_pem: read(&cert)?,
            key_pem: read(&key)?,
            cert,
            key,
        },
        _ => Ca::New {
            validity_days: ca_validity_days,
        },
    };
    let bundle = generate(&ca, &names, validity_days)?;

    std::fs::create_dir_all(&out_dir).map_err(io_at(&out_dir))?;
    write(&out_dir.join("ca.crt"), &bundle.ca_cert, false)?;
    if matches!(ca, Ca::New { .. }) {
        write(&out_dir.join("ca.key"), &bundle.ca_key, true)?;
    }
    write(&out_dir.join("tls.crt"), &bundle.tls_cert, false)?;
    write(&out_dir.join("tls.key"), &bundle.tls_key, true)?;
    let secret = secret_manifest(&secret_name, &namespace, &bundle);
    write(&out_dir.join("secret.yaml"), &secret, true)?;
    eprintln!(
        "wrote {dir}/{{ca.crt,tls.crt,tls.key,secret.yaml}} for {names}",
        dir = out_dir.display(),
        names = names.join(", ")
    );

    if let Some(input) = webhook_config {
        let text = read(&input)?;
        let output = webhook_config_out.unwrap_or_else(|| input.clone());
        let patched = patch_ca_bundle(&text, &ca_bundle(&bundle.ca_cert), &input)?;
        write(&output, &patched, false)?;
        eprintln!("patched caBundle into {}", output.display());
    }
    Ok(())
}

/// Where the CA comes from.
#[derive(Debug)]
pub enum Ca {
    New {
        validity_days: u32,
    },
    Existing {
        cert_pem: String,
        key_pem: String,
        cert: PathBuf,
        key: PathBuf,
    },
}

/// The names the API server may use to reach the Service, then the extra ones.
pub fn service_names(
    service: &str,
    namespace: &str,
    domain: &str,
    extra: &[String],
) -> Vec<String> {
    let mut names = vec![
        service.to_owned(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.{domain}"),
    ];
    names.extend(extra.iter().filter(|n| !n.is_empty()).cloned());
    names
}

/// Creates (or loads) the CA and signs a serving certificate for `names` with it.
pub fn generate(ca: &Ca, names: &[String], validity_days: u32) -> Result<Bundle, CertsError> {
    let now = time::OffsetDateTime::now_utc();
    // Tolerate a little clock skew between this machine and the API server.
    let not_before = now - time::Duration::minutes(5);
    let (issuer, ca_cert, ca_key) = match ca {
        Ca::New { validity_days } => {
            let key = KeyPair::generate().map_err(generating("CA key"))?;
            let mut params = CertificateParams::default();
            params.distinguished_name = name("sidecar-injector CA");
            params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
            params.key_usages = vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
                KeyUsagePurpose::DigitalSignature,
            ];
            params.not_before = not_before;
            params.not_after = now + time::Duration::days(i64::from(*validity_days));
            let cert = params
                .self_signed(&key)
                .map_err(generating("CA certificate"))?;
            let key_pem = key.serialize_pem();
            (Issuer::new(params, key), cert.pem(), key_pem)
        }
        Ca::Existing {
            cert_pem,
            key_pem,
            cert,
            key,
        } => {
            let bad = |source| CertsError::BadCa {
                cert: cert.clone(),
                key: key.clone(),
                source,
            };
            let signing_key = KeyPair::from_pem(key_pem).map_err(bad)?;
            let issuer = Issuer::from_ca_cert_pem(cert_pem, signing_key).map_err(bad)?;
            (issuer, cert_pem.clone(), key_pem.clone())
        }
    };

    let mut params = CertificateParams::default();
    params.subject_alt_names = names
        .iter()
        .map(|n| match n.parse::<IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => n
                .clone()
                .try_into()
                .map(SanType::DnsName)
                .map_err(|_| CertsError::BadName(n.clone())),
        })
        .collect::<Result<_, _>>()?;
    params.distinguished_name = name(
        names
            .get(2)
            .or(names.first())
            .map_or("sidecar-injector", String::as_str),
    );
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = not_before;
    params.not_after = now + time::Duration::days(i64::from(validity_days));
    let key = KeyPair::generate().map_err(generating("serving key"))?;
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(generating("serving certificate"))?;
    Ok(Bundle {
        ca_cert,
        ca_key,
        tls_cert: cert.pem(),
        tls_key: key.serialize_pem(),
    })
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

fn generating(what: &'static str) -> impl Fn(rcgen::Error) -> CertsError {
    move |source| CertsError::Generate { what, source }
}

/// What goes into `caBundle`: the base64 of the CA's PEM.
pub fn ca_bundle(ca_pem: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(ca_pem)
}

/// A `kubernetes.io/tls` Secret with the serving pair and the CA (`ca.crt`, as cert-manager
/// writes it).
pub fn secret_manifest(name: &str, namespace: &str, bundle: &Bundle) -> String {
    let b64 = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    format!(
        "# Generated by `sidecar-injector certs`. Holds a private key: do not commit it.\n\
         apiVersion: v1\n\
         kind: Secret\n\
         metadata:\n  name: {name}\n  namespace: {namespace}\n\
         type: kubernetes.io/tls\n\
         data:\n  tls.crt: {}\n  tls.key: {}\n  ca.crt: {}\n",
        b64(&bundle.tls_cert),
        b64(&bundle.tls_key),
        b64(&bundle.ca_cert),
    )
}

/// Sets `caBundle` under every `clientConfig:` of a MutatingWebhookConfiguration, editing the
/// text line by line so the file's comments and layout survive, then checks the result as
/// YAML: every webhook of every MutatingWebhookConfiguration document must carry `bundle`.
pub fn patch_ca_bundle(text: &str, bundle: &str, path: &Path) -> Result<String, CertsError> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::with_capacity(lines.len() + 4);
    let mut client_configs = 0;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        out.push(line.to_owned());
        i += 1;
        let Some(indent) = key_indent(line, "clientConfig") else {
            continue;
        };
        client_configs += 1;
        // The block under `clientConfig:` is every following line indented deeper (or blank).
        let start = i;
        while i < lines.len() && (lines[i].trim().is_empty() || leading(lines[i]) > indent) {
            i += 1;
        }
        let block = &lines[start..i];
        let child = block
            .iter()
            .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .map_or(indent + 2, |l| leading(l));
        let mut placed = false;
        for inner in block {
            if key_indent(inner, "caBundle") == Some(child) {
                out.push(format!("{}caBundle: {bundle}", " ".repeat(child)));
                placed = true;
            } else {
                out.push((*inner).to_owned());
            }
        }
        if !placed {
            out.insert(
                out.len() - block.len(),
                format!("{}caBundle: {bundle}", " ".repeat(child)),
            );
        }
    }
    if client_configs == 0 {
        return Err(CertsError::NoWebhooks {
            path: path.to_owned(),
        });
    }
    let mut patched = out.join("\n");
    if text.ends_with('\n') {
        patched.push('\n');
    }
    check_patched(&patched, bundle, path)?;
    Ok(patched)
}

/// The indentation of `line` when it is `key:` (with or without a list dash, value or not).
fn key_indent(line: &str, key: &str) -> Option<usize> {
    let trimmed = line.trim_start();
    let (dash, rest) = match trimmed.strip_prefix("- ") {
        Some(rest) => (
            2 + (rest.len() - rest.trim_start().len()),
            rest.trim_start(),
        ),
        None => (0, trimmed),
    };
    let after = rest.strip_prefix(key)?.strip_prefix(':')?;
    (after.is_empty() || after.starts_with([' ', '\t'])).then_some(leading(line) + dash)
}

fn leading(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn check_patched(text: &str, bundle: &str, path: &Path) -> Result<(), CertsError> {
    use serde::Deserialize as _;
    let incomplete = || CertsError::PatchIncomplete {
        path: path.to_owned(),
    };
    for document in serde_yaml_ng::Deserializer::from_str(text) {
        let value = serde_yaml_ng::Value::deserialize(document).map_err(|source| {
            CertsError::PatchedYaml {
                path: path.to_owned(),
                source,
            }
        })?;
        if value.get("kind").and_then(|k| k.as_str()) != Some("MutatingWebhookConfiguration") {
            continue;
        }
        let webhooks = value.get("webhooks").and_then(|w| w.as_sequence());
        for webhook in webhooks.into_iter().flatten() {
            let got = webhook.get("clientConfig").and_then(|c| c.get("caBundle"));
            if got.and_then(|b| b.as_str()) != Some(bundle) {
                return Err(incomplete());
            }
        }
    }
    Ok(())
}

fn read(path: &Path) -> Result<String, CertsError> {
    std::fs::read_to_string(path).map_err(io_at(path))
}

fn io_at(path: &Path) -> impl Fn(std::io::Error) -> CertsError + '_ {
    move |source| CertsError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Writes a file; private ones are created readable by the owner only.
fn write(path: &Path, contents: &str, private: bool) -> Result<(), CertsError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    if private {
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io_at(path))?;
    file.write_all(contents.as_bytes()).map_err(io_at(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MWC: &str = "\
# Istio-style webhook; the comment must survive.
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata:
  name: sidecar-injector
webhooks:
- name: namespace.sidecar-injector.istio.io
  clientConfig:
    service:
      name: sidecar-injector
      namespace: sidecar-injector
      path: /inject
    caBundle: \"\"   # filled in by `sidecar-injector certs`
  sideEffects: None
- name: rev.namespace.sidecar-injector.istio.io
  clientConfig:
    service: {name: sidecar-injector, namespace: sidecar-injector, path: /inject}
  sideEffects: None
";

    #[test]
    fn patches_every_webhook_and_keeps_comments() {
        let patched = patch_ca_bundle(MWC, "QUJD", Path::new("mwc.yaml")).unwrap();
        assert!(patched.starts_with("# Istio-style webhook; the comment must survive.\n"));
        assert_eq!(patched.matches("caBundle: QUJD").count(), 2, "{patched}");
        assert!(
            patched.contains("    caBundle: QUJD\n  sideEffects"),
            "{patched}"
        );
        // A second run replaces rather than adds.
        let again = patch_ca_bundle(&patched, "REVG", Path::new("mwc.yaml")).unwrap();
        assert_eq!(again.matches("caBundle:").count(), 2);
        assert_eq!(again.matches("caBundle: REVG").count(), 2);
    }

    #[test]
    fn patches_list_item_client_configs_in_a_multi_document_file() {
        let text = "\
apiVersion: v1
kind: Service
metadata: {name: sidecar-injector}
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: sidecar-injector}
webhooks:
- clientConfig:
    url: https://127.0.0.1:9443/inject
  name: local.sidecar-injector.istio.io
";
        let patched = patch_ca_bundle(text, "QUJD", Path::new("all.yaml")).unwrap();
        assert!(
            patched.contains("- clientConfig:\n    caBundle: QUJD\n    url: "),
            "{patched}"
        );
        assert!(patched.starts_with("apiVersion: v1\nkind: Service\n"));
    }

    #[test]
    fn refuses_a_file_without_webhooks() {
        let err = patch_ca_bundle("kind: Service\n", "QUJD", Path::new("svc.yaml")).unwrap_err();
        assert!(matches!(err, CertsError::NoWebhooks { .. }), "{err}");
    }

    #[test]
    fn service_names_cover_how_the_api_server_calls_a_service() {
        assert_eq!(
            service_names("inj", "ns", "cluster.local", &["127.0.0.1".into()]),
            [
                "inj",
                "inj.ns",
                "inj.ns.svc",
                "inj.ns.svc.cluster.local",
                "127.0.0.1"
            ]
        );
    }
}

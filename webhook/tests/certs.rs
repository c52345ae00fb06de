//! `sidecar-injector certs`, run as a user runs it: the chain it writes verifies for the
//! Service's DNS names, the Secret carries it, and the webhook configuration gets the CA.

mod server_support;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use base64::Engine as _;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier as _;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use serde_json::Value;
use server_support::*;

const MWC: &str = "\
# failurePolicy and the selectors are explained here; this comment must survive.
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata:
  name: sidecar-injector
webhooks:
- name: namespace.sidecar-injector.istio.io
  admissionReviewVersions: [\"v1\"]
  clientConfig:
    service:
      name: inj
      namespace: mesh
      path: /inject
  sideEffects: None
- name: rev.namespace.sidecar-injector.istio.io
  admissionReviewVersions: [\"v1\"]
  clientConfig:
    caBundle: \"\"
    service: {name: inj, namespace: mesh, path: /inject}
  sideEffects: None
";

fn certs(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sidecar-injector"))
        .arg("certs")
        .args(args)
        .output()
        .unwrap()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// Verifies `tls.crt` against `ca.crt` the way a TLS client does, for one name.
fn verifies(out: &Path, name: &str) -> Result<(), rustls::Error> {
    init();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(out.join("ca.crt")).unwrap())
        .unwrap();
    let verifier = WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .unwrap();
    let chain: Vec<_> = CertificateDer::pem_file_iter(out.join("tls.crt"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    verifier
        .verify_server_cert(
            &chain[0],
            &chain[1..],
            &ServerName::try_from(name.to_owned()).unwrap(),
            &[],
            UnixTime::now(),
        )
        .map(|_| ())
}

#[test]
fn the_serving_certificate_verifies_for_the_service_names_only() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let output = certs(&[
        "--service",
        "inj",
        "--namespace",
        "mesh",
        "--extra-san",
        "localhost,127.0.0.1",
        "--out-dir",
        out.to_str().unwrap(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    for name in [
        "inj",
        "inj.mesh",
        "inj.mesh.svc",
        "inj.mesh.svc.cluster.local",
        "localhost",
        "127.0.0.1",
    ] {
        verifies(&out, name).unwrap_or_else(|err| panic!("{name}: {err}"));
    }
    for name in ["other.mesh.svc", "inj.default.svc"] {
        assert!(verifies(&out, name).is_err(), "{name} must not verify");
    }

    use std::os::unix::fs::PermissionsExt as _;
    for private in ["tls.key", "ca.key", "secret.yaml"] {
        let mode = std::fs::metadata(out.join(private))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{private} is readable by others: {mode:o}");
    }

    // The Secret is a kubernetes.io/tls Secret holding exactly the files written beside it.
    let secret: Value = serde_yaml_ng::from_str(&read(&out.join("secret.yaml"))).unwrap();
    assert_eq!(secret["kind"], "Secret");
    assert_eq!(secret["type"], "kubernetes.io/tls");
    assert_eq!(secret["metadata"]["namespace"], "mesh");
    for key in ["tls.crt", "tls.key", "ca.crt"] {
        let data = base64::engine::general_purpose::STANDARD
            .decode(secret["data"][key].as_str().unwrap())
            .unwrap();
        assert_eq!(
            String::from_utf8(data).unwrap(),
            read(&out.join(key)),
            "{key}"
        );
    }
}

#[test]
fn patches_the_ca_bundle_into_every_webhook_and_keeps_the_file_readable() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mwc = dir.path().join("mwc.yaml");
    std::fs::write(&mwc, MWC).unwrap();
    let output = certs(&[
        "--service",
        "inj",
        "--namespace",
        "mesh",
        "--out-dir",
        out.to_str().unwrap(),
        "--webhook-config",
        mwc.to_str().unwrap(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let patched = read(&mwc);
    assert!(
        patched.starts_with("# failurePolicy and the selectors are explained here"),
        "{patched}"
    );
    let value: Value = serde_yaml_ng::from_str(&patched).unwrap();
    let ca = read(&out.join("ca.crt"));
    for webhook in value["webhooks"].as_array().unwrap() {
        let bundle = webhook["clientConfig"]["caBundle"].as_str().unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(bundle)
            .unwrap();
        assert_eq!(
            String::from_utf8(decoded).unwrap(),
            ca,
            "{}",
            webhook["name"]
        );
        assert_eq!(
            webhook["clientConfig"]["service"]["name"], "inj",
            "the rest is untouched"
        );
    }

    // Renewing the serving certificate with the same CA leaves the caBundle valid.
    let renewed = dir.path().join("renewed");
    let output = certs(&[
        "--service",
        "inj",
        "--namespace",
        "mesh",
        "--out-dir",
        renewed.to_str().unwrap(),
        "--ca-cert",
        out.join("ca.crt").to_str().unwrap(),
        "--ca-key",
        out.join("ca.key").to_str().unwrap(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(read(&renewed.join("ca.crt")), ca);
    assert_ne!(read(&renewed.join("tls.crt")), read(&out.join("tls.crt")));
    verifies(&renewed, "inj.mesh.svc").unwrap();
}

#[test]
fn bad_input_is_an_error_message_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_webhook = dir.path().join("service.yaml");
    std::fs::write(&not_a_webhook, "apiVersion: v1\nkind: Service\n").unwrap();
    let output = certs(&[
        "--out-dir",
        dir.path().join("out").to_str().unwrap(),
        "--webhook-config",
        not_a_webhook.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("clientConfig"), "{stderr}");

    let output = certs(&["--validity-days", "0"]);
    assert_eq!(output.status.code(), Some(2), "clap refuses the flag");

    let output = certs(&[
        "--out-dir",
        dir.path().join("out2").to_str().unwrap(),
        "--ca-cert",
        not_a_webhook.to_str().unwrap(),
        "--ca-key",
        not_a_webhook.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot use the CA"));
}

#[tokio::test]
async fn serve_accepts_what_certs_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let output = certs(&[
        "--extra-san",
        "127.0.0.1",
        "--out-dir",
        out.to_str().unwrap(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let pair = Pair {
        cert: read(&out.join("tls.crt")),
        key: read(&out.join("tls.key")),
        der: Vec::new(),
    };
    let (running, _tls, _config) =
        start(dir.path(), &pair, injector_engine::Environment::default()).await;
    let response = client(&read(&out.join("ca.crt")), b"http/1.1", false)
        .get(format!(
            "https://127.0.0.1:{}/inject",
            running.https_addr.port()
        ))
        .send()
        .await
        .expect("a TLS client that trusts ca.crt accepts the serving certificate");
    assert_eq!(response.status(), 405);
    running.shutdown().await.unwrap();
}

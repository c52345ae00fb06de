//! The command line as an operator meets it: help, version, and start-up errors that say what
//! to fix instead of a panic or a silent exit.

use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sidecar-injector"))
        .args(args)
        .env_remove("INJECTOR_TLS_DIR")
        .env_remove("INJECTOR_TLS_CERT")
        .env_remove("INJECTOR_TLS_KEY")
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn version_and_help_cover_every_subcommand_and_flag() {
    let version = run(&["--version"]);
    assert!(version.status.success());
    assert_eq!(
        stdout(&version).trim(),
        format!("sidecar-injector {}", env!("CARGO_PKG_VERSION"))
    );

    let help = stdout(&run(&["--help"]));
    for subcommand in ["serve", "kube-inject", "certs"] {
        assert!(help.contains(subcommand), "{help}");
        let sub = run(&[subcommand, "--help"]);
        assert!(sub.status.success(), "{subcommand} --help");
        assert!(
            stdout(&sub).contains("--log-format"),
            "{subcommand}: global flags listed"
        );
    }
    let serve = stdout(&run(&["serve", "--help"]));
    for flag in [
        "--port",
        "--address",
        "--monitoring-port",
        "--tls-dir",
        "--tls-cert",
        "--tls-key",
        "--reload-interval",
        "--shutdown-timeout",
        "--injector-config",
        "--values",
        "--mesh-config",
        "--revision",
        "--native-sidecars",
        "--kubelet-version",
        "--log-level",
    ] {
        assert!(serve.contains(flag), "serve --help lacks {flag}");
    }
    let certs = stdout(&run(&["certs", "--help"]));
    for flag in [
        "--service",
        "--namespace",
        "--cluster-domain",
        "--extra-san",
        "--out-dir",
        "--secret-name",
        "--validity-days",
        "--ca-validity-days",
        "--ca-cert",
        "--ca-key",
        "--webhook-config",
    ] {
        assert!(certs.contains(flag), "certs --help lacks {flag}");
    }
}

#[test]
fn serve_needs_a_certificate_and_says_so() {
    let output = run(&["serve"]);
    assert_eq!(output.status.code(), Some(2), "a usage error");
    assert!(stderr(&output).contains("--tls-dir"), "{}", stderr(&output));

    let output = run(&[
        "serve",
        "--tls-dir",
        "/x",
        "--tls-cert",
        "/y",
        "--tls-key",
        "/z",
    ]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "--tls-dir excludes --tls-cert"
    );

    let dir = tempfile::tempdir().unwrap();
    let output = run(&[
        "serve",
        "--tls-dir",
        dir.path().to_str().unwrap(),
        "--port",
        "0",
        "--monitoring-port",
        "0",
        "--address",
        "127.0.0.1",
        "--injector-config",
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/engine/builtin/injector-config.yaml"
        ),
        "--values",
        concat!(env!("CARGO_MANIFEST_DIR"), "/engine/builtin/values.json"),
        "--mesh-config",
        concat!(env!("CARGO_MANIFEST_DIR"), "/engine/builtin/mesh.yaml"),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(
        text.contains("cannot read the serving certificate") && text.contains("tls.crt"),
        "{text}"
    );
}

#[test]
fn serve_refuses_to_start_on_a_broken_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::write(&config, "policy: [unclosed\n").unwrap();
    let output = run(&[
        "serve",
        "--tls-dir",
        dir.path().to_str().unwrap(),
        "--port",
        "0",
        "--monitoring-port",
        "0",
        "--injector-config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(text.contains("the configuration is not valid"), "{text}");
}

#[test]
fn bad_flag_values_are_usage_errors() {
    for args in [
        &["serve", "--tls-dir", "/x", "--reload-interval", "soon"][..],
        &["serve", "--tls-dir", "/x", "--port", "99999"],
        &["--log-format", "xml", "certs"],
    ] {
        let output = run(args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    let output = run(&["--log-level", "info,[", "certs"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("--log-level"));
}

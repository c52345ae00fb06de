//! `make demo` works on this machine: tests/e2e/demo.sh builds both programs, serves the
//! webhook on loopback, injects the example AdmissionReview and shows mesh-init's rules for the
//! resulting istio-init arguments. Skips when bash, curl or jq is missing.

use std::process::Command;

use e2e::workspace;

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn demo_injects_the_example_pod_and_shows_its_capture_rules() {
    if let Some(missing) = ["bash", "curl", "jq"].into_iter().find(|t| !have(t)) {
        eprintln!("skipping: the demo needs {missing}");
        return;
    }
    let out = Command::new("bash")
        .arg(workspace::root().join("tests/e2e/demo.sh"))
        .output()
        .expect("demo.sh runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo.sh failed ({:?}):\n{stdout}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    // The review was allowed with a patch that adds the proxy ...
    assert!(stdout.contains("\"allowed\": true"), "{stdout}");
    assert!(stdout.contains("\"name\": \"istio-proxy\""), "{stdout}");
    // ... and mesh-init turned the pod's own istio-init arguments into Istio's rules.
    let dry_run = stdout
        .lines()
        .find(|l| l.starts_with("+ mesh-init --dry-run"))
        .expect("the mesh-init command line is shown");
    assert!(
        dry_run.contains("-p 15001") && dry_run.contains("-z 15006"),
        "{dry_run}"
    );
    assert!(
        stdout.contains("-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001"),
        "{stdout}"
    );
    assert!(
        stdout.contains("-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006"),
        "{stdout}"
    );
}

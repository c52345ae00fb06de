//! Replays Istio's istio-iptables golden vectors through the real binary in `--dry-run`
//! (the same code path as a real run, with the recording runner). The vectors are read in
//! place from `ISTIO_IPTABLES_VECTORS` (default `<workspace>/../shared/conformance/istio-iptables`).
//! Host facts reach the binary through its documented `--host-ipv6` / `--resolv-conf` flags.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn vectors() -> Option<PathBuf> {
    let dir = match std::env::var_os("ISTIO_IPTABLES_VECTORS") {
        Some(d) => PathBuf::from(d),
        None => {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/istio-iptables")
        }
    };
    if dir.join("cases.json").is_file() {
        return Some(dir);
    }
    eprintln!(
        "skipping: no conformance data at {} (set ISTIO_IPTABLES_VECTORS)",
        dir.display()
    );
    None
}

/// Runs `mesh-init` with a cleared environment plus `env`, returning stdout or a failure text.
fn dry_run(
    args: &[String],
    env: &serde_json::Map<String, Value>,
    host: &Value,
    tmp: &Path,
) -> Result<String, String> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mesh-init"));
    cmd.env_clear().args(args);
    for (k, v) in env {
        cmd.env(k, v.as_str().unwrap_or_default());
    }
    let ipv6 = host["ipv6"].as_bool().ok_or("host.ipv6 missing")?;
    cmd.arg(format!("--host-ipv6={ipv6}"));
    if let Some(text) = host["resolv_conf"].as_str() {
        std::fs::write(tmp, text).map_err(|e| e.to_string())?;
        cmd.arg("--resolv-conf").arg(tmp);
    } else {
        // `null`: the case does not read the file; make sure nothing would be found.
        cmd.arg("--resolv-conf").arg(tmp.with_extension("absent"));
    }
    let out = cmd.output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "exit {:?}: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    String::from_utf8(out.stdout).map_err(|e| e.to_string())
}

/// The first differing line, for the one-line report.
fn first_difference(want: &str, got: &str) -> String {
    let (w, g): (Vec<&str>, Vec<&str>) = (want.lines().collect(), got.lines().collect());
    for i in 0..w.len().max(g.len()) {
        if w.get(i) != g.get(i) {
            return format!("line {}: want {:?}, got {:?}", i + 1, w.get(i), g.get(i));
        }
    }
    "trailing newline differs".into()
}

/// cni-plugin goldens hold only the IPv4 restore input: the record between the two saves at
/// the top and the final save.
fn ipv4_restore_block(record: &str) -> String {
    let lines: Vec<&str> = record.lines().collect();
    let end = lines
        .iter()
        .rposition(|l| *l == "iptables-save")
        .unwrap_or(lines.len());
    let mut out = lines[2.min(end)..end].join("\n");
    out.push('\n');
    out
}

#[test]
fn replays_every_istio_iptables_golden() {
    let Some(dir) = vectors() else { return };
    let cases: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("cases.json")).expect("cases.json"))
            .expect("cases.json is JSON");
    let tmp = std::env::temp_dir().join(format!(
        "mesh-init-conformance-{}.resolv",
        std::process::id()
    ));
    let (mut passed, mut failed) = (0, 0);
    for case in cases["cases"].as_array().expect("cases array") {
        let id = case["id"].as_str().unwrap_or("?");
        let args: Vec<String> = case["args"]
            .as_array()
            .expect("args")
            .iter()
            .map(|a| a.as_str().unwrap_or_default().to_string())
            .collect();
        let empty = serde_json::Map::new();
        let env = case["env"].as_object().unwrap_or(&empty);
        let goldens = case["goldens"].as_object().expect("goldens");
        // One line per case; a case passes when every one of its goldens matches.
        let mut problems = Vec::new();
        let mut kinds = Vec::new();
        for (kind, path) in goldens {
            kinds.push(kind.as_str());
            let want = std::fs::read_to_string(dir.join(path.as_str().unwrap_or_default()))
                .expect("golden");
            let mut run_args = args.clone();
            if kind == "nftables" {
                run_args.extend(
                    case["nftables_extra_args"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|a| a.as_str().unwrap_or_default().to_string()),
                );
            }
            let cni = case["group"].as_str() == Some("cni-plugin");
            let result = dry_run(&run_args, env, &case["host"], &tmp)
                .map(|got| if cni { ipv4_restore_block(&got) } else { got });
            match result {
                Ok(got) if got == want => {}
                Ok(got) => problems.push(format!("{kind}: {}", first_difference(&want, &got))),
                Err(e) => problems.push(format!("{kind}: {e}")),
            }
        }
        if problems.is_empty() {
            passed += 1;
            println!("ok   {id} [{}]", kinds.join(", "));
        } else {
            failed += 1;
            println!("FAIL {id}: {}", problems.join("; "));
        }
    }
    let _ = std::fs::remove_file(&tmp);
    println!("{passed} passed, {failed} failed");
    assert!(passed > 0, "no golden was replayed");
    assert_eq!(failed, 0, "{failed} goldens differ (see the lines above)");
}

//! Flags that reach the engine, through the real binary: `--native-sidecars auto` with the
//! nodes' kubelet versions picks the pod layout; the JSON log has one line per review.

mod server_support;

use std::time::Duration;

use serde_json::Value;
use server_support::*;

/// The injected pod and the review's log line, for a server started with `args`.
async fn inject_with(args: &[&str]) -> (Value, Value) {
    let pki = Pki::new();
    let process = spawn(&pki, args);
    let request: Value = serde_json::from_str(REVIEW).unwrap();
    let response = review(&pki, process.https, REVIEW.as_bytes()).await;
    assert_eq!(response["response"]["allowed"], true, "{response}");
    let pod = patched_pod(&request, &response["response"]);
    let line = loop {
        let event = process
            .log
            .recv_timeout(Duration::from_secs(10))
            .expect("a log line for the review");
        if event["message"] == "admission review" {
            break event;
        }
    };
    (pod, line)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelets_at_1_33_or_later_get_native_sidecars() {
    let (pod, _) = inject_with(&["--kubelet-version", "v1.34.1,v1.33.0"]).await;
    assert_eq!(
        names(&pod["spec"]["initContainers"]),
        ["istio-init", "istio-proxy"],
        "{pod:#}"
    );
    assert_eq!(pod["spec"]["initContainers"][1]["restartPolicy"], "Always");
    assert_eq!(names(&pod["spec"]["containers"]), ["productpage"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_older_kubelet_keeps_the_classic_layout() {
    let (pod, _) = inject_with(&[
        "--kubelet-version",
        "v1.34.1",
        "--kubelet-version",
        "v1.28.3",
    ])
    .await;
    assert_eq!(names(&pod["spec"]["initContainers"]), ["istio-init"]);
    assert_eq!(
        names(&pod["spec"]["containers"]),
        ["productpage", "istio-proxy"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_review_logs_one_json_line_with_who_and_what() {
    let (_, line) = inject_with(&["--native-sidecars", "true"]).await;
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["namespace"], "shop");
    assert_eq!(line["pod"], "productpage-v1-6f9c8d7b5c-");
    assert_eq!(line["uid"], "aa921576-aed3-41c7-a267-939de4f8ceb8");
    assert_eq!(line["decision"], "injected");
    assert_eq!(line["dry_run"], false);
    assert!(
        line["duration_ms"].as_f64().is_some_and(|ms| ms > 0.0),
        "{line}"
    );
    // Pod contents are for debug level only: nothing of the pod beyond who it is.
    assert!(
        !line.to_string().contains("examples-bookinfo-productpage"),
        "{line}"
    );
}

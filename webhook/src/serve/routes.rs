//! `POST /inject` and `POST /inject/...`: HTTP in, `injector_engine::admission::review`, HTTP
//! out. Transport problems are HTTP errors with a plain-text reason; every review the engine can
//! read is a 200 AdmissionReview (injected, skipped or denied).

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, Version, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use injector_engine::admission::{self, Answer, BadReview, Verdict};
use tracing::{debug, info, warn};

use super::{Shared, deadline};

/// The largest request body read. Pods are far smaller; the API server's own request limit is
/// 3 MiB of YAML, which can grow a little as JSON.
pub const MAX_BODY_BYTES: usize = 4 << 20;

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/inject", post(inject))
        .route("/inject/", post(inject))
        .route("/inject/{*params}", post(inject))
        .method_not_allowed_fallback(|| async {
            (
                StatusCode::METHOD_NOT_ALLOWED,
                "the webhook takes POST /inject\n",
            )
        })
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                "no such endpoint; the webhook serves POST /inject and /inject/...\n",
            )
        })
        .with_state(shared)
}

/// Why a request got no AdmissionReview back.
#[derive(Debug, thiserror::Error)]
enum Refused {
    // Istio's wording, so operators searching for it find both.
    #[error("invalid Content-Type {0:?}, want `application/json`")]
    ContentType(String),
    #[error("request body is larger than the limit of {} MiB", MAX_BODY_BYTES >> 20)]
    TooLarge,
    #[error("cannot read the request body: {0}")]
    ReadBody(String),
    #[error("no body found")]
    NoBody,
    #[error("not an AdmissionReview: {0}")]
    NotAReview(#[from] BadReview),
    /// The engine answers an unreadable review with Istio's `allowed: false` shape; with no
    /// request uid there is nobody to answer, so it becomes a 400 here (the issue asks for a
    /// 4xx for bodies that are not reviews).
    #[error("not an AdmissionReview: {0}")]
    Unanswerable(String),
    #[error("review not finished within the API server's timeout of {0:?}")]
    Timeout(Duration),
    #[error("the review failed unexpectedly; see the injector's log")]
    Internal,
}

impl Refused {
    fn status(&self) -> StatusCode {
        match self {
            Refused::ContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Refused::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Refused::ReadBody(_)
            | Refused::NoBody
            | Refused::NotAReview(_)
            | Refused::Unanswerable(_) => StatusCode::BAD_REQUEST,
            Refused::Timeout(_) => StatusCode::SERVICE_UNAVAILABLE,
            Refused::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

async fn inject(
    State(shared): State<Arc<Shared>>,
    version: Version,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    shared.metrics.requests.fetch_add(1, Relaxed);
    let limit = deadline::from_query(uri.query()).unwrap_or(deadline::DEFAULT);
    // Istio's path parameters (`/inject/cluster/c1/net/n1`) are the engine's business.
    let params = uri
        .path()
        .strip_prefix("/inject")
        .unwrap_or_default()
        .to_owned();
    let outcome = tokio::time::timeout(limit, answer(&shared, params, &headers, body))
        .await
        .unwrap_or(Err(Refused::Timeout(limit)));
    let elapsed = started.elapsed();
    shared.metrics.observe_time(elapsed);
    match outcome {
        Ok(answer) => {
            record(&shared, &answer, version, elapsed);
            ([(header::CONTENT_TYPE, "application/json")], answer.body).into_response()
        }
        Err(refused) => {
            shared.metrics.failure.fetch_add(1, Relaxed);
            let status = refused.status();
            warn!(status = status.as_u16(), error = %refused, path = uri.path(), "request refused");
            (
                status,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!("{refused}\n"),
            )
                .into_response()
        }
    }
}

async fn answer(
    shared: &Arc<Shared>,
    params: String,
    headers: &HeaderMap,
    body: Body,
) -> Result<Answer, Refused> {
    // Exactly `application/json`, as Istio checks; the API server sends nothing else.
    match headers.get(header::CONTENT_TYPE) {
        Some(value) if value.as_bytes() == b"application/json" => {}
        other => {
            let got = other.map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            return Err(Refused::ContentType(got.unwrap_or_default()));
        }
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        return Err(Refused::TooLarge);
    }
    let body = read_limited(body).await?;
    if body.is_empty() {
        return Err(Refused::NoBody);
    }
    if shared.null_webhook.load(Relaxed) {
        return Ok(null_answer());
    }
    debug!(request = %String::from_utf8_lossy(&body), "admission review received");

    let injector = shared.injector();
    let environment = shared.environment();
    // The engine is synchronous; off the reactor so a large pod does not stall other
    // connections, and so the deadline above can still fire.
    let answer = tokio::task::spawn_blocking(move || {
        admission::review(&body, &injector, &environment, &params)
    })
    .await
    .map_err(|join| {
        warn!(error = %join, "admission review task failed");
        Refused::Internal
    })??;
    if answer.uid.is_empty() {
        return Err(Refused::Unanswerable(match answer.verdict {
            Verdict::Denied(message) => message,
            _ => "the request has no uid".to_owned(),
        }));
    }
    Ok(answer)
}

/// The benchmark baseline: a fixed `allowed: true` review, no parsing and no engine, logged
/// and counted like any other answer so only the engine's work differs.
fn null_answer() -> Answer {
    const BODY: &[u8] = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"","allowed":true}}"#;
    Answer {
        body: BODY.to_vec(),
        uid: String::new(),
        namespace: String::new(),
        name: String::new(),
        dry_run: false,
        verdict: Verdict::Skipped("bench-null".into()),
    }
}

async fn read_limited(body: Body) -> Result<Bytes, Refused> {
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<LengthLimitError>() => Err(Refused::TooLarge),
        Err(err) => Err(Refused::ReadBody(super::chain(&*err))),
    }
}

/// The one log line per review, and its counters. The HTTP version shows whether the API
/// server reached us over HTTP/2 (ALPN `h2`), as it does when the TLS setup offers it.
fn record(shared: &Shared, answer: &Answer, version: Version, elapsed: Duration) {
    let metrics = &shared.metrics;
    metrics.success.fetch_add(1, Relaxed);
    let (decision, reason) = match &answer.verdict {
        Verdict::Injected => ("injected", ""),
        Verdict::Skipped(reason) => {
            metrics.skip.fetch_add(1, Relaxed);
            ("skipped", reason.as_str())
        }
        Verdict::Denied(message) => {
            // Istio counts a denial as a failure as well as an answered request.
            metrics.failure.fetch_add(1, Relaxed);
            ("denied", message.as_str())
        }
    };
    let duration_ms = elapsed.as_secs_f64() * 1e3;
    let http = http_version(version);
    // The same line for every decision; a reason only where there is one.
    match reason {
        "" => info!(
            namespace = %answer.namespace,
            pod = %answer.name,
            uid = %answer.uid,
            decision,
            dry_run = answer.dry_run,
            duration_ms,
            http,
            "admission review"
        ),
        reason => info!(
            namespace = %answer.namespace,
            pod = %answer.name,
            uid = %answer.uid,
            decision,
            reason,
            dry_run = answer.dry_run,
            duration_ms,
            http,
            "admission review"
        ),
    }
    debug!(response = %String::from_utf8_lossy(&answer.body), "admission review answered");
}

/// How a log line names the HTTP version.
fn http_version(version: Version) -> &'static str {
    match version {
        Version::HTTP_2 => "2",
        Version::HTTP_11 => "1.1",
        Version::HTTP_10 => "1.0",
        Version::HTTP_3 => "3",
        _ => "other",
    }
}

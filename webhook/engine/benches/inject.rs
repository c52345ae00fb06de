//! Criterion benchmarks of the injection core (`cargo bench -p injector-engine`).
//!
//! Shapes follow Istio's injection benchmarks: a minimal pod, a pod with 2000 env vars, a pod
//! with 10 containers and probes, the re-injection of an already-injected pod. Then template
//! parsing, patch generation, `kube-inject`, and scale curves over env vars and containers
//! (bench/report.py checks that the per-element time does not grow: linear or better).
//!
//! Istio's own configuration is read from `$ISTIO_INJECT_VECTORS/config` (default
//! `<workspace>/../shared/conformance/istio-inject`) when present; skipped otherwise.

#[allow(dead_code)] // shared with the other benches; this one does not use `Loaded`
mod common;

// The allocator the shipped binary uses (the same file), so the figures are the ones users get.
#[path = "../../src/alloc.rs"]
mod alloc;
#[global_allocator]
static ALLOCATOR: alloc::Mimalloc = alloc::Mimalloc;

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use injector_engine::doc::Node;
use injector_engine::inject::{self, Mode, Outcome, Owner};
use injector_engine::render::Texts;
use injector_engine::{Environment, Injector, admission, kube_inject, patch};
use serde_json::Value;

use common::{deployment_yaml, istio_sources, minimal_pod, pod, review};

const NAMESPACE: &str = "shop";

fn webhook() -> Mode {
    Mode::Webhook {
        path_envs: BTreeMap::new(),
    }
}

fn deployment_owner() -> Owner {
    Owner {
        kind: "Deployment".into(),
        api_version: "apps/v1".into(),
        name: "web".into(),
        namespace: NAMESPACE.into(),
    }
}

/// The built-in configuration, or why there is none (then the injection benches are skipped
/// with that reason rather than timing an error path).
fn injector() -> Result<Injector, String> {
    let injector = Injector::builtin().map_err(|e| injector_engine::chain(&e))?;
    match inject::inject(
        Node::view(&minimal_pod()),
        NAMESPACE,
        &injector,
        &Environment::default(),
        &webhook(),
        &Texts::default(),
    ) {
        Ok(Outcome::Injected { .. }) => Ok(injector),
        Ok(Outcome::Skipped(reason)) => Err(format!("the minimal pod was skipped: {reason:?}")),
        Err(e) => Err(injector_engine::chain(&e)),
    }
}

/// The injected pod, for re-injection and patch benchmarks.
fn injected<'p>(injector: &Injector, p: &'p Value, texts: &'p Texts) -> (Node<'p>, Node<'p>) {
    match inject::inject(
        Node::view(p),
        NAMESPACE,
        injector,
        &Environment::default(),
        &webhook(),
        texts,
    ) {
        Ok(Outcome::Injected { original, injected }) => (original, injected),
        other => panic!("bench pod not injected: {other:?}"),
    }
}

fn bench_shapes(c: &mut Criterion) {
    let injector = match injector() {
        Ok(i) => i,
        Err(why) => {
            eprintln!("skipping injection benchmarks: {why}");
            return;
        }
    };
    let env = Environment::default();
    let minimal = minimal_pod();
    let env2000 = pod(1, 2000, false);
    let ten = pod(10, 5, true);
    let first = pod(1, 5, true);
    let already = injected(&injector, &first, &Texts::default()).1.to_value();

    let mut g = c.benchmark_group("inject");
    // Each pod is viewed in place (what kube-inject does with a parsed manifest); the outcome
    // and the rendered texts it borrows are dropped inside the timing, as they are when
    // returned.
    let run = |p: &Value, mode: &Mode| {
        let texts = Texts::default();
        inject::inject(
            Node::view(black_box(p)),
            NAMESPACE,
            &injector,
            &env,
            mode,
            &texts,
        )
        .is_ok()
    };
    for (name, p) in [
        ("minimal", &minimal),
        ("env_2000", &env2000),
        ("containers_10_probes", &ten),
    ] {
        g.bench_function(name, |b| b.iter(|| run(p, &webhook())));
    }
    // The webhook path given an already-injected pod (the old sidecar is stripped first).
    g.bench_function("reinject_webhook", |b| b.iter(|| run(&already, &webhook())));
    // `kube-inject` of an injected pod strips the old sidecar and injects again.
    let kube = Mode::KubeInject {
        owner: deployment_owner(),
    };
    g.bench_function("reinject_kube_inject", |b| b.iter(|| run(&already, &kube)));
    g.finish();

    let mut g = c.benchmark_group("patch");
    for (name, p) in [
        ("minimal", &minimal),
        ("env_2000", &env2000),
        ("containers_10_probes", &ten),
    ] {
        let texts = Texts::default();
        let (original, result) = injected(&injector, p, &texts);
        g.bench_function(name, |b| {
            b.iter(|| patch::diff(black_box(&original), black_box(&result)))
        });
    }
    g.finish();

    // The whole webhook answer: JSON in, inject, patch, base64, JSON out. The 3-container pod
    // is the one the load benchmark sends.
    let mut g = c.benchmark_group("review");
    for (name, p) in [
        ("minimal", minimal.clone()),
        ("deployment_3_containers_probes", pod(3, 5, true)),
        ("env_2000", env2000.clone()),
    ] {
        let body = review(&p);
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| admission::review(black_box(&body), &injector, &env, ""))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("kube_inject");
    let yaml = deployment_yaml(3, 5);
    g.bench_function("deployment_3_containers", |b| {
        b.iter(|| kube_inject::inject_stream(black_box(&yaml), &injector, &env))
    });
    g.finish();
}

fn bench_load(c: &mut Criterion) {
    let mut g = c.benchmark_group("load");
    match Injector::builtin() {
        Ok(_) => {
            g.bench_function("builtin", |b| b.iter(Injector::builtin));
        }
        Err(e) => eprintln!("skipping load/builtin: {}", injector_engine::chain(&e)),
    }
    match istio_sources() {
        Err(why) => eprintln!("skipping load/istio_configmap: {why}"),
        Ok(sources) => match Injector::load(&sources) {
            Ok(_) => {
                g.bench_function("istio_configmap", |b| {
                    b.iter(|| Injector::load(black_box(&sources)))
                });
            }
            Err(e) => eprintln!(
                "skipping load/istio_configmap: {}",
                injector_engine::chain(&e)
            ),
        },
    }
    g.finish();
}

/// Review latency against pod size: elements = env vars (one container) or containers (with
/// probes). Criterion reports time per element; report.py compares its ends.
fn bench_scale(c: &mut Criterion) {
    let injector = match injector() {
        Ok(i) => i,
        Err(why) => {
            eprintln!("skipping scale benchmarks: {why}");
            return;
        }
    };
    let env = Environment::default();
    let mut g = c.benchmark_group("scale_env");
    for n in [10usize, 100, 1000, 2000, 4000] {
        let body = review(&pod(1, n, false));
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &body, |b, body| {
            b.iter(|| admission::review(black_box(body), &injector, &env, ""))
        });
    }
    g.finish();
    let mut g = c.benchmark_group("scale_containers");
    for n in [1usize, 5, 10, 20] {
        let body = review(&pod(n, 5, true));
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &body, |b, body| {
            b.iter(|| admission::review(black_box(body), &injector, &env, ""))
        });
    }
    g.finish();
}

fn config() -> Criterion {
    // Short windows: ~30 benchmarks on a shared 2-core machine; noise is handled by
    // criterion's outlier analysis and by repeating runs, not by long windows.
    Criterion::default()
        .warm_up_time(Duration::from_millis(700))
        .measurement_time(Duration::from_secs(3))
        .sample_size(40)
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_shapes, bench_load, bench_scale
}
criterion_main!(benches);

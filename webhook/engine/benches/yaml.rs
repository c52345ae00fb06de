//! Criterion benchmarks of reading a rendered sidecar template back
//! (`cargo bench -p injector-engine --bench yaml`).
//!
//! The `sidecar` template is rendered once for the minimal pod and for a Deployment's
//! 3-container pod with probes (built-in configuration), and for the minimal pod with Istio's
//! own ConfigMap when the conformance vectors are there. The benches then time only the steps
//! after rendering: the YAML reader (`yaml::parse`), the typed-Pod pass (`render::typed_pod`)
//! and both together (`render::read_partial_pod`, what every injection runs per template).
//! `json_floor` reads the same tree from its JSON text with serde_json: what building it costs
//! with no YAML at all (there with strings borrowed from the text, which the reader copies).

#[allow(dead_code)] // shared with the other benches; this one uses the pods and `Loaded`
mod common;

// The allocator the shipped binary uses (the same file), so the figures are the ones users get.
#[path = "../../src/alloc.rs"]
mod alloc;
#[global_allocator]
static ALLOCATOR: alloc::Mimalloc = alloc::Mimalloc;

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use injector_engine::doc::Node;
use injector_engine::{Injector, data, render, yaml};
use serde_json::Value;

use common::{Loaded, istio_sources, minimal_pod, pod};

/// The `sidecar` template's output for `pod`, rendered as the webhook would for a Deployment
/// in the mesh's default configuration.
fn rendered_sidecar(loaded: &Loaded, pod: &Value) -> Result<String, String> {
    let template = loaded
        .injector
        .templates
        .get("sidecar")
        .ok_or("the configuration has no sidecar template")?;
    template
        .execute(
            &data::build(&loaded.input(&Node::view(pod))),
            &Arc::new(BTreeMap::new()),
        )
        .map_err(|e| injector_engine::chain(&e))
}

fn bench_read(c: &mut Criterion) {
    let builtin = Injector::builtin()
        .map_err(|e| injector_engine::chain(&e))
        .map(Loaded::new);
    let istio = istio_sources()
        .and_then(|s| Injector::load(&s).map_err(|e| injector_engine::chain(&e)))
        .map(Loaded::new);
    let mut g = c.benchmark_group("yaml");
    for (name, injector, p) in [
        ("minimal", &builtin, minimal_pod()),
        ("deployment_3_containers_probes", &builtin, pod(3, 5, true)),
        ("istio_minimal", &istio, minimal_pod()),
    ] {
        let text = match injector
            .as_ref()
            .map_err(String::clone)
            .and_then(|i| rendered_sidecar(i, &p))
        {
            Ok(t) => t,
            Err(why) => {
                eprintln!("skipping yaml/{name}: {why}");
                continue;
            }
        };
        // The fast reader must accept Istio's output, or the bench would time the fallback.
        let Some(parsed) = yaml::parse(&text) else {
            eprintln!("skipping yaml/{name}: the fast reader falls back on this render");
            continue;
        };
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_function(format!("parse/{name}"), |b| {
            b.iter(|| yaml::parse(black_box(&text)))
        });
        // The same tree read from its JSON text by serde_json: a floor for building it.
        let json = parsed.to_string();
        g.bench_function(format!("json_floor/{name}"), |b| {
            b.iter(|| Node::parse(black_box(&json)))
        });
        g.bench_function(format!("typed/{name}"), |b| {
            b.iter_batched(
                || parsed.clone(),
                |mut v| {
                    render::typed_pod(&mut v);
                    v
                },
                BatchSize::SmallInput,
            )
        });
        g.bench_function(format!("read_partial_pod/{name}"), |b| {
            b.iter(|| render::read_partial_pod(black_box(&text)))
        });
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(40)
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_read
}
criterion_main!(benches);

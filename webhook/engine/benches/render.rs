//! Criterion benchmarks of template execution alone (`cargo bench -p injector-engine --bench render`):
//! building the `SidecarTemplateData` for a pod (`data/*`) and executing the built-in `sidecar`
//! template over it to text (`execute/*`), without reading the YAML back. The pods are the
//! minimal one and three containers with probes, as in the `inject` benches.

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

use criterion::{Criterion, criterion_group, criterion_main};
use injector_engine::Injector;
use injector_engine::data;
use injector_engine::doc::Node;

use common::{Loaded, minimal_pod, pod};

fn bench(c: &mut Criterion) {
    let loaded = Loaded::new(Injector::builtin().expect("the built-in configuration loads"));
    let Some(sidecar) = loaded.injector.templates.get("sidecar") else {
        eprintln!("render benches skipped: the built-in config has no `sidecar` template");
        return;
    };
    let vars = Arc::new(BTreeMap::new());
    let pods = [
        ("minimal", minimal_pod()),
        ("3_containers_probes", pod(3, 0, true)),
    ];
    for (name, pod) in &pods {
        let pod = Node::view(pod);
        let input = loaded.input(&pod);
        c.bench_function(&format!("data/{name}"), |b| {
            b.iter(|| data::build(black_box(&input)))
        });
        let tmpl_data = data::build(&input);
        if let Err(e) = sidecar.execute(&tmpl_data, &vars) {
            eprintln!("execute/{name} skipped: {}", injector_engine::chain(&e));
            continue;
        }
        c.bench_function(&format!("execute/{name}"), |b| {
            b.iter(|| sidecar.execute(black_box(&tmpl_data), &vars))
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);

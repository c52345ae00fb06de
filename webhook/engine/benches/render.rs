//! Criterion benchmarks of template execution alone (`cargo bench -p injector-engine --bench render`):
//! building the `SidecarTemplateData` for a pod (`data/*`) and executing the built-in `sidecar`
//! template over it to text (`execute/*`), without reading the YAML back. The pods are the
//! minimal one and three containers with probes, as in the `inject` benches.

// Shared with the `inject` bench, which uses the rest of it.
#[allow(dead_code)]
mod common;

// The allocator the shipped binary uses, so the figures are the ones users get.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use injector_engine::Injector;
use injector_engine::data::{self, Input};
use injector_engine::render::{self, TmplValue};
use serde_json::Value;

use common::{minimal_pod, pod};

/// What the webhook converts once at load and shares across renders.
struct Loaded {
    injector: Injector,
    values: TmplValue,
    mesh: TmplValue,
    proxy_image: String,
}

impl Loaded {
    fn new() -> Loaded {
        let injector = Injector::builtin().expect("the built-in configuration loads");
        let values = render::values_value(&injector.values);
        let mesh = data::mesh_value(&injector.mesh);
        let hub = injector.values["global"]["hub"].as_str().unwrap_or("");
        let tag = injector.values["global"]["tag"].as_str().unwrap_or("");
        Loaded {
            proxy_image: format!("{hub}/proxyv2:{tag}"),
            injector,
            values,
            mesh,
        }
    }

    /// The data inject builds for `pod`, created by a Deployment in webhook mode.
    fn input<'a>(&'a self, pod: &'a Value) -> Input<'a> {
        Input {
            kind: "Deployment",
            api_version: "apps/v1",
            owner_name: "web",
            owner_namespace: "shop",
            pod,
            proxy_config: &self.injector.mesh["defaultConfig"],
            mesh: &self.injector.mesh,
            mesh_value: Some(&self.mesh),
            values: &self.values,
            revision: "",
            native_sidecars: false,
            proxy_image: self.proxy_image.clone(),
            proxy_init_image: self.proxy_image.clone(),
            proxy_uid: 1337,
            proxy_gid: 1337,
            inbound_traffic_policy_mode: "passthrough",
            compliance_policy: "",
        }
    }
}

fn bench(c: &mut Criterion) {
    let loaded = Loaded::new();
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
        let input = loaded.input(pod);
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

//! Criterion benchmarks of `mesh-init`'s pure half (`cargo bench -p mesh-init`): flags to
//! rules to `iptables-restore` text, for the pod the injector configures by default and for
//! large include/exclude lists, as scale curves (bench/report.py checks that the time per
//! listed item does not grow).

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mesh_init::apply::dry_run;
use mesh_init::cli::Cli;
use mesh_init::config::{CaptureConfig, HostFacts};
use mesh_init::plan::{self, Family};
use mesh_init::restore;
use mesh_init::testing::INJECTOR_ARGS;

/// A pod's facts without reading the machine: IPv4 only, one cluster DNS server.
struct Pod;

impl HostFacts for Pod {
    fn ipv6(&self, _dual_stack: bool) -> Result<bool, String> {
        Ok(false)
    }
    fn read_resolv_conf(&self, _path: &str) -> Result<String, String> {
        Ok("nameserver 10.96.0.10\nsearch shop.svc.cluster.local svc.cluster.local\n".into())
    }
    fn lookup_uid(&self, user: &str) -> Option<u32> {
        (user == "istio-proxy").then_some(1337)
    }
}

fn config(args: &[String]) -> CaptureConfig {
    let argv = std::iter::once("mesh-init".to_string()).chain(args.iter().cloned());
    let cli = Cli::try_parse_args(argv).expect("benchmark arguments parse");
    CaptureConfig::resolve(&cli, &HashMap::<String, String>::new(), &Pod)
        .expect("benchmark arguments resolve")
}

/// The default arguments with flag `flag` replaced by `value`.
fn with(flag: &str, value: String) -> Vec<String> {
    let mut args: Vec<String> = INJECTOR_ARGS.iter().map(|s| s.to_string()).collect();
    match args.iter().position(|a| a == flag) {
        Some(i) => args[i + 1] = value,
        // Boolean long flags take their value only as `--flag=value`.
        None if flag.starts_with("--") => args.push(format!("{flag}={value}")),
        None => args.extend([flag.to_string(), value]),
    }
    args
}

fn ports(n: usize) -> String {
    (0..n)
        .map(|i| (20000 + i).to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn cidrs(n: usize) -> String {
    (0..n)
        .map(|i| format!("10.{}.{}.0/24", 100 + i / 256, i % 256))
        .collect::<Vec<_>>()
        .join(",")
}

/// Plan and render: what `mesh-init` computes before it runs `iptables-restore`. Never
/// inlined: bench/instructions.py counts the instructions of its calls.
#[inline(never)]
fn plan_and_render(cfg: &CaptureConfig) -> String {
    let plan = plan::iptables::plan(cfg);
    restore::render(plan.family(Family::V4))
}

fn bench_default(c: &mut Criterion) {
    let args: Vec<String> = INJECTOR_ARGS.iter().map(|s| s.to_string()).collect();
    let cfg = config(&args);
    let mut g = c.benchmark_group("mesh_init");
    g.bench_function("resolve_default", |b| b.iter(|| config(black_box(&args))));
    g.bench_function("plan_render_default", |b| {
        b.iter(|| plan_and_render(black_box(&cfg)))
    });
    let nft = config(&with("--native-nftables", "true".into()));
    g.bench_function("plan_render_default_nftables", |b| {
        b.iter(|| plan::nftables::render(&plan::nftables::plan(black_box(&nft))))
    });
    g.bench_function("dry_run_default", |b| {
        b.iter(|| dry_run::record(black_box(&cfg)))
    });
    g.finish();
}

/// One curve per list flag: excluded inbound ports (-d), included inbound ports (-b),
/// excluded outbound ports (-o), excluded CIDRs (-x), included CIDRs (-i).
fn bench_scale(c: &mut Criterion) {
    type List = fn(usize) -> String;
    let curves: [(&str, &str, List); 5] = [
        ("scale_exclude_inbound_ports", "-d", ports),
        ("scale_include_inbound_ports", "-b", ports),
        ("scale_exclude_outbound_ports", "-o", ports),
        ("scale_exclude_cidrs", "-x", cidrs),
        ("scale_include_cidrs", "-i", cidrs),
    ];
    for (group, flag, list) in curves {
        let mut g = c.benchmark_group(group);
        for n in [10usize, 100, 1000] {
            let cfg = config(&with(flag, list(n)));
            g.throughput(Throughput::Elements(n as u64));
            g.bench_with_input(BenchmarkId::from_parameter(n), &cfg, |b, cfg| {
                b.iter(|| plan_and_render(black_box(cfg)))
            });
        }
        g.finish();
    }
}

fn criterion() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(40)
}

criterion_group! {
    name = benches;
    config = criterion();
    targets = bench_default, bench_scale
}
criterion_main!(benches);

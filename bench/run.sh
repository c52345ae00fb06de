#!/usr/bin/env bash
# Regenerates BENCHMARKS.md (`make bench`): criterion benches of the injection core and of
# mesh-init's planning, the webhook server under load over TLS, mesh-init against bare
# iptables-restore in fresh network namespaces, then bench/report.py.
#
#   bench/run.sh                 everything (about 25 minutes with the 5-minute soak)
#   bench/run.sh engine init     only some steps: engine init instructions load iptables report
#
# Environment: SOAK_MINUTES (default 5), LOAD_SECONDS (per point, default 10),
# ISTIO_INJECT_VECTORS (Istio's config for the template-parsing benchmark; default
# ../shared/conformance/istio-inject), BENCH_OUT (raw results, default target/bench).
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
target=${CARGO_TARGET_DIR:-$root/target}
out=${BENCH_OUT:-$target/bench}
mkdir -p "$out"
steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(engine init instructions load iptables report)
want() { [[ " ${steps[*]} " == *" $1 "* ]]; }

if [ -z "${ISTIO_INJECT_VECTORS:-}" ] && [ -d "$root/../shared/conformance/istio-inject" ]; then
    export ISTIO_INJECT_VECTORS="$root/../shared/conformance/istio-inject"
fi

# Tools from Debian: h2load (nghttp2-client), hyperfine, strace, valgrind.
need=()
command -v valgrind >/dev/null || need+=(valgrind)
command -v h2load >/dev/null || need+=(nghttp2-client)
command -v hyperfine >/dev/null || need+=(hyperfine)
command -v strace >/dev/null || need+=(strace)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing ${need[*]}" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    else
        echo "missing: ${need[*]} (apt-get install them as root)" >&2
        exit 1
    fi
fi
command -v python3 >/dev/null || { echo "python3 is needed" >&2; exit 1; }

if want engine || want init || want load || want iptables; then
    python3 - "$out/machine.json" <<'PY'
import json, os, subprocess, sys, time
def sh(*a):
    return subprocess.run(a, capture_output=True, text=True).stdout.strip()
model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown")
mem = next((l.split(":", 1)[1].strip() for l in open("/proc/meminfo") if l.startswith("MemTotal")), "?")
json.dump({"cpu_model": model, "cores": os.cpu_count(), "memory": mem,
           "kernel": sh("uname", "-sr"), "rustc": sh("rustc", "--version"),
           "commit": sh("git", "rev-parse", "--short", "HEAD") + (" (dirty)" if sh("git", "status", "--porcelain", "--untracked-files=no") else ""),
           "date": time.strftime("%Y-%m-%d %H:%M", time.gmtime()), "start_epoch": time.time(),
           "load_start": open("/proc/loadavg").read().split()[:3]},
          open(sys.argv[1], "w"), indent=1)
PY
fi

# The injection-core targets are judged on the median of three criterion runs spread over the
# whole bench (the engine step's, and one after each of instructions and iptables): this
# machine's speed drifts by a third over minutes, and one run samples only one stretch.
core_run() {
    if [ "$1" -gt 1 ]; then
        echo "== criterion: injection core, run $1 of 3" >&2
        cargo bench -p injector-engine --bench inject -- '^inject/(minimal|env_2000)$' 2>&1 |
            tee -a "$out/criterion-engine.txt" >&2
    fi
    for b in minimal env_2000; do
        # Absent when the injection benches were skipped (the bench log says why).
        [ -f "$target/criterion/inject/$b/new/estimates.json" ] || continue
        mkdir -p "$out/core-runs/$1/$b"
        cp "$target/criterion/inject/$b/new/"{estimates,benchmark}.json "$out/core-runs/$1/$b/"
    done
}

if want engine; then
    echo "== criterion: injector-engine" >&2
    rm -rf "$out/core-runs"
    cargo bench -p injector-engine 2>&1 | tee "$out/criterion-engine.txt" >&2
    core_run 1
fi
if want init; then
    echo "== criterion: mesh-init" >&2
    cargo bench -p mesh-init --bench plan 2>&1 | tee "$out/criterion-init.txt" >&2
fi
if want instructions; then
    echo "== instructions per call of the scale curves (callgrind)" >&2
    # The bench executables as cargo builds them for `cargo bench` (bench profile).
    bench_bin() {
        cargo bench -p "$1" --bench "$2" --no-run --message-format=json |
            python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and "bench" in m["target"]["kind"]:
        print(m["executable"])'
    }
    engine_bench=$(bench_bin injector-engine inject)
    init_bench=$(bench_bin mesh-init plan)
    if [ -z "$engine_bench" ] || [ -z "$init_bench" ]; then
        echo "no bench executable found in cargo's output" >&2
        exit 1
    fi
    python3 bench/instructions.py --engine-bench "$engine_bench" --init-bench "$init_bench" \
        --out "$out/instructions.json"
    if want engine; then core_run 2; fi
fi
if want load || want iptables; then
    cargo build --release -p sidecar-injector -p mesh-init >&2
fi
if want load; then
    echo "== load: sidecar-injector serve over TLS" >&2
    python3 bench/load.py --bin "$target/release/sidecar-injector" --out "$out/load.json" \
        --soak-minutes "${SOAK_MINUTES:-5}" --duration "${LOAD_SECONDS:-10}"
fi
if want iptables; then
    echo "== mesh-init vs iptables-restore (network namespaces)" >&2
    if [ "$(id -u)" = 0 ]; then
        # mesh-init as its image ships it: linked statically and stripped (the image builds it
        # for musl; static glibc is the nearest build here). Dynamic loading alone costs it
        # about half a millisecond per run, a sixth of the floor.
        host=$(rustc -vV | sed -n 's/^host: //p')
        RUSTFLAGS="-C target-feature=+crt-static" CARGO_PROFILE_RELEASE_STRIP=symbols \
            cargo build --release -p mesh-init --bin mesh-init --target "$host" \
            --target-dir "$target/static" >&2
        python3 bench/iptables.py --bin "$target/static/$host/release/mesh-init" \
            --out "$out/iptables.json"
    else
        echo "not root: skipped (needs network namespaces)" >&2
    fi
    if want engine; then core_run 3; fi
fi
if want report; then
    python3 - "$out/machine.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
m["load_end"] = open("/proc/loadavg").read().split()[:3]
json.dump(m, open(sys.argv[1], "w"), indent=1)
PY
    python3 bench/report.py --criterion "$target/criterion" --machine "$out/machine.json" \
        --load "$out/load.json" --iptables "$out/iptables.json" \
        --instructions "$out/instructions.json" --core-runs "$out/core-runs" > BENCHMARKS.md.new
    mv BENCHMARKS.md.new BENCHMARKS.md
    echo "wrote BENCHMARKS.md" >&2
fi

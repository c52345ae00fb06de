#!/usr/bin/env python3
"""Load benchmark of `sidecar-injector serve` over real TLS on loopback.

Starts the real binary (its own `certs` command makes the serving certificate), measures
time-to-ready and idle RSS, then drives it with h2load (HTTP/1.1 keep-alive and HTTP/2,
concurrency 1/16/64) with a realistic AdmissionReview: a Deployment's pod with 3 containers and
probes. The same server started with the hidden `--bench-null` flag (same TLS, same HTTP stack,
same logging and metrics, no engine) is the transport ceiling, measured in the same run.

For each point: throughput, p50/p99/p99.9 latency (from h2load's per-request log), server CPU per
1000 reviews (utime+stime from /proc/<pid>/stat over the reviews counted by the server's own
/metrics), and VmHWM. Then a soak: RSS sampled during minutes of load (flat = no growth).

Writes one JSON document (--out); bench/report.py turns it into BENCHMARKS.md.
"""

import argparse
import http.client
import json
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


# --- the request ------------------------------------------------------------------------------

def container(i, envs, probes):
    port = 8080 + i
    c = {
        "name": f"app-{i}",
        "image": f"registry.example.com/shop/app-{i}:1.4.2",
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": f"http-{i}", "containerPort": port, "protocol": "TCP"}],
        "env": [{"name": f"APP_SETTING_{k}", "value": f"value-{i}-{k}"} for k in range(envs)],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                      "limits": {"cpu": "500m", "memory": "256Mi"}},
        "volumeMounts": [{"name": "config", "mountPath": "/etc/app", "readOnly": True}],
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
    }
    if not envs:
        del c["env"]
    if probes:
        c["readinessProbe"] = {"httpGet": {"path": "/ready", "port": port, "scheme": "HTTP"},
                               "initialDelaySeconds": 2, "periodSeconds": 5, "timeoutSeconds": 1,
                               "successThreshold": 1, "failureThreshold": 3}
        c["livenessProbe"] = {"httpGet": {"path": "/healthz", "port": port, "scheme": "HTTP"},
                              "periodSeconds": 10, "timeoutSeconds": 1, "successThreshold": 1,
                              "failureThreshold": 3}
        c["startupProbe"] = {"tcpSocket": {"port": port}, "periodSeconds": 2,
                             "failureThreshold": 30}
    return c


def review(containers, envs, probes=True):
    """The AdmissionReview the API server sends for a Deployment's pod (same shape as the
    criterion benches' `common::pod`)."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "web-7d4b9c6f8d-",
            "namespace": "shop",
            "labels": {"app": "web", "version": "v1", "pod-template-hash": "7d4b9c6f8d"},
            "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-11-20T10:00:00Z"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                 "name": "web-7d4b9c6f8d",
                                 "uid": "5b0c8a9e-8a53-4c1e-9a57-3f1f3b9a1c2d",
                                 "controller": True, "blockOwnerDeletion": True}],
        },
        "spec": {
            "serviceAccountName": "web",
            "containers": [container(i, envs, probes) for i in range(containers)],
            "volumes": [{"name": "config", "configMap": {"name": "web-config"}}],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "securityContext": {},
        },
    }
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "0df28fbd-5f5f-11e8-bc74-36e6bb280816",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "shop",
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller",
                         "groups": ["system:serviceaccounts", "system:authenticated"]},
            "object": pod,
            "oldObject": None,
            "dryRun": False,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }


# --- the server -------------------------------------------------------------------------------

def stat_cpu_seconds(stat_path):
    """utime + stime of a /proc stat file (a process's, or one thread's under task/)."""
    with open(stat_path) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / TICKS


def proc_cpu_seconds(pid):
    return stat_cpu_seconds(f"/proc/{pid}/stat")


def io_thread_cpu_seconds(pid):
    """CPU of the server's async workers (threads named `injector-io`: TLS and HTTP). The rest
    of the process is the blocking pool running reviews (plus an idle main thread). Workers
    never exit, so their counters cover the whole point."""
    total = 0.0
    for tid in os.listdir(f"/proc/{pid}/task"):
        task = f"/proc/{pid}/task/{tid}"
        try:
            with open(f"{task}/comm") as f:
                if f.read().strip() == "injector-io":
                    total += stat_cpu_seconds(f"{task}/stat")
        except FileNotFoundError:
            continue  # a pool thread that exited meanwhile
    return total


def proc_status_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def get(port, path, timeout=1.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def reviews_answered(monitoring_port):
    _, text = get(monitoring_port, "/metrics")
    m = re.search(r"^sidecar_injection_requests_total(?:\{[^}]*\})?\s+(\d+)", text, re.M)
    if not m:
        raise RuntimeError("/metrics has no sidecar_injection_requests_total")
    return int(m.group(1))


class Server:
    """`sidecar-injector serve` on loopback; stderr (one info line per review) to a file
    truncated between runs, or /dev/null."""

    def __init__(self, binary, tls_dir, port, monitoring_port, null=False):
        self.port, self.monitoring_port = port, monitoring_port
        args = [binary, "serve", "--address", "127.0.0.1", "--port", str(port),
                "--monitoring-port", str(monitoring_port), "--tls-dir", tls_dir,
                "--reload-interval", "60s"]
        if null:
            args.append("--bench-null")
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self.pid = self.proc.pid
        self.ready_ms = self.wait_ready()

    def wait_ready(self, limit=10.0):
        while time.perf_counter() - self.started < limit:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode} before ready")
            try:
                status, _ = get(self.monitoring_port, "/readyz", timeout=0.2)
                if status == 200:
                    return (time.perf_counter() - self.started) * 1e3
            except OSError:
                pass
            time.sleep(0.0005)
        raise RuntimeError("server not ready within 10 s")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# --- h2load -----------------------------------------------------------------------------------

def layout(protocol, concurrency):
    """h1: one request in flight per connection. h2 (as the API server uses it): streams
    multiplexed, at most 16 per connection."""
    if protocol == "h1":
        return concurrency, 1
    conns = max(1, concurrency // 16)
    return conns, concurrency // conns


def h2load_command(port, body_file, protocol, concurrency, duration, warmup, log_file):
    conns, streams = layout(protocol, concurrency)
    cmd = ["h2load", "-t", "1", "-c", str(conns), "-m", str(streams),
           "-D", str(duration), f"--warm-up-time={warmup}",
           "-d", body_file, "-H", "content-type: application/json",
           "--log-file", log_file]
    if protocol == "h1":
        cmd.append("--h1")
    cmd.append(f"https://127.0.0.1:{port}/inject")
    return cmd


def percentile(sorted_values, q):
    if not sorted_values:
        return None
    k = (len(sorted_values) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def run_point(server, body_file, protocol, concurrency, duration, warmup, workdir):
    log_file = os.path.join(workdir, "h2load.log")
    if os.path.exists(log_file):
        os.unlink(log_file)
    cmd = h2load_command(server.port, body_file, protocol, concurrency, duration, warmup,
                         log_file)
    answered0 = reviews_answered(server.monitoring_port)
    cpu0 = proc_cpu_seconds(server.pid)
    io0 = io_thread_cpu_seconds(server.pid)
    wall0 = time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.monotonic() - wall0
    cpu1 = proc_cpu_seconds(server.pid)
    io1 = io_thread_cpu_seconds(server.pid)
    answered1 = reviews_answered(server.monitoring_port)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stdout}\n{out.stderr}")
    m = re.search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s", out.stdout)
    st = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out.stdout)
    fails = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed",
                      out.stdout)
    if not m or not st or not fails:
        raise RuntimeError(f"cannot read h2load's output:\n{out.stdout}")
    non_2xx = sum(int(x) for x in st.groups()[1:])
    latencies = []
    with open(log_file) as f:
        for line in f:
            parts = line.split("\t")
            if len(parts) >= 3 and parts[1] == "200":
                latencies.append(int(parts[2]))
    latencies.sort()
    reviews = answered1 - answered0
    return {
        "protocol": protocol,
        "concurrency": concurrency,
        "connections": layout(protocol, concurrency)[0],
        "streams_per_connection": layout(protocol, concurrency)[1],
        "command": shlex.join(cmd),
        "rps": float(m.group(3)),
        "measured_requests": len(latencies),
        "non_2xx": non_2xx,
        "failed": int(fails.group(3)),
        "p50_ms": percentile(latencies, 0.50) / 1e3 if latencies else None,
        "p99_ms": percentile(latencies, 0.99) / 1e3 if latencies else None,
        "p999_ms": percentile(latencies, 0.999) / 1e3 if latencies else None,
        "max_ms": latencies[-1] / 1e3 if latencies else None,
        "server_reviews": reviews,
        "cpu_ms_per_1000": (cpu1 - cpu0) * 1e3 / reviews * 1000 if reviews else None,
        "io_cpu_ms_per_1000": (io1 - io0) * 1e3 / reviews * 1000 if reviews else None,
        "server_cpu_cores": (cpu1 - cpu0) / wall,
        "vmhwm_kib": proc_status_kib(server.pid, "VmHWM"),
        "vmrss_kib": proc_status_kib(server.pid, "VmRSS"),
    }


def median_run(runs):
    """The run with the median throughput, carrying every run's throughput, p99 and CPU (all
    from that one run, so the figures in a row stay consistent with each other)."""
    ranked = sorted(runs, key=lambda r: r["rps"])
    chosen = dict(ranked[(len(ranked) - 1) // 2])
    if len(runs) > 1:
        chosen["trials"] = [{k: r[k] for k in ("rps", "p99_ms", "cpu_ms_per_1000")}
                            for r in runs]
    return chosen


def soak(server, body_file, minutes, workdir, sample_every=15):
    """Steady load for `minutes`, RSS sampled as it goes."""
    seconds = int(minutes * 60)
    log_file = os.path.join(workdir, "soak.log")
    cmd = h2load_command(server.port, body_file, "h2", 16, seconds, 0, "/dev/null")
    cmd = [c for c in cmd if c not in ("--log-file", "/dev/null")]
    samples = []
    answered0 = reviews_answered(server.monitoring_port)
    started = time.monotonic()
    with open(log_file, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        while proc.poll() is None:
            time.sleep(1)
            t = time.monotonic() - started
            if not samples or t - samples[-1]["t_s"] >= sample_every:
                samples.append({
                    "t_s": round(t, 1),
                    "vmrss_kib": proc_status_kib(server.pid, "VmRSS"),
                    "reviews": reviews_answered(server.monitoring_port) - answered0,
                })
    if proc.returncode != 0:
        raise RuntimeError(f"soak h2load failed, see {log_file}")

    def at(second):
        return min(samples, key=lambda s: abs(s["t_s"] - second))

    one = at(60)
    last = samples[-1]
    return {
        "command": shlex.join(cmd),
        "minutes": minutes,
        "samples": samples,
        "rss_1min_kib": one["vmrss_kib"],
        "rss_end_kib": last["vmrss_kib"],
        "rss_end_t_s": last["t_s"],
        "reviews": last["reviews"],
        "vmhwm_kib": proc_status_kib(server.pid, "VmHWM"),
    }


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", required=True, help="the release sidecar-injector binary")
    ap.add_argument("--out", required=True, help="JSON results file")
    ap.add_argument("--duration", type=int, default=10, help="seconds measured per point")
    ap.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per point")
    ap.add_argument("--trials", type=int, default=3,
                    help="runs of each concurrency-64 point (the median is reported)")
    ap.add_argument("--soak-minutes", type=float, default=5)
    ap.add_argument("--ready-runs", type=int, default=7)
    args = ap.parse_args()
    if not shutil.which("h2load"):
        sys.exit("h2load not found (Debian: apt-get install nghttp2-client)")

    work = tempfile.mkdtemp(prefix="injector-bench-")
    tls_dir = os.path.join(work, "certs")
    subprocess.run([args.bin, "certs", "--out-dir", tls_dir, "--extra-san", "127.0.0.1"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    bodies = {}
    for name, (containers, envs) in {"deployment_3c": (3, 5), "env_2000": (1, 2000)}.items():
        path = os.path.join(work, f"{name}.json")
        with open(path, "w") as f:
            json.dump(review(containers, envs), f)
        bodies[name] = path

    result = {"request_bytes": os.path.getsize(bodies["deployment_3c"]),
              "request_bytes_env_2000": os.path.getsize(bodies["env_2000"]),
              "duration_s": args.duration, "warmup_s": args.warmup, "trials": args.trials}

    # Time to ready and idle RSS: fresh processes, each polled from spawn.
    ready, idle = [], []
    for _ in range(args.ready_runs):
        s = Server(args.bin, tls_dir, free_port(), free_port())
        ready.append(s.ready_ms)
        time.sleep(1.0)
        idle.append(proc_status_kib(s.pid, "VmRSS"))
        s.stop()
    result["ready_ms"] = {"median": statistics.median(ready), "max": max(ready),
                          "runs": ready}
    result["idle_rss_kib"] = {"median": statistics.median(idle), "max": max(idle)}

    # Injector and null webhook alternate per point, so drift in machine load hits both.
    points = []
    servers = {kind: Server(args.bin, tls_dir, free_port(), free_port(), null=(kind == "null"))
               for kind in ("injector", "null")}
    try:
        for protocol in ("h1", "h2"):
            for concurrency in (1, 16, 64):
                # The targets are judged at concurrency 64, where one run can drift 10-15%
                # with the machine's other load: that point is run several times (null and
                # injector still alternating) and the median run reported, with the rest kept.
                trials = {kind: [] for kind in ("null", "injector")}
                for _ in range(args.trials if concurrency == 64 else 1):
                    for kind in ("null", "injector"):
                        p = run_point(servers[kind], bodies["deployment_3c"], protocol,
                                      concurrency, args.duration, args.warmup, work)
                        trials[kind].append(p)
                        print(f"{kind:8} {protocol} c={concurrency:<3} {p['rps']:9.0f} req/s "
                              f"p50 {p['p50_ms']:.2f} ms p99 {p['p99_ms']:.2f} ms "
                              f"cpu {p['cpu_ms_per_1000']:.0f} ms/1000", file=sys.stderr)
                for kind, runs in trials.items():
                    p = median_run(runs)
                    p["server"] = kind
                    p["request"] = "deployment_3c"
                    points.append(p)
        # Pod size through the whole stack: the 2000-env-var pod.
        p = run_point(servers["injector"], bodies["env_2000"], "h2", 16, args.duration,
                      args.warmup, work)
        p["server"] = "injector"
        p["request"] = "env_2000"
        points.append(p)
        result["points"] = points
        result["peak_rss_kib"] = {k: proc_status_kib(s.pid, "VmHWM") for k, s in servers.items()}
        servers["null"].stop()
        del servers["null"]
        if args.soak_minutes > 0:
            print(f"soak: {args.soak_minutes} min of h2 c=16 load", file=sys.stderr)
            # A fresh server so the soak's RSS is not the scale runs' high-water mark.
            servers["injector"].stop()
            servers["injector"] = Server(args.bin, tls_dir, free_port(), free_port())
            result["soak"] = soak(servers["injector"], bodies["deployment_3c"],
                                  args.soak_minutes, work)
    finally:
        for s in servers.values():
            s.stop()

    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

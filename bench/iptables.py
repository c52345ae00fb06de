#!/usr/bin/env python3
"""mesh-init against its floor and the naive approach, in fresh network namespaces (root).

Four ways to install the same rules, timed by hyperfine. Before every run hyperfine's
`--prepare` creates a fresh, empty network namespace (`ip netns add`), and the timed command
enters it with `nsenter --net=…` (a setns(2), no namespace creation), so all of them start from
an empty ruleset and the timings hold no namespace-creation noise:
  mesh-init   the mesh-init binary with the arguments Istio's injector gives istio-init
  floor       one bare `iptables-restore --noflush` of the very rules mesh-init applies (taken
              from its own --dry-run record)
  wrapper     `sh -c` starting that same iptables-restore as a child and waiting for it: the
              least any program that runs iptables-restore, instead of becoming it, can cost
  naive       one `iptables` process per rule (what Istio's istio-iptables did before it used
              iptables-restore)
Then the same three as the number of excluded inbound ports (-d) and excluded CIDRs (-x) grows.
Also counts the processes mesh-init starts (strace), which is what bounds it above the floor.

Writes one JSON document (--out); bench/report.py turns it into BENCHMARKS.md.
"""

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile

DEFAULT_ARGS = ["-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT", "-i", "*",
                "-x", "", "-b", "*", "-d", "15090,15021,15020"]
# A fresh namespace has only loopback, so the address family is given rather than detected.
NETNS_ARGS = ["--host-ipv6=false"]
NETNS = "mesh-init-bench"
ENTER = f"nsenter --net=/run/netns/{NETNS}"
PREPARE = f"sh -c 'ip netns del {NETNS} 2>/dev/null; ip netns add {NETNS}'"


def with_flag(flag, value):
    args = list(DEFAULT_ARGS)
    i = args.index(flag)
    args[i + 1] = value
    return args


def ports(n):
    return ",".join(str(20000 + i) for i in range(n))


def cidrs(n):
    return ",".join(f"10.{100 + i // 256}.{i % 256}.0/24" for i in range(n))


def restore_text(binary, args):
    """The IPv4 `iptables-restore` input from mesh-init's own dry-run record: the table blocks
    (`* table` … `COMMIT`) of the first restore."""
    out = subprocess.run([binary, "--dry-run", *args, *NETNS_ARGS], capture_output=True,
                         text=True, check=True).stdout
    blocks, current, done = [], None, False
    for line in out.splitlines():
        if done:
            break
        if current is None:
            if line.startswith("* "):
                current = [line]
            elif blocks:
                done = True
            continue
        current.append(line)
        if line == "COMMIT":
            blocks.append("\n".join(current))
            current = None
    if not blocks:
        raise RuntimeError(f"no restore input in mesh-init's dry run:\n{out}")
    return "\n".join(blocks) + "\n"


def naive_script(text):
    """One `iptables` invocation per line of the restore input."""
    lines, table = ["set -e"], None
    for line in text.splitlines():
        if line.startswith("* "):
            table = line[2:].strip()
        elif line.startswith(("-N ", "-A ", "-I ")):
            lines.append(f"iptables -t {table} {line}")
    return "\n".join(lines) + "\n", len(lines) - 1


def hyperfine(commands, runs, warmup, out_json, rounds=1):
    """Times `commands` in `rounds` hyperfine calls of runs/rounds each, the order reversed
    every other round, and pools the runs: the machine's speed drifts over a minute, and a
    command timed only after another would take the drift as its own."""
    pooled = {name: {"times": [], "cpu": []} for name, _ in commands}
    cmd = None
    for r in range(rounds):
        order = commands if r % 2 == 0 else commands[::-1]
        cmd = ["hyperfine", "-N", "--style", "basic", "--warmup", str(warmup), "--runs",
               str(max(2, runs // rounds)), "--prepare", PREPARE, "--export-json", out_json]
        for name, command in order:
            cmd += ["-n", name, command]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(out_json) as f:
            data = json.load(f)
        for res in data["results"]:
            p = pooled[res["command"]]
            p["times"] += res["times"]
            # user + system: the CPU the run cost, counted over the command and its children;
            # steadier than wall time on a shared machine.
            p["cpu"] += [res["user"] + res["system"]] * len(res["times"])
    results = {}
    for name, p in pooled.items():
        t = p["times"]
        results[name] = {"mean_ms": statistics.fmean(t) * 1e3,
                         "stddev_ms": statistics.stdev(t) * 1e3,
                         "median_ms": statistics.median(t) * 1e3, "min_ms": min(t) * 1e3,
                         "cpu_ms": statistics.fmean(p["cpu"]) * 1e3, "runs": len(t)}
    command = " ".join(shlex.quote(c) for c in cmd)
    if rounds > 1:
        command += f"  # {rounds} rounds, the order reversed every other round"
    return results, command


def compare(binary, args, work, tag, runs, naive_runs, rounds=1):
    text = restore_text(binary, args)
    rules = os.path.join(work, f"{tag}.rules")
    with open(rules, "w") as f:
        f.write(text)
    script, rule_count = naive_script(text)
    naive = os.path.join(work, f"{tag}.sh")
    with open(naive, "w") as f:
        f.write(script)
    mesh_init = ENTER + " " + " ".join(shlex.quote(a) for a in [binary, *args, *NETNS_ARGS])
    floor = f"{ENTER} iptables-restore --noflush {shlex.quote(rules)}"
    # Entering the namespace and starting a process that does nothing: the part of both
    # commands that is neither mesh-init nor iptables (reported, not subtracted).
    enter = f"{ENTER} true"
    # The least any program that runs iptables-restore (rather than becoming it) can cost: a
    # shell that starts it on the rules, waits and exits. `&& :` keeps the shell from
    # exec'ing iptables-restore in its own place.
    wrapper = f"{ENTER} sh -c " + shlex.quote(f"iptables-restore --noflush < {shlex.quote(rules)} && :")
    naive_cmd = f"{ENTER} sh {shlex.quote(naive)}"
    results, command = hyperfine(
        [("mesh-init", mesh_init), ("floor", floor), ("wrapper", wrapper), ("enter", enter)],
        runs, 3, os.path.join(work, f"{tag}.json"), rounds=rounds)
    naive_results, naive_command = hyperfine(
        [("naive", naive_cmd)], naive_runs, 1, os.path.join(work, f"{tag}-naive.json"))
    results.update(naive_results)
    return {
        "tag": tag,
        "args": args,
        "rules": rule_count,
        "mesh_init": results["mesh-init"],
        "floor": results["floor"],
        "naive": results["naive"],
        "enter": results["enter"],
        "wrapper": results["wrapper"],
        "vs_floor": results["mesh-init"]["mean_ms"] / results["floor"]["mean_ms"],
        "wrapper_vs_floor": results["wrapper"]["mean_ms"] / results["floor"]["mean_ms"],
        "vs_wrapper": results["mesh-init"]["mean_ms"] / results["wrapper"]["mean_ms"],
        "vs_floor_median": results["mesh-init"]["median_ms"] / results["floor"]["median_ms"],
        "vs_floor_cpu": results["mesh-init"]["cpu_ms"] / results["floor"]["cpu_ms"],
        "naive_vs_mesh_init": results["naive"]["mean_ms"] / results["mesh-init"]["mean_ms"],
        "commands": {"mesh-init": mesh_init, "floor": floor, "wrapper": wrapper, "enter": enter,
                     "naive": f"{ENTER} sh " + naive},
        "hyperfine": command,
        "hyperfine_naive": naive_command,
    }


def spawned(binary, args, work):
    """The programs mesh-init runs for one install (execve calls of its children)."""
    trace = os.path.join(work, "strace.txt")
    subprocess.run(["strace", "-f", "-qq", "-e", "trace=execve", "-o", trace,
                    "unshare", "-n", binary, *args, *NETNS_ARGS],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    programs = []
    with open(trace) as f:
        for line in f:
            if "execve(" in line and "= 0" in line.rsplit("execve(", 1)[1]:
                programs.append(line.split("execve(", 1)[1].split(",", 1)[0].strip('"'))
    # The first two are unshare itself and mesh-init.
    return programs[2:]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", required=True, help="the release mesh-init binary")
    ap.add_argument("--out", required=True)
    ap.add_argument("--runs", type=int, default=90,
                    help="runs of each command for the default pod (the scale points run a ninth)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="hyperfine calls the default pod's runs are split over")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (network namespaces, iptables)")
    for tool in ("hyperfine", "iptables-restore", "unshare", "nsenter", "ip"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found")

    work = tempfile.mkdtemp(prefix="mesh-init-bench-")
    result = {"iptables_version": subprocess.run(["iptables", "--version"], capture_output=True,
                                                 text=True).stdout.strip()}
    result["default"] = compare(args.bin, DEFAULT_ARGS, work, "default", args.runs, 30,
                                rounds=args.rounds)
    print(f"default: mesh-init {result['default']['mesh_init']['mean_ms']:.2f} ms, floor "
          f"{result['default']['floor']['mean_ms']:.2f} ms, naive "
          f"{result['default']['naive']['mean_ms']:.2f} ms", file=sys.stderr)
    scale = []
    for flag, name, make in (("-d", "exclude_inbound_ports", ports),
                             ("-x", "exclude_cidrs", cidrs)):
        for n in (10, 100, 1000):
            point = compare(args.bin, with_flag(flag, make(n)), work, f"{name}-{n}",
                            max(5, args.runs // 9), 3 if n >= 1000 else 5)
            point["list"], point["n"] = name, n
            point["args"] = [a if len(a) < 80 else f"<{n} items>" for a in point["args"]]
            scale.append(point)
            print(f"{name} {n}: mesh-init {point['mesh_init']['mean_ms']:.2f} ms, floor "
                  f"{point['floor']['mean_ms']:.2f} ms, naive {point['naive']['mean_ms']:.1f} ms",
                  file=sys.stderr)
    result["scale"] = scale
    subprocess.run(["ip", "netns", "del", NETNS], stderr=subprocess.DEVNULL)
    if shutil.which("strace"):
        result["spawned"] = spawned(args.bin, DEFAULT_ARGS, work)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

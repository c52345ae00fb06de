#!/usr/bin/env python3
"""Instructions per call of every scale-curve point, counted by callgrind.

Wall-clock times on a shared machine drift between runs by more than a scale curve's noise
allowance, so a curve can look superlinear when the code did not change. The instructions a
call executes hardly drift (bench/analysis.md gives the spread between runs): they show whether
the work per item grows with the size (a quadratic corner) or not. For each point this runs the criterion bench under
`valgrind --tool=callgrind`, collecting only inside the function the point measures, in two
profiling loops of different lengths, and divides the difference in instructions by the
difference in calls (which leaves out the first calls' one-time costs).

  python3 bench/instructions.py --engine-bench BIN --init-bench BIN --out instructions.json
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

# (bench binary option, criterion group, function whose calls are counted)
CURVES = [
    ("engine", "scale_env", "injector_engine::admission::review"),
    ("engine", "scale_containers", "injector_engine::admission::review"),
    ("init", "scale_exclude_inbound_ports", "plan::plan_and_render"),
    ("init", "scale_include_inbound_ports", "plan::plan_and_render"),
    ("init", "scale_exclude_outbound_ports", "plan::plan_and_render"),
    ("init", "scale_exclude_cidrs", "plan::plan_and_render"),
    ("init", "scale_include_cidrs", "plan::plan_and_render"),
]


def count(path, function):
    """(instructions collected, calls of `function`) from a callgrind output file. Names are
    compressed: the first mention of an id carries the name, later ones only the id."""
    names = {}
    caller = callee = None
    total = calls = 0

    def name(token):
        m = re.match(r"\((\d+)\)(?: (.*))?", token)
        if not m:
            return token
        if m.group(2):
            names[m.group(1)] = m.group(2)
        return names.get(m.group(1), m.group(1))

    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("fn="):
                caller = name(line[3:].strip())
            elif line.startswith("cfn="):
                callee = name(line[4:].strip())
            elif line.startswith("calls="):
                if callee == function and caller != function:
                    calls += int(line[6:].split()[0])
            elif line.startswith(("summary:", "totals:")):
                total = int(line.split()[1])
    return total, calls


def collect(binary, group, size, function, seconds, workdir):
    """(instructions, calls) of `function` over criterion's profiling loop of one point."""
    out = os.path.join(workdir, f"{group}-{size}.cg")
    cmd = ["valgrind", "--tool=callgrind", f"--toggle-collect={function}",
           f"--callgrind-out-file={out}", binary, "--bench", "--profile-time", str(seconds),
           f"^{group}/{size}$"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not os.path.exists(out):
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    total, calls = count(out, function)
    os.unlink(out)
    if calls == 0:
        raise RuntimeError(f"no call of {function} in {group}/{size}")
    return total, calls


def measure(binary, group, size, function, workdir):
    """Instructions per call in the steady state. The first calls also pay one-time costs (the
    allocator's first pages, lazily built tables), and how many calls a timed loop makes
    depends on the machine's speed, so one loop's average moves with it. Two loops of
    different lengths pay the same one-time costs, so their difference leaves them out."""
    short = collect(binary, group, size, function, 1, workdir)
    for seconds in (3, 6, 12):
        long = collect(binary, group, size, function, seconds, workdir)
        if long[1] > short[1]:
            break
    else:
        raise RuntimeError(f"{group}/{size}: longer loops made no more calls")
    per_call = (long[0] - short[0]) // (long[1] - short[1])
    return {"size": size, "instructions": per_call, "calls": [short[1], long[1]]}


def sizes(binary, group):
    """The sizes a criterion group has, from the bench's own list."""
    listed = subprocess.run([binary, "--bench", "--list"], capture_output=True, text=True,
                            check=True).stdout
    found = re.findall(rf"^{group}/(\d+): benchmark$", listed, re.M)
    return sorted({int(s) for s in found})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--engine-bench", required=True, help="the injector-engine `inject` bench")
    ap.add_argument("--init-bench", required=True, help="the mesh-init `plan` bench")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    binaries = {"engine": args.engine_bench, "init": args.init_bench}
    result = {}
    with tempfile.TemporaryDirectory() as work:
        for which, group, function in CURVES:
            points = []
            for size in sizes(binaries[which], group):
                point = measure(binaries[which], group, size, function, work)
                print(f"{group}/{size}: {point['instructions']:,} instructions per call",
                      file=sys.stderr)
                points.append(point)
            result[group] = {"function": function, "points": points}
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
